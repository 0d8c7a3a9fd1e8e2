# Toy induction probe for fits/world_learn/probes.md: toy_induction.py STEPS [overrides].
"""Induction with variable period: random P-token sequence (P in 6..30) repeated; accuracy on repeats."""
import sys, numpy as np, jax, jax.numpy as jnp, time
import scaling.config as C
from scaling.config import parse_config_file
from scaling.train.steps import make_optimizer, make_train_step, make_multi_step, init_state
from flax import nnx
steps = int(sys.argv[1]); extra = sys.argv[2:]
cfg = parse_config_file(C.preset_path("nano"), [f"train.steps={steps}", "train.batch_size=16", "model.vocab_size=200", "train.warmup_steps=60", *extra])
L = cfg.model.seq_len
rng = np.random.default_rng(0)
def rows(n):
    b = np.zeros((n, L + 1), np.int32); m = np.zeros((n, L + 1), bool)
    for i in range(n):
        P = rng.integers(6, 31); x = rng.integers(3, 200, P)
        r = np.concatenate([x] * (L // P + 2))[:L + 1]
        b[i] = r; m[i, P:] = True
    return b, m
def batch(n): return rows(n * cfg.train.batch_size)[0].reshape(n, cfg.train.batch_size, L + 1)
tx, sched = make_optimizer(cfg)
graphdef, state = init_state(cfg, tx)
step = jax.jit(make_multi_step(make_train_step(graphdef, tx, sched)))
def acc(params):
    model = nnx.merge(graphdef, params)
    b, m = rows(64)
    pred = np.asarray(model(jnp.asarray(b[:, :-1]))).argmax(-1)
    return float((pred == b[:, 1:])[m[:, 1:]].mean())
s = 0; t0 = time.time()
while s < steps:
    state, mm = step(state, batch(10)); s += 10
    if s % 250 == 0: print(s, round(float(mm["loss"][-1]), 3), "copy acc", round(acc(state["params"]), 3), round(time.time() - t0), flush=True)
