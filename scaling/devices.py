"""Devices: where a compiled train step runs, the multi-host start-up, the compilation cache.

Two ways to use more than one device, both over a 1-D mesh of every device (all hosts):

- **Packed runs** (`--pack K`, several independent runs vmapped over a leading run axis):
  the run axis is sharded over the mesh, K padded up to a multiple of the device count with
  copies of the last run whose outputs are dropped. vmap describes the runs, the sharding
  places them: each device trains its own runs and nothing crosses devices
  (`collectives(...)` checks the compiled program; tests/test_devices.py asserts it).
- **Data parallelism** for one larger run: the batch axis is sharded, parameters and
  optimiser state are replicated, XLA inserts the gradient all-reduce. The loss is a mean
  over the global batch, so the result equals one device up to float summation order.

Which one a process uses is a process setting, not part of the run config (placement does
not change what is computed, and the config is hashed into run ids): the environment
variable `SCALING_PARALLEL` = `auto` (default: runs when packed, data for one run when the
batch divides evenly, else one device) | `off` (one device) | `runs` (packed runs only; a
lone run stays on one device) | `data` (one run at a time, over all devices).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from scaling.errors import ConfigError, UsageError

AXIS = "devices"
MODES = ("auto", "off", "runs", "data")
# HLO ops that move data between devices; an independent-runs program must have none.
COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "reduce-scatter", "collective-permute",
               "collective-broadcast", "send", "recv")


def mode() -> str:
    value = os.environ.get("SCALING_PARALLEL", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise UsageError(f"SCALING_PARALLEL must be one of {', '.join(MODES)}, got {value!r}")
    return value


def mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh over `devices` (default: every device of every process)."""
    devices = list(devices if devices is not None else jax.devices())
    return jax.make_mesh((len(devices),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=devices)


def padded_runs(k: int, n_devices: int) -> int:
    """K rounded up to a multiple of the device count (each device gets equally many runs)."""
    return -(-k // n_devices) * n_devices


@dataclasses.dataclass(frozen=True)
class Placement:
    """How the train step's inputs and outputs lie on devices.

    kind "runs": state and batches carry a leading run axis, sharded; "data": state is
    replicated and batches [N, B, L+1] are sharded on B."""

    kind: str
    mesh: jax.sharding.Mesh

    @property
    def n_devices(self) -> int:
        return self.mesh.size

    @property
    def state_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS) if self.kind == "runs" else P())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS) if self.kind == "runs" else P(None, AXIS))

    @property
    def metrics_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS) if self.kind == "runs" else P())

    def runs_slots(self, k: int) -> int:
        return padded_runs(k, self.n_devices) if self.kind == "runs" else k

    def jit(self, fn, donate_argnums=0):
        """`jax.jit` with explicit shardings: (state, batches) -> (state, metrics)."""
        return jax.jit(fn, donate_argnums=donate_argnums,
                       in_shardings=(self.state_sharding, self.batch_sharding),
                       out_shardings=(self.state_sharding, self.metrics_sharding))

    def put(self, tree, sharding: NamedSharding):
        """Host values (identical on every process) as global arrays with `sharding`; each
        process fills only the shards its own devices hold, so this works on one host and
        on many."""

        def place(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        return jax.tree.map(place, tree)

    def put_state(self, tree):
        return self.put(tree, self.state_sharding)

    def put_batches(self, batches):
        return self.put(batches, self.batch_sharding)


def placement(batch_size: int, n_runs: int, devices=None) -> Placement | None:
    """The placement for `n_runs` runs of batch `batch_size` on the available devices, or
    None for the plain single-device program. Bad combinations are named before compute."""
    want = mode()
    devices = list(devices if devices is not None else jax.devices())
    if want == "off" or len(devices) == 1:
        return None
    if want == "runs" or (want == "auto" and n_runs > 1):
        # a lone run (a sweep's last, incomplete pack) has nothing to spread: one device
        return Placement("runs", mesh(devices)) if n_runs > 1 else None
    # data parallel: one run, its batch split evenly
    if n_runs > 1:
        raise UsageError("SCALING_PARALLEL=data trains one run at a time; use --pack 1")
    if batch_size % len(devices):
        if want == "data":
            raise ConfigError("train.batch_size", f"{batch_size} is not divisible by the "
                              f"{len(devices)} devices of data parallelism")
        return None
    return Placement("data", mesh(devices))


def pad_runs(trees: list, slots: int) -> list:
    """`trees` extended to `slots` entries with copies of the last one (outputs dropped)."""
    return list(trees) + [trees[-1]] * (slots - len(trees))


def collectives(hlo_text: str) -> list[str]:
    """Cross-device communication ops in compiled HLO text (`lowered.compile().as_text()`)."""
    found = []
    for op in COLLECTIVES:
        # an op appears as `= TYPE op-name(` or `op-name-start(`; names like %all-reduce.3 are
        # its result variables, so match the instruction form only
        if re.search(rf"\s{re.escape(op)}(-start)?\(", hlo_text):
            found.append(op)
    return found


# ---------------------------------------------------------------- multi-host


def distributed_request(environ=None, coordinator: str | None = None) -> dict | None:
    """Arguments for `jax.distributed.initialize`, or None when this is a single process.

    Asked for by an explicit coordinator (the `coordinator` argument or SCALING_COORDINATOR
    =HOST:PORT, with SCALING_NUM_PROCESSES and SCALING_PROCESS_ID), or by the environment of a
    multi-process job: a SLURM job step with more than one task, a JobSet pod group
    (JOBSET_NAME set and SCALING_NUM_PROCESSES > 1), or a multi-host TPU slice
    (TPU_WORKER_HOSTNAMES with several hosts). For those JAX reads the rest from the
    environment itself, so the arguments are empty. This is a library call (the package's
    commands do not call it: multi-host sweeps run one launcher per host)."""
    env = os.environ if environ is None else environ
    coordinator = coordinator or env.get("SCALING_COORDINATOR")
    if coordinator:
        try:
            n, i = int(env["SCALING_NUM_PROCESSES"]), int(env["SCALING_PROCESS_ID"])
        except (KeyError, ValueError):
            raise UsageError("a coordinator needs SCALING_NUM_PROCESSES and SCALING_PROCESS_ID "
                             "(integers) in the environment") from None
        if not 0 <= i < n:
            raise UsageError(f"SCALING_PROCESS_ID={i} must be in 0..{n - 1}")
        return {"coordinator_address": coordinator, "num_processes": n, "process_id": i}
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_STEP_ID" in env:
        return {}
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]
    if len(hosts) > 1:
        return {}
    if env.get("JOBSET_NAME") and int(env.get("SCALING_NUM_PROCESSES", "1")) > 1:
        return {}
    return None


def initialize_distributed(coordinator: str | None = None, environ=None) -> bool:
    """Call `jax.distributed.initialize()` if the environment asks for it (once, before any
    other JAX call touches a device). Returns whether this is a multi-process job."""
    request = distributed_request(environ, coordinator)
    if request is None:
        return False
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(**request)
    return jax.process_count() > 1


# ---------------------------------------------------------------- compilation cache


def enable_compilation_cache(path: str | Path) -> Path:
    """Persistent XLA compilation cache in `path`: a process compiling a shape that an
    earlier process compiled loads it instead (sweeps compile once per shape, not once per
    launcher or array task). Every program is cached, not only those over JAX's default
    one-second threshold: a sweep compiles many small ones (initialisation, held-out loss,
    evaluation), which together cost seconds per process on a CPU."""
    path = Path(path).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
