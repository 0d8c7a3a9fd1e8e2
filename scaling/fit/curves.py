"""Mean curves (log-logistic and log-linear, optional background dose) and their EDs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special


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


