"""All fits of a table (`fit_table`), the report (fit.json, fit.md) and the CLI."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import UsageError
from scaling.fit.common import (
    BACKGROUND_MODELS,
    ED_LEVELS,
    MODELS,
    POOLED,
    Z95,
    _by,
    _clean,
    _fmt,
    _group_label,
    _warn,
)
from scaling.fit.comparisons import (
    _background_entry,
    _bootstrap,
    compare_insertions,
    cost_effectiveness,
)
from scaling.fit.fitting import fit_curve
from scaling.fit.likelihood import _n_clusters
from scaling.fit.results import CurveFit
from scaling.fit.table import clean_table, group_frames, read_results


@dataclass
class FitReport:
    """All fits of a table: `.fits` (CurveFit), `.comparisons`, `.cost` (dicts)."""

    fits: list[CurveFit]
    comparisons: list[dict]
    cost: list[dict]
    settings: dict

    def to_dict(self) -> dict:
        return {"settings": self.settings, "fits": [f.to_dict() for f in self.fits],
                "comparisons": self.comparisons, "aic_table": self.aic_table(),
                "cost_effectiveness": self.cost}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(_clean(self.to_dict()), indent=indent)

    def aic_table(self) -> list[dict]:
        """AIC per group among fits on the same rows (dose>0 and all-doses models apart)."""
        rows = []
        for (_, data), fits in _by(self.fits, lambda f: (_group_label(f.group), f.data)):
            usable = [f for f in fits if f.usable]
            best = min((f.aic for f in usable), default=None)
            for f in fits:
                rows.append(_clean({"group": f.group, "data": data, "model": f.model,
                                    "background": _background_label(f), "usable": f.usable,
                                    "loglik": f.loglik if f.usable else None,
                                    "aic": f.aic if f.usable else None,
                                    # rounded: the best model's own 0 is not 1e-14
                                    "delta_aic": round(f.aic - best, 6) if f.usable else None}))
        return rows

    def to_markdown(self) -> str:
        lines = ["# Dose-response fits", "",
                 "Robust SEs and 95% CIs (larger of quasi-binomial and seed-clustered); ED CIs "
                 "on the log scale. dAIC compares models fitted to the same rows.", ""]
        aic = {(_group_label(r["group"]), r["model"], r["background"]): r["delta_aic"]
               for r in self.aic_table()}
        header = ["group", "model", "background", "rows", "dispersion", "key estimate (robust SE)",
                  "ED50 [robust 95% CI]", "AIC", "dAIC", "note"]
        body = []
        for f in self.fits:
            d = f.to_dict()
            body.append([_group_label(f.group), f.model, _background_text(d), d["data"],
                         _fmt(d["dispersion"]), _key_estimate(d), _ed50_text(d), _fmt(d["aic"]),
                         _fmt(aic.get((_group_label(f.group), f.model, _background_label(f)))),
                         d["reason"] or "; ".join(d["notes"])])
        lines += _md_table(header, body)
        if self.comparisons:
            lines += ["", "## Comparisons", ""]
            header = ["test", "group", "model", "lr", "df", "p", "lr_robust", "p_robust",
                      "delta_aic", "preferred"]
            lines += _md_table(header, [[c["test"], _group_label(c["group"]), c["model"],
                                         _fmt(c.get("lr")), _fmt(c.get("df")), _fmt(c.get("p")),
                                         _fmt(c.get("lr_robust")), _fmt(c.get("p_robust")),
                                         _fmt(c.get("delta_aic")), c.get("preferred", "")]
                                        for c in self.comparisons])
        if self.cost:
            lines += ["", "## Cost-effectiveness (reduction in misalignment rate vs dose 0)", ""]
            header = ["group", "dose", "runs", "reduction", "se", "per aligned token", "per FLOP"]
            lines += _md_table(header, [[_group_label(c["group"]), _fmt(c["dose"]), c["runs"],
                                         _fmt(c["reduction"]), _fmt(c["se"]),
                                         _fmt(c.get("reduction_per_aligned_token")),
                                         _fmt(c.get("reduction_per_flop"))] for c in self.cost])
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """One line per group: loglinear slope and LL ED50s with robust 95% CIs."""
        lines = []
        for label, fits in _by(self.fits, lambda f: _group_label(f.group)):
            parts = []
            for f in fits:
                if f.background is not None and f.background != "estimate":
                    continue
                name = f.model + (" +bg" if f.background == "estimate" else "")
                if not f.usable:
                    parts.append(f"{name} unusable")
                    continue
                d = f.to_dict()
                if f.model == "loglinear":
                    parts.append(f"{name} slope {_est_ci(d, 'slope')}")
                else:
                    parts.append(f"{name} ED50 {_ed50_text(d)}")
            lines.append(f"{label}: " + "; ".join(parts))
        tests = [c for c in self.comparisons if c["test"] != "background"]
        for c in tests:
            lines.append(f"{c['test']} across insertions ({_group_label(c['group'])}): "
                         f"p_robust={_fmt(c['p_robust'])} (plain p={_fmt(c['p'])})")
        return "\n".join(lines)


def _background_label(fit: CurveFit) -> str:
    if fit.background is None:
        return "none"
    return "estimated" if fit.background == "estimate" else f"{float(fit.background):g}"


def _background_text(d: dict) -> str:
    bg = d["background"]
    if not isinstance(bg, dict):
        return "none" if bg is None else str(bg)
    return _fmt(bg["estimate"]) + (f" ({_fmt(bg['se_robust'])})" if bg.get("se_robust") else "")


def _key_estimate(d: dict) -> str:
    if not d["params"]:
        return ""
    name = "slope" if "slope" in d["params"] else "b"
    return f"{name} {_fmt(d['params'][name])} ({_fmt(d['se_robust'][name] if d['se_robust'] else None)})"


def _est_ci(d: dict, name: str) -> str:
    est, se = d["params"][name], (d["se_robust"] or {}).get(name)
    if se is None:
        return f"{_fmt(est)} [no robust SE]"
    return f"{_fmt(est)} [{_fmt(est - Z95 * se)}, {_fmt(est + Z95 * se)}]"


def _ed50_text(d: dict) -> str:
    ed = (d.get("ed") or {}).get("50")
    if not ed:
        return ""
    lo, hi = ed.get("lower_log_robust"), ed.get("upper_log_robust")
    outside = " (outside the doses)" if ed.get("extrapolated") else ""
    return f"{_fmt(ed['estimate'])} [{_fmt(lo)}, {_fmt(hi)}]{outside}"


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------- table API


def fit_table(df: pd.DataFrame, models: Sequence[str] = MODELS, background="none",
              bootstrap: int = 0, bootstrap_seed: int = 0) -> FitReport:
    """Fit every model to every group of a results table (see the module docstring).

    background: "none", "auto" (estimate x0 beside each plain fit) or a float x0.
    bootstrap: number of seed-level bootstrap replicates per fit (0: none).
    """
    models = _check_models(models)
    background = _parse_background(background)
    df = clean_table(df)
    fits, comparisons, cost = [], [], []
    frames = group_frames(df)
    for group, rows in frames:
        _warn_seeds(group, rows)
        for model in models:
            plain = _fit_rows(model, rows, group, None, bootstrap, bootstrap_seed)
            fits.append(plain)
            if background is not None and (background != "estimate" or model in BACKGROUND_MODELS):
                with_bg = _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed)
                fits.append(with_bg)
                comparisons.append(_background_entry(plain, with_bg))
        if group.get("insertion") != POOLED:
            cost += cost_effectiveness(group, rows)
    if "LL.2" in models:
        comparisons += _insertion_comparisons(frames, fits)
    settings = {"models": list(models),
                "background": "auto" if background == "estimate" else background,
                "background_models": [m for m in models if background is not None
                                       and (background != "estimate" or m in BACKGROUND_MODELS)],
                "bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed,
                "ed_levels": list(ED_LEVELS)}
    return FitReport(fits, comparisons, cost, settings)


def _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed) -> CurveFit:
    seeds = rows["seed"].to_numpy(dtype=object) if "seed" in rows.columns else None
    fit = fit_curve(model, rows["dose"], rows["misaligned"], rows["total"], seeds=seeds,
                    background=background, group=group)
    if bootstrap and fit.usable:
        subset = rows[rows["dose"] > 0] if fit.data == "dose>0" else rows
        fit.bootstrap = _bootstrap(fit, subset, bootstrap, bootstrap_seed)
    return fit


def _insertion_comparisons(frames, fits) -> list[dict]:
    usable = {(_group_label(f.group)) for f in fits
              if f.model == "LL.2" and f.background is None and f.usable}
    cells: dict = {}
    for group, rows in frames:
        if "insertion" not in group or group["insertion"] == POOLED:
            continue
        cell = {k: v for k, v in group.items() if k != "insertion"}
        cells.setdefault(_group_label(cell), (cell, []))[1].append((group, rows))
    out = []
    for cell, members in cells.values():
        ok = [(g["insertion"], rows) for g, rows in members if _group_label(g) in usable]
        if len(ok) >= 2:
            out += compare_insertions(cell, ok)
        elif len(members) >= 2:
            _warn(f"{_group_label(cell)}: fewer than 2 insertion windows with a usable LL.2 fit; "
                  "no comparison across windows")
    return out


def _warn_seeds(group: dict, rows: pd.DataFrame) -> None:
    if "seed" in rows.columns and _n_clusters(rows["seed"]) < 2:
        _warn(f"{_group_label(group)}: one seed only: no cluster-robust SE or seed bootstrap; "
              "se_robust falls back to the quasi-binomial scale")


def _check_models(models) -> tuple[str, ...]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise UsageError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}")
    return tuple(models)


def _parse_background(value):
    """"none" -> None, "auto" -> "estimate", a positive number -> that x0."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, str) and value.strip().lower() in ("auto", "estimate"):
        return "estimate"
    try:
        x0 = float(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--background must be auto, none or a positive number, not {value!r}") from e
    if not np.isfinite(x0) or x0 <= 0:
        raise UsageError(f"--background must be a positive number, not {value!r}")
    return x0



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results table (CSV with dose, misaligned, total, ...)")
    parser.add_argument("--out", default=None,
                        help="output directory for fit.json and fit.md (default: beside RESULTS.csv)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--background", default="auto",
                        help="dose axis ln(x0 + dose): auto (estimate x0 and compare by AIC), "
                             "none, or a fixed x0")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="seed-level bootstrap replicates per fit (0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def run(args) -> int:
    if args.bootstrap < 0:
        raise UsageError("--bootstrap must be >= 0")
    df = read_results(args.results)
    # One line per warning, without the source line Python would show for each.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fit_table(df, models=args.models, background=args.background,
                           bootstrap=args.bootstrap, bootstrap_seed=args.bootstrap_seed)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.results).parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.json").write_text(report.to_json() + "\n")
    (out / "fit.md").write_text(report.to_markdown())
    print(report.summary())
    print(f"wrote {out / 'fit.json'} and {out / 'fit.md'}")
    return 0

