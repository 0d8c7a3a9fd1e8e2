"""`scaling emergence TRAJECTORY.csv --out DIR`: where the model learns the world's values.

Transfer can only be measured where the model knows which verb the human stories praise.
The readout (share of readout items on which the model prefers the value word the stories
give the verb; 0.5: it does not know) is recorded at every eval checkpoint in
trajectory.csv. This command tabulates it against training tokens, per model size (the
`model` column) and split, over runs (mean, min and max across seeds, worlds and doses),
and names the **emergence budget**: the fewest tokens at which every run of a model has a
readout >= THRESHOLD (default 0.9) on every split.

Writes DIR/emergence.md and DIR/emergence.png (the figure: scaling.figures.emergence). With
`--recall RUNS_DIR` it also scores each run's final checkpoint on recall items
(`World.recall_items`: which everyday action did the named person take? no values involved),
which tells whether a model binds names to actions in context at all — the step the world-v3
readout needs first.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.errors import UsageError
from scaling.splits import order as split_order

NEEDED = ("run_id", "model", "split", "tokens", "readout")


def readout_table(trajectory: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max readout over runs per (model, tokens, split)."""
    missing = [c for c in NEEDED if c not in trajectory.columns]
    if missing:
        raise UsageError(f"trajectory table lacks column(s) {', '.join(missing)} (a trajectory.csv "
                         "from `scaling results` has them)")
    rows = trajectory.assign(readout=pd.to_numeric(trajectory["readout"], errors="coerce")).dropna(
        subset=["readout"])
    if rows.empty:
        raise UsageError("no readout in the trajectory table: were the runs evaluated?")
    return (rows.groupby(["model", "tokens", "split"], sort=True)["readout"]
            .agg(mean="mean", min="min", max="max", runs="count").reset_index())


def emergence_budget(table: pd.DataFrame, threshold: float) -> dict[str, int | None]:
    """Per model, the fewest tokens at which the least-learned run of every split reaches
    `threshold` (None: no checkpoint does)."""
    out = {}
    for model, rows in table.groupby("model", sort=True):
        worst = rows.groupby("tokens")["min"].min()
        reached = worst[worst >= threshold]
        out[model] = int(reached.index.min()) if len(reached) else None
    return out


def _splits(table: pd.DataFrame) -> list[str]:
    """The world's splits in their order, then any others as found."""
    return split_order(table["split"])


def report(table: pd.DataFrame, threshold: float) -> str:
    budget = emergence_budget(table, threshold)
    splits = _splits(table)
    lines = ["# Readout against training tokens", "",
             "Share of readout items on which the model prefers the value word the human stories give "
             "the verb (0.5: the values are not known). Mean over runs [min, max].", "",
             "| model | tokens | " + " | ".join(splits) + " | runs |",
             "|---|---|" + "---|" * len(splits) + "---|"]
    for (model, tokens), rows in table.groupby(["model", "tokens"], sort=True):
        by = rows.set_index("split")
        cells = [f"{by.loc[s, 'mean']:.3f} [{by.loc[s, 'min']:.3f}, {by.loc[s, 'max']:.3f}]" if s in by.index
                 else "-" for s in splits]
        lines.append(f"| {model} | {int(tokens):,} | " + " | ".join(cells) + f" | {int(rows['runs'].max())} |")
    lines += ["", f"Emergence budget (every run >= {threshold:g} on every split):"]
    lines += [f"- {model}: {f'{tokens:,} tokens' if tokens else 'not reached at any checkpoint'}"
              for model, tokens in budget.items()]
    return "\n".join(lines) + "\n"


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


def recall_report(rates: pd.DataFrame) -> str:
    lines = ["", "## In-context recall at the final checkpoint", "",
             "Share of recall items on which the model continues with the action the named person took "
             "(0.5: it does not bind names to actions).", "", "| run | model | tokens | recall |", "|---|---|---|---|"]
    lines += [f"| {r.run_id} | {r.model} | {int(r.tokens):,} | {r.recall:.3f} |" for r in rates.itertuples()]
    return "\n".join(lines) + "\n"
