"""Misalignment against training tokens, one line per dose (`trajectory`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scaling import table as results_table
from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    DOSE_LABEL,
    chance,
    facet_grid,
    finish_grid,
    label_outer,
    legend_below,
    rate_axis,
    split_order,
    styled,
    window_colors,
    with_model,
)
from scaling.reports.order import CONTROL, model_order, window_order


@figure("trajectory", 7, "trajectory", "trajectory_means")
@styled
def trajectory(traj: pd.DataFrame, means: pd.DataFrame) -> Figure:
    """Misalignment against training tokens: one line per dose (seed mean with its 95% t
    interval: scaling.reports.means.trajectory_means), colored by dose on a log scale, dose-0
    controls dashed; rows per model and window, columns per split. `traj`: the runs' points
    (the windows, the dose colors and the insertion window spans)."""
    traj = traj[(traj["arm"] == "dose") & np.isfinite(traj["rate"])] if not traj.empty else traj
    if traj.empty:
        raise MissingData("no run has an eval.json trajectory")
    run_key = ["run_id"] if "run_id" in traj.columns else ["model", "insertion", "aligned_fraction", "seed"]
    if traj.groupby(run_key)["tokens"].nunique().max() < 2:
        raise MissingData("every run has one evaluation point, at the end of training: a line needs "
                          "mid-training points (eval.checkpoints); fit.md and dose_response.png "
                          "show the final rates")
    traj = traj.assign(level=results_table.dose_level(traj))
    measured = traj["dose"].notna().all()
    traj = traj.assign(color_dose=traj["dose"] if measured else traj["aligned_fraction"])
    windows, split_names, models = window_order(traj), split_order(traj["split"]), model_order(traj)
    cells = [(m, w) for m in models for w in windows] or [(m, CONTROL) for m in models]
    positive = traj.loc[traj["color_dose"] > 0, "color_dose"]
    norm = LogNorm(positive.min(), positive.max()) if len(positive) else LogNorm(1e-3, 1e-1)
    if norm.vmin == norm.vmax:
        norm = LogNorm(norm.vmin / 2, norm.vmax * 2)
    cmap = sns.color_palette("viridis", as_cmap=True)
    # a row per (model, window) cell: its window's lines and the dose-0 controls' (in every cell)
    panels = pd.concat([means[(means["model"] == model) & means["insertion"].isin([window, CONTROL])].assign(cell=i)
                        for i, (model, window) in enumerate(cells)], ignore_index=True)
    grid = facet_grid(panels, row="cell", col="split", row_order=list(range(len(cells))), col_order=split_names,
                      sharey=True)
    grid.map_dataframe(_dose_lines, cells=cells, norm=norm, cmap=cmap)
    fig = finish_grid(grid, "Misalignment during training")
    axes = grid.axes
    for i, (model, window) in enumerate(cells):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            rows = traj[(traj["model"] == model) & (traj["split"] == split)
                        & traj["insertion"].isin([window, CONTROL])]
            span = rows.loc[rows["insertion"] == window, ["window_start_tokens", "window_end_tokens"]]
            if len(span) and span.notna().all(axis=None):
                ax.axvspan(*span.median(), color=window_colors([window])[window], alpha=0.1, lw=0,
                           zorder=0)
            chance(ax)
            rate_axis(ax)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
            ax.set_xlim(left=0)
            ax.set_title(with_model(f"{window} · {split}", model, models))
    label_outer(fig, axes, "training tokens", "misalignment rate (mean over seeds)")
    label = DOSE_LABEL if measured else "aligned_fraction\n(nominal share of window tokens)"
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes, label=label, shrink=0.9)
    legend_below(fig, [Line2D([], [], color="black", ls="--", label="dose 0 (control)"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)"),
                        Patch(color="0.5", alpha=0.2, lw=0, label="insertion window"),
                        Patch(color="0.3", alpha=0.15, lw=0,
                              label="95% CI over seeds (control, top dose)")], ncols=4)
    return fig


def _dose_lines(data: pd.DataFrame, color, cells: list[tuple[str, str]], norm: LogNorm, cmap) -> None:
    """FacetGrid.map_dataframe's function: a panel's seed-mean lines, one per dose level colored
    by dose (controls black dashed), with t bands for the controls and the top dose only."""
    ax = plt.gca()
    window = cells[int(data["cell"].iloc[0])][1]
    top = data.loc[data["insertion"] == window, "level"].max()
    for (insertion, level), line in data.groupby(["insertion", "level"], sort=True):
        dose = line["color_dose"].mean()
        control = insertion == CONTROL or not dose > 0
        color = "black" if control else cmap(norm(dose))
        ax.plot(line["tokens"], line["rate"], color=color, lw=1.4 if control else 1.6,
                ls="--" if control else "-", zorder=3 if control else 2)
        if control or level == top:  # bands for every dose would hide each other
            ax.fill_between(line["tokens"], line["lower"].to_numpy(float), line["upper"].to_numpy(float),
                            color=color, alpha=0.15, lw=0, zorder=1)
