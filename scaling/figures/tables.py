"""The tables the figures read: results.csv as drawable rows (`tidy_results`, by
scaling.table's rules), the split check, and fit.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scaling import splits as split_defs
from scaling import table as results_table
from scaling.errors import UsageError
from scaling.figures.style import MAIN_SPLIT
from scaling.reports.order import CONTROL


def load_results(path: str | Path) -> pd.DataFrame:
    """results.csv as the drawable rows: status ok, a finite dose >= 0; `rate` = k/n.

    Missing optional columns get defaults (arm "dose", split "matched", one model, seed 0).
    """
    df = results_table.read(path)
    return tidy_results(df)


def tidy_results(df: pd.DataFrame) -> pd.DataFrame:
    has_counts = {"misaligned", "total"} <= set(df.columns)
    if "dose" not in df.columns or not (has_counts or "misalignment_rate" in df.columns):
        raise UsageError("a results table needs a dose column and misaligned/total or "
                         "misalignment_rate (see `scaling results`)")
    df = df.copy()
    for col, default in (("arm", "dose"), ("split", MAIN_SPLIT), ("model", ""), ("seed", 0),
                         ("insertion", "")):
        if col not in df.columns:
            df[col] = default
    for col in ("dose", "misaligned", "total", "misalignment_rate", "aligned_fraction",
                "aligned_tokens", "flops", "total_tokens", "val_loss", "fact_recall",
                "window_start",
                "window_end"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    rate = df["misalignment_rate"] if "misalignment_rate" in df.columns else np.nan
    if has_counts:
        with np.errstate(divide="ignore", invalid="ignore"):
            counted = df["misaligned"] / df["total"].where(df["total"] > 0)
        rate = counted.where(counted.notna(), rate)
    df["rate"] = rate
    for col in ("arm", "split", "model", "insertion"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str).str.strip()
    df["arm"] = df["arm"].replace("", "dose")
    control = (df["dose"] == 0) & df["insertion"].str.lower().isin(results_table.CONTROL_LABELS)
    df.loc[control, "insertion"] = CONTROL
    if "aligned_fraction" not in df.columns:
        df["aligned_fraction"] = df["dose"]
    df["level"] = results_table.dose_level(df)
    keep = results_table.is_finished(df) & np.isfinite(df["dose"]) & (df["dose"] >= 0)
    return df[keep].reset_index(drop=True)


def check_splits(results: pd.DataFrame) -> None:
    """UsageError naming every split of the table that no source brings (scaling.splits.unknown:
    not the world's, not post-training's, and no scenario file of the row's run)."""
    files = results["input_files"] if "input_files" in results.columns else [None] * len(results)
    bad = split_defs.unknown(zip(results["split"], files))
    if bad:
        raise UsageError(f"results.csv: unknown split(s) {', '.join(map(repr, bad))}: not the world's "
                         f"({', '.join(split_defs.SPLITS)}), not post-training's ({', '.join(split_defs.POST_TRAINING)}), "
                         "and the row's run read no scenario file (input_files has no eval.files)")


def load_fit(path: str | Path) -> dict:
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON ({e})") from e
    if not isinstance(report, dict) or not isinstance(report.get("fits", []), list):
        raise UsageError(f"{path}: not a fit.json (scaling fit) report")
    return report


def group_text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
