"""`scaling findings`: the reference suite's findings against the literature, as a table.

Every number comes from the committed study tables under `fits/<study>/` (results.csv,
trajectory.csv, fit.json), computed here with the package's own estimators; every verdict
is a rule on an interval, stated in the row:

- reproduces: the interval lies on the literature's side of the claim;
- does not: it lies on the other side;
- cannot tell at this scale: it contains the boundary.

`scaling findings --root .` prints the markdown table; `--check README.md` exits 1 when the
README's table (between the `findings:start`/`findings:end` markers) differs from it.
Effects are paired by block (train seed x world seed): the dosed run's final rate minus the
same block's dose-0 run, mean over blocks with a t interval on blocks - 1 df.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import UsageError
from scaling.fit.persistence import fieller, persistence_table
from scaling.fit.transfer import _t_summary, transfer_table, values_table

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
BLOCK = ["seed", "world_seed"]
STUDIES = ("dose_response", "transfer", "genres", "timing", "persistence", "sizes")


# ---------------------------------------------------------------- reading


def _study(root: Path, name: str) -> dict:
    base = Path(root) / "fits" / name
    if not (base / "results.csv").exists():
        raise UsageError(f"{base}/results.csv is missing: run `make reference-{name.replace('_', '-')}` "
                         f"(or the study's sweep) and commit its outputs")
    out = {"results": pd.read_csv(base / "results.csv")}
    for name_, reader in (("trajectory", pd.read_csv), ("fit", lambda p: json.loads(p.read_text()))):
        path = base / ("trajectory.csv" if name_ == "trajectory" else "fit.json")
        out[name_] = reader(path) if path.exists() else None
    return out


def _final(results: pd.DataFrame, learner: str = "transformer") -> pd.DataFrame:
    rows = results[(results["learner"] == learner) & (results["status"] == "ok")]
    return rows.assign(world_seed=rows["world_seed"] if "world_seed" in rows else 0)


def paired(results: pd.DataFrame, dosed, control, split: str, learner: str = "transformer") -> dict:
    """Mean over blocks of (rate of the `dosed` run - rate of the `control` run), same block;
    `dosed`/`control` select rows of results.csv (functions of the frame)."""
    rows = _final(results, learner)
    rows = rows[rows["split"] == split]
    a = rows[dosed(rows)].groupby(BLOCK)["misalignment_rate"].mean()
    b = rows[control(rows)].groupby(BLOCK)["misalignment_rate"].mean()
    both = pd.concat([a.rename("dosed"), b.rename("control")], axis=1).dropna()
    out = _t_summary((both["dosed"] - both["control"]).to_numpy())
    out.update(dosed_rate=float(both["dosed"].mean()) if len(both) else np.nan,
               control_rate=float(both["control"].mean()) if len(both) else np.nan)
    return out


def _is_control(rows):
    return (rows["arm"] == "dose") & (rows["aligned_fraction"] == 0)


def _at_dose(level: float):
    def select(rows):
        nominal = rows["nominal_dose"].where(rows["nominal_dose"].notna(), rows["aligned_fraction"])
        return (rows["arm"] == "dose") & np.isclose(nominal, level)
    return select


# ---------------------------------------------------------------- formatting


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(est, low, high, digits=2, signed=True) -> str:
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not np.isfinite(est):
        return "-"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f.format(est) + " [unbounded]"
    return f"{f.format(est)} [{f.format(low)}, {f.format(high)}]"


def _g(x: float) -> str:
    return f"{x:.2g}"


def verdict_below(upper: float, lower: float, boundary: float = 0.0) -> str:
    """The literature claims a value below `boundary` (e.g. a reduction: effect < 0)."""
    if np.isfinite(upper) and upper < boundary:
        return "reproduces"
    if np.isfinite(lower) and lower > boundary:
        return "does not"
    return "cannot tell at this scale"


def verdict_above(upper: float, lower: float, boundary: float = 0.0) -> str:
    if np.isfinite(lower) and lower > boundary:
        return "reproduces"
    if np.isfinite(upper) and upper < boundary:
        return "does not"
    return "cannot tell at this scale"
