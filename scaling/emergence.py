"""The emergence study's drawing and its run-side step: `figure` draws the readout table of
scaling.reports.emergence; `recall_rates` scores each run's final checkpoint on recall items
(`World.recall_items`). `scaling emergence` (scaling.cli.emergence) joins them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.errors import UsageError
from scaling.splits import order as split_order


def figure(table: pd.DataFrame, threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = split_order(table["split"])
    fig, axes = plt.subplots(1, len(splits), figsize=(4 * len(splits), 3.4), sharey=True, squeeze=False)
    for ax, split in zip(axes[0], splits):
        for model, rows in table[table["split"] == split].groupby("model", sort=True):
            ax.plot(rows["tokens"], rows["mean"], marker="o", label=model)
            ax.fill_between(rows["tokens"], rows["min"], rows["max"], alpha=0.2)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.axhline(threshold, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_title(split)
        ax.set_xlabel("training tokens")
    axes[0, 0].set_ylabel("readout (mean, band: min-max over runs)")
    axes[0, 0].set_ylim(0.3, 1.02)
    axes[0, -1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


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
