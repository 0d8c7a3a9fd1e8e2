"""`scaling bench`: train-step throughput, achieved FLOP/s and MFU against a matmul peak
measured on the same device (random tokens; the data pipeline is not timed). On several
devices the program is placed as in training (scaling/devices.py) and MFU is against the
peak of all of them."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from scaling import devices
from scaling.model import flops_per_token, param_counts
from scaling.rundir import environment
from scaling.train.steps import init_state, make_multi_step, make_optimizer, make_train_step


def matmul_peak(n: int = 2048, dtype=jnp.float32, seconds: float = 1.0) -> float:
    """Best FLOP/s of a square matmul: the device's practical peak for the MFU ratio."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def bench(cfg, steps_per_call: int, repeats: int, seconds: float = 3.0, pack: int = 1,
          peak: bool = True) -> dict:
    """Tokens/s of the compiled multi-step; with pack > 1, of `pack` runs vmapped together
    (as `scaling sweep --pack`), counting the tokens of all of them. `peak=False` skips the
    matmul peak (and MFU): a step time alone (`scaling sweep --dry-run`)."""
    tx, schedule = make_optimizer(cfg)
    graphdef, state = init_state(cfg, tx)
    multi = make_multi_step(make_train_step(graphdef, tx, schedule, cfg.train.accum_steps))
    B, L, V = cfg.train.batch_size, cfg.model.seq_len, cfg.model.vocab_size
    # several devices: placed as training places them (packed runs sharded, one run data-parallel)
    place = devices.placement(B, pack)
    slots = place.runs_slots(pack) if place else pack  # padding slots compute but are not counted
    rng = np.random.default_rng(0)
    shape = (steps_per_call, B, L + 1) if pack == 1 else (slots, steps_per_call, B, L + 1)
    batches = rng.integers(3, V, shape, dtype=np.int32)
    if pack > 1:
        multi = jax.vmap(multi)
        state = jax.tree.map(lambda x: jnp.stack([x] * slots), state)
    if place:
        multi, state, batches = place.jit(multi), place.put_state(state), place.put_batches(batches)
    else:
        multi, batches = jax.jit(multi, donate_argnums=0), jnp.asarray(batches)
    t0 = time.perf_counter()
    state, m = multi(state, batches)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    times, t_end = [], time.perf_counter() + seconds
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        state, m = multi(state, batches)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    step_s = float(np.median(times)) / steps_per_call
    tokens_per_s = pack * B * L / step_s
    flops_per_s = tokens_per_s * flops_per_token(cfg.model)
    dtype = jnp.bfloat16 if cfg.model.compute_dtype == "bfloat16" else jnp.float32
    peak = matmul_peak(dtype=dtype) if peak else float("nan")
    n_devices = place.n_devices if place else 1
    return {"tokens_per_s": round(tokens_per_s, 1), "flops_per_s": flops_per_s,
            "mfu": flops_per_s / (peak * n_devices), "devices": n_devices,
            "placement": place.kind if place else None,
            "peak_flops_per_s": peak, "step_ms": 1000 * step_s, "compile_s": round(compile_s, 2),
            "batch": B, "seq": L, "d_model": cfg.model.d_model, "n_layers": cfg.model.n_layers,
            "vocab": V, "params": param_counts(cfg.model), "flops_per_token": flops_per_token(cfg.model),
            "steps_per_call": steps_per_call, "pack": pack, "loss": float(np.ravel(m["loss"])[-1]),
            **{k: v for k, v in environment().items() if k in ("device", "platform", "jax", "flax")}}
