"""The transfer report: paired dose effects and the values control on a known-truth table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scaling.reports.transfer import transfer_table, values_table


def _tables(effect_normal, effect_flipped, noise=0.02, seeds=3, worlds=2):
    rng = np.random.default_rng(0)
    results, traj = [], []
    for variant, effect in (("normal", effect_normal), ("flipped", effect_flipped)):  # noqa: B007
        for w in range(worlds):
            for s in range(seeds):
                base = 0.5 + rng.normal(0, 0.05)  # a block's own control level
                for dose in (0.0, 0.05):
                    run = f"{variant}-{w}-{s}-{dose}"
                    results.append({"run_id": run, "model": "nano", "batch_size": 16, "learner": "transformer",
                                    "world_variant": variant, "world_seed": w})
                    results.append({"run_id": run, "model": "ngram-2", "batch_size": 16, "learner": "ngram",
                                    "world_variant": variant, "world_seed": w})
                    for split in ("matched", "held_out"):
                        rate = base + (effect if dose else 0) + rng.normal(0, noise)
                        traj.append({"run_id": run, "seed": s, "aligned_fraction": dose, "split": split,
                                     "insertion": "throughout" if dose else "control",
                                     "step": 100, "tokens": 1000, "rate": rate, "readout": 0.9})
    return pd.DataFrame(traj), pd.DataFrame(results)


def test_paired_effects_and_values_contrast_recover_the_truth():
    traj, results = _tables(-0.2, 0.15)
    table = transfer_table(traj, results)
    assert len(table) == 4  # 2 variants x 2 splits
    normal = table[(table.world_variant == "normal") & (table.split == "held_out")].iloc[0]
    flipped = table[(table.world_variant == "flipped") & (table.split == "held_out")].iloc[0]
    assert normal.blocks == 6 and normal.lower < -0.2 < normal.upper and normal.upper < 0
    assert flipped.lower < 0.15 < flipped.upper and flipped.lower > 0
    assert normal.expected_direction == 6 and flipped.expected_direction == 6
    flipped_matched = table[(table.world_variant == "flipped") & (table.split == "matched")].iloc[0]
    assert flipped_matched.expected_direction == 0  # matched pairs keep their values: a rise is unexpected
    # the interval is the t interval on blocks - 1 df of the paired differences
    t = traj.merge(results[results.learner == "transformer"][["run_id", "world_variant", "world_seed"]])
    sel = t[(t.world_variant == "normal") & (t.split == "held_out")]
    diffs = (sel[sel.aligned_fraction > 0].sort_values(["world_seed", "seed"]).rate.to_numpy()
             - sel[sel.aligned_fraction == 0].sort_values(["world_seed", "seed"]).rate.to_numpy())
    half = stats.t.ppf(0.975, 5) * diffs.std(ddof=1) / np.sqrt(6)
    assert normal.estimate == pytest.approx(diffs.mean()) and normal.upper == pytest.approx(diffs.mean() + half)
    values = values_table(traj, results)
    held = values[values.split == "held_out"].iloc[0]
    assert held.lower < -0.35 < held.upper and held.opposite_direction == 6


def test_world_units_average_each_worlds_seeds_and_use_worlds_minus_one_df():
    traj, results = _tables(-0.2, 0.15, worlds=3)
    t = traj.merge(results[results.learner == "transformer"][["run_id", "world_variant", "world_seed"]])
    sel = t[(t.world_variant == "normal") & (t.split == "held_out")]
    keys = ["world_seed", "seed"]
    diffs = (sel[sel.aligned_fraction > 0].set_index(keys).rate - sel[sel.aligned_fraction == 0].set_index(keys).rate)
    per_world = diffs.groupby(level="world_seed").mean().to_numpy()
    half = stats.t.ppf(0.975, 2) * per_world.std(ddof=1) / np.sqrt(3)
    table = transfer_table(traj, results, units="world")
    normal = table[(table.world_variant == "normal") & (table.split == "held_out")].iloc[0]
    assert normal.blocks == 3 and normal.expected_direction == 3
    assert normal.estimate == pytest.approx(per_world.mean()) and normal.upper == pytest.approx(per_world.mean() + half)
    by_seed = transfer_table(traj, results)
    assert by_seed[(by_seed.world_variant == "normal") & (by_seed.split == "held_out")].iloc[0].blocks == 9
    values = values_table(traj, results, units="world")
    assert (values.blocks == 3).all() and (values.opposite_direction == 3).all()


def test_no_effect_gives_an_interval_around_zero():
    traj, results = _tables(0.0, 0.0)
    table = transfer_table(traj, results)
    assert (table.lower < 0).all() and (table.upper > 0).all()


def test_transfer_trajectory_figure_draws_each_variant_and_needs_pairs():
    from scaling import figures

    traj, results = _tables(-0.2, 0.15)
    fig = figures.transfer.transfer_trajectory(transfer_table(traj, results))
    # one evaluation point per run: the compact form, (effect, readout) panels per split
    effect_ax = fig.axes[2]  # held_out's dose effect
    assert len(fig.axes) == 4 and effect_ax.get_title() == "held_out: dose effect"
    assert set(effect_ax.get_legend_handles_labels()[1]) >= {"normal", "flipped"}
    with pytest.raises(figures.MissingData):
        figures.transfer.transfer_trajectory(transfer_table(traj[traj.aligned_fraction > 0], results))


def test_transfer_writeup_table_is_what_the_committed_tables_give():
    """The transfer study's write-up (fits/transfer/README.md) is recomputed from its tables, cell by cell."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    results, traj = root / "fits" / "transfer" / "results.csv", root / "fits" / "transfer" / "trajectory.csv"
    if not results.exists():
        pytest.skip("transfer study not committed")
    results, traj = pd.read_csv(results), pd.read_csv(traj)
    table = transfer_table(traj, results)
    table = table[(table.model == "nano") & (table.batch_size == 16)]
    values = values_table(traj, results)
    values = values[(values.model == "nano") & (values.batch_size == 16)]
    readme = (root / "fits" / "transfer" / "README.md").read_text()
    checked, steps = 0, values["step"].nunique()
    for split in ("unseen_pair", "held_out"):
        for variant in ("normal", "flipped", "normal - flipped"):
            line = next(x for x in readme.splitlines() if x.startswith(f"| `{split}`, {variant}"))
            cells = [c.strip() for c in line.strip("|").split("|")[1:]]
            rows = (values[values.split == split].sort_values("step") if variant == "normal - flipped" else
                    table[(table.split == split) & (table.world_variant == variant)].sort_values("step"))
            for cell, (_, row) in zip(cells, rows.iterrows()):
                numbers = [float(x) for x in re.findall(r"[+-]?\d+\.\d+", cell)[:3]]
                assert numbers == pytest.approx([row.estimate, row.lower, row.upper], abs=0.006), (split, variant, cell)
                checked += 1
    assert checked == 2 * 3 * steps  # every split, variant and checkpoint


def _with_counters(rate_unseen: float):
    traj, results = _tables(-0.2, 0.15)
    traj["split"] = traj["split"].replace("held_out", "unseen_pair")
    counters = results[results.learner == "ngram"].drop_duplicates("run_id")
    fractions = traj.drop_duplicates("run_id").set_index("run_id")["aligned_fraction"]
    rows = [{**r, "split": split, "aligned_fraction": fractions[r["run_id"]],
             "misalignment_rate": rate_unseen if split == "unseen_pair" else 0.3}
            for r in counters.to_dict("records") for split in ("matched", "unseen_pair")]
    return traj, pd.concat([results[results.learner == "transformer"], pd.DataFrame(rows)], ignore_index=True)


def test_transfer_report_says_where_the_counters_do_not_tie():
    from scaling.reports.transfer import report

    tied = report(*_with_counters(0.5))
    assert "Counting baselines tie on every transfer item" in tied and "do not tie" not in tied
    rows = [line for line in tied.splitlines() if "| unseen_pair | 0.05 | 1,000 |" in line]
    assert rows and all("| tie |" in line for line in rows)
    untied = report(*_with_counters(0.44))
    assert "**Counting baselines do not tie on every transfer item here** (their rates: unseen_pair (0.440-0.440)" in untied
    rows = [line for line in untied.splitlines() if "| unseen_pair | 0.05 | 1,000 |" in line]
    assert rows and all("| 0.440-0.440 |" in line for line in rows)
    matched = [line for line in untied.splitlines() if "| matched | 0.05 | 1,000 |" in line]
    assert matched and all("| 0.300-0.300 |" in line for line in matched)  # counting separates matched pairs


def test_rates_beside_counters_lists_each_model_and_the_readout():
    from scaling.reports.transfer import rates_beside_counters

    rows = []
    for model, rate in (("nano", 0.2), ("ngram-1", 0.5), ("twohop", 0.0)):
        for seed in range(2):
            rows.append({"model": model, "split": "unseen_pair", "aligned_fraction": 0.1, "nominal_dose": 0.1,
                         "arm": "dose", "status": "ok", "misalignment_rate": rate + 0.1 * seed,
                         "readout": 0.9 if model == "nano" else 0.5, "world_variant": "normal"})
    text = rates_beside_counters(pd.DataFrame(rows))
    assert "| variant | split | dose | readout | nano | ngram-1 | twohop |" in text
    assert "| normal | unseen_pair | 0.1 | 0.90 | 0.25 | 0.55 | 0.05 |" in text
    assert rates_beside_counters(pd.DataFrame(rows[:2])) == ""  # no counting rows
