"""Binomial (and least-squares) likelihood of a curve, its maximisation and sandwich covariances."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize, special
from statsmodels.base.model import GenericLikelihoodModel
from statsmodels.tools.numdiff import approx_fprime

from scaling.stats.common import MAX_LOGIT_LIMIT, MAX_SLOPE, Unusable
from scaling.stats.curves import Design


def loglik_obs(f, k, n, family):
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


def jacobian(fun: Callable, x: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Central differences (statsmodels' numdiff); rows are fun's outputs, columns x's entries.

    Steps rel * max(1, |x|): the parameters live on log/logit scales of order 1, where
    numdiff's default (cube root of machine epsilon times |x|) is needlessly small near 0.
    """
    x = np.asarray(x, float)
    steps = rel * np.maximum(1.0, np.abs(x))
    return np.atleast_2d(approx_fprime(x, lambda v: np.atleast_1d(fun(v)), epsilon=steps,
                                       centered=True))


class CurveLikelihood(GenericLikelihoodModel):
    """Binomial (or, for tests against drc, least-squares) likelihood of a Design curve."""

    def __init__(self, design: Design, k, n, family: str):
        k = np.asarray(k, float)
        super().__init__(k, None, extra_params_names=list(design.names))
        self.design, self.trials, self.family = design, np.asarray(n, float), family
        self.k_extra, self.df_model = 0, len(design.names)
        self.df_resid = len(k) - len(design.names)

    def loglikeobs(self, params):
        f, _ = self.design.mean(params)
        return loglik_obs(f, self.endog, self.trials, self.family)

    def score_obs(self, params):
        f, D = self.design.mean(params)
        return _dldf(f, self.endog, self.trials, self.family)[:, None] * D

    def score(self, params):
        return self.score_obs(params).sum(axis=0)

    def hessian(self, params):
        H = jacobian(self.score, params)
        return (H + H.T) / 2


def maximize(model: CurveLikelihood, starts: list[np.ndarray]) -> np.ndarray:
    """Best optimum over several starts (damped Newton; statsmodels BFGS if none converges)."""
    candidates = [newton(model, np.asarray(s, float)) for s in starts
                  if np.isfinite(model.loglike(s))]
    if candidates and not any(has_converged(model, phi) for phi in candidates):
        best = max(candidates, key=model.loglike)
        if runaway(model.design, best):
            return best
        try:
            res = model.fit(start_params=best, method="bfgs", disp=0, maxiter=500, gtol=1e-9)
            candidates.append(newton(model, np.asarray(res.params, float)))
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            pass
    candidates = [phi for phi in candidates if np.isfinite(model.loglike(phi))]
    if not candidates:
        raise Unusable("the optimiser found no finite likelihood from any start")
    return max(candidates, key=model.loglike)


def newton(model: CurveLikelihood, phi: np.ndarray, steps: int = 100) -> np.ndarray:
    """Maximise by scipy's exact trust-region Newton method (analytic score, Hessian of the
    score by numdiff): robust far from the optimum and quadratic at it, so that the
    Hessian-based SEs are those of the maximum. Stops early when an estimate runs off to a
    bound or the likelihood only creeps along a ridge (a parameter heading to infinity)."""
    history = [model.loglike(phi)]

    def negative_loglike(p):
        ll = model.loglike(p)
        return -ll if np.isfinite(ll) else np.inf

    def stop_on_ridge(intermediate_result):
        history.append(-intermediate_result.fun)
        creeping = len(history) > 10 and history[-1] - history[-11] < 1e-4
        if creeping or runaway(model.design, intermediate_result.x):
            raise StopIteration

    if not np.isfinite(history[0]):
        return phi
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = optimize.minimize(negative_loglike, phi, method="trust-exact",
                                       jac=lambda p: -model.score(p),
                                       hess=lambda p: -model.hessian(p), callback=stop_on_ridge,
                                       options={"maxiter": steps, "gtol": 1e-9})
        except (np.linalg.LinAlgError, ValueError):
            return phi
    return result.x if np.isfinite(model.loglike(result.x)) else phi


def runaway(design: Design, phi: np.ndarray) -> bool:
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


def has_converged(model: CurveLikelihood, phi: np.ndarray) -> bool:
    """Newton decrement small and the information positive definite."""
    g, H = model.score(phi), model.hessian(phi)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return False
    if np.any(np.linalg.eigvalsh(-H) <= 0):
        return False
    try:  # eigenvalues at rounding level can pass the check above on a singular matrix
        return float(g @ np.linalg.solve(-H, g)) < 1e-6
    except np.linalg.LinAlgError:
        return False


def _cluster_factor(n_clusters: int, n_obs: int, n_params: int) -> float:
    # statsmodels' small-sample correction for cov_type="cluster", so GLM and ML SEs agree.
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


def sandwich(scores: np.ndarray, cov_info: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    codes, n_clusters = cluster_codes(clusters)
    summed = np.zeros((n_clusters, scores.shape[1]))
    np.add.at(summed, codes, scores)
    meat = summed.T @ summed
    return cov_info @ meat @ cov_info * _cluster_factor(n_clusters, *scores.shape)


def cluster_codes(clusters) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(clusters), use_na_sentinel=False)
    return codes, len(uniques)


def count_clusters(clusters) -> int:
    return 0 if clusters is None else cluster_codes(clusters)[1]


