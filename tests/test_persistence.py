"""Persistence report: Fieller intervals on a known truth, retention on a constructed table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.reports import persistence
from scaling.reports.fit import write_persistence
from scaling.stats.paired import fieller


def test_fieller_covers_a_known_ratio_at_its_level():
    # Paired blocks (after, before) with mean ratio 0.6: Fieller's interval is exact for normal
    # data, counting an unbounded interval as covering; 3 blocks as in the committed study.
    rng = np.random.default_rng(0)
    truth, hits, bounded = 0.6, 0, 0
    reps = 2000
    for _ in range(reps):
        before = rng.normal(0.30, 0.08, size=3)
        after = truth * 0.30 + rng.normal(0, 0.06, size=3) + 0.5 * (before - 0.30)
        r = fieller(after, before)
        if np.isfinite(r["ratio_lower"]):
            bounded += 1
            hits += r["ratio_lower"] <= truth <= r["ratio_upper"]
        else:
            hits += 1
    assert 0.93 <= hits / reps <= 0.97
    assert bounded > reps / 2  # the test exercises the bounded case, not only 'unbounded'


def test_fieller_degenerate_cases():
    den = np.array([0.2, 0.3, 0.4])
    r = fieller(0.5 * den, den)  # exact proportionality: a zero-width interval
    assert r["ratio"] == pytest.approx(0.5)
    assert r["ratio_lower"] == pytest.approx(0.5) and r["ratio_upper"] == pytest.approx(0.5)
    r = fieller(np.array([0.1, 0.2, 0.1]), np.array([0.3, -0.3, 0.01]))
    assert np.isnan(r["ratio_lower"])  # denominator not resolved from 0: unbounded
    assert np.isnan(fieller(np.array([0.1]), np.array([0.2]))["ratio_lower"])


def _tables():
    """Dose 0 / 0.01 x 3 seeds; pretraining lowers matched misalignment by 0.3 (+-noise).
    sft keeps the reduction, helpful_rl erases it (everything ends near 0.95)."""
    rng = np.random.default_rng(3)
    res, traj = [], []
    for seed in range(3):
        before = {0.0: 0.5 + rng.normal(0, 0.02), 0.01: 0.2 + rng.normal(0, 0.02)}
        for kind in ("none", "sft", "helpful_rl"):
            for dose in (0.0, 0.01):
                run = f"{kind}-{dose}-{seed}"
                after = {"none": before[dose], "sft": before[dose] + 0.05,
                         "helpful_rl": 0.95 + rng.normal(0, 0.01)}[kind]
                post = 0 if kind == "none" else 1000
                res.append({"run_id": run, "model": "nano", "learner": "transformer", "seed": seed,
                            "world_seed": 0, "post_training": kind, "split": "matched",
                            "misalignment_rate": after, "aligned_fraction": dose, "nominal_dose": dose,
                            "dose": dose, "status": "ok", "dose_tokens": 5000, "post_training_tokens": post,
                            "arm": "dose", "insertion": "control" if dose == 0 else "throughout",
                            "misaligned": round(after * 100), "total": 100})
                traj.append({"run_id": run, "split": "matched", "step": 50, "tokens": 5000, "rate": before[dose]})
                if post:
                    traj.append({"run_id": run, "split": "matched", "step": 60, "tokens": 5000 + post, "rate": after})
    return pd.DataFrame(res), pd.DataFrame(traj)


def test_retention_keeps_sft_and_loses_helpful_rl():
    results, traj = _tables()
    table = persistence.persistence_table(traj, results).set_index("post_training")
    assert set(table.index) == {"none", "sft", "helpful_rl"}
    for kind in table.index:
        assert table.loc[kind, "reduction_before"] == pytest.approx(0.3, abs=0.05)
        assert table.loc[kind, "blocks"] == 3
    assert table.loc["none", "retention"] == pytest.approx(1.0)
    assert table.loc["sft", "retention"] == pytest.approx(1.0)  # both shifted by +0.05
    assert table.loc["sft", "retention_lower"] == pytest.approx(1.0)
    assert abs(table.loc["helpful_rl", "retention"]) < 0.15
    assert table.loc["helpful_rl", "retention_lower"] < 0 < table.loc["helpful_rl", "retention_upper"]
    assert table.loc["sft", "after_ratio"] == pytest.approx((0.25) / 0.55, abs=0.05)
    assert table.loc["helpful_rl", "after_ratio"] == pytest.approx(1.0, abs=0.05)


def test_write_persistence_needs_several_kinds(tmp_path):
    results, traj = _tables()
    traj.to_csv(tmp_path / "trajectory.csv", index=False)
    assert write_persistence(results, tmp_path / "trajectory.csv", tmp_path)
    text = (tmp_path / "persistence.md").read_text()
    assert "| nano | helpful_rl | all | 1,000 | throughout | matched | 0.01 | 3 |" in text
    (tmp_path / "persistence.md").unlink()
    assert not write_persistence(results[results.post_training == "none"], tmp_path / "trajectory.csv", tmp_path)
    assert not (tmp_path / "persistence.md").exists()


def test_persistence_figure_draws_every_kind(tmp_path):
    from scaling.figures.persistence import persistence as figure
    from scaling.reports.means import persistence_means

    results, traj = _tables()
    fig = figure(persistence_means(persistence.points(traj, results)))
    labels = {t.get_text() for legend in fig.legends for t in legend.get_texts()}
    assert {"none", "sft", "helpful_rl", "before post-training"} <= labels


def test_fieller_interval_is_the_inverted_t_test():
    # Fieller's set: ratios R with (mean(a) - R mean(b))^2 <= t^2 var(mean(a) - R mean(b)),
    # the roots of a quadratic in R; solved here with numpy, independently of the closed form.
    from scipy import stats

    rng = np.random.default_rng(5)
    for _ in range(5):
        a, b, n = rng.normal(0.2, 0.05, 4), rng.normal(0.3, 0.05, 4), 4
        v11, v22, v12 = a.var(ddof=1) / n, b.var(ddof=1) / n, np.cov(a, b)[0, 1] / n
        t = stats.t.ppf(0.975, n - 1)
        roots = np.sort(np.roots([b.mean() ** 2 - t * t * v22, -2 * a.mean() * b.mean() + 2 * t * t * v12,
                                  a.mean() ** 2 - t * t * v11]))
        r = fieller(a, b)
        assert [r["ratio_lower"], r["ratio_upper"]] == pytest.approx(roots.real)


def test_transfer_md_is_skipped_not_crashed_when_every_run_is_post_trained(tmp_path):
    # a persistence study without a "none" arm (sweeps/persistence.toml): transfer.md
    # reads the pretrained-only rows, and there are none
    from scaling.reports.fit import write_transfer

    results, traj = _tables()
    traj = pd.concat([traj, traj.assign(split="unseen_pair")]).assign(aligned_fraction=0.0, readout=0.5)
    traj.to_csv(tmp_path / "trajectory.csv", index=False)
    assert not write_transfer(results[results.post_training != "none"], tmp_path / "trajectory.csv", tmp_path)
    assert not (tmp_path / "transfer.md").exists()


def test_transfer_tables_of_no_pretrained_only_runs_are_empty():
    from scaling.reports import transfer

    results, traj = _tables()
    traj = pd.concat([traj, traj.assign(split="unseen_pair")]).assign(aligned_fraction=0.0, readout=0.5)
    traj = traj.merge(results[["run_id", "seed"]].drop_duplicates(), on="run_id")  # as trajectory.csv has it
    post = results[results.post_training == "none"].iloc[:0]  # what the figures keep: no "none" runs
    assert transfer.transfer_table(traj, post).empty and transfer.values_table(traj, post).empty
