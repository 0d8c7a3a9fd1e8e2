"""What `scaling train` runs (the command is scaling.cli.train, which prints the final
evaluation as `scaling eval` does): train a run, evaluating it at eval.checkpoints and at
the end.

This module joins the two halves that must not import each other: the training loop
(scaling.train) and evaluation (scaling.evaluate). The loop hands the evaluator its own
held-out batches, so evaluation never rebuilds the run's data.
"""

from __future__ import annotations

from pathlib import Path

from scaling import evaluate
from scaling import train as trainer
from scaling.config import Config


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
