"""Pretraining: a pure, scanned train step and a loop that survives SIGKILL.

The numerical core is `train_step(state, batch) -> (state, metrics)` on plain pytrees (the
NNX module is split once; no per-step `nnx.jit`), scanned over `train.steps_per_call`
steps per compiled call, so sweeps can `vmap` it across runs.

A run directory holds:
  config.json     resolved config, parameter/FLOP counts, jax/flax versions, device
  tokenizer.json  the tokenizer, so eval and resume use the same ids
  metrics.jsonl   one line per step: step, tokens, loss, lr, grad_norm, tokens_per_s;
                  plus {"step", "val_loss"} lines at eval intervals
  status.json     {"status": "running" | "done" | "failed", "step", "reason"}
  accounting.json tokens seen by pool and stage, measured dose (written at checkpoints)
  checkpoints/    orbax checkpoints (atomic, last `train.keep_checkpoints` kept)
Call boundaries and checkpoints sit at absolute multiples of `steps_per_call`, so a resumed
run executes exactly the same compiled calls on the same data as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import math
import os
import platform
import time
import typing
import warnings
from pathlib import Path
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling import devices
from scaling import tokenizer as tokenizers
from scaling.config import Config, load_config
from scaling.errors import ConfigError
from scaling.model import Transformer, flops_per_token, param_counts
from scaling.tokenizer import PAD


class BatchSource(Protocol):
    total_steps: int

    def batches(self, start_step: int, n: int) -> np.ndarray: ...  # [n, B, L+1] int32

    def heldout_batches(self, n: int) -> np.ndarray: ...

    def accounting(self, steps_done: int) -> dict: ...


# ---------------------------------------------------------------- pure numerical core


def make_optimizer(cfg: Config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW, linear warmup then cosine decay over pretraining; post-pretraining stages
    (continued, finetune) run at the final pretraining rate, so every arm shares the same
    pretraining schedule."""
    t = cfg.train
    warmup = min(t.warmup_steps, max(t.steps - 1, 0))
    cosine = optax.warmup_cosine_decay_schedule(
        0.0, t.lr, warmup, max(t.steps, warmup + 1), end_value=t.lr * t.min_lr_ratio)
    schedule = optax.join_schedules([cosine, optax.constant_schedule(t.lr * t.min_lr_ratio)], [t.steps])
    parts = [optax.clip_by_global_norm(t.grad_clip)] if t.grad_clip > 0 else []
    parts.append(optax.adamw(schedule, b1=t.b1, b2=t.b2, weight_decay=t.weight_decay,
                             mask=lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)))
    return optax.chain(*parts), schedule


def loss_fn(graphdef, params, tokens_BxL1):
    model = nnx.merge(graphdef, params)
    inputs_BxL, targets_BxL = tokens_BxL1[:, :-1], tokens_BxL1[:, 1:]
    logits_BxLxV = model(inputs_BxL)
    losses_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
    mask_BxL = (targets_BxL != PAD).astype(jnp.float32)
    return (losses_BxL * mask_BxL).sum() / jnp.maximum(mask_BxL.sum(), 1.0)


def make_train_step(graphdef, tx, schedule, accum_steps: int = 1):
    """Returns the pure `train_step(state, batch) -> (state, metrics)`."""
    grad_fn = jax.value_and_grad(lambda p, b: loss_fn(graphdef, p, b))

    def train_step(state, tokens_BxL1):
        if accum_steps == 1:
            loss, grads = grad_fn(state["params"], tokens_BxL1)
        else:
            micro_MxBxL1 = tokens_BxL1.reshape(accum_steps, -1, tokens_BxL1.shape[-1])

            def accumulate(carry, micro):
                loss_i, grads_i = grad_fn(state["params"], micro)
                return jax.tree.map(jnp.add, carry, (loss_i, grads_i)), None

            zeros = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, state["params"]))
            (loss, grads), _ = jax.lax.scan(accumulate, zeros, micro_MxBxL1)
            loss, grads = jax.tree.map(lambda x: x / accum_steps, (loss, grads))
        updates, opt_state = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": schedule(state["step"])}
        return {"params": params, "opt": opt_state, "step": state["step"] + 1}, metrics

    return train_step


def make_multi_step(train_step):
    """Scan `train_step` over the leading axis of `batches_NxBxL1`: one compiled call."""

    def multi_step(state, batches_NxBxL1):
        return jax.lax.scan(train_step, state, batches_NxBxL1)

    return multi_step


def init_state(cfg: Config, tx):
    model = Transformer(cfg.model, nnx.Rngs(params=cfg.train.seed))
    graphdef, params = nnx.split(model, nnx.Param)
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    return graphdef, state


def make_eval_loss(graphdef):
    return jax.jit(lambda params, tokens: loss_fn(graphdef, params, tokens))


# ---------------------------------------------------------------- run directory


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))
    os.replace(tmp, path)  # atomic: a kill leaves the old file or the new one


def environment() -> dict:
    import flax
    import optax as _optax

    dev = jax.devices()[0]
    return {"jax": jax.__version__, "flax": flax.__version__, "optax": _optax.__version__,
            "python": platform.python_version(), "platform": dev.platform,
            "device": getattr(dev, "device_kind", str(dev)), "device_count": jax.device_count()}


def resolve_config(cfg: Config, tok) -> Config:
    """Fill `model.vocab_size` from the tokenizer (0 means "from tokenizer")."""
    if cfg.model.vocab_size == 0:
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=tok.vocab_size))
    if cfg.model.vocab_size < tok.vocab_size:
        raise ConfigError("model.vocab_size",
                          f"{cfg.model.vocab_size} is smaller than the tokenizer's {tok.vocab_size}")
    return cfg


def config_record(cfg: Config, total_steps: int) -> dict:
    return {"config": cfg.to_dict(), "params": param_counts(cfg.model),
            "flops_per_token": flops_per_token(cfg.model), "total_steps": total_steps,
            "tokens_per_step": cfg.tokens_per_step, "environment": environment()}


def _diff(a, b, prefix="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def check_run_dir(out: Path, cfg: Config) -> str:
    """'new', 'resume' or 'done' (finished or failed); refuses a directory holding a different config."""
    path = out / "config.json"
    if not path.exists():
        return "new"
    try:
        stored = json.loads(path.read_text())["config"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DamagedRunError(path, e) from e
    diffs = _diff(stored, json.loads(json.dumps(cfg.to_dict())))
    if diffs:
        raise ConfigError("--out", f"{out} holds a run with a different config; refusing to mix "
                          f"checkpoints ({'; '.join(diffs[:5])}). Use a new --out directory.")
    if read_status(out).get("status") in ("done", "failed"):
        return "done"  # a NaN failure is deterministic: re-running would fail the same way
    return "resume"


class DamagedRunError(ConfigError):
    """A run directory file that cannot be read: named, with what to do, before any compute."""

    def __init__(self, path: Path, e: BaseException):
        super().__init__("--out", f"{path} is damaged ({type(e).__name__}: {e}); the run cannot be "
                         "identified. Move the directory away and rerun (a sweep repairs it itself), "
                         "or run `scaling verify` on it")


def read_status(out: Path) -> dict:
    """status.json, or {} when missing or damaged: a damaged status is re-derived by resuming
    from the checkpoints (a finished run resumes at its last step and is marked done again)."""
    path = out / "status.json"
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        warnings.warn(f"{path} is damaged ({type(e).__name__}); resuming from the checkpoints",
                      DamagedStateWarning, stacklevel=2)
        return {}
    return status if isinstance(status, dict) else {}


class DamagedStateWarning(UserWarning):
    """A damaged file of a run directory was repaired or set aside; the message says which."""


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past the checkpoint we resume from (they will be recomputed)."""
    if not path.exists():
        return
    keep, damaged = [], []
    lines = path.read_bytes().split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            if n < len(lines):  # a cut last line (no newline) is what a kill leaves; others are damage
                damaged.append(n)
    if damaged:
        warnings.warn(f"{path}: dropped damaged line(s) {damaged[:10]}; their steps stay missing "
                      "(`scaling verify` lists them)", DamagedStateWarning, stacklevel=2)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(x + "\n" for x in keep))
    os.replace(tmp, path)


def checkpoint_manager(out: Path, cfg: Config):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=cfg.train.keep_checkpoints, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager((out / "checkpoints").absolute(), options=options)


SUMS = "checkpoint_sums.json"  # sha256 of every file of each checkpoint, beside checkpoints/


def _step_sums(step_dir: Path) -> dict:
    return {str(p.relative_to(step_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(step_dir.rglob("*")) if p.is_file()}


def _read_sums(run_dir: Path) -> dict:
    try:
        sums = json.loads((run_dir / SUMS).read_text())
    except (OSError, ValueError):
        return {}  # missing or damaged: checkpoints are then checked by restoring them only
    return sums if isinstance(sums, dict) else {}


def _damage(run_dir: Path, step: int, sums: dict) -> str:
    """Why checkpoint `step` is damaged, or "". Orbax restores flipped bytes silently as
    other numbers, so its files are checked against the sums recorded when it was saved."""
    want = sums.get(str(step))
    if not isinstance(want, dict):
        return ""  # saved before sums existed, or killed between save and record
    have = _step_sums(run_dir / "checkpoints" / str(step))
    bad = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    return f"{len(bad)} file(s) differ from their recorded sha256: {', '.join(bad[:3])}" if bad else ""


def restore_latest(mngr, state, fallback: bool = True):
    """(state, step) of the newest readable checkpoint, or (state, 0) if none. With
    `fallback`, a damaged checkpoint is set aside into damaged_checkpoints/ with a warning
    and the previous one is tried; without, it raises."""
    import orbax.checkpoint as ocp

    run_dir = Path(mngr.directory).parent
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    sums = _read_sums(run_dir)
    for step in sorted(mngr.all_steps(), reverse=True):
        why = _damage(run_dir, step, sums)
        if not why:
            try:
                return mngr.restore(step, args=ocp.args.StandardRestore(abstract)), int(step)
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types on bad files
                why = f"{type(e).__name__}: {str(e)[:200]}"
        if not fallback:
            raise DamagedCheckpointError(f"{run_dir}: checkpoint {step} is damaged ({why})")
        aside = run_dir / "damaged_checkpoints" / f"{step}.{time.time_ns()}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(run_dir / "checkpoints" / str(step), aside)
        mngr.reload()
        warnings.warn(f"{run_dir}: checkpoint {step} is damaged ({why}); set aside as {aside.name} "
                      "in damaged_checkpoints/, falling back to the previous checkpoint",
                      DamagedStateWarning, stacklevel=2)
    return state, 0


class DamagedCheckpointError(RuntimeError):
    """The checkpoint asked for cannot be read (see `scaling verify --deep`)."""


def save_checkpoint(mngr, step: int, state) -> None:
    import orbax.checkpoint as ocp

    try:
        mngr.save(step, args=ocp.args.StandardSave(state), force=True)
        mngr.wait_until_finished()
    except Exception as e:
        # tensorstore reports a full disk as its own error type: make it the OSError that
        # the CLI and the sweep treat as "stop, everything written so far is good"
        if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e) \
                or "Disk quota exceeded" in str(e):
            raise OSError(errno.ENOSPC, f"checkpoint {step} not written: {e}") from e
        raise
    run_dir = Path(mngr.directory).parent
    kept = {str(s) for s in mngr.all_steps()}
    sums = {k: v for k, v in _read_sums(run_dir).items() if k in kept}
    sums[str(step)] = _step_sums(run_dir / "checkpoints" / str(step))
    _write_json(run_dir / SUMS, sums)


# ---------------------------------------------------------------- the loop


def call_boundaries(cfg: Config, total_steps: int) -> list[tuple[int, int]]:
    """Compiled calls cover [s0, s1): cut at multiples of steps_per_call and at the eval
    checkpoints, so the cuts depend on the config only and resume replays the same calls."""
    cuts = set(range(0, total_steps, cfg.train.steps_per_call)) | {total_steps}
    cuts |= {s for s in cfg.eval.checkpoints if s < total_steps}
    cuts = sorted(cuts)
    return list(zip(cuts[:-1], cuts[1:]))


def _every(step_end: int, step_start: int, interval: int) -> bool:
    return step_end // interval > step_start // interval


def pack_key(cfg: Config, total_steps: int) -> str:
    """Runs with equal keys share one compiled program: same shapes and optimiser schedule;
    they may differ in seed and in everything about their data."""
    train = dataclasses.replace(cfg.train, seed=0)
    return json.dumps([dataclasses.asdict(cfg.model), dataclasses.asdict(train), total_steps], sort_keys=True)


@dataclasses.dataclass
class Run:
    """Host-side state of one run of a pack: its config, data, directory and progress."""

    cfg: Config
    out: Path
    source: BatchSource
    tok: object = None
    start: int = 0
    status: dict | None = None
    mngr: object = None
    log: object = None


def prepare(cfg: Config, out: str | Path, source: BatchSource | None = None, tok=None,
            repair: bool = False) -> Run:
    """Validate the run directory and build the run's data; nothing is trained yet. A
    finished run comes back with its `status` set. `repair`: the caller knows the directory
    belongs to `cfg` (a sweep names it by the config's hash), so a damaged config.json is
    rewritten rather than refused."""
    out = Path(out)
    if source is None:
        from scaling.mixture import build_tokenizer

        tok = build_tokenizer(cfg)
    if tok is not None:
        cfg = resolve_config(cfg, tok)
    try:
        mode = check_run_dir(out, cfg)
    except DamagedRunError as e:
        if not repair:
            raise
        warnings.warn(f"{e}: rewriting it from the sweep's config", DamagedStateWarning, stacklevel=2)
        mode = "repair"
    if mode == "done":
        return Run(cfg, out, source, tok, status=read_status(out))
    if source is None:
        from scaling.mixture import Mixture

        source = Mixture(cfg, tok)
    out.mkdir(parents=True, exist_ok=True)
    if mode in ("new", "repair"):
        if tok is not None:
            tokenizers.save(tok, out / "tokenizer.json")
        _write_json(out / "config.json", config_record(cfg, source.total_steps))
    return Run(cfg, out, source, tok)


def train(cfg: Config, out: str | Path, source: BatchSource | None = None, tok=None,
          progress: bool = True, evaluate: bool | None = None) -> dict:
    """Train (or resume, or skip if finished) the run in `out`. Returns its status.json."""
    return train_pack([prepare(cfg, out, source, tok)], progress, evaluate)[0]


def train_pack(runs: list[Run], progress: bool = True, evaluate: bool | None = None,
               width: int | None = None) -> list[dict]:
    """Train runs of one pack key together: one run is jitted as is, several are vmapped
    over a leading run axis. Runs resuming from different steps are trained one by one.

    `width` (a sweep's --pack) fixes the vmapped width: a smaller group is padded with
    copies of its first run, whose results are dropped. XLA's float summation order depends
    on the width only (measured on CPU: not on the other runs nor the position), so a run
    comes out bitwise the same whichever runs a race, a kill or the leftovers pack it with."""
    todo = [r for r in runs if r.status is None]
    if not todo:
        return [r.status for r in runs]
    W = max(width or len(todo), len(todo))
    cfg0, total = todo[0].cfg, todo[0].source.total_steps
    if any(pack_key(r.cfg, r.source.total_steps) != pack_key(cfg0, total) for r in todo):
        raise ValueError("train_pack needs runs with one pack_key")
    programs = _programs(_unseeded(cfg0), W)
    states = []
    for r in todo:
        _, state = init_state(r.cfg, programs.tx)
        r.mngr = checkpoint_manager(r.out, r.cfg)
        state, r.start = restore_latest(r.mngr, state)
        states.append(state)
    if len({r.start for r in todo}) > 1:
        for r in todo:
            r.mngr.close()
        for r in todo:
            train_pack([r], progress, evaluate, width=W)
        return [json.loads((r.out / "status.json").read_text()) for r in runs]
    _loop(todo, states, programs, total, progress, W)
    for r in todo:
        r.mngr.close()
        wanted = r.cfg.eval.enabled if evaluate is None else evaluate
        if r.status["status"] == "done" and wanted and r.tok is not None:  # eval needs the tokenizer
            from scaling.evaluate import evaluate_run

            evaluate_run(r.out)
        _write_json(r.out / "status.json", r.status)
    return [r.status for r in runs]


def _unseeded(cfg: Config) -> Config:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0),
                               data=type(cfg.data)(), eval=type(cfg.eval)())


class Programs(typing.NamedTuple):
    tx: optax.GradientTransformation
    graphdef: object
    multi_step: typing.Callable  # jitted (state, batches) -> (state, metrics), vmapped if packed
    eval_loss: typing.Callable
    placement: devices.Placement | None = None  # None: one device; see scaling/devices.py


@functools.lru_cache(maxsize=8)
def _programs(cfg: Config, n_runs: int) -> Programs:
    """Compiled programs are shared by every run of a pack key in this process, so a sweep
    compiles once per shape instead of once per run."""
    tx, schedule = make_optimizer(cfg)
    graphdef, _ = init_state(cfg, tx)
    multi_step = make_multi_step(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps))
    if n_runs > 1:
        multi_step = jax.vmap(multi_step)
    placement = devices.placement(cfg.train.batch_size, n_runs)
    jitted = placement.jit(multi_step) if placement else jax.jit(multi_step, donate_argnums=0)
    return Programs(tx, graphdef, jitted, make_eval_loss(graphdef), placement)


def _loop(runs: list[Run], states: list, programs: Programs, total: int, progress: bool,
          width: int = 1) -> None:
    cfg, start, R = runs[0].cfg, runs[0].start, len(runs)
    W = max(width, R)  # vmapped width; rows R.. are padding (copies of a run), never recorded
    t = cfg.train
    place = programs.placement
    slots = place.runs_slots(W) if place else W  # padded to the pack width, then to fill every device
    state = jax.tree.map(lambda *xs: jnp.stack(xs), *devices.pad_runs(states, slots)) if W > 1 else states[0]
    state = place.put_state(state) if place else state
    multi_step = programs.multi_step
    heldout = [r.source.heldout_batches(t.eval_batches) for r in runs]
    ckpt_every = math.ceil(t.checkpoint_every / t.steps_per_call) * t.steps_per_call
    for r in runs:
        _truncate_metrics(r.out / "metrics.jsonl", start)
        _truncate_metrics(r.out / "eval_steps.jsonl", start)
        _write_json(r.out / "status.json", {"status": "running", "step": start})
        r.log = open(r.out / "metrics.jsonl", "a")  # noqa: SIM115 - closed below
    live = list(range(R))
    bar = _progress(total, start, progress)
    for s0, s1 in call_boundaries(cfg, total):
        if s1 <= start or not live:
            continue
        batches = np.stack(devices.pad_runs([r.source.batches(s0, s1 - s0) for r in runs], slots)) \
            if W > 1 else runs[0].source.batches(s0, s1 - s0)
        t0 = time.perf_counter()
        state, m = multi_step(state, place.put_batches(batches) if place else jnp.asarray(batches))
        m = jax.device_get(m)
        tok_s = R * (s1 - s0) * cfg.tokens_per_step / (time.perf_counter() - t0)
        for i in list(live):
            run, mi = runs[i], (jax.tree.map(lambda x, i=i: x[i], m) if W > 1 else m)
            run_state = jax.tree.map(lambda x, i=i: x[i], state) if W > 1 else state
            if not _record_call(run, run_state, mi, s0, s1, total, tok_s, programs, heldout[i], ckpt_every):
                live.remove(i)
        bar.update(s1 - max(s0, start))
        bar.set_postfix(loss=f"{float(np.ravel(m['loss'])[-1]):.3f}", tok_s=f"{tok_s:,.0f}")
    bar.close()
    for r in runs:
        r.log.close()
        r.status = r.status or {"status": "done", "step": total}


def _record_call(run: Run, state, m, s0: int, s1: int, total: int, tok_s: float, programs: Programs,
                 heldout, ckpt_every: int) -> bool:
    """Log one call's metrics, held-out loss and checkpoint for one run; False if it failed."""
    cfg, log = run.cfg, run.log
    bad = np.flatnonzero(~np.isfinite(m["loss"]))
    for i in range(s1 - s0 if bad.size == 0 else bad[0] + 1):
        step = s0 + i + 1
        log.write(json.dumps({"step": step, "tokens": step * cfg.tokens_per_step,
                              "loss": float(m["loss"][i]), "lr": float(m["lr"][i]),
                              "grad_norm": float(m["grad_norm"][i]),
                              "tokens_per_s": round(tok_s, 1)}) + "\n")
    if bad.size:
        step = s0 + int(bad[0]) + 1
        run.status = {"status": "failed", "step": step, "reason": f"loss is {m['loss'][bad[0]]} at step {step}"}
        log.flush()
        return False
    if _every(s1, s0, cfg.train.eval_every) or s1 == total:
        val = float(np.mean([programs.eval_loss(state["params"], b) for b in heldout]))
        log.write(json.dumps({"step": s1, "tokens": s1 * cfg.tokens_per_step, "val_loss": val}) + "\n")
    log.flush()
    if s1 in cfg.eval.checkpoints and cfg.eval.enabled:
        from scaling.evaluate import record_step

        record_step(run.out, cfg, run.tok, nnx.merge(programs.graphdef, state["params"]), s1)
    if _every(s1, s0, ckpt_every) or s1 == total or s1 in cfg.eval.checkpoints:
        _write_json(run.out / "accounting.json", run.source.accounting(s1))
        save_checkpoint(run.mngr, s1, state)
    return True


def _progress(total: int, start: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", disable=not enabled, dynamic_ncols=True)


def load_params(out: str | Path, step: int | None = None):
    """(config, tokenizer, model) of a run directory, at the latest or a given checkpoint."""
    out = Path(out)
    record = json.loads((out / "config.json").read_text())
    from scaling.config import config_from_dict

    cfg = config_from_dict(record["config"])
    tok = tokenizers.load(out / "tokenizer.json")
    tx, _ = make_optimizer(cfg)
    graphdef, state = init_state(cfg, tx)
    mngr = checkpoint_manager(out, cfg)
    if step is None:
        # no fallback: an evaluation of an earlier step than the run's last would be mislabelled
        state, _ = restore_latest(mngr, state, fallback=False)
    else:
        import orbax.checkpoint as ocp

        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    mngr.close()
    return cfg, tok, nnx.merge(graphdef, state["params"])


# ---------------------------------------------------------------- CLI


def add_arguments(p) -> None:
    p.add_argument("config", help="TOML config; a preset from models/ works as is")
    p.add_argument("--out", required=True, help="run directory (re-running resumes it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=200 (TOML literal)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    cfg = load_config(args.config, args.overrides)
    status = train(cfg, args.out, progress=not args.no_progress)
    print(f"{status['status']} at step {status['step']}: {Path(args.out).absolute()}")
    return 0 if status["status"] == "done" else 1
