"""The readout against training tokens (`emergence`), drawn by `scaling emergence` from its
readout table (scaling.emergence.readout_table: mean, min and max over runs)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from scaling.figures.registry import MissingData, figure
from scaling.figures.style import CHANCE, facet_grid, finish_grid, legend_below, split_order, styled


@figure("emergence", 11, study=False)
@styled
def emergence(table: pd.DataFrame, threshold: float = 0.9) -> Figure:
    """Readout against training tokens (log axis), a panel per split, a line per model (mean
    over runs, band: min to max); chance (0.5) dotted, `threshold` (the emergence budget's)
    dashed."""
    if table.empty:
        raise MissingData("no readout in the trajectory table")
    splits = split_order(table["split"])
    models = sorted(table["model"].unique())
    grid = facet_grid(table, col="split", col_order=splits, hue="model", hue_order=models)
    grid.map_dataframe(_readout_band)
    fig = finish_grid(grid, "Readout against training tokens")
    for ax, split in zip(grid.axes[0], splits):
        ax.axhline(CHANCE, color="0.5", lw=0.8, ls=":")
        ax.axhline(threshold, color="0.5", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0.3, 1.02)
        ax.set_title(split)
        ax.set_xlabel("training tokens")
        ax.set_ylabel("")
        ax.tick_params(labelleft=ax is grid.axes[0, 0])  # one rate scale for the row
    grid.axes[0, 0].set_ylabel("readout (mean over runs,\nband: min to max)")
    handles, labels = grid.axes[0, 0].get_legend_handles_labels()
    legend_below(fig, handles, labels, ncols=len(handles),
                 title=f"model (dotted: chance; dashed: threshold {threshold:g})")
    return fig


def _readout_band(data: pd.DataFrame, color, label: str) -> None:
    """FacetGrid.map_dataframe's function: one model's mean readout and its min-max band."""
    ax = plt.gca()
    rows = data.sort_values("tokens")
    ax.plot(rows["tokens"], rows["mean"], marker="o", color=color, label=label)
    ax.fill_between(rows["tokens"], rows["min"], rows["max"], color=color, alpha=0.2, lw=0)
