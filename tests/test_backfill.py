"""`python -m studies.backfill`: counting baselines added to a finished study's table without training
(studies.backfill) are the rows the runs' own evaluation writes."""

import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling.baselines import COUNTERS, FORGETTING_MODELS
from scaling.results import collect
from scaling.sweep import launch
from scaling.table import model_learner as learner
from studies import backfill
from studies.backfill import main

# Two grids, so a run is told apart by a key its own grid leaves out (the filtered run and
# the dose-0 run of seed 0 agree on every key of the first grid); a subset of the eval items.
GRID = """
[[grid]]
"data.aligned_fraction" = [0.0, 0.2]
"train.seed" = [0, 1]
[[grid]]
"data.filter_misaligned" = [1.0]
"train.seed" = [0]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory, root):
    """A tiny sweep trained and evaluated as usual: its results.csv has every baseline's rows."""
    tmp = tmp_path_factory.mktemp("backfill")
    sweep = tmp / "s.toml"
    sweep.write_text(tiny_sweep(GRID, train={"steps": 10, "eval_every": 5}, data={"data_dir": str(root)},
                                eval={"enabled": True, "max_items": 96}))
    launch(sweep, tmp / "out", progress=False)
    return sweep, collect(tmp / "out")


def _without_counters(results, path):
    """The table without its counters' rows, every other line kept as it is."""
    df = pd.read_csv(results)
    assert set(df["model"]) >= set(COUNTERS) and (df["status"] == "ok").all()
    lines = results.read_text().splitlines(keepends=True)
    assert lines[0].startswith("run_id,model,learner,")
    kept = [line for line in lines if line.split(",")[2] != "counter"]
    assert len(lines) - len(kept) == (df["learner"] == "counter").sum() > 0
    path.write_text("".join(kept))
    return df


def test_backfilled_counter_rows_are_the_runs_own(study, tmp_path, capsys):
    sweep, results = study
    original = _without_counters(results, tmp_path / "dropped.csv")
    out = tmp_path / "backfilled.csv"
    assert main([str(sweep), str(tmp_path / "dropped.csv"), "--out", str(out),
                 "--models", "counter"]) == 0
    printed = capsys.readouterr().out
    counters = original.loc[original["learner"] == "counter", "model"].unique()  # the dynamic ones too
    assert set(counters) == set(COUNTERS) | {m for m in FORGETTING_MODELS if learner(m) == "counter"}
    assert "5 runs" in printed and f"{5 * 3 * len(counters)} rows added" in printed
    # every column of every row as the sweep's own results.csv has it, in its order: the
    # counter rows computed again from the config alone, the other rows kept as they were
    assert out.read_bytes() == results.read_bytes()
    pd.testing.assert_frame_equal(pd.read_csv(out), original)

    # a second pass adds nothing: rows present are kept, not duplicated
    again = tmp_path / "again.csv"
    assert main([str(sweep), str(out), "--out", str(again), "--models", "counter"]) == 0
    assert again.read_bytes() == results.read_bytes()


def test_a_run_that_matches_no_sweep_run_is_named(study, tmp_path, capsys):
    sweep, results = study
    df = pd.read_csv(results, dtype={"run_id": str})
    lost = df.loc[df["learner"] == "transformer", "run_id"].iloc[0]
    df.loc[df["run_id"] == lost, "seed"] = 7  # no run of the sweep has train.seed 7
    df.to_csv(tmp_path / "t.csv", index=False)
    assert main([str(sweep), str(tmp_path / "t.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert f"run {lost} (" in err and "matches no run of the sweep" in err
    assert not (tmp_path / "o.csv").exists()


def test_a_run_that_matches_several_sweep_runs_is_named(study, tmp_path, capsys):
    """A grid key the table has no column for cannot tell runs apart: refused, not guessed."""
    sweep, results = study
    wider = tmp_path / "wider.toml"
    wider.write_text(sweep.read_text() + '"model.d_ff" = [64, 128]\n')  # the last grid, twice over
    assert main([str(wider), str(results), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "matches 2 runs of the sweep" in err and "model.d_ff=64" in err and "model.d_ff=128" in err


def test_a_match_that_does_not_rebuild_the_recorded_columns_is_refused(study, tmp_path, capsys):
    sweep, results = study
    df = pd.read_csv(results, dtype={"run_id": str})
    run = df.loc[(df["learner"] == "transformer") & (df["aligned_fraction"] > 0), "run_id"].iloc[0]
    df.loc[df["run_id"] == run, "aligned_tokens"] += 17  # not what this config trains on
    df.to_csv(tmp_path / "t.csv", index=False)
    assert main([str(sweep), str(tmp_path / "t.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert f"run {run}:" in err and "aligned_tokens: recorded" in err
    assert not (tmp_path / "o.csv").exists()


def test_bad_input_is_a_usage_error(study, tmp_path, capsys):
    sweep, results = study
    assert main([str(sweep), str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "results table not found" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main([str(sweep), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "not a results table (no column run_id" in capsys.readouterr().err
    assert main([str(tmp_path / "none.toml"), str(results), "--out", str(tmp_path / "o.csv")]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    assert main([str(sweep), str(results), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("a, b, equal", [(0.1, 0.1000000000049, True), (0.1, 0.10000001, False),
                                         (float("nan"), "", True), (1, 1.0, True), ("x", "x", True),
                                         ("none", float("nan"), False)])
def test_cells_agree_to_the_digits_results_csv_keeps(a, b, equal):
    assert backfill.same(a, b) is equal
