"""Dose-response figures: misalignment against the measured dose per window (`dose_response`)
and per eval split (`splits`), runs per seed and fit.json's curve with its band."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scaling.errors import UsageError
from scaling.figures.fits import choose_fit, fit_label, fitted_curve, halving_dose
from scaling.figures.registry import MissingData, figure
from scaling.figures.style import (
    CONTROL_COLOR,
    DOSE_LABEL,
    MAIN_SPLIT,
    MARGIN_DEC,
    SEED_MARKERS,
    DoseAxis,
    chance,
    facet_grid,
    finish_grid,
    jittered,
    label_outer,
    legend_below,
    rate_axis,
    seed_offsets,
    split_order,
    styled,
    tested_doses,
    window_colors,
    with_model,
)
from scaling.reports.order import CONTROL, model_order, window_order


def _dose_rows(results: pd.DataFrame) -> pd.DataFrame:
    rows = results[(results["arm"] == "dose") & np.isfinite(results["rate"])]
    if rows.empty:
        raise MissingData("no finished dose-arm run with a misalignment rate")
    if not (rows["dose"] > 0).any():
        raise MissingData("no dose-arm run with an aligned dose > 0")
    return rows


def _draw_dose_panel(ax, axis: DoseAxis, rows: pd.DataFrame, entry: dict | None | bool, color,
                     offsets: dict) -> str:
    """Runs, controls and the fitted curve of one (model, split, window); returns the fit note.
    entry: the fit.json entry to draw, None if none is usable, False without a fit.json."""
    dosed, controls = rows[rows["dose"] > 0], rows[rows["dose"] == 0]
    note = "no usable fit" if entry is not False else "no fit.json"
    if entry:
        try:
            band, at_zero = fitted_curve(entry)
        except (UsageError, ValueError, TypeError, KeyError, IndexError) as e:
            note = f"fit not drawn ({type(e).__name__})"
        else:
            ax.fill_between(band["dose"], band["lower"], band["upper"], color=color, alpha=0.2,
                            lw=0, zorder=2)
            ax.plot(band["dose"], band["fit"], color=color, lw=1.8, zorder=3)
            if at_zero is not None:
                x = axis.zero * 10 ** np.array([-0.12, 0.12])
                ax.fill_between(x, at_zero["lower"].iloc[0], at_zero["upper"].iloc[0],
                                color=color, alpha=0.2, lw=0, zorder=2)
                ax.plot(x, [at_zero["fit"].iloc[0]] * 2, color=color, lw=1.8, zorder=3)
            _mark_halving_dose(ax, axis, entry, color)
            note = fit_label(entry)
            if at_zero is not None and not controls.empty:
                mean = float(controls["rate"].mean())
                if not at_zero["lower"].iloc[0] <= mean <= at_zero["upper"].iloc[0]:
                    note += "\n(its dose-0 band misses the controls' mean)"
    _draw_seeds(ax, axis, dosed, controls, color, offsets)
    chance(ax)
    axis.apply(ax, doses=tested_doses(rows))
    rate_axis(ax)
    return note


def _draw_seeds(ax, axis: DoseAxis, dosed: pd.DataFrame, controls: pd.DataFrame, color,
                offsets: dict) -> None:
    """Runs with one marker per seed and a thin line joining each seed's doses."""
    for seed, marker in zip(sorted(offsets), SEED_MARKERS * 4):
        mine = dosed[dosed["seed"].astype(str) == seed].sort_values("dose")
        theirs = controls[controls["seed"].astype(str) == seed]
        x = jittered(axis, mine, offsets)
        ax.plot(x, mine["rate"], color=color, lw=0.5, alpha=0.5, zorder=3)
        ax.scatter(x, mine["rate"], s=18, marker=marker, color=color, alpha=0.85, lw=0.4,
                   edgecolor="white", zorder=4)
        ax.scatter(jittered(axis, theirs, offsets), theirs["rate"], s=18, marker=marker,
                   color=CONTROL_COLOR, alpha=0.8, lw=0, zorder=4)


def _mark_halving_dose(ax, axis: DoseAxis, entry: dict, color) -> None:
    """The control-relative ED50 on the dose axis: its CI as a bar, the estimate as a tick; only
    where scaling.stats.halving gives a number (an entry without it: where the ED50 is inside the
    doses). The bar stops at the axis break and at the right edge (an open end there)."""
    if entry.get("halving") and entry["halving"].get("status") != "estimate":
        return
    ed = halving_dose(entry)
    if not ed or ed.get("extrapolated"):  # the title says which side; a bar would span the axis
        return
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    left, right = axis.low / 10**MARGIN_DEC, axis.high * 10**MARGIN_DEC
    ax.plot([max(ed["lower"], left), min(ed["upper"], right)], [0.03, 0.03], color=color, lw=3, alpha=0.6,
            transform=transform, solid_capstyle="butt", zorder=5)
    ax.plot([ed["estimate"]] * 2, [0.0, 0.07], color=color, lw=1.5, transform=transform, zorder=5)
    ax.axvline(ed["estimate"], color=color, lw=0.7, ls=":", zorder=1)


def _dose_legend(fig: Figure, color, ncols: int) -> None:
    handles = [Line2D([], [], ls="", marker="o", color=color,
                      label="run (marker: seed, thin line joins a seed's doses; color: window)"),
               Line2D([], [], color=color, lw=3, alpha=0.6,
                      label="halving dose (control-relative ED50) with 95% CI"),
               Line2D([], [], ls="", marker="o", color=CONTROL_COLOR, label="dose-0 control run (grey)"),
               Line2D([], [], color=color, lw=1.8,
                      label="fit named in the panel title; band: 95% CI (robust SE)"),
               Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)")]
    legend_below(fig, handles, ncols=ncols)


def _dose_grid(results: pd.DataFrame, fits: Sequence[dict], panels: list[list[dict]],
               title: str) -> Figure:
    """One panel per {model, split, insertion} cell of `panels` (rows of columns): a FacetGrid
    over the cells' rows (each cell: its window's runs and the dose-0 controls), a cell
    without rows hidden."""
    axis = DoseAxis.of(results["dose"])
    offsets = seed_offsets(results["seed"])
    colors = window_colors(window_order(results))
    models = model_order(results)
    n_rows, n_cols = len(panels), len(panels[0])
    notes: dict[tuple[int, int], str] = {}
    grid = facet_grid(_cell_rows(results, panels), row="panel_row", col="panel_col", sharey=True,
                      row_order=list(range(n_rows)), col_order=list(range(n_cols)))
    grid.map_dataframe(_dose_cell, panels=panels, fits=fits, axis=axis, colors=colors, offsets=offsets,
                       notes=notes)
    fig = finish_grid(grid, title)
    axes = grid.axes
    for i, row in enumerate(panels):
        for j, cell in enumerate(row):
            if (i, j) not in notes:
                axes[i, j].set_title("")  # FacetGrid's
                axes[i, j].set_visible(False)
                continue
            where = with_model(f"{cell['insertion']} · {cell['split']}", cell["model"], models)
            axes[i, j].set_title(f"{where}\n{notes[i, j]}")
    label_outer(fig, axes, DOSE_LABEL, "misalignment rate")
    _dose_legend(fig, "0.55", ncols=2 if axes.shape[1] < 3 else 4)
    return fig


def _cell_rows(results: pd.DataFrame, panels: list[list[dict]]) -> pd.DataFrame:
    """The rows of every cell (its model and split; its window and the dose-0 controls, which
    so appear in each window's cell), with the cell's place (panel_row, panel_col)."""
    parts = [results[(results["model"] == cell["model"]) & (results["split"] == cell["split"])
                     & results["insertion"].isin([cell["insertion"], CONTROL])].assign(panel_row=i, panel_col=j)
             for i, row in enumerate(panels) for j, cell in enumerate(row)]
    return pd.concat(parts, ignore_index=True)


def _dose_cell(data: pd.DataFrame, color, panels: list[list[dict]], fits: Sequence[dict], axis: DoseAxis,
               colors: dict, offsets: dict, notes: dict, **_) -> None:
    """FacetGrid.map_dataframe's function: one cell's runs, controls and fitted curve; the fit
    note (its title's second line) goes to `notes`."""
    i, j = int(data["panel_row"].iloc[0]), int(data["panel_col"].iloc[0])
    cell = panels[i][j]
    entry = choose_fit(fits, cell) if fits else False
    notes[i, j] = _draw_dose_panel(plt.gca(), axis, data, entry, colors[cell["insertion"]], offsets)


@figure("dose_response", 1, "results", "fits")
@styled
def dose_response(results: pd.DataFrame, fits: Sequence[dict] = (), split: str = MAIN_SPLIT) -> Figure:
    """Misalignment vs dose per insertion window (columns) and model (rows) on one split."""
    rows = _dose_rows(results)
    if split not in set(rows["split"]):
        split = split_order(rows["split"])[0]
    rows = rows[rows["split"] == split]
    windows = window_order(rows)
    if not windows:
        raise MissingData("no insertion window with an aligned dose")
    panels = [[{"model": m, "split": split, "insertion": w} for w in windows] for m in model_order(rows)]
    return _dose_grid(rows, fits, panels, f"Misalignment vs aligned dose — split {split}")


@figure("splits", 2, "results", "fits")
@styled
def splits(results: pd.DataFrame, fits: Sequence[dict] = ()) -> Figure:
    """Matched vs held-out families (columns) per model and insertion window (rows)."""
    rows = _dose_rows(results)
    split_names = split_order(rows["split"])
    if len(split_names) < 2:
        raise MissingData(f"only one eval split ({split_names[0]})")
    panels = [[{"model": m, "split": s, "insertion": w} for s in split_names]
              for m in model_order(rows) for w in window_order(rows)]
    return _dose_grid(rows, fits, panels, f"Misalignment by eval split: {', '.join(split_names)}")
