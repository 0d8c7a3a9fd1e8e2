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
never train a run twice; finished runs are skipped and interrupted ones resume. A launcher
whose remaining runs are claimed by live launchers waits for them (`--no-wait`: it exits 0
and says so); `--retry-errors` trains runs recorded as `error` again.

Runs that differ only in what follows their pretraining (post-training directions) train
that pretraining once: the first exports its state at the branch step to OUT/branches/, the
others start there, bitwise the same as training it again (scaling.branches).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import itertools
import json
import math
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from scaling.config import Config, copy_raw, merge, read_toml, set_key
from scaling.errors import ConfigError, UsageError
from scaling.io import BRANCHES, RunFiles, run_status, write_text
from scaling.plan import RunPlan, plan_from_dict

LOCK_STALE_S = 120.0
HEARTBEAT_S = 20.0
MAX_RUNS = 100_000  # a grid past this is a typo, not a study; refused before expanding it
DISK_FULL_EXIT = 3  # exit status of a command stopped by a full disk (scaling.cli)
WAIT_POLL_S = 2.0  # how often a waiting launcher looks at the runs others train


@dataclasses.dataclass(frozen=True)
class RunSpec:
    run_id: str
    plan: RunPlan  # scaling.plan.resolve's, once: the launcher groups and orders runs by its keys
    assignment: dict  # the grid values that made this run, for people reading logs

    @property
    def config(self) -> Config:
        return self.plan.config


# ---------------------------------------------------------------- expansion


def _base_raw(sweep: dict, sweep_path: Path) -> dict:
    if "preset" in sweep and "base" in sweep:
        raise ConfigError("preset", "give either preset or base, not both")
    if "preset" in sweep:
        from scaling import presets

        path = presets.path(  # a name, never a path: a sweep file cannot reach ../../anything
            sweep["preset"])
        if path is None:
            raise ConfigError("preset", f"no preset {sweep['preset']!r} (known: {', '.join(presets.names())})")
        raw = read_toml(path)
    elif "base" in sweep:
        if not isinstance(sweep["base"], str):
            raise ConfigError("base", f"expected a path to a TOML config, got {sweep['base']!r}")
        raw = read_toml((sweep_path.parent / sweep["base"]).resolve())
    else:
        raw = {}
    if not isinstance(sweep.get("config", {}), dict):
        raise ConfigError("config", "expected a table of sections ([config.train] ...)")
    for section, values in sweep.get("config", {}).items():
        if section == "stages":  # [[config.stages]]: the run's stages, replacing the base's
            raw["stages"] = [dict(st) for st in values] if isinstance(values, list) else values
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"config.{section}", "expected a table of keys")
        raw.setdefault(section, {}).update(values)
    return raw


def _tables(value, where: str, what: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(where, f"expected a list of tables ({what}), got {value!r}")
    return value


def _axes(grid: dict, where: str) -> list[list[dict]]:
    """Each axis is a list of partial assignments {key: value}; zip groups are one axis."""
    if not isinstance(grid, dict):
        raise ConfigError(where, f"expected a table of axes ([[grid]]), got {grid!r}")
    _tables(grid.get("zip", []), f"{where}.zip", 'zip = [{"a.b" = [...], "c.d" = [...]}]')
    _tables(grid.get("exclude", []), f"{where}.exclude", 'exclude = [{"a.b" = value}]')
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
    for section, values in raw.items():
        if section != "stages" and not isinstance(values, dict):
            raise ConfigError(section, "expected a table of keys")
    out = copy_raw(raw)
    for key, value in assignment.items():
        path = key.split(".")
        if len(path) not in (2, 3) or not all(path) or len(path) == 3 and path[0] != "stages":
            raise ConfigError(key, "grid keys must be section.key or stages.NAME.key")
        set_key(out, path, value)
    return out


def _without_preset(assignment: dict) -> dict:
    return {k: v for k, v in assignment.items() if k != "preset"}


def run_id(cfg: Config, input_digests: list[dict] | None = None) -> str:
    """A hash of the resolved config's identity (`Config.identity`: the keys away from their
    defaults, so a config key added later changes no existing run's id) and of the content of
    its input files (scaling.inputs; `input_digests` as recorded, else read from the files now)."""
    from scaling import inputs

    record = cfg.identity()
    digests = inputs.digests(cfg) if input_digests is None else input_digests
    if digests:
        record["inputs"] = [[d["key"], d["path"], d["sha256"]] for d in digests]
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
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
    if not isinstance(grids, list):
        raise ConfigError("grid", f"expected [[grid]] tables, got {grids!r}")
    runs: dict[str, RunSpec] = {}
    for g, grid in enumerate(grids):
        axes = _axes(grid, f"grid[{g}]")
        if math.prod(len(a) for a in axes) > MAX_RUNS:
            raise ConfigError(f"grid[{g}]", f"expands to {math.prod(len(a) for a in axes):,} runs "
                              f"(more than {MAX_RUNS:,}): split the sweep")
        excludes = grid.get("exclude", [])
        for combo in itertools.product(*axes):
            assignment = {k: v for part in combo for k, v in part.items()}
            if _excluded(assignment, excludes):
                continue
            label = ", ".join(f"{k}={v}" for k, v in assignment.items()) or "base config"
            try:
                plan = plan_from_dict(_apply(base_for(assignment), _without_preset(assignment)))
            except ConfigError as e:
                raise ConfigError(f"run [{label}]", str(e)) from e
            rid = run_id(plan.config)
            runs.setdefault(rid, RunSpec(rid, plan, assignment))
    _check_corpora(runs.values())
    return list(runs.values())


def _check_corpora(specs) -> None:
    """Read every user corpus once now, so a malformed line stops the sweep before any
    run is claimed or trained (instead of failing each run that uses it)."""
    seen = set()
    for spec in specs:
        d = spec.config.data
        for name in ("aligned_files", "misaligned_files", "base_files", "heldout_files"):
            files = getattr(d, name)
            if files and (name, files, d.text_field) not in seen:
                from scaling.data.corpora import check_texts

                seen.add((name, files, d.text_field))
                check_texts(f"data.{name}", files, d.text_field)


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
    """A lock is stale when its owner on this host is dead, or its heartbeat stopped."""
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return False  # just released
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        # Locks are created whole (see try_claim), so an unreadable one is damaged: judge it
        # by its heartbeat alone rather than keep waiting on it forever.
        return age > LOCK_STALE_S
    pid = owner.get("pid") if isinstance(owner, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return age > LOCK_STALE_S  # kill(0 or -1) would ask about whole process groups
    if owner.get("host") == socket.gethostname() and not _pid_alive(pid):
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
    lock = RunFiles(run_dir).lock
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
    for _ in range(2):
        # Write the owner record first, then hard-link it into place: link() fails if the lock
        # exists, and a launcher killed at any moment leaves either no lock or a whole one.
        tmp = run_dir / f".lock.{socket.gethostname()}.{os.getpid()}.{time.time_ns()}"
        tmp.write_text(owner)
        try:
            os.link(tmp, lock)
        except FileExistsError:
            if not _lock_is_stale(lock):
                return None
            try:  # only one launcher wins the rename of a stale lock
                os.rename(lock, run_dir / f"lock.stale.{os.getpid()}.{time.time_ns()}")
            except FileNotFoundError:
                return None
            continue
        finally:
            tmp.unlink(missing_ok=True)
        return Claim(lock)
    return None


def claimed_by_live_launcher(run_dir: Path) -> bool:
    lock = RunFiles(run_dir).lock
    return lock.exists() and not _lock_is_stale(lock)


def finished(run_dir: Path) -> bool:
    return run_status(run_dir) in ("done", "failed", "error")


# ---------------------------------------------------------------- running


def preflight(specs: list[RunSpec], runs_dir: Path) -> None:
    """Build the data of every unfinished run before any run trains. Some config errors show
    only when a run's data is built (a subword tokenizer's story units longer than a row, a
    user pool's <unk> share); found one run at a time, each run of a grid would fail after the
    ones before it trained. Raises ConfigError naming the key and how many runs share it.
    Cheap: a tokenizer per distinct tokenizer spec (RunPlan.tokenizer_spec), a mixture per
    config up to its train seed (scaling.run.check_data)."""
    todo = [s for s in specs if not finished(runs_dir / s.run_id)]
    tokenizers, checked, errors = {}, {}, {}
    for spec in todo:
        cfg = spec.config
        seedless = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0)).to_json()
        if seedless not in checked:
            checked[seedless] = _data_error(spec.plan, tokenizers)
        if checked[seedless] is not None:
            errors.setdefault(str(checked[seedless]), (checked[seedless], []))[1].append(spec.run_id)
    if errors:
        text, (first, runs) = next(iter(errors.items()))
        share = f"all {len(todo)} runs" if len(runs) == len(todo) else \
            f"{len(runs)} of {len(todo)} runs ({', '.join(runs[:4])}{', ...' if len(runs) > 4 else ''})"
        more = f"; {len(errors) - 1} other config error(s) besides" if len(errors) > 1 else ""
        raise ConfigError(first.key, f"{text[len(first.key) + 2:] if first.key else text} "
                          f"({share} of the sweep have this error, found before any trained{more})")


def _data_error(plan: RunPlan, tokenizers: dict) -> ConfigError | None:
    from scaling.run import check_data

    try:
        check_data(plan, tokenizers)
    except ConfigError as e:
        return e
    return None  # other failures stay the run's own: its prepare() records them


def default_pack() -> int:
    """Packing (vmap over runs) measured slower than one run at a time on a 2-core CPU and
    pays on accelerators (docs/performance.md): pack 8 there, 1 on CPU."""
    import jax

    return 1 if jax.default_backend() == "cpu" else 8


def _write_error(run_dir: Path, reason: str) -> None:
    write_text(RunFiles(run_dir).status, json.dumps({"status": "error", "step": None, "reason": reason}))


def run_sweep(specs: list[RunSpec], out: Path, pack: int | None = None, shard: tuple[int, int] = (0, 1),
              progress: bool = True, wait: bool = True, poll_s: float = WAIT_POLL_S) -> dict[str, str]:
    """Train every unfinished run this launcher can claim; returns run_id -> status.

    Runs claimed by other live launchers are waited for (`wait`), so the launcher returns
    only once every run of its shard is finished; a run whose claimant dies (its lock goes
    stale) is taken over. Without `wait` those runs come back as "running elsewhere"."""
    pack = pack or default_pack()
    i, n = shard
    mine = [s for k, s in enumerate(sorted(specs, key=lambda s: s.run_id)) if k % n == i]
    runs_dir = out / "runs"
    bar = _sweep_bar(len(mine), sum(finished(runs_dir / s.run_id) for s in mine), progress)
    told, others = False, []
    while True:
        _train_pass(mine, runs_dir, pack, bar)
        others = [s.run_id for s in mine if not finished(runs_dir / s.run_id)]
        if not others:
            break
        if not wait:
            _say(bar, f"not waiting (--no-wait) for {len(others)} run(s) claimed by other launchers: "
                  f"{', '.join(others)}")
            break
        if not told:
            _say(bar, f"waiting for {len(others)} run(s) claimed by other live launchers "
                  "(--no-wait to exit now)")
            told = True
        time.sleep(poll_s)
    bar.close()
    statuses = {s.run_id: run_status(runs_dir / s.run_id) for s in mine}
    return {**statuses, **{r: "running elsewhere" for r in others}}


def _train_pass(mine: list[RunSpec], runs_dir: Path, pack: int, bar) -> None:
    """One pass over the shard: claim and train what is unfinished and unclaimed, in groups of
    one `plan.pack_key`. Runs that differ only after their pretraining share it
    (scaling.branches): of each `plan.trunk_key` the first claimed run trains in this pass,
    the others are left for a second pass, where they start from its export (so no pack mixes
    runs starting at step 0 with runs starting at the branch step)."""
    groups: dict[str, list] = {}
    trunks, later = set(), []
    for spec in mine:
        run_dir = runs_dir / spec.run_id
        if finished(run_dir):
            continue
        trunk = spec.plan.trunk_key
        if trunk is not None and trunk in trunks:
            later.append(spec)  # its pretraining is being trained by this pass: start from it afterwards
            continue
        claim = try_claim(run_dir)
        if claim is None:
            continue  # another launcher has it
        if finished(run_dir):  # finished between our check and the claim
            claim.release()
            continue
        if trunk is not None:
            trunks.add(trunk)
        key = _pack_key(spec)
        groups.setdefault(key, []).append((spec, run_dir, claim))
        if len(groups[key]) >= pack:
            _train_group(groups.pop(key), runs_dir.parent / BRANCHES, bar, pack)
    for group in groups.values():
        _train_group(group, runs_dir.parent / BRANCHES, bar, pack)
    if later:
        _train_pass(later, runs_dir, pack, bar)


def _pack_key(spec: RunSpec) -> str:
    """The run's `plan.pack_key`; a run whose plan cannot say it (its tokenizer fails to build)
    goes alone, and its preparation records why."""
    try:
        return spec.plan.pack_key
    except Exception:  # noqa: BLE001 - recorded as the run's error when run_group prepares it
        return spec.run_id


def retry_errors(specs: list[RunSpec], out: Path) -> list[str]:
    """Make runs recorded as `error` pending again (their record kept as status.error.json and
    error.previous.txt), each under its claim so no live launcher's run is touched."""
    retried = []
    for spec in specs:
        run_dir = out / "runs" / spec.run_id
        if run_status(run_dir) != "error":
            continue
        claim = try_claim(run_dir)
        if claim is None:
            continue
        try:
            if run_status(run_dir) == "error":
                os.replace(RunFiles(run_dir).status, RunFiles(run_dir).status_error)
                if RunFiles(run_dir).error.exists():
                    os.replace(RunFiles(run_dir).error, RunFiles(run_dir).error_previous)
                retried.append(spec.run_id)
        finally:
            claim.release()
    return retried


def is_disk_full(e: BaseException) -> bool:
    """Out of space or quota: no run can make progress, so the launcher stops rather than
    record every remaining run as an error."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def _fail(run_dir: Path, claim: Claim, spec: RunSpec, e: BaseException, bar) -> None:
    reason = f"{type(e).__name__}: {e}"
    _write_error(run_dir, reason)
    write_text(RunFiles(run_dir).error, "".join(traceback.format_exception(e)))
    claim.release()
    _say(bar, f"run {spec.run_id} failed: {reason}")
    bar.update(1)


def _train_group(group: list, shared: Path, bar, pack: int = 1) -> None:
    """Train claimed runs of one pack key (scaling.run.run_group) and release their claims;
    a run that could not be prepared, or a group whose training failed, is recorded as error."""
    from scaling.run import run_group

    specs, dirs, claims = zip(*group)
    _say(bar, f"training {len(specs)} run(s): {', '.join(s.run_id for s in specs)}")
    try:
        outcomes = run_group([(s.plan, d) for s, d in zip(specs, dirs)], width=pack, shared=shared)
    except Exception as e:  # noqa: BLE001
        if is_disk_full(e):  # leave the runs resumable from their last good checkpoint
            for claim in claims:
                claim.release()
            raise
        for spec, run_dir, claim in group:
            _fail(run_dir, claim, spec, e, bar)
        return
    for spec, run_dir, claim, outcome in zip(specs, dirs, claims, outcomes):
        if isinstance(outcome, BaseException):
            _fail(run_dir, claim, spec, outcome, bar)
            continue
        claim.release()
        extra = f" ({outcome.get('reason')})" if outcome.get("reason") else ""
        extra += "".join(f"; {note}" for note in outcome.get("notes", []))
        _say(bar, f"run {spec.run_id} {outcome['status']} at step {outcome['step']}{extra}")
        bar.update(1)


def _say(bar, line: str) -> None:
    """One line of the launcher's log as one write, flushed: `--workers` processes share the
    launcher's stdout, and a line written in pieces (tqdm writes the text and its newline
    separately) or left in a buffer can be split by another process's line."""
    bar.write(line + "\n", end="")
    sys.stdout.flush()


def _sweep_bar(total: int, done: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="run", disable=not enabled, dynamic_ncols=True,
                desc="sweep")


def launch(sweep_path, out, overrides=(), workers: int = 1, pack: int | None = None,
           shard: tuple[int, int] = (0, 1), progress: bool = True, wait: bool = True,
           retry: bool = False) -> dict[str, str]:
    """Expand, validate every run, write OUT/sweep.json, then run (in `workers` processes).
    `retry`: runs recorded as `error` are trained again (see `retry_errors`)."""
    specs = expand(sweep_path, list(overrides))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"sweep": str(sweep_path), "overrides": list(overrides),
                "runs": {s.run_id: s.assignment for s in specs}}
    write_text(out / "sweep.json", json.dumps(manifest, indent=2, sort_keys=True, default=str))
    i, n = shard
    mine = [s for k, s in enumerate(sorted(specs, key=lambda s: s.run_id)) if k % n == i]
    if retry:
        retried = retry_errors(mine, out)
        print(f"retrying {len(retried)} run(s) recorded as error" + (f": {', '.join(retried)}" if retried else ""))
    preflight(mine, out / "runs")
    if workers > 1:
        from scaling import executors

        codes = executors.start_workers(executors.Shard(str(sweep_path), str(out), tuple(overrides), pack, *shard),
                                        workers, wait)
        if DISK_FULL_EXIT in codes:
            raise OSError(errno.ENOSPC, "a worker stopped because the disk is full")
        runs_dir = out / "runs"
        statuses = {s.run_id: run_status(runs_dir / s.run_id) for s in specs}
        return {r: "running elsewhere" if not finished(runs_dir / r) and claimed_by_live_launcher(runs_dir / r)
                else st for r, st in statuses.items()}
    return run_sweep(specs, out, pack, shard, progress, wait)


# ---------------------------------------------------------------- dry run


def dry_run(specs: list[RunSpec], estimate: bool = True) -> None:
    """List the runs with tokens and FLOPs; with `estimate`, time a short train step of each
    run shape here and estimate the sweep's train-step wall time from it."""
    from scaling.model import flops_per_token

    total_tokens = total_flops = total_steps = 0
    print(f"{'run_id':<12}  {'tokens':>10}  {'FLOPs':>9}  assignment")
    shapes: dict[Config, int] = {}  # run shape -> steps of the runs of that shape
    for s in specs:
        cfg = s.config
        steps = s.plan.total_steps
        tokens = steps * cfg.tokens_per_step
        vocab = s.plan.vocab_size
        flops = tokens * flops_per_token(dataclasses.replace(cfg.model, vocab_size=vocab))
        total_tokens, total_flops, total_steps = total_tokens + tokens, total_flops + flops, total_steps + steps
        shape = _step_shape(cfg, vocab)
        shapes[shape] = shapes.get(shape, 0) + steps
        label = ", ".join(f"{k}={v}" for k, v in s.assignment.items())
        print(f"{s.run_id:<12}  {tokens:>10,}  {flops:>9.2e}  {label}")
    print(f"{len(specs)} runs, {total_tokens:,} tokens, {total_flops:.2e} training FLOPs")
    if estimate and specs:
        print(wall_time_estimate(shapes))


def _step_shape(cfg: Config, vocab: int) -> Config:
    """What a train step's time depends on: the model, batch, accumulation and steps per call."""
    model = dataclasses.replace(cfg.model, vocab_size=vocab)
    train = dataclasses.replace(Config().train, batch_size=cfg.train.batch_size,
                                accum_steps=cfg.train.accum_steps, steps_per_call=cfg.train.steps_per_call)
    return Config(model=model, train=train)


def wall_time_estimate(shapes: dict[Config, int], seconds: float = 0.5) -> str:
    """Train-step wall time of one launcher: each shape's median measured step (after its
    compile, on this machine's default device, one run at a time) times its steps."""
    import jax

    from scaling.bench import bench

    total = compile_total = 0.0
    for shape, steps in shapes.items():
        measured = bench(shape, shape.train.steps_per_call, repeats=2, seconds=seconds, peak=False)
        total += steps * measured["step_ms"] / 1000
        compile_total += measured["compile_s"]
    return (f"estimated train-step time: {_duration(total)} on one launcher ({jax.default_backend()}, "
            f"{len(shapes)} run shape(s) timed for ~{seconds:g} s each on this machine now; compile "
            f"~{compile_total:.0f} s in all; evaluation, baselines and start-up not included; "
            "--workers/--pack change it)")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
