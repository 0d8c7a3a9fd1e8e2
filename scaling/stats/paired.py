"""The paired contrast over blocks: one results object for every mean of within-block
differences the package reports, Holm's adjustment of a family of them, and Fieller's interval
for a ratio of paired means.

A block (train seed x world seed, or a world: scaling.table.blocks) is the independent unit:
runs that share a seed share their initialisation and base data order. A contrast is the mean
of G within-block differences with a t interval on G - 1 degrees of freedom; below two blocks
it has an estimate but no standard error, interval or p.

**se = 0** (every block shows the same difference, as happens with counters that tie, or with
two blocks of equal discrete rates): the interval is the point and p is NaN (JSON null), not
0 or 1. The t statistic has no distribution without a variance estimate, and a p of 0 from
two identical blocks would claim a certainty the data cannot give; a NaN p also keeps the
contrast out of a Holm family (`holm` adjusts the finite p values only), where a p of 1 would
inflate the family's size. `scipy.stats.ttest_1samp` leaves the same case undefined at mean 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

METHOD = "paired t over blocks (df = blocks - 1)"


@dataclass(frozen=True)
class PairedContrast:
    """Mean within-block difference (`estimate`), its standard error (NaN below two blocks),
    t degrees of freedom (blocks - 1) and the number of blocks; `conf_int()`, `pvalue` and
    `summary()` as statsmodels' results objects name them."""

    estimate: float
    se: float
    df: int
    blocks: int

    @classmethod
    def from_moments(cls, mean: float, sd: float, n: int) -> PairedContrast:
        """From a mean, a standard deviation (ddof 1) and a count already computed."""
        n = int(n)
        se = float(sd) / math.sqrt(n) if n >= 2 else math.nan
        return cls(float(mean), se, max(n - 1, 0), n)

    def half_width(self, alpha: float = 0.05) -> float:
        """The half-width of the (1 - alpha) t interval; NaN below two blocks."""
        if self.blocks < 2:
            return math.nan
        return float(stats.t.ppf(1 - alpha / 2, self.df)) * self.se

    def conf_int(self, alpha: float = 0.05) -> tuple[float, float]:
        """The (1 - alpha) t interval on blocks - 1 df; (NaN, NaN) below two blocks."""
        half = self.half_width(alpha)
        return self.estimate - half, self.estimate + half

    @property
    def pvalue(self) -> float:
        """Two-sided p of estimate = 0; NaN below two blocks and where se = 0 (module doc)."""
        if self.blocks < 2 or not self.se > 0:
            return math.nan
        return float(2 * stats.t.sf(abs(self.estimate) / self.se, self.df))

    def summary(self, alpha: float = 0.05) -> dict:
        """estimate, lower, upper, se, df, p and blocks as a dict (NaN where undefined)."""
        lower, upper = self.conf_int(alpha)
        return {"estimate": self.estimate, "lower": lower, "upper": upper, "se": self.se,
                "df": self.df, "p": self.pvalue, "blocks": self.blocks}


def paired_contrast(diffs) -> PairedContrast:
    """The contrast of within-block differences `diffs` (one per block). A NaN difference gives
    a NaN estimate: dropping missing blocks is the caller's choice."""
    d = np.asarray(diffs, dtype=float).ravel()
    n = len(d)
    if n == 0:
        return PairedContrast(math.nan, math.nan, 0, 0)
    sd = float(np.std(d, ddof=1)) if n >= 2 else math.nan
    return PairedContrast.from_moments(float(np.mean(d)), sd, n)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment (family-wise error) of `pvalues`, in their order
    (statsmodels' `multipletests(method="holm")`)."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return []
    return multipletests(p, method="holm")[1].tolist()


def fieller(num, den, level: float = 0.95) -> dict:
    """Ratio of means mean(num)/mean(den) of paired samples with Fieller's interval (t on n-1 df).
    ratio_lower/ratio_upper are NaN when the interval is not a finite interval (the
    denominator's mean is not resolved from 0 at this level): the ratio is then not bounded by
    the data."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    n = len(num)
    if n == 0:
        return {"ratio": np.nan, "ratio_lower": np.nan, "ratio_upper": np.nan, "blocks": 0}
    a, b = float(np.mean(num)), float(np.mean(den))
    ratio = a / b if b != 0 else np.nan
    out = {"ratio": ratio, "ratio_lower": np.nan, "ratio_upper": np.nan, "blocks": n}
    if n < 2 or b == 0:
        return out
    v11, v22 = np.var(num, ddof=1) / n, np.var(den, ddof=1) / n
    v12 = float(np.cov(num, den, ddof=1)[0, 1]) / n
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    g = t * t * v22 / (b * b)
    if g >= 1:
        return out
    disc = v11 - 2 * ratio * v12 + ratio * ratio * v22 - g * (v11 - v12 * v12 / v22 if v22 > 0 else v11)
    centre = ratio - g * v12 / v22 if v22 > 0 else ratio
    half = t / abs(b) * np.sqrt(max(disc, 0.0))
    out["ratio_lower"], out["ratio_upper"] = (centre - half) / (1 - g), (centre + half) / (1 - g)
    return out
