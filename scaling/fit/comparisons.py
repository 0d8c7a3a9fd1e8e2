"""Comparisons between fits: across insertion windows, background vs none, bootstrap, cost."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from scaling.fit.common import AIC_MARGIN, ED_LEVELS, OPTIONAL_NUMERIC, _clean, _Unusable
from scaling.fit.curves import _Design, _ed_dose
from scaling.fit.fitting import fit_curve
from scaling.fit.likelihood import _cluster_codes, _converged, _CurveLikelihood, _maximize
from scaling.fit.results import CurveFit


def compare_insertions(cell: dict, frames: list[tuple[object, pd.DataFrame]]) -> list[dict]:
    """LR tests across insertion windows on LL.2 (dose > 0): equal slopes, equal ED50s.

    frames: (insertion label, rows) of windows whose LL.2 fit is usable. The unrestricted model
    has a separate intercept and slope per window; lr_robust divides lr by the pooled Pearson
    dispersion of that model (floored at 1) and p_robust is the matching F test.
    """
    labels = [label for label, _ in frames]
    rows = [r[r["dose"] > 0] for _, r in frames]
    x = np.concatenate([r["dose"].to_numpy(float) for r in rows])
    k = np.concatenate([r["misaligned"].to_numpy(float) for r in rows])
    n = np.concatenate([r["total"].to_numpy(float) for r in rows])
    g = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
    z, onehot = np.log(x), np.eye(len(rows))[g]
    endog = np.column_stack([k, n - k])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        full = sm.GLM(endog, np.column_stack([onehot, onehot * z[:, None]]),
                      family=sm.families.Binomial()).fit()
        common_slope = sm.GLM(endog, np.column_stack([onehot, z]), family=sm.families.Binomial()).fit()
        common_e = _fit_common_ed50(x, k, n, g, full.params)
    mu = full.fittedvalues
    df_resid = len(x) - 2 * len(rows)
    dispersion = float(np.sum((k - n * mu) ** 2 / (n * mu * (1 - mu))) / df_resid) if df_resid > 0 else None
    base = {"group": cell, "model": "LL.2", "insertions": labels, "loglik_full": float(full.llf),
            "dispersion": dispersion, "df_resid": df_resid}
    out = [_lr_entry("equal_slope", base, full.llf, common_slope.llf, len(rows) - 1,
                     {"slope": float(common_slope.params[-1]), "se": float(common_slope.bse[-1])},
                     common_slope.converged),
           _lr_entry("equal_ed50", base, full.llf, common_e["loglik"], len(rows) - 1,
                     {"ed50": common_e["ed50"], "se": common_e["se"]}, common_e["converged"])]
    return out


def _fit_common_ed50(x, k, n, g, full_params) -> dict:
    """LL.2 with one slope b per window and a shared log e (drc's pmodels e ~ 1)."""
    n_groups = g.max() + 1
    names = tuple(f"b_{i}" for i in range(n_groups)) + ("log_e",)
    design = _Design("LL.2-common-e", "binomial", x, names, 0.0, b_index=g,
                     e_index=np.full(len(x), n_groups))
    model = _CurveLikelihood(design, k, n, "binomial")
    slopes = full_params[n_groups:]
    log_e = np.median(-full_params[:n_groups] / slopes)
    try:
        phi = _maximize(model, [np.append(-slopes, log_e)])
        cov = np.linalg.inv(-model.hessian(phi))
    except (_Unusable, np.linalg.LinAlgError):
        return {"loglik": np.nan, "ed50": None, "se": None, "converged": False}
    e = float(np.exp(phi[-1]))
    return {"loglik": float(model.loglike(phi)), "ed50": e, "se": e * float(np.sqrt(cov[-1, -1])),
            "converged": _converged(model, phi)}


def _lr_entry(test, base, ll_full, ll_restricted, df, common, converged) -> dict:
    lr = 2 * (ll_full - ll_restricted)
    entry = {"test": test, **base, "loglik_restricted": float(ll_restricted), "common": common,
             "lr": float(lr), "df": int(df), "p": float(stats.chi2.sf(lr, df))}
    dispersion, df_resid = base["dispersion"], base["df_resid"]
    if dispersion is not None and df_resid > 0:
        lr_robust = lr / max(1.0, dispersion)
        entry.update({"lr_robust": float(lr_robust),
                      "p_robust": float(stats.f.sf(lr_robust / df, df, df_resid)),
                      "robust_method": "quasi-binomial F test: (lr/max(1, dispersion))/df "
                                       "on (df, df_resid)"})
    else:
        entry.update({"lr_robust": None, "p_robust": None, "robust_method": None})
    entry["usable"] = bool(converged and np.isfinite(lr) and lr > -1e-6)
    entry["reason"] = None if entry["usable"] else "a restricted or full model did not converge"
    return _clean(entry)


def _background_entry(plain: CurveFit, with_bg: CurveFit) -> dict:
    entry = {"test": "background", "group": plain.group, "model": plain.model,
             "mode": "estimated" if with_bg.background == "estimate" else "fixed",
             "aic_without": plain.aic, "aic_with": None, "delta_aic": None, "lr": None,
             "df": None, "p": None, "background": None, "preferred": "none",
             "reason": with_bg.reason}
    if plain.usable and with_bg.usable:
        df = with_bg.n_params - plain.n_params
        lr = 2 * (with_bg.loglik - plain.loglik)
        entry.update({"aic_with": with_bg.aic, "delta_aic": with_bg.aic - plain.aic,
                      "background": with_bg.x0(), "df": df,
                      "lr": lr if df else None,
                      # x0 = 0 is on the boundary: the chi2(1) p-value is conservative.
                      "p": float(stats.chi2.sf(max(lr, 0.0), df)) if df else None,
                      "preferred": "background" if with_bg.aic <= plain.aic - AIC_MARGIN
                      else "none"})
    return _clean(entry)


# ---------------------------------------------------------------- bootstrap, cost


def _bootstrap(fit: CurveFit, rows: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Seed-level bootstrap: resample seeds with replacement, refit, take SDs and percentiles."""
    seeds = rows["seed"].to_numpy(dtype=object) if "seed" in rows.columns else None
    if seeds is None or _cluster_codes(seeds)[1] < 2:
        return {"n": n_boot, "n_ok": 0, "seed": seed, "reason": "needs >= 2 seeds"}
    codes, n_clusters = _cluster_codes(seeds)
    rng = np.random.default_rng(seed)
    names = list(fit.param_functions())
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(n_clusters, size=n_clusters)
        idx = np.concatenate([np.flatnonzero(codes == c) for c in pick])
        sample = rows.iloc[idx]
        refit = fit_curve(fit.model, sample["dose"], sample["misaligned"], sample["total"],
                          background=fit.background, family=fit.family, warn=False)
        if refit.usable:
            nat = refit.natural()
            eds = [_ed_dose(fit.model, nat, p, refit.x0()) if fit.model != "loglinear" else np.nan
                   for p in ED_LEVELS]
            eds = [e if e > 0 else np.nan for e in eds]  # below zero added dose: no ED
            draws.append([nat[name] for name in names] + eds)
    out = {"n": n_boot, "n_ok": len(draws), "seed": seed, "params": {}, "ed": {}}
    if len(draws) < 2:
        out["reason"] = "fewer than 2 usable replicates"
        return _clean(out)
    draws = np.asarray(draws)
    for j, name in enumerate(names + [f"ed{p}" for p in ED_LEVELS]):
        col = draws[:, j][np.isfinite(draws[:, j])]
        if len(col) < 2:
            continue
        summary = {"se": float(col.std(ddof=1)), "lower": float(np.quantile(col, 0.025)),
                   "upper": float(np.quantile(col, 0.975))}
        if name.startswith("ed"):
            out["ed"][name[2:]] = summary
        else:
            out["params"][name] = summary
    return _clean(out)


def cost_effectiveness(group: dict, rows: pd.DataFrame) -> list[dict]:
    """Misalignment reduction vs the dose-0 controls, per aligned token and per training FLOP.

    Rates are pooled over runs at a dose; SEs come from the spread between runs (runs, not
    items, are the independent units), so they need >= 2 runs at the dose and at dose 0.
    """
    costs = [c for c in OPTIONAL_NUMERIC if c in rows.columns]
    controls = rows[rows["dose"] == 0]
    if not costs or controls.empty:
        return []
    rate0, se0 = _pooled_rate(controls)
    out = []
    # seeds of one configured level see slightly different measured doses: pool by level
    level = next(c for c in ("nominal_dose", "aligned_fraction", "dose")
                 if c in rows.columns and rows[c].notna().all())
    for _, at in rows[rows["dose"] > 0].groupby(level):
        dose = at["dose"].mean()
        rate, se = _pooled_rate(at)
        reduction = rate0 - rate
        se_red = None if se is None or se0 is None else float(np.hypot(se, se0))
        entry = {"group": group, "dose": float(dose), "runs": len(at), "rate": rate,
                 "control_rate": rate0, "reduction": reduction, "se": se_red}
        for col, key in (("aligned_tokens", "aligned_token"), ("flops", "flop")):
            if col in costs:
                amount = float(at[col].mean())
                entry[col] = amount
                entry[f"reduction_per_{key}"] = reduction / amount if amount > 0 else None
                entry[f"se_per_{key}"] = se_red / amount if se_red is not None and amount > 0 else None
        out.append(_clean(entry))
    return out


def _pooled_rate(rows: pd.DataFrame) -> tuple[float, float | None]:
    rate = float(rows["misaligned"].sum() / rows["total"].sum())
    per_run = rows["misaligned"] / rows["total"]
    se = float(per_run.std(ddof=1) / np.sqrt(len(rows))) if len(rows) >= 2 else None
    return rate, se


