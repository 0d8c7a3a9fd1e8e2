"""The interventions compared, as a tidy table (the arms figure draws it): per run, the dose-0
controls, each window's top aligned dose and every other arm (filtered, misaligned ...)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling.reports.order import CONTROL, model_order, window_order


def arm_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per-run rates of the compared arms: dose-0 controls, each window's top aligned dose,
    and every other arm (label, model, split, seed, rate, color key)."""
    rows = results[np.isfinite(results["rate"])]
    parts = []
    for model in model_order(rows):
        mine = rows[rows["model"] == model]
        dose_arm = mine[mine["arm"] == "dose"]
        parts.append(dose_arm[dose_arm["insertion"] == CONTROL].assign(label="dose-0 control",
                                                                        key=CONTROL))
        for window in window_order(dose_arm):
            at = dose_arm[dose_arm["insertion"] == window]
            top = at[at["level"] == at["level"].max()]
            parts.append(top.assign(label=f"aligned: {window}\n(dose {top['dose'].mean():.2g})",
                                    key=window))
        others = mine[mine["arm"] != "dose"]
        for arm_name, at in others.groupby("arm", sort=True):
            settings = at[["insertion", "aligned_fraction"]].drop_duplicates()
            for _, s in settings.iterrows():
                sub = at[(at["insertion"] == s["insertion"]) & (at["aligned_fraction"] == s["aligned_fraction"])]
                detail = "" if len(settings) == 1 else f"\n({s['insertion']}, {s['aligned_fraction']:g})"
                parts.append(sub.assign(label=f"{arm_name}{detail}", key=f"arm:{arm_name}"))
    if not parts:
        return pd.DataFrame(columns=["label", "key", "model", "split", "seed", "rate", "arm"])
    return pd.concat(parts, ignore_index=True)[["label", "key", "model", "split", "seed", "rate", "arm"]]
