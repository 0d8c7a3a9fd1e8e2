"""The treatment arms of a study (scaling.treatments) in its answer: per arm and split, the
transformer's change against the dose-0 control, paired by block, and the counter that comes
closest to it on the same contrast.

A treatment's own scoring of a split (SPLIT_conditioned, SPLIT_tag_allowed) is compared with
the control's plain SPLIT: the control has no tag to be conditioned on. The counting
baselines scored the treated run's items the same way (their context holds the same control
tokens), so "a counter does too" says where a counter conditioned on the tag moves as far.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling.splits import TREATMENT_SUFFIXES
from scaling.stats.contrasts import paired_entry
from scaling.stats.groups import block_labels
from scaling.table import finished


def base_split(name: str) -> str:
    """The plain split a treatment's scoring of it is compared with."""
    for suffix in TREATMENT_SUFFIXES:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def _by_block(rows: pd.DataFrame) -> pd.Series:
    blocks = block_labels(rows)
    labels = blocks if blocks is not None else np.array(["all"] * len(rows), dtype=object)
    return (rows["misaligned"] / rows["total"]).groupby(labels).mean()


def change(ok: pd.DataFrame, arm: str, split: str, model: str) -> pd.Series:
    """Per block: the arm's rate on `split` minus the dose-0 control's on its plain split."""
    mine = ok[(ok["model"].astype(str) == model)]
    treated = mine[(mine["arm"].astype(str) == arm) & (mine["split"].astype(str) == split)]
    control = mine[(mine["arm"].astype(str) == "dose") & (mine["dose"] == 0)
                   & (mine["split"].astype(str) == base_split(split))]
    if treated.empty or control.empty:
        return pd.Series(dtype=float)
    return (_by_block(treated) - _by_block(control)).dropna()


def _ci(entry: dict | None, diffs: pd.Series) -> str:
    if entry is None:
        return f"{diffs.mean():+.2f} ({len(diffs)} block{'s' if len(diffs) != 1 else ''})"
    return f"{entry['estimate']:+.2f} [{entry['lower']:+.2f}, {entry['upper']:+.2f}] over {entry['blocks']} blocks"


def arm_line(ok: pd.DataFrame, arm: str, split: str, model: str, counters: list[str]) -> str | None:
    """One answer line: the transformer's change and its strongest counter's, or None."""
    t = change(ok, arm, split, model)
    if t.empty:
        return None
    direction = 1.0 if t.mean() <= 0 else -1.0  # +1: the treatment lowers misalignment
    best, best_gap = None, np.inf
    for name in counters:
        c = change(ok, arm, split, name)
        gap = (c - t).reindex(t.index).dropna()  # transformer's reduction - counter's, per block
        if len(gap) and direction * gap.mean() < best_gap:
            best, best_gap = (name, c, gap), direction * gap.mean()
    text = f"- **{arm}, {split}**: {model} {_ci(paired_entry(arm, 'change', t), t)}"
    if best is None:
        return text + "; no counter scored on the same blocks."
    name, c, gap = best
    entry = paired_entry(arm, "beyond_counting", gap)
    verdict = "too few blocks to compare" if entry is None else (
        "beyond every counter" if direction * entry["lower"] > 0 and direction * entry["upper"] > 0
        else "a counter does too" if entry["lower"] <= 0 <= entry["upper"]
        else "the counter moves more than the transformer")
    return (text + f"; strongest counter {name} {_ci(paired_entry(name, 'change', c), c)}; {verdict}"
            + ("" if entry is None else f" (difference in reduction {direction * entry['estimate']:+.2f} "
               f"[{min(direction * entry['lower'], direction * entry['upper']):+.2f}, "
               f"{max(direction * entry['lower'], direction * entry['upper']):+.2f}])") + ".")


def treatment_lines(df: pd.DataFrame, is_counter) -> list[str]:
    """The answer's section on the treatment arms (empty without any)."""
    if "arm" not in df.columns or "model" not in df.columns:
        return []
    ok = finished(df)
    ok = ok[ok["total"] > 0] if "total" in ok.columns else ok
    arms = sorted(set(ok["arm"].astype(str)) - {"dose", "nan"})
    if not arms:
        return []
    models = sorted({m for m in ok["model"].astype(str) if not is_counter(m)})
    counters = sorted({m for m in ok["model"].astype(str) if is_counter(m)})
    lines = ["", "Treatments: each arm's rate minus the dose-0 control's on the same blocks (a "
             "treatment's own scoring, SPLIT_conditioned or SPLIT_tag_allowed, against the control's "
             "plain split), 95% t interval; strongest counter: the counting baseline whose change on "
             "the same contrast comes closest to the transformer's, scored on the same items and control "
             "tokens.", ""]
    for model in models:
        for arm in arms:
            splits = ok[(ok["arm"].astype(str) == arm) & (ok["model"].astype(str) == model)]["split"].astype(str)
            for split in dict.fromkeys(splits):
                line = arm_line(ok, arm, split, model, counters)
                if line:
                    lines.append(line)
    return lines
