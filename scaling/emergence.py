"""The emergence study's run-side step: `recall_rates` scores each run's final checkpoint on
recall items (`World.recall_items`). `scaling emergence` (scaling.cli.emergence) joins it to the
readout table of scaling.reports.emergence and its figure, scaling.figures.emergence."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.errors import UsageError


def recall_rates(runs_dir: Path) -> pd.DataFrame:
    """(run_id, model, tokens, recall) for every evaluated run under RUNS_DIR/runs."""
    from scaling import rundir
    from scaling.evaluate import checkpoint_step, readout_margins, transformer_scorer
    from scaling.world import World

    rows = []
    for run in sorted(p for p in (runs_dir / "runs").iterdir() if (p / "checkpoints").is_dir()):
        step = checkpoint_step(run, None)
        cfg, tok, model = rundir.load_params(run, step)
        items = World(cfg.data.world_seed).recall_items()
        margin = readout_margins(transformer_scorer(cfg, model), tok, items)
        rows.append({"run_id": run.name, "model": cfg.model.name, "tokens": step * cfg.tokens_per_step,
                     "recall": float(((margin > 0) + 0.5 * (margin == 0)).mean())})
    if not rows:
        raise UsageError(f"no run with checkpoints under {runs_dir / 'runs'}")
    return pd.DataFrame(rows)
