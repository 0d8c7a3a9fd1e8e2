"""Shared pretraining: runs of a sweep that differ only in what follows their pretraining
train that pretraining once.

A run whose stages end in post-training (`post = true`, or an objective other than lm) has a
*branch step* (scaling.plan.RunPlan.branch_step): the first step of its first post stage. Everything before that step (the
model, the optimiser, the LR schedule, the pretraining batches) is the same for every run
whose *branch key* is the same; the key is a hash of

- the config with the stages from the branch step on removed and the eval section removed
  (evaluation never changes training), and the content of its input files;
- the branch step, the vmapped pack width (XLA's summation order depends on it) and the
  JAX version and backend;
- a fingerprint of the pretraining batches themselves (17 steps spread over the pretraining,
  hashed), so data that depends on the post stages in a way the config does not show
  cannot be shared by mistake.

The first run of a key to reach its branch step (the trunk) exports its state there to
`SWEEP_OUT/branches/<key>/` (an orbax checkpoint with recorded sha256 sums, the trunk's
metrics.jsonl up to that step, and branch.json, written last). Every later run of the key
starts from that export instead of from step 0: it takes the metrics lines, evaluates at the
branch step itself if eval.checkpoints names it (its evaluation items and labels may differ
from the trunk's), saves the state as its own checkpoint and trains on. Because resuming from
a checkpoint is bitwise the same as never stopping (tests/test_train.py), a branched run is
bitwise the run trained from scratch (tests/test_branches.py checks it for every objective).

A run is not branched, and trains from step 0 as before, when: it is not in a sweep (plain
`scaling train`), it has no post stage, eval.checkpoints names a step before the branch step
(those evaluations would have to be redone on the trunk's intermediate models), or the
export is missing, incomplete or damaged (a damaged one is reported and ignored).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from scaling import rundir
from scaling.config import Config
from scaling.io import BRANCHES, RunFiles, read_json, write_json, write_text
from scaling.plan import RunPlan

DIRNAME = BRANCHES  # under a sweep's output directory, beside runs/
MARKER = "branch.json"  # written last: an export without it is incomplete
FINGERPRINT_STEPS = 16  # pretraining steps sampled (plus the last one) for the batch fingerprint


def batch_fingerprint(source, b: int) -> str:
    """sha256 of the batches of FINGERPRINT_STEPS steps spread over [0, b) and of step b-1."""
    steps = sorted({int(s) for s in np.linspace(0, b - 1, FINGERPRINT_STEPS)} | {b - 1})
    h = hashlib.sha256()
    for s in steps:
        h.update(np.ascontiguousarray(source.batches(s, 1), dtype=np.int32).tobytes())
    return h.hexdigest()


def branch_key(plan: RunPlan, source, width: int) -> str:
    """The key runs share when their first `plan.branch_step` steps are the same (see the
    module doc; `plan.trunk_key` is its part that the config shows)."""
    import jax

    from scaling import inputs

    b = plan.branch_step
    record = {"config": plan.prefix_record(b), "inputs": [[d["key"], d["sha256"]] for d in inputs.digests(plan.config)],
              "branch_step": b, "width": width, "jax": jax.__version__, "backend": jax.default_backend(),
              "batches": batch_fingerprint(source, b)}
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def find(root: Path, key: str, b: int, cfg: Config, like):
    """The exported state of `key` at step b (a pytree shaped like `like`) and its record, or
    (None, None) if there is no complete, undamaged export."""
    where = Path(root) / key
    record = read_json(where / MARKER)
    if not isinstance(record, dict) or record.get("key") != key or record.get("step") != b:
        return None, None
    mngr = rundir.checkpoint_manager(where, cfg)
    try:  # the run directory's own restore: sums checked, then orbax; no fallback to set aside
        state, step = rundir.restore_newest(mngr, lambda _step: like, fallback=False)
    except rundir.DamagedCheckpointError as e:
        warnings.warn(f"{where}: the shared pretraining is damaged ({e}); this run trains its own",
                      rundir.DamagedStateWarning, stacklevel=2)
        return None, None
    finally:
        mngr.close()
    return (state, record) if step == b else (None, None)


def export(root: Path, key: str, b: int, cfg: Config, state, run_out: Path) -> None:
    """Export a trunk's state at step b under root/key (no-op if it exists). Written into a
    temporary directory and renamed, so a kill or a second launcher leaves no half export."""
    root = Path(root)
    final = root / key
    if (final / MARKER).exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.{time.time_ns()}"
    mngr = rundir.checkpoint_manager(tmp, cfg)
    try:
        rundir.save_checkpoint(mngr, b, state)
    finally:
        mngr.close()
    write_text(RunFiles(tmp).metrics, RunFiles(run_out).metrics.read_text())
    rundir.truncate_jsonl(RunFiles(tmp).metrics, b)  # the trunk's lines up to the branch step
    write_json(tmp / MARKER, {"key": key, "step": b, "trunk": Path(run_out).name})
    try:
        os.rename(tmp, final)
    except OSError:  # another launcher exported it first (or an incomplete one is in the way)
        import shutil

        if (final / MARKER).exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)


def take_logs(root: Path, key: str, run_out: Path) -> None:
    """Start a branched run's logs: the trunk's metrics up to the branch step, nothing else."""
    files = RunFiles(run_out)
    write_text(files.metrics, RunFiles(Path(root) / key).metrics.read_text())
    for path in files.logs:
        if path != files.metrics:
            path.unlink(missing_ok=True)
