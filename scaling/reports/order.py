"""The order in which the reports and the figures list insertion windows and models."""

from __future__ import annotations

import pandas as pd

from scaling import table as results_table

CONTROL = "control"  # the insertion of the dose-0 controls in the figures' tables
# Presets in training order (scaling.config); a window's color is fixed by its place here.
WINDOW_ORDER = ("early", "throughout", "midtraining", "window", "continued", "finetune")


def window_order(df: pd.DataFrame) -> list[str]:
    """Insertion windows present (controls apart), presets in training order first."""
    windows = [w for w in df["insertion"].unique().tolist() if w != CONTROL]
    return sorted(windows, key=_window_rank)


def _window_rank(window: str) -> tuple[int, str]:
    return (WINDOW_ORDER.index(window) if window in WINDOW_ORDER else len(WINDOW_ORDER), window)


def model_order(df: pd.DataFrame) -> list[str]:
    """The table's models, trained ones first (each group alphabetical)."""
    return sorted(df["model"].unique().tolist(), key=lambda m: (results_table.is_counting(str(m)), str(m)))
