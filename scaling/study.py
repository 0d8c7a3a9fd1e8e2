"""`scaling study SWEEP.toml --out DIR`: sweep, results table, fits and figures in one go.

Writes DIR/runs/*, DIR/results.csv, DIR/fit.json + fit.md (fitted on the aligned-dose arm:
rows with arm == "dose"; the counting baselines' tables in counters.md), DIR/transfer.md
(paired dose effects on the transfer splits, for value-grounded tables), DIR/persistence.md
(before/after each post-training kind, for tables with several), DIR/figures/, and
DIR/answer.md (scaling.reports.answer: what ran, and per split the transformer's halving
dose and change beside the strongest counter's, the readout, what was not found), which it
also prints, after one line counting the fits that could not be used. A study whose runs
failed fits nothing: it prints how many failed and the first error of each kind
(`failure_lines`) and exits 1.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from scaling import profiling
from scaling import results as results_mod
from scaling import sweep as sweeper
from scaling.io import read_status
from scaling.reports import fit as fitting
from scaling.reports.answer import write_answer


def fit_dose_arm(df: pd.DataFrame, out: Path) -> fitting.FitReport | None:
    """Fit the aligned-dose arm (fit_table drops the other arms) with the background axis
    ln(x0 + dose) compared by AIC beside every plain model."""
    if not (df["arm"] == "dose").any():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fitting.fit_table(df, background="auto")
    messages = [str(w.message) for w in caught if "arms other than 'dose'" not in str(w.message)]
    unusable = [m for m in messages if "unusable" in m]
    for m in dict.fromkeys(m for m in messages if m not in unusable):
        print(f"fit warning: {m}", file=sys.stderr)
    if unusable:
        print(f"fit warning: {len(unusable)} curve fit(s) unusable (fit.md's and counters.md's 'All fits' "
              "tables say why); the halving doses are said without them", file=sys.stderr)
    fitting.write_report(report, out, df=df)
    from scaling.reports.fit import write_persistence, write_transfer

    write_transfer(df, out / "trajectory.csv", out, report.settings["block_mode"])
    write_persistence(df, out / "trajectory.csv", out, report)
    return report


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
    failures = failure_lines(statuses, out, sweep_path)
    if failures:
        print("\n" + "\n".join(failures))
        return 1
    with clock.phase("results"):
        results_path = results_mod.collect(out)
        df = pd.read_csv(results_path)
    with clock.phase("fit"):
        report = fit_dose_arm(df, out)
    if report is not None:
        from scaling import figures

        with clock.phase("figures"):
            figures.make_all(out, read_trajectory=results_mod.read_trajectory)
    elapsed = time.perf_counter() - t0
    counts = {k: list(statuses.values()).count(k) for k in sorted(set(statuses.values()))}
    print(f"\nstudy {out}: {', '.join(f'{v} {k}' for k, v in counts.items())} runs, {elapsed:.0f} s")
    print("\n" + "\n".join(write_answer(report, df, out)))
    if profile is not None:
        _print_profile(out, clock, *profile, window, workers)
    return 0 if set(statuses.values()) <= {"done"} else 1


FAILED = ("error", "failed")


def failure_lines(statuses: dict[str, str], out: Path, sweep_path) -> list[str]:
    """Why a study stops before fitting: how many runs failed, and the first reason of each
    kind (the reason with its numbers masked: the same error at another step or length is
    one kind), with how many runs share it and the run directory; [] if none failed. A fit
    of the runs that are left would answer as if the data were weak."""
    import re

    failed = [r for r, st in statuses.items() if st in FAILED]
    if not failed:
        return []
    kinds: dict[str, list[str]] = {}
    for run_id in failed:
        reason = read_status(out / "runs" / run_id).get("reason") or "no reason recorded"
        kinds.setdefault(re.sub(r"\d+(\.\d+)?", "#", reason), []).append(run_id)
    lines = [f"study {out}: {len(failed)} of {len(statuses)} runs failed, so nothing is fitted "
             f"(the runs left would answer as if the data were weak); {len(kinds)} kind(s) of error:"]
    for reason, runs in kinds.items():
        first = out / "runs" / runs[0]
        lines.append(f"  {len(runs)} run(s): {read_status(first).get('reason') or reason} (first: {first})")
    lines.append(f"fix the cause, then `scaling sweep {sweep_path} --out {out} --retry` trains them again "
                 f"and `scaling study` fits; `scaling results {out}` tables what finished")
    return lines


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
