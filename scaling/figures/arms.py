"""The interventions compared (`arms`): control, each window's top dose, the other arms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator

from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    chance,
    facet_grid,
    finish_grid,
    legend_below,
    rate_axis,
    seed_offsets,
    split_order,
    styled,
    window_colors,
    with_model,
)
from scaling.reports.order import CONTROL, model_order


@figure("arms", 10, "arms", "arm_means")
@styled
def arms(table: pd.DataFrame, means: pd.DataFrame) -> Figure:
    """Misalignment of the control, each window's top dose and the filtered/misaligned arms,
    per split (columns) and model (rows): runs as dots (scaling.reports.arms), seed mean with
    a 95% t interval (scaling.reports.means.arm_means)."""
    if table.empty or (table["arm"] == "dose").all():
        raise MissingData("no filtered / misaligned arm runs")
    split_names, models = split_order(table["split"]), model_order(table)
    labels = list(dict.fromkeys(table["label"]))
    windows = [k for k in dict.fromkeys(table["key"]) if k != CONTROL and not k.startswith("arm:")]
    arm_keys = [k for k in dict.fromkeys(table["key"]) if k.startswith("arm:")]
    colors = {**window_colors(windows),
              **dict(zip(arm_keys, sns.color_palette("dark", len(arm_keys) + 3)[3:]))}
    offsets = seed_offsets(table["seed"])
    keys = dict(zip(table["label"], table["key"]))
    grid = facet_grid(table, row="model", col="split", row_order=models, col_order=split_names, sharey=True,
                      hue="label", hue_order=labels, palette={label: colors[keys[label]] for label in labels})
    grid.map_dataframe(_runs_and_mean, labels=labels, offsets=offsets, means=means)
    fig = finish_grid(grid, "Interventions compared", extra_height=0.4)
    axes = grid.axes
    for i, model in enumerate(models):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            chance(ax)
            rate_axis(ax)
            ax.set_xlim(-0.6, len(labels) - 0.3)
            ax.xaxis.set_major_locator(FixedLocator(range(len(labels))))
            ax.set_xticklabels(labels, rotation=35, ha="right", rotation_mode="anchor",
                               fontsize="small")
            ax.grid(axis="x", visible=False)
            ax.set_title(with_model(f"{split} families", model, models))
    for ax in axes[:, 0]:
        ax.set_ylabel("misalignment rate")
    legend_below(fig, [Line2D([], [], ls="", marker="o", color="0.5", alpha=0.55, label="run (one per seed)"),
                        Line2D([], [], marker="D", color="0.2", label="seed mean, 95% t interval"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)")], ncols=3)
    return fig


def _runs_and_mean(data: pd.DataFrame, color, label: str, labels: list[str], offsets: dict,
                   means: pd.DataFrame) -> None:
    """FacetGrid.map_dataframe's function: one arm's runs as dots at its place on the x axis
    (spread by seed) and their mean with its 95% t interval beside them."""
    ax = plt.gca()
    x = labels.index(label)
    jitter = np.array([offsets[str(s)] for s in data["seed"]]) * 3
    ax.scatter(x + jitter, data["rate"], s=16, color=color, alpha=0.55, lw=0, zorder=3)
    mean, half = means.loc[(means["model"] == data["model"].iloc[0]) & (means["split"] == data["split"].iloc[0])
                           & (means["label"] == label), ["rate", "half"]].iloc[0]
    half = None if half is None or pd.isna(half) else half
    ax.errorbar([x + 0.25], [mean], yerr=None if half is None else [[half], [half]],
                color=color, marker="D", ms=5, lw=1.6, capsize=3, zorder=4)
