"""`scaling baselines SWEEP.toml RESULTS.csv --out NEW.csv`: add the counting baselines'
rows to a finished study's table without training (scaling.backfill)."""

from __future__ import annotations

from pathlib import Path

from scaling.backfill import MODEL_SETS, backfill
from scaling.errors import UsageError


def add_arguments(p) -> None:
    p.description = (
        "Add the counting baselines' rows to a results table without training: each transformer "
        "run of RESULTS is matched to the one run of SWEEP whose grid values its columns show, the "
        "match is checked (the rebuilt config must give the recorded tokens, dose, FLOPs, items, and "
        "the baselines already in the table), and the baselines are fitted on the run's rebuilt "
        "training rows and scored on its eval items. Rows already present are kept as they are.")
    p.add_argument("sweep", help="the sweep TOML the table's runs were trained from")
    p.add_argument("results", help="the study's results.csv")
    p.add_argument("--out", required=True,
                   help="where to write the table with the added rows (RESULTS itself to update it in place)")
    p.add_argument("--models", choices=tuple(MODEL_SETS), default="all",
                   help="which baselines' rows to add: counter (the co-occurrence counters), ngram "
                        "(ngram-1/2/3), each with its dynamic counters (forgetting BASE-fgTAU, "
                        "post-training BASE-postW), dynamic (those alone), or all (default)")
    p.add_argument("--trajectory-out", metavar="CSV",
                   help="also write the post-training counters' points at every post-training "
                        "checkpoint (trajectory.csv's columns) to CSV")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override the sweep was run with (scaling sweep --set)")


def run(args) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory: give the path of the CSV file to write")
    backfill(args.sweep, args.results, out, args.models, args.overrides,
             say=lambda line: print(line, flush=True), trajectory_out=args.trajectory_out)
    return 0
