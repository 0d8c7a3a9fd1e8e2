"""scaling.reports.resistance: steps of post-training to move misalignment, on simulated curves
whose steps-to-erase (and their ratio, dosed / control) are known."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special

from scaling.reports import resistance

STEPS = np.array([0, 2, 5, 10, 20, 40, 80])


def true_curve(p0: float, s50: float, end: float = 1.0) -> tuple[float, float]:
    """(a, b) of logit p = a + b log(s + 1) through p0 at step 0, half-way to `end` at s50."""
    a = special.logit(p0)
    return a, (special.logit(p0 + 0.5 * (end - p0)) - a) / np.log1p(s50)


def true_steps(a: float, b: float, share: float, end: float = 1.0) -> float:
    p0 = special.expit(a)
    return float(np.expm1((special.logit(p0 + share * (end - p0)) - a) / b))


def flat_start(p0: float, s50: float, end: float = 1.0, h: float = 2.2) -> np.ndarray:
    """The rate at STEPS of a curve that stays near p0 for a few steps and then moves toward
    `end`, half way at s50 (log-logistic in steps: the committed control curves' shape, which
    the binomial GLM on log(step + 1) cannot follow)."""
    return p0 + (end - p0) * STEPS ** h / (STEPS ** h + s50 ** h)


def flat_start_steps(s50: float, share: float, h: float = 2.2) -> float:
    return s50 * (share / (1 - share)) ** (1 / h)


def test_pava_pools_violators_at_their_weighted_mean_and_keeps_monotone_data():
    np.testing.assert_allclose(resistance.pava([1, 3, 2, 4], [1, 1, 1, 1]), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(resistance.pava([1, 3, 2, 4], [1, 3, 1, 1]), [1, 2.75, 2.75, 4])
    np.testing.assert_allclose(resistance.pava([5, 4, 3], [1, 2, 1]), [4, 4, 4])
    rng = np.random.default_rng(0)
    y, w = rng.random(30), rng.random(30) + 0.1
    fit = resistance.pava(y, w)
    assert np.all(np.diff(fit) >= -1e-12) and np.sum(w * fit) == pytest.approx(np.sum(w * y))
    np.testing.assert_array_equal(resistance.pava(np.sort(y), w), np.sort(y))
    # the least-squares property: no monotone perturbation of the fit does better
    sse = np.sum(w * (y - fit) ** 2)
    for _ in range(200):
        other = np.sort(fit + rng.normal(0, 0.05, 30))
        assert np.sum(w * (y - other) ** 2) >= sse - 1e-12


def _curve(rates, items=256, steps=STEPS, end=1.0):
    n = np.full(len(steps), float(items))
    return resistance.monotone_curve(steps, np.round(np.asarray(rates) * n), n, end)


def test_monotone_crossing_interpolates_in_log_steps_and_says_when_it_does_not_cross():
    # a curve linear in log(step + 1) between measured steps: the crossing is exact
    x = np.log1p(STEPS)
    for end, p0 in ((1.0, 0.3), (0.0, 0.6)):
        rates = p0 + (end - p0) * x / x[-1]
        for q in (0.5, 0.8):
            c = resistance.monotone_crossing(_curve(rates, items=10_000, end=end), q, end)
            assert c["status"] == "reached"
            assert c["steps"] == pytest.approx(np.expm1(q * x[-1]), rel=1e-3)
    assert resistance.monotone_crossing(_curve([0.4, 0.42, 0.45, 0.5, 0.55, 0.6, 0.62]), 0.5, 1.0) == {
        "steps": np.inf, "status": "beyond"}  # moves toward 1, not half way by step 80
    assert resistance.monotone_crossing(_curve([0.4, 0.38, 0.35, 0.3, 0.3, 0.25, 0.2]), 0.5, 1.0)["status"] == "never"
    assert resistance.monotone_crossing(_curve([0.0] * 7, end=0.0), 0.5, 0.0)["status"] == "at end"
    # the fit passes through the observed start when the curve moves away from it at once
    curve = _curve([0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0], items=1000)
    assert curve["fitted"].iloc[0] == 0.5
    assert resistance.monotone_crossing(curve, 0.5, 1.0)["steps"] == pytest.approx(np.expm1(
        np.log1p(5) + (0.75 - 0.7) / 0.1 * (np.log1p(10) - np.log1p(5))))


def _arm(rng, p0, s50, speeds, end=1.0, items=256, start_sd=0.25):
    """Counts per block at STEPS: the block's half-way step s50 x its speed, its start jittered."""
    out = []
    for speed in speeds:
        p0_b = special.expit(special.logit(p0) + rng.normal(0, start_sd))
        out.append(rng.binomial(items, flat_start(p0_b, s50 * speed, end)))
    return out


def _crossings(arm, share, end=1.0, items=256):
    n = np.full(len(STEPS), float(items))
    pooled = resistance.monotone_crossing(
        resistance.monotone_curve(np.tile(STEPS, len(arm)), np.concatenate(arm), np.tile(n, len(arm)), end), share, end)
    blocks = {b: resistance.monotone_crossing(resistance.monotone_curve(STEPS, k, n, end), share, end)
              for b, k in enumerate(arm)}
    return pooled, blocks


def _as_x(blocks):
    return {b: {"x": np.log1p(c["steps"]), "se": np.nan} for b, c in blocks.items()}


def test_crossing_and_ratio_intervals_cover_known_truths_over_blocks():
    """Simulated studies of 3 blocks whose speed (log sd 0.3, the dose's effect varying by
    seed) and start vary: the monotone crossing's interval over blocks covers the control's
    true steps to 50% / 80%, and the pooled and by-block ratios cover the true ratio, at >= 90%
    (the rates measured are in the assertion message)."""
    rng = np.random.default_rng(5)
    truth, s50, sims = 2.5, 7.5, 300
    hits = {(what, q): 0 for what in ("steps", "ratio", "by block") for q in (0.5, 0.8)}
    for _ in range(sims):
        control = _arm(rng, 0.54, s50, np.exp(rng.normal(0, 0.3, 3)))
        dosed = _arm(rng, 0.05, s50 * truth, np.exp(rng.normal(0, 0.3, 3)))
        for q in (0.5, 0.8):
            (pc, bc), (pd_, bd) = _crossings(control, q), _crossings(dosed, q)
            ci = resistance.over_blocks(pc["steps"], resistance._log_steps(bc))
            hits[("steps", q)] += ci["lower"] <= flat_start_steps(s50, q) <= ci["upper"]
            _, lo, hi, _ = resistance._pooled_ratio(pd_, bd, pc, bc)
            hits[("ratio", q)] += lo <= truth <= hi
            br = resistance.block_ratio(_as_x(bd), _as_x(bc), last=STEPS[-1])
            hits[("by block", q)] += br["lower"] <= truth <= br["upper"]
    rates = {k: v / sims for k, v in hits.items()}
    assert all(0.9 <= v <= 0.995 for v in rates.values()), rates


def test_the_glm_shape_misses_the_start_the_monotone_curve_keeps():
    """On a flat-start curve a line in logit against log(step + 1) (the former estimator's
    shape) puts the start well below the observed one, the half-way step well before the
    truth; the monotone fit starts at the observation and crosses near the truth."""
    rates = flat_start(0.54, 7.5)
    curve = _curve(rates, items=100_000)
    assert curve["fitted"].iloc[0] == pytest.approx(0.54, abs=0.001)
    b, a = np.polyfit(np.log1p(STEPS), special.logit(rates), 1)
    assert special.expit(a) < 0.47
    assert resistance.monotone_crossing(curve, 0.5, 1.0)["steps"] == pytest.approx(7.5, rel=0.1)


def test_every_committed_control_curve_starts_inside_its_observed_rate_interval():
    """fits/persistence: per direction and split, the dose-0 curve pooled over seeds (and each
    seed's own) has its fitted step-0 rate inside the observed step-0 rate's exact binomial 95%
    interval."""
    from pathlib import Path

    from scipy import stats

    root = Path(__file__).resolve().parent.parent / "fits" / "persistence"
    pts = resistance.curves(pd.read_csv(root / "trajectory.csv"), pd.read_csv(root / "results.csv"))
    groups = list(pts[pts["level"] == 0].groupby(["post_training", "rl_scope", "split"], dropna=False))
    assert len(groups) >= 15
    checked = 0
    for key, g in groups:
        end = resistance.direction_end(key[0])
        for _, rows in [("pooled", g), *g.groupby(resistance.BLOCK)]:
            curve = resistance.group_curve(rows, end)
            k, n = round(curve["rate"].iloc[0] * curve["items"].iloc[0]), int(curve["items"].iloc[0])
            ci = stats.binomtest(int(k), n).proportion_ci(0.95)
            assert ci.low <= curve["fitted"].iloc[0] <= ci.high, (key, curve.iloc[0].to_dict())
            checked += 1
    assert checked == 4 * len(groups)


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
        assert help_["ratio50_lower"] > 1 and help_["ratio50"] == pytest.approx(3.0, rel=0.25)
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


def test_one_block_gives_crossings_and_ratios_without_intervals_and_findings_say_why():
    from studies import findings

    traj, res = study_tables(truth=3.0)
    one = res[res["seed"] == 0]
    traj = traj[traj["run_id"].isin(one["run_id"])]
    table = resistance.resistance_table(traj, one).set_index(["post_training", "split", "dose"])
    help_ = table.loc[("helpful_rl", "matched", 0.01)]
    assert help_["blocks"] == 1 and help_["steps50_status"] == "reached"
    assert np.isfinite(help_["ratio50"]) and np.isnan(help_["ratio50_lower"]) and help_["ratio50_blocks_n"] == 0
    row = next(line for line in resistance.report(traj, one).splitlines()
               if "| helpful_rl | all | throughout | matched | 0.01 |" in line)
    assert " [-] | " in row and "[unbounded]" not in row.split(" | ")[12]
    rows = findings.resistance_rows({"trajectory": traj, "results": one})
    help_row = next(r for r in rows if "helping with the misaligned action" in r["finding"])
    assert "no interval: one seed" in help_row["ours"] and help_row["verdict"] == findings.CANNOT_TELL
    assert np.isnan(help_row["p"])


def test_resistance_figure_draws_a_line_per_dose_in_a_panel_per_direction_and_split():
    from scaling import figures
    from scaling.reports.means import resistance_means

    def figure(traj, res):
        return figures.persistence.resistance(resistance_means(resistance.curves(traj, res)))

    traj, res = study_tables(truth=3.0)
    fig = figure(traj, res)
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
        figure(traj[traj["step"] <= 300], res)  # no post-training checkpoints


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
    assert md.startswith("What ran: world v") and "\n## Resistance to post-training" in md
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
    """studies.findings' persistence rows: a known ratio of 3 under helpful RL is
    'resists' with an interval covering 3; harmless RL's ratio of 1 cannot tell."""
    from studies import findings

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
