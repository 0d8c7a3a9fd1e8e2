"""Sweeps: a grid of run configs, launched safely on one machine or many.

A sweep file (TOML):

    preset = "nano"                 # a size preset as the base (or `base = "path.toml"`)
    [config.train]                  # overrides of the base, any section
    steps = 300
    [[grid]]                        # each [[grid]] is a product of its axes; grids are unioned
    "data.aligned_fraction" = [0.0, 0.01, 0.1]
    "train.seed" = [0, 1]
    zip = [{"data.insertion" = ["throughout", "finetune"], "data.finetune_tokens" = [0, 30000]}]
    exclude = [{"data.insertion" = "finetune", "data.aligned_fraction" = 0.0}]

The key `preset` may be a grid axis too (`preset = ["nano", "micro", "small"]`, the model
size axis): each value's preset is the base, with the sweep's [config] and --set on top.
A key may also be `"data.dose"`: a global dose (aligned tokens / all training tokens) that
is turned into the `data.aligned_fraction` of the run's window, or for insertion "finetune"
into the length of the finetune stage (`data.finetune_tokens`), for equal-dose comparisons
(a config key since stages: scaling.stages.resolve_dose). Stage keys are
`"stages.NAME.key"` (the base config's `[[config.stages]]` define the stages by name).

Each run lives in `OUT/runs/RUN_ID`, RUN_ID a hash of its resolved config. A launcher claims
a run with an exclusive lock file (heartbeat-refreshed; a lock whose owner died is taken
over), so launchers racing on one OUT, `--workers` processes and `--shard i/n` array jobs
never train a run twice; finished runs are skipped and interrupted ones resume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from scaling.config import Config, config_from_dict, copy_raw, merge, read_toml, set_key
from scaling.errors import ConfigError, UsageError

LOCK_STALE_S = 120.0
HEARTBEAT_S = 20.0


@dataclasses.dataclass(frozen=True)
class RunSpec:
    run_id: str
    config: Config
    assignment: dict  # the grid values that made this run, for people reading logs


# ---------------------------------------------------------------- expansion


def _base_raw(sweep: dict, sweep_path: Path) -> dict:
    if "preset" in sweep and "base" in sweep:
        raise ConfigError("preset", "give either preset or base, not both")
    if "preset" in sweep:
        from scaling import presets

        path = presets.path(sweep["preset"])
        if path is None:
            raise ConfigError("preset", f"no preset {sweep['preset']!r} (known: {', '.join(presets.names())})")
        raw = read_toml(path)
    elif "base" in sweep:
        raw = read_toml((sweep_path.parent / sweep["base"]).resolve())
    else:
        raw = {}
    for section, values in sweep.get("config", {}).items():
        if section == "stages":  # [[config.stages]]: the run's stages, replacing the base's
            raw["stages"] = [dict(st) for st in values] if isinstance(values, list) else values
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"config.{section}", "expected a table of keys")
        raw.setdefault(section, {}).update(values)
    return raw


def _axes(grid: dict, where: str) -> list[list[dict]]:
    """Each axis is a list of partial assignments {key: value}; zip groups are one axis."""
    axes = []
    for key, values in grid.items():
        if key in ("zip", "exclude"):
            continue
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key}", "a grid axis must be a non-empty list")
        axes.append([{key: v} for v in values])
    for z, group in enumerate(grid.get("zip", [])):
        lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if len(set(lengths.values())) != 1 or -1 in lengths.values():
            raise ConfigError(f"{where}.zip[{z}]", f"zipped axes need lists of equal length, got {lengths}")
        keys = list(group)
        axes.append([dict(zip(keys, vals)) for vals in zip(*(group[k] for k in keys))])
    return axes


def _excluded(assignment: dict, excludes: list[dict]) -> bool:
    return any(all(assignment.get(k) == v for k, v in ex.items()) for ex in excludes)


def _apply(raw: dict, assignment: dict) -> dict:
    out = copy_raw(raw)
    for key, value in assignment.items():
        path = key.split(".")
        if len(path) not in (2, 3) or not all(path) or len(path) == 3 and path[0] != "stages":
            raise ConfigError(key, "grid keys must be section.key or stages.NAME.key")
        set_key(out, path, value)
    return out


def _without_preset(assignment: dict) -> dict:
    return {k: v for k, v in assignment.items() if k != "preset"}


def run_id(cfg: Config) -> str:
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def expand(sweep_path: str | Path, overrides: list[str] = ()) -> list[RunSpec]:
    """All runs of a sweep, each validated; the first bad config stops everything."""
    sweep_path = Path(sweep_path)
    if not sweep_path.is_file():
        raise UsageError(f"sweep file not found: {sweep_path}")
    sweep = read_toml(sweep_path)
    unknown = set(sweep) - {"preset", "base", "config", "grid", "description"}
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown sweep key (known: preset, base, config, grid, description)")
    base = merge(_base_raw(sweep, sweep_path), overrides)
    bases = {}  # the grid axis `preset` (model size): the sweep's config and --set go on top

    def base_for(assignment: dict) -> dict:
        if "preset" not in assignment:
            return base
        name = assignment["preset"]
        if name not in bases:
            own = {k: v for k, v in sweep.items() if k != "base"}  # the axis replaces preset/base
            bases[name] = merge(_base_raw({**own, "preset": name}, sweep_path), overrides)
        return bases[name]

    grids = sweep.get("grid", [{}])
    grids = [grids] if isinstance(grids, dict) else grids
    runs: dict[str, RunSpec] = {}
    for g, grid in enumerate(grids):
        excludes = grid.get("exclude", [])
        for combo in itertools.product(*_axes(grid, f"grid[{g}]")):
            assignment = {k: v for part in combo for k, v in part.items()}
            if _excluded(assignment, excludes):
                continue
            label = ", ".join(f"{k}={v}" for k, v in assignment.items()) or "base config"
            try:
                cfg = config_from_dict(_apply(base_for(assignment), _without_preset(assignment)))
            except ConfigError as e:
                raise ConfigError(f"run [{label}]", str(e)) from e
            rid = run_id(cfg)
            runs.setdefault(rid, RunSpec(rid, cfg, assignment))
    return list(runs.values())


# ---------------------------------------------------------------- claiming runs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_is_stale(lock: Path) -> bool:
    try:
        owner = json.loads(lock.read_text())
        age = time.time() - lock.stat().st_mtime
    except (OSError, json.JSONDecodeError):
        return False  # being written right now, or just released
    if owner.get("host") == socket.gethostname() and not _pid_alive(owner.get("pid", -1)):
        return True
    return age > LOCK_STALE_S


class Claim:
    """An exclusive claim on a run directory, kept alive by a heartbeat thread."""

    def __init__(self, lock: Path):
        self.lock, self._stop = lock, threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.lock)
            except OSError:
                return

    def release(self):
        self._stop.set()
        self.lock.unlink(missing_ok=True)


def try_claim(run_dir: Path) -> Claim | None:
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if not _lock_is_stale(lock):
                return None
            try:  # only one launcher wins the rename of a stale lock
                os.rename(lock, run_dir / f"lock.stale.{os.getpid()}.{time.time_ns()}")
            except FileNotFoundError:
                return None
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f)
        return Claim(lock)
    return None


def run_status(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "status.json").read_text())["status"]
    except (OSError, json.JSONDecodeError, KeyError):
        return "pending"


def finished(run_dir: Path) -> bool:
    return run_status(run_dir) in ("done", "failed", "error")


# ---------------------------------------------------------------- running


def default_pack() -> int:
    """Packing (vmap over runs) measured slower than one run at a time on a 2-core CPU and
    pays on accelerators (README, performance section): pack 8 there, 1 on CPU."""
    import jax

    return 1 if jax.default_backend() == "cpu" else 8


def _write_error(run_dir: Path, reason: str) -> None:
    (run_dir / "status.json").write_text(json.dumps({"status": "error", "step": None, "reason": reason}))


def run_sweep(specs: list[RunSpec], out: Path, pack: int | None = None, shard: tuple[int, int] = (0, 1),
              progress: bool = True) -> dict[str, str]:
    """Train every unfinished run this launcher can claim; returns run_id -> status."""
    from scaling import train as trainer

    pack = pack or default_pack()
    i, n = shard
    mine = [s for k, s in enumerate(sorted(specs, key=lambda s: s.run_id)) if k % n == i]
    runs_dir = out / "runs"
    bar = _sweep_bar(len(mine), sum(finished(runs_dir / s.run_id) for s in mine), progress)
    groups: dict[str, list] = {}
    for spec in mine:
        run_dir = runs_dir / spec.run_id
        if finished(run_dir):
            continue
        claim = try_claim(run_dir)
        if claim is None:
            continue  # another launcher has it
        if finished(run_dir):  # finished between our check and the claim
            claim.release()
            continue
        try:
            run = trainer.prepare(spec.config, run_dir)
        except Exception as e:  # noqa: BLE001 - a broken run is recorded, the sweep goes on
            _fail(run_dir, claim, spec, e, bar)
            continue
        key = trainer.pack_key(run.cfg, run.source.total_steps) if run.source else spec.run_id
        groups.setdefault(key, []).append((spec, run, claim))
        if len(groups[key]) >= pack:
            _train_group(groups.pop(key), bar)
    for group in groups.values():
        _train_group(group, bar)
    bar.close()
    return {s.run_id: run_status(runs_dir / s.run_id) for s in mine}


def _fail(run_dir: Path, claim: Claim, spec: RunSpec, e: BaseException, bar) -> None:
    reason = f"{type(e).__name__}: {e}"
    _write_error(run_dir, reason)
    (run_dir / "error.txt").write_text(traceback.format_exc())
    claim.release()
    bar.write(f"run {spec.run_id} failed: {reason}")
    bar.update(1)


def _train_group(group: list, bar) -> None:
    from scaling import pipeline

    specs, runs, claims = zip(*group)
    label = ", ".join(s.run_id for s in specs)
    bar.write(f"training {len(runs)} run(s): {label}")
    try:
        statuses = pipeline.train_pack(list(runs), progress=False)
    except Exception as e:  # noqa: BLE001
        for spec, run, claim in group:
            _fail(run.out, claim, spec, e, bar)
        return
    for spec, status, claim in zip(specs, statuses, claims):
        claim.release()
        extra = f" ({status.get('reason')})" if status.get("reason") else ""
        bar.write(f"run {spec.run_id} {status['status']} at step {status['step']}{extra}")
        bar.update(1)


def _sweep_bar(total: int, done: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="run", disable=not enabled, dynamic_ncols=True,
                desc="sweep")


def launch(sweep_path, out, overrides=(), workers: int = 1, pack: int | None = None,
           shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict[str, str]:
    """Expand, validate every run, write OUT/sweep.json, then run (in `workers` processes)."""
    specs = expand(sweep_path, list(overrides))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"sweep": str(sweep_path), "overrides": list(overrides),
                "runs": {s.run_id: s.assignment for s in specs}}
    tmp = out / f"sweep.json.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out / "sweep.json")
    if workers > 1:
        cmd = [sys.executable, "-m", "scaling.cli", "sweep", str(sweep_path), "--out", str(out),
               "--workers", "1", "--no-results", "--no-progress", "--shard", f"{shard[0]}/{shard[1]}"]
        cmd += [a for o in overrides for a in ("--set", o)] + (["--pack", str(pack)] if pack else [])
        procs = [subprocess.Popen(cmd) for _ in range(workers)]
        for p in procs:
            p.wait()
        runs_dir = out / "runs"
        return {s.run_id: run_status(runs_dir / s.run_id) for s in specs}
    return run_sweep(specs, out, pack, shard, progress)


# ---------------------------------------------------------------- CLI


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
    p.add_argument("--dry-run", action="store_true", help="list the runs with tokens and FLOPs; train nothing")
    p.add_argument("--no-progress", action="store_true")


def add_arguments(p) -> None:
    add_common_arguments(p)
    p.add_argument("--shard", default="0/1", help="i/n: this launcher takes runs i, i+n, ... (array jobs)")
    p.add_argument("--no-results", action="store_true", help="do not write OUT/results.csv at the end")
    from scaling import executors

    executors.add_arguments(p)


def check_launch_arguments(args) -> None:
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    if args.pack is not None and args.pack < 1:
        raise UsageError("--pack must be >= 1")


def dry_run(specs: list[RunSpec]) -> None:
    from scaling.mixture import build_tokenizer, stage_steps
    from scaling.model import flops_per_token

    total_tokens = total_flops = 0
    print(f"{'run_id':<12}  {'tokens':>10}  {'FLOPs':>9}  assignment")
    for s in specs:
        cfg = s.config
        tokens = sum(stage_steps(cfg).values()) * cfg.tokens_per_step
        vocab = cfg.model.vocab_size or build_tokenizer(cfg).vocab_size
        flops = tokens * flops_per_token(dataclasses.replace(cfg.model, vocab_size=vocab))
        total_tokens, total_flops = total_tokens + tokens, total_flops + flops
        label = ", ".join(f"{k}={v}" for k, v in s.assignment.items())
        print(f"{s.run_id:<12}  {tokens:>10,}  {flops:>9.2e}  {label}")
    print(f"{len(specs)} runs, {total_tokens:,} tokens, {total_flops:.2e} training FLOPs")


def run(args) -> int:
    check_launch_arguments(args)
    shard = parse_shard(args.shard)
    if args.dry_run:
        dry_run(expand(args.sweep, args.overrides))
        return 0
    from scaling import executors

    options = executors.parse_options(args.executor, args.executor_opts)
    if args.executor != "local" and (args.workers > 1 or shard != (0, 1)):
        raise UsageError(f"--executor {args.executor} makes its own shards (--tasks); drop --workers/--shard")
    if args.tasks is not None and args.tasks < 1:
        raise UsageError("--tasks must be >= 1")
    cache = executors.enable_cache(args.out, args.compile_cache)
    if args.executor == "local":
        statuses = launch(args.sweep, args.out, args.overrides, args.workers, args.pack, shard,
                          progress=not args.no_progress)
    else:
        statuses = executors.launch(args.executor, args.sweep, args.out, args.overrides, args.pack,
                                    args.tasks, options, cache, progress=not args.no_progress)
    counts = {k: list(statuses.values()).count(k) for k in sorted(set(statuses.values()))}
    print(f"sweep {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if not args.no_results:
        from scaling.results import collect

        path = collect(args.out)
        print(f"results: {path}")
    return 0 if set(statuses.values()) <= {"done"} else 1
