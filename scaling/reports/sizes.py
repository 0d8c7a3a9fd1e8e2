"""`scaling sizes RESULTS.csv --out DIR`: the dose-response curve across model sizes.

Per model size (the `model` column, with its `non_embedding_params`) and eval split, the
aligned-dose arm is fitted with drc's LL.3, f = d / (1 + exp(b (ln dose - ln e))), by binomial
maximum likelihood with the dose-0 controls included (they fix the plateau d). Its e is the
**control-relative ED50**: the dose at which misalignment falls to half of the size's own
control rate, whatever that rate is; b is the slope on ln(dose) (b > 0: decreasing). Both
carry the overdispersion-robust SE of `scaling.stats` (the larger of quasi-binomial and
seed-clustered), since runs, not eval items, are the independent units.

Then the trend across sizes: ln ED50 and b against ln N (N = non-embedding parameters),
weighted least squares with the per-size robust variances as known variances (a fixed-effect
meta-regression). If the sizes scatter around the line more than their SEs allow (Pearson
X2/df > 1), the covariance is scaled up by X2/df. 95% intervals are normal (z); with three
sizes they are wide, and the report says how many sizes carry each trend.

Writes DIR/sizes.json (per_size rows and trends) and DIR/sizes.md.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd

from scaling import table
from scaling.errors import UsageError

Z95 = 1.959963984540054
NEEDED = ("model", "non_embedding_params", "dose", "misaligned", "total", "split", "seed")


def dose_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The transformer rows of the aligned-dose arm that finished and were evaluated."""
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise UsageError(f"results table lacks column(s) {', '.join(missing)} "
                         "(rebuild it with `scaling results DIR`)")
    # counting baselines have no size
    keep = table.is_finished(df) & (table.learner(df) == table.TRANSFORMER)
    if "arm" in df.columns:
        keep &= df["arm"] == "dose"
    out = df[keep & df["total"].gt(0) & df["non_embedding_params"].gt(0)].copy()
    if out.empty:
        raise UsageError("no finished dose-arm runs with non_embedding_params > 0 in the table")
    return out


def fit_size(rows: pd.DataFrame) -> dict:
    """LL.3 on one (size, split): control-relative ED50 and slope with robust intervals."""
    from scaling.stats import fitting
    levels = table.dose_level(rows)  # asked doses: the seeds of one see different measured doses
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = fitting.fit_curve("LL.3", rows["dose"], rows["misaligned"], rows["total"],
                                  seeds=rows["seed"].astype(str), warn=False, levels=levels)
    out = {"n_runs": int(rows["run_id"].nunique()) if "run_id" in rows else len(rows),
           "n_doses": int(levels.nunique()), "usable": bool(curve.usable), "reason": curve.reason,
           "control_rate": _rate(rows[rows["dose"] == 0])}
    nan = {"ed50": math.nan, "ed50_lower": math.nan, "ed50_upper": math.nan, "ln_ed50_se": math.nan,
           "slope": math.nan, "slope_se": math.nan, "slope_lower": math.nan, "slope_upper": math.nan,
           "dispersion": math.nan}
    if not curve.usable:
        return {**out, **nan}
    b = _param_entries(curve)["b"]
    ed = _ed50(curve)
    b_se = b["se_robust"] if b["se_robust"] is not None else math.nan
    return {**out, **ed,
            "slope": b["estimate"], "slope_se": b_se, "slope_lower": b["estimate"] - Z95 * b_se,
            "slope_upper": b["estimate"] + Z95 * b_se,
            "dispersion": curve.dispersion if curve.dispersion is not None else math.nan}


def _param_entries(curve) -> dict:
    """name -> {estimate, se, se_cluster, se_robust}; `scaling.stats.CurveFit` names this `param_entries`
    since its statsmodels-style `params` property, `params()` before."""
    return curve.param_entries() if hasattr(curve, "param_entries") else curve.params()


def _ed50(curve) -> dict:
    """LL.3's control-relative ED50 (its e) with a 95% interval on the log scale: from
    `scaling.stats`' `ed_control` where it has one (its interval method was chosen by a
    coverage simulation), else from the robust delta-method SE of `ed`."""
    nan = {"ed50": math.nan, "ed50_lower": math.nan, "ed50_upper": math.nan, "ln_ed50_se": math.nan,
           "ed50_extrapolated": False}
    if hasattr(curve, "ed_control"):
        e = curve.ed_control(50)
        if not e:
            return nan
        if e.get("rises"):  # a curve that rises from its control level halves nothing
            return {**nan, "ed50_rises": True}
        return {"ed50": e["estimate"], "ed50_lower": _num(e.get("lower")), "ed50_upper": _num(e.get("upper")),
                "ln_ed50_se": _num(e.get("se_log")), "ed50_extrapolated": bool(e.get("extrapolated"))}
    e = curve.ed(50)
    if not e:
        return nan
    est, se = e["estimate"], e.get("se_robust")
    return {"ed50": est, "ed50_lower": _num(e.get("lower_log_robust")),
            "ed50_upper": _num(e.get("upper_log_robust")),
            "ln_ed50_se": se / est if se is not None and est > 0 else math.nan,
            "ed50_extrapolated": bool(e.get("extrapolated"))}


def _num(value) -> float:
    return math.nan if value is None else float(value)


def _rate(rows: pd.DataFrame) -> float:
    total = rows["total"].sum()
    return float(rows["misaligned"].sum() / total) if total > 0 else math.nan


def per_size(df: pd.DataFrame) -> pd.DataFrame:
    rows = dose_rows(df)
    out = []
    for (split, model), g in rows.groupby(["split", "model"], sort=True):
        sizes = g["non_embedding_params"].unique()
        if len(sizes) != 1:
            raise UsageError(f"model {model!r} has several non_embedding_params ({sorted(sizes)}): "
                             "give each size its own model name")
        out.append({"split": split, "model": model, "non_embedding_params": int(sizes[0]), **fit_size(g)})
    return pd.DataFrame(out).sort_values(["split", "non_embedding_params"]).reset_index(drop=True)


def trend(ln_n, y, se) -> dict:
    """y = a + k ln N by weighted least squares with known SEs; k with a 95% interval."""
    ln_n, y, se = (np.asarray(v, float) for v in (ln_n, y, se))
    ok = np.isfinite(ln_n) & np.isfinite(y) & np.isfinite(se) & (se > 0)
    result = {"n_sizes": int(ok.sum()), "exponent": math.nan, "se": math.nan, "lower": math.nan,
              "upper": math.nan, "intercept": math.nan, "dispersion": math.nan}
    if ok.sum() < 2 or np.ptp(ln_n[ok]) == 0:
        result["reason"] = "needs at least two sizes with a usable fit (ED50 inside the doses tested)"
        return result
    X = np.column_stack([np.ones(ok.sum()), ln_n[ok]])
    w = 1.0 / se[ok] ** 2
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    beta = cov @ (X.T @ (w * y[ok]))
    df = ok.sum() - 2
    if df > 0:
        x2 = float(np.sum(w * (y[ok] - X @ beta) ** 2))
        result["dispersion"] = x2 / df
        cov = cov * max(1.0, x2 / df)  # sizes scatter more than their own SEs: widen
    k, k_se = float(beta[1]), float(math.sqrt(cov[1, 1]))
    result.update(exponent=k, se=k_se, lower=k - Z95 * k_se, upper=k + Z95 * k_se, intercept=float(beta[0]))
    return result


def size_report(df: pd.DataFrame) -> dict:
    table = per_size(df)
    trends = {}
    for split, g in table.groupby("split", sort=True):
        ln_n = np.log(g["non_embedding_params"].astype(float))
        usable = g["usable"].astype(bool)
        # an ED50 beyond the doses tested is an extrapolation, not a measurement: left out
        inside = usable & ~g["ed50_extrapolated"].fillna(False).astype(bool) \
            if "ed50_extrapolated" in g else usable
        ed = g["ed50"].where(inside)
        # each size's SE as wide as its own interval (t on seeds - 1 df with few seeds), so the
        # trend does not treat a 2-seed SE as known
        width = (np.log(g["ed50_upper"].astype(float)) - np.log(g["ed50_lower"].astype(float))) / (2 * Z95)
        se = width.where(np.isfinite(width), g["ln_ed50_se"])
        trends[split] = {
            "ln_ed50_vs_ln_n": trend(ln_n, np.log(ed), se.where(inside)),
            "slope_vs_ln_n": trend(ln_n, g["slope"].where(usable), g["slope_se"].where(usable)),
        }
    return {"per_size": json.loads(table.to_json(orient="records")), "trends": trends}


def to_markdown(report: dict) -> str:
    lines = ["# Dose-response across model sizes", "",
             "LL.3 per size and split (dose-0 controls fix the plateau d): ED50 is the dose that "
             "halves the size's control misalignment; slope b on ln(dose) (b > 0: decreasing). "
             "95% intervals from the overdispersion-robust SE.", "",
             "| split | model | non-embedding params | runs | control rate | ED50 [95% CI] | slope b [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for r in report["per_size"]:
        if r["usable"]:
            ed = f"{r['ed50']:.3g} [{r['ed50_lower']:.3g}, {r['ed50_upper']:.3g}]"
            if r.get("ed50_extrapolated"):
                ed = f"beyond the doses tested ({r['ed50']:.3g}; not used in the trend)"
            elif r.get("ed50_rises"):
                ed = "no halving dose (curve rises; not used in the trend)"
            b = f"{r['slope']:.3g} [{r['slope_lower']:.3g}, {r['slope_upper']:.3g}]"
        else:
            ed, b = f"unusable ({r['reason']})", ""
        lines.append(f"| {r['split']} | {r['model']} | {r['non_embedding_params']:,} | {r['n_runs']} | "
                     f"{r['control_rate']:.3f} | {ed} | {b} |")
    lines += ["", "Trends across sizes (weighted least squares on ln N, N = non-embedding parameters; each "
              "size's ln ED50 weighted by the width of its own interval, ED50s beyond the doses tested "
              "left out):", "",
              "| split | quantity | sizes | exponent [95% CI] |", "|---|---|---|---|"]
    for split, t in report["trends"].items():
        for name, label in (("ln_ed50_vs_ln_n", "d ln ED50 / d ln N"), ("slope_vs_ln_n", "d b / d ln N")):
            e = t[name]
            text = (f"{e['exponent']:.3g} [{e['lower']:.3g}, {e['upper']:.3g}]"
                    if np.isfinite(e["exponent"]) else e.get("reason", "n/a"))
            lines.append(f"| {split} | {label} | {e['n_sizes']} | {text} |")
    return "\n".join(lines) + "\n"
