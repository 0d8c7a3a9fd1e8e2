# Probe used for fits/world_learn/probes.md (run from the repository root with PYTHONPATH set; writes /tmp/wl/).
"""Probe: train a model on the run's mixture, score recall and readout with eval-only names
(as the package does) and with the same items' names mapped onto training names."""
import sys, time, json, argparse, re
import numpy as np, jax
import scaling.config as C
from scaling.config import parse_config_file
from scaling.world import documents as D
from scaling.world import lexicon as L
from scaling.world import World
from scaling.world.lexicon import EVAL_NAMES, TRAIN_NAMES
from scaling.data.mixture import Mixture
from scaling.plan import with_tokenizer
from scaling.train.steps import make_optimizer, make_train_step, make_multi_step, init_state
from scaling.evaluate import transformer_scorer, readout_margins
from flax import nnx

ap = argparse.ArgumentParser()
ap.add_argument("--preset", default="nano")
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--evals", default="")
ap.add_argument("--tag", default="")
ap.add_argument("--recall-share", type=float, default=None)
ap.add_argument("--people", default="")
ap.add_argument("--retold", type=int, default=None)
ap.add_argument("--one-bridge", action="store_true")
ap.add_argument("--compact", action="store_true")
ap.add_argument("--set", action="append", default=[])
a = ap.parse_args()
if a.recall_share is not None:
    D.RECALL_SHARE = a.recall_share  # the name base_document reads
if a.people: L.RECALL_PEOPLE = tuple(int(x) for x in a.people.split(","))
if a.retold: L.RECALL_RETOLD = a.retold
L.RECALL_ONE_BRIDGE = a.one_bridge
if a.compact:
    import random as _r
    def _compact(rng):
        people = rng.sample(L.RECALL_NAMES, 2)
        acts = [(n, rng.choice(L.RECALL_VERBS)) for n in people]
        told = [f"{n} {v} ." for n, v in acts] + [f"{n} {v} ." for n, v in rng.sample(acts, 2)]
        return " ".join(told)
    D.recall_document = _compact
over = [f"train.steps={a.steps}", "train.batch_size=16", "train.warmup_steps=60", *a.set]
if not any(s.startswith("data.data_dir") for s in over):
    over.append(f"data.data_dir=/tmp/wl/data-r{a.recall_share}")
cfg = parse_config_file(C.preset_path(a.preset), over)
mix = Mixture(cfg)
tok = mix.tok
cfg = with_tokenizer(cfg, tok)
tx, sched = make_optimizer(cfg)
graphdef, state = init_state(cfg, tx)
step = jax.jit(make_multi_step(make_train_step(graphdef, tx, sched)))
world = World(cfg.data.world_seed, cfg.data.world_variant, cfg.data.world_version)
emap = dict(zip(EVAL_NAMES, TRAIN_NAMES[-len(EVAL_NAMES):]))
def to_train(items):
    out = []
    for it in items:
        f = lambda s: " ".join(emap.get(w, w) for w in s.split())
        out.append({**it, "prompt": f(it["prompt"]), "expected": f(it["expected"]), "other": f(it["other"])})
    return out
rec = world.recall_items(); ro = world.readout_items()
if a.compact:
    import random as _r
    g = _r.Random(5); rec = []
    for k in range(400):
        ps = g.sample(L.PROBE_NAMES, 2); vs = g.sample(L.RECALL_VERBS, 2); j = g.randrange(2)
        rec.append({"prompt": f"{ps[0]} {vs[0]} . {ps[1]} {vs[1]} . {ps[j]}", "expected": f"{vs[j]} .", "other": f"{vs[1-j]} ."})
sets = {"recall_eval": rec, "recall_train": to_train(rec)}
for sp in ("matched", "unseen_pair"):
    r = [i for i in ro if i["split"] == sp]
    sets[f"ro_{sp}_eval"] = r; sets[f"ro_{sp}_train"] = to_train(r)
from scaling.world.lexicon import RECALL_VERBS
import jax.numpy as jnp
NAME_IDS = {tok.stoi[n] for n in TRAIN_NAMES}; VERB_IDS = {tok.stoi[v] for v in RECALL_VERBS}
HELD = mix.heldout_batches(8).reshape(-1, cfg.model.seq_len + 1)
def row_recall(model):
    logits = np.asarray(model(jnp.asarray(HELD[:, :-1])))
    hit = tot = 0
    for r, row in enumerate(HELD):
        tells = {}
        for p in range(len(row) - 1):
            t = int(row[p])
            if t == 1: tells = {}; continue
            if t in NAME_IDS and int(row[p + 1]) in VERB_IDS:
                if t in tells and len(set(tells.values())) >= 2 and p < logits.shape[1]:
                    cands = sorted(set(tells.values()))
                    tot += 1; hit += int(cands[int(np.argmax(logits[r, p, cands]))] == tells[t])
                elif t not in tells:
                    tells[t] = int(row[p + 1])
    return round(hit / max(tot, 1), 3), tot
def evaluate(params):
    model = nnx.merge(graphdef, params)
    score = transformer_scorer(cfg, model)
    res = {}
    res["row_recall"], res["row_n"] = row_recall(model)
    for k, items in sets.items():
        m = readout_margins(score, tok, items)
        res[k] = round(float(((m > 0) + 0.5 * (m == 0)).mean()), 3)
    return res
evals = sorted(set(int(x) for x in a.evals.split(",") if x) | {a.steps})
K = 10
t0 = time.time(); s = 0; log = []
tps = cfg.train.batch_size * cfg.model.seq_len
while s < a.steps:
    n = min(K, a.steps - s)
    batch = mix.batches(s, n)
    state, m = step(state, batch)
    s += n
    if s in evals:
        loss = float(np.asarray(m["loss"])[-1])
        te = time.time() - t0
        r = evaluate(state["params"])
        row = {"tag": a.tag, "step": s, "tokens": s * tps, "train_s": round(te), "loss": round(loss, 3), **r}
        print(json.dumps(row), flush=True)
        log.append(row)
emb = np.asarray(nnx.merge(graphdef, state["params"]).embed.embedding.get_value())
np.save(f"/tmp/wl/emb_{a.tag}.npy", emb)
def cos_stats(ids):
    e = emb[ids]; e = e / np.linalg.norm(e, axis=1, keepdims=True); c = e @ e.T
    return round(float(c[~np.eye(len(ids), dtype=bool)].mean()), 3), round(float(np.linalg.norm(emb[ids], axis=1).mean()), 3)
print(json.dumps({"tag": a.tag, "eval_names_cos_norm": cos_stats([tok.stoi[n] for n in EVAL_NAMES]),
                  "train_names_cos_norm": cos_stats([tok.stoi[n] for n in TRAIN_NAMES]), "probe_names_cos_norm": cos_stats([tok.stoi[n] for n in L.PROBE_NAMES])}), flush=True)
with open("/tmp/wl/probes.jsonl", "a") as f:
    for row in log:
        f.write(json.dumps({**row, "cfg": over, "preset": a.preset, "recall_share": a.recall_share, "people": a.people, "retold": a.retold, "one_bridge": a.one_bridge}) + "\n")
