"""`scaling study SWEEP.toml --out DIR`: sweep, results, fit and figures (scaling.study)."""

from __future__ import annotations

import time

from scaling import profiling
from scaling.cli.sweep import add_common_arguments, check_launch_arguments
from scaling.executors import enable_cache
from scaling.study import study
from scaling.sweep import dry_run, expand


def add_arguments(p) -> None:
    add_common_arguments(p)
    p.add_argument("--profile", action="store_true",
                   help="print (and write to OUT/profile.json) where the study's wall time went, by phase")


def run(args) -> int:
    entered = time.time()
    check_launch_arguments(args)
    if args.dry_run:
        dry_run(expand(args.sweep, args.overrides))
        return 0
    expand(args.sweep, args.overrides)  # bad input is named before OUT (and its cache) exists
    enable_cache(args.out)  # OUT/.jax_cache, or SCALING_COMPILE_CACHE (a path or "off")
    started = profiling.process_started_at() or entered
    return study(args.sweep, args.out, args.overrides, args.workers, args.pack, not args.no_progress,
                 profile=(started, entered, time.time()) if args.profile else None)
