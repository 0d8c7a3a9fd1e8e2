"""Dose-response fits of a results table: `scaling fit RESULTS.csv --out DIR`.

Input columns: dose, misaligned (k), total (n); optional insertion, split, model (groups),
seed (clusters, bootstrap units), aligned_tokens, flops (cost-effectiveness), status (rows
other than "ok" are dropped), arm (rows other than "dose" are dropped: the filtering and
misaligned arms are not points of the dose-response curve), nominal_dose or else
aligned_fraction (groups the seeds of one dose level for cost-effectiveness). Dose-0 rows whose insertion is empty/"none"/"control" are
controls shared by every insertion window of their (split, model).

Models, per group and pooled over insertion windows ("pooled"):
  loglinear  rate = intercept + slope*ln(dose), binomial ML on dose > 0;
  LL.2       binomial GLM, logit link on ln(dose), dose > 0 (drc: b = -slope, e = ED50);
  LL.3/LL.4  drc's f = c + (d-c)/(1+exp(b(ln x - ln e))) (LL.3: c = 0), binomial ML that
             includes the dose-0 controls (they fix d). b > 0: decreasing, as in drc.
With --background the dose axis ln(x0 + dose) is fitted beside each plain model and compared
by AIC: a fixed x0 for every model; an estimated x0 ("auto") for loglinear and LL.2 only, since
LL.3/LL.4 already have a low-dose plateau d with which an estimated x0 is confounded.

fit.json:
  fits[]: group, model, data ("dose>0" | "all doses"), usable, reason, notes, n_obs, n_seeds,
    dispersion (Pearson X2/df), df_resid, loglik, aic, background (null | {mode, estimate,
    se, se_robust, lower, upper}), params, se (plain binomial, as drc), se_cluster, se_robust,
    ed {"10","50","90": {estimate, se, lower, upper, lower_log, upper_log, se_robust,
    lower_robust, upper_robust, lower_log_robust, upper_log_robust}}, vcov {names, estimate,
    plain, cluster} (internal parametrisation, read by `predict`), bootstrap.
  comparisons[]: equal_slope / equal_ed50 on LL.2 across insertion windows (lr, df, p: binomial
    likelihood ratio; lr_robust = lr/max(1, dispersion), p_robust: its F test), and background
    (AIC with and without; "preferred": "background" only if it lowers AIC by >= 2).
  aic_table[], cost_effectiveness[] (misalignment reduction vs dose 0 per aligned token, FLOP).

se_robust of every quantity is the larger of the quasi-binomial SE (se*sqrt(max(1, X2/df)))
and the sandwich SE clustered by seed (needs >= 2 seeds); every significance statement uses it.
Intervals are estimate +- z*SE (t(df_resid) for the continuous mode); *_log intervals are
exp(ln ED +- z*SE/ED). Data rows in error messages count from 1 after the CSV header.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.base.model import GenericLikelihoodModel

from scaling.errors import UsageError

MODELS = ("loglinear", "LL.2", "LL.3", "LL.4")
GROUP_KEYS = ("insertion", "split", "model")
REQUIRED = ("dose", "misaligned", "total")
OPTIONAL_NUMERIC = ("aligned_tokens", "flops")
ED_LEVELS = (10, 50, 90)
CONTROL_LABELS = {"", "none", "control", "controls", "baseline", "nan"}
POOLED = "pooled"
# Models without a low-dose plateau of their own, where an estimated background is identified.
BACKGROUND_MODELS = ("loglinear", "LL.2")
Z95 = float(stats.norm.ppf(0.975))
# Beyond these the estimate sits on a bound or diverges, and its SE means nothing.
MAX_SLOPE = 50.0
MAX_LOGIT_LIMIT = 10.0
MIN_FITTED = 1e-8
# The background must lower AIC by this much to be preferred over the simpler dose axis.
AIC_MARGIN = 2.0


class FitWarning(UserWarning):
    """A fit that could not be made or cannot be trusted; the reason is also in fit.json."""


class _Unusable(Exception):
    """Raised inside a fitter; the fit is returned with usable=False and this reason."""


# ---------------------------------------------------------------- input


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results CSV as it is; `fit_table` validates it (see `clean_table`)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a readable CSV ({e})") from e
    return df


def _text(col: pd.Series) -> pd.Series:
    """A column as str; empty cells become "" (pandas 3 keeps NaN through astype(str))."""
    return col.astype(object).map(lambda v: "" if isinstance(v, float) and math.isnan(v) else str(v)).astype(str)


def clean_table(df: pd.DataFrame) -> pd.DataFrame:
    """Validated copy: numeric counts, rows with status != ok or NaN counts dropped (warned).

    Raises UsageError naming the column and row for missing columns, non-numeric values,
    negative doses or counts, and k > n.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"missing column(s) {', '.join(missing)}: a results table needs "
                         f"{', '.join(REQUIRED)}")
    df = df.reset_index(drop=True).copy()
    df["_row"] = np.arange(1, len(df) + 1)
    if "status" in df.columns:
        bad = _text(df["status"]).str.strip() != "ok"
        if bad.any():
            _warn(f"dropping {int(bad.sum())} row(s) with status != 'ok' "
                  f"({', '.join(sorted(_text(df.loc[bad, 'status']).unique()))})")
            df = df[~bad]
    if "arm" in df.columns:
        other = _text(df["arm"]).str.strip() != "dose"
        if other.any():
            _warn(f"dropping {int(other.sum())} row(s) of arms other than 'dose' "
                  f"({', '.join(sorted(_text(df.loc[other, 'arm']).unique()))}): a dose-response "
                  "curve is fitted to the aligned-dose arm and its controls")
            df = df[~other]
    for col in REQUIRED + tuple(c for c in OPTIONAL_NUMERIC if c in df.columns):
        df[col] = _numeric_column(df, col)
    nan_rows = df[list(REQUIRED)].isna().any(axis=1)
    if nan_rows.any():
        _warn(f"dropping {int(nan_rows.sum())} row(s) with a missing dose, misaligned or total "
              f"(rows {_row_list(df[nan_rows])})")
        df = df[~nan_rows]
    _reject(df, df["dose"] < 0, "dose", "is negative")
    _reject(df, df["total"] < 0, "total", "is negative")
    _reject(df, df["misaligned"] < 0, "misaligned", "is negative")
    _reject(df, df["misaligned"] > df["total"], "misaligned", "exceeds total (k > n)")
    empty = df["total"] == 0
    if empty.any():
        _warn(f"dropping {int(empty.sum())} row(s) with total = 0 (rows {_row_list(df[empty])})")
        df = df[~empty]
    return df


def _numeric_column(df: pd.DataFrame, col: str) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = (values.isna() & df[col].notna()) | np.isinf(values)
    if bad.any():
        row = df[bad].iloc[0]
        raise UsageError(f"column {col!r}, row {int(row['_row'])}: {row[col]!r} is not a "
                         "finite number")
    return values.astype(float)


def _reject(df: pd.DataFrame, bad: pd.Series, col: str, what: str) -> None:
    if bad.any():
        row = df[bad].iloc[0]
        raise UsageError(f"column {col!r}, row {int(row['_row'])}: {row[col]:g} {what} "
                         f"(misaligned={row['misaligned']:g}, total={row['total']:g})")


def _row_list(df: pd.DataFrame, limit: int = 8) -> str:
    rows = [str(int(r)) for r in df["_row"].tolist()]
    return ", ".join(rows[:limit]) + (", ..." if len(rows) > limit else "")


def _warn(message: str) -> None:
    warnings.warn(message, FitWarning, stacklevel=3)


# ---------------------------------------------------------------- curves


def _dose_axis(x: np.ndarray, x0: float) -> tuple[np.ndarray, np.ndarray]:
    """ln(x0 + x) (-inf at a zero dose without background) and its derivative in ln x0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(x + x0)
        dz = np.where(x + x0 > 0, x0 / (x + x0), 0.0)
    return z, dz


@dataclass(frozen=True)
class _Design:
    """Mean curve f(phi) at fixed doses with its Jacobian.

    phi is the internal parametrisation: intercept, slope for loglinear/LL.2; b, logit c,
    logit d (plain c, d for continuous data), log e for LL.3/LL.4; log background when the
    background is estimated. `b_index`/`e_index` give each observation's column of b and
    log e, so several curves can share or split them (the equal-ED50 comparison).
    """

    model: str
    family: str
    x: np.ndarray
    names: tuple[str, ...]
    x0: float = 0.0
    b_index: np.ndarray | None = None
    e_index: np.ndarray | None = None

    def column(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def mean(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = np.asarray(phi, float)
        jx0 = self.column("log_background")
        x0 = float(np.exp(phi[jx0])) if jx0 is not None else self.x0
        z, dz = _dose_axis(self.x, x0)
        f, D, dfdz = (_linear_mean if self.model in ("loglinear", "LL.2") else _ll_mean)(self, phi, z)
        if jx0 is not None:
            D[:, jx0] = dfdz * dz
        return f, D


def _linear_mean(design: _Design, phi, z):
    a, s = phi[0], phi[1]
    eta = a + s * z
    if design.model == "LL.2":
        f = special.expit(eta)
        dfde = f * (1 - f)
    else:
        f, dfde = eta, np.ones_like(eta)
    D = np.zeros((len(z), len(phi)))
    D[:, 0], D[:, 1] = dfde, dfde * z
    return f, D, dfde * s


def _limit(design: _Design, phi, name: str, fixed: float) -> tuple[float, float, int | None]:
    """A curve limit c or d: value, derivative in its internal parameter, column."""
    for internal, transform in ((f"logit_{name}", "logit"), (name, "identity")):
        j = design.column(internal)
        if j is not None:
            if transform == "logit":
                v = float(special.expit(phi[j]))
                return v, v * (1 - v), j
            return float(phi[j]), 1.0, j
    return fixed, 0.0, None


def _ll_mean(design: _Design, phi, z):
    n_obs = len(z)
    rows = np.arange(n_obs)
    bi = design.b_index if design.b_index is not None else np.full(n_obs, design.column("b"))
    ei = design.e_index if design.e_index is not None else np.full(n_obs, design.column("log_e"))
    b, le = phi[bi], phi[ei]
    c, dc, jc = _limit(design, phi, "c", 0.0)
    d, dd, jd = _limit(design, phi, "d", 1.0)
    w = z - le
    finite = np.isfinite(w)
    w0 = np.where(finite, w, 0.0)
    # At a zero dose (w = -inf) the curve sits at d for b > 0 and at c for b < 0.
    g = np.where(finite, special.expit(-b * w0), np.where(b > 0, 1.0, np.where(b < 0, 0.0, 0.5)))
    gg = np.where(finite, g * (1 - g), 0.0)
    f = c + (d - c) * g
    D = np.zeros((n_obs, len(phi)))
    D[rows, bi] += -(d - c) * gg * w0
    D[rows, ei] += (d - c) * gg * b
    if jc is not None:
        D[:, jc] += (1 - g) * dc
    if jd is not None:
        D[:, jd] += g * dd
    return f, D, -(d - c) * gg * b


def _make_design(model: str, family: str, x: np.ndarray, background) -> _Design:
    """The single-curve design of a model; background None, a fixed x0, or "estimate"."""
    if model in ("loglinear", "LL.2"):
        names = ("intercept", "slope")
    else:
        limits = ("c", "d") if model == "LL.4" else ("d",)
        prefix = "logit_" if family == "binomial" else ""
        names = ("b",) + tuple(prefix + lim for lim in limits) + ("log_e",)
    x0 = 0.0
    if background == "estimate":
        names += ("log_background",)
    elif background is not None:
        x0 = float(background)
    return _Design(model, family, np.asarray(x, float), names, x0)


def _natural(names: Sequence[str], phi: np.ndarray) -> dict[str, float]:
    """Internal parameters on their natural scale: logit_c -> c, log_e -> e, ..."""
    out = {}
    for name, v in zip(names, phi):
        if name.startswith("logit_"):
            out[name[6:]] = special.expit(v)
        elif name.startswith("log_"):
            out[name[4:]] = np.exp(v)
        else:
            out[name] = v
    return out


def _ed_dose(model: str, nat: dict, p: float, x0: float) -> float:
    """drc's relative ED: the dose where p% of the change between the two limits is reached."""
    if model == "LL.2":
        a, s = nat["intercept"], nat["slope"]
        q = 1 - p / 100 if s < 0 else p / 100
        z = (special.logit(q) - a) / s
    else:
        b = nat["b"]
        q = p if b > 0 else 100 - p
        z = np.log(nat["e"]) + special.logit(q / 100) / b
    return float(np.exp(z) - x0)


# ---------------------------------------------------------------- likelihood


def _loglik_obs(f, k, n, family):
    if family == "normal":
        return -0.5 * (k - f) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
        ll = ll + special.xlogy(k, f) + special.xlogy(n - k, 1 - f)
    # The identity-link loglinear curve can leave [0, 1]; there the likelihood is zero.
    return np.where((f < 0) | (f > 1), -np.inf, ll)


def _dldf(f, k, n, family):
    if family == "normal":
        return k - f
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.divide(k, f, out=np.zeros_like(f), where=k > 0)
                - np.divide(n - k, 1 - f, out=np.zeros_like(f), where=n - k > 0))


def _jacobian(fun: Callable, x: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Central differences; rows are fun's outputs, columns x's entries."""
    x = np.asarray(x, float)
    cols = []
    for j in range(len(x)):
        h = rel * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        cols.append((np.atleast_1d(fun(up)) - np.atleast_1d(fun(down))) / (2 * h))
    return np.column_stack(cols)


class _CurveLikelihood(GenericLikelihoodModel):
    """Binomial (or, for tests against drc, least-squares) likelihood of a _Design curve."""

    def __init__(self, design: _Design, k, n, family: str):
        k = np.asarray(k, float)
        super().__init__(k, None, extra_params_names=list(design.names))
        self.design, self.trials, self.family = design, np.asarray(n, float), family
        self.k_extra, self.df_model = 0, len(design.names)
        self.df_resid = len(k) - len(design.names)

    def loglikeobs(self, params):
        f, _ = self.design.mean(params)
        return _loglik_obs(f, self.endog, self.trials, self.family)

    def score_obs(self, params):
        f, D = self.design.mean(params)
        return _dldf(f, self.endog, self.trials, self.family)[:, None] * D

    def score(self, params):
        return self.score_obs(params).sum(axis=0)

    def hessian(self, params):
        H = _jacobian(self.score, params)
        return (H + H.T) / 2


def _maximize(model: _CurveLikelihood, starts: list[np.ndarray]) -> np.ndarray:
    """Best optimum over several starts (damped Newton; statsmodels BFGS if none converges)."""
    candidates = [_newton(model, np.asarray(s, float)) for s in starts
                  if np.isfinite(model.loglike(s))]
    if candidates and not any(_converged(model, phi) for phi in candidates):
        best = max(candidates, key=model.loglike)
        if _runaway(model.design, best):
            return best
        try:
            res = model.fit(start_params=best, method="bfgs", disp=0, maxiter=500, gtol=1e-9)
            candidates.append(_newton(model, np.asarray(res.params, float)))
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            pass
    candidates = [phi for phi in candidates if np.isfinite(model.loglike(phi))]
    if not candidates:
        raise _Unusable("the optimiser found no finite likelihood from any start")
    return max(candidates, key=model.loglike)


def _newton(model: _CurveLikelihood, phi: np.ndarray, steps: int = 100) -> np.ndarray:
    """Newton ascent with Levenberg-Marquardt damping: robust far from the optimum, and
    exact at it, so that the Hessian-based SEs are those of the maximum."""
    ll, lam = model.loglike(phi), 1e-3
    history = [ll]
    for _ in range(steps):
        g, H = model.score(phi), model.hessian(phi)
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
            return phi
        info = -H
        damping = np.diag(np.abs(np.diag(info))) + 1e-12 * np.eye(len(phi))
        while lam < 1e12:
            try:
                step = np.linalg.solve(info + lam * damping, g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            ll_trial = model.loglike(phi + step)
            if np.isfinite(ll_trial) and ll_trial >= ll - 1e-12:
                break
            lam *= 10
        else:
            return phi
        phi, ll, lam = phi + step, ll_trial, max(lam / 10, 1e-12)
        history.append(ll)
        # Near a true maximum Newton converges quadratically; creeping along a ridge (a
        # parameter running off to infinity) gains almost nothing per step: stop there.
        creeping = len(history) > 10 and history[-1] - history[-11] < 1e-4
        if abs(g @ step) < 1e-12 or creeping or _runaway(model.design, phi):
            return phi
    return phi


def _runaway(design: _Design, phi: np.ndarray) -> bool:
    """Estimates well past the bounds that `_check_fit` rejects: no point optimising on."""
    for name, v in zip(design.names, phi):
        if name.startswith("logit_") and abs(v) > 2 * MAX_LOGIT_LIMIT:
            return True
        if name in ("b", "slope") or name.startswith("b_"):
            if abs(v) > 2 * MAX_SLOPE:
                return True
        if name == "log_background":
            log_doses = np.log(design.x[design.x > 0])
            if not log_doses.min() - 10 < v < log_doses.max() + 10:
                return True
    return False


def _converged(model: _CurveLikelihood, phi: np.ndarray) -> bool:
    """Newton decrement small and the information positive definite."""
    g, H = model.score(phi), model.hessian(phi)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return False
    if np.any(np.linalg.eigvalsh(-H) <= 0):
        return False
    return float(g @ np.linalg.solve(-H, g)) < 1e-6


def _cluster_factor(n_clusters: int, n_obs: int, n_params: int) -> float:
    # statsmodels' small-sample correction for cov_type="cluster", so GLM and ML SEs agree.
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


def _sandwich(scores: np.ndarray, cov_info: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    codes, n_clusters = _cluster_codes(clusters)
    summed = np.zeros((n_clusters, scores.shape[1]))
    np.add.at(summed, codes, scores)
    meat = summed.T @ summed
    return cov_info @ meat @ cov_info * _cluster_factor(n_clusters, *scores.shape)


def _cluster_codes(clusters) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(clusters), use_na_sentinel=False)
    return codes, len(uniques)


def _n_clusters(clusters) -> int:
    return 0 if clusters is None else _cluster_codes(clusters)[1]


# ---------------------------------------------------------------- results


@dataclass
class CurveFit:
    """One model fitted to one group. `estimate`/`cov` are in the internal parametrisation."""

    model: str
    group: dict = field(default_factory=dict)
    family: str = "binomial"
    data: str = "dose>0"
    names: tuple[str, ...] = ()
    estimate: np.ndarray | None = None
    cov: np.ndarray | None = None
    cov_cluster: np.ndarray | None = None
    dispersion: float | None = None
    df_resid: int = 0
    n_obs: int = 0
    n_seeds: int = 0
    loglik: float | None = None
    background: float | str | None = None
    dose_range: tuple[float, float] | None = None
    usable: bool = True
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    bootstrap: dict | None = None

    @property
    def n_params(self) -> int:
        return len(self.names)

    @property
    def aic(self) -> float | None:
        # Continuous data also estimate the residual variance (drc counts it too).
        k = self.n_params + (self.family == "normal")
        return None if self.loglik is None else -2 * self.loglik + 2 * k

    @property
    def quantile(self) -> float:
        return float(stats.t.ppf(0.975, self.df_resid)) if self.family == "normal" else Z95

    def design(self, x) -> _Design:
        return _make_design(self.model, self.family, x, self.background)

    def natural(self, phi=None) -> dict[str, float]:
        return _natural(self.names, self.estimate if phi is None else phi)

    def x0(self, phi=None) -> float:
        return float(self.natural(phi).get("background", self.background or 0.0))

    def delta(self, fun: Callable) -> dict:
        """fun(phi) with its plain, seed-clustered and robust SEs (delta method)."""
        grad = _jacobian(fun, self.estimate)[0]
        robust = [_se(grad, c) for c in self._robust_covs()]
        return {"estimate": float(np.atleast_1d(fun(self.estimate))[0]),
                "se": _se(grad, self.cov),
                "se_cluster": None if self.cov_cluster is None else _se(grad, self.cov_cluster),
                "se_robust": max(robust) if robust else None}

    def _robust_covs(self) -> list[np.ndarray]:
        covs = [self.cov_cluster] if self.cov_cluster is not None else []
        if self.family == "normal":
            return covs + [self.cov]
        if self.dispersion is not None and np.isfinite(self.dispersion):
            covs.append(self.cov * max(1.0, self.dispersion))
        return covs

    def param_functions(self) -> dict[str, Callable]:
        """Reported parameters as functions of phi (drc names; intercept/slope for GLMs)."""
        if self.model in ("loglinear", "LL.2"):
            wanted = ("intercept", "slope")
        else:
            wanted = ("b", "c", "d", "e") if self.model == "LL.4" else ("b", "d", "e")
        return {name: (lambda phi, name=name: self.natural(phi)[name]) for name in wanted}

    def params(self) -> dict[str, dict]:
        """name -> {estimate, se, se_cluster, se_robust}."""
        return {name: self.delta(fun) for name, fun in self.param_functions().items()}

    def ed(self, p: float) -> dict | None:
        """ED entry for p% with plain/robust, linear/log-scale intervals; None if undefined."""
        if self.model == "loglinear":
            return None

        def fun(phi):
            return _ed_dose(self.model, self.natural(phi), p, self.x0(phi))

        est = fun(self.estimate)
        if not np.isfinite(est) or est <= 0:
            return None
        d = self.delta(fun)
        low, high = self.dose_range
        entry = {"estimate": est, "extrapolated": not low <= est <= high}
        for suffix in ("", "_robust"):
            entry.update(_interval(est, d["se" + suffix], self.quantile, suffix))
        return entry

    def background_entry(self) -> dict | None:
        if self.background is None:
            return None
        if self.background != "estimate":
            return {"mode": "fixed", "estimate": float(self.background)}
        if not self.usable:
            return {"mode": "estimated", "estimate": None}
        d = self.delta(lambda phi: self.natural(phi)["background"])
        entry = {"mode": "estimated", "estimate": d["estimate"]}
        for suffix in ("", "_robust"):
            entry.update(_interval(d["estimate"], d["se" + suffix], self.quantile, suffix))
        return entry

    def to_dict(self) -> dict:
        out = {"group": self.group, "model": self.model, "family": self.family, "data": self.data,
               "usable": self.usable, "reason": self.reason, "notes": self.notes,
               "n_obs": self.n_obs, "n_seeds": self.n_seeds, "dispersion": self.dispersion,
               "df_resid": self.df_resid, "loglik": self.loglik, "aic": self.aic,
               "background": None, "params": None, "se": None, "se_cluster": None,
               "se_robust": None, "ed": {}, "vcov": None, "dose_range": self.dose_range,
               "bootstrap": self.bootstrap}
        if not self.usable:
            out["background"] = self.background_entry()
            return _clean(out)
        with np.errstate(all="ignore"):
            self._fill_estimates(out)
        return _clean(out)

    def _fill_estimates(self, out: dict) -> None:
        params = self.params()
        out["params"] = {k: v["estimate"] for k, v in params.items()}
        for key in ("se", "se_cluster", "se_robust"):
            out[key] = {k: v[key] for k, v in params.items()}
        if self.cov_cluster is None:
            out["se_cluster"] = None
        out["background"] = self.background_entry()
        out["ed"] = {str(p): self.ed(p) for p in ED_LEVELS}
        out["vcov"] = {"names": list(self.names), "estimate": self.estimate.tolist(),
                       "plain": self.cov.tolist(),
                       "cluster": None if self.cov_cluster is None else self.cov_cluster.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> CurveFit:
        """A fit back from its fit.json entry (enough for `predict`); usable entries only."""
        vcov = d.get("vcov")
        if not d.get("usable") or vcov is None:
            raise UsageError(f"{d.get('model')} fit of {_group_label(d.get('group') or {})} "
                             f"is unusable: {d.get('reason')}")
        bg = d.get("background")
        background = None
        if isinstance(bg, dict):
            background = "estimate" if bg["mode"] == "estimated" else bg["estimate"]
        cluster = vcov.get("cluster")
        return cls(model=d["model"], group=d.get("group", {}), family=d.get("family", "binomial"),
                   names=tuple(vcov["names"]), estimate=np.asarray(vcov["estimate"], float),
                   cov=np.asarray(vcov["plain"], float),
                   cov_cluster=None if cluster is None else np.asarray(cluster, float),
                   dispersion=d.get("dispersion"), df_resid=d.get("df_resid", 0),
                   background=background, dose_range=d.get("dose_range"))


def _se(grad: np.ndarray, cov: np.ndarray) -> float:
    # Rounding can leave a variance a hair below 0 (e.g. a cluster meat of ~0): clip it.
    return float(np.sqrt(max(float(grad @ cov @ grad), 0.0)))


def _interval(est: float, se: float | None, q: float, suffix: str) -> dict:
    if se is None or not np.isfinite(se):
        return {f"se{suffix}": None, f"lower{suffix}": None, f"upper{suffix}": None,
                f"lower_log{suffix}": None, f"upper_log{suffix}": None}
    half_log = q * se / est if est > 0 else np.nan
    return {f"se{suffix}": se, f"lower{suffix}": est - q * se, f"upper{suffix}": est + q * se,
            f"lower_log{suffix}": est * np.exp(-half_log), f"upper_log{suffix}": est * np.exp(half_log)}


def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------- fitting


def fit_curve(model: str, dose, k, n=None, *, seeds=None, background=None,
              family: str = "binomial", group: dict | None = None, warn: bool = True) -> CurveFit:
    """Fit one model ("loglinear", "LL.2", "LL.3", "LL.4") to one group of rows.

    dose, k, n: arrays (k is the response itself when family="normal"); seeds: cluster labels
    per row (>= 2 distinct for the cluster-robust SE); background: None, a fixed x0, or
    "estimate". Never raises on bad data: returns a fit with usable=False and warns.
    """
    if model not in MODELS:
        raise UsageError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if background == "estimate" and model not in BACKGROUND_MODELS:
        raise UsageError(f"an estimated background needs {' or '.join(BACKGROUND_MODELS)}: "
                         f"{model}'s plateau d is confounded with it (give a fixed x0)")
    x = np.asarray(dose, float)
    k = np.asarray(k, float)
    n = np.ones_like(k) if n is None else np.asarray(n, float)
    seeds = None if seeds is None else np.asarray(seeds, dtype=object)
    keep = x > 0 if model in ("loglinear", "LL.2") else np.ones(len(x), bool)
    x, k, n = x[keep], k[keep], n[keep]
    seeds = None if seeds is None else seeds[keep]
    fit = CurveFit(model=model, group=dict(group or {}), family=family,
                   data="dose>0" if model in ("loglinear", "LL.2") else "all doses",
                   n_obs=len(x), background=background,
                   n_seeds=_n_clusters(seeds))
    if len(x):
        fit.dose_range = (float(x[x > 0].min()) if (x > 0).any() else 0.0, float(x.max()))
    design = _make_design(model, family, x, background)
    fit.names = design.names
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _check_data(design, k, n)
            fitter = _fit_glm if model == "LL.2" and background != "estimate" else _fit_ml
            _finish(fit, design, *fitter(design, k, n, seeds), k, n)
    except _Unusable as e:
        fit.usable, fit.reason = False, str(e)
        fit.estimate = fit.cov = fit.cov_cluster = None
        if warn:
            _warn(f"{_group_label(fit.group)} {model}"
                  f"{' (background)' if background is not None else ''}: unusable: {e}")
    return fit


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


def _check_data(design: _Design, k, n) -> None:
    n_obs, n_params = len(design.x), len(design.names)
    if n_obs == 0:
        raise _Unusable("no observations" + (" at dose > 0" if design.model in ("loglinear", "LL.2") else ""))
    if design.family == "binomial":
        if k.sum() == 0:
            raise _Unusable("all counts are 0 (no misaligned answers): no curve to fit")
        if k.sum() == n.sum():
            raise _Unusable("all counts equal their totals (every answer misaligned): no curve to fit")
        if _separated(design.x, k, n):
            raise _Unusable("perfect separation: every run is all misaligned on one side of a dose "
                            "and has no misaligned answer on the other; the slope is infinite")
    levels = len(np.unique(design.x))
    if levels == 1:
        raise _Unusable(f"a single dose ({design.x[0]:g}): the dose-response is not identified")
    if levels < n_params:
        raise _Unusable(f"{levels} distinct doses for {n_params} parameters: not identified")
    if n_obs <= n_params:
        raise _Unusable(f"group too small: {n_obs} observations for {n_params} parameters "
                        "(no residual degrees of freedom)")


def _separated(x, k, n) -> bool:
    if not np.all((k == 0) | (k == n)):
        return False
    ones, zeros = x[k == n], x[k == 0]
    return ones.max() < zeros.min() or zeros.max() < ones.min()


def _fit_glm(design: _Design, k, n, seeds):
    """LL.2 as statsmodels' binomial GLM: estimate, model covariance, cluster covariance."""
    z, _ = _dose_axis(design.x, design.x0)
    model = sm.GLM(np.column_stack([k, n - k]), sm.add_constant(z, has_constant="add"),
                   family=sm.families.Binomial())
    try:
        res = model.fit()
        cluster = None
        if _n_clusters(seeds) >= 2:
            groups = _cluster_codes(seeds)[0]
            cluster = model.fit(cov_type="cluster", cov_kwds={"groups": groups}).cov_params()
    except (np.linalg.LinAlgError, ValueError) as e:
        raise _Unusable(f"GLM failed: {e}") from e
    if not res.converged:
        raise _Unusable("the GLM did not converge")
    return (np.asarray(res.params, float), np.asarray(res.cov_params(), float),
            None if cluster is None else np.asarray(cluster, float))


def _fit_ml(design: _Design, k, n, seeds):
    """Maximum likelihood (GenericLikelihoodModel): estimate, inverse information, sandwich."""
    model = _CurveLikelihood(design, k, n, design.family)
    phi = _maximize(model, _starts(design, k, n))
    if design.model == "LL.4":
        phi = _canonical_ll4(model, phi)
    if not _converged(model, phi):
        raise _Unusable("the optimiser did not converge to a maximum with a positive definite "
                        "information matrix (parameters not identified by these data)")
    cov_info = np.linalg.inv(-model.hessian(phi))
    cluster = _sandwich(model.score_obs(phi), cov_info, seeds) if _n_clusters(seeds) >= 2 else None
    return phi, cov_info, cluster


def _canonical_ll4(model, phi: np.ndarray) -> np.ndarray:
    """drc's convention d >= c: the same curve with (b, c, d) -> (-b, d, c) if needed."""
    b, c, d = 0, 1, 2  # columns of LL.4's (b, c, d, log e)
    if phi[c] <= phi[d]:
        return phi
    swapped = phi.copy()
    swapped[[b, c, d]] = -phi[b], phi[d], phi[c]
    return _newton(model, swapped)


def _starts(design: _Design, k, n) -> list[np.ndarray]:
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
        z, _ = _dose_axis(x, x0)
        core = (_linear_start if design.model in ("loglinear", "LL.2") else _ll_start)(design, z, k, n)
        for start in core:
            if design.column("log_background") is not None:
                start = np.append(start, np.log(x0))
            starts.append(start)
    return starts


def _linear_start(design: _Design, z, k, n) -> list[np.ndarray]:
    rate = (k + 0.5) / (n + 1) if design.family == "binomial" else k
    if design.model == "LL.2":
        y, w = special.logit(rate), n * rate * (1 - rate)
    else:
        y, w = rate, n
    slope, intercept = np.polyfit(z, y, 1, w=np.sqrt(w))
    if design.model == "LL.2":
        return [np.array([intercept, slope])]
    # The identity link needs rates inside (0, 1): shrink towards the flat pooled rate.
    mean = k.sum() / n.sum()
    for lam in 0.7 ** np.arange(30):
        a, s = mean + lam * (intercept - mean), lam * slope
        fitted = a + s * z
        if np.all((fitted > 1e-6) & (fitted < 1 - 1e-6)):
            return [np.array([a, s])]
    return [np.array([mean, 0.0])]


def _ll_start(design: _Design, z, k, n) -> list[np.ndarray]:
    """drc-like self-start: limits from the lowest and highest dose levels, then logit-linear."""
    rate = k / n if design.family == "binomial" else k
    levels = np.unique(design.x)
    low, high = rate[design.x == levels[0]].mean(), rate[design.x == levels[-1]].mean()
    lo, hi = min(low, high), max(low, high)
    if design.family == "binomial":
        lo, hi = float(np.clip(lo, 0.02, 0.9)), float(np.clip(hi, 0.1, 0.98))
        if hi - lo < 0.05:
            lo, hi = max(lo - 0.05, 0.01), min(hi + 0.05, 0.99)
    elif hi - lo < 1e-8:
        hi = lo + 1.0
    c = 0.0 if design.model == "LL.3" else lo - 0.05 * (hi - lo) * (design.family == "normal")
    d = hi + 0.05 * (hi - lo) * (design.family == "normal")
    finite = np.isfinite(z)
    frac = np.clip((rate[finite] - c) / (d - c), 0.05, 0.95)
    mid = float(np.mean(z[finite & (design.x > 0)])) if np.any(finite & (design.x > 0)) else 0.0
    b, le = 1.0 if low >= high else -1.0, mid
    if len(np.unique(z[finite])) >= 2:
        slope, intercept = np.polyfit(z[finite], special.logit(frac), 1)
        if np.isfinite(slope) and abs(slope) > 1e-3:
            b, le = -slope, intercept / -slope
            if not np.isfinite(le) or abs(le - mid) > 20:
                le = mid
    limits = []
    for name, value in (("c", c), ("d", d)):
        internal = design.column(f"logit_{name}")
        if internal is not None:
            limits.append(special.logit(np.clip(value, 1e-3, 1 - 1e-3)))
        elif design.column(name) is not None:
            limits.append(value)
    first = np.array([b, *limits, le])
    # A second start at the geometric middle of the doses guards against a poor linearisation.
    second = np.array([np.sign(b) or 1.0, *limits, mid])
    return [first, second]


def _finish(fit: CurveFit, design: _Design, phi, cov_info, cov_cluster, k, n) -> None:
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
        fit.loglik = float(_loglik_obs(f, k, n, "binomial").sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            fit.dispersion = float(np.sum((k - n * f) ** 2 / (n * f * (1 - f))) / fit.df_resid)
    fit.estimate, fit.cov, fit.cov_cluster = np.asarray(phi, float), scale * cov_info, cov_cluster
    if fit.n_seeds == 0:
        fit.notes.append("no seed column: se_robust is the quasi-binomial SE")
    elif fit.n_seeds == 1:
        fit.notes.append("one seed only: no cluster-robust SE; se_robust is the quasi-binomial SE")
    _check_fit(fit, design, f)


def _check_fit(fit: CurveFit, design: _Design, f: np.ndarray) -> None:
    """Turn estimates that sit on a bound, diverge or have no finite SE into unusable fits."""
    covs = [fit.cov] + ([fit.cov_cluster] if fit.cov_cluster is not None else [])
    if not (np.all(np.isfinite(fit.estimate)) and all(np.all(np.isfinite(c)) for c in covs)):
        raise _Unusable("non-finite estimates or standard errors")
    if np.any(np.diag(fit.cov) <= 0):
        raise _Unusable("non-positive variances: the information matrix is singular")
    nat = fit.natural()
    slope = nat.get("b", nat.get("slope"))
    if design.model != "loglinear" and abs(slope) > MAX_SLOPE:
        raise _Unusable(f"the slope diverges ({slope:.3g}): perfect separation, the rate jumps "
                        "between two adjacent doses")
    if design.family == "binomial" and design.model != "loglinear":
        # At dose 0 an increasing LL.3 sits on its fixed c = 0 by construction: not a symptom.
        if np.any(np.minimum(f, 1 - f)[design.x > 0] < MIN_FITTED):
            raise _Unusable("fitted rates reach 0 or 1 (perfect separation or a limit at its bound)")
    for name in ("logit_c", "logit_d"):
        j = design.column(name)
        if j is not None and abs(fit.estimate[j]) > MAX_LOGIT_LIMIT:
            bound = "0" if fit.estimate[j] < 0 else "1"
            hint = " (use LL.3)" if name == "logit_c" and bound == "0" else ""
            raise _Unusable(f"limit {name[6:]} at its bound {bound}{hint}: not identified")
    if "background" in nat:
        positive = design.x[design.x > 0]
        if nat["background"] < positive.min() / 100:
            raise _Unusable("background tends to 0: no flat region below the lowest doses")
        if nat["background"] > positive.max() * 100:
            raise _Unusable("background far above the doses: the curve is flat over the data")


# ---------------------------------------------------------------- groups


def _group_label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all rows"


def _is_control_label(value) -> bool:
    return pd.isna(value) or str(value).strip().lower() in CONTROL_LABELS


def group_frames(df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """(group, rows) per combination of insertion, split, model present, then pooled ones.

    Dose-0 controls without an insertion window join every window of their (split, model);
    "pooled" joins all windows of a (split, model) when there are two or more.
    """
    keys = [k for k in GROUP_KEYS if k in df.columns]
    if not keys:
        return [({}, df)]
    df = df.copy()
    for key in keys:
        df[key] = df[key].astype(object).where(df[key].notna(), None)
    other = [k for k in keys if k != "insertion"]
    shared = (df["dose"] == 0) & df["insertion"].map(_is_control_label) if "insertion" in keys \
        else pd.Series(False, index=df.index)
    out = []
    for cell, cell_rows in _groupby(df, other):
        in_cell = shared.loc[cell_rows.index]
        controls, windows = cell_rows[in_cell], cell_rows[~in_cell]
        if "insertion" not in keys or windows.empty:
            out += [({**cell, **g}, rows) for g, rows in _groupby(cell_rows, ["insertion"] if "insertion" in keys else [])]
            continue
        by_window = _groupby(windows, ["insertion"])
        for g, rows in by_window:
            out.append((_ordered({**cell, **g}), pd.concat([rows, controls])))
        if len(by_window) >= 2:
            out.append((_ordered({**cell, "insertion": POOLED}), cell_rows))
    return out


def _groupby(df: pd.DataFrame, keys: list[str]) -> list[tuple[dict, pd.DataFrame]]:
    if not keys:
        return [({}, df)]
    groups = df.groupby(keys, dropna=False, sort=True)
    return [(dict(zip(keys, v if isinstance(v, tuple) else (v,))), rows) for v, rows in groups]


def _ordered(group: dict) -> dict:
    return {k: _clean(group[k]) for k in GROUP_KEYS if k in group}


# ---------------------------------------------------------------- comparisons


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


# ---------------------------------------------------------------- report


@dataclass
class FitReport:
    """All fits of a table: `.fits` (CurveFit), `.comparisons`, `.cost` (dicts)."""

    fits: list[CurveFit]
    comparisons: list[dict]
    cost: list[dict]
    settings: dict

    def to_dict(self) -> dict:
        return {"settings": self.settings, "fits": [f.to_dict() for f in self.fits],
                "comparisons": self.comparisons, "aic_table": self.aic_table(),
                "cost_effectiveness": self.cost}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(_clean(self.to_dict()), indent=indent)

    def aic_table(self) -> list[dict]:
        """AIC per group among fits on the same rows (dose>0 and all-doses models apart)."""
        rows = []
        for (_, data), fits in _by(self.fits, lambda f: (_group_label(f.group), f.data)):
            usable = [f for f in fits if f.usable]
            best = min((f.aic for f in usable), default=None)
            for f in fits:
                rows.append(_clean({"group": f.group, "data": data, "model": f.model,
                                    "background": _background_label(f), "usable": f.usable,
                                    "loglik": f.loglik if f.usable else None,
                                    "aic": f.aic if f.usable else None,
                                    # rounded: the best model's own 0 is not 1e-14
                                    "delta_aic": round(f.aic - best, 6) if f.usable else None}))
        return rows

    def to_markdown(self) -> str:
        lines = ["# Dose-response fits", "",
                 "Robust SEs and 95% CIs (larger of quasi-binomial and seed-clustered); ED CIs "
                 "on the log scale. dAIC compares models fitted to the same rows.", ""]
        aic = {(_group_label(r["group"]), r["model"], r["background"]): r["delta_aic"]
               for r in self.aic_table()}
        header = ["group", "model", "background", "rows", "dispersion", "key estimate (robust SE)",
                  "ED50 [robust 95% CI]", "AIC", "dAIC", "note"]
        body = []
        for f in self.fits:
            d = f.to_dict()
            body.append([_group_label(f.group), f.model, _background_text(d), d["data"],
                         _fmt(d["dispersion"]), _key_estimate(d), _ed50_text(d), _fmt(d["aic"]),
                         _fmt(aic.get((_group_label(f.group), f.model, _background_label(f)))),
                         d["reason"] or "; ".join(d["notes"])])
        lines += _md_table(header, body)
        if self.comparisons:
            lines += ["", "## Comparisons", ""]
            header = ["test", "group", "model", "lr", "df", "p", "lr_robust", "p_robust",
                      "delta_aic", "preferred"]
            lines += _md_table(header, [[c["test"], _group_label(c["group"]), c["model"],
                                         _fmt(c.get("lr")), _fmt(c.get("df")), _fmt(c.get("p")),
                                         _fmt(c.get("lr_robust")), _fmt(c.get("p_robust")),
                                         _fmt(c.get("delta_aic")), c.get("preferred", "")]
                                        for c in self.comparisons])
        if self.cost:
            lines += ["", "## Cost-effectiveness (reduction in misalignment rate vs dose 0)", ""]
            header = ["group", "dose", "runs", "reduction", "se", "per aligned token", "per FLOP"]
            lines += _md_table(header, [[_group_label(c["group"]), _fmt(c["dose"]), c["runs"],
                                         _fmt(c["reduction"]), _fmt(c["se"]),
                                         _fmt(c.get("reduction_per_aligned_token")),
                                         _fmt(c.get("reduction_per_flop"))] for c in self.cost])
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """One line per group: loglinear slope and LL ED50s with robust 95% CIs."""
        lines = []
        for label, fits in _by(self.fits, lambda f: _group_label(f.group)):
            parts = []
            for f in fits:
                if f.background is not None and f.background != "estimate":
                    continue
                name = f.model + (" +bg" if f.background == "estimate" else "")
                if not f.usable:
                    parts.append(f"{name} unusable")
                    continue
                d = f.to_dict()
                if f.model == "loglinear":
                    parts.append(f"{name} slope {_est_ci(d, 'slope')}")
                else:
                    parts.append(f"{name} ED50 {_ed50_text(d)}")
            lines.append(f"{label}: " + "; ".join(parts))
        tests = [c for c in self.comparisons if c["test"] != "background"]
        for c in tests:
            lines.append(f"{c['test']} across insertions ({_group_label(c['group'])}): "
                         f"p_robust={_fmt(c['p_robust'])} (plain p={_fmt(c['p'])})")
        return "\n".join(lines)


def _by(items, key) -> list[tuple[object, list]]:
    out: dict = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return list(out.items())


def _background_label(fit: CurveFit) -> str:
    if fit.background is None:
        return "none"
    return "estimated" if fit.background == "estimate" else f"{float(fit.background):g}"


def _background_text(d: dict) -> str:
    bg = d["background"]
    if not isinstance(bg, dict):
        return "none" if bg is None else str(bg)
    return _fmt(bg["estimate"]) + (f" ({_fmt(bg['se_robust'])})" if bg.get("se_robust") else "")


def _key_estimate(d: dict) -> str:
    if not d["params"]:
        return ""
    name = "slope" if "slope" in d["params"] else "b"
    return f"{name} {_fmt(d['params'][name])} ({_fmt(d['se_robust'][name] if d['se_robust'] else None)})"


def _est_ci(d: dict, name: str) -> str:
    est, se = d["params"][name], (d["se_robust"] or {}).get(name)
    if se is None:
        return f"{_fmt(est)} [no robust SE]"
    return f"{_fmt(est)} [{_fmt(est - Z95 * se)}, {_fmt(est + Z95 * se)}]"


def _ed50_text(d: dict) -> str:
    ed = (d.get("ed") or {}).get("50")
    if not ed:
        return ""
    lo, hi = ed.get("lower_log_robust"), ed.get("upper_log_robust")
    outside = " (outside the doses)" if ed.get("extrapolated") else ""
    return f"{_fmt(ed['estimate'])} [{_fmt(lo)}, {_fmt(hi)}]{outside}"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int | np.integer):
        return str(v)
    return f"{v:.4g}"


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------- table API


def fit_table(df: pd.DataFrame, models: Sequence[str] = MODELS, background="none",
              bootstrap: int = 0, bootstrap_seed: int = 0) -> FitReport:
    """Fit every model to every group of a results table (see the module docstring).

    background: "none", "auto" (estimate x0 beside each plain fit) or a float x0.
    bootstrap: number of seed-level bootstrap replicates per fit (0: none).
    """
    models = _check_models(models)
    background = _parse_background(background)
    df = clean_table(df)
    fits, comparisons, cost = [], [], []
    frames = group_frames(df)
    for group, rows in frames:
        _warn_seeds(group, rows)
        for model in models:
            plain = _fit_rows(model, rows, group, None, bootstrap, bootstrap_seed)
            fits.append(plain)
            if background is not None and (background != "estimate" or model in BACKGROUND_MODELS):
                with_bg = _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed)
                fits.append(with_bg)
                comparisons.append(_background_entry(plain, with_bg))
        if group.get("insertion") != POOLED:
            cost += cost_effectiveness(group, rows)
    if "LL.2" in models:
        comparisons += _insertion_comparisons(frames, fits)
    settings = {"models": list(models),
                "background": "auto" if background == "estimate" else background,
                "background_models": [m for m in models if background is not None
                                       and (background != "estimate" or m in BACKGROUND_MODELS)],
                "bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed,
                "ed_levels": list(ED_LEVELS)}
    return FitReport(fits, comparisons, cost, settings)


def _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed) -> CurveFit:
    seeds = rows["seed"].to_numpy(dtype=object) if "seed" in rows.columns else None
    fit = fit_curve(model, rows["dose"], rows["misaligned"], rows["total"], seeds=seeds,
                    background=background, group=group)
    if bootstrap and fit.usable:
        subset = rows[rows["dose"] > 0] if fit.data == "dose>0" else rows
        fit.bootstrap = _bootstrap(fit, subset, bootstrap, bootstrap_seed)
    return fit


def _insertion_comparisons(frames, fits) -> list[dict]:
    usable = {(_group_label(f.group)) for f in fits
              if f.model == "LL.2" and f.background is None and f.usable}
    cells: dict = {}
    for group, rows in frames:
        if "insertion" not in group or group["insertion"] == POOLED:
            continue
        cell = {k: v for k, v in group.items() if k != "insertion"}
        cells.setdefault(_group_label(cell), (cell, []))[1].append((group, rows))
    out = []
    for cell, members in cells.values():
        ok = [(g["insertion"], rows) for g, rows in members if _group_label(g) in usable]
        if len(ok) >= 2:
            out += compare_insertions(cell, ok)
        elif len(members) >= 2:
            _warn(f"{_group_label(cell)}: fewer than 2 insertion windows with a usable LL.2 fit; "
                  "no comparison across windows")
    return out


def _warn_seeds(group: dict, rows: pd.DataFrame) -> None:
    if "seed" in rows.columns and _n_clusters(rows["seed"]) < 2:
        _warn(f"{_group_label(group)}: one seed only: no cluster-robust SE or seed bootstrap; "
              "se_robust falls back to the quasi-binomial scale")


def _check_models(models) -> tuple[str, ...]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise UsageError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    return tuple(models)


def _parse_background(value):
    """"none" -> None, "auto" -> "estimate", a positive number -> that x0."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, str) and value.strip().lower() in ("auto", "estimate"):
        return "estimate"
    try:
        x0 = float(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--background must be auto, none or a positive number, not {value!r}") from e
    if not np.isfinite(x0) or x0 <= 0:
        raise UsageError(f"--background must be a positive number, not {value!r}")
    return x0


# ---------------------------------------------------------------- prediction


def predict(fit: CurveFit | dict, dose, level: float = 0.95) -> pd.DataFrame:
    """Fitted curve at `dose` with a delta-method band from the robust SE (plain if none)."""
    fit = CurveFit.from_dict(fit) if isinstance(fit, dict) else fit
    if not fit.usable:
        raise UsageError(f"{fit.model} fit is unusable: {fit.reason}")
    dose = np.atleast_1d(np.asarray(dose, float))
    design = fit.design(dose)
    mean = design.mean(fit.estimate)[0]
    J = _jacobian(lambda phi: design.mean(phi)[0], fit.estimate)
    covs = fit._robust_covs() or [fit.cov]
    se = np.max([np.sqrt(np.clip(np.einsum("ij,jk,ik->i", J, c, J), 0, None)) for c in covs],
                axis=0)
    q = stats.norm.ppf(0.5 + level / 2) if fit.family == "binomial" else stats.t.ppf(0.5 + level / 2, fit.df_resid)
    lower, upper = mean - q * se, mean + q * se
    if fit.family == "binomial":
        lower, upper = np.clip(lower, 0, 1), np.clip(upper, 0, 1)
    return pd.DataFrame({"dose": dose, "fit": mean, "se": se, "lower": lower, "upper": upper})


def curve_band(fit: CurveFit | dict, n_points: int = 200, level: float = 0.95) -> pd.DataFrame:
    """`predict` over a log-spaced grid spanning the fit's positive doses, for figures."""
    fit = CurveFit.from_dict(fit) if isinstance(fit, dict) else fit
    low, high = fit.dose_range
    grid = np.geomspace(low, high, n_points)
    return predict(fit, grid, level)


# ---------------------------------------------------------------- CLI


def write_report(report: FitReport, out: Path) -> None:
    """fit.json and fit.md, each written whole (temporary file, then rename): a kill leaves
    the old file or the new one, never a cut one that a figure run would misread."""
    for name, text in (("fit.json", report.to_json() + "\n"), ("fit.md", report.to_markdown())):
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results table (CSV with dose, misaligned, total, ...)")
    parser.add_argument("--out", default=None,
                        help="output directory for fit.json and fit.md (default: beside RESULTS.csv)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--background", default="auto",
                        help="dose axis ln(x0 + dose): auto (estimate x0 and compare by AIC), "
                             "none, or a fixed x0")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="seed-level bootstrap replicates per fit (0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def run(args) -> int:
    if args.bootstrap < 0:
        raise UsageError("--bootstrap must be >= 0")
    df = read_results(args.results)
    # One line per warning, without the source line Python would show for each.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fit_table(df, models=args.models, background=args.background,
                           bootstrap=args.bootstrap, bootstrap_seed=args.bootstrap_seed)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.results).parent
    out.mkdir(parents=True, exist_ok=True)
    write_report(report, out)
    print(report.summary())
    print(f"wrote {out / 'fit.json'} and {out / 'fit.md'}")
    return 0
