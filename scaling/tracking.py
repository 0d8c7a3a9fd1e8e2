"""Tracked runs: a run's metrics as TensorBoard event files or a Weights & Biases run.

`metrics.jsonl` and `eval.json` stay the record; a tracker is a view of them, written when a
run finishes (`scaling train --tracker ...`) or afterwards for a run or a whole sweep
(`scaling track DIR --tracker ...`). Writing from the record, not from inside the loop, keeps
resume exact: a resumed run's log is cut back to its checkpoint, and the view written from it
has each step once.

  tensorboard  RUN_DIR/tensorboard/ (tensorboardX), rewritten whole: `tensorboard --logdir DIR`
  wandb        a wandb run named by the run directory, offline (files under RUN_DIR/wandb)
               unless WANDB_API_KEY is set; needs the `wandb` extra
  none         nothing

Scalars: train/loss, train/lr, train/grad_norm (and a stage's own, e.g. train/reward) per step,
val/loss at eval intervals, and eval/SPLIT_rate, eval/SPLIT_readout, eval/val_loss,
eval/fact_recall from the evaluation trajectory (eval.json), at their steps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scaling import rundir
from scaling.errors import UsageError
from scaling.io import RunFiles

TRACKERS = ("none", "tensorboard", "wandb")
SKIP = {"step", "tokens", "stage", "tokens_per_s"}


def scalars(run_dir: Path) -> list[tuple[str, float, int]]:
    """(tag, value, step) of every metric of a run, in step order."""
    out = []
    for line in rundir.read_jsonl(RunFiles(run_dir).metrics):
        step = line.get("step")
        for key, value in line.items():
            if key not in SKIP and isinstance(value, int | float):
                out.append(("val/loss" if key == "val_loss" else f"train/{key}", float(value), int(step)))
    for point in (rundir.read_json(RunFiles(run_dir).eval) or {}).get("trajectory") or []:
        for key, value in point.items():
            if key not in SKIP and isinstance(value, int | float):
                out.append((f"eval/{key}", float(value), int(point["step"])))
    return sorted(out, key=lambda x: x[2])


def run_dirs(path: Path) -> list[Path]:
    """A run directory, or every run of a sweep directory (DIR/runs/*)."""
    if RunFiles(path).metrics.exists():
        return [path]
    runs = sorted(p for p in (path / "runs").glob("*") if RunFiles(p).metrics.exists())
    if not runs:
        raise UsageError(f"{path} is neither a run directory (no metrics.jsonl) nor a sweep with runs")
    return runs


def write(run_dir: Path, tracker: str) -> None:
    if tracker == "tensorboard":
        _tensorboard(Path(run_dir))
    elif tracker == "wandb":
        _wandb(Path(run_dir))
    elif tracker != "none":
        raise UsageError(f"--tracker must be one of {', '.join(TRACKERS)}, got {tracker!r}")


def check(tracker: str) -> None:
    """Refuse an unknown or uninstalled tracker before any compute."""
    if tracker not in TRACKERS:
        raise UsageError(f"--tracker must be one of {', '.join(TRACKERS)}, got {tracker!r}")
    module = {"tensorboard": "tensorboardX", "wandb": "wandb"}.get(tracker)
    if module:
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"--tracker {tracker} needs the {module} package: pip install {module}") from None


def _tensorboard(run_dir: Path) -> None:
    from tensorboardX import SummaryWriter

    folder = run_dir / "tensorboard"
    shutil.rmtree(folder, ignore_errors=True)  # rewritten whole from the record
    with SummaryWriter(str(folder)) as writer:
        for tag, value, step in scalars(run_dir):
            writer.add_scalar(tag, value, step)


def _wandb(run_dir: Path) -> None:
    import wandb

    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    record = rundir.read_json(RunFiles(run_dir).config) or {}
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "scaling"), name=run_dir.name, dir=str(run_dir),
                     config=record.get("config", {}), mode=mode, reinit=True)
    by_step: dict[int, dict] = {}
    for tag, value, step in scalars(run_dir):
        by_step.setdefault(step, {})[tag] = value
    for step in sorted(by_step):
        run.log(by_step[step], step=step)
    run.finish()
