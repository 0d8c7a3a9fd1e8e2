"""A fitted curve that rises from its control level has no halving dose, wherever one is shown.

Known truths: on `matched` the rate falls, 0.05 + 0.4 / (1 + (dose/0.01)^1.5), from 0.45 to 0.05
(halving dose 0.01);
on `held_out` it rises, 0.85 - 0.4 / (1 + (dose/0.01)^1.5), from 0.45 at dose 0 towards 0.85 (as
in the flipped world, where aligned documents teach the opposite value): an LL.4 (drc's b = -1.5,
c = 0.45, d = 0.85) whose control-relative ED50 (0.01) is half-way up, not a halving.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from scaling import figures
from scaling.reports.fit import fit_table
from scaling.reports.persistence import halving_doses
from scaling.stats.curves import curve_ed_control, curve_rises
from scaling.stats.results import CurveFit, rises_text

TRUE_E = 0.01


def truth(split: str, dose: float) -> float:
    falling = 0.05 + 0.4 / (1 + (dose / TRUE_E) ** 1.5)
    return falling if split == "matched" else 0.85 - 0.4 / (1 + (dose / TRUE_E) ** 1.5)


def table(rng) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        shift = rng.normal(0, 0.1)
        for dose in (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1):
            for split in ("matched", "held_out"):
                rate = special.expit(special.logit(truth(split, dose)) + shift)
                rows.append({"run_id": f"r{seed}-{dose}", "seed": seed, "dose": dose,
                             "aligned_fraction": dose, "arm": "dose", "model": "nano",
                             "insertion": "throughout" if dose else "control", "split": split,
                             "total": 2000, "misaligned": rng.binomial(2000, rate), "status": "ok"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted():
    df = table(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fit_table(df, models=["LL.4"], background="none")
    return df, report


def _fit(report, split) -> CurveFit:
    return next(f for f in report.fits if f.group["split"] == split and f.model == "LL.4" and f.usable)


def test_rises_compares_the_limit_with_the_control_level():
    ll4 = {"b": -1.5, "c": 0.45, "d": 0.85, "e": TRUE_E}
    assert curve_rises("LL.4", ll4, 0.0) == (0.45, 0.85)  # b < 0: from c at dose 0 up to d
    assert curve_rises("LL.4", {**ll4, "b": 1.5}, 0.0) is None  # b > 0: from d at dose 0 down to c
    assert curve_rises("LL.4", {"b": 1.5, "c": 0.85, "d": 0.45, "e": TRUE_E}, 0.0) == (0.45, 0.85)
    assert curve_rises("LL.3", {"b": 1.5, "d": 0.45, "e": TRUE_E}, 0.0) is None
    assert curve_rises("LL.3", {"b": -1.5, "d": 0.45, "e": TRUE_E}, 0.0) == (0.0, 0.45)
    assert curve_rises("LL.2", {"intercept": -3.0, "slope": 0.5}, 1e-3) is not None
    assert curve_rises("LL.2", {"intercept": -3.0, "slope": -0.5}, 1e-3) is None
    assert curve_rises("loglinear", {"intercept": 0.4, "slope": 0.01}, 0.0) is None  # no control level


def test_a_rising_curve_has_no_halving_dose_in_fit_json(fitted):
    _, report = fitted
    rising = _fit(report, "held_out").to_dict()
    assert rising["params"]["b"] < 0 < rising["params"]["d"] - rising["params"]["c"]  # fitted as it rises
    for p in ("10", "50", "90"):
        ed = rising["ed_control"][p]
        assert ed["rises"] is True and ed["estimate"] is None and ed["lower"] is None
        assert ed["control_level"] == pytest.approx(rising["control_level"])
        assert ed["control_level"] == pytest.approx(0.45, abs=0.05)
        assert ed["limit"] == pytest.approx(0.85, abs=0.05)


def test_a_falling_curve_keeps_its_halving_dose(fitted):
    _, report = fitted
    fit = _fit(report, "matched")
    ed = fit.ed_control(50)
    assert "rises" not in ed
    assert ed["estimate"] == pytest.approx(curve_ed_control("LL.4", fit.natural(), 50, 0.0), rel=1e-12)
    assert ed["estimate"] == pytest.approx(TRUE_E, rel=0.25)
    assert ed["lower"] < ed["estimate"] < ed["upper"]


def test_fit_md_and_the_summary_say_the_curve_rises(fitted):
    _, report = fitted
    md = report.to_markdown()
    halving = md.split("## Control-relative EDs")[1].split("## Model choice")[0]
    held_out = next(line for line in halving.splitlines() if "split=held_out" in line)
    matched = next(line for line in halving.splitlines() if "split=matched" in line)
    assert re.search(r"\| no halving dose \(the fitted curve rises: 0\.\d+ at dose 0, 0\.\d+ at high doses\) "
                     r"\| - \| - \|  \|", held_out), held_out
    assert re.search(r"\| 0\.0\d+ \[0\.0\d+, 0\.0\d+\] \|", matched), matched
    summary = report.summary().splitlines()
    assert any("split=held_out" in line and "no halving dose (the fitted curve rises" in line
               for line in summary)
    assert any("split=matched" in line and re.search(r": halving dose 0\.0\d+ \[.*\] \(LL.4\)$", line)
               for line in summary), summary


def test_the_figure_title_names_no_halving_dose_of_a_rising_curve(fitted):
    df, report = fitted
    fits = report.to_dict()["fits"]
    fig = figures.dose.splits(figures.tables.tidy_results(df), fits)
    titles = {ax.get_title() for ax in fig.axes if ax.get_title()}
    held_out = next(t for t in titles if "held" in t.lower())
    matched = next(t for t in titles if "matched" in t.lower())
    assert "no halving dose (curve rises)" in held_out and not re.search(r"halving dose \d", held_out)
    assert re.search(r"halving dose 0\.0\d+ \[", matched)
    rising = next(f for f in fits if f["group"]["split"] == "held_out" and f["model"] == "LL.4")
    assert figures.fits.halving_dose(rising) is None  # nothing marked on the dose axis
    assert figures.fits.fit_label(rising) == "LL.4 fit; no halving dose (curve rises)"


def test_persistence_halving_table_and_study_answer_read_the_flag():
    entry = {"estimate": None, "lower": None, "upper": None, "rises": True, "control_level": 0.489, "limit": 0.548}
    fits = [{"group": {"post_training": "sft", "split": "held_out", "model": "nano", "insertion": "pretrain"},
             "usable": True, "model": "LL.4", "ed_control": {"50": entry}, "dose_range": [1e-4, 0.05]}]
    row = halving_doses(fits).iloc[0]
    assert bool(row["rises"]) and row["ed50"] is None
    assert rises_text(row) == "no halving dose (the fitted curve rises: 0.49 at dose 0, 0.55 at high doses)"
    # levels that agree to 2 decimals get a third
    assert rises_text({"control_level": 0.99, "limit": 0.9941}) == (
        "no halving dose (the fitted curve rises: 0.990 at dose 0, 0.994 at high doses)")
