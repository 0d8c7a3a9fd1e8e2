"""The training loop: the runs of one pack trained together, with hooks; it writes no files.

`train_group(runs, width)` trains runs that share one compiled program (equal
`RunPlan.pack_key`): one run is jitted as is, several are vmapped over a leading run axis.
Call boundaries sit at absolute multiples of `train.steps_per_call`, at the eval checkpoints
and at stage boundaries, so a resumed run executes exactly the same compiled calls on the
same data as an uninterrupted one.

The loop knows neither the run directory, nor evaluation, nor shared pretraining: each run
carries its `Hooks` (scaling.run wires them), as levanter's `TrainerHooks` do:

- `restore(run, state, like_at) -> (state, step)`: the state the run starts from (a
  checkpoint, a shared pretraining, or the fresh `state` at step 0);
- `begin(run, state, model)`: before the first call (the run's records start here);
- `every`: `Hook(fn, every, steps, at_end, phase)`s, called with a `StepInfo` after each
  compiled call that crosses a multiple of `every`, ends at one of `steps`, or (`at_end`)
  ends the run; in list order. The call's metrics lines (one per step, and the held-out loss
  at `train.eval_every` and at the end) reach the hooks in `StepInfo.lines`.

A run whose loss turns non-finite stops there: `run.status` says "failed" at that step, and
only its hooks with `failed=True` (the metrics log) see that call's lines up to the bad step.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import typing
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling import devices, profiling
from scaling import plan as planning
from scaling import stages as staging
from scaling.config import Config
from scaling.plan import RunPlan
from scaling.train.steps import (
    enter_lm,
    enter_rl,
    init_state,
    make_eval_loss,
    make_multi_step,
    make_optimizer,
    make_rl_step,
    make_train_step,
    options_logp,
)


class BatchSource(Protocol):
    total_steps: int

    def batches(self, start_step: int, n: int) -> np.ndarray: ...  # [n, B, L+1] int32

    def heldout_batches(self, n: int) -> np.ndarray: ...

    def accounting(self, steps_done: int) -> dict: ...


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What a hook sees after one compiled call of one run."""

    run: Run
    first: int  # the call covered steps [first, step)
    step: int
    state: object  # the run's state after the call
    lines: tuple[dict, ...]  # the call's metrics lines
    graphdef: object

    def model(self):
        return nnx.merge(self.graphdef, self.state["params"])


@dataclasses.dataclass(frozen=True)
class Hook:
    """`fn(StepInfo)` after a call that crosses a multiple of `every`, ends at one of `steps`
    or (`at_end`) ends the run; its time counts under the profiling `phase`."""

    fn: typing.Callable[[StepInfo], None]
    every: int = 0
    steps: frozenset = frozenset()
    at_end: bool = False
    phase: str = "records"
    failed: bool = False  # also called on the call in which the loss turned non-finite

    def due(self, s0: int, s1: int, total: int) -> bool:
        return (self.every > 0 and s1 // self.every > s0 // self.every) or s1 in self.steps \
            or (self.at_end and s1 == total)


@dataclasses.dataclass
class Hooks:
    """A run's hooks (module doc); none by default: the run trains from step 0, unrecorded."""

    restore: typing.Callable | None = None  # (run, state, like_at) -> (state, step)
    begin: typing.Callable | None = None  # (run, state, model) -> None
    every: list[Hook] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Run:
    """Host-side state of one run of a pack: its plan, data and progress."""

    plan: RunPlan
    source: BatchSource
    hooks: Hooks = dataclasses.field(default_factory=Hooks)
    start: int = 0
    status: dict | None = None  # set when the run ends: done at its last step, or failed
    clock: profiling.Clock | None = None  # this launch's phases (scaling.profiling)
    started_at: float = 0.0  # Unix time its preparation began
    heldout: object = None  # the source's validation batches

    @property
    def cfg(self) -> Config:
        return self.plan.config


def call_boundaries(plan: RunPlan) -> list[tuple[int, int]]:
    """Compiled calls cover [s0, s1): cut at multiples of steps_per_call, at the eval
    checkpoints and at stage boundaries (a call runs one stage's step), so the cuts depend
    on the plan only and resume replays the same calls."""
    cfg, total = plan.config, plan.total_steps
    cuts = set(range(0, total, cfg.train.steps_per_call)) | {total}
    cuts |= {s for s in cfg.eval.checkpoints if s < total}
    cuts |= {st.step0 for st in plan.stages if st.step0 < total}
    cuts = sorted(cuts)
    return list(zip(cuts[:-1], cuts[1:]))


def checkpoint_every(cfg: Config) -> int:
    """train.checkpoint_every rounded up to whole calls (checkpoints sit at call boundaries)."""
    t = cfg.train
    return math.ceil(t.checkpoint_every / t.steps_per_call) * t.steps_per_call


def train_group(runs: list[Run], width: int | None = None, progress: bool = True) -> profiling.Clock:
    """Train runs of one pack key together from where their hooks restore them; returns the
    group's shared clock (its phases, for the caller to split between the runs).

    `width` (a sweep's --pack) fixes the vmapped width: a smaller group is padded with
    copies of its first run, whose results are dropped. XLA's float summation order depends
    on the width only (measured on CPU: not on the other runs nor the position), so a run
    comes out bitwise the same whichever runs a race, a kill or the leftovers pack it with.
    Runs restored at different steps are trained in groups of one start step, each at `width`."""
    W = max(width or len(runs), len(runs))
    plan0 = runs[0].plan
    if any(r.plan.pack_key != plan0.pack_key for r in runs):
        raise ValueError("train_group needs runs with one pack_key")
    shared = profiling.Clock()
    with shared.phase("startup"):
        programs = _programs(_unseeded(plan0), W)
        states = [_restore(r, programs) for r in runs]
    by_start: dict[int, list[int]] = {}
    for i, r in enumerate(runs):
        by_start.setdefault(r.start, []).append(i)
    for idx in by_start.values():
        _loop([runs[i] for i in idx], [states[i] for i in idx], programs, progress, W, shared)
    return shared


def _restore(r: Run, programs: Programs):
    r.clock = r.clock or profiling.Clock()
    _, state = init_state(r.cfg, programs.tx)
    if r.hooks.restore is None:
        r.start = 0
        return state
    state, r.start = r.hooks.restore(r, state, lambda step: programs.enter[staging.stage_at(programs.stages,
                                                                                             step - 1)](state))
    return state


def _unseeded(plan: RunPlan) -> RunPlan:
    """What the programs depend on: data and eval reset, stages reduced to lengths,
    objectives and schedules (scaling.stages.program_stages)."""
    cfg = plan.config
    return planning.of(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0), data=type(cfg.data)(),
                                           eval=type(cfg.eval)(), stages=staging.program_stages(cfg)))


class Programs(typing.NamedTuple):
    tx: optax.GradientTransformation
    graphdef: object
    multi_step: typing.Callable  # jitted LM (state, batches) -> (state, metrics), vmapped if packed
    eval_loss: typing.Callable
    placement: devices.Placement | None = None  # None: one device; see scaling/devices.py
    stages: tuple = ()  # the resolved stages (scaling.stages.Stage)
    stage_steps: tuple = ()  # per stage: its jitted multi-step (LM and SFT share multi_step)
    enter: tuple = ()  # per stage: state -> state at its first step (RL adds the reference)


@functools.lru_cache(maxsize=8)
def _programs(plan: RunPlan, n_runs: int) -> Programs:
    """Compiled programs are shared by every run of a pack key in this process, so a sweep
    compiles once per shape instead of once per run."""
    cfg, stages = plan.config, plan.stages
    tx, schedule = make_optimizer(cfg, stages)
    graphdef, _ = init_state(cfg, tx)
    placement = devices.placement(cfg.train.batch_size, n_runs)

    def compile_(step):
        multi = make_multi_step(step)
        multi = jax.vmap(multi) if n_runs > 1 else multi
        return placement.jit(multi) if placement else jax.jit(multi, donate_argnums=0)

    multi_step = compile_(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps))
    kinds = plan.objectives
    is_rl = [o.rl for o in kinds]  # the objective's step kind
    rl = {st.kl: compile_(make_rl_step(options_logp(graphdef), tx, schedule, st.kl))
          for st, r in zip(stages, is_rl) if r}
    own = {st.objective: compile_(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps, o.loss))
           for st, o in zip(stages, kinds) if not o.rl and o.loss is not None}
    stage_steps = tuple(rl[st.kl] if r else own.get(st.objective, multi_step) for st, r in zip(stages, is_rl))
    enter = tuple(enter_rl if r else enter_lm for r in is_rl)
    return Programs(tx, graphdef, multi_step, make_eval_loss(graphdef), placement=placement,
                    stages=stages, stage_steps=stage_steps, enter=enter)


def _loop(runs: list[Run], states: list, programs: Programs, progress: bool, width: int,
          shared: profiling.Clock) -> None:
    """Train `runs` together from their common start; `shared` takes the pack's phases, each
    run's clock its own (scaling.profiling)."""
    plan, start, R = runs[0].plan, runs[0].start, len(runs)
    cfg, total = plan.config, plan.total_steps
    W = max(width, R)  # vmapped width; rows R.. are padding (copies of a run), never recorded
    place = programs.placement
    slots = place.runs_slots(W) if place else W  # padded to the pack width, then to fill every device
    with shared.phase("startup"):
        state = jax.tree.map(lambda *xs: jnp.stack(xs), *devices.pad_runs(states, slots)) if W > 1 else states[0]
        state = place.put_state(state) if place else state
        for r, st in zip(runs, states):
            r.heldout = r.source.heldout_batches(cfg.train.eval_batches)
            if r.hooks.begin is not None:
                r.hooks.begin(r, st, lambda st=st: nnx.merge(programs.graphdef, st["params"]))
        live = list(range(R))
        bar = _progress(total, start, progress)
    for s0, s1 in call_boundaries(plan):
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
            if not _after_call(run, run_state, mi, s0, s1, tok_s, programs, programs.stages[k].name):
                live.remove(i)
        with shared.phase("records"):
            bar.update(s1 - max(s0, start))
            bar.set_postfix(loss=f"{float(np.ravel(m['loss'])[-1]):.3f}", tok_s=f"{tok_s:,.0f}")
    bar.close()
    for r in runs:
        r.status = r.status or {"status": "done", "step": total}


def _after_call(run: Run, state, m, s0: int, s1: int, tok_s: float, programs: Programs, stage: str) -> bool:
    """One call's metrics lines and held-out loss for one run, handed to its hooks; False if
    its loss turned non-finite (the run stops, failed)."""
    cfg, clock, total = run.cfg, run.clock, run.plan.total_steps
    with clock.phase("records"):
        bad = np.flatnonzero(~np.isfinite(m["loss"]))
        extra = sorted(set(m) - {"loss", "lr", "grad_norm"})  # objective-specific (RL: reward, kl, ...)
        lines = [{"step": s0 + i + 1, "tokens": (s0 + i + 1) * cfg.tokens_per_step, "stage": stage,
                  "loss": float(m["loss"][i]), "lr": float(m["lr"][i]), "grad_norm": float(m["grad_norm"][i]),
                  **{key: float(m[key][i]) for key in extra}, "tokens_per_s": round(tok_s, 1)}
                 for i in range(s1 - s0 if bad.size == 0 else bad[0] + 1)]
    if bad.size:
        step = s0 + int(bad[0]) + 1
        run.status = {"status": "failed", "step": step, "reason": f"loss is {m['loss'][bad[0]]} at step {step}"}
        _call(run, [h for h in run.hooks.every if h.failed], StepInfo(run, s0, step, state, tuple(lines),
                                                                         programs.graphdef))
        return False
    if s1 // cfg.train.eval_every > s0 // cfg.train.eval_every or s1 == total:
        with clock.phase("val_loss"):
            val = float(np.mean([programs.eval_loss(state["params"], b) for b in run.heldout]))
            lines.append({"step": s1, "tokens": s1 * cfg.tokens_per_step, "val_loss": val})
    info = StepInfo(run, s0, s1, state, tuple(lines), programs.graphdef)
    _call(run, [h for h in run.hooks.every if h.due(s0, s1, total)], info)
    return True


def _call(run: Run, hooks: list[Hook], info: StepInfo) -> None:
    for hook in hooks:
        with run.clock.phase(hook.phase):
            hook.fn(info)


def _progress(total: int, start: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", disable=not enabled, dynamic_ncols=True)
