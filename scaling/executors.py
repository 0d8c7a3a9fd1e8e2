"""Sweeps on a distributed engine: `scaling sweep --executor local|ray|slurm`.

Every engine cuts the sweep into `--tasks N` shards (`--shard i/N`: runs i, i+N, ... of
the run ids in sorted order, a `Shard`) and runs each shard as one task that calls the
ordinary launcher, `scaling.sweep.launch(..., shard=(i, N))`, handed to `submit` by
`scaling sweep` (the launcher uses this module; this module never imports it). So a task
trains exactly what `scaling sweep --shard i/N` would, the file-lock claims in OUT/runs
still guard every run against double training (a resubmitted or duplicated task skips
claimed and finished runs), and results.csv is the same as a local sweep's. OUT (and the
sweep file) must be on a filesystem every task sees.

- `local` (default, no dependency): the launcher's own process, or `--workers` local
  processes (`start_workers`: each one `scaling sweep ... --workers 1`).
- `ray`: one Ray task per shard with per-task resources (`--executor-opt num_cpus=4`,
  `num_gpus=1` or 0.25 to share a GPU, `tpu=4` for the custom "TPU" resource Ray's TPU nodes
  advertise); `address=auto` joins a running cluster (default: RAY_ADDRESS, else a local Ray).
- `slurm`: a submitit array job, task i running shard i (`--executor-opt partition=gpu`,
  `timeout_min=240`, `gpus_per_node=1`, `cpus_per_task=8`, `mem_gb=32`, `array_parallelism=16`;
  `cluster=local` runs the array as local processes, what the tests do).
Kubernetes: deploy/k8s-indexed-job.yaml maps JOB_COMPLETION_INDEX onto `--shard i/N`.

Every task also loads and fills the persistent compilation cache (`--compile-cache`,
default OUT/.jax_cache), so a shape is compiled once per sweep, not once per task.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from scaling.errors import UsageError

EXECUTORS = ("local", "ray", "slurm")
RAY_OPTIONS = {"address", "num_cpus", "num_gpus", "tpu", "memory_gb"}
SLURM_OPTIONS = {"cluster", "partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb",
                 "array_parallelism", "account", "qos", "constraint"}


# ---------------------------------------------------------------- compilation cache


def cache_dir(out, setting: str | None = None) -> Path | None:
    """Where the persistent compilation cache lives: `--compile-cache PATH`, else
    SCALING_COMPILE_CACHE, else OUT/.jax_cache; "off" disables it."""
    setting = setting or os.environ.get("SCALING_COMPILE_CACHE") or str(Path(out) / ".jax_cache")
    return None if setting.lower() == "off" else Path(setting).expanduser().absolute()


def enable_cache(out, setting: str | None = None) -> Path | None:
    path = cache_dir(out, setting)
    # subprocesses (--workers, engine tasks started from this host) inherit the setting
    os.environ["SCALING_COMPILE_CACHE"] = str(path) if path else "off"
    if path is not None:
        from scaling.devices import enable_compilation_cache

        enable_compilation_cache(path)
    return path


# ---------------------------------------------------------------- options


def parse_options(executor: str, texts: list[str]) -> dict:
    """`--executor-opt KEY=VALUE` (VALUE a TOML literal, bare words are strings), checked
    against the executor's known keys before anything is submitted."""
    known = {"local": set(), "ray": RAY_OPTIONS, "slurm": SLURM_OPTIONS}[executor]
    options = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--executor-opt must look like KEY=VALUE, got {text!r}")
        if key not in known:
            raise UsageError(f"--executor-opt {key}: unknown for --executor {executor} "
                             f"(known: {', '.join(sorted(known)) or 'none'})")
        try:
            options[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = raw.strip()
    for key in ("num_cpus", "num_gpus", "tpu", "memory_gb"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise UsageError(f"--executor-opt {key} must be a number >= 0, got {value!r}")
    return options


def default_tasks(n_runs: int, pack: int | None) -> int:
    """One task per pack of runs: each task can fill its packs."""
    return max(1, math.ceil(n_runs / (pack or 1)))


# ---------------------------------------------------------------- the task


@dataclass(frozen=True)
class Shard:
    """One launcher's share of a sweep: the runs `scaling sweep SWEEP --out OUT --shard
    index/count` takes (runs index, index + count, ... of the run ids in sorted order)."""

    sweep: str
    out: str
    overrides: tuple[str, ...] = ()
    pack: int | None = None
    index: int = 0
    count: int = 1


def run_shard(launcher, shard: Shard, cache: str | None, env: dict | None = None) -> dict[str, str]:
    """One task: `shard` of the sweep, with the ordinary launcher (claims, resume, packing)."""
    os.environ.update(env or {})
    if cache:
        from scaling.devices import enable_compilation_cache

        enable_compilation_cache(cache)
    return launcher(shard.sweep, shard.out, list(shard.overrides), 1, shard.pack, (shard.index, shard.count),
                    progress=False)


def submit(executor: str, launcher, sweep: Shard, n_runs: int, tasks: int | None = None,
           options: dict | None = None, cache: Path | None = None) -> None:
    """Run a validated sweep of `n_runs` runs as `tasks` shards on `executor` (ray or slurm),
    each task calling `launcher` (scaling.sweep.launch) on its shard; returns when all are done."""
    if executor not in EXECUTORS or executor == "local":
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS[1:])} to submit, got {executor!r}")
    n = tasks or default_tasks(n_runs, sweep.pack)
    if n < 1:
        raise UsageError("--tasks must be >= 1")
    Path(sweep.out).mkdir(parents=True, exist_ok=True)
    whole = dataclasses.replace(sweep, sweep=str(Path(sweep.sweep).absolute()), out=str(Path(sweep.out).absolute()))
    shards = [dataclasses.replace(whole, index=i, count=n) for i in range(n)]
    cache_path = str(cache) if cache else None
    if executor == "ray":
        _launch_ray(launcher, shards, cache_path, dict(options or {}))
    else:
        _launch_slurm(launcher, shards, cache_path, Path(sweep.out), dict(options or {}))


def start_workers(shard: Shard, workers: int, wait: bool) -> list[int]:
    """The `--workers` executor: `workers` local launcher processes on one shard; their exit codes."""
    cmd = [sys.executable, "-m", "scaling.cli", "sweep", shard.sweep, "--out", shard.out,
           "--workers", "1", "--no-results", "--no-progress", "--shard", f"{shard.index}/{shard.count}"]
    cmd += [a for o in shard.overrides for a in ("--set", o)] + (["--pack", str(shard.pack)] if shard.pack else [])
    cmd += [] if wait else ["--no-wait"]
    procs = [subprocess.Popen(cmd) for _ in range(workers)]
    return [p.wait() for p in procs]


def _gpu_env(num_gpus) -> dict:
    # JAX preallocates 75% of a GPU per process: tasks sharing a GPU must not
    return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if num_gpus and num_gpus < 1 else {}


def _launch_ray(launcher, shards: list[Shard], cache: str | None, options: dict) -> None:
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'scaling[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=options.get("address"), include_dashboard=False, log_to_driver=False)
    resources = {"TPU": options["tpu"]} if options.get("tpu") else None
    remote = ray.remote(num_cpus=options.get("num_cpus", 1), num_gpus=options.get("num_gpus", 0),
                        memory=int(options["memory_gb"] * 2**30) if options.get("memory_gb") else None,
                        resources=resources, max_retries=0)(run_shard)
    env = _gpu_env(options.get("num_gpus"))
    refs = [remote.remote(launcher, shard, cache, env) for shard in shards]
    ray.get(refs)  # a task's exception is re-raised here; finished runs stay finished


def _launch_slurm(launcher, shards: list[Shard], cache: str | None, out: Path, options: dict) -> None:
    try:
        import submitit
    except ImportError:
        raise UsageError("--executor slurm needs submitit: pip install 'scaling[slurm]'") from None
    executor = submitit.AutoExecutor(folder=out / "slurm" / "%j", cluster=options.pop("cluster", None))
    generic = {"timeout_min": 240}
    renamed = {"partition": "slurm_partition", "array_parallelism": "slurm_array_parallelism",
               "account": "slurm_account", "qos": "slurm_qos", "constraint": "slurm_constraint"}
    for key, value in options.items():
        generic[renamed.get(key, key)] = value
    if executor.cluster != "slurm":  # the local executor knows the generic keys only
        generic = {k: v for k, v in generic.items() if not k.startswith("slurm_")}
    executor.update_parameters(name="scaling-sweep", **generic)
    env = _gpu_env(options.get("gpus_per_node"))
    n = len(shards)
    jobs = executor.map_array(run_shard, [launcher] * n, shards, [cache] * n, [env] * n)
    for job in jobs:
        job.result()  # raises the task's exception, with its log path
