"""`scaling emergence TRAJECTORY.csv --out DIR`: readout against training tokens (scaling.reports.emergence, figure: scaling.figures.emergence)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.emergence import recall_rates
from scaling.errors import UsageError
from scaling.figures import save
from scaling.figures.emergence import emergence
from scaling.reports.emergence import readout_table, recall_report, report


def add_arguments(p) -> None:
    p.add_argument("trajectory", help="trajectory.csv from `scaling results` (readout at every eval checkpoint)")
    p.add_argument("--out", required=True, help="directory for emergence.md and emergence.png")
    p.add_argument("--threshold", type=float, default=0.9, help="readout that counts as learned (default 0.9)")
    p.add_argument("--recall", action="append", default=[], metavar="RUNS_DIR",
                   help="also score the final checkpoints of the runs in this sweep directory on recall items "
                        "(repeatable)")


def run(args) -> int:
    path = Path(args.trajectory)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if not 0.5 < args.threshold <= 1:
        raise UsageError(f"--threshold must be in (0.5, 1], got {args.threshold}")
    table = readout_table(pd.read_csv(path))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = report(table, args.threshold)
    if args.recall:
        text += recall_report(pd.concat([recall_rates(Path(d)) for d in args.recall], ignore_index=True))
    (out / "emergence.md").write_text(text)
    save(emergence(table, args.threshold), out / "emergence", ["png"])
    print(text, end="")
    return 0
