"""`scaling train`: train a run, evaluating it at eval.checkpoints and at the end (and print
that evaluation, as `scaling eval` does).

This module joins the two halves that must not import each other: the training loop
(scaling.train) and evaluation (scaling.evaluate). The loop hands the evaluator its own
held-out batches, so evaluation never rebuilds the run's data.
"""

from __future__ import annotations

from pathlib import Path

from scaling import evaluate, tracking
from scaling import train as trainer
from scaling.config import Config
from scaling.plan import load_config


class RunEvaluator:
    """scaling.evaluate behind the loop's Evaluator interface."""

    def at_step(self, run, step: int, model, heldout) -> None:
        evaluate.record_step(run.out, run.cfg, run.tok, model, step, heldout)

    def at_end(self, run, heldout) -> dict:
        return evaluate.evaluate_run(run.out, heldout=heldout)["seconds"]


EVALUATOR = RunEvaluator()


def train(cfg: Config, out: str | Path, source=None, tok=None, progress: bool = True,
          evaluate: bool | None = None) -> dict:
    """Train (or resume, or skip if finished) the run in `out` and evaluate it."""
    return trainer.train(cfg, out, source, tok, progress, evaluate, EVALUATOR)


def train_pack(runs: list, progress: bool = True, evaluate: bool | None = None,
               width: int | None = None) -> list[dict]:
    return trainer.train_pack(runs, progress, evaluate, EVALUATOR, width=width)


# ---------------------------------------------------------------- CLI


def add_arguments(p) -> None:
    p.add_argument("config", help="TOML config; a preset from models/ works as is")
    p.add_argument("--out", required=True, help="run directory (re-running resumes it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=200 (TOML literal)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tracker", choices=tracking.TRACKERS, default="none",
                   help="also write the metrics as TensorBoard event files (RUN_DIR/tensorboard) or a "
                        "wandb run (offline without WANDB_API_KEY) when the run ends (default none)")


def run(args) -> int:
    tracking.check(args.tracker)
    cfg = load_config(args.config, args.overrides)
    status = train(cfg, args.out, progress=not args.no_progress)
    tracking.write(Path(args.out), args.tracker)
    print(f"{status['status']} at step {status['step']}: {Path(args.out).absolute()}")
    from scaling.rundir import read_json

    result = read_json(Path(args.out) / "eval.json") if cfg.eval.enabled else None
    if status["status"] == "done" and isinstance(result, dict):
        print("\n".join(evaluate.evaluation_lines(result, args.out)))
    return 0 if status["status"] == "done" else 1
