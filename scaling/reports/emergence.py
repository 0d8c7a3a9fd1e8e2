"""The tables of `scaling emergence TRAJECTORY.csv --out DIR`: where the model learns the world's values.

Transfer can only be measured where the model knows which verb the human stories praise.
The readout (share of readout items on which the model prefers the value word the stories
give the verb; 0.5: it does not know) is recorded at every eval checkpoint in
trajectory.csv. This command tabulates it against training tokens, per model size (the
`model` column) and split, over runs (mean, min and max across seeds, worlds and doses),
and names the **emergence budget**: the fewest tokens at which every run of a model has a
readout >= THRESHOLD (default 0.9) on every split.

`readout_table` computes the tidy table and `report` renders it (emergence.md); the figure
(DIR/emergence.png) is scaling.emergence's. With `--recall RUNS_DIR` the command also scores
each run's final checkpoint on recall items (scaling.emergence.recall_rates; `World.recall_items`:
which everyday action did the named person take? no values involved), rendered by
`recall_report`, which tells whether a model binds names to actions in context at all — the
step the world-v3 readout needs first.
"""

from __future__ import annotations

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


def recall_report(rates: pd.DataFrame) -> str:
    lines = ["", "## In-context recall at the final checkpoint", "",
             "Share of recall items on which the model continues with the action the named person took "
             "(0.5: it does not bind names to actions).", "", "| run | model | tokens | recall |", "|---|---|---|---|"]
    lines += [f"| {r.run_id} | {r.model} | {int(r.tokens):,} | {r.recall:.3f} |" for r in rates.itertuples()]
    return "\n".join(lines) + "\n"
