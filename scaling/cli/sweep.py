"""`scaling sweep SWEEP.toml --out DIR`: run a grid of configs (scaling.sweep; engines in
scaling.executors). `add_common_arguments` and `check_launch_arguments` are shared with
`scaling study`."""

from __future__ import annotations

from pathlib import Path

from scaling import executors
from scaling.errors import UsageError
from scaling.io import run_status
from scaling.sweep import dry_run, expand, launch


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n, got {text!r}") from None
    if not 0 <= i < n:
        raise UsageError(f"--shard {text}: need 0 <= i < n")
    return i, n


def add_common_arguments(p) -> None:
    """Arguments shared by `scaling sweep` and `scaling study`."""
    p.add_argument("sweep", help="sweep TOML (see sweeps/)")
    p.add_argument("--out", required=True, help="sweep directory; runs go to OUT/runs/RUN_ID")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key in every run")
    p.add_argument("--workers", type=int, default=1, help="local launcher processes")
    p.add_argument("--pack", type=int, default=None,
                   help="runs trained together in one vmapped program (default: 1 on CPU, 8 on accelerators)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs with tokens and FLOPs and estimate the train-step wall time "
                        "from a short measured step of each run shape; train nothing")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(p) -> None:
    add_common_arguments(p)
    p.add_argument("--shard", default="0/1", help="i/n: this launcher takes runs i, i+n, ... (array jobs)")
    p.add_argument("--no-results", action="store_true", help="do not write OUT/results.csv at the end")
    p.add_argument("--no-wait", action="store_true",
                   help="exit (status 0) when the only unfinished runs are being trained by other live "
                        "launchers, instead of waiting for them")
    p.add_argument("--retry-errors", action="store_true",
                   help="train runs recorded as `error` again (their old status is kept as status.error.json)")
    add_executor_arguments(p)


def add_executor_arguments(p) -> None:
    """Where the shards run: scaling.executors."""
    p.add_argument("--executor", default="local", choices=executors.EXECUTORS,
                   help="where shards run: this machine (default), a Ray cluster, or a SLURM array")
    p.add_argument("--tasks", type=int, default=None,
                   help="shards for --executor ray|slurm (default: one per pack of --pack runs; without --pack, one per run)")
    p.add_argument("--executor-opt", dest="executor_opts", action="append", default=[],
                   metavar="KEY=VALUE", help="engine option, e.g. num_gpus=1, partition=gpu, cluster=local")
    p.add_argument("--compile-cache", default=None, metavar="PATH|off",
                   help="persistent compilation cache (default: OUT/.jax_cache)")


def check_launch_arguments(args) -> None:
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    if args.pack is not None and args.pack < 1:
        raise UsageError("--pack must be >= 1")


def run(args) -> int:
    check_launch_arguments(args)
    shard = parse_shard(args.shard)
    if args.dry_run:
        dry_run(expand(args.sweep, args.overrides))
        return 0
    options = executors.parse_options(args.executor, args.executor_opts)
    if args.executor != "local" and (args.workers > 1 or shard != (0, 1)):
        raise UsageError(f"--executor {args.executor} makes its own shards (--tasks); drop --workers/--shard")
    if args.tasks is not None and args.tasks < 1:
        raise UsageError("--tasks must be >= 1")
    specs = expand(args.sweep, args.overrides)  # bad input is named before OUT (and its cache) exists
    cache = executors.enable_cache(args.out, args.compile_cache)
    if args.executor == "local":
        statuses = launch(args.sweep, args.out, args.overrides, args.workers, args.pack, shard,
                          progress=not args.no_progress, wait=not args.no_wait, retry=args.retry_errors)
    else:
        whole = executors.Shard(args.sweep, args.out, tuple(args.overrides), args.pack)
        executors.submit(args.executor, launch, whole, len(specs), args.tasks, options, cache)
        runs_dir = Path(args.out) / "runs"
        statuses = {s.run_id: run_status(runs_dir / s.run_id) for s in specs}
    counts = {k: list(statuses.values()).count(k) for k in sorted(set(statuses.values()))}
    print(f"sweep {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if not args.no_results:
        from scaling.results import collect

        path = collect(args.out)
        print(f"results: {path}")
    # Runs left to live launchers (--no-wait) are not failures: they finish there.
    return 0 if set(statuses.values()) <= {"done", "running elsewhere"} else 1
