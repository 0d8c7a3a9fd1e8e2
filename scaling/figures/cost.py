"""Cost-effectiveness of the aligned dose (`cost_effectiveness`), drawn from
scaling.reports.cost's table."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scaling import table as results_table
from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    CLIPPED,
    DOSE_LABEL,
    DoseAxis,
    facet_grid,
    finish_grid,
    label_outer,
    legend_below,
    split_order,
    styled,
    window_colors,
    with_model,
)
from scaling.reports.cost import MEASURES
from scaling.reports.order import model_order, window_order

# measure -> (estimate, lower, upper, label): paired-by-seed intervals (scaling.reports.cost)
COSTS = {measure: (*columns, label) for (measure, columns), label in zip(MEASURES.items(), (
    "reduction in misalignment rate", "reduction per aligned token",
    "reduction per marginal FLOP\n(aligned tokens x FLOPs/token)"))}


@figure("cost_effectiveness", 9, "cost")
@styled
def cost_effectiveness(cost: pd.DataFrame) -> Figure:
    """Reduction vs the dose-0 controls, and per aligned token and per marginal FLOP (columns),
    against dose, per window (color) and split (rows), for the transformer models. Bars: 95% CIs paired by seed. Linear
    scales with a zero line: a dose that does not help shows as zero or negative."""
    if len(cost):
        cost = cost[np.isfinite(cost["dose"]) & (cost["dose"] > 0) & np.isfinite(cost["reduction"])]
        # counting baselines have no FLOPs and would crowd out the windows: fit.md lists them
        cost = cost[~cost["model"].astype(str).map(results_table.is_counting)]
    if cost.empty:
        raise MissingData("no cost-effectiveness rows (needs dose-0 controls and dosed runs)")
    measures = [k for k, cols in COSTS.items() if cost[cols[0]].notna().any()]
    split_names, models, windows = split_order(cost["split"]), model_order(cost), window_order(cost)
    series = [(m, w) for m in models for w in windows]
    colors, markers = window_colors(windows), dict(zip(models, "osD^v"))
    dodge = dict(zip(series, np.linspace(-0.04, 0.04, len(series)) if len(series) > 1 else [0.0]))
    axis = DoseAxis.of(cost["dose"])
    grid = facet_grid(_by_measure(cost, measures, series), row="split", col="measure", row_order=split_names,
                      col_order=measures, hue="series", hue_order=[f"{m} · {w}" for m, w in series],
                      palette={f"{m} · {w}": colors[w] for m, w in series})
    grid.map_dataframe(_with_bars, markers=markers, dodge={f"{m} · {w}": d for (m, w), d in dodge.items()})
    fig = finish_grid(grid, "Cost-effectiveness of the aligned dose (vs dose-0 controls)")
    axes = grid.axes
    for j, measure in enumerate(measures):
        label = COSTS[measure][3]
        for i, split in enumerate(split_names):
            ax = axes[i, j]
            ax.axhline(0, color="0.45", lw=0.9)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            axis.apply(ax, with_zero=False, doses=cost.loc[cost["split"] == split, "dose"])
            ax.set_title(f"{split}: {label.splitlines()[0]}")
            ax.set_ylabel(label)  # each column its own measure
    label_outer(fig, axes, DOSE_LABEL, None)
    handles = [Line2D([], [], color=colors[w], marker=markers[m], label=with_model(w, m, models))
               for m, w in series]
    legend_below(fig, handles, ncols=len(handles), title=f"insertion window (bars: {CLIPPED})")
    return fig


def _by_measure(cost: pd.DataFrame, measures: list[str], series: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per (measure, cost row) where the measure is known: `y` with its interval
    (`lower`, `upper`), `series` naming the row's model and window."""
    parts = []
    for measure in measures:
        col, low_col, high_col, _ = COSTS[measure]
        rows = cost[cost[col].notna()]
        parts.append(pd.DataFrame({"measure": measure, "split": rows["split"], "model": rows["model"],
                                   "series": rows["model"].astype(str) + " · " + rows["insertion"].astype(str),
                                   "dose": rows["dose"], "y": rows[col], "lower": rows[low_col],
                                   "upper": rows[high_col]}))
    return pd.concat(parts, ignore_index=True)


def _with_bars(data: pd.DataFrame, color, label: str, markers: dict, dodge: dict) -> None:
    """FacetGrid.map_dataframe's function: one (model, window)'s measure against dose with its
    95% bars, dodged a little along the log dose axis; the marker says the model."""
    rows = data.sort_values("dose")
    x = rows["dose"].to_numpy(float) * 10 ** dodge[label]
    y = rows["y"].to_numpy(float)
    low, high = y - rows["lower"].to_numpy(float), rows["upper"].to_numpy(float) - y
    plt.gca().errorbar(x, y, yerr=[np.nan_to_num(low), np.nan_to_num(high)], color=color,
                       marker=markers[rows["model"].iloc[0]], ms=4, lw=1.2, capsize=2)
