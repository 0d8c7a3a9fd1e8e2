"""Transfer figures: the transformer's reduction per eval split (`transfer`) and the dose
effect over training per split (`transfer_trajectory`, or `transfer_at_end`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator

from scaling import splits as split_defs
from scaling import table as results_table
from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    CHANCE,
    CLIPPED,
    DOSE_LABEL,
    MIN_WIDTH_IN,
    DoseAxis,
    chance,
    facet_grid,
    finish_grid,
    label_outer,
    legend_below,
    rate_axis,
    split_order,
    styled,
    tested_doses,
)
from scaling.reports.order import CONTROL, model_order, window_order

VARIANT_COLORS = {"normal": "#1f77b4", "flipped": "#d62728", "shuffled": "0.5"}


@figure("transfer_trajectory", 4, "transfer_table")
@styled
def transfer_trajectory(table: pd.DataFrame) -> Figure:
    """The dose effect (rate at the dose minus the same seed's and world's control) against
    training tokens, per split (columns) and configuration (rows), one line per world
    variant with its 95% t interval (clipped to [-1, 1]: a difference of two rates); the
    readout of the dosed runs below each panel row (where measured: not on your own corpus).
    The intervals come clipped (the registry's transfer_table). When every
    run has one evaluation point (no mid-training checkpoints) there are no lines:
    `transfer_at_end` draws the configurations side by side instead."""
    if table.empty:
        raise MissingData("no paired dose effects (needs dose-0 controls and value-grounded splits)")
    table = _with_config(table)
    if table.groupby(["config", "split", "world_variant"])["tokens"].nunique().max() < 2:
        return transfer_at_end(table)
    configs = sorted(table["config"].unique())
    splits_ = split_order(table["split"].unique())
    measures = ["effect", "readout"] if _has_readout(table) else ["effect"]  # your own corpus has no readout
    panels = _over_training(table, measures)
    variants = sorted(table["world_variant"].unique())
    grid = facet_grid(panels, row="panel", col="split", hue="world_variant",
                      row_order=[f"{c} · {m}" for c in configs for m in measures], col_order=splits_,
                      hue_order=variants, palette={v: VARIANT_COLORS.get(v, "0.3") for v in variants})
    grid.map_dataframe(_over_tokens)
    per = len(measures)
    fig = finish_grid(grid, "Transfer over training: dose effect" + (" and readout" if per == 2 else ""),
                      extra_height=0.9)
    axes = grid.axes
    for r, config in enumerate(configs):
        for c, split in enumerate(splits_):
            ax = axes[per * r, c]
            ax_read = axes[per * r + 1, c] if per == 2 else None
            ax.axhline(0, color="0.45", lw=0.9, ls="--")
            ax.set_ylim(-1, 1)
            ax.set_title(f"{split}\n{config}", fontsize="small")
            if ax_read is not None:
                chance(ax_read)
                rate_axis(ax_read)
                ax_read.set_title("readout (dosed runs)", fontsize="small")
            for a in (ax, ax_read) if ax_read is not None else (ax,):  # a few sci-notation ticks: no run-together labels
                a.xaxis.set_major_locator(MaxNLocator(4))
                a.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        axes[per * r, 0].set_ylabel("effect: dosed - control")
        if per == 2:
            axes[per * r + 1, 0].set_ylabel("readout")
    for ax in axes[-1, :]:
        ax.set_xlabel("training tokens")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        legend_below(fig, handles, labels, ncols=len(handles),
                     title="world (bands: 95% t interval over seeds, clipped to [-1, 1])")
    return fig


def _over_training(table: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """One row per (configuration, measure: the panel row; split; world; tokens): `value`, with
    the dose effect's interval (lower, upper); the readout has none."""
    parts = [table.assign(measure="effect", value=table["estimate"])]
    if "readout" in measures:
        parts.append(table.assign(measure="readout", value=pd.to_numeric(table["readout"], errors="coerce"),
                                  lower=np.nan, upper=np.nan))
    panels = pd.concat(parts, ignore_index=True)
    return panels.assign(panel=panels["config"] + " · " + panels["measure"])


def _over_tokens(data: pd.DataFrame, color, label: str) -> None:
    """FacetGrid.map_dataframe's function: one world's line over training tokens in the current
    panel, the dose effect with its band (circles), the readout dashed (squares)."""
    ax = plt.gca()
    rows = data.sort_values("tokens")
    if rows["measure"].iloc[0] == "effect":
        ax.plot(rows["tokens"], rows["value"], marker="o", color=color, label=label)
        ax.fill_between(rows["tokens"], rows["lower"], rows["upper"], color=color, alpha=0.15, lw=0)
    else:
        ax.plot(rows["tokens"], rows["value"], marker="s", color=color, ls="--")


def _has_readout(table: pd.DataFrame) -> bool:
    return "readout" in table.columns and pd.to_numeric(table["readout"], errors="coerce").notna().any()


def _with_config(table: pd.DataFrame) -> pd.DataFrame:
    """A `config` label per row: model, batch size, dose (and genres where they differ)."""
    genres = table["genres"].astype(str) if "genres" in table.columns else pd.Series("", index=table.index)
    several = genres.nunique() > 1
    return table.assign(config=table["model"].astype(str) + ", batch " + table["batch_size"].map("{:g}".format)
                        + ", dose " + table["aligned_fraction"].map("{:g}".format)
                        + ((", " + genres.str.replace("+", " + ", regex=False)) if several else ""))


@styled
def transfer_at_end(table: pd.DataFrame) -> Figure:
    """One evaluation point per run: the dose effect (95% t interval over seeds, clipped to
    [-1, 1]) and the dosed runs' readout per configuration (rows of each panel, named by what
    differs between them) and split (columns), one marker per world variant: a compact
    stand-in for single-point trajectory panels."""
    names, common = _varying_parts(table["config"])
    table = table.assign(config=table["config"].map(names))
    configs = sorted(table["config"].unique())
    splits_ = split_order(table["split"].unique())
    variants = sorted(table["world_variant"].unique())
    dodge = dict(zip(variants, np.linspace(-0.15, 0.15, len(variants)) if len(variants) > 1 else [0.0]))
    tokens = ", ".join(f"{t:,.0f}" for t in sorted(table["tokens"].unique()))
    measures = ["effect", "readout"] if _has_readout(table) else ["effect"]  # none on your own corpus
    # a panel per (split, measure): the dose effect, and the readout beside it
    panels = pd.concat([rows.assign(panel=f"{split} · {m}", x=rows["estimate" if m == "effect" else "readout"])
                        for split, rows in ((s, table[table["split"] == s]) for s in splits_) for m in measures],
                       ignore_index=True)
    grid = facet_grid(panels, col="panel", col_order=[f"{s} · {m}" for s in splits_ for m in measures], sharey=True,
                      hue="world_variant", hue_order=variants,
                      palette={v: VARIANT_COLORS.get(v, "0.3") for v in variants})
    grid.map_dataframe(_per_configuration, y_of={c: i for i, c in enumerate(configs)}, dodge=dodge)
    fig = finish_grid(grid, f"Transfer at the end of training ({common + ', ' if common else ''}{tokens} tokens; "
                      "no mid-training checkpoints)",
                      size=(max(2.6 * 2 * len(splits_), MIN_WIDTH_IN), 1.2 + 0.35 * len(configs) + 0.8))
    axes, per = grid.axes[0], len(measures)
    for c, split in enumerate(splits_):
        ax, ax_read = axes[per * c], axes[per * c + 1] if per == 2 else None
        ax.axvline(0, color="0.45", lw=0.9, ls="--")
        ax.set_xlim(-1, 1)
        ax.set_title(f"{split}: dose effect", fontsize="small")
        ax.set_xlabel("dosed - control")
        if ax_read is None:
            continue
        ax_read.axvline(CHANCE, color="0.45", lw=0.9, ls="--")
        ax_read.set_xlim(0, 1)
        ax_read.set_title(f"{split}: readout", fontsize="small")
        ax_read.set_xlabel("readout (dosed runs)")
    axes[0].set_ylim(len(configs) - 0.5, -0.5)
    axes[0].yaxis.set_major_locator(FixedLocator(range(len(configs))))
    axes[0].set_yticklabels(configs, fontsize="small")
    for ax in axes:
        ax.grid(axis="y", visible=False)
    handles, labels = axes[0].get_legend_handles_labels()
    legend_below(fig, handles, labels, ncols=len(handles),
                  title="world (bars: 95% t interval over seeds, clipped to [-1, 1])")
    return fig


def _per_configuration(data: pd.DataFrame, color, label: str, y_of: dict, dodge: dict) -> None:
    """FacetGrid.map_dataframe's function: one world's dose effects with their 95% bars (an
    effect panel) or readouts (a readout panel), a row per configuration, dodged per world."""
    ax = plt.gca()
    y = np.array([y_of[k] for k in data["config"]]) + dodge[label]
    x = data["x"].to_numpy(float)
    if data["panel"].iloc[0].endswith("effect"):
        err = [np.nan_to_num(x - data["lower"].to_numpy(float)), np.nan_to_num(data["upper"].to_numpy(float) - x)]
        ax.errorbar(x, y, xerr=err, color=color, marker="o", ls="", capsize=3, label=label)
    else:
        ax.plot(x, y, color=color, marker="s", ls="")


def _varying_parts(labels: pd.Series) -> tuple[dict, str]:
    """Each ", "-joined label cut to the parts that differ between labels, and the parts
    they all share (for the title)."""
    split = {label: label.split(", ") for label in labels.unique()}
    n = min(len(parts) for parts in split.values())
    same = [i for i in range(n) if len({parts[i] for parts in split.values()}) == 1]
    names = {label: ", ".join(p for i, p in enumerate(parts) if i not in same) or label
             for label, parts in split.items()}
    common = ", ".join(next(iter(split.values()))[i] for i in same) if len(split) > 1 else ""
    return names, common


@figure("transfer", 3, "cost", "results", "readout_means")
@styled
def transfer(cost: pd.DataFrame, results: pd.DataFrame, readout: pd.DataFrame) -> Figure:
    """Does alignment transfer? The transformer's reduction vs the dose-0 controls per eval
    split (matched, unseen_pair, held_out) against dose, one column per window (and per model
    and world variant where there are several; 95% CIs paired by seed, clipped to [-1, 1]);
    with a `readout` column, a second row: the share of readout items on which the
    transformer prefers the human stories' value word (0.5: does not know the values), the
    means of scaling.reports.means.readout_means (`readout`; `results`: the runs, for the
    doses tested)."""
    if len(cost):
        cost = cost[np.isfinite(cost["dose"]) & (cost["dose"] > 0) & np.isfinite(cost["reduction"])]
        # counting baselines have no FLOPs and would crowd out the windows: fit.md lists them
        cost = cost[~cost["model"].astype(str).map(results_table.is_counting)]
    if cost.empty or cost["split"].nunique() < 2:
        raise MissingData("needs reductions on two or more eval splits")
    if "world_variant" not in cost.columns:
        cost = cost.assign(world_variant="")
    cost = cost.assign(world_variant=cost["world_variant"].replace("", "normal"))
    split_names = split_order(cost["split"])
    cells = [(m, v, w) for m in model_order(cost) for v in sorted(cost["world_variant"].unique())
             for w in window_order(cost)]
    cells = [c for c in cells if _in_cell(cost, *c).size]
    has_readout = "readout" in results.columns and pd.to_numeric(
        results["readout"], errors="coerce").notna().any()
    axis = DoseAxis.of(cost["dose"])
    colors = dict(zip(split_names, sns.color_palette("colorblind", len(split_names))))
    measures = ["reduction", "readout"] if has_readout else ["reduction"]
    grid = facet_grid(_cells(cost, readout if has_readout else pd.DataFrame(), cells), row="measure", col="cell",
                      row_order=measures, col_order=list(range(len(cells))), hue="split", hue_order=split_names,
                      palette=colors)
    grid.map_dataframe(_against_dose, axis=axis)
    fig = finish_grid(grid, "Transfer across eval splits (transformer)")
    axes = grid.axes
    for j, (model, variant, window) in enumerate(cells):
        ax, mine = axes[0, j], _in_cell(cost, model, variant, window)
        ax.axhline(0, color="0.45", lw=0.9)
        axis.apply(ax, with_zero=False, doses=mine["dose"])
        title = _cell_title(cells, model, variant, window)
        ax.set_title(f"{title}: reduction vs dose 0")
        if has_readout:
            _readout_panel(axes[1, j], axis, _in_cell(results, model, variant, window, controls=True), title)
    label_outer(fig, axes, DOSE_LABEL, None)
    axes[0, 0].set_ylabel("reduction in misalignment rate")
    handles = [Line2D([], [], color=colors[s], marker=split_defs.style(s)[0],
                      ls=split_defs.style(s)[1], label=s) for s in split_names]
    legend_below(fig, handles, ncols=len(handles), title=f"eval split (bars: {CLIPPED})")
    return fig


def _cells(cost: pd.DataFrame, readout: pd.DataFrame, cells: list[tuple[str, str, str]]) -> pd.DataFrame:
    """The panels' rows: per cell (its column), the reductions (measure "reduction": y with
    lower, upper) and the readout means of the cell's window (measure "readout")."""
    parts = []
    for j, cell in enumerate(cells):
        mine = _in_cell(cost, *cell)
        parts.append(pd.DataFrame({"measure": "reduction", "cell": j, "split": mine["split"], "dose": mine["dose"],
                                   "y": mine["reduction"], "lower": mine["lower"], "upper": mine["upper"]}))
        if len(readout):
            model, variant, window = cell
            means = readout[(readout["model"].astype(str) == model) & (readout["world_variant"] == variant)
                            & (readout["window"] == window)]
            parts.append(pd.DataFrame({"measure": "readout", "cell": j, "split": means["split"], "dose": means["dose"],
                                       "y": means["readout"], "lower": np.nan, "upper": np.nan}))
    return pd.concat(parts, ignore_index=True)


def _against_dose(data: pd.DataFrame, color, label: str, axis: DoseAxis) -> None:
    """FacetGrid.map_dataframe's function: one split's reductions against dose with their 95%
    bars, or its readout means (the dose-0 controls at the axis break); the split's marker and
    line style (scaling.splits)."""
    ax = plt.gca()
    marker, ls = split_defs.style(label)
    if data["measure"].iloc[0] == "reduction":
        rows = data.sort_values("dose")
        y = rows["y"].to_numpy(float)
        err = [np.nan_to_num(y - rows["lower"].to_numpy(float)), np.nan_to_num(rows["upper"].to_numpy(float) - y)]
        ax.errorbar(rows["dose"], y, yerr=err, color=color, marker=marker, ls=ls, ms=4, lw=1.2, capsize=2)
    else:
        ax.plot(axis.x(data["dose"]), data["y"], color=color, marker=marker, ls=ls, ms=4, lw=1.2)


def _in_cell(df: pd.DataFrame, model: str, variant: str, window: str, controls: bool = False) -> pd.DataFrame:
    """Rows of one (model, world variant, window) cell; with `controls`, its dose-0 controls too."""
    variants = df["world_variant"].astype(str).replace("", "normal") if "world_variant" in df.columns \
        else pd.Series("normal", index=df.index)
    windows = [window, CONTROL] if controls else [window]
    return df[(df["model"].astype(str) == model) & (variants == variant) & df["insertion"].isin(windows)]


def _cell_title(cells, model: str, variant: str, window: str) -> str:
    """The parts of a cell's name that differ between the figure's cells."""
    parts = [(model, {c[0] for c in cells}), (f"{variant} world", {c[1] for c in cells}),
             (window, {c[2] for c in cells})]
    named = [text for text, values in parts if len(values) > 1]
    return ", ".join(named) or window


def _readout_panel(ax, axis: DoseAxis, rows: pd.DataFrame, title: str) -> None:
    """The readout panel's axes: chance, a tick at every dose the cell's runs were tested at
    (rows of one model: the counting baselines' readout would average in at their own level)."""
    rows = rows[rows["arm"] == "dose"]
    rows = rows.assign(readout=pd.to_numeric(rows["readout"], errors="coerce")).dropna(
        subset=["readout"])
    chance(ax)
    axis.apply(ax, doses=tested_doses(rows))
    rate_axis(ax)
    ax.set_title(f"{title}: readout")
    ax.set_ylabel("readout: share preferring\nthe stories' value")
