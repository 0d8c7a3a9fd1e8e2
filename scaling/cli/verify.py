"""`scaling verify DIR`: check a run or sweep directory (scaling.verify)."""

from __future__ import annotations

from scaling.verify import verify


def add_arguments(p) -> None:
    p.add_argument("dir", help="a run directory (scaling train --out) or a sweep directory")
    p.add_argument("--deep", action="store_true", help="also restore every checkpoint (imports JAX)")


def run(args) -> int:
    findings = verify(args.dir, args.deep)
    for f in findings:
        print(f"{'PROBLEM' if f.inconsistent else 'note':<7}  {f.where}: {f.problem}")
    fixes = list(dict.fromkeys(f.fix for f in findings if f.inconsistent))
    if fixes:
        print("\nto repair, run:")
        print("\n".join(f"  {x}" for x in fixes))
        return 1
    print(f"{args.dir}: consistent")
    return 0
