"""`scaling figures DIR`: draw the study figures (scaling.figures)."""

from __future__ import annotations

import sys

from scaling.figures import FORMATS, make_all
from scaling.results import read_trajectory


def add_arguments(p) -> None:
    p.add_argument("dir", help="sweep directory (holds results.csv, fit.json, runs/)")
    p.add_argument("--fit", default=None, help="fit.json (default: DIR/fit.json or DIR/fits/fit.json)")
    p.add_argument("--out", default=None, help="output directory (default: DIR/figures)")
    p.add_argument("--formats", default="png,svg",
                   help=f"comma-separated subset of {','.join(FORMATS)} (default png,svg)")


def run(args) -> int:
    paths = make_all(args.dir, out=args.out, formats=args.formats, fit=args.fit, read_trajectory=read_trajectory)
    for path in paths:
        print(path)
    if not paths:
        print("figures: nothing to draw", file=sys.stderr)
    return 0
