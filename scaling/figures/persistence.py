"""Post-training figures: misalignment after post-training against the pretraining dose
(`persistence`) and during post-training per dose (`resistance`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    DoseAxis,
    chance,
    facet_grid,
    finish_grid,
    label_outer,
    legend_below,
    rate_axis,
    split_order,
    styled,
    with_model,
)
from scaling.reports.means import BEFORE
from scaling.reports.order import model_order

KIND_COLORS = {"none": "black", "sft": "#2ca02c", "harmless_rl": "#1f77b4", "helpful_rl": "#d62728",
               "misaligned_ft": "#9467bd"}


@figure("persistence", 5, "persistence_means")
@styled
def persistence(means: pd.DataFrame) -> Figure:
    """Misalignment after post-training against the pretraining dose, one line per
    post-training kind (seed means, 95% t band over blocks), and before post-training (the
    end of pretraining, dashed grey); columns per split. RL trained on part of the families
    is left out here (its rl_trained/rl_other rows are in persistence.md). `means`:
    scaling.reports.means.persistence_means."""
    if means.empty:
        raise MissingData("needs runs of several post-training kinds (results.csv post_training)")
    from scaling.reports.persistence import KIND_ORDER

    kinds = sorted(set(means["kind"]) - {BEFORE}, key=lambda k: (KIND_ORDER.index(k.split(",")[0])
                                                                 if k.split(",")[0] in KIND_ORDER else 99, k))
    split_names, models = split_order(means["split"].unique()), model_order(means)
    axis = DoseAxis.of(means["level"])
    series = [*kinds, BEFORE]
    grid = facet_grid(means, row="model", col="split", row_order=models, col_order=split_names, sharey=True,
                      hue="kind", hue_order=series,
                      palette={k: "0.55" if k == BEFORE else KIND_COLORS.get(k.split(",")[0], "0.3") for k in series})
    grid.map_dataframe(_by_pretraining_dose, axis=axis)
    fig = finish_grid(grid, "Misalignment after post-training vs pretraining dose")
    axes = grid.axes
    for i, model in enumerate(models):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            rows = means[(means["model"] == model) & (means["split"] == split)]
            chance(ax)
            rate_axis(ax)
            axis.apply(ax, doses=rows["level"])
            ax.set_title(with_model(split, model, models))
    label_outer(fig, axes, "aligned dose in pretraining\n(measured share of pretraining tokens)",
                 "misalignment rate (mean over seeds)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    legend_below(fig, handles, labels, ncols=len(handles),
                  title="post-training (bands: 95% t interval over seeds)")
    return fig


def _by_pretraining_dose(data: pd.DataFrame, color, label: str, axis: DoseAxis) -> None:
    """FacetGrid.map_dataframe's function: one post-training kind's (or, dashed, the end of
    pretraining's) seed means against the pretraining dose, with their t band; a kind's
    shorter post-training dotted."""
    ax = plt.gca()
    x = axis.x(data["level"])
    ax.plot(x, data["rate"], color=color, marker="o", ms=3.5, lw=1.5,
            ls="--" if label == BEFORE else (":" if data["shorter"].any() else "-"), label=label, zorder=3)
    ax.fill_between(x, data["lower"].to_numpy(float), data["upper"].to_numpy(float),
                    color=color, alpha=0.12, lw=0, zorder=1)


@figure("resistance", 6, "resistance_means")
@styled
def resistance(means: pd.DataFrame) -> Figure:
    """Misalignment against post-training steps (0 = end of pretraining; eval.checkpoints),
    one line per pretraining dose (seed mean, dose-0 controls black dashed; 95% t band over
    blocks for the control and the top dose where they have >= 3 seeds), panels per direction (post_training kind and
    RL scope; columns) and split (rows); a symlog step axis. persistence.md's resistance
    table fits these curves (scaling.reports.resistance); `means`: their seed means,
    scaling.reports.means.resistance_means."""
    from scaling.reports.persistence import KIND_ORDER

    if means.empty:
        raise MissingData("needs misalignment at several post-training steps (eval.checkpoints "
                          "after the end of pretraining)")
    pts = means
    directions = sorted(pts["direction"].unique(), key=lambda d: (
        KIND_ORDER.index(d.split(" ")[0]) if d.split(" ")[0] in KIND_ORDER else 99, d))
    split_names, models = split_order(pts["split"].unique()), model_order(pts)
    positive = pts.loc[pts["level"] > 0, "level"]
    norm = LogNorm(positive.min(), positive.max()) if len(positive) else LogNorm(1e-3, 1e-1)
    if norm.vmin == norm.vmax:
        norm = LogNorm(norm.vmin / 2, norm.vmax * 2)
    cmap = sns.color_palette("viridis", as_cmap=True)
    steps = sorted(pts["post_step"].unique())
    rows = [(model, split) for model in models for split in split_names]  # a panel row per (model, split)
    grid = facet_grid(pts.assign(panel_row=[rows.index(k) if k in rows else -1 for k in zip(pts["model"], pts["split"])]),
                      row="panel_row", col="direction", row_order=list(range(len(rows))), col_order=directions,
                      sharey=True)
    grid.map_dataframe(_dose_lines_over_steps, norm=norm, cmap=cmap)
    fig = finish_grid(grid, "Misalignment during post-training, per pretraining dose")
    axes = grid.axes
    for m, model in enumerate(models):
        for i, split in enumerate(split_names):
            for j, direction in enumerate(directions):
                ax = axes[m * len(split_names) + i, j]
                cell = pts[(pts["model"] == model) & (pts["split"] == split) & (pts["direction"] == direction)]
                if cell.empty:  # e.g. rl_trained / rl_other of a direction not trained on part of the families
                    ax.axis("off")
                    ax.set_title("")  # FacetGrid's
                    ax.text(0.5, 0.5, f"{direction} · {split}:\nnot measured", ha="center", va="center",
                            fontsize="small", color="0.4", transform=ax.transAxes)
                    continue
                chance(ax)
                rate_axis(ax)
                ax.set_xscale("symlog", linthresh=1.0)
                ax.xaxis.set_major_locator(FixedLocator(steps))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlim(0, max(steps) * 1.1)
                ax.set_title(with_model(f"{direction} · {split}", model, models), fontsize="small")
    label_outer(fig, axes, "post-training steps", "misalignment rate (mean over seeds)")
    for row in axes:  # a row whose first panels are "not measured": its first drawn panel reads the rates
        drawn = [ax for ax in row if ax.axison]
        if drawn and drawn[0] is not row[0]:
            drawn[0].tick_params(labelleft=True)
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes, label="aligned dose in pretraining", shrink=0.9)
    legend_below(fig, [Line2D([], [], color="black", ls="--", label="dose 0 (control)"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)"),
                        Patch(color="0.3", alpha=0.15, lw=0,
                              label="95% CI over seeds (control, top dose; drawn with >= 3 seeds)")],
                  ncols=3)
    return fig


def _dose_lines_over_steps(data: pd.DataFrame, color, norm: LogNorm, cmap) -> None:
    """FacetGrid.map_dataframe's function: a panel's seed-mean lines over post-training steps,
    one per pretraining dose (controls black dashed); t bands for the controls and the top dose
    where they have >= 3 seeds."""
    ax = plt.gca()
    top = data["level"].max()
    for level, line in data.groupby("level", sort=True):
        control = not level > 0
        color = "black" if control else cmap(norm(level))
        ax.plot(line["post_step"], line["rate"], color=color, marker="o", ms=3, lw=1.5,
                ls="--" if control else "-", zorder=3 if control else 2)
        if (control or level == top) and line["seeds"].min() >= 3:  # t on 1 df is no band
            ax.fill_between(line["post_step"], line["lower"].to_numpy(float),
                            line["upper"].to_numpy(float), color=color, alpha=0.15, lw=0, zorder=1)
