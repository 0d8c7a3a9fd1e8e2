"""Constants, warnings and small helpers shared by the fit modules."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from scaling.table import CONTROL_LABELS  # noqa: F401  (re-exported: scaling.stats.CONTROL_LABELS)

MODELS = ("loglinear", "LL.2", "LL.3", "LL.4")
# A curve per combination present: post-trained runs (stage "none" is pretraining only) and
# worlds of another variant (flipped, shuffled) are other experiments, not other doses; so is
# RL trained on another set of families (rl_families). Genres are not a key: a genre study's
# dose-0 controls carry every genre, and its per-genre effects are in transfer.md.
GROUP_KEYS = ("insertion", "split", "model", "post_training", "world_variant", "batch_size", "rl_families",
              "post_training_tokens")
# Keys that make a group only where a table has several values (a study that varies them).
VARYING_GROUP_KEYS = ("batch_size", "rl_families", "post_training_tokens")
REQUIRED = ("dose", "misaligned", "total")
OPTIONAL_NUMERIC = ("aligned_tokens", "flops", "total_tokens", "val_loss")
ED_LEVELS = (10, 50, 90)
POOLED = "pooled"
# Names of block-effect parameters (train seed, world seed) in a curve's parameter vector.
BLOCK_PREFIX = "block:"
# Interval method of control-relative EDs, chosen by the coverage simulation in
# tests/test_fit_coverage.py (see `CurveFit.log_se`).
ED_METHOD = "cluster"
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


class Unusable(Exception):
    """Raised inside a fitter; the fit is returned with usable=False and this reason."""


def warn_fit(message: str) -> None:
    warnings.warn(message, FitWarning, stacklevel=3)


def group_label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "all rows"



def clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj



def group_by(items, key) -> list[tuple[object, list]]:
    out: dict = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return list(out.items())



def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int | np.integer):
        return str(v)
    return f"{v:.4g}"


