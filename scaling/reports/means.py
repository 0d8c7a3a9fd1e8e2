"""Seed means with their 95% t intervals, as the tidy tables the figures draw.

`seed_means(rows, by)`: per group of `by`, the mean rate over the group's runs (`rate`), its
`sd`, the number of runs (`seeds`) and the t interval of the mean on seeds - 1 df (`lower`,
`upper`; scaling.stats.paired; the mean itself for one seed). The figures' line tables build on
it: `trajectory_means` (misalignment during training), `persistence_means` (after
post-training, per post-training kind, and before it), `resistance_means` (during
post-training, per pretraining dose), `arm_means` (per compared arm)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling import splits as split_defs
from scaling import table as results_table
from scaling.reports.order import window_order
from scaling.stats.paired import PairedContrast, paired_contrast

CONTROL = "control"
BEFORE = "before post-training"


def seed_means(rows: pd.DataFrame, by: list[str], value: str = "rate", **extra) -> pd.DataFrame:
    """Mean, sd, runs and 95% t interval of `value` per group of `by` (sorted); `extra`: more
    named aggregations (pandas' agg(name=(column, function)))."""
    means = (rows.groupby(by, sort=True)
             .agg(rate=(value, "mean"), sd=(value, "std"), seeds=(value, "size"), **extra).reset_index())
    return with_interval(means)


def with_interval(means: pd.DataFrame) -> pd.DataFrame:
    """`means` (rate, sd, seeds per row) with the t interval of each mean: lower, upper."""
    mean = means["rate"].to_numpy(float)
    half = np.array([PairedContrast.from_moments(m, sd, n).half_width()
                     for m, sd, n in zip(mean, means["sd"].to_numpy(float), means["seeds"].to_numpy(int))])
    half = np.nan_to_num(half)
    return means.assign(lower=mean - half, upper=mean + half)


def trajectory_means(traj: pd.DataFrame) -> pd.DataFrame:
    """Misalignment during training per (model, split, insertion, dose level, tokens) over the
    dose arm's runs, with `color_dose` (the mean measured dose, else aligned_fraction)."""
    if traj.empty:
        return pd.DataFrame()
    traj = traj[(traj["arm"] == "dose") & np.isfinite(traj["rate"])]
    if traj.empty:
        return pd.DataFrame()
    traj = traj.assign(level=results_table.dose_level(traj))
    measured = traj["dose"].notna().all()
    traj = traj.assign(color_dose=traj["dose"] if measured else traj["aligned_fraction"])
    return seed_means(traj, ["model", "split", "insertion", "level", "tokens"],
                      color_dose=("color_dose", "mean"))


def main_window(pts: pd.DataFrame) -> pd.DataFrame:
    """The rows of the commonest window among the dosed runs, and the dose-0 controls."""
    dosed = pts[pts["level"] > 0]
    if "insertion" not in pts.columns or not len(dosed):
        return pts
    return pts[(pts["level"] == 0) | (pts["insertion"] == dosed["insertion"].value_counts().idxmax())]


def persistence_means(pts: pd.DataFrame) -> pd.DataFrame:
    """Misalignment after post-training per (model, split, kind, dose level), and before it
    (series BEFORE: the end of pretraining, one run per level, seed and world); RL trained on
    part of the families is left out, and so are the other windows than the main one (the
    commonest among the dosed runs). `kind` names the post-training tokens where a kind has
    several; `shorter` marks a kind's shorter post-training. Empty without several kinds."""
    if pts.empty or pts["post_training"].nunique() < 2:
        return pd.DataFrame()
    pts = pts[(pts["rl_scope"] != "part") & ~pts["split"].isin(split_defs.POST_TRAINING)]
    if "insertion" in pts.columns:
        pts = main_window(pts)
    tokens = pts["post_training_tokens"] if "post_training_tokens" in pts.columns else pd.Series(0, index=pts.index)
    several = pts.assign(t=tokens).groupby("post_training")["t"].nunique() > 1
    pts = pts.assign(kind=[f"{k}, {t / 1e3:,.0f}k tokens" if several.get(k, False) else k
                           for k, t in zip(pts["post_training"], tokens)], t=tokens)
    shorter = set(pts.loc[pts["t"] < pts.groupby("post_training")["t"].transform("max"), "kind"])
    parts = []
    for (model, split), rows in pts.groupby(["model", "split"], sort=True):
        for kind, mine in rows.groupby("kind", sort=True):
            parts.append(_level_means(mine, "after").assign(model=model, split=split, kind=kind,
                                                            shorter=kind in shorter))
        before = rows.drop_duplicates(["level", "seed", "world_seed"])
        parts.append(_level_means(before, "before").assign(model=model, split=split, kind=BEFORE, shorter=False))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _level_means(rows: pd.DataFrame, col: str) -> pd.DataFrame:
    means = (rows.groupby("level", sort=True)[col].agg(["mean", "std", "size"]).reset_index()
             .rename(columns={"mean": "rate", "std": "sd", "size": "seeds"}))
    return with_interval(means)


def resistance_means(pts: pd.DataFrame) -> pd.DataFrame:
    """Misalignment during post-training per (model, split, direction, dose level, post-training
    step) over the runs of the main window and the dose-0 controls (scaling.reports.resistance's
    curves); `direction` is the post-training kind, with its RL scope where it is not "all".
    Empty without misalignment at three or more post-training steps."""
    if pts.empty or pts["post_step"].nunique() < 3:
        return pd.DataFrame()
    pts = main_window(pts)
    pts = pts.assign(direction=[k if not scope or scope == "all" else f"{k} ({scope} of the families)"
                                for k, scope in zip(pts["post_training"].astype(str),
                                                    pts["rl_scope"].astype(object).fillna(""))])
    return seed_means(pts, ["model", "split", "direction", "level", "post_step"])


def arm_means(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, split, label) of an arm table (scaling.reports.arms): the mean rate over
    its runs and the half-width of its 95% t interval (runs are the units; none for one run)."""
    rows = []
    for (model, split, label), runs in table.groupby(["model", "split", "label"], sort=False):
        rates = runs["rate"].to_numpy(float)
        half = None
        mean = float(rates.mean())
        if len(rates) >= 2:
            contrast = paired_contrast(rates)
            mean, half = contrast.estimate, contrast.half_width()
        rows.append({"model": model, "split": split, "label": label, "rate": mean, "half": half})
    return pd.DataFrame(rows, columns=["model", "split", "label", "rate", "half"])


CAPABILITY = ("val_loss", "fact_recall")


def capability_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The dose arm's runs with capability values, once per run, long over the metrics
    (CAPABILITY's with any value, in that order): `metric`, `value` (NaN where a run has none).
    Counting baselines share their run's id but have no capability values: they are left out."""
    metrics = [m for m in CAPABILITY if m in results.columns and results[m].notna().any()]
    runs = results[results["arm"] == "dose"]
    if metrics:
        runs = runs[runs[metrics].notna().any(axis=1)]
    runs = runs.drop_duplicates("run_id") if "run_id" in runs.columns else runs[runs["split"] == split_defs.MAIN]
    if not metrics or not runs[metrics].notna().any(axis=None):
        return pd.DataFrame()
    return pd.concat([runs.assign(metric=m, value=runs[m]) for m in metrics], ignore_index=True)


def capability_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (model, metric, window, dose level) of capability_runs: the mean dose and value over
    the runs (`dose`, `value`); per (model, metric) the dose-0 controls' mean value (insertion
    CONTROL, no level)."""
    if runs.empty:
        return pd.DataFrame(columns=["model", "metric", "insertion", "level", "dose", "value"])
    runs = runs[np.isfinite(runs["value"])]
    dosed = runs[runs["insertion"] != CONTROL]
    levels = dosed.groupby(["model", "metric", "insertion", "level"], sort=True).agg(
        dose=("dose", "mean"), value=("value", "mean")).reset_index()
    controls = [{"model": model, "metric": metric, "insertion": CONTROL, "level": np.nan, "dose": np.nan,
                 "value": rows["value"].mean()}
                for (model, metric), rows in runs[runs["insertion"] == CONTROL].groupby(["model", "metric"], sort=True)]
    return pd.concat([levels, pd.DataFrame(controls, columns=levels.columns)], ignore_index=True)


def readout_means(results: pd.DataFrame) -> pd.DataFrame:
    """The readout's mean over the dose arm's runs per (model, world variant, window, split,
    dose level), each window's cell pooling its runs with the dose-0 controls (`window`); the
    mean measured dose beside it (`dose`). Empty without a readout column."""
    if "readout" not in results.columns:
        return pd.DataFrame()
    rows = results[results["arm"] == "dose"]
    variants = rows["world_variant"].astype(str).replace("", "normal") if "world_variant" in rows.columns \
        else pd.Series("normal", index=rows.index)
    rows = rows.assign(readout=pd.to_numeric(rows["readout"], errors="coerce"),
                       world_variant=variants).dropna(subset=["readout"])
    keys = ["model", "world_variant", "split", "level"]
    parts = [rows[rows["insertion"].isin([window, CONTROL])].groupby(keys, sort=True)
             .agg(dose=("dose", "mean"), readout=("readout", "mean")).reset_index().assign(window=window)
             for window in window_order(rows)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
