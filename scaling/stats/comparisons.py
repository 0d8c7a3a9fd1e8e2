"""Comparisons between fits: across insertion windows, background vs none (QAIC, quasi F), lack of
fit against one rate per dose level, bootstrap, cost."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats

from scaling.stats.common import AIC_MARGIN, BLOCK_PREFIX, ED_LEVELS, Z95, Unusable, clean
from scaling.stats.curves import Design, ed_dose, make_design
from scaling.stats.fitting import fit_curve
from scaling.stats.groups import block_labels, cluster_labels
from scaling.stats.likelihood import (
    CurveLikelihood,
    cluster_codes,
    has_converged,
    maximize,
    runaway,
)
from scaling.stats.paired import paired_contrast
from scaling.stats.results import CurveFit
from scaling.table import dose_level


def compare_insertions(cell: dict, frames: list[tuple[object, pd.DataFrame]]) -> list[dict]:
    """LR tests across insertion windows on LL.2 (dose > 0): equal slopes, equal ED50s.

    frames: (insertion label, rows) of windows whose LL.2 fit is usable. The unrestricted model
    has a separate intercept and slope per window; lr_robust divides lr by the pooled Pearson
    dispersion of that model (floored at 1) and p_robust is the matching F test. With two or
    more blocks (seeds) every model has the block effects on the logit scale.
    """
    labels = [label for label, _ in frames]
    rows = [r[r["dose"] > 0] for _, r in frames]
    blocks = block_labels(pd.concat(rows))
    block_names = sorted(set(blocks)) if blocks is not None and len(set(blocks)) >= 2 else []
    B = (make_design("LL.2", "binomial", np.zeros(len(blocks)), None, block_names,
                      blocks).block_matrix if block_names else np.zeros((sum(map(len, rows)), 0)))
    x = np.concatenate([r["dose"].to_numpy(float) for r in rows])
    k = np.concatenate([r["misaligned"].to_numpy(float) for r in rows])
    n = np.concatenate([r["total"].to_numpy(float) for r in rows])
    g = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
    z, onehot = np.log(x), np.eye(len(rows))[g]
    endog = np.column_stack([k, n - k])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        full = sm.GLM(endog, np.column_stack([onehot, onehot * z[:, None], B]),
                      family=sm.families.Binomial()).fit()
        common_slope = sm.GLM(endog, np.column_stack([onehot, z, B]),
                              family=sm.families.Binomial()).fit()
        common_e = _fit_common_ed50(x, k, n, g, full.params, block_names, blocks)
    mu = full.fittedvalues
    df_resid = len(x) - 2 * len(rows) - B.shape[1]
    dispersion = float(np.sum((k - n * mu) ** 2 / (n * mu * (1 - mu))) / df_resid) if df_resid > 0 else None
    base = {"group": cell, "model": "LL.2", "insertions": labels, "loglik_full": float(full.llf),
            "dispersion": dispersion, "df_resid": df_resid}
    out = [_lr_entry("equal_slope", base, full.llf, common_slope.llf, len(rows) - 1,
                     {"slope": float(common_slope.params[len(rows)]),
                      "se": float(common_slope.bse[len(rows)])},
                     common_slope.converged),
           _lr_entry("equal_ed50", base, full.llf, common_e["loglik"], len(rows) - 1,
                     {"ed50": common_e["ed50"], "se": common_e["se"]}, common_e["converged"])]
    return out


def _fit_common_ed50(x, k, n, g, full_params, block_names=(), blocks=None) -> dict:
    """LL.2 with one slope b per window and a shared log e (drc's pmodels e ~ 1), plus the
    block effects on the logit scale."""
    n_groups = g.max() + 1
    names = (tuple(f"b_{i}" for i in range(n_groups)) + ("log_e",)
             + tuple(BLOCK_PREFIX + str(b) for b in list(block_names)[:-1]))
    matrix = (make_design("LL.2", "binomial", x, None, block_names, blocks).block_matrix
              if block_names else None)
    design = Design("LL.2-common-e", "binomial", x, names, 0.0, b_index=g,
                     e_index=np.full(len(x), n_groups), block_matrix=matrix)
    model = CurveLikelihood(design, k, n, "binomial")
    slopes = full_params[n_groups:2 * n_groups]
    log_e = np.median(-full_params[:n_groups] / slopes)
    start = np.concatenate([-slopes, [log_e], full_params[2 * n_groups:]])
    try:
        phi = maximize(model, [start])
        cov = np.linalg.inv(-model.hessian(phi))
    except (Unusable, np.linalg.LinAlgError):
        return {"loglik": np.nan, "ed50": None, "se": None, "converged": False}
    e = float(np.exp(phi[n_groups]))
    return {"loglik": float(model.loglike(phi)), "ed50": e,
            "se": e * float(np.sqrt(cov[n_groups, n_groups])),
            "converged": has_converged(model, phi)}


def _lr_entry(test, base, ll_full, ll_restricted, df, common, converged) -> dict:
    lr = 2 * (ll_full - ll_restricted)
    cell = ", ".join(str(v) for v in base["group"].values())
    entry = {"test": test, "name": f"{test.replace('_', ' ')} across windows ({cell}; LL.2)",
             **base, "loglik_restricted": float(ll_restricted), "common": common,
             "lr": float(lr), "df": int(df), "p_binomial": float(stats.chi2.sf(lr, df)),
             "p": None}
    dispersion, df_resid = base["dispersion"], base["df_resid"]
    if dispersion is not None and df_resid > 0:
        lr_robust = lr / max(1.0, dispersion)
        p_robust = float(stats.f.sf(lr_robust / df, df, df_resid))
        entry.update({"lr_robust": float(lr_robust), "p_robust": p_robust, "p": p_robust,
                      "robust_method": "quasi-binomial F test: (lr/max(1, dispersion))/df "
                                       "on (df, df_resid)"})
    else:
        entry.update({"lr_robust": None, "p_robust": None, "robust_method": None})
    entry["usable"] = bool(converged and np.isfinite(lr) and lr > -1e-6)
    entry["reason"] = None if entry["usable"] else "a restricted or full model did not converge"
    return clean(entry)


def quasi_f_test(loglik_small: float, loglik_big: float, df: int, dispersion: float | None,
                 df_resid: int) -> dict:
    """Nested models under overdispersion: F = (LR/df)/c, c = max(1, the bigger model's
    Pearson dispersion), on (df, df_resid of the bigger model)."""
    lr = 2 * (loglik_big - loglik_small)
    c_hat = max(1.0, dispersion or 1.0)
    if df <= 0 or df_resid <= 0 or not np.isfinite(lr):
        return {"lr": lr, "df": df, "c_hat": c_hat, "F": None, "p": None}
    f_stat = max(lr, 0.0) / df / c_hat
    return {"lr": lr, "df": df, "df_resid": df_resid, "c_hat": c_hat, "F": f_stat,
            "p": float(stats.f.sf(f_stat, df, df_resid))}


def qaic(fit: CurveFit, c_hat: float) -> float | None:
    """Quasi-AIC: -2 loglik / c + 2 (k + 1), the + 1 for the estimated dispersion."""
    if fit.loglik is None:
        return None
    return -2 * fit.loglik / c_hat + 2 * (fit.n_params + 1)


def background_entry(plain: CurveFit, with_bg: CurveFit) -> dict:
    """Background dose vs none: QAIC (c from the background model) and the quasi F test.

    Binomial AIC is reported but never decides: with dispersions of 5-70 it prefers any extra
    parameter. x0 = 0 sits on the boundary, so the F test's p is conservative.
    """
    entry = {"test": "background", "name": f"background dose ({_label(plain)})",
             "group": plain.group, "model": plain.model,
             "mode": "estimated" if with_bg.background == "estimate" else "fixed",
             "aic_without": plain.aic, "aic_with": None, "delta_aic": None, "qaic_without": None,
             "qaic_with": None, "delta_qaic": None, "lr": None, "df": None, "p": None,
             "background": None, "preferred": "none", "reason": with_bg.reason}
    if plain.usable and with_bg.usable:
        df = with_bg.n_params - plain.n_params
        c_hat = max(1.0, with_bg.dispersion or 1.0)
        test = quasi_f_test(plain.loglik, with_bg.loglik, df, with_bg.dispersion,
                            with_bg.df_resid)
        delta_qaic = qaic(with_bg, c_hat) - qaic(plain, c_hat)
        entry.update({"aic_with": with_bg.aic, "delta_aic": with_bg.aic - plain.aic,
                      "qaic_without": qaic(plain, c_hat), "qaic_with": qaic(with_bg, c_hat),
                      "delta_qaic": delta_qaic, "c_hat": c_hat,
                      "background": with_bg.x0(), "df": df,
                      "lr": test["lr"] if df else None, "F": test.get("F"), "p": test["p"],
                      "estimate": with_bg.x0(),
                      "preferred": "background" if delta_qaic <= -AIC_MARGIN else "none"})
    return clean(entry)


# The link on which each model's block effects add; the per-level model uses the same, so
# that the curve is nested in it (LL.3/LL.4 move d, which no per-level GLM nests: not tested).
LACK_OF_FIT_LINKS = {"loglinear": sm.families.links.Identity, "LL.2": sm.families.links.Logit}


def block_matrix(rows: pd.DataFrame) -> np.ndarray | None:
    """The rows' block effects, effects-coded as the curves code them (None under two blocks):
    the columns a per-level model adds so that the curve's blocks are nested in it."""
    blocks = block_labels(rows)
    if blocks is None or len(set(blocks)) < 2:
        return None
    return make_design("LL.2", "binomial", rows["dose"].to_numpy(), None, sorted(set(blocks)),
                        blocks).block_matrix


def lack_of_fit(fit: CurveFit, rows: pd.DataFrame) -> dict | None:
    """Does the curve fit the dose levels? Quasi F test of the fit against one rate per dose
    level (plus the same blocks, on the same link) on the same rows; c from the per-level
    model."""
    if not fit.usable or fit.model not in LACK_OF_FIT_LINKS:
        return None
    rows = rows[rows["dose"] > 0] if fit.data == "dose>0" else rows
    levels = pd.factorize(dose_level(rows))[0]
    n_levels = levels.max() + 1
    exog = np.eye(n_levels)[levels]
    blocks = block_matrix(rows)
    if blocks is not None:
        exog = np.column_stack([exog, blocks])
    k, n = rows["misaligned"].to_numpy(float), rows["total"].to_numpy(float)
    df_resid = len(rows) - exog.shape[1]
    df = exog.shape[1] - fit.n_params
    if df_resid <= 0 or df <= 0:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        family = sm.families.Binomial(link=LACK_OF_FIT_LINKS[fit.model]())
        start = np.linalg.lstsq(exog, k / n, rcond=None)[0] if fit.model == "loglinear" else None
        try:
            saturated = sm.GLM(np.column_stack([k, n - k]), exog, family=family).fit(
                start_params=start)
        except (ValueError, np.linalg.LinAlgError):
            return None
    if not np.isfinite(saturated.llf) or saturated.llf < fit.loglik - 1e-6:
        return None  # the per-level fit failed (an identity-link rate left [0, 1])
    dispersion = float(saturated.pearson_chi2 / df_resid)
    # statsmodels' binomial llf includes the binomial coefficients, as the curve's loglik does
    test = quasi_f_test(fit.loglik, float(saturated.llf), df, dispersion, df_resid)
    return clean({"test": "lack_of_fit", "name": f"lack of fit ({_label(fit)})",
                   "group": fit.group, "model": fit.model, "levels": int(n_levels),
                   "dispersion_levels": dispersion, **test, "estimate": None,
                   "lower": None, "upper": None,
                   "verdict": None if test["p"] is None else
                   ("lack of fit" if test["p"] < 0.05 else "no detected lack of fit")})


def _label(fit: CurveFit) -> str:
    group = ", ".join(str(v) for v in fit.group.values())
    bg = "" if fit.background is None else " +background"
    return f"{fit.model}{bg}, {group}" if group else f"{fit.model}{bg}"


# ---------------------------------------------------------------- bootstrap, cost


def bootstrap_fit(fit: CurveFit, rows: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Block-level bootstrap: resample blocks (seeds) with replacement, refit with each drawn
    block as a block of its own, take SDs and percentiles."""
    seeds = block_labels(rows)
    if seeds is None or cluster_codes(seeds)[1] < 2:
        return {"n": n_boot, "n_ok": 0, "seed": seed, "reason": "needs >= 2 seeds"}
    codes, n_clusters = cluster_codes(seeds)
    rng = np.random.default_rng(seed)
    names = list(fit.param_functions())
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(n_clusters, size=n_clusters)
        members = [np.flatnonzero(codes == c) for c in pick]
        idx = np.concatenate(members)
        # a block drawn twice is two blocks: relabel by draw
        drawn = np.concatenate([np.full(len(m), f"draw{i}") for i, m in enumerate(members)])
        sample = rows.iloc[idx]
        refit = fit_curve(fit.model, sample["dose"], sample["misaligned"], sample["total"],
                          blocks=drawn if fit.block_labels else None,
                          background=fit.background, family=fit.family, warn=False,
                          levels=dose_level(sample))
        if refit.usable:
            nat = refit.natural()
            eds = [ed_dose(fit.model, nat, p, refit.x0()) if fit.model != "loglinear" else np.nan
                   for p in ED_LEVELS]
            eds = [e if e > 0 else np.nan for e in eds]  # below zero added dose: no ED
            draws.append([nat[name] for name in names] + eds)
    out = {"n": n_boot, "n_ok": len(draws), "seed": seed, "params": {}, "ed": {}}
    if len(draws) < 2:
        out["reason"] = "fewer than 2 usable replicates"
        return clean(out)
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
    return clean(out)


def cost_effectiveness(group: dict, rows: pd.DataFrame) -> list[dict]:
    """Misalignment reduction vs the dose-0 controls, paired by block, per dose level; and per
    aligned token and per marginal FLOP (the aligned tokens times the run's FLOPs per token:
    what the intervention adds, not the whole run).

    dose: the asked level (scaling.table.dose_level), measured_dose: its runs' mean measured dose.
    reduction: mean over blocks of (block's control rate - block's rate at the level), with a
    t interval on blocks - 1 df (the seed, not the run or item, is the unit; in world mode the
    world, its seeds averaged: table.cluster_labels); without blocks
    or with one, the runs' spread gives an unpaired SE and z interval. Per-unit values divide
    the estimate and its interval by the level's mean amount; they may be negative.
    """
    controls = rows[rows["dose"] == 0]
    if controls.empty or not (rows["dose"] > 0).any():
        return []
    blocks = cluster_labels(rows)  # in world mode each world is one unit, its seeds averaged
    rows = rows.assign(_block=blocks if blocks is not None else "all",
                       _rate=rows["misaligned"] / rows["total"])
    control_rate = rows[rows["dose"] == 0].groupby("_block")["_rate"].mean()
    rate0, _ = _pooled_rate(controls)
    out = []
    for level, at in rows[rows["dose"] > 0].groupby(dose_level(rows)):
        entry = {"group": group, "dose": float(level), "measured_dose": float(at["dose"].mean()), "runs": len(at),
                 "rate": float(at["misaligned"].sum() / at["total"].sum()),
                 "control_rate": rate0, **_paired_reduction(at, control_rate, controls)}
        for amount_name, key in (("aligned_tokens", "aligned_token"),
                                 ("marginal_flops", "marginal_flop")):
            amount = _amount(at, amount_name)
            if amount is None:
                continue
            entry[amount_name] = amount
            for field in ("reduction", "se", "lower", "upper"):
                value = entry.get(field)
                name = f"reduction_per_{key}" if field == "reduction" else f"{field}_per_{key}"
                entry[name] = value / amount if value is not None and amount > 0 else None
        out.append(clean(entry))
    return out


def _paired_reduction(at: pd.DataFrame, control_rate: pd.Series, controls: pd.DataFrame) -> dict:
    diffs = (control_rate - at.groupby("_block")["_rate"].mean()).dropna()
    if len(diffs) >= 2 and len(control_rate) >= 2:
        contrast = paired_contrast(diffs)
        lower, upper = contrast.conf_int()
        return {"reduction": contrast.estimate, "se": contrast.se, "lower": lower, "upper": upper,
                "df": contrast.df, "paired": True}
    rate0, se0 = _pooled_rate(controls)
    rate, se = _pooled_rate(at)
    se_red = None if se is None or se0 is None else float(np.hypot(se, se0))
    reduction = rate0 - rate
    return {"reduction": reduction, "se": se_red, "paired": False,
            "lower": None if se_red is None else reduction - Z95 * se_red,
            "upper": None if se_red is None else reduction + Z95 * se_red, "df": None}


def _amount(at: pd.DataFrame, name: str) -> float | None:
    """Mean aligned tokens, or marginal FLOPs = aligned tokens x FLOPs per training token."""
    if name == "aligned_tokens":
        return float(at["aligned_tokens"].mean()) if "aligned_tokens" in at.columns else None
    if not {"aligned_tokens", "flops", "total_tokens"} <= set(at.columns):
        return None
    per_token = pd.to_numeric(at["flops"], errors="coerce") / pd.to_numeric(
        at["total_tokens"], errors="coerce")
    value = float((at["aligned_tokens"] * per_token).mean())
    return value if np.isfinite(value) else None


def _pooled_rate(rows: pd.DataFrame) -> tuple[float, float | None]:
    rate = float(rows["misaligned"].sum() / rows["total"].sum())
    per_run = rows["misaligned"] / rows["total"]
    se = float(per_run.std(ddof=1) / np.sqrt(len(rows))) if len(rows) >= 2 else None
    return rate, se




# ---------------------------------------------------------------- equal halving dose


def compare_halving_doses(cell: dict, windows: list[tuple[str, pd.DataFrame, CurveFit]]) -> dict:
    """Is the halving dose (LL.3's e) the same in every window? One LL.3 over all windows with
    a slope and e per window, the shared dose-0 controls fixing one d (plus block effects),
    against the same with one e; quasi F test with c from the per-window model.

    windows: (label, rows, that window's usable LL.3 fit); each window's rows include the
    shared controls, which enter once.
    """
    labels = [label for label, _, _ in windows]
    entry = {"test": "equal_halving_dose", "model": "LL.3", "group": cell, "insertions": labels,
             "name": f"equal halving dose across windows ({', '.join(map(str, cell.values()))}; "
                     "LL.3)", "estimate": None, "lower": None, "upper": None, "p": None, "usable": False}
    rising = [label for label, _, fit in windows if fit.rises() is not None]
    if rising:  # LL.3's e is then half-way up a rising curve, not a dose that halves anything
        entry["reason"] = f"curve rises in {', '.join(map(str, rising))}: no halving dose to compare"
        return clean(entry)
    dosed = [rows[rows["dose"] > 0] for _, rows, _ in windows]
    controls = windows[0][1][windows[0][1]["dose"] == 0]
    data = pd.concat(dosed + [controls])
    window_index = np.concatenate([np.full(len(r), i) for i, r in enumerate(dosed)]
                                  + [np.zeros(len(controls), int)])
    k, n = data["misaligned"].to_numpy(float), data["total"].to_numpy(float)
    x = data["dose"].to_numpy(float)
    blocks = block_labels(data)
    block_names = sorted(set(blocks)) if blocks is not None and len(set(blocks)) >= 2 else []
    nats = [fit.natural() for _, _, fit in windows]
    full = _fit_windows(x, k, n, window_index, block_names, blocks, nats, common_e=False)
    common = _fit_windows(x, k, n, window_index, block_names, blocks, nats, common_e=True)
    if full is not None and full["at_boundary"]:
        full = None  # the unrestricted model must be a proper maximum
    entry["usable"] = full is not None and common is not None
    if not entry["usable"]:
        entry["reason"] = "a joint LL.3 fit did not converge"
        return clean(entry)
    test = quasi_f_test(common["loglik"], full["loglik"], len(windows) - 1, full["dispersion"],
                        full["df_resid"])
    if common["at_boundary"]:
        # A slope runs off (a step fits best under one e); the likelihood's supremum is
        # approached, so the LR is that of the supremum up to the last, tiny, gains.
        entry["note"] = "restricted fit at a boundary (a slope diverges)"
    entry.update({**test, "halving_doses": dict(zip(labels, full["e"])),
                  "common_halving_dose": common["e"][0], "dispersion": full["dispersion"]})
    return clean(entry)


def _fit_windows(x, k, n, window_index, block_names, blocks, nats, common_e: bool) -> dict | None:
    n_windows = len(nats)
    n_e = 1 if common_e else n_windows
    names = (tuple(f"b_{i}" for i in range(n_windows)) + ("logit_d",)
             + tuple(f"log_e_{i}" for i in range(n_e))
             + tuple(BLOCK_PREFIX + str(b) for b in list(block_names)[:-1]))
    matrix = (make_design("LL.3", "binomial", x, None, block_names, blocks).block_matrix
              if block_names else None)
    e_index = n_windows + 1 + (np.zeros(len(x), int) if common_e else window_index)
    design = Design("LL.3-windows", "binomial", x, names, 0.0, b_index=window_index,
                     e_index=e_index, block_matrix=matrix)
    log_e = [np.log(nat["e"]) for nat in nats]
    # a common e starts at each window's own e (and their median) with gentle slopes
    e_starts = [[v] for v in sorted(log_e) + [float(np.median(log_e))]] if common_e else [log_e]
    slopes = [[nat["b"] for nat in nats]] + ([[1.0] * n_windows] if common_e else [])
    starts = [np.concatenate([b, [special.logit(np.mean([nat["d"] for nat in nats]))], e,
                              np.zeros(max(len(block_names) - 1, 0))])
              for b in slopes for e in e_starts]
    model = CurveLikelihood(design, k, n, "binomial")
    try:
        phi = maximize(model, starts)
    except Unusable:
        return None
    at_boundary = not has_converged(model, phi) and runaway(design, phi)
    if not has_converged(model, phi) and not at_boundary:
        return None
    f, _ = design.mean(phi)
    df_resid = len(x) - len(phi)
    dispersion = float(np.sum((k - n * f) ** 2 / (n * f * (1 - f))) / df_resid)
    return {"loglik": float(model.loglike(phi)), "df_resid": df_resid, "dispersion": dispersion,
            "e": np.exp(phi[n_windows + 1:n_windows + 1 + n_e]).tolist(),
            "at_boundary": bool(at_boundary)}


def lack_of_fit_continuous(fit: CurveFit, dose, response) -> dict:
    """drc's modelFit for continuous data: F test of the curve's residual sum of squares
    against one mean per dose (a one-way ANOVA) on the same rows."""
    dose, response = np.asarray(dose, float), np.asarray(response, float)
    fitted, _ = fit.design(dose).mean(fit.estimate)
    rss_curve = float(np.sum((response - fitted) ** 2))
    levels = pd.factorize(dose)[0]
    means = pd.Series(response).groupby(levels).transform("mean").to_numpy()
    rss_levels = float(np.sum((response - means) ** 2))
    df_levels = len(dose) - (levels.max() + 1)
    df = fit.df_resid - df_levels
    f_stat = (rss_curve - rss_levels) / df / (rss_levels / df_levels)
    return {"test": "lack_of_fit", "model": fit.model, "rss_curve": rss_curve,
            "rss_levels": rss_levels, "df": df, "df_resid": df_levels, "F": f_stat,
            "p": float(stats.f.sf(f_stat, df, df_levels))}
