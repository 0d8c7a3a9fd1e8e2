"""Learning-rate schedules of a staged run: one function of the global step, piece by stage.

Each stage's piece is a function of the step within the stage:

  constant  `warmup_steps` of linear rise, then the peak
  cosine    linear rise, then cosine decay to the final LR at the stage's end (optax's
            warmup_cosine_decay_schedule, so the legacy pretraining schedule is unchanged)
  wsd       warmup-stable-decay: rise, the peak, then linear decay to the final LR over the
            last `decay_share` of the stage
  linear    rise, then linear decay from the peak to the final LR over the rest

The rise starts at the previous stage's final LR (0 for the first stage): a warmup in a
later stage is a rewarm. A stage ends at its final LR (the peak, for constant), which is
where the next stage starts.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from scaling.stages import Stage


def _rise(init: float, peak: float, warmup: int):
    return lambda step: init + (peak - init) * jnp.minimum(step, warmup) / max(warmup, 1)


def piece(st: Stage, init: float) -> tuple[optax.Schedule, float]:
    """(schedule over the stage's own steps, LR at its end)."""
    n, peak, final = st.steps, st.peak_lr, st.final_lr
    warmup = min(st.warmup_steps, max(n - 1, 0))
    if st.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(init, peak, warmup, max(n, warmup + 1), end_value=final), final
    if st.schedule == "constant":
        if warmup == 0:
            return optax.constant_schedule(peak), peak
        rise = _rise(init, peak, warmup)
        return (lambda step: jnp.where(step < warmup, rise(step), peak)), peak
    rise = _rise(init, peak, warmup)
    if st.schedule == "wsd":
        decay = min(round(st.decay_share * n), n - warmup)
        start = n - decay

        def wsd(step):
            down = peak + (final - peak) * jnp.clip(step - start, 0, decay) / max(decay, 1)
            return jnp.where(step < warmup, rise(step), jnp.where(step < start, peak, down))

        return wsd, final if decay else peak
    if st.schedule == "linear":
        span = max(n - warmup, 1)

        def linear(step):
            down = peak + (final - peak) * jnp.clip(step - warmup, 0, span) / span
            return jnp.where(step < warmup, rise(step), down)

        return linear, final
    raise ValueError(f"unknown schedule {st.schedule!r}")


def make_schedule(stages: tuple[Stage, ...]) -> optax.Schedule:
    """The run's LR as a function of the global step (optax.join_schedules of the pieces);
    past the last stage it stays at the final LR."""
    pieces, init = [], 0.0
    for st in stages:
        fn, init = piece(st, init)
        pieces.append(fn)
    pieces.append(optax.constant_schedule(init))
    return optax.join_schedules(pieces, [st.step0 for st in stages[1:]] + [stages[-1].step1])


def lr_at(stages: tuple[Stage, ...], steps) -> list[float]:
    """LRs at the given global steps, for tests and figures (as the optimiser computes them)."""
    schedule = make_schedule(stages)
    return [float(x) for x in schedule(jnp.asarray(list(steps), jnp.int32))]
