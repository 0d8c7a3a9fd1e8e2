"""The figure registry: `@figure(NAME, RANK, INPUTS...)` registers a drawing function, and
`make_all` reads a study's tables once (`Inputs`) and draws and saves every registered figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from scaling import table as results_table
from scaling.errors import UsageError
from scaling.figures.fits import with_halving
from scaling.figures.style import FORMATS, save
from scaling.figures.tables import check_splits, load_fit, tidy_results
from scaling.reports import means
from scaling.reports.arms import arm_table
from scaling.reports.cost import clip_differences, cost_table


class MissingData(Exception):
    """A figure's data is absent; `make_all` skips the figure and prints this note."""


# How a study's trajectory table is read: (the study's directory, the results rows its runs
# are taken from) -> one row per run, checkpoint and split (scaling.results' trajectory.csv).
TrajectoryReader = Callable[[Path, pd.DataFrame], pd.DataFrame]


def trajectory_csv(sweep_dir: Path, results: pd.DataFrame) -> pd.DataFrame:
    """DIR/trajectory.csv as written by `scaling results`; an empty table without it."""
    path = Path(sweep_dir) / "trajectory.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


@dataclass(frozen=True)
class Inputs:
    """What `make_all` reads once for every figure: the tidy results (pretrained models when
    several post-training kinds were run), the raw table, fit.json; tables derived from them
    are properties, computed once when a figure first asks (the figures never change a table
    they are handed)."""

    sweep_dir: Path
    raw: pd.DataFrame  # results.csv as read
    pre: pd.DataFrame  # raw, pretrained models only
    results: pd.DataFrame  # tidy rows of `pre`
    report: dict | None  # fit.json
    fits: Sequence[dict]
    read_trajectory: TrajectoryReader = trajectory_csv

    @cached_property
    def cost(self) -> pd.DataFrame:
        return cost_table(self.results, self.report)

    @cached_property
    def trajectory(self) -> pd.DataFrame:
        return _of_runs(self.read_trajectory(self.sweep_dir, self.results), self.results)

    @cached_property
    def trajectory_means(self) -> pd.DataFrame:
        return means.trajectory_means(self.trajectory)

    @cached_property
    def transfer_table(self) -> pd.DataFrame:
        """The dose effects over training (scaling.reports.transfer), intervals clipped to [-1, 1]."""
        return _transfer_table(self.read_trajectory(self.sweep_dir, self.pre), self.pre)

    @cached_property
    def persistence_means(self) -> pd.DataFrame:
        return means.persistence_means(_persistence_points(self.read_trajectory, self.sweep_dir, self.raw))

    @cached_property
    def resistance_means(self) -> pd.DataFrame:
        """The resistance curves (scaling.reports.resistance) of every run, post-trained ones
        included, as seed means."""
        from scaling.reports.resistance import curves

        if "post_training" not in self.raw.columns:
            return pd.DataFrame()
        traj = self.read_trajectory(self.sweep_dir, self.raw)
        return means.resistance_means(curves(traj, self.raw) if not traj.empty else pd.DataFrame())

    @cached_property
    def capability_runs(self) -> pd.DataFrame:
        return means.capability_runs(self.results)

    @cached_property
    def capability_means(self) -> pd.DataFrame:
        return means.capability_means(self.capability_runs)

    @cached_property
    def readout_means(self) -> pd.DataFrame:
        return means.readout_means(self.results)

    @cached_property
    def arms(self) -> pd.DataFrame:
        return arm_table(self.results)

    @cached_property
    def arm_means(self) -> pd.DataFrame:
        return means.arm_means(self.arms)


@dataclass(frozen=True)
class FigureSpec:
    name: str  # the output file stem
    rank: int  # place in FIGURES
    reads: tuple[str, ...]  # the `Inputs` fields passed to `draw`, in order
    draw: Callable[..., Figure]
    study: bool = True  # drawn by make_all; else by its own command, which hands it its tables


_REGISTRY: dict[str, FigureSpec] = {}


def figure(name: str, rank: int, *reads: str, study: bool = True) -> Callable[[Callable], Callable]:
    """Register a figure function for `make_all`: it draws OUT/NAME.FORMAT from the `Inputs`
    fields `reads`, at place `rank` among the figures. With study=False make_all leaves it
    out: its own command draws it (and saves it with `save`). The function is returned
    unchanged."""
    unknown = [r for r in reads if not hasattr(Inputs, r) and r not in Inputs.__dataclass_fields__]
    if unknown:
        raise ValueError(f"figure {name}: unknown input(s) {unknown}")

    def register(fn: Callable[..., Figure]) -> Callable[..., Figure]:
        if name in _REGISTRY or any(spec.rank == rank for spec in _REGISTRY.values()):
            raise ValueError(f"figure {name} (rank {rank}): name or rank already registered")
        _REGISTRY[name] = FigureSpec(name, rank, reads, fn, study)
        return fn

    return register


def check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f.strip().lower() for f in formats.split(",") if f.strip()]
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def find_fit(sweep_dir: Path, fit: str | Path | None) -> Path | None:
    if fit is not None:
        if not Path(fit).is_file():
            raise UsageError(f"{fit}: no such file (run `scaling fit {sweep_dir / 'results.csv'} "
                             f"--out {sweep_dir}`)")
        return Path(fit)
    for candidate in (sweep_dir / "fit.json", sweep_dir / "fits" / "fit.json"):
        if candidate.is_file():
            return candidate
    return None


def _persistence_points(read: TrajectoryReader, sweep_dir: Path, raw: pd.DataFrame) -> pd.DataFrame:
    from scaling.reports.persistence import points

    if "post_training" not in raw.columns or raw["post_training"].nunique() < 2 or "dose_tokens" not in raw.columns:
        return pd.DataFrame(columns=["post_training"])
    traj = read(sweep_dir, raw)
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


def _transfer_table(traj: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    from scaling.reports.transfer import transfer_table

    if traj.empty or "unseen_pair" not in set(traj["split"]):
        return pd.DataFrame()
    return clip_differences(transfer_table(traj, raw))


def make_all(sweep_dir: str | Path, out: str | Path | None = None,
             formats: Sequence[str] = ("png", "svg"), fit: str | Path | None = None,
             note: Callable[[str], None] = print,
             read_trajectory: TrajectoryReader = trajectory_csv) -> list[Path]:
    """Draw every figure of DIR into `out` (default DIR/figures); returns the written paths.

    A figure without data is skipped with a note; so are fitted curves without fit.json.
    `read_trajectory` reads the trajectory table (default: DIR/trajectory.csv; `scaling
    figures` passes scaling.results.read_trajectory, which builds it from DIR/runs/ when the
    file is absent: the figures themselves read no run directory).
    """
    sweep_dir = Path(sweep_dir)
    formats = check_formats(formats)
    raw = results_table.read(sweep_dir / "results.csv")
    results = tidy_results(raw)
    check_splits(results)
    if len(results) < len(raw):
        note(f"figures: left out {len(raw) - len(results)} row(s) with status != ok or no dose")
    fit_path = find_fit(sweep_dir, fit)
    report = load_fit(fit_path) if fit_path else None
    if report is None:
        note(f"figures: no fit.json in {sweep_dir}: drawing runs without fitted curves "
             f"(scaling fit {sweep_dir / 'results.csv'} --out {sweep_dir})")
    fits = with_halving((report or {}).get("fits") or [], (report or {}).get("halving") or [])
    results, pre = _pretrained_only(results, note), _pretrained_only(raw, lambda _: None)
    out = Path(out) if out is not None else sweep_dir / "figures"
    inputs = Inputs(sweep_dir, raw, pre, results, report, fits, read_trajectory)
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


def registered(everything: bool = False) -> tuple[str, ...]:
    """The names of the figures make_all draws, in its order (by rank); with `everything`, those
    drawn by their own commands too."""
    names = [name for name, spec in _REGISTRY.items() if everything or spec.study]
    return tuple(sorted(names, key=lambda name: _REGISTRY[name].rank))
