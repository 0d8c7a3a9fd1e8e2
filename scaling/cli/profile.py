"""`scaling profile OUT`: where a sweep's or study's wall time went (scaling.profiling)."""

from __future__ import annotations

from pathlib import Path

from scaling.profiling import format_table, load_table


def add_arguments(p) -> None:
    p.add_argument("out", help="a sweep or study directory (OUT, holding runs/)")


def run(args) -> int:
    t = load_table(Path(args.out))
    print(format_table(t))
    train = dict(t["rows"])["train_steps"]
    print(f"\ntrain steps: {100 * train / t['total']:.1f}% of {t['total']:.1f} s"
          + ("" if (Path(args.out) / "profile.json").exists() else " (the runs' own time; no profile.json)"))
    return 0
