"""`scaling eval RUN_DIR`: score a run's checkpoint (scaling.evaluate)."""

from __future__ import annotations

from scaling.errors import UsageError
from scaling.evaluate import evaluate_run, evaluation_lines


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="run directory written by `scaling train`")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--generation", action="store_true", default=None,
                   help="also sample continuations (default: config eval.generation)")
    p.add_argument("--max-items", type=int, default=None, help="stratified subset of items (0 = all)")


def run(args) -> int:
    if args.max_items is not None and args.max_items < 0:
        raise UsageError("--max-items must be >= 0")
    r = evaluate_run(args.run_dir, args.step, generate=args.generation, max_items=args.max_items)
    print("\n".join(evaluation_lines(r, args.run_dir)))
    return 0
