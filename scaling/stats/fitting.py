"""Fitting one curve to one group of rows: data checks, starting values, usability checks."""

from __future__ import annotations

import warnings

import numpy as np
import statsmodels.api as sm

from scaling.errors import UsageError
from scaling.stats.common import (
    BACKGROUND_MODELS,
    MAX_LOGIT_LIMIT,
    MAX_SLOPE,
    MIN_FITTED,
    Unusable,
    group_label,
    warn_fit,
)
from scaling.stats.curves import CURVES, Design, curve, dose_axis, make_design
from scaling.stats.likelihood import (
    CurveLikelihood,
    cluster_codes,
    count_clusters,
    has_converged,
    loglik_obs,
    maximize,
    newton,
    sandwich,
)
from scaling.stats.results import CurveFit


def fit_curve(model: str, dose, k, n=None, *, seeds=None, blocks=None, background=None,
              family: str = "binomial", group: dict | None = None, warn: bool = True,
              levels=None) -> CurveFit:
    """Fit one model of scaling.stats.curves.CURVES (by name: "loglinear", "LL.3", ...) to one group of rows.

    dose, k, n: arrays (k is the response itself when family="normal"); seeds: cluster labels
    per row (>= 2 distinct for the cluster-robust SE); blocks: block labels per row (train seed,
    world): with >= 2 distinct, each block gets its own effect on the dose-0 level (d for
    LL.3/LL.4, the intercept otherwise); background: None, a fixed x0, or "estimate"; levels:
    the asked dose level per row (default: the dose): the curve is fitted at the measured doses,
    but the seeds of one asked dose see slightly different measured doses, and only distinct
    levels identify its parameters. Never raises on bad data: returns a fit with usable=False and warns.
    """
    if model not in CURVES:
        raise UsageError(f"unknown model {model!r}; choose from {', '.join(CURVES)}")
    if background == "estimate" and not CURVES[model].estimated_background:
        raise UsageError(f"an estimated background needs {' or '.join(BACKGROUND_MODELS)}: "
                         f"{model}'s plateau d is confounded with it (give a fixed x0)")
    x = np.asarray(dose, float)
    k = np.asarray(k, float)
    n = np.ones_like(k) if n is None else np.asarray(n, float)
    seeds = None if seeds is None else np.asarray(seeds, dtype=object)
    keep = x > 0 if CURVES[model].log_dose else np.ones(len(x), bool)
    levels = x if levels is None else np.asarray(levels, float)
    x, k, n, levels = x[keep], k[keep], n[keep], levels[keep]
    seeds = None if seeds is None else seeds[keep]
    blocks = None if blocks is None else np.asarray(blocks, dtype=object)[keep]
    block_labels = _block_labels(blocks)
    fit = CurveFit(model=model, group=dict(group or {}), family=family,
                   data="dose>0" if CURVES[model].log_dose else "all doses",
                   n_obs=len(x), background=background,
                   n_seeds=count_clusters(seeds))
    if len(x):
        fit.dose_range = (float(x[x > 0].min()) if (x > 0).any() else 0.0, float(x.max()))
    design = make_design(model, family, x, background, block_labels, blocks)
    fit.names, fit.block_labels = design.names, tuple(block_labels)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _check_data(design, k, n, levels)
            fitter = _fit_glm if model == "LL.2" and background != "estimate" else _fit_ml
            _finish(fit, design, *fitter(design, k, n, seeds), k, n)
    except Unusable as e:
        fit.usable, fit.reason = False, str(e)
        fit.estimate = fit.cov = fit.cov_cluster = None
        if warn:
            warn_fit(f"{group_label(fit.group)} {model}"
                  f"{' (background)' if background is not None else ''}: unusable: {e}")
    return fit


def _block_labels(blocks) -> list[str]:
    if blocks is None:
        return []
    labels = sorted({str(b) for b in blocks})
    return labels if len(labels) >= 2 else []


def fit_ll2(dose, k, n, **kwargs) -> CurveFit:
    """LL.2: binomial GLM with logit link on ln(dose), dose > 0 (drc's b = -slope)."""
    return fit_curve("LL.2", dose, k, n, **kwargs)


def fit_loglinear(dose, k, n, **kwargs) -> CurveFit:
    """rate = intercept + slope*ln(dose) on dose > 0, binomial maximum likelihood."""
    return fit_curve("loglinear", dose, k, n, **kwargs)


def fit_ll(dose, k, n=None, n_params: int = 4, **kwargs) -> CurveFit:
    """drc's LL.3 (c = 0) or LL.4 by maximum likelihood, dose-0 controls included.

    family="normal" fits continuous responses k by least squares with drc's vcov
    2*s^2*H^-1 (H the Hessian of the residual sum of squares).
    """
    if n_params not in (3, 4):
        raise UsageError(f"n_params must be 3 or 4, not {n_params}")
    return fit_curve(f"LL.{n_params}", dose, k, n, **kwargs)


def _check_data(design: Design, k, n, levels) -> None:
    n_obs, n_params = len(design.x), len(design.names)
    curve_params = n_params - len(design.block_columns())  # blocks are not identified by doses
    if n_obs == 0:
        raise Unusable("no observations" + (" at dose > 0" if curve(design.model).log_dose else ""))
    if design.family == "binomial":
        if k.sum() == 0:
            raise Unusable("all counts are 0 (no misaligned answers): no curve to fit")
        if k.sum() == n.sum():
            raise Unusable("all counts equal their totals (every answer misaligned): no curve to fit")
        if _separated(design.x, k, n):
            raise Unusable("perfect separation: every run is all misaligned on one side of a dose "
                            "and has no misaligned answer on the other; the slope is infinite")
    levels = len(np.unique(levels))
    if levels == 1:
        raise Unusable(f"a single dose ({design.x[0]:g}): the dose-response is not identified")
    if levels < curve_params:
        raise Unusable(f"{levels} distinct doses for {curve_params} parameters: not identified")
    if n_obs <= n_params:
        raise Unusable(f"group too small: {n_obs} observations for {n_params} parameters "
                        "(no residual degrees of freedom)")


def _separated(x, k, n) -> bool:
    if not np.all((k == 0) | (k == n)):
        return False
    ones, zeros = x[k == n], x[k == 0]
    return ones.max() < zeros.min() or zeros.max() < ones.min()


def _fit_glm(design: Design, k, n, seeds):
    """LL.2 as statsmodels' binomial GLM: estimate, model covariance, cluster covariance."""
    z, _ = dose_axis(design.x, design.x0)
    exog = sm.add_constant(z, has_constant="add")
    if design.block_columns():
        exog = np.column_stack([exog, design.block_matrix])
    model = sm.GLM(np.column_stack([k, n - k]), exog, family=sm.families.Binomial())
    try:
        res = model.fit()
        cluster = None
        if count_clusters(seeds) >= 2:
            groups = cluster_codes(seeds)[0]
            cluster = model.fit(cov_type="cluster", cov_kwds={"groups": groups}).cov_params()
    except (np.linalg.LinAlgError, ValueError) as e:
        raise Unusable(f"GLM failed: {e}") from e
    if not res.converged:
        raise Unusable("the GLM did not converge")
    return (np.asarray(res.params, float), np.asarray(res.cov_params(), float),
            None if cluster is None else np.asarray(cluster, float))


def _fit_ml(design: Design, k, n, seeds):
    """Maximum likelihood (GenericLikelihoodModel): estimate, inverse information, sandwich."""
    model = CurveLikelihood(design, k, n, design.family)
    phi = maximize(model, _starts(design, k, n))
    if design.model == "LL.4":
        phi = _canonical_ll4(model, phi)
    if not has_converged(model, phi):
        raise Unusable("the optimiser did not converge to a maximum with a positive definite "
                        "information matrix (parameters not identified by these data)")
    cov_info = np.linalg.inv(-model.hessian(phi))
    cluster = sandwich(model.score_obs(phi), cov_info, seeds) if count_clusters(seeds) >= 2 else None
    return phi, cov_info, cluster


def _canonical_ll4(model, phi: np.ndarray) -> np.ndarray:
    """drc's convention d >= c: the same curve with (b, c, d) -> (-b, d, c) if needed."""
    b, c, d = 0, 1, 2  # columns of LL.4's (b, c, d, log e)
    if phi[c] <= phi[d]:
        return phi
    swapped = phi.copy()
    swapped[[b, c, d]] = -phi[b], phi[d], phi[c]
    return newton(model, swapped)


def _starts(design: Design, k, n) -> list[np.ndarray]:
    """Starting values: a linearised fit, at several backgrounds when one is estimated."""
    x = design.x
    positive = x[x > 0]
    if design.column("log_background") is None:
        x0s = [design.x0]
    else:
        # The background is sought among the doses: below them the data cannot show it.
        x0s = list(np.exp(np.quantile(np.log(positive), [0.1, 0.4, 0.7])))
    starts = []
    for x0 in x0s:
        z, _ = dose_axis(x, x0)
        core = curve(design.model).starts(design, z, k, n)
        for start in core:
            start = np.append(start, np.zeros(len(design.block_columns())))
            if design.column("log_background") is not None:
                start = np.append(start, np.log(x0))
            starts.append(start)
    return starts


def _finish(fit: CurveFit, design: Design, phi, cov_info, cov_cluster, k, n) -> None:
    """Fill the fit's estimates, SEs, dispersion and checks from an optimum."""
    f, _ = design.mean(phi)
    n_obs = len(f)
    fit.df_resid = n_obs - len(phi)
    if design.family == "normal":
        rss = float(np.sum((k - f) ** 2))
        scale = rss / fit.df_resid
        fit.loglik = -n_obs / 2 * (np.log(2 * np.pi * rss / n_obs) + 1)
    else:
        scale = 1.0
        fit.loglik = float(loglik_obs(f, k, n, "binomial").sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            fit.dispersion = float(np.sum((k - n * f) ** 2 / (n * f * (1 - f))) / fit.df_resid)
    fit.estimate, fit.cov, fit.cov_cluster = np.asarray(phi, float), scale * cov_info, cov_cluster
    if fit.n_seeds == 0:
        fit.notes.append("no seed column: se_robust is the quasi-binomial SE")
    elif fit.n_seeds == 1:
        fit.notes.append("one seed only: no cluster-robust SE; se_robust is the quasi-binomial SE")
    _check_fit(fit, design, f)


def _check_fit(fit: CurveFit, design: Design, f: np.ndarray) -> None:
    """Turn estimates that sit on a bound, diverge or have no finite SE into unusable fits."""
    covs = [fit.cov] + ([fit.cov_cluster] if fit.cov_cluster is not None else [])
    if not (np.all(np.isfinite(fit.estimate)) and all(np.all(np.isfinite(c)) for c in covs)):
        raise Unusable("non-finite estimates or standard errors")
    if np.any(np.diag(fit.cov) <= 0):
        raise Unusable("non-positive variances: the information matrix is singular")
    nat = fit.natural()
    slope = nat.get("b", nat.get("slope"))
    if design.model != "loglinear" and abs(slope) > MAX_SLOPE:
        raise Unusable(f"the slope diverges ({slope:.3g}): perfect separation, the rate jumps "
                        "between two adjacent doses")
    if design.family == "binomial" and design.model != "loglinear":
        # At dose 0 an increasing LL.3 sits on its fixed c = 0 by construction: not a symptom.
        if np.any(np.minimum(f, 1 - f)[design.x > 0] < MIN_FITTED):
            raise Unusable("fitted rates reach 0 or 1 (perfect separation or a limit at its bound)")
    for name in ("logit_c", "logit_d"):
        j = design.column(name)
        if j is not None and abs(fit.estimate[j]) > MAX_LOGIT_LIMIT:
            bound = "0" if fit.estimate[j] < 0 else "1"
            hint = " (use LL.3)" if name == "logit_c" and bound == "0" else ""
            raise Unusable(f"limit {name[6:]} at its bound {bound}{hint}: not identified")
    if "background" in nat:
        positive = design.x[design.x > 0]
        if nat["background"] < positive.min() / 100:
            raise Unusable("background tends to 0: no flat region below the lowest doses")
        if nat["background"] > positive.max() * 100:
            raise Unusable("background far above the doses: the curve is flat over the data")


