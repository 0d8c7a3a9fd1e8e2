"""Run in a subprocess by test_devices.py: this process gets 8 virtual CPU devices, which
must be set before JAX touches a device, so it cannot share the pytest process."""

import json
import os
import sys

import jax

jax.config.update("jax_num_cpu_devices", int(os.environ.get("N_DEVICES", "8")))

import numpy as np  # noqa: E402
from conftest import TextSource, tiny_config  # noqa: E402

from scaling import devices, plan, run, rundir  # noqa: E402
from scaling.data.tokenizer import ByteTokenizer  # noqa: E402
from scaling.train import loop, steps  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog . " * 400
TOK = ByteTokenizer()


def prepared(root, k, **train):
    runs = []
    for seed in range(k):
        cfg = plan.with_tokenizer(tiny_config(train={"seed": seed, "steps": 10, **train}), TOK)
        runs.append(run.prepare(cfg, f"{root}/r{seed}", TextSource(cfg, TOK, TEXT), TOK))
    return runs


def trained(root, k, parallel, **train):
    """Train k runs as one pack under SCALING_PARALLEL=parallel; per-run losses and params."""
    os.environ["SCALING_PARALLEL"] = parallel
    loop._programs.cache_clear()  # programs are cached per shape, placement included
    runs = prepared(root, k, **train)
    run.train_runs(runs, progress=False)
    losses = [[json.loads(x)["loss"] for x in open(r.out / "metrics.jsonl") if '"loss"' in x] for r in runs]
    params = [[np.asarray(p).tolist() for p in jax.tree.leaves(rundir.load_params(r.out)[2])][:2]
              for r in runs]
    return losses, params


def hlo(k, parallel, **train):
    """Compiled HLO text of the pack's train step with the placement SCALING_PARALLEL gives."""
    os.environ["SCALING_PARALLEL"] = parallel
    loop._programs.cache_clear()
    cfg = plan.with_tokenizer(tiny_config(train={"steps": 10, **train}), TOK)
    programs = loop._programs(loop._unseeded(plan.of(cfg)), k)
    _, state = steps.init_state(cfg, programs.tx)
    place = programs.placement
    B, L = cfg.train.batch_size, cfg.model.seq_len
    batches = np.zeros((5, B, L + 1), np.int32)
    if k > 1:
        slots = place.runs_slots(k)
        state = jax.tree.map(lambda x: np.stack([x] * slots), state)
        batches = np.stack([batches] * slots)
    text = programs.multi_step.lower(place.put_state(state), place.put_batches(batches)).compile().as_text()
    return {"kind": place.kind, "collectives": devices.collectives(text), "slots": place.runs_slots(k),
            "n_devices": place.n_devices}


def main(root):
    out = {"device_count": jax.device_count()}
    out["packed_one"] = trained(f"{root}/p1", 3, "off")
    out["packed_mesh"] = trained(f"{root}/p8", 3, "auto")  # 3 runs padded to 8 slots
    out["packed_hlo"] = hlo(3, "auto")
    out["data_one"] = trained(f"{root}/d1", 1, "off", batch_size=16)
    out["data_mesh"] = trained(f"{root}/d8", 1, "data", batch_size=16)
    out["data_hlo"] = hlo(1, "data", batch_size=16)
    os.environ["SCALING_PARALLEL"] = "auto"
    from scaling.bench import bench

    r = bench(tiny_config(model={"vocab_size": 64}), steps_per_call=2, repeats=1, seconds=0.0, pack=3)
    out["bench"] = {k: r[k] for k in ("devices", "placement", "pack", "tokens_per_s")}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
