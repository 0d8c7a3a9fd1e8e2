"""`scaling track DIR`: a run's or sweep's metrics for a tracker (scaling.tracking)."""

from __future__ import annotations

from pathlib import Path

from scaling.tracking import TRACKERS, check, run_dirs, write


def add_arguments(p) -> None:
    p.add_argument("dir", help="a run directory, or a sweep directory (every run under DIR/runs)")
    p.add_argument("--tracker", choices=TRACKERS[1:], default="tensorboard",
                   help="tensorboard (event files in RUN_DIR/tensorboard) or wandb (offline without WANDB_API_KEY)")


def run(args) -> int:
    check(args.tracker)
    runs = run_dirs(Path(args.dir))
    for run_dir in runs:
        write(run_dir, args.tracker)
    print(f"{args.tracker}: {len(runs)} run(s) under {Path(args.dir).absolute()}")
    return 0
