"""The input table of a fit: validation, groups (windows x split x model) and block modes. What a
row means (finished rows, learner, dose level, blocks) is scaling.table's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling import table
from scaling.errors import UsageError
from scaling.stats.common import (
    GROUP_KEYS,
    OPTIONAL_NUMERIC,
    POOLED,
    REQUIRED,
    VARYING_GROUP_KEYS,
    clean,
    warn_fit,
)


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results CSV as it is (scaling.table.read); `fit_table` validates it (see `clean_table`)."""
    return table.read(path)


_text = table.text


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
        bad = ~table.is_finished(df)
        if bad.any():
            warn_fit(f"dropping {int(bad.sum())} row(s) with status != 'ok' "
                  f"({', '.join(sorted(_text(df.loc[bad, 'status']).unique()))})")
            df = df[~bad]
    if "arm" in df.columns:
        other = _text(df["arm"]).str.strip() != "dose"
        if other.any():
            warn_fit(f"dropping {int(other.sum())} row(s) of arms other than 'dose' "
                  f"({', '.join(sorted(_text(df.loc[other, 'arm']).unique()))}): a dose-response "
                  "curve is fitted to the aligned-dose arm and its controls")
            df = df[~other]
    for col in REQUIRED + tuple(c for c in OPTIONAL_NUMERIC if c in df.columns):
        df[col] = _numeric_column(df, col)
    nan_rows = df[list(REQUIRED)].isna().any(axis=1)
    if nan_rows.any():
        warn_fit(f"dropping {int(nan_rows.sum())} row(s) with a missing dose, misaligned or total "
              f"(rows {_row_list(df[nan_rows])})")
        df = df[~nan_rows]
    _reject(df, df["dose"] < 0, "dose", "is negative")
    _reject(df, df["total"] < 0, "total", "is negative")
    _reject(df, df["misaligned"] < 0, "misaligned", "is negative")
    _reject(df, df["misaligned"] > df["total"], "misaligned", "exceeds total (k > n)")
    empty = df["total"] == 0
    if empty.any():
        warn_fit(f"dropping {int(empty.sum())} row(s) with total = 0 (rows {_row_list(df[empty])})")
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



_is_control_label = table.is_control_label


def group_frames(df: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """(group, rows) per combination of insertion, split, model present, then pooled ones.

    Dose-0 controls without an insertion window join every window of their (split, model);
    "pooled" joins all windows of a (split, model) when there are two or more.
    """
    # an all-empty column (an older table written with the new header) groups nothing
    keys = [k for k in GROUP_KEYS if k in df.columns and df[k].notna().any()
            and (k not in VARYING_GROUP_KEYS or df[k].nunique() > 1)]
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
    return {k: clean(group[k]) for k in GROUP_KEYS if k in group}




# The blocking factors (scaling.table.BLOCK): every fit and comparison treats their
# combinations as blocks.
BLOCK_COLUMNS = table.BLOCK
# `scaling fit --blocks`: the independent units of a table.
#   seed   seed x world seed blocks: one effect per block on the dose-0 level, SEs clustered by
#          block, contrasts paired by block, t on blocks - 1 df;
#   world  worlds, seeds nested in them: the same block effects, but SEs clustered by world
#          and paired contrasts averaged within each world first, t on worlds - 1 df (the
#          calibrated choice when worlds differ in the dose's effect: tests/test_fit_coverage.py);
#   none   no blocks: every fit is the pooled binomial fit R's drc computes, nothing paired;
#   auto   world when the table has two or more world seeds, else seed.
BLOCK_MODES = ("auto", "none", "seed", "world")
WORLD = table.WORLD
# The column fit_table sets in world mode: each row's independent unit (its world).
CLUSTER = "_cluster"


def require_units(df: pd.DataFrame, blocks: str, pool_splits: bool) -> None:
    """UsageError, before any fit, where the table cannot give what `scaling fit` would claim:
    no `split` column (its rows would pool into one curve: `--pool-splits` accepts that) or
    no `seed` on a row of status ok (seed blocks would silently be dropped: `--blocks none`
    fits every row as an independent run)."""
    if "split" not in df.columns and not pool_splits:
        raise UsageError("no 'split' column: the rows of every eval split would pool into one curve; "
                         "add the column, or pass --pool-splits to fit all rows as one split")
    if "split" in df.columns and pool_splits:
        raise UsageError("--pool-splits is for a table without a 'split' column; this one has splits "
                         f"{', '.join(sorted(_text(df['split']).unique()))}, each fitted as its own curve")
    if blocks == "none":
        return
    if "seed" not in df.columns:
        raise UsageError(f"no 'seed' column: --blocks {blocks} pairs and clusters by train seed; add the "
                         "column, or pass --blocks none to fit every row as an independent run")
    ok = table.is_finished(df)
    empty = ok & (df["seed"].isna() | (_text(df["seed"]).str.strip() == ""))
    if empty.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(empty.to_numpy())[:8])
        raise UsageError(f"column 'seed' is empty on {int(empty.sum())} row(s) (CSV lines {rows}): "
                         f"--blocks {blocks} needs every row's train seed; fill it, or pass --blocks none")


def block_mode(df: pd.DataFrame, mode: str) -> str:
    """The blocks `df` is analysed with (see BLOCK_MODES): "none", "seed" or "world"."""
    if mode not in BLOCK_MODES:
        raise UsageError(f"--blocks must be one of {', '.join(BLOCK_MODES)}, not {mode!r}")
    worlds = df[WORLD].nunique() if WORLD in df.columns else 0
    if mode == "world" and worlds < 2:
        raise UsageError(f"--blocks world needs a {WORLD} column with two or more worlds; this table has "
                         f"{worlds}")
    if mode == "auto":
        return "world" if worlds >= 2 else "seed"
    return mode


def with_blocks(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    """`df` prepared for `mode`: none leaves out the block columns (independent runs: every fit
    pooled, nothing paired); world names each row's world in CLUSTER; seed is `df` itself."""
    if mode == "none":
        return df.drop(columns=[c for c in (*BLOCK_COLUMNS, CLUSTER) if c in df.columns])
    if mode == "world":
        return df.assign(**{CLUSTER: table.blocks(df, "world")})
    return df


def cluster_labels(rows: pd.DataFrame) -> np.ndarray | None:
    """Each row's independent unit: its world in world mode (CLUSTER), else its block."""
    if CLUSTER in rows.columns:
        return rows[CLUSTER].to_numpy(dtype=object)
    return block_labels(rows)


def block_labels(rows: pd.DataFrame) -> np.ndarray | None:
    """Each row's block ("seed=1" or "seed=1|world_seed=7"; scaling.table.blocks); None
    without block columns."""
    return table.blocks(rows, "seed")
