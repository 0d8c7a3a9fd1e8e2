"""`scaling study SWEEP.toml --out DIR`: sweep, results table, fits and figures in one go.

Writes DIR/runs/*, DIR/results.csv, DIR/fit.json + fit.md (fitted on the aligned-dose arm:
rows with arm == "dose"), DIR/transfer.md (paired dose effects on the transfer splits, for
value-grounded tables), DIR/persistence.md (before/after each post-training kind, for tables
with several), DIR/figures/, and prints a summary: per model, insertion window and
split, the LL.2 slope on ln(dose) and its 0.5 crossing (drc's ED50 of LL.2: where the rate
crosses 0.5, not the halving dose) with 95% CIs from the overdispersion-robust SE, and the
pooled misalignment of every arm per model (transformer and counting baselines); then the
answer (`answer_lines`): the halving dose per split beside the strongest counter's, the
readout, and where the files are.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scaling import fit as fitting
from scaling import profiling, table
from scaling import results as results_mod
from scaling import sweep as sweeper
from scaling.splits import rank as split_rank

Z = 1.959963984540054


def fit_dose_arm(df: pd.DataFrame, out: Path) -> fitting.FitReport | None:
    """Fit the aligned-dose arm (fit_table drops the other arms) with the background axis
    ln(x0 + dose) compared by AIC beside every plain model."""
    if not (df["arm"] == "dose").any():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fitting.fit_table(df, background="auto")
    for w in caught:
        if "arms other than 'dose'" not in str(w.message):
            print(f"fit warning: {w.message}", file=sys.stderr)
    fitting.write_report(report, out)
    from scaling.fit.report import write_persistence, write_transfer

    write_transfer(df, out / "trajectory.csv", out, report.settings["block_mode"])
    write_persistence(df, out / "trajectory.csv", out, report)
    return report


def _ci(est: float, se: float | None) -> str:
    if se is None or not np.isfinite(se):
        return f"{est:.3g} (no CI)"
    return f"{est:.3g} [{est - Z * se:.3g}, {est + Z * se:.3g}]"


def summary_lines(report: fitting.FitReport | None, df: pd.DataFrame) -> list[str]:
    """The transformer's LL.2 slopes and pooled rates (the counting baselines' are in fit.md,
    transfer.md and the answer block)."""
    from scaling.table import is_counting

    lines = []
    fits = [f.to_dict() if hasattr(f, "to_dict") else f for f in (report.fits if report else [])]
    for f in fits:
        if f["model"] != "LL.2" or f.get("background"):
            continue
        g = f["group"]
        if is_counting(str(g.get("model", ""))):
            continue
        label = ", ".join(f"{k}={v}" for k, v in g.items())
        if not f.get("usable", True):
            lines.append(f"  {label}: LL.2 unusable ({f.get('reason')})")
            continue
        slope, se = f["params"]["slope"], f["se_robust"].get("slope")
        ed = (f.get("ed") or {}).get("50") or {}
        sig = "excludes 0" if se and abs(slope) > Z * se else "includes 0"
        # an interval bound is None when its SE is undefined (e.g. too few doses)
        lo, hi = (math.nan if ed.get(k) is None else ed[k] for k in ("lower_log_robust", "upper_log_robust"))
        # LL.2's drc ED50 is where the rate crosses 0.5: not the halving dose (see `answer_lines`)
        ed_text = f"0.5 crossing {ed['estimate']:.3g} [{lo:.3g}, {hi:.3g}]" if ed.get("estimate") else "0.5 crossing n/a"
        lines.append(f"  {label}: slope on ln(dose) {_ci(slope, se)} (robust 95% CI {sig}); {ed_text}")
    ok = table.transformers(table.finished(df))
    if not ok.empty:
        by = ok.groupby(["model", "arm", "insertion", "split"], sort=True)
        rates = by.apply(lambda g: pd.Series({"rate": g["misaligned"].sum() / g["total"].sum(),
                                              "runs": g["run_id"].nunique()}), include_groups=False)
        lines.append("  pooled misalignment rate by model and arm (all seeds and doses of the arm):")
        for (model, arm, ins, split), r in rates.iterrows():
            lines.append(f"    {model:<8} {arm:<10} {ins:<12} {split:<11} {r['rate']:.3f} ({int(r['runs'])} runs)")
    return lines


def answer_lines(report: fitting.FitReport | None, df: pd.DataFrame, out: Path) -> list[str]:
    """The study's answer in a few lines: per split (and window, model, world where several)
    the transformer's halving dose (control-relative ED50: the dose where the fitted rate is
    half the dose-0 control's) with its 95% CI, beside the strongest counting baseline's (the
    lowest halving dose among the counters), the transformer's readout at its top dose, and
    where the files are."""
    from scaling.fit.report import headline_fit

    ok = table.finished(df)
    transformers = set(table.transformers(ok)["model"].astype(str))
    by_group: dict[tuple, dict] = {}
    for f in report.fits if report else []:
        g = dict(f.group)
        key = tuple(sorted((k, str(v)) for k, v in g.items() if k != "model"))
        by_group.setdefault(key, {}).setdefault(str(g.get("model", "")), []).append(f)
    lines = ["answer (halving dose: where the fitted rate is half the dose-0 control's, 95% CI):"]
    varying = _varying_keys(by_group)
    for key, models in sorted(by_group.items(), key=lambda kv: _split_rank(dict(kv[0]).get("split"))):
        group = dict(key)
        if group.get("insertion") == fitting.POOLED:
            continue
        counters = {m: _halving(headline_fit(fits)) for m, fits in models.items() if m not in transformers}
        strongest = min(((m, h) for m, h in counters.items() if h and h.get("estimate")),
                        key=lambda mh: mh[1]["estimate"], default=None)
        for model in sorted(m for m in models if m in transformers):
            label = ", ".join([*(group[k] for k in varying if k in group), *([model] if len(transformers) > 1 else [])])
            text = f"  {label or group.get('split', '')}: {model} {_halving_text(_halving(headline_fit(models[model])))}"
            if strongest:
                text += f"; strongest counter {strongest[0]} {_halving_text(strongest[1])}"
            text += _readout_text(ok, model, group)
            lines.append(text)
    if len(lines) == 1:
        lines.append("  no usable dose-response fit (fit.md says why)")
    files = [f"results {out / 'results.csv'}", f"fits {out / 'fit.md'}"]
    files += [str(out / name) for name in ("transfer.md", "persistence.md") if (out / name).exists()]
    if (out / "figures").is_dir():
        files.append(f"figures {out / 'figures'}")
    lines.append("files: " + "; ".join(files))
    return lines


def _varying_keys(by_group: dict) -> list[str]:
    """Group keys whose value differs between groups (split always named)."""
    values: dict[str, set] = {}
    for key in by_group:
        for k, v in key:
            values.setdefault(k, set()).add(v)
    return [k for k in ("split", "insertion", "world_variant", "post_training")
            if k in values and (k == "split" or len(values[k] - {fitting.POOLED}) > 1)]


def _split_rank(split) -> tuple:
    return (split_rank(split), str(split))


def _halving(fit) -> dict | None:
    """The control-relative ED50 of `fit` with its dose range; a curve that rises from its
    dose-0 level has an entry with "rises" and no estimate (`CurveFit.ed_control`)."""
    ed = fit.ed_control(50) if fit is not None else None
    return {**ed, "dose_range": fit.dose_range} if ed else None


def _halving_text(ed: dict | None) -> str:
    if ed is None:
        return "no halving dose (no usable curve with a control level; fit.md says why)"
    if ed.get("rises"):
        from scaling.fit.results import rises_text

        return rises_text(ed)
    if ed.get("extrapolated"):
        return "halving dose beyond the doses tested"
    if ed.get("lower") is None or ed.get("upper") is None:
        return f"halving dose {ed['estimate']:.2g} (no CI)"
    from scaling.figures import interval_text

    return f"halving dose {ed['estimate']:.2g} {interval_text(ed, ed.get('dose_range'))}"


def _readout_text(ok: pd.DataFrame, model: str, group: dict) -> str:
    """The transformer's readout at its top dose in the group's rows ("" without a readout)."""
    if "readout" not in ok.columns:
        return ""
    rows = ok[(ok["model"].astype(str) == model) & (ok["arm"] == "dose")]
    for k in ("split", "insertion", "world_variant", "post_training"):
        if k in group and k in rows.columns:
            rows = rows[rows[k].astype(str) == group[k]]
    rows = rows.dropna(subset=["readout"])
    if rows.empty:
        return ""
    level = table.dose_level(rows)
    top = rows[level == level.max()]
    return f"; readout {top['readout'].mean():.2f} at dose {top['dose'].mean():.2g}"


def study(sweep_path, out, overrides=(), workers=1, pack=None, progress=True,
          profile: tuple[float, float, float] | None = None) -> int:
    """`profile` = Unix times (the process started, the command began, its checks ended):
    write OUT/profile.json and print where the wall time went (scaling.profiling)."""
    out = Path(out)
    t0 = time.perf_counter()
    clock = profiling.Clock()
    launched = time.time()
    statuses = sweeper.launch(sweep_path, out, overrides, workers, pack, progress=progress)
    window = (launched, time.time())
    with clock.phase("results"):
        results_path = results_mod.collect(out)
        df = pd.read_csv(results_path)
    with clock.phase("fit"):
        report = fit_dose_arm(df, out)
    if report is not None:
        from scaling import figures

        with clock.phase("figures"):
            figures.make_all(out)
    elapsed = time.perf_counter() - t0
    counts = {k: list(statuses.values()).count(k) for k in sorted(set(statuses.values()))}
    print(f"\nstudy {out}: {', '.join(f'{v} {k}' for k, v in counts.items())} runs, {elapsed:.0f} s")
    print("\n".join(summary_lines(report, df)))
    print("\n" + "\n".join(answer_lines(report, df, out)))
    if profile is not None:
        _print_profile(out, clock, *profile, window, workers)
    return 0 if set(statuses.values()) <= {"done"} else 1


def _print_profile(out: Path, clock: profiling.Clock, started: float, entered: float, checked: float,
                   window: tuple, workers: int) -> None:
    """Write OUT/profile.json (the study's phases beside its runs') and print the table."""
    study_record = {"process": entered - started, "setup": checked - entered,
                    **{k: clock.seconds[k] for k in profiling.STUDY_PHASES},
                    "compile": clock.seconds["compile"], "total": time.time() - started}
    t = profiling.write_study_profile(out, study_record, window)
    print(f"\nwhere the time went ({out / 'profile.json'}):\n{profiling.format_table(t)}")
    if workers > 1:
        print(f"({workers} worker processes: the runs' phases are summed over them and exceed the wall time)")
