# Toy binding probe for fits/world_learn/probes.md: [NOOBJ=1] [NOBRIDGE=1] toy_binding.py STEPS GAP K R N_NAMES WORLDLIKE [overrides].
"""Toy induction: row = random names/verbs pairs then queries 'NAME ,' -> VERB. Uses the package's model + optimizer."""
import sys, numpy as np, jax, jax.numpy as jnp, dataclasses, time
import scaling.config as C
from scaling.config import parse_config_file
from scaling.train.steps import make_optimizer, make_train_step, make_multi_step, init_state, loss_fn
from flax import nnx
steps = int(sys.argv[1]); GAP = int(sys.argv[2]); K = int(sys.argv[3]); R = int(sys.argv[4]); NN = int(sys.argv[5]); WL = int(sys.argv[6]); extra = sys.argv[7:]
cfg = parse_config_file(C.preset_path("nano"), [f"train.steps={steps}", "train.batch_size=16", "model.vocab_size=200", "train.warmup_steps=60", *extra])
L = cfg.model.seq_len
rng = np.random.default_rng(0)
NAMES = np.arange(10, 10 + NN); VERBS = np.arange(100, 110); COMMA, DOT = 5, 6
import os
NOOBJ, NOBRIDGE = int(os.environ.get('NOOBJ', 0)), int(os.environ.get('NOBRIDGE', 0))
THE, AGAIN = 7, 8; OBJS = np.arange(120, 144); BR = np.arange(150, 160)
def row():
    out = []
    while len(out) < L + 1:
        k = K if not WL else rng.choice((2, 3))
        ns = rng.choice(NAMES, k, replace=False); vs = rng.choice(VERBS, k); os_ = rng.choice(OBJS, k)
        for n, v, o in zip(ns, vs, os_): out += ([n, v] + ([] if NOOBJ else [THE, o]) + [DOT]) if WL else [n, v, DOT]
        for i in np.concatenate([rng.permutation(k) for _ in range(-(-R // k))])[:R]:
            if WL: out += ([] if NOBRIDGE else list(rng.choice(BR, 3)) + [COMMA]) + [ns[i], vs[i]] + ([] if NOOBJ else [THE, os_[i]]) + [AGAIN, DOT]
            else: out += ([ns[i], COMMA, vs[i], DOT] if GAP else [ns[i], vs[i], DOT])
        out += [1]
    return out[:L + 1]
def batch(n): return np.array([[row() for _ in range(cfg.train.batch_size)] for _ in range(n)], np.int32)
tx, sched = make_optimizer(cfg)
graphdef, state = init_state(cfg, tx)
step = jax.jit(make_multi_step(make_train_step(graphdef, tx, sched)))
def acc(params):
    model = nnx.merge(graphdef, params)
    b = batch(4).reshape(-1, L + 1)
    logits = np.asarray(model(jnp.asarray(b[:, :-1])))
    hit = tot = 0
    for r in range(len(b)):
        seen, tells, first = set(), {}, True
        for p in range(0, L - 1):
            t = b[r, p]
            if t == 1: seen, tells, first = set(), {}, True; continue
            if t in NAMES and p + 1 < L and b[r, p + 1] in VERBS and t not in tells and p > 0 and b[r,p-1] in (1, DOT) and len(seen) < 3 and not (p + 4 < L and b[r, p + (2 if NOOBJ else 4)] == AGAIN):
                tells[t] = b[r, p + 1]; seen.add(t); continue
            qpos = p + 1 if GAP else p
            if t in tells and first and len(tells) >= 2 and qpos < L and p > 0 and b[r, p-1] in (COMMA, DOT) and (p + 4 >= L or b[r, p + (2 if NOOBJ else 4)] == AGAIN):
                cands = sorted(set(tells.values()))
                if len(cands) == len(tells):
                    tot += 1; hit += int(cands[int(np.argmax(logits[r, qpos, cands]))] == tells[t])
                first = False
    return hit / max(tot, 1)
s = 0; t0 = time.time()
while s < steps:
    state, m = step(state, batch(10)); s += 10
    if s % 500 == 0: print(s, float(m["loss"][-1]), "verb acc", round(acc(state["params"]), 3), round(time.time() - t0), flush=True)
