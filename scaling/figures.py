"""The study's figures: `scaling figures DIR [--fit FIT.json] [--out DIR/figures]`.

Reads DIR/results.csv and DIR/trajectory.csv (see scaling.results; without trajectory.csv
the runs' eval.json files), DIR/fit.json (scaling.fit; DIR/fits/fit.json also found). Each figure is one
function from tidy tables to a matplotlib Figure, registered by `@figure(NAME, RANK, INPUTS...)`
with the `Inputs` fields it is drawn from; `make_all` draws and saves them all as OUT/NAME.FORMAT
(FIGURES, in this order):

  dose_response       misalignment vs measured dose per insertion window, matched families:
                      runs per seed, dose-0 controls at a "0" tick left of a broken log axis,
                      the fitted curve with its 95% band (robust SE) from fit.json, not refitted
  splits              the same for matched and held-out families side by side
  transfer            the transformer's reduction per eval split and its readout
  transfer_trajectory the dose effect over training per split (one evaluation per run: the
                      configurations side by side instead)
  persistence         misalignment after post-training against the pretraining dose, one
                      line per post-training kind, and before it (dashed)
  resistance          misalignment against post-training steps, one line per dose, panels
                      per direction and split (persistence.md's resistance table)
  trajectory          misalignment against training tokens, one line per dose (seed mean);
                      skipped when no run has mid-training points (eval.checkpoints)
  capability          alignment tax: val_loss and fact_recall against dose
  cost_effectiveness  reduction vs the dose-0 controls, per aligned token and per FLOP
  arms                control, each window's top dose, filtered / misaligned arms

Only rows with status "ok" and a finite dose are drawn; a figure without data is skipped with
a note. Panels of the transformer's quantities (transfer, cost-effectiveness) leave the counting
baselines out. Intervals of rate differences (reductions, dose effects) are clipped to [-1, 1],
and the figures say so. A dose panel's title says its halving dose as fit.json's "halving"
entry does (scaling.stats.halving: "no dose trend", "the curve does not fit the dose levels",
the side of the doses, a number with its interval), and only a number is marked on the dose
axis (its bar stops at the axis break); a panel whose dose-0 band misses its controls' mean
says so. With an older fit.json (no "halving"), a halving-dose bound above 1 or more than 100x
below the lowest dose tested is printed open ("[0.0017, ∞)") and a curve that rises from its
dose-0 level is titled "no halving dose (curve rises)". Dose axes have a tick at every dose
tested. Output is deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

import scaling.stats as fitlib
from scaling import splits as split_defs
from scaling import table as results_table
from scaling.errors import UsageError
from scaling.io import replacing
from scaling.results import read_trajectory
from scaling.stats.halving import text as halving_text
from scaling.stats.paired import PairedContrast, paired_contrast
from scaling.stats.results import rises_text

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
CONTROL = "control"
# Presets in training order (scaling.config); a window's color is fixed by its place here.
WINDOW_ORDER = ("early", "throughout", "midtraining", "window", "continued", "finetune")
CONTROL_COLOR = "0.3"
CHANCE = 0.5
SEED_JITTER_DEC = 0.05  # seeds spread over +-this many decades of dose
ZERO_GAP_DEC = 1.0  # dose 0 drawn this many decades left of the lowest dose
MARGIN_DEC = 0.3
CROWDED_DEC = 0.35  # dose ticks closer than this (decades, on a 4-decade panel) are slanted
MAIN_SPLIT = split_defs.MAIN
CAPABILITY = {"val_loss": "validation loss (nats/token)", "fact_recall": "fact recall"}
# Chance levels of capability metrics: fact recall picks the answer among it and 3 distractors
# (scaling.evaluate's capability(), World.facts()).
CAPABILITY_CHANCE = {"fact_recall": 0.25}
# measure -> (estimate, lower, upper, label): paired-by-seed intervals from scaling.fit
COSTS = {"reduction": ("reduction", "lower", "upper", "reduction in misalignment rate"),
         "per_aligned_token": ("reduction_per_aligned_token", "lower_per_aligned_token",
                               "upper_per_aligned_token", "reduction per aligned token"),
         "per_marginal_flop": ("reduction_per_marginal_flop", "lower_per_marginal_flop",
                               "upper_per_marginal_flop",
                               "reduction per marginal FLOP\n(aligned tokens x FLOPs/token)")}
SEED_MARKERS = "o^Dvs<>P"
DOSE_LABEL = "aligned dose\n(measured share of training tokens)"


class MissingData(Exception):
    """A figure's data is absent; `make_all` skips the figure and prints this note."""


# ---------------------------------------------------------------- inputs


def load_results(path: str | Path) -> pd.DataFrame:
    """results.csv as the drawable rows: status ok, a finite dose >= 0; `rate` = k/n.

    Missing optional columns get defaults (arm "dose", split "matched", one model, seed 0).
    """
    df = fitlib.read_results(path)
    return tidy_results(df)


def tidy_results(df: pd.DataFrame) -> pd.DataFrame:
    has_counts = {"misaligned", "total"} <= set(df.columns)
    if "dose" not in df.columns or not (has_counts or "misalignment_rate" in df.columns):
        raise UsageError("a results table needs a dose column and misaligned/total or "
                         "misalignment_rate (see `scaling results`)")
    df = df.copy()
    for col, default in (("arm", "dose"), ("split", MAIN_SPLIT), ("model", ""), ("seed", 0),
                         ("insertion", "")):
        if col not in df.columns:
            df[col] = default
    for col in ("dose", "misaligned", "total", "misalignment_rate", "aligned_fraction",
                "aligned_tokens", "flops", "total_tokens", "val_loss", "fact_recall",
                "window_start",
                "window_end"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    rate = df["misalignment_rate"] if "misalignment_rate" in df.columns else np.nan
    if has_counts:
        with np.errstate(divide="ignore", invalid="ignore"):
            counted = df["misaligned"] / df["total"].where(df["total"] > 0)
        rate = counted.where(counted.notna(), rate)
    df["rate"] = rate
    for col in ("arm", "split", "model", "insertion"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str).str.strip()
    df["arm"] = df["arm"].replace("", "dose")
    control = (df["dose"] == 0) & df["insertion"].str.lower().isin(fitlib.CONTROL_LABELS)
    df.loc[control, "insertion"] = CONTROL
    if "aligned_fraction" not in df.columns:
        df["aligned_fraction"] = df["dose"]
    df["level"] = results_table.dose_level(df)
    keep = results_table.is_finished(df) & np.isfinite(df["dose"]) & (df["dose"] >= 0)
    return df[keep].reset_index(drop=True)


def check_splits(results: pd.DataFrame) -> None:
    """UsageError naming every split of the table that no source brings (scaling.splits.unknown:
    not the world's, not post-training's, and no scenario file of the row's run)."""
    files = results["input_files"] if "input_files" in results.columns else [None] * len(results)
    bad = split_defs.unknown(zip(results["split"], files))
    if bad:
        raise UsageError(f"results.csv: unknown split(s) {', '.join(map(repr, bad))}: not the world's "
                         f"({', '.join(split_defs.SPLITS)}), not post-training's ({', '.join(split_defs.POST_TRAINING)}), "
                         "and the row's run read no scenario file (input_files has no eval.files)")


def load_fit(path: str | Path) -> dict:
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON ({e})") from e
    if not isinstance(report, dict) or not isinstance(report.get("fits", []), list):
        raise UsageError(f"{path}: not a fit.json (scaling fit) report")
    return report


def cost_table(results: pd.DataFrame, report: dict | None = None) -> pd.DataFrame:
    """Cost-effectiveness rows: insertion, split, model, dose, runs, reduction, se and the
    same per aligned token and per FLOP (scaling.fit's definitions), intervals clipped to
    [-1, 1] (`clip_differences`); `transformer` marks the transformer models' rows.

    fit.json's rows when each has an SE; else computed here with scaling.fit, the runs of a
    configured aligned_fraction pooled at their mean measured dose (the measured dose differs
    a little between seeds, and a dose level needs >= 2 runs for an SE).
    """
    entries = list((report or {}).get("cost_effectiveness") or [])
    if not entries or any(e.get("lower") is None for e in entries):
        entries = _cost_entries(results)
    flat = [{**{k: _label(v) for k, v in (e.get("group") or {}).items()},
             **{k: v for k, v in e.items() if k != "group"}} for e in entries]
    df = pd.DataFrame(flat)
    for col in ("insertion", "split", "model"):
        if col not in df.columns:
            df[col] = ""
    for col in ("dose",) + tuple(c for cols in COSTS.values() for c in cols[:3]):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df["transformer"] = df["model"].astype(str).isin(set(results_table.transformers(results)["model"].astype(str)))
    return clip_differences(df)


def clip_differences(df: pd.DataFrame, lower: str = "lower", upper: str = "upper") -> pd.DataFrame:
    """A difference of two rates lies in [-1, 1]: its t interval (few seeds: wide) is clipped
    there, and so are the per-unit intervals derived from it (scaling.fit divides the
    reduction's interval by the level's amount)."""
    df = df.copy()
    for col in (lower, upper):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").clip(-1, 1)
    for amount, key in (("aligned_tokens", "aligned_token"), ("marginal_flops", "marginal_flop")):
        if amount in df.columns:
            scale = pd.to_numeric(df[amount], errors="coerce").where(lambda a: a > 0)
            for col in (lower, upper):
                if f"{col}_per_{key}" in df.columns:
                    df[f"{col}_per_{key}"] = (df[col] / scale).where(df[f"{col}_per_{key}"].notna())
    return df


CLIPPED = "95% CI paired by seed, clipped to [-1, 1]"


def _cost_entries(results: pd.DataFrame) -> list[dict]:
    rows = results[results["arm"] == "dose"]
    if not {"misaligned", "total"} <= set(rows.columns):
        return []
    rows = rows.dropna(subset=["misaligned", "total"])
    rows = rows[rows["total"] > 0].copy()
    if rows.empty:
        return []
    level = rows.groupby(["model", "insertion", "level"], dropna=False)["dose"]
    rows["dose"] = level.transform("mean")
    entries = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' reindexing notes from inside group_frames
        for group, cell in fitlib.group_frames(rows):
            if group.get("insertion") != fitlib.POOLED:
                entries += fitlib.cost_effectiveness(group, cell)
    return entries


def _label(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


# ---------------------------------------------------------------- fits


# The curve a dose panel draws, first usable wins: the control-relative fits (their ED50
# halves the control's rate) before the drc-comparable LL.2 with limits 0 and 1.
CURVE_ORDER = (("LL.3", False), ("LL.4", False), ("LL.2", True), ("LL.2", False))


def choose_fit(fits: Sequence[dict], group: dict) -> dict | None:
    """The fit.json entry a dose panel draws (CURVE_ORDER: model, with a background)."""
    mine = [f for f in fits if f.get("usable") and f.get("vcov")
            and _matches(f.get("group") or {}, group)]
    for model, background in CURVE_ORDER:
        for f in mine:
            if f.get("model") == model and isinstance(f.get("background"), dict) == background:
                return f
    return None


def with_halving(fits: Sequence[dict], halvings: Sequence[dict]) -> list[dict]:
    """Each fit.json fit with its group's halving entry (scaling.stats.halving) under "halving":
    the panels say the halving dose as every other output does. Fits of an older fit.json
    (no "halving") are returned as they are."""
    by_group = {_group_key(h.get("group") or {}): h for h in halvings}
    return [{**f, "halving": by_group[_group_key(f.get("group") or {})]}
            if _group_key(f.get("group") or {}) in by_group else f for f in fits]


def _group_key(group: dict) -> tuple:
    return tuple(sorted((k, _label(v)) for k, v in group.items()))


def halving_dose(entry: dict) -> dict | None:
    """The entry's control-relative ED50 {estimate, lower, upper}, if it has one (a curve that
    rises has none)."""
    ed = (entry.get("ed_control") or {}).get("50")
    bounded = ed and all(ed.get(k) is not None for k in ("estimate", "lower", "upper"))
    return ed if bounded else None  # an unbounded interval (overflow) marks nothing


def fit_label(entry: dict) -> str:
    bg = entry.get("background")
    axis = " on ln(x0+dose)" if isinstance(bg, dict) else ""
    if entry.get("halving"):
        return f"{entry['model']}{axis} fit; {halving_text(entry['halving'], short=True)}"
    ed, raw = halving_dose(entry), (entry.get("ed_control") or {}).get("50") or {}
    half = ""
    if raw.get("rises"):  # its control-relative ED50 is half-way up: no halving dose
        half = "; " + rises_text(raw, short=True)
    elif (ed or raw).get("extrapolated"):  # a number outside the doses tested says nothing
        half = "; halving dose beyond the doses"
    elif raw.get("estimate") is not None and not ed:
        half = f"; halving dose {raw['estimate']:.2g} (no CI)"
    elif ed:
        half = f"; halving dose {ed['estimate']:.2g} {interval_text(ed, entry.get('dose_range'))}"
    return f"{entry['model']}{axis} fit{half}"


UNBOUNDED_BELOW = 100.0  # a lower bound this many times below the lowest dose tested bounds nothing


def interval_text(ed: dict, dose_range=None) -> str:
    """A dose interval, with a side that bounds nothing said so: an upper bound above 1 (no
    dose exceeds all the tokens) or a lower bound more than UNBOUNDED_BELOW times below the
    lowest dose tested (carried by the log scale alone), printed as open: "[0.0017, ∞)", "(0, 0.31]"."""
    low_dose = (dose_range or [None])[0]
    open_low = low_dose is not None and low_dose > 0 and ed["lower"] < low_dose / UNBOUNDED_BELOW
    open_high = ed["upper"] > 1
    if open_low and open_high:
        return "(0, \u221e)"
    if open_high:
        return f"[{ed['lower']:.2g}, \u221e)"
    if open_low:
        return f"(0, {ed['upper']:.2g}]"
    return f"[{ed['lower']:.2g}, {ed['upper']:.2g}]"


# Group keys a panel may leave out, and the value they then stand for (pretraining curves).
IMPLIED_GROUP = {"post_training": "none", "world_variant": "normal"}


def _matches(fit_group: dict, group: dict) -> bool:
    return all(_label(v) == _label(group.get(k, IMPLIED_GROUP.get(k)))
               for k, v in fit_group.items())


def _curve(entry: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The fitted curve with its band over the positive doses, and at dose 0 where the fit
    saw the controls (LL.3/LL.4) or has a background (then f(0) is a finite plateau)."""
    band = fitlib.curve_band(entry)
    at_zero = None
    if entry.get("data") == "all doses" or isinstance(entry.get("background"), dict):
        at_zero = fitlib.predict(entry, [0.0])
    return band, at_zero


# ---------------------------------------------------------------- layout helpers


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


def _seed_offsets(seeds) -> dict:
    """Deterministic jitter in decades per seed, spread evenly over +-SEED_JITTER_DEC."""
    unique = sorted({str(s) for s in seeds})
    if len(unique) < 2:
        return dict.fromkeys(unique, 0.0)
    spread = np.linspace(-SEED_JITTER_DEC, SEED_JITTER_DEC, len(unique))
    return dict(zip(unique, spread.tolist()))


def _jittered(axis: DoseAxis, rows: pd.DataFrame, offsets: dict) -> np.ndarray:
    shift = np.array([offsets.get(str(s), 0.0) for s in rows["seed"]])
    return axis.x(rows["dose"]) * 10**shift


def _window_order(df: pd.DataFrame) -> list[str]:
    """Insertion windows present (controls apart), presets in training order first."""
    windows = [w for w in df["insertion"].unique().tolist() if w != CONTROL]
    return sorted(windows, key=_window_rank)


def _window_rank(window: str) -> tuple[int, str]:
    return (WINDOW_ORDER.index(window) if window in WINDOW_ORDER else len(WINDOW_ORDER), window)


def _window_colors(windows: Sequence[str]) -> dict[str, tuple]:
    """The same color for a window in every figure, whichever windows a figure shows."""
    palette = [c for i, c in enumerate(sns.color_palette("colorblind")) if i != 7]  # 7: gray
    extra = sorted(w for w in windows if w not in WINDOW_ORDER)
    index = {w: i for i, w in enumerate([*WINDOW_ORDER, *extra])}
    return {CONTROL: CONTROL_COLOR, **{w: palette[index[w] % len(palette)] for w in windows}}


def _split_order(splits) -> list[str]:
    return split_defs.order(splits)


def _models(df: pd.DataFrame) -> list[str]:
    """The table's models, trained ones first (each group alphabetical)."""
    return sorted(df["model"].unique().tolist(), key=lambda m: (results_table.is_counting(str(m)), str(m)))


def _with_model(text: str, model: str, models: Sequence[str]) -> str:
    return f"{model}: {text}" if len(models) > 1 and model else text


def _new_figure(n_rows: int, n_cols: int, title: str, sharey: bool = True,
                extra_height: float = 0.6) -> tuple[Figure, np.ndarray]:
    width = max(PANEL_IN[0] * n_cols, MIN_WIDTH_IN)  # room for the title and the legend
    fig = Figure(figsize=(width, PANEL_IN[1] * n_rows + extra_height), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=sharey)
    fig.suptitle(title)
    return fig, axes


def _legend_below(fig: Figure, handles, labels=None, ncols: int = 1, title: str | None = None):
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


def _chance(ax) -> None:
    ax.axhline(CHANCE, color="0.45", lw=0.9, ls="--", zorder=1)


def _rate_axis(ax) -> None:
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))


def _label_outer(fig: Figure, axes: np.ndarray, xlabel: str, ylabel: str | None) -> None:
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel)
    if ylabel:
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel)


@dataclass(frozen=True)
class Inputs:
    """What `make_all` reads once for every figure: the tidy results (pretrained models when
    several post-training kinds were run), the raw table, fit.json; tables derived from them
    are properties, computed when a figure asks."""

    sweep_dir: Path
    raw: pd.DataFrame  # results.csv as read
    pre: pd.DataFrame  # raw, pretrained models only
    results: pd.DataFrame  # tidy rows of `pre`
    report: dict | None  # fit.json
    fits: Sequence[dict]

    @property
    def cost(self) -> pd.DataFrame:
        return cost_table(self.results, self.report)

    @property
    def trajectory(self) -> pd.DataFrame:
        return _of_runs(read_trajectory(self.sweep_dir, self.results), self.results)

    @property
    def transfer_table(self) -> pd.DataFrame:
        return _transfer_table(self.sweep_dir, self.pre)

    @property
    def persistence_points(self) -> pd.DataFrame:
        return _persistence_points(self.sweep_dir, self.raw)

    @property
    def post_trajectory(self) -> pd.DataFrame:
        """trajectory.csv of every run, post-trained ones included (the resistance curves)."""
        return read_trajectory(self.sweep_dir, self.raw)


@dataclass(frozen=True)
class FigureSpec:
    name: str  # the output file stem
    rank: int  # place in FIGURES
    reads: tuple[str, ...]  # the `Inputs` fields passed to `draw`, in order
    draw: Callable[..., Figure]


_REGISTRY: dict[str, FigureSpec] = {}


def figure(name: str, rank: int, *reads: str) -> Callable[[Callable], Callable]:
    """Register a figure function for `make_all`: it draws OUT/NAME.FORMAT from the `Inputs`
    fields `reads`, at place `rank` among the figures. The function is returned unchanged."""
    unknown = [r for r in reads if not hasattr(Inputs, r) and r not in Inputs.__dataclass_fields__]
    if unknown:
        raise ValueError(f"figure {name}: unknown input(s) {unknown}")

    def register(fn: Callable[..., Figure]) -> Callable[..., Figure]:
        if name in _REGISTRY or any(spec.rank == rank for spec in _REGISTRY.values()):
            raise ValueError(f"figure {name} (rank {rank}): name or rank already registered")
        _REGISTRY[name] = FigureSpec(name, rank, reads, fn)
        return fn

    return register


def _styled(fn: Callable) -> Callable:
    """Draw under the package's rc settings without touching the caller's."""

    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper


# ---------------------------------------------------------------- transfer over training

VARIANT_COLORS = {"normal": "#1f77b4", "flipped": "#d62728", "shuffled": "0.5"}


@figure("transfer_trajectory", 4, "transfer_table")
@_styled
def transfer_trajectory(table: pd.DataFrame) -> Figure:
    """The dose effect (rate at the dose minus the same seed's and world's control) against
    training tokens, per split (columns) and configuration (rows), one line per world
    variant with its 95% t interval (clipped to [-1, 1]: a difference of two rates); the
    readout of the dosed runs below each panel row (where measured: not on your own corpus).
    Counting baselines tie on the transfer splits, so their effect there is 0. When every
    run has one evaluation point (no mid-training checkpoints) there are no lines:
    `transfer_at_end` draws the configurations side by side instead."""
    if table.empty:
        raise MissingData("no paired dose effects (needs dose-0 controls and value-grounded splits)")
    table = clip_differences(_with_config(table))
    if table.groupby(["config", "split", "world_variant"])["tokens"].nunique().max() < 2:
        return transfer_at_end(table)
    configs = sorted(table["config"].unique())
    splits_ = _split_order(table["split"].unique())
    per = 1 + _has_readout(table)  # your own corpus has no readout (evaluate.world_metrics): no row of it
    fig, axes = _new_figure(per * len(configs), len(splits_),
                            "Transfer over training: dose effect" + (" and readout" if per == 2 else ""),
                            sharey=False, extra_height=0.9)
    for r, config in enumerate(configs):
        for c, split in enumerate(splits_):
            ax = axes[per * r, c]
            ax_read = axes[per * r + 1, c] if per == 2 else None
            for variant, rows in table[(table["config"] == config) & (table["split"] == split)].groupby("world_variant"):
                rows = rows.sort_values("tokens")
                color = VARIANT_COLORS.get(variant, "0.3")
                ax.plot(rows["tokens"], rows["estimate"], marker="o", color=color, label=variant)
                ax.fill_between(rows["tokens"], rows["lower"], rows["upper"], color=color, alpha=0.15, lw=0)
                if ax_read is not None:
                    ax_read.plot(rows["tokens"], rows["readout"], marker="s", color=color, ls="--")
            ax.axhline(0, color="0.45", lw=0.9, ls="--")
            ax.set_ylim(-1, 1)
            ax.set_title(f"{split}\n{config}", fontsize="small")
            if ax_read is not None:
                _chance(ax_read)
                _rate_axis(ax_read)
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
        _legend_below(fig, handles, labels, ncols=len(handles),
                      title="world (bands: 95% t interval over seeds, clipped to [-1, 1])")
    return fig


def _has_readout(table: pd.DataFrame) -> bool:
    return "readout" in table.columns and pd.to_numeric(table["readout"], errors="coerce").notna().any()


def _with_config(table: pd.DataFrame) -> pd.DataFrame:
    """A `config` label per row: model, batch size, dose (and genres where they differ)."""
    genres = table["genres"].astype(str) if "genres" in table.columns else pd.Series("", index=table.index)
    several = genres.nunique() > 1
    return table.assign(config=table["model"].astype(str) + ", batch " + table["batch_size"].map("{:g}".format)
                        + ", dose " + table["aligned_fraction"].map("{:g}".format)
                        + ((", " + genres.str.replace("+", " + ", regex=False)) if several else ""))


@_styled
def transfer_at_end(table: pd.DataFrame) -> Figure:
    """One evaluation point per run: the dose effect (95% t interval over seeds, clipped to
    [-1, 1]) and the dosed runs' readout per configuration (rows of each panel, named by what
    differs between them) and split (columns), one marker per world variant: a compact
    stand-in for single-point trajectory panels."""
    names, common = _varying_parts(table["config"])
    table = table.assign(config=table["config"].map(names))
    configs = sorted(table["config"].unique())
    splits_ = _split_order(table["split"].unique())
    variants = sorted(table["world_variant"].unique())
    dodge = dict(zip(variants, np.linspace(-0.15, 0.15, len(variants)) if len(variants) > 1 else [0.0]))
    tokens = ", ".join(f"{t:,.0f}" for t in sorted(table["tokens"].unique()))
    per = 1 + _has_readout(table)  # no readout panels on your own corpus (evaluate.world_metrics)
    fig = Figure(figsize=(max(2.6 * 2 * len(splits_), MIN_WIDTH_IN), 1.2 + 0.35 * len(configs) + 0.8),
                 dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, per * len(splits_), squeeze=False, sharey=True)[0]
    fig.suptitle(f"Transfer at the end of training ({common + ', ' if common else ''}{tokens} tokens; "
                 "no mid-training checkpoints)")
    y_of = {c: i for i, c in enumerate(configs)}
    for c, split in enumerate(splits_):
        ax, ax_read = axes[per * c], axes[per * c + 1] if per == 2 else None
        for variant in variants:
            rows = table[(table["split"] == split) & (table["world_variant"] == variant)]
            y = np.array([y_of[k] for k in rows["config"]]) + dodge[variant]
            x = rows["estimate"].to_numpy(float)
            err = [np.nan_to_num(x - rows["lower"].to_numpy(float)), np.nan_to_num(rows["upper"].to_numpy(float) - x)]
            color = VARIANT_COLORS.get(variant, "0.3")
            ax.errorbar(x, y, xerr=err, color=color, marker="o", ls="", capsize=3, label=variant)
            if ax_read is not None:
                ax_read.plot(rows["readout"], y, color=color, marker="s", ls="")
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
    _legend_below(fig, handles, labels, ncols=len(handles),
                  title="world (bars: 95% t interval over seeds, clipped to [-1, 1])")
    return fig


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


# ---------------------------------------------------------------- dose-response figures


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
            band, at_zero = _curve(entry)
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
    _chance(ax)
    axis.apply(ax, doses=tested_doses(rows))
    _rate_axis(ax)
    return note


def _draw_seeds(ax, axis: DoseAxis, dosed: pd.DataFrame, controls: pd.DataFrame, color,
                offsets: dict) -> None:
    """Runs with one marker per seed and a thin line joining each seed's doses."""
    for seed, marker in zip(sorted(offsets), SEED_MARKERS * 4):
        mine = dosed[dosed["seed"].astype(str) == seed].sort_values("dose")
        theirs = controls[controls["seed"].astype(str) == seed]
        x = _jittered(axis, mine, offsets)
        ax.plot(x, mine["rate"], color=color, lw=0.5, alpha=0.5, zorder=3)
        ax.scatter(x, mine["rate"], s=18, marker=marker, color=color, alpha=0.85, lw=0.4,
                   edgecolor="white", zorder=4)
        ax.scatter(_jittered(axis, theirs, offsets), theirs["rate"], s=18, marker=marker,
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
    _legend_below(fig, handles, ncols=ncols)


def _dose_grid(results: pd.DataFrame, fits: Sequence[dict], panels: list[list[dict]],
               title: str) -> Figure:
    """One panel per {model, split, insertion} cell of `panels` (rows of columns)."""
    axis = DoseAxis.of(results["dose"])
    offsets = _seed_offsets(results["seed"])
    colors = _window_colors(_window_order(results))
    models = _models(results)
    fig, axes = _new_figure(len(panels), len(panels[0]), title)
    for i, row in enumerate(panels):
        for j, cell in enumerate(row):
            ax = axes[i, j]
            in_cell = results[(results["model"] == cell["model"])
                              & (results["split"] == cell["split"])]
            rows = in_cell[in_cell["insertion"].isin([cell["insertion"], CONTROL])]
            if rows.empty:
                ax.set_visible(False)
                continue
            entry = choose_fit(fits, cell) if fits else False
            note = _draw_dose_panel(ax, axis, rows, entry,
                                    colors[cell["insertion"]], offsets)
            where = _with_model(f"{cell['insertion']} · {cell['split']}", cell["model"], models)
            ax.set_title(f"{where}\n{note}")
    _label_outer(fig, axes, DOSE_LABEL, "misalignment rate")
    _dose_legend(fig, "0.55", ncols=2 if axes.shape[1] < 3 else 4)
    return fig


@figure("dose_response", 1, "results", "fits")
@_styled
def dose_response(results: pd.DataFrame, fits: Sequence[dict] = (), split: str = MAIN_SPLIT) -> Figure:
    """Misalignment vs dose per insertion window (columns) and model (rows) on one split."""
    rows = _dose_rows(results)
    if split not in set(rows["split"]):
        split = _split_order(rows["split"])[0]
    rows = rows[rows["split"] == split]
    windows = _window_order(rows)
    if not windows:
        raise MissingData("no insertion window with an aligned dose")
    panels = [[{"model": m, "split": split, "insertion": w} for w in windows] for m in _models(rows)]
    return _dose_grid(rows, fits, panels, f"Misalignment vs aligned dose — split {split}")


@figure("splits", 2, "results", "fits")
@_styled
def splits(results: pd.DataFrame, fits: Sequence[dict] = ()) -> Figure:
    """Matched vs held-out families (columns) per model and insertion window (rows)."""
    rows = _dose_rows(results)
    split_names = _split_order(rows["split"])
    if len(split_names) < 2:
        raise MissingData(f"only one eval split ({split_names[0]})")
    panels = [[{"model": m, "split": s, "insertion": w} for s in split_names]
              for m in _models(rows) for w in _window_order(rows)]
    return _dose_grid(rows, fits, panels, f"Misalignment by eval split: {', '.join(split_names)}")


# ---------------------------------------------------------------- trajectory


@figure("trajectory", 7, "trajectory")
@_styled
def trajectory(traj: pd.DataFrame) -> Figure:
    """Misalignment against training tokens: one line per dose (seed mean), colored by dose
    on a log scale, dose-0 controls dashed; rows per model and window, columns per split."""
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
    windows, split_names, models = _window_order(traj), _split_order(traj["split"]), _models(traj)
    cells = [(m, w) for m in models for w in windows] or [(m, CONTROL) for m in models]
    positive = traj.loc[traj["color_dose"] > 0, "color_dose"]
    norm = LogNorm(positive.min(), positive.max()) if len(positive) else LogNorm(1e-3, 1e-1)
    if norm.vmin == norm.vmax:
        norm = LogNorm(norm.vmin / 2, norm.vmax * 2)
    cmap = sns.color_palette("viridis", as_cmap=True)
    fig, axes = _new_figure(len(cells), len(split_names), "Misalignment during training")
    for i, (model, window) in enumerate(cells):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            rows = traj[(traj["model"] == model) & (traj["split"] == split)
                        & traj["insertion"].isin([window, CONTROL])]
            means = (rows.groupby(["insertion", "level", "tokens"], sort=True)
                     .agg(rate=("rate", "mean"), sd=("rate", "std"), seeds=("rate", "size"),
                          color_dose=("color_dose", "mean")).reset_index())
            top = means.loc[means["insertion"] == window, "level"].max()
            for (insertion, level), line in means.groupby(["insertion", "level"], sort=True):
                dose = line["color_dose"].mean()
                control = insertion == CONTROL or not dose > 0
                color = "black" if control else cmap(norm(dose))
                ax.plot(line["tokens"], line["rate"], color=color, lw=1.4 if control else 1.6,
                        ls="--" if control else "-", zorder=3 if control else 2)
                if control or level == top:  # bands for every dose would hide each other
                    low, high = _seed_mean_ci(line)
                    ax.fill_between(line["tokens"], low, high, color=color, alpha=0.15, lw=0,
                                    zorder=1)
            span = rows.loc[rows["insertion"] == window, ["window_start_tokens", "window_end_tokens"]]
            if len(span) and span.notna().all(axis=None):
                ax.axvspan(*span.median(), color=_window_colors([window])[window], alpha=0.1, lw=0,
                           zorder=0)
            _chance(ax)
            _rate_axis(ax)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
            ax.set_xlim(left=0)
            ax.set_title(_with_model(f"{window} · {split}", model, models))
    _label_outer(fig, axes, "training tokens", "misalignment rate (mean over seeds)")
    label = DOSE_LABEL if measured else "aligned_fraction\n(nominal share of window tokens)"
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes, label=label, shrink=0.9)
    _legend_below(fig, [Line2D([], [], color="black", ls="--", label="dose 0 (control)"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)"),
                        Patch(color="0.5", alpha=0.2, lw=0, label="insertion window"),
                        Patch(color="0.3", alpha=0.15, lw=0,
                              label="95% CI over seeds (control, top dose)")], ncols=4)
    return fig


def _seed_mean_ci(line: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """t interval (seeds - 1 df) of each checkpoint's seed mean; the mean itself for one seed."""
    mean = line["rate"].to_numpy(float)
    half = np.array([PairedContrast.from_moments(m, sd, n).half_width()
                     for m, sd, n in zip(mean, line["sd"].to_numpy(float), line["seeds"].to_numpy(int))])
    half = np.nan_to_num(half)
    return mean - half, mean + half


# ---------------------------------------------------------------- capability


@figure("capability", 8, "results")
@_styled
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
    offsets = _seed_offsets(runs["seed"])
    windows, models = _window_order(runs), _models(runs)
    colors = _window_colors(windows)
    fig, axes = _new_figure(len(models), len(metrics), "Alignment tax: capability vs aligned dose",
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
                ax.scatter(_jittered(axis, mine, offsets), mine[metric], s=16, color=colors[window],
                           marker="s" if window == CONTROL else "o", alpha=0.8, lw=0, zorder=3)
                if window != CONTROL:
                    means = mine.groupby("level").agg(dose=("dose", "mean"),
                                                                 y=(metric, "mean"))
                    ax.plot(means["dose"], means["y"], color=colors[window], lw=1.4, zorder=2)
            if metric in CAPABILITY_CHANCE:
                ax.axhline(CAPABILITY_CHANCE[metric], color="0.45", lw=0.9, ls="--", zorder=1)
            axis.apply(ax, doses=tested_doses(rows))
            ax.set_ylabel(CAPABILITY[metric])
            ax.set_title(_with_model(CAPABILITY[metric].split(" (")[0], model, models))
    _label_outer(fig, axes, DOSE_LABEL, None)
    handles = [Line2D([], [], color=colors[w], marker="o", lw=1.4, label=w) for w in windows]
    handles += [Line2D([], [], color=CONTROL_COLOR, marker="s", ls=":", label="dose-0 control (mean dotted)")]
    if any(m in CAPABILITY_CHANCE for m in metrics):
        handles.append(Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (fact recall: 1 in 4)"))
    _legend_below(fig, handles, ncols=len(handles),
                  title="insertion window (points: runs; lines: seed means)")
    return fig


# ---------------------------------------------------------------- cost-effectiveness


@figure("cost_effectiveness", 9, "cost")
@_styled
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
    split_names, models, windows = _split_order(cost["split"]), _models(cost), _window_order(cost)
    series = [(m, w) for m in models for w in windows]
    colors, markers = _window_colors(windows), dict(zip(models, "osD^v"))
    dodge = dict(zip(series, np.linspace(-0.04, 0.04, len(series)) if len(series) > 1 else [0.0]))
    axis = DoseAxis.of(cost["dose"])
    fig, axes = _new_figure(len(split_names), len(measures),
                            "Cost-effectiveness of the aligned dose (vs dose-0 controls)", sharey=False)
    for j, measure in enumerate(measures):
        col, low_col, high_col, label = COSTS[measure]
        for i, split in enumerate(split_names):
            ax = axes[i, j]
            for model, window in series:
                rows = cost[(cost["split"] == split) & (cost["model"] == model)
                            & (cost["insertion"] == window) & cost[col].notna()].sort_values("dose")
                if rows.empty:
                    continue
                x = rows["dose"].to_numpy(float) * 10 ** dodge[(model, window)]
                y = rows[col].to_numpy(float)
                low = (y - rows[low_col].to_numpy(float)) if low_col in rows else np.zeros_like(y)
                high = (rows[high_col].to_numpy(float) - y) if high_col in rows else np.zeros_like(y)
                ax.errorbar(x, y, yerr=[np.nan_to_num(low), np.nan_to_num(high)],
                            color=colors[window], marker=markers[model], ms=4, lw=1.2, capsize=2)
            ax.axhline(0, color="0.45", lw=0.9)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            axis.apply(ax, with_zero=False, doses=cost.loc[cost["split"] == split, "dose"])
            ax.set_title(f"{split}: {label.splitlines()[0]}")
            if j == 0 or measure != measures[j - 1]:
                ax.set_ylabel(label)
    _label_outer(fig, axes, DOSE_LABEL, None)
    handles = [Line2D([], [], color=colors[w], marker=markers[m], label=_with_model(w, m, models))
               for m, w in series]
    _legend_below(fig, handles, ncols=len(handles), title=f"insertion window (bars: {CLIPPED})")
    return fig


# ---------------------------------------------------------------- transfer


@figure("transfer", 3, "cost", "results")
@_styled
def transfer(cost: pd.DataFrame, results: pd.DataFrame) -> Figure:
    """Does alignment transfer? The transformer's reduction vs the dose-0 controls per eval
    split (matched, unseen_pair, held_out) against dose, one column per window (and per model
    and world variant where there are several; 95% CIs paired by seed, clipped to [-1, 1]);
    with a `readout` column, a second row: the share of readout items on which the
    transformer prefers the human stories' value word (0.5: does not know the values)."""
    if len(cost):
        cost = cost[np.isfinite(cost["dose"]) & (cost["dose"] > 0) & np.isfinite(cost["reduction"])]
        # counting baselines have no FLOPs and would crowd out the windows: fit.md lists them
        cost = cost[~cost["model"].astype(str).map(results_table.is_counting)]
    if cost.empty or cost["split"].nunique() < 2:
        raise MissingData("needs reductions on two or more eval splits")
    if "world_variant" not in cost.columns:
        cost = cost.assign(world_variant="")
    cost = cost.assign(world_variant=cost["world_variant"].replace("", "normal"))
    split_names = _split_order(cost["split"])
    cells = [(m, v, w) for m in _models(cost) for v in sorted(cost["world_variant"].unique())
             for w in _window_order(cost)]
    cells = [c for c in cells if _in_cell(cost, *c).size]
    has_readout = "readout" in results.columns and pd.to_numeric(
        results["readout"], errors="coerce").notna().any()
    axis = DoseAxis.of(cost["dose"])
    colors = dict(zip(split_names, sns.color_palette("colorblind", len(split_names))))
    fig, axes = _new_figure(1 + has_readout, len(cells), "Transfer across eval splits (transformer)",
                            sharey=False)
    for j, (model, variant, window) in enumerate(cells):
        ax, mine = axes[0, j], _in_cell(cost, model, variant, window)
        for split in split_names:
            rows = mine[mine["split"] == split].sort_values("dose")
            if rows.empty:
                continue
            marker, ls = split_defs.style(split)
            y = rows["reduction"].to_numpy(float)
            err = [np.nan_to_num(y - rows["lower"].to_numpy(float)),
                   np.nan_to_num(rows["upper"].to_numpy(float) - y)]
            ax.errorbar(rows["dose"], y, yerr=err, color=colors[split], marker=marker, ls=ls,
                        ms=4, lw=1.2, capsize=2)
        ax.axhline(0, color="0.45", lw=0.9)
        axis.apply(ax, with_zero=False, doses=mine["dose"])
        title = _cell_title(cells, model, variant, window)
        ax.set_title(f"{title}: reduction vs dose 0")
        if has_readout:
            _readout_panel(axes[1, j], axis, _in_cell(results, model, variant, window, controls=True),
                           title, split_names, colors)
    _label_outer(fig, axes, DOSE_LABEL, None)
    axes[0, 0].set_ylabel("reduction in misalignment rate")
    handles = [Line2D([], [], color=colors[s], marker=split_defs.style(s)[0],
                      ls=split_defs.style(s)[1], label=s) for s in split_names]
    _legend_below(fig, handles, ncols=len(handles), title=f"eval split (bars: {CLIPPED})")
    return fig


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


def _readout_panel(ax, axis: DoseAxis, rows: pd.DataFrame, title: str, split_names, colors):
    """The transformer's readout of one cell: rows of one model (the counting baselines'
    readout would average in at their own level)."""
    rows = rows[rows["arm"] == "dose"]
    rows = rows.assign(readout=pd.to_numeric(rows["readout"], errors="coerce")).dropna(
        subset=["readout"])
    for split in split_names:
        mine = rows[rows["split"] == split]
        if mine.empty:
            continue
        means = mine.groupby("level").agg(dose=("dose", "mean"), y=("readout", "mean"))
        marker, ls = split_defs.style(split)
        ax.plot(axis.x(means["dose"]), means["y"], color=colors[split], marker=marker, ls=ls,
                ms=4, lw=1.2)
    _chance(ax)
    axis.apply(ax, doses=tested_doses(rows))
    _rate_axis(ax)
    ax.set_title(f"{title}: readout")
    ax.set_ylabel("readout: share preferring\nthe stories' value")


# ---------------------------------------------------------------- arms


def arm_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per-run rates of the compared arms: dose-0 controls, each window's top aligned dose,
    and every other arm (label, model, split, seed, rate, color key)."""
    rows = results[np.isfinite(results["rate"])]
    parts = []
    for model in _models(rows):
        mine = rows[rows["model"] == model]
        dose_arm = mine[mine["arm"] == "dose"]
        parts.append(dose_arm[dose_arm["insertion"] == CONTROL].assign(label="dose-0 control",
                                                                        key=CONTROL))
        for window in _window_order(dose_arm):
            at = dose_arm[dose_arm["insertion"] == window]
            top = at[at["level"] == at["level"].max()]
            parts.append(top.assign(label=f"aligned: {window}\n(dose {top['dose'].mean():.2g})",
                                    key=window))
        others = mine[mine["arm"] != "dose"]
        for arm_name, at in others.groupby("arm", sort=True):
            settings = at[["insertion", "aligned_fraction"]].drop_duplicates()
            for _, s in settings.iterrows():
                sub = at[(at["insertion"] == s["insertion"]) & (at["aligned_fraction"] == s["aligned_fraction"])]
                detail = "" if len(settings) == 1 else f"\n({s['insertion']}, {s['aligned_fraction']:g})"
                parts.append(sub.assign(label=f"{arm_name}{detail}", key=f"arm:{arm_name}"))
    if not parts:
        return pd.DataFrame(columns=["label", "key", "model", "split", "seed", "rate", "arm"])
    return pd.concat(parts, ignore_index=True)[["label", "key", "model", "split", "seed", "rate", "arm"]]


@figure("arms", 10, "results")
@_styled
def arms(results: pd.DataFrame) -> Figure:
    """Misalignment of the control, each window's top dose and the filtered/misaligned arms,
    per split (columns) and model (rows): runs as dots, seed mean with a 95% t interval."""
    table = arm_table(results)
    if table.empty or (table["arm"] == "dose").all():
        raise MissingData("no filtered / misaligned arm runs")
    split_names, models = _split_order(table["split"]), _models(table)
    labels = list(dict.fromkeys(table["label"]))
    windows = [k for k in dict.fromkeys(table["key"]) if k != CONTROL and not k.startswith("arm:")]
    arm_keys = [k for k in dict.fromkeys(table["key"]) if k.startswith("arm:")]
    colors = {**_window_colors(windows),
              **dict(zip(arm_keys, sns.color_palette("dark", len(arm_keys) + 3)[3:]))}
    offsets = _seed_offsets(table["seed"])
    fig, axes = _new_figure(len(models), len(split_names), "Interventions compared",
                            extra_height=0.4)
    for i, model in enumerate(models):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            for x, label in enumerate(labels):
                runs = table[(table["model"] == model) & (table["split"] == split)
                             & (table["label"] == label)]
                if runs.empty:
                    continue
                color = colors[runs["key"].iloc[0]]
                jitter = np.array([offsets[str(s)] for s in runs["seed"]]) * 3
                ax.scatter(x + jitter, runs["rate"], s=16, color=color, alpha=0.55, lw=0, zorder=3)
                mean, half = _mean_ci(runs["rate"].to_numpy(float))
                ax.errorbar([x + 0.25], [mean], yerr=None if half is None else [[half], [half]],
                            color=color, marker="D", ms=5, lw=1.6, capsize=3, zorder=4)
            _chance(ax)
            _rate_axis(ax)
            ax.set_xlim(-0.6, len(labels) - 0.3)
            ax.xaxis.set_major_locator(FixedLocator(range(len(labels))))
            ax.set_xticklabels(labels, rotation=35, ha="right", rotation_mode="anchor",
                               fontsize="small")
            ax.grid(axis="x", visible=False)
            ax.set_title(_with_model(f"{split} families", model, models))
    for ax in axes[:, 0]:
        ax.set_ylabel("misalignment rate")
    _legend_below(fig, [Line2D([], [], ls="", marker="o", color="0.5", alpha=0.55, label="run (one per seed)"),
                        Line2D([], [], marker="D", color="0.2", label="seed mean, 95% t interval"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)")], ncols=3)
    return fig


def _mean_ci(rates: np.ndarray) -> tuple[float, float | None]:
    """Mean over runs and the half-width of its 95% t interval (runs are the units)."""
    if len(rates) < 2:
        return float(rates.mean()), None
    contrast = paired_contrast(rates)
    return contrast.estimate, contrast.half_width()


# ---------------------------------------------------------------- all figures


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


def _check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def _find_fit(sweep_dir: Path, fit: str | Path | None) -> Path | None:
    if fit is not None:
        if not Path(fit).is_file():
            raise UsageError(f"{fit}: no such file (run `scaling fit {sweep_dir / 'results.csv'} "
                             f"--out {sweep_dir}`)")
        return Path(fit)
    for candidate in (sweep_dir / "fit.json", sweep_dir / "fits" / "fit.json"):
        if candidate.is_file():
            return candidate
    return None


KIND_COLORS = {"none": "black", "sft": "#2ca02c", "harmless_rl": "#1f77b4", "helpful_rl": "#d62728",
               "misaligned_ft": "#9467bd"}


@figure("persistence", 5, "persistence_points")
@_styled
def persistence(pts: pd.DataFrame) -> Figure:
    """Misalignment after post-training against the pretraining dose, one line per
    post-training kind (seed means, 95% t band over blocks), and before post-training (the
    end of pretraining, dashed grey); columns per split. RL trained on part of the families
    is left out here (its rl_trained/rl_other rows are in persistence.md)."""
    if pts.empty or pts["post_training"].nunique() < 2:
        raise MissingData("needs runs of several post-training kinds (results.csv post_training)")
    pts = pts[(pts["rl_scope"] != "part") & ~pts["split"].isin(split_defs.POST_TRAINING)]
    from scaling.reports.persistence import KIND_ORDER

    # the main window (the commonest among dosed runs) and its dose-0 controls
    dosed = pts[pts["level"] > 0]
    if "insertion" in pts.columns and len(dosed):
        main = dosed["insertion"].value_counts().idxmax()
        pts = pts[(pts["level"] == 0) | (pts["insertion"] == main)]
    tokens = pts["post_training_tokens"] if "post_training_tokens" in pts.columns else pd.Series(0, index=pts.index)
    several = pts.assign(t=tokens).groupby("post_training")["t"].nunique() > 1
    pts = pts.assign(kind=[f"{k}, {t / 1e3:,.0f}k tokens" if several.get(k, False) else k
                           for k, t in zip(pts["post_training"], tokens)], t=tokens)
    # a shorter post-training of a kind that also has a longer one is drawn dotted
    shorter = set(pts.loc[pts["t"] < pts.groupby("post_training")["t"].transform("max"), "kind"])
    kinds = sorted(pts["kind"].unique(), key=lambda k: (KIND_ORDER.index(k.split(",")[0])
                                                        if k.split(",")[0] in KIND_ORDER else 99, k))
    split_names, models = _split_order(pts["split"].unique()), _models(pts)
    axis = DoseAxis.of(pts["level"])
    fig, axes = _new_figure(len(models), len(split_names), "Misalignment after post-training vs pretraining dose")
    for i, model in enumerate(models):
        for j, split in enumerate(split_names):
            ax = axes[i, j]
            rows = pts[(pts["model"] == model) & (pts["split"] == split)]
            series = [(k, rows[rows["kind"] == k], "after") for k in kinds]
            series.append(("before post-training", rows.drop_duplicates(["level", "seed", "world_seed"]), "before"))
            for name, mine, col in series:
                means = (mine.groupby("level", sort=True)[col].agg(["mean", "std", "size"]).reset_index()
                         .rename(columns={"mean": "rate", "std": "sd", "size": "seeds"}))
                if means.empty:
                    continue
                x = axis.x(means["level"])
                before = name == "before post-training"
                color = "0.55" if before else KIND_COLORS.get(name.split(",")[0], "0.3")
                ax.plot(x, means["rate"], color=color, marker="o", ms=3.5, lw=1.5,
                        ls="--" if before else (":" if name in shorter else "-"),
                        label=name, zorder=3)
                low, high = _seed_mean_ci(means)
                ax.fill_between(x, low, high, color=color, alpha=0.12, lw=0, zorder=1)
            _chance(ax)
            _rate_axis(ax)
            axis.apply(ax, doses=rows["level"])
            ax.set_title(_with_model(split, model, models))
    _label_outer(fig, axes, "aligned dose in pretraining\n(measured share of pretraining tokens)",
                 "misalignment rate (mean over seeds)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    _legend_below(fig, handles, labels, ncols=len(handles),
                  title="post-training (bands: 95% t interval over seeds)")
    return fig


@figure("resistance", 6, "post_trajectory", "raw")
@_styled
def resistance(traj: pd.DataFrame, results: pd.DataFrame) -> Figure:
    """Misalignment against post-training steps (0 = end of pretraining; eval.checkpoints),
    one line per pretraining dose (seed mean, dose-0 controls black dashed; 95% t band over
    blocks for the control and the top dose where they have >= 3 seeds), panels per direction (post_training kind and
    RL scope; columns) and split (rows); a symlog step axis. persistence.md's resistance
    table fits these curves (scaling.reports.resistance)."""
    from scaling.reports.persistence import KIND_ORDER
    from scaling.reports.resistance import curves

    pts = curves(traj, results) if "post_training" in results.columns else pd.DataFrame()
    if pts.empty or pts["post_step"].nunique() < 3:
        raise MissingData("needs misalignment at several post-training steps (eval.checkpoints "
                          "after the end of pretraining)")
    dosed = pts[pts["level"] > 0]
    if len(dosed):  # the main window (the commonest among dosed runs) and the dose-0 controls
        pts = pts[(pts["level"] == 0) | (pts["insertion"] == dosed["insertion"].value_counts().idxmax())]
    pts = pts.assign(direction=[k if not scope or scope == "all" else f"{k} ({scope} of the families)"
                                for k, scope in zip(pts["post_training"].astype(str), pts["rl_scope"].astype(object).fillna(""))])
    directions = sorted(pts["direction"].unique(), key=lambda d: (
        KIND_ORDER.index(d.split(" ")[0]) if d.split(" ")[0] in KIND_ORDER else 99, d))
    split_names, models = _split_order(pts["split"].unique()), _models(pts)
    positive = pts.loc[pts["level"] > 0, "level"]
    norm = LogNorm(positive.min(), positive.max()) if len(positive) else LogNorm(1e-3, 1e-1)
    if norm.vmin == norm.vmax:
        norm = LogNorm(norm.vmin / 2, norm.vmax * 2)
    cmap = sns.color_palette("viridis", as_cmap=True)
    steps = sorted(pts["post_step"].unique())
    fig, axes = _new_figure(len(split_names) * len(models), len(directions),
                            "Misalignment during post-training, per pretraining dose")
    for m, model in enumerate(models):
        for i, split in enumerate(split_names):
            for j, direction in enumerate(directions):
                ax = axes[m * len(split_names) + i, j]
                rows = pts[(pts["model"] == model) & (pts["split"] == split) & (pts["direction"] == direction)]
                if rows.empty:  # e.g. rl_trained / rl_other of a direction not trained on part of the families
                    ax.axis("off")
                    ax.text(0.5, 0.5, f"{direction} · {split}:\nnot measured", ha="center", va="center",
                            fontsize="small", color="0.4", transform=ax.transAxes)
                    continue
                means = (rows.groupby(["level", "post_step"], sort=True)
                         .agg(rate=("rate", "mean"), sd=("rate", "std"), seeds=("rate", "size")).reset_index())
                top = means["level"].max()
                for level, line in means.groupby("level", sort=True):
                    control = not level > 0
                    color = "black" if control else cmap(norm(level))
                    ax.plot(line["post_step"], line["rate"], color=color, marker="o", ms=3, lw=1.5,
                            ls="--" if control else "-", zorder=3 if control else 2)
                    if (control or level == top) and line["seeds"].min() >= 3:  # t on 1 df is no band
                        low, high = _seed_mean_ci(line)
                        ax.fill_between(line["post_step"], low, high, color=color, alpha=0.15, lw=0, zorder=1)
                _chance(ax)
                _rate_axis(ax)
                ax.set_xscale("symlog", linthresh=1.0)
                ax.xaxis.set_major_locator(FixedLocator(steps))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.set_xlim(0, max(steps) * 1.1)
                ax.set_title(_with_model(f"{direction} · {split}", model, models), fontsize="small")
    _label_outer(fig, axes, "post-training steps", "misalignment rate (mean over seeds)")
    for row in axes:  # a row whose first panels are "not measured": its first drawn panel reads the rates
        drawn = [ax for ax in row if ax.axison]
        if drawn and drawn[0] is not row[0]:
            drawn[0].tick_params(labelleft=True)
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes, label="aligned dose in pretraining", shrink=0.9)
    _legend_below(fig, [Line2D([], [], color="black", ls="--", label="dose 0 (control)"),
                        Line2D([], [], color="0.45", lw=0.9, ls="--", label="chance (50%)"),
                        Patch(color="0.3", alpha=0.15, lw=0,
                              label="95% CI over seeds (control, top dose; drawn with >= 3 seeds)")],
                  ncols=3)
    return fig


def _persistence_points(sweep_dir: Path, raw: pd.DataFrame) -> pd.DataFrame:
    from scaling.reports.persistence import points

    if "post_training" not in raw.columns or raw["post_training"].nunique() < 2 or "dose_tokens" not in raw.columns:
        return pd.DataFrame(columns=["post_training"])
    traj = read_trajectory(sweep_dir, raw)
    if traj.empty:
        return pd.DataFrame(columns=["post_training"])
    return points(traj, raw)


def _pretrained_only(results: pd.DataFrame, note: Callable[[str], None]) -> pd.DataFrame:
    """With several post-training kinds the dose figures show the pretrained models
    (post_training none); the persistence figure shows every kind."""
    if "post_training" not in results.columns or results["post_training"].nunique() < 2:
        return results
    none = results[results["post_training"] == "none"]
    note("figures: several post-training kinds: the dose figures show post_training = none "
         "(persistence.png shows every kind)")
    return none


def _of_runs(traj: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    if traj.empty or "run_id" not in results.columns:
        return traj
    return traj[traj["run_id"].astype(str).isin(set(results["run_id"].astype(str)))]


def _transfer_table(sweep_dir: Path, raw: pd.DataFrame) -> pd.DataFrame:
    from scaling.reports.transfer import transfer_table

    traj = read_trajectory(sweep_dir, raw)
    if traj.empty or "unseen_pair" not in set(traj["split"]):
        return pd.DataFrame()
    return transfer_table(traj, raw)


def make_all(sweep_dir: str | Path, out: str | Path | None = None,
             formats: Sequence[str] = ("png", "svg"), fit: str | Path | None = None,
             note: Callable[[str], None] = print) -> list[Path]:
    """Draw every figure of DIR into `out` (default DIR/figures); returns the written paths.

    A figure without data is skipped with a note; so are fitted curves without fit.json.
    """
    sweep_dir = Path(sweep_dir)
    formats = _check_formats(formats)
    raw = fitlib.read_results(sweep_dir / "results.csv")
    results = tidy_results(raw)
    check_splits(results)
    if len(results) < len(raw):
        note(f"figures: left out {len(raw) - len(results)} row(s) with status != ok or no dose")
    fit_path = _find_fit(sweep_dir, fit)
    report = load_fit(fit_path) if fit_path else None
    if report is None:
        note(f"figures: no fit.json in {sweep_dir}: drawing runs without fitted curves "
             f"(scaling fit {sweep_dir / 'results.csv'} --out {sweep_dir})")
    fits = with_halving((report or {}).get("fits") or [], (report or {}).get("halving") or [])
    results, pre = _pretrained_only(results, note), _pretrained_only(raw, lambda _: None)
    out = Path(out) if out is not None else sweep_dir / "figures"
    inputs = Inputs(sweep_dir, raw, pre, results, report, fits)
    paths = []
    for name in registered():
        spec = _REGISTRY[name]
        try:
            fig = spec.draw(*(getattr(inputs, r) for r in spec.reads))
        except MissingData as e:
            note(f"figures: skipped {name}: {e}")
            continue
        paths += save(fig, out / name, formats)
    return paths


def registered() -> tuple[str, ...]:
    """The names of the registered figures, in the order make_all draws them (by rank)."""
    return tuple(sorted(_REGISTRY, key=lambda name: _REGISTRY[name].rank))


FIGURES = registered()
