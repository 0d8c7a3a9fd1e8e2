"""Named contrasts the science needs, paired by block (train seed x world seed), and Holm's
adjustment across every test a report makes.

Each contrast is a mean over blocks of a within-block difference, with a t interval on G-1
degrees of freedom (G blocks): runs that share a seed share their initialisation and base data
order, so the block, not the run or the item, is the independent unit. In world mode
(`scaling fit --blocks world`, table.cluster_labels) the world is the unit instead: each world's
runs are averaged over its seeds and G counts worlds. A contrast is computed only when the table
has the columns and rows it needs; it is silently absent otherwise. The transfer contrasts
compare the main split with each transfer split: the caller names them (scaling.reports.fit passes
scaling.splits'), so the statistics know no study's splits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd

from scaling import table
from scaling.stats.common import clean
from scaling.stats.groups import cluster_labels
from scaling.stats.paired import METHOD as PAIRED_TEST
from scaling.stats.paired import holm, paired_contrast
from scaling.table import dose_level, is_control_label

NO_POST_TRAINING = "none"


def paired_entry(name: str, kind: str, diffs: pd.Series, **extra) -> dict | None:
    """The paired contrast of the blocks' differences (scaling.stats.paired: p null where se = 0)
    as a fit.json entry; None below 2 blocks."""
    contrast = paired_contrast(diffs.dropna())
    if contrast.blocks < 2:
        return None
    return clean({"name": name, "test": kind, "method": PAIRED_TEST,
                   **{k: v for k, v in contrast.summary().items() if k != "p"},
                   "p": contrast.pvalue, **extra})


def add_holm(entries: list[dict], in_family=lambda entry: True) -> None:
    """p_holm on every entry of the family that has a p; None elsewhere."""
    tested = [e for e in entries if e.get("p") is not None and in_family(e)]
    for entry, adjusted in zip(tested, holm([e["p"] for e in tested])):
        entry["p_holm"] = adjusted
    for entry in entries:
        entry.setdefault("p_holm", None)


# ---------------------------------------------------------------- the run table


def run_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, split, model) with its rate, block, dose level and window."""
    runs = df.copy()
    runs["rate"] = runs["misaligned"] / runs["total"]
    blocks = cluster_labels(runs)  # in world mode the world: its seeds' runs are averaged
    runs["block"] = blocks if blocks is not None else "all"
    runs["level"] = dose_level(runs)
    runs["window"] = runs["insertion"].astype(str) if "insertion" in runs.columns else "all"
    runs["is_control"] = runs["dose"] == 0
    if "insertion" in runs.columns:
        # astype: pandas 3 maps an empty str column to an empty str column, which & refuses
        runs.loc[runs["insertion"].map(is_control_label).astype(bool) & runs["is_control"], "window"] = "control"
    # "config": the trained configuration a contrast is about (the model, with its batch size
    # where the table varies it); not the results table's `learner` (scaling.table.learner)
    runs["config"] = runs["model"].astype(str) if "model" in runs.columns else "model"
    if "batch_size" in runs.columns and runs["batch_size"].nunique() > 1:
        # runs of another batch size are another training configuration, never pooled
        runs["config"] += " batch " + runs["batch_size"].map("{:g}".format)
    runs["split"] = runs["split"].astype(str) if "split" in runs.columns else "all"
    runs["counting"] = table.learner(runs) != table.TRANSFORMER
    return runs


def _reductions(runs: pd.DataFrame) -> pd.DataFrame:
    """Each dosed run's reduction in rate vs its block's dose-0 controls (same split, model)."""
    keys = ["split", "config", "block"]
    controls = runs[runs["is_control"]].groupby(keys)["rate"].mean().rename("control_rate")
    dosed = runs[~runs["is_control"]].join(controls, on=keys)
    dosed["reduction"] = dosed["control_rate"] - dosed["rate"]
    return dosed


def _windows(runs: pd.DataFrame) -> list[str]:
    return sorted(w for w in runs.loc[~runs["is_control"], "window"].unique() if w != "control")


def _top_level(rows: pd.DataFrame) -> float:
    return float(rows["level"].max())


def _transformers(runs: pd.DataFrame) -> list[str]:
    return sorted(runs.loc[~runs["counting"], "config"].unique())


# ---------------------------------------------------------------- contrasts


def named_contrasts(df: pd.DataFrame, main: str, transfer_splits: Sequence[str]) -> list[dict]:
    """Every contrast the table supports (see the module docstring), per world variant; the
    transfer contrasts take `main` minus each of `transfer_splits`."""
    if "world_variant" not in df.columns or df["world_variant"].nunique(dropna=False) < 2:
        return _contrasts(df, main, transfer_splits)
    out = []
    for variant, rows in df.groupby(df["world_variant"].astype(str), sort=True):
        for entry in _contrasts(rows, main, transfer_splits):
            out.append({**entry, "name": f"{entry['name']} [{variant} world]",
                        "world_variant": variant})
    return out


def _contrasts(df: pd.DataFrame, main: str, transfer_splits: Sequence[str]) -> list[dict]:
    runs = run_table(df)
    if "post_training" in runs.columns:
        # the curve contrasts compare pretraining only; post-training has its own contrast
        pre = runs[runs["post_training"].astype(str).isin([NO_POST_TRAINING, "nan"])]
    else:
        pre = runs
    entries = (alignment_tax(pre) + transfer(pre, main, transfer_splits) + windows_at_equal_dose(pre)
               + beyond_counting(pre) + post_training(runs))
    return [e for e in entries if e is not None]


def alignment_tax(runs: pd.DataFrame) -> list[dict | None]:
    """Validation loss at each window's highest dose minus its block's dose-0 control."""
    if "val_loss" not in runs.columns:
        return []
    out = []
    for learner in _transformers(runs):
        rows = runs[(runs["config"] == learner) & runs["val_loss"].notna()]
        control = rows[rows["is_control"]].groupby("block")["val_loss"].mean()
        for window in _windows(rows):
            in_window = rows[(rows["window"] == window) & ~rows["is_control"]]
            top = in_window[in_window["level"] == _top_level(in_window)]
            diffs = top.groupby("block")["val_loss"].mean() - control
            out.append(paired_entry(f"alignment tax: val_loss, {window} at dose {_top_level(top):g} "
                                    f"- dose 0 ({learner})", "alignment_tax", diffs,
                                    window=window, dose_level=_top_level(top), model=learner))
    return out


def transfer(runs: pd.DataFrame, main: str, transfer_splits: Sequence[str]) -> list[dict | None]:
    """Reduction on the main split minus on a transfer split, at each window's highest dose."""
    dosed = _reductions(runs)
    out = []
    for learner, window in itertools.product(_transformers(runs), _windows(runs)):
        rows = dosed[(dosed["config"] == learner) & (dosed["window"] == window)]
        if rows.empty:
            continue
        top = rows[rows["level"] == _top_level(rows)]
        by_split = top.groupby(["split", "block"])["reduction"].mean()
        splits = set(top["split"])
        for other in (s for s in transfer_splits if s in splits and main in splits):
            diffs = by_split[main] - by_split[other]
            out.append(paired_entry(f"transfer: reduction on {main} - {other}, {window} at dose "
                                    f"{_top_level(top):g} ({learner})", "transfer", diffs,
                                    window=window, split=other, dose_level=_top_level(top),
                                    model=learner))
    return out


def windows_at_equal_dose(runs: pd.DataFrame) -> list[dict | None]:
    """Rate in one window minus another at the dose levels both tested, averaged per block."""
    out = []
    dosed = runs[~runs["is_control"]]
    for learner, split in itertools.product(_transformers(runs), sorted(dosed["split"].unique())):
        rows = dosed[(dosed["config"] == learner) & (dosed["split"] == split)]
        rates = rows.groupby(["window", "level", "block"])["rate"].mean()
        for first, second in itertools.combinations(_windows(rows), 2):
            a, b = rates[first], rates[second]
            common = sorted(set(a.index.get_level_values("level"))
                            & set(b.index.get_level_values("level")))
            if not common:
                continue
            diffs = (a - b).dropna().groupby(level="block").mean()
            out.append(paired_entry(f"windows at equal dose: rate {first} - {second} ({split}, "
                                    f"{len(common)} common doses, {learner})", "windows", diffs,
                                    windows=[first, second], split=split, dose_levels=common,
                                    model=learner))
    return out


def beyond_counting(runs: pd.DataFrame) -> list[dict | None]:
    """Transformer's reduction minus a counting baseline's on the same runs (highest dose);
    "beyond counting" only when the interval excludes 0 on the transformer's side."""
    counters = sorted(runs.loc[runs["counting"], "config"].unique())
    if not counters:
        return []
    dosed = _reductions(runs)
    out = []
    for learner, counter in itertools.product(_transformers(runs), counters):
        for window, split in itertools.product(_windows(runs), sorted(dosed["split"].unique())):
            rows = dosed[(dosed["window"] == window) & (dosed["split"] == split)]
            mine, theirs = rows[rows["config"] == learner], rows[rows["config"] == counter]
            if mine.empty or theirs.empty:
                continue
            level = _top_level(mine)
            diffs = (mine[mine["level"] == level].groupby("block")["reduction"].mean()
                     - theirs[theirs["level"] == level].groupby("block")["reduction"].mean())
            entry = paired_entry(f"beyond counting: reduction {learner} - {counter}, {window} at "
                                 f"dose {level:g} ({split})", "beyond_counting", diffs,
                                 window=window, split=split, dose_level=level, model=learner,
                                 baseline=counter)
            if entry is not None:
                entry["beyond_counting"] = bool(entry["lower"] > 0)
            out.append(entry)
    return out


def post_training(runs: pd.DataFrame) -> list[dict | None]:
    """Rate after a post-training stage minus before it, on the same pretrained runs."""
    if "post_training" not in runs.columns:
        return []
    stage = runs["post_training"].astype(str)
    if NO_POST_TRAINING not in set(stage):
        return []
    keys = ["config", "split", "window", "level", "block"]
    before = runs[stage == NO_POST_TRAINING].groupby(keys)["rate"].mean()
    out = []
    for after in sorted(set(stage) - {NO_POST_TRAINING, "nan"}):
        rates = runs[stage == after].groupby(keys)["rate"].mean()
        paired = (rates - before).dropna()
        for (learner, split), diffs in paired.groupby(level=["config", "split"]):
            per_block = diffs.groupby(level="block").mean()
            out.append(paired_entry(f"post-training: rate after {after} - before ({split}, "
                                    f"{learner})", "post_training", per_block, stage=after,
                                    split=split, model=learner))
    return out
