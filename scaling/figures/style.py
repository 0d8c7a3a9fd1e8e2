"""The figures' look, shared by every family: rc settings and palettes, the broken log dose
axis (`DoseAxis`), panel grids, legends, and `save`, which writes byte-identical files for the
same inputs (no dates or tool versions in them)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from scaling import splits as split_defs
from scaling.io import replacing
from scaling.reports.order import CONTROL, WINDOW_ORDER

FORMATS = ("png", "svg", "pdf")
DPI = 150
PANEL_IN = (3.8, 3.0)  # width, height of one panel in inches
MIN_WIDTH_IN = 7.6
# Dates and tool versions left out of the files: same inputs, same bytes.
METADATA = {"png": {"Software": None},
            "svg": {"Date": None, "Creator": None},
            "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}}
RC = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.1),
      "svg.hashsalt": "scaling-figures", "svg.fonttype": "path", "pdf.fonttype": 42,
      "figure.dpi": DPI, "savefig.dpi": DPI, "axes.titlesize": "medium"}
CONTROL_COLOR = "0.3"
CHANCE = 0.5
SEED_JITTER_DEC = 0.05  # seeds spread over +-this many decades of dose
ZERO_GAP_DEC = 1.0  # dose 0 drawn this many decades left of the lowest dose
MARGIN_DEC = 0.3
CROWDED_DEC = 0.35  # dose ticks closer than this (decades, on a 4-decade panel) are slanted
MAIN_SPLIT = split_defs.MAIN
SEED_MARKERS = "o^Dvs<>P"
DOSE_LABEL = "aligned dose\n(measured share of training tokens)"
CLIPPED = "95% CI paired by seed, clipped to [-1, 1]"


@dataclass(frozen=True)
class DoseAxis:
    """A log dose axis with dose 0 drawn ZERO_GAP_DEC decades left of the lowest dose."""

    low: float
    high: float

    @classmethod
    def of(cls, doses) -> DoseAxis:
        doses = np.asarray(doses, float)
        positive = doses[np.isfinite(doses) & (doses > 0)]
        if not len(positive):
            return cls(1e-3, 1e-3)
        return cls(float(positive.min()), float(positive.max()))

    @property
    def zero(self) -> float:
        return self.low / 10**ZERO_GAP_DEC

    def x(self, dose) -> np.ndarray:
        dose = np.asarray(dose, float)
        return np.where(dose > 0, dose, self.zero)

    def apply(self, ax, with_zero: bool = True, doses=None) -> None:
        """Log axis; ticks at the panel's `doses` (every dose tested there: a reader reads
        each run's dose off the axis), else at the decades."""
        left = (self.zero if with_zero else self.low) / 10**MARGIN_DEC
        right = self.high * 10**MARGIN_DEC
        ax.set_xscale("log")
        ax.set_xlim(left, right)
        first = self.low / 10**MARGIN_DEC
        decades = 10.0 ** np.arange(math.floor(math.log10(first)), math.ceil(math.log10(right)) + 1)
        majors = [float(d) for d in decades if first <= d <= right]
        if len(majors) < 2:
            majors = sorted({self.low, self.high})
        if doses is not None:
            doses = np.asarray(doses, float)
            majors = sorted({float(d) for d in doses[np.isfinite(doses) & (doses > 0)]}) or majors
        zero = [self.zero] if with_zero else []
        ax.xaxis.set_major_locator(FixedLocator(zero + majors))
        ax.xaxis.set_major_formatter(FuncFormatter(self._format))
        ax.xaxis.set_minor_locator(NullLocator())  # the style draws no tick marks: grid only
        gaps = np.diff(np.log10(majors))
        if doses is not None and len(gaps) and gaps.min() < CROWDED_DEC * self.decades_per_panel():
            ax.tick_params(axis="x", labelrotation=45)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
                label.set_rotation_mode("anchor")
        if with_zero:
            cut = self.low / 10 ** (ZERO_GAP_DEC / 2 + MARGIN_DEC / 2)
            ax.axvline(cut, color="0.75", lw=0.8, ls=":", zorder=0)
            for shift in (-0.04, 0.04):
                x = cut * 10**shift
                ax.plot([x / 10**0.03, x * 10**0.03], [-0.025, 0.025], color="0.2", lw=1,
                        transform=ax.get_xaxis_transform(), clip_on=False)

    def decades_per_panel(self) -> float:
        """Decades the axis spans, in units of 4 (a panel's width holds ~4 decade labels)."""
        span = math.log10(self.high / self.zero) + 2 * MARGIN_DEC
        return span / 4

    def _format(self, value, _pos=None) -> str:
        if math.isclose(value, self.zero, rel_tol=1e-9):
            return "0"
        return dose_text(value)


def dose_text(value: float) -> str:
    """A dose tick label: 2 significant digits, small doses as 3e-4 (no leading zeros)."""
    if value < 1e-3:
        mantissa, exponent = f"{value:.1e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.2g}"


def tested_doses(rows: pd.DataFrame) -> np.ndarray:
    """The positive doses tested in `rows`, one per dose level: the configured dose
    (`nominal_dose`) where the table has it, else the level's mean measured dose."""
    dosed = rows[rows["dose"] > 0]
    if dosed.empty:
        return np.zeros(0)
    if "nominal_dose" in dosed.columns and pd.to_numeric(dosed["nominal_dose"], errors="coerce").notna().all():
        return np.unique(pd.to_numeric(dosed["nominal_dose"]).round(12).to_numpy(float))
    key = "level" if "level" in dosed.columns else "dose"
    return np.unique(dosed.groupby(key)["dose"].mean().round(12).to_numpy(float))


def seed_offsets(seeds) -> dict:
    """Deterministic jitter in decades per seed, spread evenly over +-SEED_JITTER_DEC."""
    unique = sorted({str(s) for s in seeds})
    if len(unique) < 2:
        return dict.fromkeys(unique, 0.0)
    spread = np.linspace(-SEED_JITTER_DEC, SEED_JITTER_DEC, len(unique))
    return dict(zip(unique, spread.tolist()))


def jittered(axis: DoseAxis, rows: pd.DataFrame, offsets: dict) -> np.ndarray:
    shift = np.array([offsets.get(str(s), 0.0) for s in rows["seed"]])
    return axis.x(rows["dose"]) * 10**shift


def window_colors(windows: Sequence[str]) -> dict[str, tuple]:
    """The same color for a window in every figure, whichever windows a figure shows."""
    palette = [c for i, c in enumerate(sns.color_palette("colorblind")) if i != 7]  # 7: gray
    extra = sorted(w for w in windows if w not in WINDOW_ORDER)
    index = {w: i for i, w in enumerate([*WINDOW_ORDER, *extra])}
    return {CONTROL: CONTROL_COLOR, **{w: palette[index[w] % len(palette)] for w in windows}}


def split_order(splits) -> list[str]:
    return split_defs.order(splits)


def with_model(text: str, model: str, models: Sequence[str]) -> str:
    return f"{model}: {text}" if len(models) > 1 and model else text


class _Grid(sns.FacetGrid):
    """FacetGrid without its tight layout passes (at creation and after each map): finish_grid
    lays the figure out once, with constrained layout; each pass measured every text of the
    grid and made the figures about 40% slower."""

    def tight_layout(self, *args, **kwargs):
        return self


def facet_grid(data: pd.DataFrame, sharey: bool = False, **facets) -> sns.FacetGrid:
    """seaborn's FacetGrid over `data` (row, col, hue and their orders in `facets`): panels of
    PANEL_IN, each with its own x axis, y shared only with `sharey`, all spines (the style's
    frame). Map the panels' function with `map_dataframe`, then `finish_grid`."""
    return _Grid(data, sharex=False, sharey=sharey, despine=False, height=PANEL_IN[1],
                 aspect=PANEL_IN[0] / PANEL_IN[1], **facets)


def finish_grid(grid: sns.FacetGrid, title: str, extra_height: float = 0.6,
                size: tuple[float, float] | None = None) -> Figure:
    """The drawn grid's figure: PANEL_IN per panel (at least MIN_WIDTH_IN wide: room for the
    title and the legend) plus `extra_height`, or `size`; constrained layout (the title above,
    the legend below: `legend_below`); out of pyplot's figure registry (FacetGrid opens its
    figure with pyplot) and on an Agg canvas, so that `save` writes the same bytes each time."""
    fig = grid.figure
    plt.close(fig)
    FigureCanvasAgg(fig)
    n_rows, n_cols = grid.axes.shape
    fig.set_size_inches(size or (max(PANEL_IN[0] * n_cols, MIN_WIDTH_IN), PANEL_IN[1] * n_rows + extra_height))
    # rc's subplot parameters (whatever moved them), so constrained layout starts from the same
    # place on every draw, as for a Figure.subplots grid
    fig.subplots_adjust(**{k: mpl.rcParams[f"figure.subplot.{k}"]
                           for k in ("left", "right", "bottom", "top", "wspace", "hspace")})
    fig.set_layout_engine("constrained")
    fig.suptitle(title)
    return fig


def legend_below(fig: Figure, handles, labels=None, ncols: int = 1, title: str | None = None):
    """The figure's legend below its panels, in as many columns (at most `ncols`) as fit
    inside the canvas: a wide legend on a narrow figure wraps instead of being cut."""
    labels = labels if labels is not None else [h.get_label() for h in handles]
    renderer = fig.canvas.get_renderer()
    for n in range(max(ncols, 1), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=n, frameon=False,
                            fontsize="small", title=title, title_fontsize="small")
        if n == 1 or legend.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return legend
        legend.remove()
    return legend


def chance(ax) -> None:
    ax.axhline(CHANCE, color="0.45", lw=0.9, ls="--", zorder=1)


def rate_axis(ax) -> None:
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))


def label_outer(fig: Figure, axes: np.ndarray, xlabel: str, ylabel: str | None) -> None:
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel)
    if ylabel:
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel)


def styled(fn: Callable) -> Callable:
    """Draw under the package's rc settings without touching the caller's."""

    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


def save(fig: Figure, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Write stem.FORMAT for each format, atomically and without dates or versions."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with mpl.rc_context(RC):
        if fig.get_layout_engine() is not None:
            # Constrained layout moves things a little on every draw: lay out once, then keep
            # it, so every format and every save of this figure has the same geometry.
            fig.draw_without_rendering()
            fig.set_layout_engine("none")
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            with replacing(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=DPI, metadata=METADATA[fmt])
            paths.append(path)
    return paths
