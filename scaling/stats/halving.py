"""The halving dose, said only where the data support it: one definition for every reader.

The halving dose of a group (one model, split, window, ...) is the control-relative ED50 of its
headline curve (`report.headline_fit`: LL.3, else LL.4, ...): the dose at which the fitted rate
is half-way from the fitted dose-0 level to the floor. Before a number is given, two tests on
the group's rows, both against one rate per dose level with the same blocks (a binomial GLM on
the logit link: drc's `modelFit` idea, with blocks), with a quasi-binomial dispersion
c = max(1, Pearson X2 / df) of that per-level model:

- dose trend: do the dose levels differ at all? Quasi F test of "one rate per block" (flat in
  dose) against the per-level model, on (levels - 1, df). Not significant at 0.05: "no dose
  trend (p = ...)", and no halving dose, whatever a curve says.
- lack of fit: does the curve follow the level means? Quasi F test of the curve against one
  free value per dose level *in the curve's own form* (`level_fit`): for LL.3/LL.4 the rate is
  c + (d_b - c) g_l, with the curve's block effects on the logit of the control level d_b and
  a free share g_l per positive level (g = 1 at dose 0), so the curve (g_l = the log-logistic
  at the level's dose) is nested in it; df = levels - 3. Rejected at 0.05: the curve's number
  is withdrawn. Other headline curves (loglinear, LL.2 with a background) take the lack-of-fit
  test fit.md already makes for them (`comparisons.lack_of_fit`, on the curve's own link).

Where there is no number, the dose means still bracket the halving dose: it lies between the
highest tested dose whose mean rate is above half the control's mean and the next one below
(`bracket`); rates that reach 0 in every block (no curve can then be fitted by maximum
likelihood) are named with that dose and the remedy (doses between the bracket's ends).
An estimate outside the tested positive doses says on which side, never a number.

`halving(fit, rows)` returns one entry (fit.json "halving"); `text(entry)` says it in words;
the answer, fit.md, the figures and the findings read these.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, special, stats

from scaling.stats.common import clean, fmt
from scaling.stats.comparisons import block_matrix, lack_of_fit
from scaling.stats.results import CurveFit, rises_text
from scaling.table import dose_level

ALPHA = 0.05


def _glm(k, n, exog):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = sm.GLM(np.column_stack([k, n - k]), exog, family=sm.families.Binomial()).fit()
        except (ValueError, np.linalg.LinAlgError):
            return None
    return res if np.isfinite(res.llf) else None


def _f_test(ll_small: float, ll_big: float, df: int, c_hat: float, df_resid: int) -> float | None:
    if df <= 0 or df_resid <= 0:
        return None
    lr = max(2 * (ll_big - ll_small), 0.0)
    return float(stats.f.sf(lr / df / c_hat, df, df_resid))


def level_fit(rows: pd.DataFrame, free_floor: bool) -> tuple[float, float, int] | None:
    """The per-level model in the log-logistic's form, rate c + (d_b - c) g_l (c = 0 unless
    `free_floor`), by maximum likelihood: (loglik, Pearson X2, parameters); None if it fails."""
    k, n = rows["misaligned"].to_numpy(float), rows["total"].to_numpy(float)
    levels = pd.factorize(dose_level(rows), sort=True)[0]
    blocks = block_matrix(rows)
    n_blocks = 0 if blocks is None else blocks.shape[1]
    n_levels = int(levels.max()) + 1
    rate = (k + 0.5) / (n + 1)
    control = float(rate[levels == 0].mean())
    shares = [np.log(max(rate[levels == j].mean(), 1e-4) / control) for j in range(1, n_levels)]
    start = np.array([special.logit(np.clip(control, 1e-3, 1 - 1e-3)), *np.zeros(n_blocks), *shares,
                      *([special.logit(0.01)] if free_floor else [])])

    def mean(phi):
        shift = 0.0 if blocks is None else blocks @ phi[1:1 + n_blocks]
        d = special.expit(phi[0] + shift)
        g = np.exp(np.concatenate([[0.0], phi[1 + n_blocks:1 + n_blocks + n_levels - 1]]))[levels]
        c = special.expit(phi[-1]) if free_floor else 0.0
        return np.clip(c + (d - c) * g, 1e-12, 1 - 1e-12)

    # ties count a half (k = 511.5): the binomial coefficient through gammaln, as the curves' loglik
    log_coef = float((special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)).sum())

    def nll(phi):
        f = mean(phi)
        return -(log_coef + float((k * np.log(f) + (n - k) * np.log1p(-f)).sum()))

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = optimize.minimize(nll, start, method="L-BFGS-B")
    if not np.isfinite(res.fun):
        return None
    f = mean(res.x)
    return -float(res.fun), float(((k - n * f) ** 2 / (n * f * (1 - f))).sum()), len(start)


def level_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dose level: mean dose, mean rate over runs, runs, and whether every run is at 0 / 1."""
    rate = rows["misaligned"] / rows["total"]
    by = rows.assign(_rate=rate, _level=dose_level(rows)).groupby("_level", sort=True)
    return pd.DataFrame({"dose": by["dose"].mean(), "rate": by["_rate"].mean(), "runs": by.size(),
                         "all_zero": by["misaligned"].apply(lambda k: bool((k == 0).all())),
                         "all_one": by.apply(lambda g: bool((g["misaligned"] == g["total"]).all()),
                                             include_groups=False)})


def tests(rows: pd.DataFrame, fit: CurveFit | None) -> dict:
    """The dose-trend and lack-of-fit tests of a group's rows (see the module docstring)."""
    k, n = rows["misaligned"].to_numpy(float), rows["total"].to_numpy(float)
    levels = pd.factorize(dose_level(rows))[0]
    n_levels = int(levels.max()) + 1 if len(levels) else 0
    blocks = block_matrix(rows)
    flat = np.ones((len(rows), 1)) if blocks is None else np.column_stack([np.ones(len(rows)), blocks])
    per_level = np.eye(n_levels)[levels] if blocks is None else np.column_stack([np.eye(n_levels)[levels], blocks])
    out = {"levels": n_levels, "p_trend": None, "p_lack_of_fit": None, "c_hat": None, "df_resid": None}
    df_resid = len(rows) - per_level.shape[1]
    if n_levels < 2:
        return out
    big, small = _glm(k, n, per_level), _glm(k, n, flat)
    if big is None or small is None:
        return out
    c_hat = max(1.0, float(big.pearson_chi2 / df_resid)) if df_resid > 0 else None
    out.update(c_hat=c_hat, df_resid=df_resid)
    if c_hat is None:
        return out  # one run per level and block: no replicate to weigh the rates' spread by
    out["p_trend"] = _f_test(float(small.llf), float(big.llf), n_levels - 1, c_hat, df_resid)
    if fit is None or not fit.usable or fit.loglik is None:
        return out
    if fit.model not in ("LL.3", "LL.4"):  # loglinear, LL.2: the test fit.md already makes, on the curve's link
        entry = lack_of_fit(fit, rows)
        out["p_lack_of_fit"] = entry.get("p") if entry else None
        return out
    if fit.data == "all doses":
        shaped = level_fit(rows, free_floor=fit.model == "LL.4")
        if shaped is None:
            return out
        ll_big, chi2, n_params = shaped
        resid = len(rows) - n_params
        if resid > 0:
            out["p_lack_of_fit"] = _f_test(float(fit.loglik), ll_big, n_params - fit.n_params,
                                           max(1.0, chi2 / resid), resid)
    return out


def bracket(means: pd.DataFrame) -> dict:
    """Where the dose means cross half the control's mean, as the tested (asked) dose levels."""
    control = means[means.index == 0]
    dosed = means[means.index > 0]
    if control.empty or dosed.empty:
        return {}
    half = float(control["rate"].iloc[0]) / 2
    out = {"control_rate": float(control["rate"].iloc[0])}
    zero = dosed[dosed["all_zero"]]
    if not zero.empty:
        out["zero_dose"] = float(zero.index[0])
    below = dosed[dosed["rate"] <= half]
    if below.empty:
        out["above"] = float(dosed.index[-1])  # not halved at the highest dose
        return out
    first = below.index[0]
    earlier = dosed[dosed.index < first]
    out["between"] = [float(earlier.index[-1]) if not earlier.empty else None, float(first)]
    return out


def halving(fit: CurveFit | None, rows: pd.DataFrame, group: dict | None = None) -> dict:
    """The halving-dose entry of one group: status, numbers, tests (see the module docstring).

    status: "no control", "no trend", "rises", "lack of fit", "estimate", "below", "above",
    "no curve" (no usable curve: the dose means' bracket says where it lies)."""
    entry: dict = {"group": dict(group if group is not None else (fit.group if fit else {})),
                   "model": fit.model if fit is not None else None}
    if rows.empty or not (rows["dose"] == 0).any():
        return clean({**entry, "status": "no control"})
    means = level_means(rows)
    entry.update(tests(rows, fit))
    entry["bracket"] = bracket(means)
    entry["doses"] = [float(d) for d in means.index[means.index > 0]]  # the asked (nominal) doses
    if entry["p_trend"] is not None and entry["p_trend"] >= ALPHA:
        return clean({**entry, "status": "no trend"})
    ed = fit.ed_control(50) if fit is not None and fit.usable and fit.control_level() is not None else None
    if ed is None:
        return clean({**entry, "status": "no curve", "reason": None if fit is None else fit.reason})
    if ed.get("rises"):
        return clean({**entry, "status": "rises", "control_level": ed["control_level"], "limit": ed["limit"]})
    if entry["p_lack_of_fit"] is not None and entry["p_lack_of_fit"] < ALPHA:
        return clean({**entry, "status": "lack of fit"})
    low, high = min(entry["doses"]), max(entry["doses"])
    entry.update(estimate=ed["estimate"], lower=ed.get("lower"), upper=ed.get("upper"),
                 method=ed.get("method"), df=ed.get("df"), dose_range=[low, high])
    status = "below" if ed["estimate"] < low else "above" if ed["estimate"] > high else "estimate"
    return clean({**entry, "status": status})


def _p(p) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def _bracket_text(entry: dict) -> str:
    b = entry.get("bracket") or {}
    if "above" in b:
        return f"the dose means are not halved at the highest dose ({fmt(b['above'])})"
    between = b.get("between")
    if not between:
        return ""
    low, high = between
    if low is None:
        return f"the dose means are halved already at the lowest dose ({fmt(high)}): add lower doses"
    return f"by the dose means it lies between {fmt(low)} and {fmt(high)}: add doses between them"


def text(entry: dict | None, short: bool = False) -> str:
    """The entry in words ("halving dose 0.013 [0.0057, 0.031]", "no dose trend (p = 0.62)", ...)."""
    if not entry:
        return "no halving dose (no fit)"
    status = entry.get("status")
    if status == "no control":
        return "no halving dose (no dose-0 control)"
    if status == "no trend":
        return f"no dose trend (p = {_p(entry.get('p_trend'))})"
    if status == "rises":
        return rises_text({"control_level": entry["control_level"], "limit": entry["limit"]}, short)
    if status == "lack of fit":
        if short:
            return f"curve rejected (lack of fit p = {_p(entry['p_lack_of_fit'])})"
        head = f"no halving dose: the curve does not fit the dose levels (lack of fit p = {_p(entry['p_lack_of_fit'])})"
        rest = _bracket_text(entry)
        return f"{head}; {rest}" if rest else head
    if status == "no curve":
        zero = (entry.get("bracket") or {}).get("zero_dose")
        if short:
            return f"no curve: rates reach 0 at {fmt(zero)}" if zero is not None else "no usable curve"
        head = ("no halving dose: rates reach 0 in every block at dose " + fmt(zero) + ", so no curve "
                "can be fitted") if zero is not None else "no halving dose: no usable curve"
        rest = _bracket_text(entry)
        return f"{head}; {rest}" if rest else head
    if status == "below":
        if short:
            return f"halving dose < {fmt(entry['dose_range'][0])} (lowest dose)"
        return f"halving dose below the lowest dose tested ({fmt(entry['dose_range'][0])})"
    if status == "above":
        if short:
            return f"halving dose > {fmt(entry['dose_range'][1])} (highest dose)"
        return f"halving dose above the highest dose tested ({fmt(entry['dose_range'][1])})"
    untested = "" if entry.get("p_trend") is not None else " (untested: no replicate runs to test the trend and the fit)"
    if entry.get("lower") is None or entry.get("upper") is None:
        return f"halving dose {entry['estimate']:.2g} (no CI){untested}"
    return f"halving dose {entry['estimate']:.2g} [{entry['lower']:.2g}, {entry['upper']:.2g}]{untested}"


def has_estimate(entry: dict | None) -> bool:
    return bool(entry) and entry.get("status") == "estimate"
