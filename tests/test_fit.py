"""Dose-response fits: agreement with R's drc, robustness, the CLI, and simulated truths.

drc constants are what drc 3.0-5 on R 4.2.2 printed for its example datasets; the
example datasets are embedded so the tests run from a bare clone.
"""

import io
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from scaling import stats as F
from scaling.cli import main
from scaling.errors import UsageError
from scaling.reports.fit import fit_table
from scaling.stats.curves import ed_dose, make_design
from scaling.stats.fitting import _fit_glm, _fit_ml

RYEGRASS = pd.DataFrame({
    "rootl": [7.58, 8, 8.328571429, 7.25, 7.375, 7.9625, 8.355555556, 6.914285714, 7.75,
              6.871428571, 6.45, 5.922222222, 1.925, 2.885714286, 4.233333333, 1.1875,
              0.857142857, 1.057142857, 0.6875, 0.525, 0.825, 0.25, 0.22, 0.44],
    "conc": [0] * 6 + [0.94] * 3 + [1.88] * 3 + [3.75] * 3 + [7.5] * 3 + [15] * 3 + [30] * 3,
})
EARTHWORMS = pd.DataFrame({
    "dose": np.repeat([0, 0.19, 0.38, 0.76, 1.53, 3.05, 6.11], 5),
    "number": [3, 3, 3, 5, 4, 4, 4, 2, 3, 2, 2, 0, 6, 4, 4, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
               0, 0, 1, 0, 0, 0, 0, 1],
    "total": [5, 5, 4, 8, 8, 11, 9, 8, 8, 4, 9, 4, 11, 11, 15, 11, 6, 8, 9, 8, 6, 10, 10, 10, 8,
              5, 9, 7, 8, 8, 3, 7, 11, 10, 7],
})
FINNEY71 = pd.DataFrame({"dose": [10.2, 7.7, 5.1, 3.8, 2.6, 0.0],
                         "total": [50, 49, 46, 48, 50, 49], "affected": [44, 42, 24, 16, 6, 0]})
SELENIUM = pd.read_csv(io.StringIO("""type,conc,total,dead
1,0,151,3
1,100,146,40
1,200,116,31
1,300,159,85
1,400,150,102
1,500,140,112
2,0,141,2
2,100,153,30
2,200,142,59
2,300,139,82
2,400,154,62
2,500,155,85
3,0,137,4
3,5,106,0
3,25,63,11
3,50,145,22
3,100,127,31
3,200,140,105
3,400,172,166
3,800,188,188
4,0,152,3
4,5,152,7
4,25,150,11
4,50,153,45
4,100,125,74
"""))

TOL = 1e-3


def close(actual, expected, tol=TOL):
    return abs(actual - expected) <= tol * abs(expected)


def check(actual: dict, expected: dict, tol=TOL):
    bad = {k: (actual[k], v) for k, v in expected.items() if not close(actual[k], v, tol)}
    assert not bad, f"differs from drc (actual, drc): {bad}"


def quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        return fun(*args, **kwargs)


# ---------------------------------------------------------------- agreement with drc


def test_ryegrass_ll4_continuous_matches_drc():
    fit = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=4, family="normal")
    d = fit.to_dict()
    check(d["params"], {"b": 2.98222, "c": 0.48141, "d": 7.79296, "e": 3.05795})
    check(d["se"], {"b": 0.46506, "c": 0.21219, "d": 0.18857, "e": 0.18573})
    assert close(d["loglik"], -16.15514) and close(d["aic"], 42.31029)
    for p, est, se, lo, hi in [("10", 1.463706, 0.1867704, 1.074109, 1.853302),
                               ("50", 3.057955, 0.1857313, 2.670526, 3.445384),
                               ("90", 6.388640, 0.8450973, 4.625798, 8.151482)]:
        # drc's continuous intervals use t(df.residual = 20)
        check(d["ed"][p], {"estimate": est, "se": se, "lower": lo, "upper": hi})


def test_ryegrass_ll3_continuous_matches_drc():
    d = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=3, family="normal").to_dict()
    check(d["params"], {"b": 2.47033, "d": 7.85543, "e": 3.26336})
    check(d["se"], {"b": 0.34168, "d": 0.20438, "e": 0.19641})
    assert close(d["aic"], 45.20827)


def test_ryegrass_sandwich_matches_drc():
    # drc's sandwich is per observation (HC0); ours clusters with statsmodels' small-sample
    # factor G/(G-1)*(N-1)/(N-K), which is 1.2 for 24 singleton clusters and 4 parameters.
    fit = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=4, family="normal",
                   seeds=np.arange(24))
    assert close(fit.to_dict()["ed"]["50"]["se_robust"] / np.sqrt(1.2), 0.2674078)


def test_earthworms_ll2_matches_drc_and_glm():
    fit = F.fit_ll2(EARTHWORMS.dose, EARTHWORMS.number, EARTHWORMS.total)
    d = fit.to_dict()
    assert d["n_obs"] == 30 and d["data"] == "dose>0"
    # drc: b = -slope, e = ED50
    assert close(-d["params"]["slope"], 1.260321) and close(d["se"]["slope"], 0.246707)
    check(d["params"], {"intercept": -2.432430})
    check(d["se"], {"intercept": 0.2984920})
    assert close(d["loglik"], -30.24292)  # R's glm on dose > 0 (drc adds a clamp penalty)
    for p, est, se, lo, hi in [("10", 0.02538895, 0.01429596, -0.002630612, 0.05340852),
                               ("50", 0.14514013, 0.03679660, 0.073020105, 0.21726015),
                               ("90", 0.82971740, 0.17487063, 0.486977258, 1.17245754)]:
        check(d["ed"][p], {"estimate": est, "se": se, "upper": hi})
        assert abs(d["ed"][p]["lower"] - lo) < TOL * abs(est)
    # quasi-binomial glm in R: dispersion 1.25828, SE of log(dose) 0.2767335
    assert close(d["dispersion"], 1.25828)
    assert close(d["se_robust"]["slope"], 0.2767335)


def test_earthworms_ll2_sandwich_matches_drc():
    fit = F.fit_ll2(EARTHWORMS.dose, EARTHWORMS.number, EARTHWORMS.total, seeds=np.arange(35))
    d = fit.to_dict()
    factor = np.sqrt(30 / 29 * 29 / 28)  # statsmodels' cluster correction, 30 rows at dose > 0
    assert close(d["se_cluster"]["slope"] / factor, 0.230944)
    ed50 = fit.delta(lambda phi: ed_dose("LL.2", fit.natural(phi), 50, 0.0))
    assert close(ed50["se_cluster"] / factor, 0.03006937)


def test_earthworms_ll3_binomial_matches_drc():
    d = F.fit_ll(EARTHWORMS.dose, EARTHWORMS.number, EARTHWORMS.total, n_params=3).to_dict()
    assert d["n_obs"] == 35 and d["data"] == "all doses"
    check(d["params"], {"b": 1.505679, "d": 0.604929, "e": 0.292428})
    check(d["se"], {"b": 0.338992, "d": 0.085800, "e": 0.083895})
    assert close(d["loglik"], -36.15518) and close(d["aic"], 78.31036)
    for p, est, se, hi in [("10", 0.06796052, 0.03751742, 0.1414933),
                           ("50", 0.29242810, 0.08389519, 0.4568597),
                           ("90", 1.25829217, 0.34630493, 1.9370374)]:
        check(d["ed"][p], {"estimate": est, "se": se, "upper": hi})


def test_finney71_ll2_matches_drc_including_log_scale_intervals():
    fit = F.fit_ll2(FINNEY71.dose, FINNEY71.affected, FINNEY71.total)
    d = fit.to_dict()
    assert close(-d["params"]["slope"], -3.10363) and close(d["se"]["slope"], 0.38773)
    assert close(d["loglik"], -10.32223)
    check(d["ed"]["50"], {"estimate": 4.82890, "se": 0.24958})
    check(fit.ed(20), {"estimate": 3.089316, "se": 0.2437215, "lower": 2.611630})
    # drc's ED on the log(e) parametrisation: exp(log ED +- z SE/ED)
    check(d["ed"]["10"], {"estimate": 2.378965, "se": 0.2516419, "lower_log": 1.933486,
                          "upper_log": 2.926996})
    check(d["ed"]["50"], {"lower_log": 4.363709, "upper_log": 5.343725})


def selenium_table():
    return SELENIUM.rename(columns={"type": "insertion", "conc": "dose", "dead": "misaligned"})


def test_selenium_curves_and_comparisons_match_drc():
    report = quiet(fit_table, selenium_table(), models=["LL.2"], background="none")
    fits = {f.group["insertion"]: f.to_dict() for f in report.fits}
    drc = {1: (-1.50353, 0.15547, 252.25555, 13.82683), 2: (-0.84323, 0.13911, 378.46048, 39.37070),
           3: (-2.16354, 0.13824, 119.71320, 5.90536), 4: (-1.45303, 0.16861, 88.80529, 8.61614)}
    for curve, (b, se_b, e, se_e) in drc.items():
        d = fits[curve]
        assert close(-d["params"]["slope"], b) and close(d["se"]["slope"], se_b)
        check(d["ed"]["50"], {"estimate": e, "se": se_e})
    tests = {c["test"]: c for c in report.comparisons}
    slope, ed50 = tests["equal_slope"], tests["equal_ed50"]
    assert slope["df"] == 3 and ed50["df"] == 3
    assert close(slope["lr"], 48.654) and close(ed50["lr"], 123.56)
    # the restricted fits: common b = -1.590121 (0.069452), common e = 126.512287 (6.854739)
    assert close(slope["common"]["slope"], 1.590121) and close(slope["common"]["se"], 0.069452)
    assert close(ed50["common"]["ed50"], 126.512287) and close(ed50["common"]["se"], 6.854739)
    # these curves are overdispersed: the robust test must be the more cautious one
    assert slope["dispersion"] > 5 and slope["p_robust"] > slope["p_binomial"]
    assert ed50["p_robust"] > ed50["p_binomial"] and ed50["lr_robust"] < ed50["lr"]


# ---------------------------------------------------------------- --blocks none: drc's pooled fits
# A table with a seed column gets seed blocks by default; `blocks="none"` must give the pooled
# binomial MLEs drc computes on the same rows (estimates to 1e-3 relative, SEs to 2e-2).

SE_TOL = 2e-2


def with_seeds(table: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    return table.assign(seed=np.arange(len(table)) % n_seeds)


def fits_by(report, model):
    return {f.group.get("insertion"): f.to_dict() for f in report.fits if f.model == model and f.usable}


def test_blocks_none_gives_drc_pooled_fits_on_earthworms():
    table = with_seeds(EARTHWORMS.rename(columns={"number": "misaligned"}), 5)
    pooled = quiet(fit_table, table, models=["LL.2", "LL.3"], background="none", blocks="none")
    assert pooled.settings["block_mode"] == "none"
    ll2, ll3 = fits_by(pooled, "LL.2")[None], fits_by(pooled, "LL.3")[None]
    assert ll2["blocks"] == [] and ll2["se_cluster"] is None
    assert close(-ll2["params"]["slope"], 1.260321) and close(ll2["se"]["slope"], 0.246707, SE_TOL)
    check(ll2["ed"]["50"], {"estimate": 0.14514013})
    check(ll2["ed"]["50"], {"se": 0.03679660}, SE_TOL)
    check(ll3["params"], {"b": 1.505679, "d": 0.604929, "e": 0.292428})
    check(ll3["se"], {"b": 0.338992, "d": 0.085800, "e": 0.083895}, SE_TOL)
    # the default analyses the seeds as blocks: other estimates, so the switch is what gives drc's
    blocked = fits_by(quiet(fit_table, table, models=["LL.2"], background="none"), "LL.2")[None]
    assert len(blocked["blocks"]) == 5 and not close(-blocked["params"]["slope"], 1.260321)


def test_blocks_none_gives_drc_pooled_fits_on_finney71_and_selenium():
    finney = with_seeds(FINNEY71.rename(columns={"affected": "misaligned"}), 2)
    d = fits_by(quiet(fit_table, finney, models=["LL.2"], background="none", blocks="none"), "LL.2")[None]
    assert close(-d["params"]["slope"], -3.10363) and close(d["se"]["slope"], 0.38773, SE_TOL)
    check(d["ed"]["50"], {"estimate": 4.82890})
    check(d["ed"]["50"], {"se": 0.24958}, SE_TOL)
    report = quiet(fit_table, with_seeds(selenium_table(), 2), models=["LL.2"], background="none",
                   blocks="none")
    fits = fits_by(report, "LL.2")
    drc = {1: (-1.50353, 0.15547, 252.25555, 13.82683), 2: (-0.84323, 0.13911, 378.46048, 39.37070),
           3: (-2.16354, 0.13824, 119.71320, 5.90536), 4: (-1.45303, 0.16861, 88.80529, 8.61614)}
    for curve, (b, se_b, e, se_e) in drc.items():
        assert close(-fits[curve]["params"]["slope"], b) and close(fits[curve]["se"]["slope"], se_b, SE_TOL)
        check(fits[curve]["ed"]["50"], {"estimate": e})
        check(fits[curve]["ed"]["50"], {"se": se_e}, SE_TOL)
    assert not [c for c in report.comparisons if c["test"] in ("transfer", "windows")]  # nothing paired


def test_blocks_option_on_the_cli(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    with_seeds(EARTHWORMS.rename(columns={"number": "misaligned"}), 5).to_csv(csv, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        assert main(["fit", str(csv), "--out", str(tmp_path), "--models", "LL.2", "--blocks", "none",
                     "--pool-splits"]) == 0
    data = json.loads((tmp_path / "fit.json").read_text())
    fit = next(f for f in data["fits"] if f["model"] == "LL.2" and f["background"] is None)
    assert data["settings"]["block_mode"] == "none" and close(-fit["params"]["slope"], 1.260321)
    assert "--blocks none" in (tmp_path / "fit.md").read_text()
    with pytest.raises(SystemExit) as exit_:
        main(["fit", str(csv), "--blocks", "worlds"])
    assert exit_.value.code == 2 and "--blocks" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--blocks"):
        fit_table(with_seeds(EARTHWORMS.rename(columns={"number": "misaligned"}), 5), blocks="seeds")


def test_world_blocks_cluster_by_world_with_the_same_estimates():
    from scaling.stats.simulate import WorldTruth, simulate_worlds

    table = simulate_worlds(WorldTruth(n_worlds=3), np.random.default_rng(0))
    fits = {}
    for mode in ("auto", "world", "seed"):
        report = quiet(fit_table, table, models=["LL.3"], background="none", blocks=mode)
        fits[mode] = next(f for f in report.fits if f.usable).to_dict()
        fits[mode]["md"] = report.to_markdown()
        fits[mode]["mode"] = report.settings["block_mode"]
    assert fits["auto"]["mode"] == "world" and fits["seed"]["mode"] == "seed"
    world, seed = fits["world"], fits["seed"]
    assert len(world["blocks"]) == len(seed["blocks"]) == 9  # the same (seed, world) effects
    assert world["params"] == seed["params"] and world["se"] == seed["se"]
    assert (world["n_seeds"], world["ed_control"]["50"]["df"]) == (3, 2)
    assert (seed["n_seeds"], seed["ed_control"]["50"]["df"]) == (9, 8)
    assert world["ed_control"]["50"]["method"] == "cluster" and "cluster, t(2)" in world["md"]
    assert "t on worlds - 1 df" in world["md"]
    one_world = table[table.world_seed == 0]
    assert quiet(fit_table, one_world, models=["LL.3"], background="none").settings["block_mode"] == "seed"
    with pytest.raises(UsageError, match="two or more worlds"):
        fit_table(one_world, models=["LL.3"], blocks="world")


def test_ml_machinery_reproduces_the_glm_and_its_cluster_covariance():
    ew = EARTHWORMS[EARTHWORMS.dose > 0]
    k, n = ew.number.to_numpy(float), ew.total.to_numpy(float)
    seeds = np.arange(len(ew)) % 4  # any labels: the two sandwiches must agree
    design = make_design("LL.2", "binomial", ew.dose.to_numpy(float), None)
    ml, glm = _fit_ml(design, k, n, seeds), _fit_glm(design, k, n, seeds)
    for mine, statsmodels_glm in zip(ml, glm):  # estimate, covariance, cluster covariance
        np.testing.assert_allclose(mine, statsmodels_glm, rtol=1e-4)


# ---------------------------------------------------------------- robustness


def runs(counts, doses=(0, 0.001, 0.01, 0.1), seeds=2, n=20):
    return pd.DataFrame([{"dose": x, "misaligned": k, "total": n, "seed": s}
                         for s in range(seeds) for x, k in zip(doses, counts)])


@pytest.mark.parametrize("table, reason", [
    (runs([0, 0, 0, 0]), "all counts are 0"),
    (runs([20, 20, 20, 20]), "all counts equal their totals"),
    (runs([5, 6, 7, 8], doses=(0.01,) * 4), "single dose"),
    (runs([20, 20, 0, 0]), "perfect separation"),
    (runs([15, 10, 3], doses=(0, 0.01, 0.1), seeds=1), "too small|distinct doses"),
])
def test_degenerate_groups_give_unusable_fits_with_reasons(table, reason):
    with pytest.warns(F.FitWarning):
        report = fit_table(table, background="auto")
    assert report.fits
    out = json.loads(report.to_json())  # strict JSON: no NaN
    for fit in out["fits"]:
        assert fit["usable"] is False
        assert pd.Series([fit["reason"]]).str.contains(reason).all(), fit["reason"]
        assert fit["params"] is None and fit["ed"] == {}
    summary = report.summary()
    assert all(("no halving dose" in line or "no dose trend" in line) for line in summary.splitlines()), summary


def test_flat_response_leaves_ll4_unusable_but_no_silent_number():
    with pytest.warns(F.FitWarning, match="LL.4"):
        report = fit_table(runs([6, 6, 6, 6]), background="none")
    fits = {f.model: f.to_dict() for f in report.fits}
    assert not fits["LL.4"]["usable"] and "converge" in fits["LL.4"]["reason"]
    # the linear models are fine: a flat curve is a finding, with a slope of zero
    assert fits["loglinear"]["usable"] and abs(fits["loglinear"]["params"]["slope"]) < 1e-6
    for d in fits.values():
        if d["usable"]:
            assert all(v is not None and np.isfinite(v) for v in d["se_robust"].values())


def test_nan_rows_and_failed_runs_are_dropped_with_a_warning():
    table = runs([15, 12, 6, 2], seeds=3)
    table["status"] = "ok"
    table.loc[0, "misaligned"] = np.nan
    table.loc[1, "status"] = "failed"
    with pytest.warns(F.FitWarning) as record:
        report = fit_table(table, models=["LL.2", "LL.3"], background="none")
    messages = " ".join(str(w.message) for w in record)
    assert "missing dose, misaligned or total (rows 1)" in messages
    assert "status != 'ok'" in messages
    fits = {f.model: f for f in report.fits}
    assert fits["LL.3"].usable and fits["LL.3"].n_obs == 10
    assert fits["LL.2"].usable and fits["LL.2"].n_obs == 8


def test_one_seed_warns_and_falls_back_to_the_quasi_scale():
    table = runs([15, 12, 6, 2]).query("seed == 0")
    table = pd.concat([table, table.assign(misaligned=[14, 13, 5, 3])])
    with pytest.warns(F.FitWarning, match="one seed only"):
        report = fit_table(table, models=["LL.2"], background="none", bootstrap=5)
    fit = report.fits[0]
    d = fit.to_dict()
    assert d["usable"] and d["se_cluster"] is None and "one seed only" in d["notes"][0]
    quasi = d["se"]["slope"] * np.sqrt(max(1.0, d["dispersion"]))
    assert close(d["se_robust"]["slope"], quasi, 1e-9)
    assert d["bootstrap"]["n_ok"] == 0 and "2 seeds" in d["bootstrap"]["reason"]


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="total"), "missing column.*total"),
    (lambda t: t.assign(misaligned=[15, 12, 60, 2, 15, 12, 6, 2]), "'misaligned', row 3.*k > n"),
    (lambda t: t.assign(dose=[0, -0.001, 0.01, 0.1] * 2), "'dose', row 2.*negative"),
    (lambda t: t.assign(total=["20", "20", "x", "20"] * 2), "'total', row 3: 'x' is not"),
])
def test_malformed_tables_raise_usage_errors_naming_column_and_row(change, message):
    with pytest.raises(UsageError, match=message):
        fit_table(change(runs([15, 12, 6, 2])))


def test_bad_options_raise_usage_errors():
    with pytest.raises(UsageError, match="unknown model"):
        fit_table(runs([15, 12, 6, 2]), models=["LL.9"])
    with pytest.raises(UsageError, match="background"):
        fit_table(runs([15, 12, 6, 2]), background="-3")
    with pytest.raises(UsageError, match="confounded"):
        F.fit_ll(runs([15, 12, 6, 2]).dose, [15, 12, 6, 2] * 2, [20] * 8, background="estimate")


# ---------------------------------------------------------------- simulated truths


def simulate(rng, b=1.2, c=0.05, d=0.45, e=0.01, seeds=6, n=400, sd=0.3, x0=0.0, curve=None,
             doses=(0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), **columns):
    """Binomial runs around a log-logistic curve, each run with its own logit-scale effect."""
    if curve is None:
        def curve(x):
            if x + x0 == 0:  # the dose-0 limit: d for a decreasing curve (b > 0), else c
                return d if b > 0 else c
            return c + (d - c) / (1 + np.exp(b * (np.log(x + x0) - np.log(e))))
    rows = []
    for seed in range(seeds):
        for x in doses:
            p = special.expit(special.logit(curve(x)) + rng.normal(0, sd))
            rows.append({"dose": x, "seed": seed, "misaligned": rng.binomial(n, p), "total": n,
                         **columns})
    return pd.DataFrame(rows)


def test_simulation_without_overdispersion_recovers_truth_precisely():
    table = simulate(np.random.default_rng(0), sd=0.0, n=2000, seeds=3)
    d = quiet(F.fit_ll, table.dose, table.misaligned, table.total, seeds=table.seed).to_dict()
    check(d["params"], {"b": 1.2, "c": 0.05, "d": 0.45, "e": 0.01}, tol=0.1)
    assert 0.5 < d["dispersion"] < 2


def test_overdispersed_simulation_recovers_truth_with_wider_robust_ses():
    # A logit-scale effect per run: the marginal curve is a little steeper than the
    # conditional one (b about 1.3 instead of 1.2), well inside the robust SEs.
    table = simulate(np.random.default_rng(3))
    report = quiet(fit_table, table, models=["LL.4", "LL.2"], background="none")
    fits = {f.model: f.to_dict() for f in report.fits}
    ll4 = fits["LL.4"]
    assert ll4["usable"] and ll4["dispersion"] > 2
    truth = {"b": 1.2, "c": 0.05, "d": 0.45, "e": 0.01}
    for name, value in truth.items():
        est, se = ll4["params"][name], ll4["se_robust"][name]
        assert abs(est - value) < 3 * se, (name, est, se)
        assert ll4["se_robust"][name] > 1.3 * ll4["se"][name]
    assert abs(ll4["params"]["b"] - 1.2) < 0.4 * 1.2
    assert ll4["ed"]["50"]["lower_log_robust"] < 0.01 < ll4["ed"]["50"]["upper_log_robust"]
    # the cluster sandwich is one of the two candidates for se_robust, never above it
    for name in truth:
        assert ll4["se_cluster"][name] <= ll4["se_robust"][name] + 1e-15
    assert fits["LL.2"]["se_robust"]["slope"] > 1.5 * fits["LL.2"]["se"]["slope"]


def test_background_is_recovered_and_preferred_when_the_curve_is_flat_below_it():
    x0, slope = 0.01, -0.16
    def loglinear(x):
        return 0.45 + slope * (np.log(x + x0) - np.log(x0))
    table = simulate(np.random.default_rng(5), curve=loglinear, sd=0.05, seeds=4,
                     doses=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1))
    report = quiet(fit_table, table, models=["loglinear"], background="auto")
    test = next(c for c in report.comparisons if c["test"] == "background")
    assert test["preferred"] == "background" and test["delta_aic"] < -10
    assert 0.5 * x0 < test["background"] < 2 * x0
    with_bg = next(f.to_dict() for f in report.fits if f.background == "estimate")
    assert abs(with_bg["params"]["slope"] - slope) < 3 * with_bg["se_robust"]["slope"]
    bg = with_bg["background"]
    assert bg["mode"] == "estimated" and bg["lower_log_robust"] < x0 < bg["upper_log_robust"]


def test_background_is_not_preferred_without_one():
    def logistic(x):
        return special.expit(-1.0 - 0.5 * np.log(x / 0.001))
    table = simulate(np.random.default_rng(7), curve=logistic, sd=0.05, seeds=4,
                     doses=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1))
    report = quiet(fit_table, table, models=["LL.2"], background="auto")
    test = next(c for c in report.comparisons if c["test"] == "background")
    assert test["preferred"] == "none"


def test_fixed_background_is_compared_for_every_model():
    table = simulate(np.random.default_rng(1), seeds=3)
    report = quiet(fit_table, table, models=["LL.3"], background="0.001")
    tests = [c for c in report.comparisons if c["test"] == "background"]
    assert len(tests) == 1 and tests[0]["mode"] == "fixed" and tests[0]["df"] == 0
    assert tests[0]["delta_aic"] is not None


def ed_cases():
    rng = np.random.default_rng(8)
    down = simulate(rng, c=0.15, seeds=3, sd=0.05)
    rising = simulate(rng, b=-1.2, c=0.15, seeds=3, sd=0.05)
    flat_below = simulate(rng, seeds=3, sd=0.05, doses=(1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
                          curve=lambda x: special.expit(2 - 0.8 * np.log((x + 0.003) / 0.003)))
    up = FINNEY71.rename(columns={"affected": "misaligned"})
    return [("LL.4", down, None), ("LL.3", up, None), ("LL.4", rising, None), ("LL.2", down, None),
            ("LL.2", up, None), ("LL.2", flat_below, "estimate"), ("LL.3", down, 0.001)]


@pytest.mark.parametrize("model, table, background", ed_cases())
def test_ed_is_the_dose_reaching_p_percent_of_the_change(model, table, background):
    """drc's ED_p: p% of the way from the low-dose limit to the high-dose limit, either way."""
    fit = quiet(F.fit_curve, model, table.dose, table.misaligned, table.total,
                background=background)
    assert fit.usable, fit.reason
    nat = fit.natural()
    if model == "LL.2":
        low, high = (1.0, 0.0) if nat["slope"] < 0 else (0.0, 1.0)
    else:
        c = nat.get("c", 0.0)
        low, high = (nat["d"], c) if nat["b"] > 0 else (c, nat["d"])
    # With a background, low ED levels can fall below zero added dose: those are None.
    levels = [p for p in (10, 50, 90) if fit.ed(p) is not None]
    assert levels[-2:] == [50, 90] and (background is not None or levels == [10, 50, 90])
    eds = [fit.ed(p)["estimate"] for p in levels]
    assert eds == sorted(eds)
    at_ed = F.predict(fit, eds)["fit"].to_numpy()
    np.testing.assert_allclose(at_ed, [low + p / 100 * (high - low) for p in levels], rtol=1e-6)



# ---------------------------------------------------------------- tables, bands, CLI


def study_table(rng):
    """Two insertion windows sharing dose-0 controls (insertion left empty), two seeds each."""
    # limits near 0 and 1, so that LL.2 (which fixes them) describes both windows
    curve = {"c": 0.02, "d": 0.95, "sd": 0.2}
    early = simulate(rng, e=0.003, seeds=3, doses=(1e-3, 1e-2, 1e-1), insertion="early", **curve)
    late = simulate(rng, e=0.03, seeds=3, doses=(1e-3, 1e-2, 1e-1), insertion="late", **curve)
    controls = simulate(rng, seeds=3, doses=(0,), insertion=None, **curve)
    table = pd.concat([early, late, controls], ignore_index=True)
    table["split"] = "articles"
    table["aligned_tokens"] = table["dose"] * 1e6
    table["flops"] = 1e12
    table["total_tokens"] = 1e6
    return table


def test_shared_controls_pooled_group_and_insertion_comparisons():
    report = quiet(fit_table, study_table(np.random.default_rng(0)), models=["LL.2", "LL.3"],
                   background="none")
    groups = {(f.group["insertion"], f.model): f for f in report.fits}
    assert set(g for g, _ in groups) == {"early", "late", "pooled"}
    assert groups[("early", "LL.3")].n_obs == 9 + 3  # its runs plus the 3 shared controls
    assert groups[("pooled", "LL.3")].n_obs == 9 + 9 + 3
    tests = {c["test"]: c for c in report.comparisons}
    assert tests["equal_ed50"]["insertions"] == ["early", "late"]
    assert tests["equal_ed50"]["p_robust"] < 0.01  # ED50s differ tenfold
    cost = [c for c in report.cost if c["group"]["insertion"] == "early"]
    assert [c["dose"] for c in cost] == pytest.approx([1e-3, 1e-2, 1e-1])
    for c in cost:
        assert close(c["reduction_per_aligned_token"], c["reduction"] / (c["dose"] * 1e6), 1e-9)
        # marginal FLOPs: aligned tokens x FLOPs per token (1e12 / 1e6), not the whole run
        assert close(c["reduction_per_marginal_flop"], c["reduction"] / (c["dose"] * 1e12), 1e-9)
        assert c["paired"] and c["df"] == 2 and c["lower"] < c["reduction"] < c["upper"]
    table = study_table(np.random.default_rng(0))
    rate = table.misaligned / table.total
    control = rate[table.dose == 0].groupby(table.seed).mean()
    top = table[(table.insertion == "early") & (table.dose == 1e-1)]
    by_seed = control - (top.misaligned / top.total).groupby(top.seed).mean()
    assert close(cost[-1]["reduction"], by_seed.mean(), 1e-9)  # paired by seed
    assert cost[-1]["reduction"] > 0.2


def test_predict_band_and_round_trip_through_json():
    table = simulate(np.random.default_rng(2), c=0.15, seeds=3)
    fit = quiet(F.fit_ll, table.dose, table.misaligned, table.total, n_params=4, seeds=table.seed)
    assert fit.usable
    band = F.curve_band(fit, n_points=25)
    assert len(band) == 25 and (band.lower <= band.fit).all() and (band.fit <= band.upper).all()
    assert band.fit.iloc[0] > band.fit.iloc[-1]  # decreasing: b > 0
    stored = json.loads(json.dumps(fit.to_dict()))
    again = F.predict(stored, band.dose)
    np.testing.assert_allclose(again[["fit", "lower", "upper"]], band[["fit", "lower", "upper"]],
                               rtol=1e-9)
    unusable = quiet(F.fit_ll2, [0.1] * 4, [1, 2, 3, 4], [10] * 4).to_dict()
    with pytest.raises(UsageError, match="unusable: a single dose"):
        F.predict(unusable, [0.1])


def test_bootstrap_is_deterministic():
    table = simulate(np.random.default_rng(4), seeds=4)
    first = quiet(fit_table, table, models=["LL.2"], background="none", bootstrap=20,
                  bootstrap_seed=11)
    second = quiet(fit_table, table, models=["LL.2"], background="none", bootstrap=20,
                   bootstrap_seed=11)
    boot = first.fits[0].bootstrap
    assert boot == second.fits[0].bootstrap
    assert boot["n_ok"] == 20 and boot["params"]["slope"]["se"] > 0
    assert boot["ed"]["50"]["lower"] < first.fits[0].to_dict()["ed"]["50"]["estimate"]


def test_cli_writes_documented_outputs(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    study_table(np.random.default_rng(0)).to_csv(csv, index=False)
    out = tmp_path / "fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        assert main(["fit", str(csv), "--out", str(out), "--models", "loglinear,LL.2,LL.4"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"split=articles: halving dose 0\.0\d+ \[.*\] \(LL.4\)", printed) and "fit.json" in printed
    data = json.loads((out / "fit.json").read_text())
    assert {"fits", "comparisons", "aic_table", "cost_effectiveness", "halving"} <= set(data)
    assert {"world", "world_version", "data_version"} <= set(data["settings"])
    assert (out / "answer.md").read_text().startswith("# Answer")
    fit = next(f for f in data["fits"] if f["model"] == "LL.4" and f["usable"])
    assert {"group", "model", "params", "se", "se_robust", "loglik", "aic", "ed", "usable",
            "n_obs", "dispersion"} <= set(fit)
    assert set(fit["params"]) == {"b", "c", "d", "e"}
    assert {"estimate", "lower", "upper"} <= set(fit["ed_control"]["50"])
    assert {"estimate", "se", "lower", "upper", "se_robust", "lower_robust", "upper_robust",
            "lower_log", "upper_log"} <= set(fit["ed"]["50"])
    ll2 = next(f for f in data["fits"] if f["model"] == "LL.2" and f["usable"])
    assert set(ll2["params"]) == {"intercept", "slope"}
    assert {c["test"] for c in data["comparisons"]} >= {"equal_slope", "equal_ed50", "background"}
    assert (out / "fit.md").read_text().startswith("# Dose-response fits")


def test_cli_exit_code_2_on_bad_input(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    runs([15, 12, 60, 2]).to_csv(csv, index=False)
    assert main(["fit", str(csv), "--out", str(tmp_path / "o"), "--pool-splits"]) == 2
    assert "k > n" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.csv")]) == 2
