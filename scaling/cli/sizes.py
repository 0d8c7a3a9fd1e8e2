"""`scaling sizes RESULTS.csv`: ED50 and slope against model size (scaling.reports.sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scaling.errors import UsageError
from scaling.reports.sizes import size_report, to_markdown


def add_arguments(p) -> None:
    p.add_argument("results", help="results.csv of a sweep with a preset (model size) axis")
    p.add_argument("--out", default=None, help="directory for sizes.json and sizes.md (default: beside results)")


def run(args) -> int:
    path = Path(args.results)
    if not path.is_file():
        raise UsageError(f"results table not found: {path}")
    report = size_report(pd.read_csv(path))
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "sizes.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    text = to_markdown(report)
    (out / "sizes.md").write_text(text)
    print(text + f"\nwritten: {out / 'sizes.json'}, {out / 'sizes.md'}")
    return 0
