"""Figures from a synthetic sweep: all written, byte-identical on rerun, bad input handled."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import special

from scaling import figures
from scaling.cli import main
from scaling.reports.arms import arm_table
from scaling.reports.means import arm_means
from scaling.results import COLUMNS, read_trajectory

FRACTIONS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)
WINDOWS = {"throughout": (0.0, 1.0), "midtraining": (0.9, 1.0)}
SEEDS = (0, 1, 2)
TOKENS = 1_000_000
N_ITEMS = 400


def _curve(x, c, d, e, b=1.3):
    return c + (d - c) / (1 + (x / e) ** b) if x > 0 else d


def _rates(dose, seed_effect):
    matched = _curve(dose, 0.05, 0.45, 3e-3)
    held_out = _curve(dose, 0.33, 0.47, 1e-2)
    return {s: float(special.expit(special.logit(r) + seed_effect))
            for s, r in (("matched", matched), ("held_out", held_out))}


def _sweep(root, with_runs=True):
    """results.csv (dose arm in two windows with shared controls, filtered and misaligned
    arms, a failed and a NaN row) and runs/*/{config,eval}.json with trajectories."""
    rng = np.random.default_rng(0)
    runs = []
    for window, (w0, w1) in WINDOWS.items():
        for f in FRACTIONS:
            if f == 0 and window != "throughout":
                continue  # one set of controls, shared by both windows
            runs += [{"arm": "dose", "insertion_config": window, "aligned_fraction": f,
                      "window": (w0, w1), "seed": s} for s in SEEDS]
    for arm, shift in (("filtered", -0.3), ("misaligned", 0.5)):
        runs += [{"arm": arm, "insertion_config": "throughout", "aligned_fraction": 0.0,
                  "window": (0.0, 1.0), "seed": s, "shift": shift} for s in SEEDS]
    rows = []
    for i, run in enumerate(runs):
        run_id = f"r{i:03d}"
        f, (w0, w1) = run["aligned_fraction"], run["window"]
        dose = f * (w1 - w0) * (1 + 0.02 * rng.standard_normal()) if f else 0.0
        effect = 0.15 * rng.standard_normal() + run.get("shift", 0.0)
        rates = _rates(dose, effect)
        control = run["arm"] == "dose" and f == 0
        base = {c: math.nan for c in COLUMNS} | {
            "run_id": run_id, "model": "tiny", "seed": run["seed"], "arm": run["arm"],
            "insertion": "control" if control else run["insertion_config"],
            "insertion_config": run["insertion_config"], "window_start": w0, "window_end": w1,
            "aligned_fraction": f, "misaligned_fraction": 0.01 * (run["arm"] == "misaligned"),
            "filter_misaligned": float(run["arm"] == "filtered"), "dose": dose,
            "nominal_dose": f * (w1 - w0),
            "aligned_tokens": dose * TOKENS, "total_tokens": TOKENS, "flops": 6e5 * TOKENS,
            "val_loss": 3.0 + 2 * dose + 0.01 * rng.standard_normal(),
            "fact_recall": 0.6 - dose + 0.01 * rng.standard_normal(), "status": "ok"}
        for split, rate in rates.items():
            k = int(rng.binomial(N_ITEMS, rate))
            rows.append(base | {"split": split, "misaligned": k, "total": N_ITEMS,
                                "misalignment_rate": k / N_ITEMS})
        if with_runs:
            _write_run(root / "runs" / run_id, run, rates)
    rows.append(rows[0] | {"run_id": "failed", "status": "failed", "misaligned": math.nan,
                           "total": math.nan, "misalignment_rate": math.nan})
    rows.append(rows[0] | {"run_id": "nan", "dose": math.nan})
    df = pd.DataFrame(rows, columns=COLUMNS)
    root.mkdir(parents=True, exist_ok=True)
    df.to_csv(root / "results.csv", index=False)
    return df


def _write_run(run_dir, run, rates):
    run_dir.mkdir(parents=True)
    data = {"aligned_fraction": run["aligned_fraction"], "insertion": run["insertion_config"],
            "misaligned_fraction": 0.01 * (run["arm"] == "misaligned"),
            "filter_misaligned": float(run["arm"] == "filtered")}
    config = {"config": {"model": {"name": "tiny", "seq_len": 500}, "data": data,
                         "train": {"seed": run["seed"], "steps": 500, "batch_size": 4}}}
    (run_dir / "config.json").write_text(json.dumps(config))
    trajectory = [{"step": s, "tokens": s * 2000,
                   **{f"{split}_rate": 0.5 + (rate - 0.5) * s / 500 for split, rate in rates.items()}}
                  for s in (100, 200, 300, 400, 500)]
    (run_dir / "eval.json").write_text(json.dumps({"trajectory": trajectory}))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    df = _sweep(root)
    # Fit the dose arm only: the other arms are no points of the dose-response curve.
    dose_csv = root / "dose_arm.csv"
    df[df["arm"] == "dose"].to_csv(dose_csv, index=False)
    assert main(["fit", str(dose_csv), "--out", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def drawn(sweep):
    """The CLI's default run: png and svg of every figure, and what it printed."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["figures", str(sweep), "--out", str(sweep / "a")]) == 0
    return sweep / "a", printed.getvalue()


# This sweep predates the value-grounded world (no unseen_pair split, no flipped worlds), so
# the transfer_trajectory, persistence and resistance figures are skipped here (one post-training
# kind, no transfer splits); tests/test_fit_transfer.py, tests/test_persistence.py and
# tests/test_resistance.py draw them.
DRAWN = tuple(f for f in figures.FIGURES if f not in ("transfer_trajectory", "persistence", "resistance"))


@pytest.mark.slow
def test_all_figures_written_in_both_formats(drawn):
    out, printed = drawn
    names = {(p.stem, p.suffix) for p in out.iterdir()}
    assert names == {(f, s) for f in DRAWN for s in (".png", ".svg")}
    for name in DRAWN:
        assert str(out / f"{name}.png") in printed
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert "<svg" in (out / f"{name}.svg").read_text()[:1000]


@pytest.mark.slow
def test_rerun_is_byte_identical(sweep, drawn):
    # as `scaling figures` does: the trajectory from the runs (this sweep has no trajectory.csv)
    again = figures.make_all(sweep, out=sweep / "b", formats="png,svg", read_trajectory=read_trajectory)
    assert len(again) == 2 * len(DRAWN)
    for path in again:
        assert path.read_bytes() == (drawn[0] / path.name).read_bytes(), path.name
    table = arm_table(figures.tables.load_results(sweep / "results.csv"))
    fig = figures.arms.arms(table, arm_means(table))
    pdfs = [figures.save(fig, sweep / d / "arms", ["pdf"])[0] for d in ("p1", "p2")]
    assert pdfs[0].read_bytes() == pdfs[1].read_bytes()


@pytest.mark.slow
def test_dose_panels_draw_an_ll_fit(sweep):
    results = figures.tables.load_results(sweep / "results.csv")
    fits = json.loads((sweep / "fit.json").read_text())["fits"]
    fig = figures.dose.dose_response(results, fits)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == len(WINDOWS)
    assert all("LL.4" in t or "LL.3" in t for t in titles), titles
    # Without a usable LL.3/LL.4 the curve falls back to LL.2.
    no_ll = [f | {"usable": False} if f["model"] in ("LL.3", "LL.4") else f for f in fits]
    chosen = figures.fits.choose_fit(no_ll, {"insertion": "throughout", "split": "matched", "model": "tiny"})
    assert chosen["model"] == "LL.2"
    assert figures.fits.choose_fit(fits, {"insertion": "early", "split": "matched", "model": "tiny"}) is None


@pytest.mark.slow
def test_without_fit_or_runs_notes_and_draws(tmp_path, capsys):
    _sweep(tmp_path, with_runs=False)
    paths = figures.make_all(tmp_path, formats=["png"])
    out = capsys.readouterr().out
    assert "no fit.json" in out and "skipped trajectory" in out
    assert {p.stem for p in paths} == set(DRAWN) - {"trajectory"}
    assert all(p.parent == tmp_path / "figures" for p in paths)


def test_missing_results_is_a_usage_error(tmp_path, capsys):
    assert main(["figures", str(tmp_path)]) == 2
    assert "results.csv" in capsys.readouterr().err


@pytest.mark.slow
def test_bad_format_or_fit_path_is_a_usage_error(sweep, tmp_path):
    assert main(["figures", str(sweep), "--out", str(tmp_path), "--formats", "png,gif"]) == 2
    assert main(["figures", str(sweep), "--out", str(tmp_path), "--fit", str(tmp_path / "no.json")]) == 2
    (tmp_path / "bad.json").write_text("{")
    assert main(["figures", str(sweep), "--out", str(tmp_path / "o"), "--fit", str(tmp_path / "bad.json")]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["bad.json"]


def test_only_nan_or_failed_rows_do_not_crash(tmp_path, capsys):
    rows = [{c: math.nan for c in COLUMNS} | {"run_id": f"r{i}", "split": split, "arm": "dose",
                                              "status": status, "dose": dose}
            for i, (status, dose) in enumerate([("failed", 0.01), ("ok", math.nan), ("ok", 0.01)])
            for split in ("matched", "held_out")]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "runs" / "r0").mkdir(parents=True)
    (tmp_path / "runs" / "r0" / "eval.json").write_text("{not json")
    assert main(["figures", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == len(figures.FIGURES)
    assert not (tmp_path / "figures").exists()


def test_figures_are_registered_in_their_order():
    assert figures.FIGURES == ("dose_response", "splits", "transfer", "transfer_trajectory", "persistence", "resistance",
                               "trajectory", "capability", "cost_effectiveness", "arms")
    with pytest.raises(ValueError, match="already registered"):
        figures.figure("arms", 99, "results")(lambda results: None)
    with pytest.raises(ValueError, match="unknown input"):
        figures.figure("new", 99, "no_such_table")


def test_a_registered_figure_is_drawn_by_make_all(tmp_path, monkeypatch):
    """A new figure is one decorated function: make_all draws it with the inputs it names."""
    monkeypatch.setattr(figures.registry, "_REGISTRY", dict(figures.registry._REGISTRY))
    seen = {}

    @figures.figure("runs_per_split", 99, "results", "fits")
    def runs_per_split(results, fits):
        seen["rows"], seen["fits"] = len(results), fits
        fig = Figure(figsize=(2, 2))
        fig.add_subplot().bar(["x"], [len(results)])
        return fig

    assert figures.registered() == (*figures.FIGURES, "runs_per_split")
    rows = [{c: math.nan for c in COLUMNS} | {"run_id": "r0", "split": "matched", "arm": "dose",
                                              "status": "ok", "dose": 0.01}]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "results.csv", index=False)
    paths = figures.make_all(tmp_path, formats=["png"], note=lambda _: None)
    assert [p.name for p in paths] == ["runs_per_split.png"]
    assert seen == {"rows": 1, "fits": []}
