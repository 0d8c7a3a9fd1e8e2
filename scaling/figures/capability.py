"""The alignment tax: capability (validation loss, fact recall) against dose (`capability`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    CONTROL_COLOR,
    DOSE_LABEL,
    DoseAxis,
    facet_grid,
    finish_grid,
    jittered,
    label_outer,
    legend_below,
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


@figure("capability", 8, "capability_runs", "capability_means")
@styled
def capability(runs: pd.DataFrame, means: pd.DataFrame) -> Figure:
    """Alignment tax: val_loss and fact_recall (columns) against dose per window, per model
    (rows); runs per seed, lines through the seed means, the control mean dotted (`runs`,
    `means`: scaling.reports.means.capability_runs and capability_means)."""
    if runs.empty:
        raise MissingData("no val_loss or fact_recall values")
    metrics = list(dict.fromkeys(runs["metric"]))
    axis = DoseAxis.of(runs["dose"])
    offsets = seed_offsets(runs["seed"])
    windows, models = window_order(runs), model_order(runs)
    colors = window_colors(windows)
    grid = facet_grid(runs[np.isfinite(runs["value"])], row="model", col="metric", row_order=models,
                      col_order=metrics, hue="insertion", hue_order=[CONTROL, *windows], palette=colors)
    grid.map_dataframe(_runs_and_means, axis=axis, offsets=offsets, means=means)
    fig = finish_grid(grid, "Alignment tax: capability vs aligned dose")
    axes = grid.axes
    for i, model in enumerate(models):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            rows = runs[(runs["model"] == model) & (runs["metric"] == metric) & np.isfinite(runs["value"])]
            control = means[(means["model"] == model) & (means["metric"] == metric) & (means["insertion"] == CONTROL)]
            if len(control):
                ax.axhline(control["value"].iloc[0], color=CONTROL_COLOR, lw=0.9, ls=":", zorder=1)
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


def _runs_and_means(data: pd.DataFrame, color, label: str, axis: DoseAxis, offsets: dict,
                    means: pd.DataFrame) -> None:
    """FacetGrid.map_dataframe's function: one window's runs (squares: the dose-0 controls) and
    the line through its dose levels' means."""
    ax = plt.gca()
    ax.scatter(jittered(axis, data, offsets), data["value"], s=16, color=color,
               marker="s" if label == CONTROL else "o", alpha=0.8, lw=0, zorder=3)
    if label != CONTROL:
        mine = means[(means["model"] == data["model"].iloc[0]) & (means["metric"] == data["metric"].iloc[0])
                     & (means["insertion"] == label)]
        ax.plot(mine["dose"], mine["value"], color=color, lw=1.4, zorder=2)
