"""Cost-effectiveness as a tidy table (the cost_effectiveness and transfer figures draw it):
fit.json's entries, or computed with scaling.stats when they lack intervals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from scaling import table as results_table
from scaling.stats import POOLED, cost_effectiveness, group_frames

# measure -> (estimate, lower, upper) columns: paired-by-seed intervals from scaling.stats
MEASURES = {"reduction": ("reduction", "lower", "upper"),
            "per_aligned_token": ("reduction_per_aligned_token", "lower_per_aligned_token",
                                  "upper_per_aligned_token"),
            "per_marginal_flop": ("reduction_per_marginal_flop", "lower_per_marginal_flop",
                                  "upper_per_marginal_flop")}


def cost_table(results: pd.DataFrame, report: dict | None = None) -> pd.DataFrame:
    """Cost-effectiveness rows: insertion, split, model, dose, runs, reduction, se and the
    same per aligned token and per FLOP (scaling.stats' definitions), intervals clipped to
    [-1, 1] (`clip_differences`); `transformer` marks the transformer models' rows.

    fit.json's rows when each has an SE; else computed here with scaling.stats, the runs of a
    configured aligned_fraction pooled at their mean measured dose (the measured dose differs
    a little between seeds, and a dose level needs >= 2 runs for an SE).
    """
    entries = list((report or {}).get("cost_effectiveness") or [])
    if not entries or any(e.get("lower") is None for e in entries):
        entries = _cost_entries(results)
    flat = [{**{k: _group_text(v) for k, v in (e.get("group") or {}).items()},
             **{k: v for k, v in e.items() if k != "group"}} for e in entries]
    df = pd.DataFrame(flat)
    for col in ("insertion", "split", "model"):
        if col not in df.columns:
            df[col] = ""
    for col in ("dose",) + tuple(c for cols in MEASURES.values() for c in cols):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df["transformer"] = df["model"].astype(str).isin(set(results_table.transformers(results)["model"].astype(str)))
    return clip_differences(df)


def clip_differences(df: pd.DataFrame, lower: str = "lower", upper: str = "upper") -> pd.DataFrame:
    """A difference of two rates lies in [-1, 1]: its t interval (few seeds: wide) is clipped
    there, and so are the per-unit intervals derived from it (scaling.stats divides the
    reduction's interval by the level's amount)."""
    df = df.copy()
    for col in (lower, upper):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").clip(-1, 1)
    for amount, key in (("aligned_tokens", "aligned_token"), ("marginal_flops", "marginal_flop")):
        if amount in df.columns:
            scale = pd.to_numeric(df[amount], errors="coerce").where(lambda a: a > 0)
            for col in (lower, upper):
                if f"{col}_per_{key}" in df.columns:
                    df[f"{col}_per_{key}"] = (df[col] / scale).where(df[f"{col}_per_{key}"].notna())
    return df


def _cost_entries(results: pd.DataFrame) -> list[dict]:
    rows = results[results["arm"] == "dose"]
    if not {"misaligned", "total"} <= set(rows.columns):
        return []
    rows = rows.dropna(subset=["misaligned", "total"])
    rows = rows[rows["total"] > 0].copy()
    if rows.empty:
        return []
    level = rows.groupby(["model", "insertion", "level"], dropna=False)["dose"]
    rows["dose"] = level.transform("mean")
    entries = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' reindexing notes from inside group_frames
        for group, cell in group_frames(rows):
            if group.get("insertion") != POOLED:
                entries += cost_effectiveness(group, cell)
    return entries


def _group_text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
