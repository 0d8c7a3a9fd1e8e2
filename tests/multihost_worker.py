"""One of two processes started by test_devices.py: a two-host job on one machine. Each
process owns 2 virtual CPU devices; the data-parallel train step runs over the global mesh of
4, the gradient all-reduce crossing processes. Process 0 prints the losses as JSON."""

import json
import os

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes

import numpy as np  # noqa: E402
from conftest import tiny_config  # noqa: E402

from scaling import devices, plan  # noqa: E402
from scaling.train import loop, steps  # noqa: E402

# SCALING_COORDINATOR & co. come from the test; without them this is the one-process reference
multi = devices.initialize_distributed()
os.environ["SCALING_PARALLEL"] = "data" if multi else "off"


def batches(cfg, n=5):
    """The same global batch on every process (data is a pure function of seed and step)."""
    rng = np.random.default_rng(0)
    return rng.integers(3, cfg.model.vocab_size, (n, cfg.train.batch_size, cfg.model.seq_len + 1),
                        dtype=np.int32)


cfg = tiny_config(model={"vocab_size": 64}, train={"batch_size": 8, "steps": 10})
programs = loop._programs(loop._unseeded(plan.of(cfg)), 1)
place = programs.placement
_, state = steps.init_state(cfg, programs.tx)
state = place.put_state(state) if place else state
losses = []
for _ in range(2):
    b = place.put_batches(batches(cfg)) if place else batches(cfg)
    state, m = programs.multi_step(state, b)
    losses += np.asarray(m["loss"]).tolist()
if jax.process_index() == 0:
    print(json.dumps({"process_count": jax.process_count(), "device_count": jax.device_count(),
                      "local_device_count": jax.local_device_count(),
                      "kind": place.kind if place else None, "losses": losses}))
if multi:
    jax.distributed.shutdown()
