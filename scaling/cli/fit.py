"""`scaling fit RESULTS.csv`: fit dose-response curves (scaling.stats, scaling.reports.fit); fit.json, fit.md, counters.md
(the counting baselines' fits) and answer.md (scaling.reports.answer)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from scaling.errors import UsageError
from scaling.reports import transfer
from scaling.reports.answer import write_answer
from scaling.reports.fit import fit_table, write_persistence, write_report, write_transfer
from scaling.stats.common import MODELS
from scaling.stats.curves import CURVES
from scaling.stats.groups import BLOCK_MODES, read_results, require_units


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results table (CSV with dose, misaligned, total, ...)")
    parser.add_argument("--out", default=None,
                        help="output directory for fit.json and fit.md (default: beside RESULTS.csv)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models of {','.join(CURVES)} (default: {','.join(MODELS)})")
    parser.add_argument("--background", default="auto",
                        help="dose axis ln(x0 + dose): auto (estimate x0; chosen by QAIC and a quasi F "
                             "test, binomial AIC only shown), none, or a fixed x0")
    parser.add_argument("--blocks", choices=BLOCK_MODES, default="auto",
                        help="seed: one effect per train seed x world seed block on the dose-0 level, "
                             "SEs clustered and contrasts paired by block (t on blocks - 1 df); world: the "
                             "same effects, SEs clustered and contrasts paired by world (seeds nested, t "
                             "on worlds - 1 df); none: pooled binomial fits (R's drc), nothing paired; "
                             "auto (default): world with two or more world seeds, else seed; a table "
                             "without a seed column is refused unless none")
    parser.add_argument("--pool-splits", action="store_true",
                        help="accept a table without a split column, its rows fitted as one curve "
                             "(refused without this flag: they may be several eval splits pooled)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="bootstrap replicates per fit, resampling blocks (train seed x world seed) (0: none)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)


def run(args) -> int:
    if args.bootstrap < 0:
        raise UsageError("--bootstrap must be >= 0")
    df = read_results(args.results)
    require_units(df, args.blocks, args.pool_splits)
    # One line per warning, without the source line Python would show for each.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = fit_table(df, models=args.models, background=args.background,
                           bootstrap=args.bootstrap, bootstrap_seed=args.bootstrap_seed, blocks=args.blocks)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.results).parent
    out.mkdir(parents=True, exist_ok=True)
    write_report(report, out, transfer.rates_beside_counters(df), df=df)
    write_answer(report, df, out)
    mode = report.settings["block_mode"]
    if mode == "none":
        print("--blocks none: transfer.md and persistence.md (paired by block) are not written")
    else:
        if write_transfer(df, Path(args.results).parent / "trajectory.csv", out, mode):
            print(f"wrote {out / 'transfer.md'}")
        if write_persistence(df, Path(args.results).parent / "trajectory.csv", out, report):
            print(f"wrote {out / 'persistence.md'}")
    print(report.summary())
    print(f"wrote {out / 'fit.json'}, {out / 'fit.md'} and {out / 'answer.md'}"
          + (f" ({out / 'counters.md'}: the counting baselines' fits)" if (out / "counters.md").exists() else ""))
    return 0
