"""Pretraining: a pure, scanned train step and a loop that survives SIGKILL.

The numerical core is `train_step(state, batch) -> (state, metrics)` on plain pytrees (the
NNX module is split once; no per-step `nnx.jit`), scanned over `train.steps_per_call`
steps per compiled call, so sweeps can `vmap` it across runs.

The run directory (config, logs, status, checkpoints) belongs to scaling.rundir. The loop
calls an `Evaluator` at eval.checkpoints and at the end; it is handed in by the caller
(scaling.pipeline), so this module never imports scaling.evaluate, nor the reverse.
Call boundaries and checkpoints sit at absolute multiples of `steps_per_call`, so a resumed
run executes exactly the same compiled calls on the same data as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
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

from scaling import branches, devices, objectives, posttrain, profiling, rundir
from scaling import stages as staging
from scaling.config import Config
from scaling.data.tokenizer import PAD
from scaling.errors import ConfigError
from scaling.model import Transformer
from scaling.rl import enter_lm, enter_rl, make_rl_step, options_logp
from scaling.schedules import make_schedule


class BatchSource(Protocol):
    total_steps: int

    def batches(self, start_step: int, n: int) -> np.ndarray: ...  # [n, B, L+1] int32

    def heldout_batches(self, n: int) -> np.ndarray: ...

    def accounting(self, steps_done: int) -> dict: ...


# ---------------------------------------------------------------- pure numerical core


def make_optimizer(cfg: Config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW on the run's staged LR schedule (scaling.schedules): one optimiser state runs
    through every stage, each stage sets its own piece of the schedule. The legacy preset
    is warmup then cosine decay over pretraining, and the final rate in the continued and
    finetune stages, so every arm shares the same pretraining schedule."""
    t = cfg.train
    schedule = make_schedule(staging.resolve(cfg))
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


def make_train_step(graphdef, tx, schedule, accum_steps: int = 1, loss=None):
    """Returns the pure `train_step(state, batch) -> (state, metrics)`; `loss` is an
    objective's own (scaling.objectives), else next-token cross-entropy."""
    loss = loss or loss_fn
    grad_fn = jax.value_and_grad(lambda p, b: loss(graphdef, p, b))

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


def resolve_config(cfg: Config, tok) -> Config:
    """Fill `model.vocab_size` from the tokenizer (0 means "from tokenizer"): a trained
    SentencePiece model may have fewer pieces than data.tokenizer_vocab_size (`vocab_notes`)."""
    if cfg.model.vocab_size == 0:
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=tok.vocab_size))
    if cfg.model.vocab_size < tok.vocab_size:
        raise ConfigError("model.vocab_size",
                          f"{cfg.model.vocab_size} is smaller than the tokenizer's {tok.vocab_size}")
    return cfg


def vocab_notes(cfg: Config, tok) -> list[str]:
    """What the run's status.json ("notes") and log say about its vocabulary: a SentencePiece
    model trained here with fewer pieces than data.tokenizer_vocab_size."""
    from scaling.data import tokenizer

    trained_here = cfg.data.tokenizer == "sentencepiece" and not cfg.data.tokenizer_file
    note = tokenizer.shortfall(tok, cfg.data.tokenizer_vocab_size) if trained_here and tok is not None else None
    return [note] if note else []


# ---------------------------------------------------------------- the loop


def call_boundaries(cfg: Config, total_steps: int) -> list[tuple[int, int]]:
    """Compiled calls cover [s0, s1): cut at multiples of steps_per_call, at the eval
    checkpoints and at stage boundaries (a call runs one stage's step), so the cuts depend
    on the config only and resume replays the same calls."""
    cuts = set(range(0, total_steps, cfg.train.steps_per_call)) | {total_steps}
    cuts |= {s for s in cfg.eval.checkpoints if s < total_steps}
    cuts |= {st.step0 for st in staging.resolve(cfg) if st.step0 < total_steps}
    cuts = sorted(cuts)
    return list(zip(cuts[:-1], cuts[1:]))


def _every(step_end: int, step_start: int, interval: int) -> bool:
    return step_end // interval > step_start // interval


def pack_key(cfg: Config, total_steps: int) -> str:
    """Runs with equal keys share one compiled program: same shapes and optimiser schedule;
    they may differ in seed and in everything about their data."""
    train = dataclasses.replace(cfg.train, seed=0)
    stages = [dataclasses.asdict(st) for st in staging.program_stages(cfg)]
    return json.dumps([dataclasses.asdict(cfg.model), dataclasses.asdict(train), total_steps, stages], sort_keys=True)


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
    heldout: object = None  # the source's validation batches, handed to the evaluator
    evaluator: object = None
    clock: profiling.Clock | None = None  # this launch's phases (scaling.profiling)
    started_at: float = 0.0  # Unix time prepare() began
    branches: Path | None = None  # a sweep's shared pretraining (scaling.branches); None: never shared
    branch: tuple[str, int] | None = None  # (branch key, branch step) when the run can share
    branched: str = ""  # the trunk run this run's pretraining came from ("" if trained here)


class Evaluator(Protocol):
    """What the loop calls to measure a model; supplied by the caller (scaling.pipeline),
    so training never imports evaluation."""

    def at_step(self, run: Run, step: int, model, heldout) -> None: ...  # eval.checkpoints

    def at_end(self, run: Run, heldout) -> dict | None: ...  # a finished run, before status "done";
    # returns {"baselines": seconds} of it, if any, for the run's timings


def _saved_tokenizer(out: Path):
    """The run directory's own tokenizer (a resumed run reads the ids it trained on), or None
    if there is none or it is unreadable (then it is rebuilt: the same config gives the same)."""
    try:
        return rundir.load_tokenizer(out)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare(cfg: Config, out: str | Path, source: BatchSource | None = None, tok=None,
            repair: bool = False) -> Run:
    """Validate the run directory and build the run's data; nothing is trained yet. A
    finished run comes back with its `status` set. `repair`: the caller knows the directory
    belongs to `cfg` (a sweep names it by the config's hash), so a damaged config.json is
    rewritten rather than refused."""
    started_at, clock = time.time(), profiling.Clock()
    with clock.phase("startup"):
        run = _prepare(cfg, Path(out), source, tok, repair)
    run.clock, run.started_at = clock, started_at
    return run


def _prepare(cfg: Config, out: Path, source: BatchSource | None, tok, repair: bool) -> Run:
    if source is None:
        from scaling.data.vocab import build_tokenizer

        tok = _saved_tokenizer(out) or build_tokenizer(cfg)
    if tok is not None:
        cfg = resolve_config(cfg, tok)
    try:
        mode = rundir.check_run_dir(out, cfg)
    except rundir.DamagedRunError as e:
        if not repair:
            raise
        warnings.warn(f"{e}: rewriting it from the sweep's config", rundir.DamagedStateWarning, stacklevel=3)
        mode = "repair"
    if mode == "done":
        return Run(cfg, out, source, tok, status=rundir.read_status(out))
    if source is None:
        source = posttrain.make_source(cfg, tok)
    out.mkdir(parents=True, exist_ok=True)
    if mode in ("new", "repair"):
        if tok is not None:
            rundir.save_tokenizer(out, tok)
        rundir.write_config(out, cfg, source.total_steps)
    return Run(cfg, out, source, tok)


def train(cfg: Config, out: str | Path, source: BatchSource | None = None, tok=None,
          progress: bool = True, evaluate: bool | None = None, evaluator: Evaluator | None = None) -> dict:
    """Train (or resume, or skip if finished) the run in `out`. Returns its status.json.
    Without an `evaluator` nothing is evaluated (scaling.pipeline.train supplies one)."""
    return train_pack([prepare(cfg, out, source, tok)], progress, evaluate, evaluator)[0]


def train_pack(runs: list[Run], progress: bool = True, evaluate: bool | None = None,
               evaluator: Evaluator | None = None, width: int | None = None) -> list[dict]:
    """Train runs of one pack key together: one run is jitted as is, several are vmapped
    over a leading run axis. Runs resuming from different steps are trained one by one.
    `evaluate` (default: each run's eval.enabled) gates the `evaluator`'s calls.

    `width` (a sweep's --pack) fixes the vmapped width: a smaller group is padded with
    copies of its first run, whose results are dropped. XLA's float summation order depends
    on the width only (measured on CPU: not on the other runs nor the position), so a run
    comes out bitwise the same whichever runs a race, a kill or the leftovers pack it with."""
    todo = [r for r in runs if r.status is None]
    if not todo:
        return [r.status for r in runs]
    W = max(width or len(todo), len(todo))
    shared_started = time.time()
    cfg0, total = todo[0].cfg, todo[0].source.total_steps
    if any(pack_key(r.cfg, r.source.total_steps) != pack_key(cfg0, total) for r in todo):
        raise ValueError("train_pack needs runs with one pack_key")
    shared = profiling.Clock()  # the pack's phases, split evenly between its runs at the end
    with shared.phase("startup"):
        programs = _programs(_unseeded(cfg0), W)
        states = []
        for r in todo:
            _, state = init_state(r.cfg, programs.tx)
            r.mngr = rundir.checkpoint_manager(r.out, r.cfg)
            state, r.start = _restore(r.mngr, state, programs)
            states.append(_share_pretraining(r, state, programs, W))
    if len({r.start for r in todo}) > 1:
        for r in todo:
            r.mngr.close()
        for r in todo:
            train_pack([r], progress, evaluate, evaluator, width=W)
        return [rundir.read_status(r.out) for r in runs]
    for r in todo:
        wanted = r.cfg.eval.enabled if evaluate is None else evaluate
        r.evaluator = evaluator if wanted and r.tok is not None else None  # eval needs the tokenizer
    _loop(todo, states, programs, total, progress, W, shared)
    for r in todo:
        clock = r.clock or profiling.Clock()  # a Run built without prepare() has none
        with clock.phase("checkpoints"):
            r.mngr.close()
        if r.status["status"] == "done" and r.evaluator is not None:
            with clock.phase("evaluation"):
                seconds = r.evaluator.at_end(r, r.heldout) or {}
            clock.move("evaluation", "baselines", seconds.get("baselines", 0.0))
        clock.add(shared, 1 / len(todo))
        timings = clock.run_record(r.started_at or shared_started, len(todo), r.status["step"] - r.start)
        r.status = {**r.status, "timings": timings}
        notes = vocab_notes(r.cfg, r.tok)
        if notes:
            r.status["notes"] = notes
        shared_from = rundir.read_json(r.out / branches.RECORD)
        if shared_from:
            r.status["shared_pretraining"] = shared_from
        rundir.write_status(r.out, r.status)
    return [r.status for r in runs]


def _share_pretraining(r: Run, state, programs: Programs, width: int):
    """scaling.branches: a run of a sweep that has not reached its branch step starts there
    from an exported trunk of its key, if there is one; a run restored exactly at that step
    exports it (a kill after the checkpoint and before the export). Returns the state."""
    b = branches.branch_step(r.cfg) if r.branches is not None else 0
    if r.start == 0:
        (r.out / branches.RECORD).unlink(missing_ok=True)  # trained here unless shared below
    if not b or r.start > b:
        return state
    r.branch = (branches.branch_key(r.cfg, r.source, b, width), b)
    if r.start == b:
        branches.export(r.branches, r.branch[0], b, r.cfg, state, r.out)
        return state
    like = programs.enter[staging.stage_at(programs.stages, b - 1)](state)
    shared, record = branches.find(r.branches, r.branch[0], b, r.cfg, like)
    if shared is None:
        return state
    branches.take_logs(r.branches, r.branch[0], r.out)
    rundir.write_json(r.out / branches.RECORD, {"trunk": record["trunk"], "key": r.branch[0], "step": b})
    r.start, r.branched = b, record["trunk"]
    return shared


def _enter_branch(r: Run, state, programs: Programs, heldout) -> None:
    """A branched run's step-b records, as a run trained through step b would have them:
    its evaluation at b (if eval.checkpoints names it), then its own checkpoint."""
    b = r.start
    if b in r.cfg.eval.checkpoints and r.evaluator is not None:
        with r.clock.phase("eval_steps"):
            r.evaluator.at_step(r, b, nnx.merge(programs.graphdef, state["params"]), heldout)
    with r.clock.phase("checkpoints"):
        rundir.write_json(r.out / "accounting.json", r.source.accounting(b))
        rundir.save_checkpoint(r.mngr, b, state)


def _unseeded(cfg: Config) -> Config:
    """What the programs depend on: data and eval reset, stages reduced to lengths,
    objectives and schedules (scaling.stages.program_stages)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0),
                               data=type(cfg.data)(), eval=type(cfg.eval)(),
                               stages=staging.program_stages(cfg))


class Programs(typing.NamedTuple):
    tx: optax.GradientTransformation
    graphdef: object
    multi_step: typing.Callable  # jitted LM (state, batches) -> (state, metrics), vmapped if packed
    eval_loss: typing.Callable
    placement: devices.Placement | None = None  # None: one device; see scaling/devices.py
    stages: tuple = ()  # the resolved stages (scaling.stages.Stage)
    stage_steps: tuple = ()  # per stage: its jitted multi-step (LM and SFT share multi_step)
    enter: tuple = ()  # per stage: state -> state at its first step (RL adds the reference)


def _restore(mngr, state, programs: Programs):
    """(state, step) of the newest readable checkpoint, shaped as the stage it was saved in
    (a damaged one is set aside with a warning and the previous one is used)."""
    restored, step = rundir.restore_newest(
        mngr, lambda step: programs.enter[staging.stage_at(programs.stages, step - 1)](state))
    return (state, 0) if restored is None else (restored, step)


@functools.lru_cache(maxsize=8)
def _programs(cfg: Config, n_runs: int) -> Programs:
    """Compiled programs are shared by every run of a pack key in this process, so a sweep
    compiles once per shape instead of once per run."""
    tx, schedule = make_optimizer(cfg)
    graphdef, _ = init_state(cfg, tx)
    placement = devices.placement(cfg.train.batch_size, n_runs)

    def compile_(step):
        multi = make_multi_step(step)
        multi = jax.vmap(multi) if n_runs > 1 else multi
        return placement.jit(multi) if placement else jax.jit(multi, donate_argnums=0)

    multi_step = compile_(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps))
    stages = staging.resolve(cfg)
    is_rl = [objectives.is_rl(st.objective) for st in stages]  # the objective's step kind
    rl = {st.kl: compile_(make_rl_step(options_logp(graphdef), tx, schedule, st.kl))
          for st, r in zip(stages, is_rl) if r}
    own = {st.objective: compile_(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps,
                                                  objectives.get(st.objective).loss))
           for st, r in zip(stages, is_rl) if not r and objectives.get(st.objective).loss is not None}
    stage_steps = tuple(rl[st.kl] if r else own.get(st.objective, multi_step) for st, r in zip(stages, is_rl))
    enter = tuple(enter_rl if r else enter_lm for r in is_rl)
    return Programs(tx, graphdef, multi_step, make_eval_loss(graphdef), placement=placement,
                    stages=stages, stage_steps=stage_steps, enter=enter)


def _loop(runs: list[Run], states: list, programs: Programs, total: int, progress: bool,
          width: int = 1, shared: profiling.Clock | None = None) -> None:
    """Train `runs` together from their common start; `shared` takes the pack's phases, each
    run's clock its own (scaling.profiling)."""
    shared = shared or profiling.Clock()
    for r in runs:
        r.clock = r.clock or profiling.Clock()
    cfg, start, R = runs[0].cfg, runs[0].start, len(runs)
    W = max(width, R)  # vmapped width; rows R.. are padding (copies of a run), never recorded
    t = cfg.train
    place = programs.placement
    slots = place.runs_slots(W) if place else W  # padded to the pack width, then to fill every device
    ckpt_every = math.ceil(t.checkpoint_every / t.steps_per_call) * t.steps_per_call
    with shared.phase("startup"):
        state = jax.tree.map(lambda *xs: jnp.stack(xs), *devices.pad_runs(states, slots)) if W > 1 else states[0]
        state = place.put_state(state) if place else state
        heldout = [r.source.heldout_batches(t.eval_batches) for r in runs]
        for r, h in zip(runs, heldout):
            r.heldout = h
            rundir.truncate_logs(r.out, start)
            rundir.write_status(r.out, {"status": "running", "step": start})
            r.log = open(r.out / "metrics.jsonl", "a")  # noqa: SIM115 - closed below
        for r, st, h in zip(runs, states, heldout):
            if r.branched:
                _enter_branch(r, st, programs, h)
        live = list(range(R))
        bar = _progress(total, start, progress)
    for s0, s1 in call_boundaries(cfg, total):
        if s1 <= start or not live:
            continue
        k = staging.stage_at(programs.stages, s0)
        with shared.phase("data"):
            batches = [r.source.batches(s0, s1 - s0) for r in runs]
            batches = jax.tree.map(lambda *xs: np.stack(xs), *devices.pad_runs(batches, slots)) if W > 1 else batches[0]
            batches = place.put_batches(batches) if place else jax.tree.map(jnp.asarray, batches)
        with shared.phase("train_steps"):
            t0 = time.perf_counter()
            if s0 == programs.stages[k].step0:
                state = programs.enter[k](state)
            state, m = programs.stage_steps[k](state, batches)
            m = jax.device_get(m)
            tok_s = R * (s1 - s0) * cfg.tokens_per_step / (time.perf_counter() - t0)
        for i in list(live):
            with shared.phase("data"):
                run, mi = runs[i], (jax.tree.map(lambda x, i=i: x[i], m) if W > 1 else m)
                run_state = jax.tree.map(lambda x, i=i: x[i], state) if W > 1 else state
            if not _record_call(run, run_state, mi, s0, s1, total, tok_s, programs, heldout[i], ckpt_every,
                                programs.stages[k].name):
                live.remove(i)
        with shared.phase("records"):
            bar.update(s1 - max(s0, start))
            bar.set_postfix(loss=f"{float(np.ravel(m['loss'])[-1]):.3f}", tok_s=f"{tok_s:,.0f}")
    bar.close()
    for r in runs:
        r.log.close()
        r.status = r.status or {"status": "done", "step": total}


def _record_call(run: Run, state, m, s0: int, s1: int, total: int, tok_s: float, programs: Programs,
                 heldout, ckpt_every: int, stage: str = "") -> bool:
    """Log one call's metrics, held-out loss and checkpoint for one run; False if it failed."""
    cfg, log, clock = run.cfg, run.log, run.clock
    with clock.phase("records"):
        bad = np.flatnonzero(~np.isfinite(m["loss"]))
        extra = sorted(set(m) - {"loss", "lr", "grad_norm"})  # objective-specific (RL: reward, kl, ...)
        for i in range(s1 - s0 if bad.size == 0 else bad[0] + 1):
            step = s0 + i + 1
            log.write(json.dumps({"step": step, "tokens": step * cfg.tokens_per_step, "stage": stage,
                                  "loss": float(m["loss"][i]), "lr": float(m["lr"][i]),
                                  "grad_norm": float(m["grad_norm"][i]),
                                  **{key: float(m[key][i]) for key in extra},
                                  "tokens_per_s": round(tok_s, 1)}) + "\n")
    if bad.size:
        step = s0 + int(bad[0]) + 1
        run.status = {"status": "failed", "step": step, "reason": f"loss is {m['loss'][bad[0]]} at step {step}"}
        log.flush()
        return False
    if _every(s1, s0, cfg.train.eval_every) or s1 == total:
        with clock.phase("val_loss"):
            val = float(np.mean([programs.eval_loss(state["params"], b) for b in heldout]))
            log.write(json.dumps({"step": s1, "tokens": s1 * cfg.tokens_per_step, "val_loss": val}) + "\n")
    with clock.phase("records"):
        log.flush()
    if s1 in cfg.eval.checkpoints and getattr(run, "evaluator", None) is not None:
        with clock.phase("eval_steps"):
            run.evaluator.at_step(run, s1, nnx.merge(programs.graphdef, state["params"]), heldout)
    if _every(s1, s0, ckpt_every) or s1 == total or s1 in cfg.eval.checkpoints:
        with clock.phase("checkpoints"):
            rundir.write_json(run.out / "accounting.json", run.source.accounting(s1))
            rundir.save_checkpoint(run.mngr, s1, state)
    if run.branch and s1 == run.branch[1] and not run.branched:
        with clock.phase("checkpoints"):
            branches.export(run.branches, run.branch[0], s1, cfg, state, run.out)
    return True


def _progress(total: int, start: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", disable=not enabled, dynamic_ncols=True)

