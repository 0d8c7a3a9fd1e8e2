"""Results objects: one fitted curve (`CurveFit`), its intervals and predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from scaling.errors import UsageError
from scaling.stats.common import BLOCK_PREFIX, ED_LEVELS, ED_METHOD, Z95, clean, group_label
from scaling.stats.curves import (
    Design,
    curve,
    curve_control_level,
    curve_ed_control,
    curve_rises,
    ed_dose,
    make_design,
    natural_params,
)
from scaling.stats.likelihood import jacobian


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
    block_labels: tuple[str, ...] = ()

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

    def design(self, x) -> Design:
        return make_design(self.model, self.family, x, self.background, self.block_labels)

    def natural(self, phi=None) -> dict[str, float]:
        return natural_params(self.names, self.estimate if phi is None else phi)

    def x0(self, phi=None) -> float:
        return float(self.natural(phi).get("background", self.background or 0.0))

    def delta(self, fun: Callable) -> dict:
        """fun(phi) with its plain, seed-clustered and robust SEs (delta method)."""
        grad = jacobian(fun, self.estimate)[0]
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
        wanted = [name.removeprefix("logit_").removeprefix("log_") for name in curve(self.model).names(self.family)]
        return {name: (lambda phi, name=name: self.natural(phi)[name]) for name in wanted}

    def param_entries(self) -> dict[str, dict]:
        """name -> {estimate, se, se_cluster, se_robust}."""
        return {name: self.delta(fun) for name, fun in self.param_functions().items()}

    # statsmodels-style results: drc's parameters (and block effects), their plain SEs (the
    # inverse information, as drc and statsmodels report), Wald intervals and a summary.

    @property
    def params(self) -> pd.Series:
        names = list(self.param_functions()) + [n for n in self.names if n.startswith(BLOCK_PREFIX)]
        nat = self.natural()
        return pd.Series([float(nat[n]) for n in names], index=names, name="estimate")

    @property
    def bse(self) -> pd.Series:
        entries = self.param_entries()
        blocks = [n for n in self.names if n.startswith(BLOCK_PREFIX)]
        values = [entries[n]["se"] for n in entries]
        values += [float(np.sqrt(self.cov[self.names.index(n), self.names.index(n)])) for n in blocks]
        return pd.Series(values, index=list(entries) + blocks, name="se")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals on the natural scale (t on df_resid for continuous data, else z)."""
        q = (stats.t.ppf(1 - alpha / 2, self.df_resid) if self.family == "normal"
             else stats.norm.ppf(1 - alpha / 2))
        params, bse = self.params, self.bse
        return pd.DataFrame({"lower": params - q * bse, "upper": params + q * bse})

    def summary(self) -> str:
        """A plain-text table in the manner of statsmodels' and drc's summaries."""
        table = pd.DataFrame({"estimate": self.params, "std.err": self.bse})
        table["z" if self.family == "binomial" else "t"] = table["estimate"] / table["std.err"]
        table = table.join(self.conf_int())
        head = [f"{self.model} ({self.family}) fitted to {group_label(self.group)}",
                f"observations {self.n_obs}, df_resid {self.df_resid}, loglik {self.loglik:.4f}, "
                f"dispersion {self.dispersion if self.dispersion is not None else float('nan'):.3g}"]
        eds = [f"ED{p} (control-relative) {_brief(self.ed_control(p))}" for p in ED_LEVELS]
        return "\n".join(head + [table.to_string(float_format=lambda v: f"{v:.6g}")] + eds)

    def ed(self, p: float) -> dict | None:
        """ED entry for p% with plain/robust, linear/log-scale intervals; None if undefined."""
        if self.model == "loglinear":
            return None

        def fun(phi):
            return ed_dose(self.model, self.natural(phi), p, self.x0(phi))

        est = fun(self.estimate)
        if not np.isfinite(est) or est <= 0:
            return None
        d = self.delta(fun)
        low, high = self.dose_range
        entry = {"estimate": est, "extrapolated": not low <= est <= high}
        for suffix in ("", "_robust"):
            entry.update(_interval(est, d["se" + suffix], self.quantile, suffix))
        return entry

    def rises(self) -> tuple[float, float] | None:
        """(control level, limit at high doses) where the fitted curve does not fall from its
        dose-0 level (`curves.curve_rises`), else None."""
        return curve_rises(self.model, self.natural(), self.x0())

    def ed_control(self, p: float, method: str = ED_METHOD) -> dict | None:
        """Control-relative ED: the dose where the rate is p% of the way from the fitted dose-0
        level to the floor; CI exp(ln ED +- q*SE(ln ED)) (see `log_se`). None if undefined.

        A fitted curve that rises from its control level (`curves.curve_rises`) has none: its entry
        is {"estimate": None, "lower": None, "upper": None, "rises": True, "control_level",
        "limit"} (the limit: the level at high doses), and every reader says "curve rises"."""
        rising = self.rises()
        if rising is not None:
            return {"estimate": None, "lower": None, "upper": None, "rises": True,
                    "control_level": rising[0], "limit": rising[1]}

        def log_dose(phi):
            return np.log(curve_ed_control(self.model, self.natural(phi), p, self.x0(phi)))

        log_est = log_dose(self.estimate)
        if not np.isfinite(log_est):
            return None
        se, q, df, method = self.log_se(log_dose, method)
        est = float(np.exp(log_est))
        low, high = self.dose_range
        entry = {"estimate": est, "lower": None, "upper": None, "se_log": se, "method": method,
                 "df": df, "extrapolated": not low <= est <= high}
        if se is not None and np.isfinite(se):
            entry["lower"], entry["upper"] = est * np.exp(-q * se), est * np.exp(q * se)
        return entry

    def log_se(self, fun: Callable, method: str) -> tuple[float, float, int, str]:
        """SE of fun(phi) by the delta method, the 95% quantile, its df and the method used.

        "quasi": inverse information times max(1, Pearson dispersion), t on df_resid;
        "cluster": sandwich clustered by seed, t on G-1 (few clusters: z would be too narrow).
        """
        grad = jacobian(fun, self.estimate)[0]
        if method == "cluster" and (self.cov_cluster is None or self.n_seeds < 2):
            method = "quasi"  # one seed: nothing to cluster; the quasi-binomial SE is all there is
        if method == "cluster":
            df = self.n_seeds - 1
            return _se(grad, self.cov_cluster), float(stats.t.ppf(0.975, df)), df, method
        scale = 1.0 if self.family == "normal" else max(1.0, self.dispersion or 1.0)
        df = self.df_resid
        return _se(grad, self.cov) * np.sqrt(scale), float(stats.t.ppf(0.975, df)), df, method

    def control_level(self) -> float | None:
        return curve_control_level(self.model, self.natural(), self.x0())

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
               "bootstrap": self.bootstrap, "blocks": list(self.block_labels),
               "control_level": None, "ed_control": {}}
        if not self.usable:
            out["background"] = self.background_entry()
            return clean(out)
        with np.errstate(all="ignore"):
            self._fill_estimates(out)
        return clean(out)

    def _fill_estimates(self, out: dict) -> None:
        params = self.param_entries()
        out["params"] = {k: v["estimate"] for k, v in params.items()}
        for key in ("se", "se_cluster", "se_robust"):
            out[key] = {k: v[key] for k, v in params.items()}
        if self.cov_cluster is None:
            out["se_cluster"] = None
        out["background"] = self.background_entry()
        out["ed"] = {str(p): self.ed(p) for p in ED_LEVELS}
        out["control_level"] = self.control_level()
        out["ed_control"] = {str(p): self.ed_control(p) for p in ED_LEVELS}
        out["vcov"] = {"names": list(self.names), "estimate": self.estimate.tolist(),
                       "plain": self.cov.tolist(),
                       "cluster": None if self.cov_cluster is None else self.cov_cluster.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> CurveFit:
        """A fit back from its fit.json entry (enough for `predict`); usable entries only."""
        vcov = d.get("vcov")
        if not d.get("usable") or vcov is None:
            raise UsageError(f"{d.get('model')} fit of {group_label(d.get('group') or {})} "
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
                   background=background, dose_range=d.get("dose_range"),
                   n_seeds=d.get("n_seeds", 0), block_labels=tuple(d.get("blocks") or ()))


def _brief(ed: dict | None) -> str:
    if not ed:
        return "not reached"
    if ed.get("rises"):
        return rises_text(ed)
    low, high = (f"{ed[k]:.4g}" if ed[k] is not None else "-" for k in ("lower", "upper"))
    return f"{ed['estimate']:.4g} [{low}, {high}] ({ed['method']}, df {ed['df']})"


def rises_text(ed: dict, short: bool = False) -> str:
    """What every report says of a curve that rises (an `ed_control` entry with "rises"); short:
    without the levels (figure titles). The levels get the decimals that tell them apart."""
    if short:
        return "no halving dose (curve rises)"
    control, limit = ed["control_level"], ed["limit"]
    digits = next((k for k in (2, 3) if round(control, k) != round(limit, k)), 4)
    return (f"no halving dose (the fitted curve rises: {control:.{digits}f} at dose 0, "
            f"{limit:.{digits}f} at high doses)")


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



def predict(fit: CurveFit | dict, dose, level: float = 0.95) -> pd.DataFrame:
    """Fitted curve at `dose` with a delta-method band from the robust SE (plain if none)."""
    fit = CurveFit.from_dict(fit) if isinstance(fit, dict) else fit
    if not fit.usable:
        raise UsageError(f"{fit.model} fit is unusable: {fit.reason}")
    dose = np.atleast_1d(np.asarray(dose, float))
    design = fit.design(dose)
    mean = design.mean(fit.estimate)[0]
    J = jacobian(lambda phi: design.mean(phi)[0], fit.estimate)
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


