"""`scaling findings`: the reference suite's findings table (scaling.findings)."""

from __future__ import annotations

import sys
from pathlib import Path

from scaling.errors import UsageError
from scaling.findings import END, START, findings, readme_block, render


def add_arguments(p) -> None:
    p.add_argument("--root", default=".", help="repository root holding fits/<study>/ (default: .)")
    p.add_argument("--check", default=None, metavar="README",
                   help="compare the table between the findings markers of this file; exit 1 if it differs")
    p.add_argument("--write", default=None, metavar="README",
                   help="replace the table between the findings markers of this file")


def run(args) -> int:
    table = render(findings(args.root))
    if args.check or args.write:
        path = Path(args.check or args.write)
        text = path.read_text()
        block = readme_block(text)
        if block is None:
            raise UsageError(f"{path} has no {START} ... {END} block")
        if args.write:
            path.write_text(text.replace(block, table))
            print(f"wrote the findings table into {path}")
            return 0
        if block != table:
            print(f"{path}: the findings table differs from the committed tables' (scaling findings --write {path})",
                  file=sys.stderr)
            return 1
        print(f"{path}: the findings table matches fits/")
        return 0
    print(table)
    return 0
