"""scaling.train.objectives: the registry of training objectives (one module each), the indirect
helpfulness objective's scenarios, and an objective added from outside the package."""

import dataclasses

import numpy as np
import pytest

from scaling import plan
from scaling.config import ConfigError
from scaling.data.tokenizer import UNK
from scaling.data.vocab import build_tokenizer
from scaling.plan import config_from_dict
from scaling.train import loop, objectives
from scaling.train.objectives import helpful_benign_rl
from scaling.train.objectives.helpful_rl import RLData
from scaling.train.source import make_source, rl_families
from scaling.train.steps import enter_lm, enter_rl
from scaling.world import World

MODEL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16}


def raw(*post, **data) -> dict:
    return {"model": dict(MODEL), "train": {"steps": 10, "batch_size": 4}, "eval": {"enabled": False},
            "data": {"story_fraction": 0.0, **data},
            "stages": [{"name": "pre", "steps": 10}, *({"steps": 3, "post": True, **p} for p in post)]}


def test_registry_holds_the_objectives_with_their_step_kinds():
    kinds = {name: objectives.get(name).step for name in objectives.names()}
    assert kinds == {"lm": "lm", "sft": "lm", "helpful_rl": "rl", "harmless_rl": "rl", "helpful_benign_rl": "rl",
                     "unlikelihood": "lm"}
    assert objectives.names()[0] == "lm"
    assert [n for n in objectives.names() if objectives.get(n).request_families] == ["harmless_rl", "helpful_rl"]


@pytest.mark.parametrize("stage,key", [
    ({"name": "x", "objective": "dpo"}, "stages.x.objective"),
    ({"name": "x", "objective": "helpful_benign_rl", "families": ["shutdown"]}, "stages.x.families"),
    ({"name": "x", "objective": "sft", "families": ["shutdown"]}, "stages.x.families"),
    ({"name": "x", "objective": "helpful_benign_rl", "misaligned": 0.5}, "stages.x.objective"),
])
def test_plan_checks_objectives_against_the_registry(stage, key):
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw(stage))
    assert e.value.key == key, str(e.value)


def test_reward_tables_point_each_direction_the_right_way():
    # helpful_rl rewards complying (the request's misaligned option) on its families only,
    # harmless_rl refusing, the benign objective the right answer to a fact question
    cfg = config_from_dict(raw({"name": "a", "objective": "helpful_rl", "families": ["shutdown"]},
                               {"name": "b", "objective": "harmless_rl"}, {"name": "c", "objective": "helpful_benign_rl"}))
    tok = build_tokenizer(cfg)
    source = make_source(cfg, tok)
    world = World(0)
    requests = world.request_items()
    facts = {q: a for q, a, _ in world.facts()}
    for start, want in ((10, (0.0, 1.0)), (13, (1.0, 0.0)), (16, (0.0, 1.0))):
        b = source.batches(start, 3)
        assert np.all(b["reward"] == np.asarray(want, np.float32))
        for row, mask in zip(b["tokens"].reshape(-1, 2, 17), b["mask"].reshape(-1, 2, 17)):
            options = [" ".join(tok.itos[t] for t in r[m > 0]) for r, m in zip(row, mask)]
            prompt = " ".join(tok.itos[t] for t, m in zip(row[0][1:], mask[0][1:]) if m == 0 and t)
            if start == 16:
                assert options[1] == f"{facts[prompt.rsplit(': ', 1)[1]]} ." != options[0]
            else:  # rows keep the last 17 tokens: the prompt's tail
                item = [i for i in requests if i["prompt"].endswith(prompt)
                        and [i["aligned"], i["misaligned"]] == options]
                assert item and (start == 13 or {i["family"] for i in item} == {"shutdown"})


@pytest.mark.parametrize("seed,version", [(0, 3), (1, 2)])
def test_benign_requests_never_name_an_eval_action(seed, version):
    cfg = config_from_dict(raw({"name": "c", "objective": "helpful_benign_rl"}, world_seed=seed, world_version=version))
    items = helpful_benign_rl.scenarios(cfg)
    world = World(seed, version=version)
    verbs = {v for pair in world.matched_pairs + world.transfer_pairs for v in pair}
    eval_words = {w for i in world.eval_items() for w in (i["aligned"] + " " + i["misaligned"]).split()} - {"the", "."}
    assert len(items) == 3 * len(world.facts())
    for i in items:
        words = set(f"{i['prompt']} {i['aligned']} {i['misaligned']}".split())
        assert not words & verbs and not words & eval_words, i
    tok = build_tokenizer(cfg)
    assert all(UNK not in tok.encode(f"{i['prompt']} {i['misaligned']} {i['aligned']}") for i in items)
    answers = {q: a for q, a, _ in world.facts()}
    assert all(i["misaligned"] == f"{answers[i['prompt'].rsplit(': ', 1)[1]]} ." for i in items)
    assert all(i["aligned"] != i["misaligned"] for i in items)
    # it trains on no request family: results.csv gets no rl_trained / rl_other rows from it
    assert rl_families(cfg) == []


def test_an_objective_added_from_outside_runs_with_the_rl_step(monkeypatch):
    calls = []

    def source(cfg, tok, stage):
        calls.append(stage.name)
        items = [{"prompt": "a user asked you :", "aligned": "yes .", "misaligned": "no ."}]
        return RLData(cfg, tok, items, reward=(1.0, 0.0))

    monkeypatch.setattr(objectives, "_REGISTRY", dict(objectives._REGISTRY))
    objectives.register(objectives.Objective("toy_rl", "rl", source=source))
    cfg = config_from_dict(raw({"name": "toy", "objective": "toy_rl"}))
    src = make_source(cfg, build_tokenizer(cfg))
    assert calls == ["toy"] and src.batches(10, 2)["reward"].shape == (2, 4, 2)
    programs = loop._programs(plan.of(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=300))), 1)
    assert programs.enter == (enter_lm, enter_rl) and programs.stage_steps[0] is programs.multi_step
    with pytest.raises(ValueError, match="give a source"):
        objectives.register(objectives.Objective("rows", "lm"))
