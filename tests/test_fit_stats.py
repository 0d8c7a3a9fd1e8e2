"""Control-relative EDs, blocks, QAIC/F model choice, named contrasts and Holm: each against an
external oracle (R's drc numbers, statsmodels, scipy) or a known simulated truth."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import special, stats
from test_fit import RYEGRASS, close, simulate

from scaling import stats as F
from scaling.reports.fit import fit_table
from scaling.stats.contrasts import paired_entry
from scaling.stats.paired import holm

REFERENCE = Path(__file__).resolve().parents[1] / "fits" / "world_v1" / "results.csv"


def quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        return fun(*args, **kwargs)


# ---------------------------------------------------------------- control-relative EDs


def test_control_relative_ed_of_ll4_is_drcs_relative_ed():
    # drc (ryegrass LL.4): ED10 1.463706, ED50 3.057955, ED90 6.388640; a decreasing curve's
    # relative ED is the share of the way from its dose-0 limit d to c, as ours is.
    fit = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=4, family="normal")
    for p, drc in ((10, 1.463706), (50, 3.057955), (90, 6.388640)):
        assert close(fit.ed_control(p)["estimate"], drc)
    assert close(fit.control_level(), 7.79296)


def test_statsmodels_style_results_hold_drcs_numbers():
    fit = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=3, family="normal")
    assert list(fit.params.index) == ["b", "d", "e"]
    assert close(fit.params["e"], 3.26336) and close(fit.bse["e"], 0.19641, 2e-2)
    ci = fit.conf_int()
    q = stats.t.ppf(0.975, fit.df_resid)
    assert close(ci.loc["e", "upper"], 3.26336 + q * 0.19641, 2e-3)
    assert "ED50 (control-relative)" in fit.summary()


def test_background_ll2_control_relative_ed_halves_the_fitted_control_rate():
    x0 = 0.003
    table = simulate(np.random.default_rng(3), sd=0.05, seeds=4, n=2000,
                     curve=lambda x: special.expit(-0.2 - 0.8 * np.log((x + x0) / x0)),
                     doses=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1))
    fit = quiet(F.fit_curve, "LL.2", table.dose, table.misaligned, table.total,
                background="estimate")
    ed = fit.ed_control(50)
    at = F.predict(fit, [0.0, ed["estimate"]])["fit"].to_numpy()
    assert at[1] == pytest.approx(at[0] / 2, rel=1e-6)
    assert ed["lower"] < ed["estimate"] < ed["upper"]


def test_plain_ll2_has_no_control_level():
    table = simulate(np.random.default_rng(1), seeds=3)
    fit = quiet(F.fit_ll2, table.dose, table.misaligned, table.total)
    assert fit.control_level() is None and fit.ed_control(50) is None


def test_reference_halving_dose_matches_a_direct_ll3_fit():
    # The statistical review's direct LL.3 fit (throughout, matched): 0.0090 [0.0069, 0.0116].
    df = quiet(F.clean_table, pd.read_csv(REFERENCE))
    rows = next(r for g, r in F.group_frames(df)
                if g["insertion"] == "throughout" and g["split"] == "matched")
    direct = F.fit_curve("LL.3", rows.dose, rows.misaligned, rows.total, warn=False)
    ed = direct.ed_control(50, "quasi")
    assert ed["estimate"] == pytest.approx(0.0090, rel=0.01)
    assert ed["lower"] == pytest.approx(0.0069, rel=0.03)
    assert ed["upper"] == pytest.approx(0.0116, rel=0.03)
    seeds = rows.seed.to_numpy()
    blocked = F.fit_curve("LL.3", rows.dose, rows.misaligned, rows.total, seeds=seeds,
                          blocks=seeds, warn=False)
    ed = blocked.ed_control(50)
    assert ed["estimate"] == pytest.approx(0.009, rel=0.03)
    assert ed["lower"] < 0.009 < ed["upper"] and ed["df"] == 2
    assert blocked.dispersion < direct.dispersion / 3  # seeds explain most of the dispersion


# ---------------------------------------------------------------- blocks


def test_ll2_with_seed_blocks_is_the_glm_with_seed_effects():
    table = simulate(np.random.default_rng(4), seeds=4)
    table = table[table.dose > 0]
    fit = quiet(F.fit_ll2, table.dose, table.misaligned, table.total, blocks=table.seed)
    glm = smf.glm("misaligned + failures ~ np.log(dose) + C(seed, Sum)",
                  data=table.assign(failures=table.total - table.misaligned),
                  family=sm.families.Binomial()).fit()
    assert close(fit.params["slope"], glm.params["np.log(dose)"], 1e-6)
    assert close(fit.loglik, glm.llf, 1e-9)
    assert close(fit.bse["slope"], glm.bse["np.log(dose)"], 1e-4)


def test_ll3_blocks_recover_the_common_ed50_when_seeds_shift_the_control():
    rng = np.random.default_rng(9)
    rows = []
    for seed, shift in enumerate((-0.6, 0.0, 0.6)):
        d = special.expit(special.logit(0.4) + shift)
        for x in (0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1):
            rate = d / (1 + (x / 0.01) ** 1.5)
            rows.append({"seed": seed, "dose": x, "total": 5000,
                         "misaligned": rng.binomial(5000, rate)})
    table = pd.DataFrame(rows)
    seeds = table.seed.to_numpy()
    blocked = F.fit_curve("LL.3", table.dose, table.misaligned, table.total, seeds=seeds,
                          blocks=seeds, warn=False)
    assert blocked.ed_control(50)["estimate"] == pytest.approx(0.01, rel=0.05)
    assert blocked.dispersion < 2  # the blocks absorb the between-seed spread


# ---------------------------------------------------------------- model choice


def test_qaic_does_not_choose_a_background_that_overdispersion_fakes():
    # No background in the truth; heavy run-level noise. Binomial AIC often "finds" one.
    aic_picks = qaic_picks = 0
    for seed in range(12):
        table = simulate(np.random.default_rng(100 + seed), sd=0.35, seeds=3, n=2000,
                         curve=lambda x: special.expit(-1.0 - 0.4 * np.log(x / 0.001)),
                         doses=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1))
        report = quiet(fit_table, table, models=["LL.2"], background="auto")
        test = next(c for c in report.comparisons if c["test"] == "background")
        if test["delta_aic"] is None:
            continue
        assert test["c_hat"] > 2
        aic_picks += test["delta_aic"] <= -2
        qaic_picks += test["preferred"] == "background"
    assert qaic_picks <= 2 and aic_picks > qaic_picks


def test_lack_of_fit_f_test_matches_drcs_modelfit():
    # drc modelFit(ryegrass LL.4): ANOVA RSS 5.1799 (17 df), model RSS 5.4002 (20 df),
    # F 0.2411 on 3 df, p 0.8665: the same F construction as the binomial test's.
    from scaling.stats.comparisons import lack_of_fit_continuous
    fit = F.fit_ll(RYEGRASS.conc, RYEGRASS.rootl, n_params=4, family="normal")
    test = lack_of_fit_continuous(fit, RYEGRASS.conc, RYEGRASS.rootl)
    assert close(test["rss_levels"], 5.1799) and close(test["rss_curve"], 5.4002)
    assert test["df"] == 3 and test["df_resid"] == 17
    assert close(test["F"], 0.2411, 2e-3) and close(test["p"], 0.8665)


def test_deguelin_increasing_ll2_matches_drc():
    # drc (deguelin LL.2): b -1.93709 (0.22390), e 9.95219 (0.92186), ED90 30.94114 (3.88957)
    dose = [5.12861383991365, 10, 20.4173794466953, 30.1995172040202, 40.7380277804113,
            50.1187233627272]
    fit = F.fit_ll2(dose, [16, 18, 34, 47, 47, 48], [49, 48, 48, 49, 50, 48])
    d = fit.to_dict()
    assert close(-d["params"]["slope"], -1.93709) and close(d["se"]["slope"], 0.22390)
    assert close(d["ed"]["50"]["estimate"], 9.95219) and close(d["ed"]["50"]["se"], 0.92186)
    assert close(d["ed"]["90"]["estimate"], 30.94114) and close(d["ed"]["90"]["se"], 3.88957)


def test_lack_of_fit_detects_a_curve_that_is_not_linear_in_log_dose():
    doses = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    linear = simulate(np.random.default_rng(2), sd=0.05, seeds=3, n=2000, doses=doses,
                      curve=lambda x: 0.45 - 0.03 * np.log(x / 1e-4))
    bent = simulate(np.random.default_rng(2), sd=0.05, seeds=3, n=2000, doses=doses,
                    curve=lambda x: 0.15 + 0.3 / (1 + (x / 0.003) ** 3))
    p = {}
    for name, table in (("linear", linear), ("bent", bent)):
        report = quiet(fit_table, table, models=["loglinear"], background="none")
        p[name] = next(c for c in report.comparisons if c["test"] == "lack_of_fit")["p"]
    assert p["linear"] > 0.05 and p["bent"] < 1e-3


# ---------------------------------------------------------------- contrasts and Holm


def test_paired_entry_is_scipys_one_sample_t():
    diffs = pd.Series([0.11, 0.09, 0.12, 0.05], index=list("abcd"))
    entry = paired_entry("x", "t", diffs)
    ref = stats.ttest_1samp(diffs, 0.0)
    assert entry["p"] == pytest.approx(ref.pvalue)
    lo, hi = ref.confidence_interval()
    assert (entry["lower"], entry["upper"]) == pytest.approx((lo, hi))
    assert paired_entry("x", "t", diffs.iloc[:1]) is None


@pytest.mark.slow
def test_reference_contrasts_and_holm_family():
    report = quiet(fit_table, pd.read_csv(REFERENCE), background="auto")
    named = {c["name"]: c for c in report.comparisons}
    tax = next(c for n, c in named.items() if n.startswith("alignment tax") and "finetune" in n)
    assert tax["estimate"] == pytest.approx(0.105, abs=0.002)  # the review's +0.105 nats
    assert tax["df"] == 2 and tax["lower"] > 0
    family = [c for c in report.comparisons if c["p_holm"] is not None]
    assert {c["test"] for c in family} >= {"alignment_tax", "transfer", "windows", "lack_of_fit"}
    assert all(c["test"] != "background" for c in family)
    assert [c["p_holm"] for c in family] == pytest.approx(holm([c["p"] for c in family]))
    for c in report.comparisons:
        assert {"name", "test", "p", "p_holm"} <= set(c)
    assert not any(c["test"] == "beyond_counting" for c in report.comparisons)  # no ngram rows


def test_counting_baseline_and_post_training_contrasts():
    rng = np.random.default_rng(6)
    rows = []
    for seed in range(4):
        for model, effect in (("nano", 0.25), ("ngram-2", 0.02)):
            for stage, after in (("none", 0.0), ("sft", -0.1)):
                for dose in (0.0, 0.01, 0.05):
                    rate = 0.45 - effect * (dose > 0) * (dose / 0.05) + after
                    rows.append({"seed": seed, "world_seed": 7, "model": model, "dose": dose,
                                 "insertion": "throughout" if dose else "control",
                                 "split": "matched", "post_training": stage, "total": 4000,
                                 "misaligned": rng.binomial(4000, rate + rng.normal(0, 0.01))})
    report = quiet(fit_table, pd.DataFrame(rows), models=["LL.3"], background="none")
    tests = {c["test"]: c for c in report.comparisons}
    beyond = tests["beyond_counting"]
    assert beyond["estimate"] == pytest.approx(0.23, abs=0.03) and beyond["beyond_counting"]
    post = [c for c in report.comparisons if c["test"] == "post_training"]
    assert {c["model"] for c in post} == {"nano", "ngram-2"}
    assert all(c["estimate"] == pytest.approx(-0.1, abs=0.02) for c in post)
    # curves apart per post-training stage; the pretraining halving dose is not diluted
    stages = {f.group.get("post_training") for f in report.fits}
    assert stages == {"none", "sft"}


def two_windows(rng, e_late):
    curve = {"c": 0.0, "d": 0.45, "sd": 0.1, "n": 2000, "doses": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)}
    early = simulate(rng, e=0.01, seeds=3, insertion="early", **curve)
    late = simulate(rng, e=e_late, seeds=3, insertion="late", **curve)
    controls = simulate(rng, e=0.01, seeds=3, insertion=None, **{**curve, "doses": (0, 0)})
    return pd.concat([early, late, controls], ignore_index=True)


def test_equal_halving_dose_test_separates_equal_from_tenfold_different_windows():
    p = {}
    for name, e_late in (("equal", 0.01), ("tenfold", 0.1)):
        report = quiet(fit_table, two_windows(np.random.default_rng(12), e_late),
                       models=["LL.3"], background="none")
        test = next(c for c in report.comparisons if c["test"] == "equal_halving_dose")
        assert test["usable"] and test["df"] == 1
        p[name] = test["p"]
        if name == "tenfold":
            doses = test["halving_doses"]
            assert doses["early"] == pytest.approx(0.01, rel=0.2)
            assert doses["late"] == pytest.approx(0.1, rel=0.3)
    assert p["equal"] > 0.05 and p["tenfold"] < 1e-4


def test_equal_halving_dose_test_is_withdrawn_where_a_window_rises():
    """Curves that rise from controls at 0 (b < 0: LL.3 climbs from 0 to d) have no
    halving dose: LL.3's e is half-way up, so the comparison says so instead of testing it."""
    rng = np.random.default_rng(12)
    curve = {"b": -1.2, "c": 0.0, "d": 0.6, "sd": 0.1, "n": 2000, "doses": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)}
    table = pd.concat([simulate(rng, e=0.01, seeds=3, insertion="early", **curve),
                       simulate(rng, e=0.03, seeds=3, insertion="late", **curve),
                       simulate(rng, e=0.01, seeds=3, insertion=None, **{**curve, "doses": (0, 0)})],
                      ignore_index=True)
    report = quiet(fit_table, table, models=["LL.3"], background="none")
    test = next(c for c in report.comparisons if c["test"] == "equal_halving_dose")
    assert not test["usable"] and test["p"] is None
    assert test["reason"] == "curve rises in early, late: no halving dose to compare"


def test_world_variants_are_separate_experiments():
    rng = np.random.default_rng(4)
    normal = two_windows(rng, 0.01).assign(world_variant="normal", split="matched")
    flipped = two_windows(rng, 0.01).assign(world_variant="flipped", split="matched")
    flipped["misaligned"] = flipped["total"] - flipped["misaligned"]  # the values reversed
    report = quiet(fit_table, pd.concat([normal, flipped], ignore_index=True),
                   models=["LL.3"], background="none")
    variants = {f.group.get("world_variant") for f in report.fits}
    assert variants == {"normal", "flipped"}
    normal_fit = next(f for f in report.fits if f.group == {"insertion": "early", "split": "matched",
                                                            "world_variant": "normal"})
    assert normal_fit.ed_control(50)["estimate"] == pytest.approx(0.01, rel=0.25)
    windows = [c for c in report.comparisons if c["test"] == "windows"]
    assert {c["world_variant"] for c in windows} == {"normal", "flipped"}


def test_holm_family_holds_the_trained_models_claims_not_the_counters_curve_tests():
    from scaling.reports.fit import _in_holm_family

    lof = {"test": "lack_of_fit", "model": "LL.2"}
    assert _in_holm_family({**lof, "group": {"model": "nano", "split": "matched"}})
    for counter in ("ngram-1", "twohop", "svd-8"):
        assert not _in_holm_family({**lof, "group": {"model": counter, "split": "matched"}})
    assert _in_holm_family({"test": "beyond_counting", "group": None, "name": "beyond counting: nano - twohop"})
    assert not _in_holm_family({"test": "background", "group": {"model": "nano"}})
