"""The alignment tax: capability (validation loss, fact recall) against dose (`capability`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    CONTROL_COLOR,
    DOSE_LABEL,
    MAIN_SPLIT,
    DoseAxis,
    jittered,
    label_outer,
    legend_below,
    new_figure,
    seed_offsets,
    styled,
    tested_doses,
    window_colors,
    with_model,
)
from scaling.reports.order import CONTROL, model_order, window_order

CAPABILITY = {"val_loss": "validation loss (nats/token)", "fact_recall": "fact recall"}
# Chance levels of capability metrics: fact recall picks the answer among it and 3 distractors
# (scaling.evaluate's capability(), World.facts()).
CAPABILITY_CHANCE = {"fact_recall": 0.25}


@figure("capability", 8, "results")
@styled
def capability(results: pd.DataFrame) -> Figure:
    """Alignment tax: val_loss and fact_recall (columns) against dose per window, per model
    (rows); runs per seed, lines through the seed means, the control mean dotted."""
    metrics = [m for m in CAPABILITY if m in results.columns and results[m].notna().any()]
    runs = results[results["arm"] == "dose"]
    if metrics:
        # counting baselines share their run's id but have no capability values: drop them first
        runs = runs[runs[metrics].notna().any(axis=1)]
    runs = runs.drop_duplicates("run_id") if "run_id" in runs.columns else runs[runs["split"] == MAIN_SPLIT]
    if not metrics or not runs[metrics].notna().any(axis=None):
        raise MissingData("no val_loss or fact_recall values")
    axis = DoseAxis.of(runs["dose"])
    offsets = seed_offsets(runs["seed"])
    windows, models = window_order(runs), model_order(runs)
    colors = window_colors(windows)
    fig, axes = new_figure(len(models), len(metrics), "Alignment tax: capability vs aligned dose",
                            sharey=False)
    for i, model in enumerate(models):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            rows = runs[(runs["model"] == model) & np.isfinite(runs[metric])]
            controls = rows[rows["insertion"] == CONTROL]
            if len(controls):
                ax.axhline(controls[metric].mean(), color=CONTROL_COLOR, lw=0.9, ls=":", zorder=1)
            for window in [CONTROL, *windows]:
                mine = rows[rows["insertion"] == window]
                if mine.empty:
                    continue
                ax.scatter(jittered(axis, mine, offsets), mine[metric], s=16, color=colors[window],
                           marker="s" if window == CONTROL else "o", alpha=0.8, lw=0, zorder=3)
                if window != CONTROL:
                    means = mine.groupby("level").agg(dose=("dose", "mean"),
                                                                 y=(metric, "mean"))
                    ax.plot(means["dose"], means["y"], color=colors[window], lw=1.4, zorder=2)
            if metric in CAPABILITY_CHANCE:
                ax.axhline(CAPABILITY_CHANCE[metric], color="0.45", lw=0.9, ls="--", zorder=1)
            axis.apply(ax, doses=tested_doses(rows))
            ax.set_ylabel(CAPABILITY[metric])
            ax.set_title(with_model(CAPABILITY[metric].split(" (")[0], model, models))
    label_outer(fig, axes, DOSE_LABEL, None)
    handles = [Line2D([], [], color=colors[w], marker="o", lw=1.4, label=w) for w in windows]
    handles += [Line2D([], [], color=CONTROL_COLOR, marker="s", ls=":", label="dose-0 control (mean dotted)")]
    if any(m in CAPABILITY_CHANCE for m in metrics):
        handles.append(Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (fact recall: 1 in 4)"))
    legend_below(fig, handles, ncols=len(handles),
                  title="insertion window (points: runs; lines: seed means)")
    return fig
