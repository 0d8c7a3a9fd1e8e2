"""Figures true to their data, each on the committed study whose figure showed the problem."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling.stats as fitlib
from scaling import figures
from scaling.reports import cost as cost_report
from scaling.reports.means import readout_means, trajectory_means
from scaling.results import read_trajectory

ROOT = Path(__file__).resolve().parent.parent


def _study(name: str):
    fits = ROOT / "fits" / name
    if not (fits / "results.csv").exists():
        pytest.skip(f"{name} study not committed")
    raw = fitlib.read_results(fits / "results.csv")
    report = figures.tables.load_fit(fits / "fit.json")
    return fits, raw, figures.tables.tidy_results(raw), report


def test_transfer_readout_panel_shows_the_transformers_readout():
    """fits/transfer: the readout row averaged the transformer with the n-gram rows (~0.6)."""
    _, _, results, report = _study("transfer")
    fig = figures.transfer.transfer(cost_report.cost_table(results, report), results, readout_means(results))
    want = results[(results["learner"] == "transformer") & (results["world_variant"] == "normal")]
    want = want.groupby(["split", "level"])["readout"].mean()
    panel = next(ax for ax in fig.axes if ax.get_title() == "normal world: readout")
    data_lines = [line for line in panel.lines if line.get_marker() not in (None, "None", "")]
    drawn = sorted(np.round(y, 9) for line in data_lines for y in line.get_ydata())
    assert drawn == sorted(np.round(want.to_numpy(), 9))
    assert min(drawn) > 0.85  # the counters sit at 0.5: an average with them would be near 0.6


def test_a_sweep_without_mid_training_checkpoints_gets_no_empty_trajectory():
    """fits/dose_response: one evaluation per run, and trajectory.png was drawn without lines."""
    fits, _, results, _ = _study("dose_response")
    traj = read_trajectory(fits, results)
    assert traj.groupby("run_id")["tokens"].nunique().max() == 1
    with pytest.raises(figures.MissingData, match="mid-training points"):
        figures.trajectory.trajectory(traj, trajectory_means(traj))


def test_rate_difference_intervals_stay_in_minus_one_to_one():
    """fits/sizes: two seeds give t(1) intervals of reductions out to +-2.65."""
    _, _, results, report = _study("sizes")
    raw = pd.DataFrame(report["cost_effectiveness"])
    assert raw["lower"].min() < -1 and raw["upper"].max() > 1  # the data that showed it
    cost = cost_report.cost_table(results, report)
    assert cost["lower"].min() >= -1 and cost["upper"].max() <= 1
    assert (cost["lower"] <= cost["reduction"]).all() and (cost["reduction"] <= cost["upper"]).all()
    per_token = cost.dropna(subset=["lower_per_aligned_token"])
    np.testing.assert_allclose(per_token["lower_per_aligned_token"] * per_token["aligned_tokens"],
                               per_token["lower"], rtol=1e-9)
    fig = figures.transfer.transfer(cost, results, readout_means(results))
    assert "clipped to [-1, 1]" in fig.legends[0].get_title().get_text()


def test_unbounded_halving_dose_intervals_are_printed_open():
    """fits/sizes: splits.png printed "0.085 [0.0017, 4.2]" (no dose exceeds 1)."""
    _, _, results, report = _study("sizes")
    fig = figures.dose.splits(results, report["fits"])
    titles = [ax.get_title() for ax in fig.axes]
    assert any("halving dose 0.085 [0.0017, \u221e)" in t for t in titles)
    for title in titles:
        for _lo, hi in re.findall(r"\[([-0-9.e]+), ([-0-9.e]+)\]", title):
            assert float(hi) <= 1, title
    assert figures.fits.interval_text({"lower": 6e-8, "upper": 1.6e5}, [0.003, 0.1]) == "(0, \u221e)"
    assert figures.fits.interval_text({"lower": 1e-5, "upper": 0.3}, [0.003, 0.1]) == "(0, 0.3]"
    assert figures.fits.interval_text({"lower": 1e-4, "upper": 0.3}, [0.003, 0.1]) == "[0.0001, 0.3]"


def _extent(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_legends_inside_the_canvas_and_a_readable_tick_at_every_dose():
    """fits/dose_response: the legend was cut at both edges and most doses had no tick label."""
    _, _, results, report = _study("dose_response")
    fig = figures.dose.dose_response(results, report["fits"])
    fig.draw_without_rendering()
    box = fig.bbox
    for legend in fig.legends:
        e = _extent(legend, fig)
        assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1, (e, box)
    doses = sorted(results.loc[(results["dose"] > 0) & (results["arm"] == "dose"), "nominal_dose"].round(12).unique())
    assert len(doses) == 5  # study v3: 0.001 to 0.1
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert [t.get_text() for t in labels] == ["0", *map(figures.style.dose_text, doses)]
        boxes = [_extent(t, fig) for t in labels]
        for a, b in zip(boxes, boxes[1:]):  # neighbouring labels do not overlap
            assert a.x1 <= b.x0 + 0.5 or a.y1 <= b.y0 + 0.5, (a, b)


def test_one_point_trajectories_are_drawn_compactly():
    """fits/genres: 5 configurations x 3 splits x 2 rows of one-point panels became 6 panels."""
    fits, raw, _, _ = _study("genres")
    table = figures.registry._transfer_table(read_trajectory(fits, raw), raw)
    assert table.groupby(["genres", "split"])["tokens"].nunique().max() == 1
    fig = figures.transfer.transfer_trajectory(table)
    assert len(fig.axes) == 6
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(names) == 5 and "advice" in names and "demonstration + reasoning + fiction + advice" in names
    assert "nano, batch 16, dose 0.05" in fig.get_suptitle()


def test_a_halving_dose_without_interval_or_beyond_the_doses_is_said_so():
    """fits/timing: a window's LL.3 title named no halving dose at all."""
    beyond = {"model": "LL.3", "ed_control": {"50": {"estimate": 7e15, "lower": 0.0, "upper": None,
                                                     "extrapolated": True}}}
    no_ci = {"model": "LL.3", "ed_control": {"50": {"estimate": 0.01, "lower": None, "upper": None,
                                                    "extrapolated": False}}}
    assert figures.fits.fit_label(beyond) == "LL.3 fit; halving dose beyond the doses"
    assert figures.fits.fit_label(no_ci) == "LL.3 fit; halving dose 0.01 (no CI)"
