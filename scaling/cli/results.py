"""`scaling results DIR`: collect a sweep's runs into DIR/results.csv (scaling.results)."""

from __future__ import annotations

import pandas as pd

from scaling.results import collect


def add_arguments(p) -> None:
    p.add_argument("dir", help="sweep directory (holds runs/)")


def run(args) -> int:
    path = collect(args.dir)
    df = pd.read_csv(path)
    print(f"{len(df)} rows ({df['run_id'].nunique()} runs) -> {path}")
    return 0
