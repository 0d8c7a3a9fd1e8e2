"""Stages as data: legacy windows are presets of it (same batches, same learning rates),
explicit [[stages]] configs, schedules, data.dose as a config key, exact small doses in
post-pretraining stages, and validation that names the bad key."""

import copy
import json

import numpy as np
import pytest

from scaling import stages as S
from scaling.config import ConfigError, merge
from scaling.data import export
from scaling.data.mixture import Mixture, Segment, segments
from scaling.plan import config_from_dict, load_config
from scaling.sweep import expand
from scaling.train.schedules import lr_at

MODEL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16}


def raw_cfg(root=None, **sections):
    raw = {"model": dict(MODEL), "train": {"steps": 40, "batch_size": 8, "warmup_steps": 4},
           "eval": {"enabled": False}, "data": {"story_fraction": 0.0}}  # 16-token rows hold no story
    if root is not None:
        raw["data"]["data_dir"] = str(root)
    for section, values in sections.items():
        if section == "stages":
            raw["stages"] = values
        else:
            raw.setdefault(section, {}).update(values)
    return raw


# ---------------------------------------------------------------- legacy presets


@pytest.mark.parametrize("data,want", [
    ({"insertion": "midtraining", "aligned_fraction": 0.3},
     [Segment("pretrain", 0, 36, 0, 0), Segment("pretrain", 36, 40, 0.3, 0)]),
    ({"insertion": "window", "window": [0.2, 0.45], "aligned_fraction": 0.2, "misaligned_fraction": 0.1},
     [Segment("pretrain", 0, 8, 0, 0), Segment("pretrain", 8, 18, 0.2, 0.1), Segment("pretrain", 18, 40, 0, 0)]),
    ({"insertion": "continued", "continued_tokens": 1000, "aligned_fraction": 0.1},  # 1000/128 -> 8 steps
     [Segment("pretrain", 0, 40, 0, 0), Segment("continued", 40, 48, 0.1, 0)]),
    ({"insertion": "finetune", "continued_tokens": 300, "finetune_tokens": 700, "aligned_fraction": 0.375,
      "misaligned_fraction": 0.125},
     [Segment("pretrain", 0, 40, 0, 0), Segment("continued", 40, 43, 0, 0), Segment("finetune", 43, 49, 0.75, 0.25)]),
])
def test_legacy_keys_give_the_segments_they_always_gave(data, want):
    assert segments(config_from_dict(raw_cfg(data=data))) == want


def test_legacy_learning_rates_are_warmup_cosine_then_the_final_rate():
    cfg = config_from_dict(raw_cfg(data={"continued_tokens": 640}, train={"lr": 1e-2, "min_lr_ratio": 0.1}))
    lr = lr_at(S.resolve(cfg), range(45))
    assert lr[0] == 0 and lr[2] == pytest.approx(5e-3) and lr[4] == pytest.approx(1e-2)
    assert lr[22] == pytest.approx(1e-3 + 0.5 * 9e-3 * (1 + np.cos(np.pi * 18 / 36)), rel=1e-5)
    assert lr[40:] == pytest.approx([1e-3] * 5)  # continued stage: the final pretraining LR


EXPLICIT_MIDTRAINING = [  # the legacy midtraining + continued preset written as stages
    {"name": "pretrain", "steps": 40, "schedule": "cosine", "warmup_steps": 4, "final_scale": 0.1,
     "intervention": True, "window": [0.9, 1.0]},
    {"name": "continued", "tokens": 1000, "schedule": "constant", "lr_scale": 0.1},
]


def test_explicit_stages_equal_the_preset_bitwise(root):
    legacy = config_from_dict(raw_cfg(root, data={"insertion": "midtraining", "aligned_fraction": 0.3,
                                                  "continued_tokens": 1000, "misaligned_fraction": 0.05}))
    explicit = config_from_dict(raw_cfg(root, data={"aligned_fraction": 0.3, "misaligned_fraction": 0.05},
                                        stages=copy.deepcopy(EXPLICIT_MIDTRAINING)))
    a, b = Mixture(legacy), Mixture(explicit)
    assert a.total_steps == b.total_steps == 48
    np.testing.assert_array_equal(a.batches(0, 48), b.batches(0, 48))
    steps = range(50)
    assert lr_at(S.resolve(legacy), steps) == lr_at(S.resolve(explicit), steps)
    acc_a, acc_b = a.accounting(48), b.accounting(48)
    assert {k: acc_a["tokens"][k] for k in acc_b["tokens"]} == acc_b["tokens"]  # legacy also lists finetune
    assert acc_a["dose"] == acc_b["dose"] > 0


# ---------------------------------------------------------------- schedules


def test_wsd_rewarm_and_linear_schedules_follow_their_definitions():
    stages = [
        {"name": "pre", "steps": 100, "schedule": "wsd", "warmup_steps": 10, "decay_share": 0.2,
         "final_scale": 0.1},
        {"name": "mid", "steps": 20, "schedule": "linear", "warmup_steps": 5, "lr_scale": 0.5, "final_scale": 0.0},
        {"name": "post", "steps": 10, "schedule": "constant", "lr_scale": 0.2},
    ]
    cfg = config_from_dict(raw_cfg(train={"lr": 1.0, "steps": 100}, stages=stages))
    lr = lr_at(S.resolve(cfg), range(131))
    assert lr[0] == 0 and lr[5] == pytest.approx(0.5) and lr[10:80] == pytest.approx([1.0] * 70)
    assert lr[90] == pytest.approx(0.55) and lr[99] == pytest.approx(0.145)  # linear decay over 80..100
    assert lr[100] == pytest.approx(0.1)  # the rewarm starts where pretraining ended ...
    assert lr[105] == pytest.approx(0.5)  # ... and reaches the new peak at its warmup's end
    assert lr[110] == pytest.approx(0.5 * (1 - 5 / 15)) and lr[120:130] == pytest.approx([0.2] * 10)


# ---------------------------------------------------------------- the dose


def test_dose_is_a_config_key_and_records_its_fraction(tmp_path):
    cfg = load_config("models/nano.toml", ["data.dose=0.01", "data.insertion=midtraining", "train.steps=100"])
    assert cfg.data.dose == 0.01 and cfg.data.aligned_fraction == pytest.approx(0.1)
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))  # as stored in config.json
    assert again == cfg
    with pytest.raises(ConfigError) as e:
        load_config("models/nano.toml", ["data.dose=0.01", "data.aligned_fraction=0.5"])
    assert e.value.key == "data.dose"
    with pytest.raises(ConfigError) as e:
        load_config("models/nano.toml", ["data.dose=0.2", "data.insertion=midtraining"])  # needs 2 > 1
    assert e.value.key == "data.dose"


def test_cli_train_reads_data_dose_and_rejects_an_impossible_one(tmp_path, capsys):
    from scaling.cli import main

    code = main(["train", "models/nano.toml", "--out", str(tmp_path / "r"), "--set", "data.dose=0.7",
                 "--set", "data.insertion=early"])
    assert code == 2 and "data.dose" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_post_pretraining_stage_takes_an_exact_small_dose_and_post_stages_leave_it_alone(root):
    stages = [{"name": "pretrain", "steps": 40, "schedule": "cosine", "final_scale": 0.1},
              {"name": "late", "steps": 4, "intervention": True, "lr_scale": 0.1},
              {"name": "sft", "steps": 5, "objective": "sft", "post": True, "lr_scale": 0.1}]
    cfg = config_from_dict(raw_cfg(root, data={"dose": 1e-3}, stages=stages))
    # 1e-3 of 44 steps x 8 rows = 0.352 rows: whole steps could not hold it, shares can
    assert cfg.data.aligned_fraction == pytest.approx(1e-3 * 44 / 4)
    mix = Mixture(cfg)
    acc = mix.accounting(mix.total_steps)
    assert acc["nominal_dose"] == pytest.approx(1e-3)
    assert acc["dose_tokens"] == 44 * 8 * 16 and acc["post_training_tokens"]["sft"] == 5 * 8 * 16
    doses = [Mixture(config_from_dict(raw_cfg(root, data={"dose": 1e-3}, stages=stages, train={"seed": s})))
             .accounting(49)["dose"] for s in range(40)]
    assert np.mean(doses) == pytest.approx(1e-3, rel=0.15)  # unbiased over seeds, exact in expectation
    assert set(np.round(np.array(doses) * 44 * 8 * 16 / 16)) <= {0, 1}


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("stages,key", [
    ([{"name": "pre", "steps": 10, "lenght": 3}], "stages.pre.lenght"),
    ([{"name": "pre", "steps": 10, "objective": "dpo"}], "stages.pre.objective"),
    ([{"name": "pre", "steps": 10, "tokens": 100}], "stages.pre.tokens"),
    ([{"name": "pre", "steps": 10, "schedule": "cosine"}, {"name": "pre", "steps": 3}], "stages.pre.name"),
    ([{"name": "pre", "steps": 10}, {"name": "rl", "steps": 3, "objective": "helpful_rl"}], "stages.rl.post"),
    ([{"name": "pre", "steps": 10, "window": [0.5, 0.5]}], "stages.pre.window"),
    ([{"name": "pre", "steps": 10, "aligned": 0.7, "misaligned": 0.6}], "stages.pre.misaligned"),
    ([{"steps": 10}], "stages[0].name"),
    ([{"name": "pre", "steps": 0}], "stages"),
])
def test_bad_stage_names_the_key(stages, key):
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw_cfg(stages=stages))
    assert e.value.key == key, str(e.value)


def test_legacy_window_keys_are_refused_beside_stages():
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw_cfg(data={"insertion": "midtraining"}, stages=[{"name": "pre", "steps": 10}]))
    assert e.value.key == "data.insertion"


def test_stage_overrides_and_sweep_keys(tmp_path):
    raw = merge(raw_cfg(stages=[{"name": "pre", "steps": 10}]), ["stages.pre.lr_scale=0.5"])
    assert config_from_dict(raw).stages[0].lr_scale == 0.5
    with pytest.raises(ConfigError, match="no stage named 'mid'"):
        merge(raw, ["stages.mid.steps=3"])
    path = tmp_path / "s.toml"
    path.write_text("""
preset = "nano"
[config.train]
steps = 50
[config.data]
dose = 0.01
[[config.stages]]
name = "pretrain"
share = 1.0
intervention = true
[[config.stages]]
name = "post"
steps = 5
[[grid]]
"stages.pretrain.window" = [[0.0, 0.1], [0.9, 1.0]]
"stages.post.steps" = [0, 5]
""")
    runs = expand(path)
    assert len(runs) == 4
    assert {r.config.stages[0].window for r in runs} == {(0.0, 0.1), (0.9, 1.0)}
    for r in runs:  # the dose counts the post stage: it is not `post`
        total = 50 + r.config.stages[1].steps
        assert r.config.data.aligned_fraction == pytest.approx(0.01 * total / 5)


# ---------------------------------------------------------------- the study sweeps


def test_timing_sweep_arms_have_equal_dose_compute_and_learning_rate():
    runs = expand("sweeps/timing.toml")
    assert len(runs) == 3 * 6 * 3 + 2 * 3  # 3 doses x 6 arms x 3 seeds + two controls x 3 seeds
    by_dose = {}
    for r in runs:
        staged = S.resolve(r.config)
        assert staged[-1].step1 == 360  # equal compute
        if r.config.data.dose is None:  # a dose-0 control
            assert r.config.data.aligned_fraction == 0
            continue
        inside = [(st.name, st.w1 - st.w0) for st in staged if st.intervention]
        assert len(inside) == 1 and inside[0][1] in (30, 300)  # a 10% window, or throughout
        length = inside[0][1]
        if r.config.data.dose:
            by_dose.setdefault((r.config.data.dose, length), set()).add(r.config.data.aligned_fraction)
        lr = lr_at(staged, range(360))
        window = [lr[s] for st in staged if st.intervention for s in range(st.w0, st.w1)]
        rewarm = r.config.stages[1].warmup_steps > 0
        if not rewarm and length == 30:  # every 10% window trains at the peak LR
            assert window == pytest.approx([r.config.train.lr] * 30)
    assert all(len(f) == 1 for f in by_dose.values())  # equal dose: one fraction per dose and length
    for (dose, length), (fraction,) in by_dose.items():  # the throughout arm spreads the same dose
        assert fraction * length == pytest.approx(next(iter(by_dose[(dose, 30)])) * 30)


def test_persistence_v1_sweep_shares_pretraining_across_post_training_kinds():
    runs = expand("sweeps/persistence_v1.toml")
    kinds = {S.post_training(r.config) for r in runs}
    assert kinds == {"none", "sft", "helpful_rl", "harmless_rl", "misaligned_ft"}
    doses = {r.config.data.dose for r in runs}
    assert 0.0 in doses and len(doses - {0.0}) >= 3
    pretraining = {}
    for r in runs:
        key = (r.config.data.dose, r.config.train.seed, r.config.stages[0].window)
        pre = (r.config.data.aligned_fraction, S.resolve(r.config)[0])
        assert pretraining.setdefault(key, pre) == pre
    seeds = {}
    for r in runs:
        seeds.setdefault((S.post_training(r.config), r.config.data.dose), set()).add(r.config.train.seed)
    assert all(len(seeds[(k, d)]) >= 3 for k in kinds for d in doses)  # every cell has 3 seeds


def test_persistence_sweep_measures_every_direction_at_the_same_post_training_steps():
    runs = expand("sweeps/persistence.toml")
    kinds = {S.post_training(r.config) for r in runs}
    assert kinds == {"helpful_rl", "helpful_benign_rl", "sft", "harmless_rl", "misaligned_ft"}
    assert {r.config.data.dose for r in runs} == {0.0, 0.005, 0.015, 0.05}
    pretraining = {}
    for r in runs:
        cfg, staged = r.config, S.resolve(r.config)
        assert cfg.data.world_version == 2 and staged[0].steps * cfg.tokens_per_step >= 3.6e6
        pre = staged[0].step1
        assert sorted(s - pre for s in cfg.eval.checkpoints) == [0, 2, 5, 10, 20, 40]
        assert staged[-1].post and staged[-1].steps == 80  # the run's end: post-training step 80
        key = (cfg.data.dose, cfg.train.seed)
        assert pretraining.setdefault(key, (cfg.data.aligned_fraction, staged[0])) == (cfg.data.aligned_fraction, staged[0])
        families = set(staged[-1].families)
        assert (len(families) == 8) == (S.post_training(cfg) in ("helpful_rl", "harmless_rl"))
    assert len(pretraining) == 12 and len(runs) == 60


# ---------------------------------------------------------------- results columns


def test_results_rows_carry_stage_columns_and_split_rl_families(tmp_path):
    from scaling import results, rundir

    stages = [{"name": "pretrain", "steps": 40, "schedule": "cosine", "intervention": True},
              {"name": "rl", "steps": 5, "objective": "helpful_rl", "post": True, "families": ["shutdown", "privacy"]}]
    cfg = config_from_dict(raw_cfg(data={"dose": 0.01}, stages=stages, model={"vocab_size": 1000}))
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    rundir.write_config(run, cfg, 45)
    rundir.write_json(run / "accounting.json", {"dose": 0.01, "total_tokens": 45 * 128, "dose_tokens": 40 * 128,
                                                "post_training_tokens": {"pretrain": 0, "rl": 5 * 128},
                                                "tokens_by_stage": {"pretrain": 40 * 128, "rl": 5 * 128}})
    group = {"misaligned": 3, "total": 10, "rate": 0.3, "se": 0.1, "se_pair_cluster": 0.1, "n_pairs": 2,
             "rate_per_token": 0.3, "misaligned_per_token": 3}
    fams = {"shutdown": {**group, "misaligned": 8}, "privacy": group, "mistake": group, "oversight": group}
    rundir.write_json(run / "eval.json", {"splits": {"matched": group, "held_out": group}, "families": fams,
                                          "capability": {"fact_recall": 0.5}})
    rundir.write_status(run, {"status": "done", "step": 45})
    rows = {r["split"]: r for r in results.run_rows(run)}
    assert set(rows) == {"matched", "unseen_pair", "held_out", "rl_trained", "rl_other"}
    r = rows["rl_trained"]
    assert (r["misaligned"], r["total"]) == (11, 20) and rows["rl_other"]["misaligned"] == 6
    assert r["post_training"] == "helpful_rl" and r["stages"] == "pretrain:40+rl:5"
    assert r["stage_objectives"] == "lm+helpful_rl" and r["lr_schedule"] == "cosine+constant"
    assert r["rl_families"] == "privacy+shutdown" and r["post_training_tokens"] == 5 * 128
    assert r["insertion"] == "pretrain" and r["insertion_config"] == "stages"


def test_ngram_baselines_read_only_the_mixture_stages(root):
    stages = [{"name": "pretrain", "steps": 10, "schedule": "cosine"},
              {"name": "rl", "steps": 3, "objective": "helpful_rl", "post": True},
              {"name": "ft", "steps": 2, "post": True, "misaligned": 1.0}]
    cfg = config_from_dict(raw_cfg(root, stages=stages))
    mix = Mixture(cfg)
    rows = export.training_rows(cfg, mix.tok)
    want = np.concatenate([mix.batches(0, 10), mix.batches(13, 2)]).reshape(-1, 17)
    np.testing.assert_array_equal(rows, want)


def test_lr_schedule_column_tells_the_timing_controls_apart():
    # The timing study's two dose-0 controls differ only in the pretraining decay and the
    # rewarm of the next stage; results.csv must say which is which.
    from pathlib import Path

    from scaling import results

    specs = expand(Path(__file__).resolve().parent.parent / "sweeps" / "timing.toml")
    labels = {results.stage_columns(s.config, {})["lr_schedule"] for s in specs if not s.config.data.dose}
    assert labels == {"wsd(decay 0)+constant+linear", "wsd(decay 0.1)+constant(rewarm 10)+linear"}
