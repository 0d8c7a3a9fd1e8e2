"""Curve models as classes in one registry (scaling.stats.curves.CURVES), and Weibull W1.4
(drc's W1.4) added as one class. No published drc W1.4 fit was found to test against, so
W1.4 is tested against known truths (data made from a W1.4 curve give back its parameters
and EDs) and against scipy's least squares on the ryegrass data."""

import warnings

import numpy as np
import pytest
from scipy import optimize
from test_fit import RYEGRASS

from scaling import stats as F
from scaling.reports.fit import fit_table
from scaling.stats.curves import CURVES, curve, make_design

TRUTH = {"b": 1.5, "c": 0.05, "d": 0.6, "e": 0.02}
DOSES = np.repeat([0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.2], 4)


def weibull1(x, b, c, d, e):
    """drc's W1.4, written out: c + (d - c) exp(-exp(b (log x - log e)))."""
    with np.errstate(divide="ignore"):
        return c + (d - c) * np.exp(-np.exp(b * (np.log(x) - np.log(e))))


def fit_w14(dose, k, n=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        return F.fit_curve("W1.4", dose, k, n, **kwargs)


def test_registry_holds_every_model_once_under_its_drc_name():
    assert set(F.MODELS) < set(CURVES) and "W1.4" in CURVES
    assert all(model.name == name for name, model in CURVES.items())
    assert curve("W1.4").names("binomial") == ("b", "logit_c", "logit_d", "log_e")
    assert curve("LL.3").names("normal") == ("b", "d", "log_e")
    assert [m for m, c in CURVES.items() if c.estimated_background] == ["loglinear", "LL.2"]


def test_w14_recovers_a_known_curve_from_its_expected_counts():
    n = np.full(len(DOSES), 1000.0)
    k = n * weibull1(DOSES, **TRUTH)  # noise-free: the maximum is the truth itself
    fit = fit_w14(DOSES, k, n)
    assert fit.usable, fit.reason
    for name, value in TRUTH.items():
        assert fit.natural()[name] == pytest.approx(value, rel=1e-5), name
    # drc's relative ED p: the dose where p% of the way from d to c is gone, found here by
    # root finding on the curve itself
    for p in (10, 50, 90):
        level = TRUTH["d"] - p / 100 * (TRUTH["d"] - TRUTH["c"])
        want = optimize.brentq(lambda x, level=level: weibull1(x, **TRUTH) - level, 1e-6, 10)
        assert fit.ed(p)["estimate"] == pytest.approx(want, rel=1e-5), p
    assert fit.ed(50)["estimate"] == pytest.approx(TRUTH["e"] * np.log(2) ** (1 / TRUTH["b"]), rel=1e-5)
    assert fit.control_level() == pytest.approx(TRUTH["d"], rel=1e-5)


def test_w14_intervals_cover_the_truth_of_noisy_data():
    rng = np.random.default_rng(3)
    n = np.full(len(DOSES), 400)
    covered = {name: 0 for name in TRUTH}
    for _ in range(20):
        k = rng.binomial(n, weibull1(DOSES, **TRUTH))
        fit = fit_w14(DOSES, k, n)
        assert fit.usable, fit.reason
        entries = fit.param_entries()
        for name, value in TRUTH.items():
            est, se = entries[name]["estimate"], entries[name]["se"]
            covered[name] += abs(est - value) <= 1.96 * se
    assert all(count >= 15 for count in covered.values()), covered  # ~19 of 20 at 95%


def test_w14_least_squares_on_ryegrass_equals_scipy():
    fit = fit_w14(RYEGRASS.conc, RYEGRASS.rootl, family="normal")
    assert fit.usable, fit.reason
    ours = fit.natural()
    start = [ours["b"] * 0.8, ours["c"] + 0.3, ours["d"] * 0.9, ours["e"] * 1.2]
    with np.errstate(invalid="ignore"):
        theirs, _ = optimize.curve_fit(weibull1, RYEGRASS.conc.to_numpy(float), RYEGRASS.rootl.to_numpy(float),
                                       p0=start, maxfev=20000)
    for name, value in zip(("b", "c", "d", "e"), theirs):
        assert ours[name] == pytest.approx(value, rel=1e-4), name


def test_w14_jacobian_matches_finite_differences():
    x = np.array([0.0, 0.001, 0.01, 0.03, 0.1, 0.0, 0.01, 0.1])
    blocks = ["s0"] * 5 + ["s1"] * 3
    design = make_design("W1.4", "binomial", x, 0.002, ["s0", "s1"], blocks)
    phi = np.array([1.3, -2.0, 0.4, np.log(0.02), 0.3])
    _, D = design.mean(phi)
    step = 1e-6
    numeric = np.column_stack([(design.mean(phi + step * e)[0] - design.mean(phi - step * e)[0]) / (2 * step)
                               for e in np.eye(len(phi))])
    np.testing.assert_allclose(D, numeric, rtol=1e-6, atol=1e-9)


def test_a_registered_model_is_fitted_by_the_table_api_and_the_cli(tmp_path):
    import pandas as pd

    from scaling.cli import main

    n = np.full(len(DOSES), 500)
    k = np.random.default_rng(5).binomial(n, weibull1(DOSES, **TRUTH))
    df = pd.DataFrame({"dose": DOSES, "misaligned": k, "total": n, "seed": np.tile([0, 1, 2, 3], 8)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        report = fit_table(df, models="W1.4,LL.4")
    fits = {f.model: f for f in report.fits}
    assert set(fits) == {"W1.4", "LL.4"} and fits["W1.4"].usable
    assert fits["W1.4"].loglik > fits["LL.4"].loglik  # the curve the data came from fits them better
    df.to_csv(tmp_path / "r.csv", index=False)
    assert main(["fit", str(tmp_path / "r.csv"), "--out", str(tmp_path / "fit"), "--models", "W1.4",
                 "--background", "none", "--pool-splits"]) == 0
    assert "W1.4" in (tmp_path / "fit" / "fit.md").read_text()
    assert main(["fit", str(tmp_path / "r.csv"), "--models", "W9", "--pool-splits"]) == 2
