"""Run twice by test_executors.py: compile the tiny model's train step with the persistent
compilation cache in argv[1]; print the compile seconds and the cache hits and misses."""

import json
import sys
import time

import jax
import numpy as np
from conftest import tiny_config

from scaling import devices, plan
from scaling.train import loop, steps

devices.enable_compilation_cache(sys.argv[1])
events = []
jax.monitoring.register_event_listener(lambda event, **kw: events.append(event))
cfg = tiny_config(model={"vocab_size": 64})
programs = loop._programs(loop._unseeded(plan.of(cfg)), 1)
_, state = steps.init_state(cfg, programs.tx)
batches = np.zeros((cfg.train.steps_per_call, cfg.train.batch_size, cfg.model.seq_len + 1), np.int32)
lowered = programs.multi_step.lower(state, batches)
t0 = time.perf_counter()
lowered.compile()
print(json.dumps({"compile_s": time.perf_counter() - t0,
                  "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses")}))
