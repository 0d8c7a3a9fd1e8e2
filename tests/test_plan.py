"""scaling.plan: the checks above the ground floor (stages' steps, the World), the dose
resolved once, and the RunPlan a config resolves to."""

import pytest

from scaling import config as parsing
from scaling import plan
from scaling.config import ConfigError
from scaling.data.vocab import build_tokenizer

MODEL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16}
PRE = {"name": "pre", "steps": 10}
RL = {"name": "rl", "steps": 3, "objective": "helpful_rl", "post": True}


def raw(stages=(), **sections) -> dict:
    out = {"model": dict(MODEL), "train": {"steps": 10, "batch_size": 4}, "eval": {"enabled": False},
           "data": {"story_fraction": 0.0}, "stages": [dict(s) for s in stages]}
    for section, values in sections.items():
        out[section].update(values)
    return out


@pytest.mark.parametrize("config,key", [
    (raw(data={"story_fraction": 0.3}), "model.seq_len"),  # 17-token rows cannot hold a story unit
    (raw([{"name": "pre", "steps": 0}]), "stages"),
    (raw([PRE], eval={"checkpoints": [11]}), "eval.checkpoints"),
    (raw([PRE, {**RL, "families": ["no-such-family"]}]), "stages.rl.families"),
    (raw([PRE], data={"aligned_fraction": 0.1}), "data.aligned_fraction"),
    (raw(data={"dose": 0.5, "insertion": "midtraining"}), "data.dose"),  # needs aligned_fraction 5
])
def test_checks_above_the_ground_floor_name_the_key(config, key):
    parsing.parse_config_dict(config)  # the ground floor alone has nothing against it
    with pytest.raises(ConfigError) as e:
        plan.config_from_dict(config)
    assert e.value.key == key, str(e.value)


def test_the_dose_is_resolved_by_the_plan_not_by_parsing():
    config = raw([{**PRE, "intervention": True, "window": [0.5, 1.0]}], data={"dose": 0.01})
    assert parsing.parse_config_dict(config).data.aligned_fraction == 0.0
    resolved = plan.config_from_dict(config)
    assert resolved.data.aligned_fraction == pytest.approx(0.02)  # 0.01 of 10 steps in 5 window steps
    assert plan.config_from_dict(resolved.to_dict()) == resolved  # a stored config.json reads back equal


def test_run_plan_holds_the_resolved_stages():
    run = plan.resolve(parsing.parse_config_dict(raw([PRE, RL])))
    assert [(st.name, st.step0, st.step1, st.post) for st in run.stages] == [
        ("pre", 0, 10, False), ("rl", 10, 13, True)]
    assert run.total_steps == 13
    assert run.vocab_size == build_tokenizer(run.config).vocab_size > 0
    sized = plan.resolve(parsing.parse_config_dict(raw([PRE], model={"vocab_size": 300})))
    assert sized.vocab_size == 300
