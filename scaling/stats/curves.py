"""Mean curves (log-logistic and log-linear, optional background dose) and their EDs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from scaling.stats.common import BLOCK_PREFIX


def dose_axis(x: np.ndarray, x0: float) -> tuple[np.ndarray, np.ndarray]:
    """ln(x0 + x) (-inf at a zero dose without background) and its derivative in ln x0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(x + x0)
        dz = np.where(x + x0 > 0, x0 / (x + x0), 0.0)
    return z, dz


@dataclass(frozen=True)
class Design:
    """Mean curve f(phi) at fixed doses with its Jacobian.

    phi is the internal parametrisation: intercept, slope for loglinear/LL.2; b, logit c,
    logit d (plain c, d for continuous data), log e for LL.3/LL.4; log background when the
    background is estimated; block effects (`BLOCK_PREFIX` + label, effects-coded so that zero
    is the average block) when the rows come in blocks (train seeds, worlds). `b_index`/`e_index`
    give each observation's column of b and log e, so several curves can share or split them
    (the equal-ED50 comparison). `block_matrix` is None where the curve is drawn for the
    average block (predictions).
    """

    model: str
    family: str
    x: np.ndarray
    names: tuple[str, ...]
    x0: float = 0.0
    b_index: np.ndarray | None = None
    e_index: np.ndarray | None = None
    block_matrix: np.ndarray | None = None

    def column(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def mean(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = np.asarray(phi, float)
        jx0 = self.column("log_background")
        x0 = float(np.exp(phi[jx0])) if jx0 is not None else self.x0
        z, dz = dose_axis(self.x, x0)
        f, D, dfdz = curve(self.model).mean(self, phi, z)
        if jx0 is not None:
            D[:, jx0] = dfdz * dz
        return f, D

    def block_columns(self) -> list[int]:
        return [j for j, name in enumerate(self.names) if name.startswith(BLOCK_PREFIX)]

    def block_shift(self, phi) -> np.ndarray:
        """Each observation's block effect (0 without blocks or for the average block)."""
        cols = self.block_columns()
        if not cols or self.block_matrix is None:
            return np.zeros(len(self.x))
        return self.block_matrix @ np.asarray(phi, float)[cols]

    def add_block_derivative(self, D: np.ndarray, dshift: np.ndarray) -> None:
        cols = self.block_columns()
        if cols and self.block_matrix is not None:
            D[:, cols] += dshift[:, None] * self.block_matrix


def _linear_mean(design: Design, phi, z):
    a, s = phi[0], phi[1]
    eta = a + s * z + design.block_shift(phi)
    if design.model == "LL.2":
        f = special.expit(eta)
        dfde = f * (1 - f)
    else:
        f, dfde = eta, np.ones_like(eta)
    D = np.zeros((len(z), len(phi)))
    D[:, 0], D[:, 1] = dfde, dfde * z
    design.add_block_derivative(D, dfde)
    return f, D, dfde * s


def _limit(design: Design, phi, name: str, fixed: float) -> tuple[float, float, int | None]:
    """A curve limit c or d: value, derivative in its internal parameter, column."""
    for internal, transform in ((f"logit_{name}", "logit"), (name, "identity")):
        j = design.column(internal)
        if j is not None:
            if transform == "logit":
                v = float(special.expit(phi[j]))
                return v, v * (1 - v), j
            return float(phi[j]), 1.0, j
    return fixed, 0.0, None


def _ll_mean(design: Design, phi, z):
    n_obs = len(z)
    rows = np.arange(n_obs)
    bi = design.b_index if design.b_index is not None else np.full(n_obs, design.column("b"))
    ei = design.e_index if design.e_index is not None else np.full(n_obs, design.column("log_e"))
    b, le = phi[bi], phi[ei]
    c, dc, jc = _limit(design, phi, "c", 0.0)
    d, dd, jd = _limit(design, phi, "d", 1.0)
    if jd is not None and design.names[jd] == "logit_d":
        # Blocks move the dose-0 limit d on the logit scale: a seed sets its own control level,
        # and e stays the dose that takes every seed the same share of the way to c.
        d = special.expit(phi[jd] + design.block_shift(phi))
        dd = d * (1 - d)
    # Without a free d (LL.2 written as c = 0, d = 1) blocks shift the logit of the rate.
    inside = design.block_shift(phi) if jd is None else 0.0
    w = z - le
    finite = np.isfinite(w)
    w0 = np.where(finite, w, 0.0)
    # At a zero dose (w = -inf) the curve sits at d for b > 0 and at c for b < 0.
    g = np.where(finite, special.expit(-b * w0 + inside),
                 np.where(b > 0, 1.0, np.where(b < 0, 0.0, 0.5)))
    gg = np.where(finite, g * (1 - g), 0.0)
    f = c + (d - c) * g
    D = np.zeros((n_obs, len(phi)))
    D[rows, bi] += -(d - c) * gg * w0
    D[rows, ei] += (d - c) * gg * b
    if jc is not None:
        D[:, jc] += (1 - g) * dc
    if jd is not None:
        D[:, jd] += g * dd
        design.add_block_derivative(D, g * dd)
    else:
        design.add_block_derivative(D, (d - c) * gg)
    return f, D, -(d - c) * gg * b


def _linear_start(design: Design, z, k, n) -> list[np.ndarray]:
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


def _ll_start(design: Design, z, k, n) -> list[np.ndarray]:
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


def _weibull1_mean(design: Design, phi, z):
    """W1.4's mean: the log-logistic's limits and blocks (on the logit of d), the Weibull shape
    g = exp(-exp(b (z - log e)))."""
    n_obs = len(z)
    b, le = phi[design.column("b")], phi[design.column("log_e")]
    c, dc, jc = _limit(design, phi, "c", 0.0)
    d, dd, jd = _limit(design, phi, "d", 1.0)
    if jd is not None and design.names[jd] == "logit_d":
        d = special.expit(phi[jd] + design.block_shift(phi))
        dd = d * (1 - d)
    w = z - le
    finite = np.isfinite(w)
    w0 = np.where(finite, w, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.exp(b * w0)
        g = np.where(finite, np.exp(-u), 1.0 if b > 0 else 0.0 if b < 0 else np.exp(-1.0))
        gu = np.where(finite & np.isfinite(u), g * u, 0.0)  # -dg / d(b w)
    f = c + (d - c) * g
    D = np.zeros((n_obs, len(phi)))
    D[:, design.column("b")] = -(d - c) * gu * w0
    D[:, design.column("log_e")] = (d - c) * gu * b
    if jc is not None:
        D[:, jc] += (1 - g) * dc
    if jd is not None:
        D[:, jd] += g * dd
        design.add_block_derivative(D, g * dd)
    return f, D, -(d - c) * gu * b


def make_design(model: str, family: str, x: np.ndarray, background,
                 block_labels: Sequence = (), blocks=None) -> Design:
    """The single-curve design of a model; background None, a fixed x0, or "estimate".

    block_labels: the blocks' labels (two or more to have block effects); blocks: each
    observation's label, or None to draw the curve of the average block.
    """
    names = curve(model).names(family)
    block_labels = list(block_labels) if len(block_labels) >= 2 else []
    names += tuple(BLOCK_PREFIX + str(label) for label in block_labels[:-1])
    x0 = 0.0
    if background == "estimate":
        names += ("log_background",)
    elif background is not None:
        x0 = float(background)
    matrix = _effects_coding(blocks, block_labels) if block_labels and blocks is not None else None
    return Design(model, family, np.asarray(x, float), names, x0, block_matrix=matrix)


def _effects_coding(blocks, labels: list) -> np.ndarray:
    """Columns for all labels but the last; the last block is minus their sum (mean zero)."""
    blocks = [str(b) for b in blocks]
    index = {str(label): i for i, label in enumerate(labels)}
    matrix = np.zeros((len(blocks), len(labels) - 1))
    for row, label in enumerate(blocks):
        i = index[label]
        if i == len(labels) - 1:
            matrix[row] = -1.0
        else:
            matrix[row, i] = 1.0
    return matrix


def natural_params(names: Sequence[str], phi: np.ndarray) -> dict[str, float]:
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


# ---------------------------------------------------------------- the models

CURVES: dict[str, CurveModel] = {}


def register(cls: type[CurveModel]) -> type[CurveModel]:
    """Class decorator: one instance of the model in CURVES under its drc name."""
    CURVES[cls.name] = cls()
    return cls


def curve(name: str) -> CurveModel:
    """The registered model `name`. Designs of the comparisons (names such as "LL.2-common-e",
    several curves sharing b and log e) use the log-logistic form."""
    return CURVES.get(name) or _LOG_LOGISTIC


class CurveModel:
    """A mean curve in the spirit of statsmodels' model classes: its parameters (the internal
    ones, on log/logit scales), mean and Jacobian, start values and EDs. `log_dose`: a curve
    on ln(dose) alone (fitted on dose > 0; a dose-0 level only with a background dose);
    `estimated_background`: an estimated background x0 is identified (no plateau of its own).
    Adding a model is one subclass with @register."""

    name: str = ""
    log_dose: bool = False
    estimated_background: bool = False

    def names(self, family: str) -> tuple[str, ...]:
        raise NotImplementedError

    def mean(self, design: Design, phi, z):
        """(f, D, df/dz): the mean at dose axis z, its Jacobian in phi, its slope in z."""
        raise NotImplementedError

    def starts(self, design: Design, z, k, n) -> list[np.ndarray]:
        """Starting values of the curve's own parameters (blocks and background added by the fitter)."""
        raise NotImplementedError

    def ed_axis(self, nat: dict, p: float) -> float:
        """ln(x0 + dose) at drc's relative ED p."""
        raise NotImplementedError

    def control_level(self, nat: dict, x0: float) -> float | None:
        raise NotImplementedError

    def floor_level(self, nat: dict) -> float:
        raise NotImplementedError

    def axis_at(self, nat: dict, target: float) -> float:
        """ln(x0 + dose) where the curve (average block) reaches `target`."""
        raise NotImplementedError


@register
class LogLinear(CurveModel):
    """rate = intercept + slope * ln(dose), identity link, binomial ML on dose > 0."""

    name, log_dose, estimated_background = "loglinear", True, True

    def names(self, family):
        return ("intercept", "slope")

    def mean(self, design, phi, z):
        return _linear_mean(design, phi, z)

    def starts(self, design, z, k, n):
        return _linear_start(design, z, k, n)

    def control_level(self, nat, x0):
        if x0 <= 0:
            return None  # ln(dose) runs to -inf: the curve has no dose-0 level
        eta = nat["intercept"] + nat["slope"] * np.log(x0)
        return float(self._inverse_link(eta))

    def floor_level(self, nat):
        return 0.0 if nat["slope"] < 0 else 1.0

    def axis_at(self, nat, target):
        return (self._link(target) - nat["intercept"]) / nat["slope"]

    @staticmethod
    def _link(rate):
        return rate

    @staticmethod
    def _inverse_link(eta):
        return eta


@register
class LL2(LogLinear):
    """drc's LL.2 as a binomial GLM with logit link on ln(dose), dose > 0, limits 0 and 1."""

    name = "LL.2"

    def ed_axis(self, nat, p):
        a, s = nat["intercept"], nat["slope"]
        q = 1 - p / 100 if s < 0 else p / 100
        return (special.logit(q) - a) / s

    _link = staticmethod(special.logit)
    _inverse_link = staticmethod(special.expit)


class LogLogistic(CurveModel):
    """drc's log-logistic LL.4: f = c + (d - c) / (1 + exp(b (ln x - ln e))), binomial ML with
    the dose-0 controls (they fix d); b > 0 decreasing, as in drc. `limits`: the free ones."""

    limits: tuple[str, ...] = ("c", "d")

    def names(self, family):
        prefix = "logit_" if family == "binomial" else ""
        return ("b",) + tuple(prefix + lim for lim in self.limits) + ("log_e",)

    def mean(self, design, phi, z):
        return _ll_mean(design, phi, z)

    def starts(self, design, z, k, n):
        return _ll_start(design, z, k, n)

    def ed_axis(self, nat, p):
        b = nat["b"]
        q = p if b > 0 else 100 - p
        return np.log(nat["e"]) + special.logit(q / 100) / b

    def control_level(self, nat, x0):
        c, d = nat.get("c", 0.0), nat.get("d", 1.0)
        if x0 <= 0:
            return float(d if nat["b"] > 0 else c)
        return float(c + (d - c) * self.shape(-nat["b"] * (np.log(x0) - np.log(nat["e"]))))

    def floor_level(self, nat):
        c, d = nat.get("c", 0.0), nat.get("d", 1.0)
        return float(c if nat["b"] > 0 else d)

    def axis_at(self, nat, target):
        c, d = nat.get("c", 0.0), nat.get("d", 1.0)
        return np.log(nat["e"]) - special.logit((target - c) / (d - c)) / nat["b"]

    @staticmethod
    def shape(u):
        """The share of the way from c to d at u = -b (ln x - ln e)."""
        return special.expit(u)


_LOG_LOGISTIC = LogLogistic()


@register
class LL3(LogLogistic):
    """drc's LL.3: LL.4 with c = 0."""

    name, limits = "LL.3", ("d",)


@register
class LL4(LogLogistic):
    name = "LL.4"


@register
class W14(LogLogistic):
    """drc's W1.4 (Weibull type 1): f = c + (d - c) exp(-exp(b (ln x - ln e))); b > 0
    decreasing from d at dose 0 to c. Not symmetric like the log-logistic: at dose e the
    curve has gone 1 - 1/e (63%) of the way from d to c, not half of it."""

    name = "W1.4"

    def mean(self, design, phi, z):
        return _weibull1_mean(design, phi, z)

    def ed_axis(self, nat, p):
        b = nat["b"]
        q = p if b > 0 else 100 - p
        return np.log(nat["e"]) + np.log(-np.log(1 - q / 100)) / b

    def axis_at(self, nat, target):
        c, d = nat.get("c", 0.0), nat.get("d", 1.0)
        return np.log(nat["e"]) + np.log(-np.log((target - c) / (d - c))) / nat["b"]

    @staticmethod
    def shape(u):
        return np.exp(-np.exp(-u))


def ed_dose(model: str, nat: dict, p: float, x0: float) -> float:
    """drc's relative ED: the dose where p% of the change between the two limits is reached."""
    return float(np.exp(curve(model).ed_axis(nat, p)) - x0)


def curve_control_level(model: str, nat: dict, x0: float) -> float | None:
    """The fitted rate at dose 0 for the average block; None where the model has none."""
    return curve(model).control_level(nat, x0)


def _floor_level(model: str, nat: dict) -> float:
    """The rate the curve tends to at high doses (0 for a falling log-linear rate)."""
    return curve(model).floor_level(nat)


def curve_rises(model: str, nat: dict, x0: float) -> tuple[float, float] | None:
    """(control level, limit at high doses) where the fitted curve does not fall from its dose-0
    level, else None (it falls, or has no control level).

    The one test of "rises" that every halving dose goes through (`CurveFit.ed_control`, and
    from its entry fit.json, fit.md, persistence.md, the figures and `scaling study`). Every
    registered curve is monotone in dose from its control level towards its limit, so a limit
    at or above the control level means the curve at the top of the doses tested is above its
    control level too; the limit decides it even where the curve is flat to rounding over the
    doses tested. Such a curve (an LL.3/LL.4/W1.4 whose limit at high doses, c for b > 0 and d
    for b < 0, lies above its dose-0 level; an LL.2 or loglinear with a background and a
    positive slope) has its control-relative ED50 half-way up: it has no halving dose.
    """
    control = curve_control_level(model, nat, x0)
    if control is None:
        return None
    limit = _floor_level(model, nat)
    return (control, limit) if limit >= control else None


def curve_ed_control(model: str, nat: dict, p: float, x0: float) -> float:
    """Dose at which the rate is p% of the way from the fitted control level to the floor.

    NaN where the model has no control level (no background on a ln-dose axis) or the level
    is not reached at a positive dose. On a curve that rises (`curve_rises`) this is p% of the way
    up; `CurveFit.ed_control` reports no estimate there.
    """
    model = curve(model)
    control = model.control_level(nat, x0)
    if control is None:
        return float("nan")
    target = control + p / 100 * (model.floor_level(nat) - control)
    with np.errstate(all="ignore"):
        z = model.axis_at(nat, target)
    dose = float(np.exp(z) - x0)
    return dose if np.isfinite(dose) and dose > 0 else float("nan")
