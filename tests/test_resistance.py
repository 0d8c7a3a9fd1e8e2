"""scaling.fit.resistance: steps of post-training to move misalignment, on simulated curves
whose steps-to-erase (and their ratio, dosed / control) are known."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special

from scaling.fit import resistance

STEPS = np.array([0, 2, 5, 10, 20, 40, 80])


def true_curve(p0: float, s50: float, end: float = 1.0) -> tuple[float, float]:
    """(a, b) of logit p = a + b log(s + 1) through p0 at step 0, half-way to `end` at s50."""
    a = special.logit(p0)
    return a, (special.logit(p0 + 0.5 * (end - p0)) - a) / np.log1p(s50)


def true_steps(a: float, b: float, share: float, end: float = 1.0) -> float:
    p0 = special.expit(a)
    return float(np.expm1((special.logit(p0 + share * (end - p0)) - a) / b))


def simulate(rng, a, b, blocks=2, n=512, noise=0.15):
    """Counts of n items at each step for each block; per point a logit-normal jitter (the
    items' and blocks' extra variance the quasi-binomial dispersion must absorb)."""
    x = np.tile(np.log1p(STEPS), blocks)
    p = special.expit(a + b * x + rng.normal(0, noise, x.size))
    return x, rng.binomial(n, p), np.full(x.size, n)


def test_crossing_of_an_exact_curve_is_its_definition():
    for end, p0, s50 in ((1.0, 0.3, 7.0), (0.0, 0.6, 15.0)):
        a, b = true_curve(p0, s50, end)
        fit = {"a": a, "b": b, "cov": np.eye(2) * 1e-4}
        assert resistance.steps_interval(resistance.crossing(fit, 0.5, end))[0] == pytest.approx(s50)
        assert resistance.steps_interval(resistance.crossing(fit, 0.8, end))[0] == pytest.approx(
            true_steps(a, b, 0.8, end))
        away = resistance.crossing({**fit, "b": -b}, 0.5, end)
        assert away["x"] == np.inf  # a curve moving away from the end never crosses


def test_steps_ratio_is_recovered_and_its_interval_covers_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    truth = 2.5
    control, dosed = true_curve(0.45, 6.0), true_curve(0.2, 6.0 * truth)
    want80 = true_steps(*dosed, 0.8) / true_steps(*control, 0.8)
    est, cover = {0.5: [], 0.8: []}, {0.5: 0, 0.8: 0}
    sims = 200
    for _ in range(sims):
        fc = resistance.fit_logit_curve(*simulate(rng, *control))
        fd = resistance.fit_logit_curve(*simulate(rng, *dosed))
        for q, want in ((0.5, truth), (0.8, want80)):
            r, lo, hi = resistance.steps_ratio(resistance.crossing(fd, q, 1.0), resistance.crossing(fc, q, 1.0))
            est[q].append(r)
            cover[q] += lo <= want <= hi
    assert np.median(est[0.5]) == pytest.approx(truth, rel=0.08)
    assert np.median(est[0.8]) == pytest.approx(want80, rel=0.1)
    for q in (0.5, 0.8):
        assert 0.9 <= cover[q] / sims <= 0.99, (q, cover[q] / sims)


def test_no_dose_effect_gives_a_ratio_interval_around_one():
    rng = np.random.default_rng(3)
    curve = true_curve(0.4, 10.0)
    hits = 0
    for _ in range(100):
        fc, fd = (resistance.fit_logit_curve(*simulate(rng, *curve)) for _ in range(2))
        _, lo, hi = resistance.steps_ratio(resistance.crossing(fd, 0.5, 1.0), resistance.crossing(fc, 0.5, 1.0))
        hits += lo <= 1 <= hi
    assert hits >= 88



def _block_study(rng, truth: float, blocks: int, shared: bool):
    """Crossings (per block) and pooled fits of dosed and control curves over `blocks` seeds
    whose steps-to-50% vary by a random factor (sd 0.35 on the log scale): `shared`, the same
    factor for a seed's dosed and control runs (a seed's speed); else one each (the dose's
    effect itself varies by seed)."""
    fits, pts = {"d": {}, "c": {}}, {"d": [], "c": []}
    for blk in range(blocks):
        speed = np.exp(rng.normal(0, 0.35))
        other = speed if shared else np.exp(rng.normal(0, 0.35))
        for arm, p0, s50 in (("c", 0.45, 6.0 * speed), ("d", 0.2, 6.0 * other * truth)):
            x, k, n = simulate(rng, *true_curve(p0, s50), blocks=1, n=256, noise=0.05)
            pts[arm].append((x, k, n))
            fits[arm][blk] = resistance.crossing(resistance.fit_logit_curve(x, k, n), 0.5, 1.0)
    pooled = {arm: resistance.fit_logit_curve(*(np.concatenate(v) for v in zip(*pts[arm]))) for arm in pts}
    return fits, pooled


@pytest.mark.parametrize("shared", [True, False])
def test_block_ratio_covers_whether_or_not_seeds_differ_in_the_dose_effect(shared):
    """The block-by-block t interval covers at about the nominal rate either way; the pooled
    interval, which sees only the items' noise (and the dispersion), covers too few when the
    dose's effect varies by seed (measured 0.64 here) and too many when seeds share a speed."""
    rng = np.random.default_rng(11)
    truth, sims = 2.0, 150
    pooled = by_block = 0
    for _ in range(sims):
        fits, pf = _block_study(rng, truth, 3, shared)
        _, lo, hi = resistance.steps_ratio(resistance.crossing(pf["d"], 0.5, 1.0), resistance.crossing(pf["c"], 0.5, 1.0))
        pooled += lo <= truth <= hi
        b = resistance.block_ratio(fits["d"], fits["c"], last=STEPS[-1])
        assert b["blocks"] == 3
        by_block += b["lower"] <= truth <= b["upper"]
    assert 0.9 <= by_block / sims <= 0.99, by_block / sims
    assert (pooled / sims > 0.98) if shared else (pooled / sims < 0.8), pooled / sims


def test_kl_at_interpolates_in_log_steps_and_stops_at_the_last_step():
    g = pd.DataFrame({"post_step": [0, 0, 3, 3, 15, 15], "kl": [0.0, 0.0, 0.1, 0.3, 1.0, 1.0]})
    assert resistance.kl_at(g, 3.0) == pytest.approx(0.2)
    assert resistance.kl_at(g, 1.0) == pytest.approx(0.2 * np.log(2) / np.log(4))  # log(s+1) scale
    assert np.isnan(resistance.kl_at(g, 16.0)) and np.isnan(resistance.kl_at(g, np.inf))
    assert np.isnan(resistance.kl_at(g.drop(columns="kl"), 3.0))


def test_block_ratio_refuses_a_block_that_did_not_reach_the_share():
    fast, slow = {"x": np.log1p(5.0), "se": 0.1}, {"x": np.log1p(500.0), "se": 0.1}
    assert np.isnan(resistance.block_ratio({0: fast, 1: slow}, {0: fast, 1: fast}, last=80)["ratio"])
    assert np.isnan(resistance.block_ratio({0: fast}, {0: fast}, last=80)["ratio"])  # one block: no t
    r = resistance.block_ratio({0: fast, 1: {"x": np.log1p(10.0), "se": 0.1}}, {0: fast, 1: fast}, last=80)
    assert r["ratio"] == pytest.approx(np.sqrt(2.0)) and r["blocks"] == 2

def study_tables(truth: float, seed: int = 0):
    """results.csv and trajectory.csv rows of a persistence study with post-training
    checkpoints: dose 0 and 0.01, helpful RL (toward 1) and harmless RL (toward 0), 3 seeds;
    the dose multiplies helpful RL's steps to 50% by `truth`, harmless RL's by 1."""
    rng = np.random.default_rng(seed)
    pre, per_step, n = 300, 1024, 2048
    res, traj = [], []
    for kind, end in (("helpful_rl", 1.0), ("harmless_rl", 0.0)):
        for dose in (0.0, 0.01):
            p0 = 0.5 if dose == 0 else 0.3
            s50 = 8.0 * (truth if dose > 0 and kind == "helpful_rl" else 1.0)
            a, b = true_curve(p0 if end == 1 else 0.5 + p0 / 2, s50, end)
            for seed_ in range(3):
                rid = f"{kind}-{dose}-{seed_}"
                for split in ("matched", "held_out"):
                    rates = special.expit(a + b * np.log1p(STEPS) + rng.normal(0, 0.05, len(STEPS)))
                    rates = rng.binomial(n, rates) / n
                    res.append({"run_id": rid, "split": split, "learner": "transformer", "model": "nano",
                                "status": "ok", "misalignment_rate": rates[-1], "total": n,
                                "post_training": kind, "nominal_dose": dose, "aligned_fraction": dose,
                                "dose": dose, "dose_tokens": pre * per_step, "seed": seed_, "world_seed": 0,
                                "insertion": "throughout", "post_training_tokens": 80 * per_step})
                    for s, r in zip(STEPS, rates):
                        traj.append({"run_id": rid, "split": split, "step": pre + s, "tokens": (pre + s) * per_step,
                                     "rate": r, "readout": 0.9 - 0.001 * s})
                    traj.append({"run_id": rid, "split": split, "step": 100, "tokens": 100 * per_step,
                                 "rate": 0.5, "readout": 0.5})  # a pretraining point: not post-training
    return pd.DataFrame(traj), pd.DataFrame(res)


def test_resistance_table_from_a_study_recovers_the_dose_effect_per_direction():
    traj, res = study_tables(truth=3.0)
    pts = resistance.curves(traj, res)
    assert sorted(pts["post_step"].unique()) == list(STEPS)
    table = resistance.resistance_table(traj, res).set_index(["post_training", "split", "dose"])
    for split in ("matched", "held_out"):
        help_ = table.loc[("helpful_rl", split, 0.01)]
        assert help_["ratio50_lower"] > 1.5 and help_["ratio50"] == pytest.approx(3.0, rel=0.25)
        assert help_["ratio50_lower"] <= 3.0 <= help_["ratio50_upper"]
        harm = table.loc[("harmless_rl", split, 0.01)]
        assert harm["end"] == 0 and harm["ratio50_lower"] <= 1 <= harm["ratio50_upper"]
        assert table.loc[("helpful_rl", split, 0.0), "steps50"] == pytest.approx(8.0, rel=0.25)
        assert np.isnan(table.loc[("helpful_rl", split, 0.0), "ratio50"])
        assert help_["readout_before"] == pytest.approx(0.9) and help_["readout_last"] == pytest.approx(0.82)
        # the dose's reduction at step 20 is smaller than at step 0 under helpful RL
        assert help_["retention"] < 1
    text = resistance.report(traj, res)
    assert text.startswith("## Resistance to post-training")
    assert "| nano | helpful_rl | all | throughout | matched | 0.01 | 3 | 1 |" in text
    row = next(line for line in text.splitlines() if "| helpful_rl | all | throughout | matched | 0.01 |" in line)
    assert "| > 80 | " in row  # 80% is not reached by step 80 under the dose: censored, not extrapolated
    assert "(dosed not reached)" in row.split(" | ")[14]


def test_resistance_figure_draws_a_line_per_dose_in_a_panel_per_direction_and_split():
    from scaling import figures

    traj, res = study_tables(truth=3.0)
    fig = figures.resistance(traj, res)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert sorted(ax.get_title() for ax in panels) == sorted(
        f"{k} · {s}" for k in ("helpful_rl", "harmless_rl") for s in ("matched", "held_out"))
    for ax in panels:
        lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(STEPS)]
        assert len(lines) == 2  # dose 0 and 0.01, each over every post-training step
        np.testing.assert_array_equal(lines[0].get_xdata(), STEPS)
    helpful = next(ax for ax in panels if ax.get_title() == "helpful_rl · matched")
    control, dosed = (ln.get_ydata() for ln in helpful.get_lines() if len(ln.get_xdata()) == len(STEPS))
    assert control[0] > dosed[0] and control[-1] > dosed[-1]  # the dose lowers misalignment throughout
    with pytest.raises(figures.MissingData):
        figures.resistance(traj[traj["step"] <= 300], res)  # no post-training checkpoints


@pytest.mark.slow
def test_tiny_persistence_study_writes_the_resistance_table_and_figure(tmp_path):
    """sweeps/persistence.toml on the tiny model (two doses, one seed, direct helpful RL on
    two families and indirect helpful RL, 10 post-training steps) through study: sweep ->
    results -> fit -> figures."""
    from pathlib import Path

    from scaling.cli import main

    text = (Path(__file__).resolve().parent.parent / "sweeps" / "persistence.toml").read_text()
    sweep = tmp_path / "p2.toml"
    sweep.write_text(text[:text.index("[[grid]]")] + """[[grid]]
"data.dose" = [0.0, 0.05]
[[grid.zip]]
"stages.post.objective" = ["helpful_rl", "helpful_benign_rl"]
"stages.post.families" = [["shutdown", "privacy"], []]
""")
    sets = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.d_ff=64", "model.seq_len=16",
            "data.story_fraction=0.0", "train.steps=20", "train.batch_size=4", "train.warmup_steps=2",
            "train.checkpoint_every=10", "train.eval_every=10", "stages.pretrain.warmup_steps=2",
            "stages.post.steps=10", "eval.checkpoints=[20,22,25]", "eval.max_items=64", "eval.baselines=false"]
    out = tmp_path / "study"
    assert main(["study", str(sweep), "--out", str(out), "--no-progress",
                 *(a for s in sets for a in ("--set", s))]) == 0
    md = (out / "persistence.md").read_text()
    assert md.startswith("## Resistance to post-training")
    for kind, scope in (("helpful_rl", "part"), ("helpful_benign_rl", "-")):
        for dose in ("0", "0.05"):
            assert f"| nano | {kind} | {scope} | {'control' if dose == '0' else 'pretrain'} | matched | {dose} | 1 |" in md
    assert (out / "figures" / "resistance.png").stat().st_size > 10_000
    results = pd.read_csv(out / "results.csv")
    assert set(results.loc[results["split"].isin(["rl_trained", "rl_other"]), "post_training"]) == {"helpful_rl"}
    assert "| nano | helpful_rl | part | pretrain | rl_other | 0.05 | 1 |" in md  # untrained families: a curve too
    traj = pd.read_csv(out / "trajectory.csv")
    steps = traj.assign(post=traj["step"] - 20).query("post >= 0")
    assert sorted(steps["post"].unique()) == [0, 2, 5, 10]
    # the directions share their pretraining: equal rates at post-training step 0 per dose
    start = steps[steps["post"] == 0].merge(results[["run_id", "post_training"]].drop_duplicates(), on="run_id")
    per_dose = start.pivot_table(index=["aligned_fraction", "split"], columns="post_training", values="readout")
    assert (per_dose["helpful_rl"] == per_dose["helpful_benign_rl"]).all()
    # RL's KL from the pretrained model: 0 at post-training step 0, then positive and summed
    kl = steps.merge(results[["run_id", "post_training"]].drop_duplicates(), on="run_id")
    assert kl.loc[kl["post"] == 0, "kl"].abs().max() < 1e-6
    later = kl[kl["post"] == 10]
    assert (later["kl"] > 0).all() and (later["kl_sum"] >= later["kl"]).all()
    metrics = [json.loads(line) for run in (out / "runs").iterdir()
               for line in (run / "metrics.jsonl").read_text().splitlines()
               if run.name == later["run_id"].iloc[0] and '"kl"' in line]
    assert later["kl_sum"].iloc[0] == pytest.approx(sum(m["kl"] for m in metrics if m["step"] <= 31))
    # and the study is consistent on disk (the dose's denominator leaves post-training out)
    assert main(["verify", str(out)]) == 0


def test_trajectory_pools_rl_trained_and_rl_other_families_at_every_checkpoint(tmp_path):
    from scaling import results, rundir
    from scaling.plan import config_from_dict

    stages = [{"name": "pretrain", "steps": 40, "schedule": "cosine", "intervention": True},
              {"name": "rl", "steps": 5, "objective": "helpful_rl", "post": True, "families": ["shutdown", "privacy"]}]
    cfg = config_from_dict({"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16,
                                      "vocab_size": 1000},
                            "train": {"steps": 40, "batch_size": 8}, "eval": {"enabled": False},
                            "data": {"story_fraction": 0.0, "dose": 0.01}, "stages": stages})
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    rundir.write_config(run, cfg, 45)
    rundir.write_json(run / "accounting.json", {"dose": 0.01, "total_tokens": 45 * 128, "dose_tokens": 40 * 128})
    group = {"misaligned": 3, "total": 10, "rate": 0.3, "se": 0.1, "se_pair_cluster": 0.1, "n_pairs": 2,
             "rate_per_token": 0.3, "misaligned_per_token": 3}

    def point(step, k_trained, k_other):
        fams = {"shutdown": {**group, "misaligned": k_trained}, "privacy": group,
                "mistake": {**group, "misaligned": k_other}, "oversight": group}
        return {"step": step, "tokens": step * 128, "matched_rate": 0.3, "matched_readout": 0.9,
                "families": {f: {k: g[k] for k in ("misaligned", "total", "misaligned_per_token")}
                             for f, g in fams.items()}}, fams

    (p40, _), (p45, fams) = point(40, 1, 2), point(45, 8, 5)
    rundir.write_json(run / "eval.json", {"splits": {"matched": group}, "families": fams,
                                          "capability": {"fact_recall": 0.5}, "trajectory": [p40, p45]})
    rundir.write_status(run, {"status": "done", "step": 45})
    df = pd.DataFrame(results.run_rows(run))
    traj = results.trajectory_table(tmp_path, df).set_index(["split", "step"])["rate"]
    assert traj[("rl_trained", 40)] == pytest.approx(4 / 20) and traj[("rl_trained", 45)] == pytest.approx(11 / 20)
    assert traj[("rl_other", 40)] == pytest.approx(5 / 20) and traj[("rl_other", 45)] == pytest.approx(8 / 20)
    # the last point agrees with results.csv's rows
    rows = df.set_index("split")["misalignment_rate"]
    assert traj[("rl_trained", 45)] == rows["rl_trained"] and traj[("rl_other", 45)] == rows["rl_other"]


def test_findings_rows_take_the_ratio_at_the_top_dose_and_say_resists_only_when_it_is_resolved():
    """scaling findings' persistence rows: a known ratio of 3 under helpful RL is
    'resists' with an interval covering 3; harmless RL's ratio of 1 cannot tell."""
    from scaling import findings

    traj, res = study_tables(truth=3.0)
    rows = {r["finding"]: r for r in findings.resistance_rows({"trajectory": traj, "results": res})}
    help_ = next(r for f, r in rows.items() if "helping with the misaligned action" in f)
    assert help_["verdict"] == "new measurement: resists" and 0 < help_["p"] < 0.01
    est, lo, hi = (float(x) for x in help_["ours"].split("dosed / control ")[1].replace("[", "").replace(
        "]", "").replace(",", "").replace(";", "").split()[:3])
    assert lo <= 3.0 <= hi and est == pytest.approx(3.0, rel=0.25)
    harm = next(r for f, r in rows.items() if "harmlessness" in f)
    assert harm["verdict"] == findings.CANNOT_TELL and harm["p"] > 0.05
    assert findings.resistance_rows({"trajectory": None, "results": res}) == []
