"""All fits of a table (`fit_table`) and the report (fit.json, fit.md; `scaling fit` is scaling.cli.fit).

`fit_table` fits every model of scaling.stats to every group of a results table, with the tests
and contrasts the study claims (Holm over HOLM_FAMILY); `FitReport.to_json` / `to_markdown`
render what it computed and fit nothing.

fit.json:
  fits[]: group, model, data, usable, reason, notes, n_obs, n_seeds, blocks, dispersion,
    df_resid, loglik, aic, background, params, se (plain, as drc), se_cluster, se_robust,
    ed (drc's relative EDs), control_level (fitted rate at dose 0, average block), ed_control
    {"10","50","90": {estimate, lower, upper, se_log, method, df, extrapolated}}: the dose at
    which the rate is p% of the way from control_level to the floor; interval exp(ln ED +-
    t*SE), SE from the sandwich clustered by unit (block, or world) with t on units - 1
    df (method "cluster"; the quasi-binomial SE with t on df_resid when there is one unit); a
    curve that rises from control_level (its limit at high doses at or above it) has no halving
    dose: {estimate: null, lower: null, upper: null, rises: true, control_level, limit}; vcov,
    bootstrap.
  comparisons[]: each {name, test, estimate, lower, upper, p, p_holm, ...}: background (QAIC
    and quasi F test; "preferred" by QAIC), lack_of_fit (against one rate per dose level),
    equal_slope / equal_ed50 (LL.2) and equal_halving_dose (LL.3) across windows, and the
    paired contrasts of scaling.stats.contrasts. p_holm: Holm over the family named in
    HOLM_FAMILY, None outside it.
  aic_table[]: QAIC model choice (binomial AIC listed, never used to choose);
  cost_effectiveness[]: reduction vs dose 0 paired by block, per aligned token and per
    marginal FLOP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import UsageError
from scaling.io import write_text
from scaling.reports import persistence, resistance, transfer
from scaling.splits import MAIN, TRANSFER
from scaling.stats import halving as halving_mod
from scaling.stats.common import (
    BACKGROUND_MODELS,
    ED_LEVELS,
    ED_METHOD,
    MODELS,
    POOLED,
    clean,
    fmt,
    group_by,
    group_label,
    warn_fit,
)
from scaling.stats.comparisons import (
    background_entry,
    bootstrap_fit,
    compare_halving_doses,
    compare_insertions,
    cost_effectiveness,
    lack_of_fit,
    qaic,
)
from scaling.stats.contrasts import PAIRED_TEST, add_holm, named_contrasts
from scaling.stats.curves import CURVES
from scaling.stats.fitting import fit_curve
from scaling.stats.groups import (
    BLOCK_COLUMNS,
    block_labels,
    block_mode,
    clean_table,
    cluster_labels,
    group_frames,
    with_blocks,
)
from scaling.stats.likelihood import count_clusters
from scaling.stats.results import CurveFit, rises_text
from scaling.table import check_one_data_version, dose_level, is_counting, world_text

# Models whose fit to the dose levels is tested: "linear in log dose" (loglinear, LL.2).
LACK_OF_FIT_MODELS = ("loglinear", "LL.2")
# Whose halving dose the summary leads with, first usable wins (the issue's LL.3 first).
HEADLINE_MODELS = ("LL.3", "LL.4", "LL.2", "loglinear")
# The study's claims, adjusted together (Holm). Background-dose tests and the lack-of-fit tests
# of LL.2/LL.3 choose models; they carry a p but no p_holm.
# LL.2's equal_ed50 compares where the rate crosses 0.5 (drc's test, kept for comparison);
# equal_halving_dose compares the control-relative ED50s and is the claim.
HOLM_TESTS = ("alignment_tax", "transfer", "windows", "beyond_counting", "post_training",
              "equal_slope", "equal_halving_dose", "lack_of_fit:loglinear", "lack_of_fit:LL.2")
HOLM_FAMILY = ("the named paired contrasts (alignment tax, transfer, windows at equal dose, beyond "
               "counting against every counting baseline, post-training), equal LL.2 slope and equal "
               "halving dose (LL.3) across windows, and the lack-of-fit "
               "tests of 'linear in log dose' (loglinear: the rate; LL.2: its logit), of the trained "
               "models' curves; the counting baselines' own curve tests carry a p but are not claims, "
               "so they are not adjusted")


@dataclass
class FitReport:
    """All fits of a table: `.fits` (CurveFit), `.comparisons`, `.cost` (dicts)."""

    fits: list[CurveFit]
    comparisons: list[dict]
    cost: list[dict]
    settings: dict
    halving: list[dict] = field(default_factory=list)  # one entry per group (scaling.stats.halving)

    def to_dict(self) -> dict:
        return {"settings": self.settings, "halving": self.halving,
                "fits": [f.to_dict() for f in self.fits],
                "comparisons": self.comparisons, "aic_table": self.aic_table(),
                "cost_effectiveness": self.cost}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(clean(self.to_dict()), indent=indent)

    def aic_table(self) -> list[dict]:
        """Model choice per group among fits on the same rows (dose>0 and all-doses apart).

        QAIC with c = max(1, Pearson dispersion of the largest usable model on those rows)
        decides ("chosen"); binomial AIC is listed beside it but decides nothing once c > 1.
        """
        rows = []
        for (_, data), fits in group_by(self.fits, lambda f: (group_label(f.group), f.data)):
            usable = [f for f in fits if f.usable]
            c_hat = _c_hat(usable)
            best_aic = min((f.aic for f in usable), default=None)
            best_qaic = min((qaic(f, c_hat) for f in usable), default=None)
            for f in fits:
                q = qaic(f, c_hat) if f.usable else None
                rows.append(clean({"group": f.group, "data": data, "model": f.model,
                                    "background": _background_label(f), "usable": f.usable,
                                    "loglik": f.loglik if f.usable else None,
                                    "aic": f.aic if f.usable else None,
                                    # rounded: the best model's own 0 is not 1e-14
                                    "delta_aic": round(f.aic - best_aic, 6) if f.usable else None,
                                    "c_hat": c_hat, "qaic": q,
                                    "delta_qaic": round(q - best_qaic, 6) if f.usable else None,
                                    "chosen": bool(f.usable and q == best_qaic)}))
        return rows

    def chosen(self) -> list[CurveFit]:
        """The QAIC-chosen all-doses fit per group (the control-relative EDs come from it)."""
        picked = {(group_label(r["group"]), r["model"], r["background"])
                  for r in self.aic_table() if r["chosen"] and r["data"] == "all doses"}
        return [f for f in self.fits
                if (group_label(f.group), f.model, _background_label(f)) in picked]

    def to_markdown(self, keep=None, title: str = "Dose-response fits", note: str = "") -> str:
        """fit.md's text; `keep(group) -> bool` limits every table to those groups' rows (fit.md:
        the trained models and each cell's strongest counter; counters.md: the counters)."""
        keep = keep or (lambda group: True)
        dicts = [f.to_dict() for f in self.fits if keep(f.group)]
        halvings = sorted((h for h in self.halving if keep(h.get("group") or {})),
                          key=lambda h: is_counting(str(h["group"].get("model", ""))))
        comparisons = [c for c in self.comparisons if "group" not in c or keep(c.get("group") or {})]
        chosen = self._chosen_keys()
        blocks = BLOCKS_TEXT[self.settings.get("block_mode", "seed")]
        world = self.settings.get("world")
        lines = [f"# {title}", ""]
        if world:
            lines += [f"What ran: {world}.", ""]
        if note:
            lines += [note, ""]
        lines += [f"{blocks} {MARKDOWN_INTRO}", ""]
        lines += ["## Halving dose", "", *HALVING_VERDICT_NOTE, ""]
        lines += _md_table(["group", "halving dose", "dose trend p", "lack of fit p", "curve"],
                           [[group_label(h["group"]), halving_mod.text(h), fmt(h.get("p_trend")),
                             fmt(h.get("p_lack_of_fit")), h.get("model") or "-"] for h in halvings])
        lines += ["", "## Control-relative EDs of every curve (ED50, ED10, ED90)", "", *HALVING_NOTE, ""]
        lines += _md_table(["group", "model", "chosen by QAIC", "control level", "ED50 [95% CI]",
                            "ED10", "ED90", "interval", "dispersion"],
                           [_halving_row(d, chosen) for d in dicts if _has_control_ed(d)])
        aic = [r for r in self.aic_table() if keep(r["group"])]
        lines += ["", "## Model choice (QAIC; binomial AIC shown, never used to choose)", ""]
        lines += _md_table(["group", "rows", "model", "background", "c", "dQAIC", "dAIC",
                            "chosen"],
                           [[group_label(r["group"]), r["data"], r["model"], r["background"],
                             fmt(r["c_hat"]), fmt(r["delta_qaic"]), fmt(r["delta_aic"]),
                             "yes" if r["chosen"] else ""] for r in aic])
        lines += ["", "## Tests and contrasts", "", f"Holm family: {HOLM_FAMILY}; "
                  f"{sum(c.get('p_holm') is not None for c in self.comparisons)} tests. The "
                  "other tests choose models and are not adjusted.", ""]
        units = "worlds" if self.settings.get("block_mode") == "world" else "blocks"
        lines += _md_table(["name", "test", "estimate [95% CI]", "interval", "p", "p_holm", "verdict"],
                           [[c["name"], c["test"], _estimate_ci(c), _interval_df(c, units), fmt(c.get("p")),
                             fmt(c.get("p_holm")), _verdict(c)] for c in comparisons])
        lines += ["", "## All fits", "", *ALL_FITS_NOTE, ""]
        header = ["group", "model", "background", "rows", "dispersion", "key estimate (robust SE)",
                  "drc ED50 [robust 95% CI]", "note"]
        lines += _md_table(header, [[group_label(d["group"]), _model_label(d["model"]),
                                     _background_text(d), d["data"], fmt(d["dispersion"]),
                                     _key_estimate(d), _ed50_text(d),
                                     d["reason"] or "; ".join(d["notes"])] for d in dicts])
        cost = [c for c in self.cost if keep(c["group"])]
        if cost:
            lines += ["", "## Cost-effectiveness (reduction in misalignment rate vs dose 0)", ""]
            header = ["group", "dose", "runs", "reduction", "se", "interval", "per aligned token",
                      "per marginal FLOP"]
            lines += _md_table(header, [[group_label(c["group"]), fmt(c["dose"]), c["runs"],
                                         fmt(c["reduction"]), fmt(c["se"]),
                                         f"t({c['df']})" if c.get("paired") else "z, unpaired",
                                         fmt(c.get("reduction_per_aligned_token")),
                                         fmt(c.get("reduction_per_marginal_flop"))] for c in cost])
        return "\n".join(lines) + "\n"

    def _chosen_keys(self) -> set:
        return {(group_label(r["group"]), r["model"], r["background"])
                for r in self.aic_table() if r["chosen"]}

    def summary(self) -> str:
        """One line per group: its halving dose (scaling.stats.halving, trained models first); then
        the contrasts with Holm p < 0.05."""
        lines = [f"{group_label(h['group'])}: {halving_mod.text(h)}" + (f" ({h['model']})" if h.get("model") else "")
                 for h in sorted(self.halving, key=lambda h: is_counting(str(h["group"].get("model", ""))))]
        for c in self.comparisons:
            if c.get("p_holm") is not None and c["p_holm"] < 0.05:
                lines.append(f"{c['name']}: {_estimate_ci(c)} p_holm={fmt(c['p_holm'])}")
        return "\n".join(lines)


def headline_fit(fits: list[CurveFit]) -> CurveFit | None:
    """The fit of one group whose halving dose leads (the summary's, fit.md's and scaling.study's)."""
    return _headline_fit(fits)


def _headline_fit(fits: list[CurveFit]) -> CurveFit | None:
    """The fit whose control-relative ED leads: LL.3, else LL.4, else a background model."""
    usable = [f for f in fits if f.usable and f.control_level() is not None]
    for model in HEADLINE_MODELS:
        for f in usable:
            if f.model == model and (f.background is None or model in BACKGROUND_MODELS):
                return f
    return None


BLOCKS_TEXT = {
    "seed": "Every model has the train seed (and world seed, when the table has one) as blocks: one "
            "effect per block on the dose-0 level; SEs clustered by block, contrasts paired by block, "
            "t on blocks - 1 df.",
    "world": "Worlds are the independent units, seeds nested in them (--blocks world): every model has "
             "one effect per (train seed, world seed) block on the dose-0 level, SEs are clustered by "
             "world and paired contrasts are averaged within each world first, t on worlds - 1 df.",
    "none": "No blocks (--blocks none): every fit is the pooled binomial fit that R's drc computes, "
            "SEs are not clustered and nothing is paired.",
}
MARKDOWN_INTRO = ("Control-relative EDs are the headline; LL.2 with its limits fixed at 0 and 1 is kept "
                  "only as the GLM that R's drc reproduces, and its 'ED50' is where the rate crosses 0.5, "
                  "not a halving of the control's rate.")
HALVING_VERDICT_NOTE = [
    "The halving dose of each group, as every output says it (scaling.stats.halving): the "
    "control-relative ED50 of the group's headline curve (LL.3, else LL.4, ...), given only where "
    "the dose levels differ at all (dose trend: quasi F test of one rate per block against one rate "
    "per dose level and block, p < 0.05) and the curve follows the dose levels (lack of fit: quasi F "
    "test against one free level per dose in the curve's own form, p >= 0.05). Otherwise the dose "
    "means bracket it between two tested doses; an estimate outside the tested doses names the side.",
]
HALVING_NOTE = [
    "ED p: the dose at which the fitted rate is p% of the way from the fitted dose-0 (control) "
    "level to the fitted floor; ED50 halves the distance. Interval: exp(ln ED +- t * SE(ln ED)), "
    "SE from the sandwich clustered by the table's units (blocks, or worlds with --blocks world), t on "
    "(units - 1) df, the 'interval' column's t(df) (falls back to quasi-binomial, t on the residual "
    "df, with one unit). This interval covers a known ED50 in 90-98% of 200 simulated studies, and "
    "with world units over worlds that differ in their ED50 (tests/test_fit_coverage.py). '-' : "
    "not reached at a positive dose.",
]
ALL_FITS_NOTE = [
    "drc-parametrised estimates. 'drc ED50' is drc's relative ED between the curve's limits: for "
    "LL.2 (limits 0 and 1) the dose where the rate crosses 0.5. Robust SE: larger of "
    "quasi-binomial and seed-clustered.",
]


def _has_control_ed(d: dict) -> bool:
    return d["usable"] and d["model"] != "loglinear" and d.get("control_level") is not None


def _halving_row(d: dict, chosen: set) -> list:
    eds = d.get("ed_control") or {}
    ed50 = eds.get("50")
    key = (group_label(d["group"]), d["model"], _background_text_label(d))
    interval = f"{ed50['method']}, t({ed50['df']})" if ed50 and not ed50.get("rises") else ""
    return [group_label(d["group"]), _model_label(d["model"]) + _bg_suffix(d),
            "yes" if key in chosen else "", fmt(d.get("control_level")),
            _control_ed_text(ed50, d.get("dose_range")), fmt((eds.get("10") or {}).get("estimate")),
            fmt((eds.get("90") or {}).get("estimate")), interval, fmt(d["dispersion"])]


def _control_ed_text(ed: dict | None, dose_range=None) -> str:
    if not ed:
        return "-"
    if ed.get("rises"):
        return rises_text(ed)
    if ed.get("extrapolated") and dose_range:
        side = "below the lowest" if ed["estimate"] < dose_range[0] else "above the highest"
        return f"{side} dose tested"
    return f"{fmt(ed['estimate'])} [{fmt(ed['lower'])}, {fmt(ed['upper'])}]"


def _estimate_ci(c: dict) -> str:
    if c.get("estimate") is None:
        return "-"
    if c.get("lower") is None:
        return fmt(c["estimate"])
    return f"{fmt(c['estimate'])} [{fmt(c['lower'])}, {fmt(c['upper'])}]"


def _interval_df(c: dict, units: str) -> str:
    """The t interval's df of a paired contrast, with what it counts; '' for other tests."""
    if c.get("method") != PAIRED_TEST:
        return ""
    return f"t({c['df']}): {c['blocks']} {units}"


def _verdict(c: dict) -> str:
    if c.get("verdict"):
        return c["verdict"]
    if c.get("preferred"):
        return f"preferred: {c['preferred']}"
    if c.get("beyond_counting") is not None:
        return "beyond counting" if c["beyond_counting"] else "not shown beyond counting"
    if c.get("lower") is not None:
        return "CI excludes 0" if c["lower"] > 0 or c["upper"] < 0 else "CI includes 0"
    return ""


def _model_label(model: str) -> str:
    return "LL.2 (drc GLM, limits 0/1)" if model == "LL.2" else model


def _bg_suffix(d: dict) -> str:
    bg = d["background"]
    return "" if bg is None else " +background"


def _background_text_label(d: dict) -> str:
    bg = d["background"]
    if not isinstance(bg, dict):
        return "none"
    return "estimated" if bg["mode"] == "estimated" else f"{float(bg['estimate']):g}"


def _c_hat(fits: list[CurveFit]) -> float:
    """Dispersion of the largest model (most parameters) among fits on the same rows."""
    if not fits:
        return 1.0
    largest = max(fits, key=lambda f: (f.n_params, -(f.dispersion or 0)))
    return max(1.0, largest.dispersion or 1.0)


def _background_label(fit: CurveFit) -> str:
    if fit.background is None:
        return "none"
    return "estimated" if fit.background == "estimate" else f"{float(fit.background):g}"


def _background_text(d: dict) -> str:
    bg = d["background"]
    if not isinstance(bg, dict):
        return "none" if bg is None else str(bg)
    return fmt(bg["estimate"]) + (f" ({fmt(bg['se_robust'])})" if bg.get("se_robust") else "")


def _key_estimate(d: dict) -> str:
    if not d["params"]:
        return ""
    name = "slope" if "slope" in d["params"] else "b"
    return f"{name} {fmt(d['params'][name])} ({fmt(d['se_robust'][name] if d['se_robust'] else None)})"


def _ed50_text(d: dict) -> str:
    ed = (d.get("ed") or {}).get("50")
    if not ed:
        return ""
    lo, hi = ed.get("lower_log_robust"), ed.get("upper_log_robust")
    outside = " (outside the doses)" if ed.get("extrapolated") else ""
    return f"{fmt(ed['estimate'])} [{fmt(lo)}, {fmt(hi)}]{outside}"


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------- table API


def fit_table(df: pd.DataFrame, models: Sequence[str] = MODELS, background="none",
              bootstrap: int = 0, bootstrap_seed: int = 0, blocks: str = "auto") -> FitReport:
    """Fit every model to every group of a results table (see the module docstring).

    background: "none", "auto" (estimate x0 beside each plain fit) or a float x0.
    bootstrap: number of block-level (train seed x world seed) bootstrap replicates per fit (0: none).
    blocks: one of table.BLOCK_MODES; "none" fits every group pooled, as R's drc does.
    """
    models = _check_models(models)
    background = _parse_background(background)
    check_one_data_version(df)
    world = world_text(df)
    versions = {c: sorted({str(v) for v in df[c].dropna()} - {""}) if c in df.columns else []
                for c in ("world_version", "data_version")}
    df = clean_table(df)
    mode = block_mode(df, blocks)
    df = with_blocks(df, mode)
    fits, comparisons, cost, halvings = [], [], [], []
    frames = group_frames(df)
    for group, rows in frames:
        _warn_seeds(group, rows)
        first = len(fits)
        for model in models:
            plain = _fit_rows(model, rows, group, None, bootstrap, bootstrap_seed)
            fits.append(plain)
            if background is not None and (background != "estimate" or model in BACKGROUND_MODELS):
                with_bg = _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed)
                fits.append(with_bg)
                comparisons.append(background_entry(plain, with_bg))
            comparisons += _lack_of_fit(plain, rows)
        halvings.append(halving_mod.halving(_headline_fit(fits[first:]), rows, group))
        if group.get("insertion") != POOLED:
            cost += cost_effectiveness(group, rows)
    if "LL.2" in models or "LL.3" in models:
        comparisons += _insertion_comparisons(frames, fits)
    comparisons += named_contrasts(df, MAIN, TRANSFER)
    add_holm(comparisons, _in_holm_family)
    settings = {"world": world, **versions, "models": list(models),
                "background": "auto" if background == "estimate" else background,
                "background_models": [m for m in models if background is not None
                                       and (background != "estimate" or m in BACKGROUND_MODELS)],
                "bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed,
                "ed_levels": list(ED_LEVELS), "ed_method": ED_METHOD,
                "blocks": [c for c in BLOCK_COLUMNS if c in df.columns], "block_mode": mode,
                "holm_family": HOLM_FAMILY}
    return FitReport(fits, comparisons, cost, settings, halvings)


def _fit_rows(model, rows, group, background, bootstrap, bootstrap_seed) -> CurveFit:
    fit = fit_curve(model, rows["dose"], rows["misaligned"], rows["total"], seeds=cluster_labels(rows),
                    blocks=block_labels(rows), background=background, group=group,
                    levels=dose_level(rows))
    if bootstrap and fit.usable:
        subset = rows[rows["dose"] > 0] if fit.data == "dose>0" else rows
        fit.bootstrap = bootstrap_fit(fit, subset, bootstrap, bootstrap_seed)
    return fit


def _insertion_comparisons(frames, fits) -> list[dict]:
    usable = {(group_label(f.group)) for f in fits
              if f.model == "LL.2" and f.background is None and f.usable}
    cells: dict = {}
    for group, rows in frames:
        if "insertion" not in group or group["insertion"] == POOLED:
            continue
        cell = {k: v for k, v in group.items() if k != "insertion"}
        cells.setdefault(group_label(cell), (cell, []))[1].append((group, rows))
    ll3 = {group_label(f.group): f for f in fits
           if f.model == "LL.3" and f.background is None and f.usable}
    out = []
    for cell, members in cells.values():
        ok = [(g["insertion"], rows) for g, rows in members if group_label(g) in usable]
        if len(ok) >= 2:
            out += compare_insertions(cell, ok)
        with_ll3 = [(g["insertion"], rows, ll3[group_label(g)]) for g, rows in members
                    if group_label(g) in ll3]
        if len(with_ll3) >= 2:
            out.append(compare_halving_doses(cell, with_ll3))
        elif len(members) >= 2:
            warn_fit(f"{group_label(cell)}: fewer than 2 insertion windows with a usable LL.2 fit; "
                  "no comparison across windows")
    return out


def _in_holm_family(entry: dict) -> bool:
    """A claim about a trained model: a named contrast, or a curve test (lack of fit, equal
    slope or halving dose) of a model that is not a counting baseline."""
    test = entry["test"]
    if is_counting(str((entry.get("group") or {}).get("model", ""))):
        return False
    return test in HOLM_TESTS or f"{test}:{entry.get('model')}" in HOLM_TESTS


def _lack_of_fit(fit: CurveFit, rows: pd.DataFrame) -> list[dict]:
    """Lack-of-fit tests for the models whose shape is a claim (LACK_OF_FIT_MODELS: log-linear and LL.2)."""
    if fit.model not in LACK_OF_FIT_MODELS or fit.group.get("insertion") == POOLED:
        return []
    entry = lack_of_fit(fit, rows)
    return [entry] if entry else []


def _warn_seeds(group: dict, rows: pd.DataFrame) -> None:
    if "seed" in rows.columns and count_clusters(rows["seed"]) < 2:
        warn_fit(f"{group_label(group)}: one seed only: no cluster-robust SE or seed bootstrap; "
              "se_robust falls back to the quasi-binomial scale")


def _check_models(models) -> tuple[str, ...]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in models if m not in CURVES]
    if unknown or not models:
        raise UsageError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CURVES)}")
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



def write_report(report: FitReport, out: Path, appendix: str = "", df: pd.DataFrame | None = None) -> None:
    """fit.json, fit.md (+ `appendix`) and, when the table has counting baselines, counters.md;
    each written whole (temporary file, then rename): a kill leaves the old file or the new one,
    never a cut one that a figure run would misread. fit.md holds the trained models and, with
    `df` (the results table), each cell's strongest counter (scaling.reports.answer); every
    counter's rows are in counters.md."""
    files = {"fit.json": report.to_json() + "\n"}
    counters = {str(f.group.get("model", "")) for f in report.fits if is_counting(str(f.group.get("model", "")))}
    if counters:
        from scaling.reports.answer import strongest_counters

        strongest = strongest_counters(report, df) if df is not None else {}
        kept = set(strongest.values())
        note = ("Counting baselines: fit.md shows each split's strongest counter (" + ", ".join(sorted(kept))
                + "); every counter's fits are in counters.md.") if kept else \
            "Counting baselines: their fits are in counters.md."
        files["fit.md"] = report.to_markdown(
            keep=lambda g: not is_counting(str(g.get("model", ""))) or str(g.get("model")) in kept, note=note)
        files["counters.md"] = report.to_markdown(
            keep=lambda g: is_counting(str(g.get("model", ""))), title="Counting baselines' fits",
            note="The counting baselines fitted on the same runs' training rows (fit.md has the trained models).")
    else:
        files["fit.md"] = report.to_markdown()
    files["fit.md"] += f"\n{appendix}" if appendix else ""
    for name, text in files.items():
        write_text(out / name, text)


def write_transfer(results: pd.DataFrame, trajectory: Path, out: Path, units: str = "seed") -> bool:
    """transfer.md (paired dose effects beyond counting, values control) when the table comes
    from the value-grounded world and trajectory.csv is there; True if written. units: "seed"
    pairs by (seed, world seed) block, "world" by world (transfer.UNITS)."""
    if not Path(trajectory).exists():
        return False
    traj = pd.read_csv(trajectory)
    if not {"split", "step", "rate", "aligned_fraction"} <= set(traj.columns):
        return False
    if "post_training" in results.columns and results["post_training"].nunique() > 1:
        results = results[results["post_training"] == "none"]  # after post-training: persistence.md
        if results.empty:  # every run post-trained (a persistence study without a "none" arm)
            return False
    text = transfer.report(traj, results, units)
    if text:
        write_text(Path(out) / "transfer.md", text)
    return bool(text)


def write_persistence(results: pd.DataFrame, trajectory: Path, out: Path, report: FitReport | None = None) -> bool:
    """persistence.md (the resistance table when runs were measured at several post-training
    steps; misalignment before and after each post-training kind, retention, the halving
    dose per kind) when the table has several post-training kinds and trajectory.csv
    is there; True if written."""
    if not Path(trajectory).exists():
        return False
    traj = pd.read_csv(trajectory)
    if not {"run_id", "split", "tokens", "rate"} <= set(traj.columns) or "dose_tokens" not in results.columns:
        return False
    chosen = [f.to_dict() for f in report.chosen()] if report is not None else []
    text = persistence.report(traj, results, chosen)
    if text:  # with post-training checkpoints the resistance table opens it (the main output)
        resisting = resistance.report(traj, results)
        body = f"{resisting}\n{text}" if resisting else text
        write_text(Path(out) / "persistence.md", f"What ran: {world_text(results)}.\n\n{body}")
    return bool(text)
