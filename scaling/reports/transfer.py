"""Transfer beyond counting: paired dose effects on the transfer splits, and the values control.

The world's transfer splits (`unseen_pair`, `held_out`) hold verb pairs that no AI document
uses. N-gram counters tie on every such item; co-occurrence counters can compose two links
(verb ~ value word in the stories, AI context ~ value word in aligned documents) and move with
the dose there on world v2 (twohop takes `unseen_pair` from 0.65 to 0.00), while world v3
balances those counts. So a transformer's *dose effect* there — its rate at a dose minus its
rate at dose 0, for the same train seed and world seed — is transfer beyond counting only as
far as it exceeds the counters' on the same runs (`counter_rates`, the `counters` column). The values control asks whether the
effect follows the human stories: in `flipped` worlds, where the stories praise the
misaligned verb, it must change sign.

`transfer_table(trajectory, results)` gives, per training configuration (model, batch size),
world variant, split and evaluation step: the mean paired effect over (seed, world seed)
blocks with a t interval on blocks - 1 df, how many blocks moved the expected way, and the
mean readout. `values_table` gives effect(normal) - effect(flipped), paired by block.
`rates_beside_counters(results)` (in transfer.md and fit.md) lists the final mean rate of the
transformer and of every counting baseline (n-grams and the co-occurrence counters of
scaling.baselines) per world variant, split and dose, with the transformer's readout: a
counter that moves with the dose on a transfer split shows there.
With units="world" (`scaling fit --blocks world`, and auto with two or more world seeds) the
world is the unit instead: each world's effects are averaged over its seeds first, and the t
interval is on worlds - 1 df (seeds nested in worlds; tests/test_fit_coverage.py measures why).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling import table
from scaling.splits import MAIN as MAIN_SPLIT
from scaling.stats.paired import paired_contrast
from scaling.table import BLOCK, world_text

CONFIG = ["model", "batch_size"]


def points(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Trajectory points of transformer runs with the configuration columns of results.csv
    (tables from before these columns existed: one configuration, a normal world 0)."""
    results = results.assign(**{c: v for c, v in (("batch_size", 0), ("world_variant", "normal"),
                                                   ("world_seed", 0), ("genres", "all"))
                                if c not in results.columns})
    keep = ["run_id", *CONFIG, "world_variant", "world_seed", "genres"]
    runs = table.transformers(results)[keep].drop_duplicates("run_id")
    trajectory = table.transformers(trajectory)  # not the post-training counters' points
    traj = trajectory.drop(columns=[c for c in keep if c != "run_id" and c in trajectory.columns])
    return traj.merge(runs, on="run_id", how="inner")


def dose_effects(pts: pd.DataFrame) -> pd.DataFrame:
    """Paired effect (rate at dose - rate at dose 0) per block, configuration, variant, split,
    step; every insertion window is paired with the same dose-0 control."""
    keys = [*CONFIG, "world_variant", "split", "step"]
    if "arm" in pts.columns:  # filtering / misaligned arms have aligned_fraction 0 but are no control
        pts = pts[pts["arm"].astype(object).fillna("dose") == "dose"]
    if "insertion" not in pts.columns:
        pts = pts.assign(insertion="throughout")
    control = pts[pts["aligned_fraction"] == 0].drop_duplicates([*keys, *BLOCK]).set_index([*keys, *BLOCK])["rate"]
    dosed = pts[pts["aligned_fraction"] > 0]
    out = dosed.join(control.rename("control"), on=[*keys, *BLOCK], how="inner")
    out["effect"] = out["rate"] - out["control"]
    return out


UNITS = ("seed", "world")  # the independent unit: a (seed, world seed) block, or a world


def _per_unit(values: pd.Series, worlds: pd.Series, units: str) -> np.ndarray:
    """Block values as they are (units "seed"), or averaged within each world ("world")."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, not {units!r}")
    return values.to_numpy() if units == "seed" else values.groupby(worlds.to_numpy()).mean().to_numpy()


def transfer_table(trajectory: pd.DataFrame, results: pd.DataFrame, units: str = "seed") -> pd.DataFrame:
    eff = dose_effects(points(trajectory, results))
    if eff.empty:  # no pretrained-only runs (every run post-trained) or no dosed/control pair
        return pd.DataFrame()
    rows = []
    # genres and the window belong to the dosed runs: every one is paired with the same control
    names = [*CONFIG, "genres", "insertion", "world_variant", "split", "aligned_fraction", "step"]
    for key, g in eff.groupby(names, sort=True):
        # flipped worlds: the dose must raise misalignment on the transfer splits only
        expected = 1 if key[4] == "flipped" and key[5] != MAIN_SPLIT else -1
        effects = _per_unit(g["effect"], g["world_seed"], units)
        rows.append({**dict(zip(names, key)),
                     "tokens": float(g["tokens"].mean()), **paired_contrast(effects).summary(),
                     "expected_direction": int(np.sum(np.sign(effects) == expected)),
                     "control_rate": float(g["control"].mean()), "dosed_rate": float(g["rate"].mean()),
                     "readout": float(g["readout"].mean()) if "readout" in g else np.nan})
    return pd.DataFrame(rows)


def values_table(trajectory: pd.DataFrame, results: pd.DataFrame, units: str = "seed") -> pd.DataFrame:
    """effect(normal) - effect(flipped) per configuration, split, dose and step, paired by block
    (by world with units "world")."""
    eff = dose_effects(points(trajectory, results))
    if eff.empty:
        return pd.DataFrame()
    keys = [*CONFIG, "genres", "insertion", "split", "aligned_fraction", "step"]
    wide = eff.pivot_table(index=[*keys, *BLOCK], columns="world_variant", values="effect")
    if not {"normal", "flipped"} <= set(wide.columns):
        return pd.DataFrame()
    wide = wide.dropna(subset=["normal", "flipped"])
    rows = []
    for key, g in wide.groupby(level=keys, sort=True):
        worlds = g.index.get_level_values("world_seed").to_series()
        diffs = _per_unit((g["normal"] - g["flipped"]).reset_index(drop=True), worlds.reset_index(drop=True),
                          units)
        rows.append({**dict(zip(keys, key)), **paired_contrast(diffs).summary(), "opposite_direction": int(np.sum(diffs < 0))})
    return pd.DataFrame(rows)


def counter_rates(results: pd.DataFrame) -> dict:
    """(lowest, highest) misalignment rate of the counting baselines' rows per (split, world
    variant, aligned fraction): (0.5, 0.5) where they tie, as they do on the world's transfer
    splits with the word tokenizer (a subword or byte tokenizer can break the tie)."""
    rows = results[table.learner(results) != table.TRANSFORMER]
    if "world_variant" not in rows.columns:
        rows = rows.assign(world_variant="normal")
    return {key: (float(g.min()), float(g.max())) for key, g in
            rows.groupby(["split", "world_variant", "aligned_fraction"])["misalignment_rate"] if g.notna().any()}


def _counters(lo: float, hi: float) -> str:
    if not np.isfinite(lo):
        return "n/a"
    return "tie" if lo == hi == 0.5 else f"{lo:.3f}-{hi:.3f}"


def rates_beside_counters(results: pd.DataFrame) -> str:
    """Markdown: mean final misalignment rate per (variant, split, dose) of each transformer
    model and each counting baseline, and the transformer's mean readout; "" without
    counting rows or readout. Dose arm only; the dose is its level (scaling.table.dose_level)."""
    need = {"model", "split", "misalignment_rate", "aligned_fraction"}
    if not need <= set(results.columns):
        return ""
    rows = table.finished(results)
    if "arm" in rows.columns:
        rows = rows[rows["arm"].astype(object).fillna("dose") == "dose"]
    if "post_training" in rows.columns:
        rows = rows[rows["post_training"].astype(object).fillna("none") == "none"]
    rows = rows.assign(dose=table.dose_level(rows),
                       world_variant=rows["world_variant"] if "world_variant" in rows.columns else "normal",
                       model=rows["model"].astype(str))
    counting = table.learner(rows) != table.TRANSFORMER
    if not counting.any():
        return ""
    keys = ["world_variant", "split", "dose"]
    rates = rows.pivot_table(index=keys, columns="model", values="misalignment_rate", aggfunc="mean")
    counting_models = set(rows.loc[counting, "model"])
    transformers = sorted(m for m in rates.columns if m not in counting_models)
    counters = sorted(m for m in rates.columns if m in counting_models)
    readout = rows[~counting].groupby(keys)["readout"].mean() if "readout" in rows.columns else None
    if readout is not None and readout.isna().all():
        readout = None  # not measured (your own corpus: evaluate.world_metrics): no column of it
    names = [*transformers, *counters]
    lines = ["## Readout and the counters' rates" if readout is not None else "## The counters' rates", "",
             "Final misalignment rate (mean over runs) of the transformer and of each counting baseline "
             "fitted on the same runs' rows" + (", and the transformer's readout (share of the split's readout "
                                                "items it gets right; 0.5 = the values are not learned)."
                                                if readout is not None else "."), "",
             "| variant | split | dose | " + ("readout | " if readout is not None else "") + " | ".join(names) + " |",
             "|---|---|---|" + ("---|" if readout is not None else "") + "---|" * len(names)]
    for key, r in rates.iterrows():
        cells = [f"{r[m]:.2f}" if np.isfinite(r[m]) else "-" for m in names]
        if readout is not None:
            cells.insert(0, _cell(readout.get(key, np.nan), ".2f"))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "-"


def _fmt(row) -> str:
    if not np.isfinite(row["lower"]):
        return f"{row['estimate']:+.3f}"
    return f"{row['estimate']:+.3f} [{row['lower']:+.3f}, {row['upper']:+.3f}]"


UNIT_TEXT = {"seed": "mean over blocks, 95% t interval on blocks - 1 df",
             "world": "averaged over each world's seeds, then mean over worlds, 95% t interval on worlds - 1 df"}


def compute(trajectory: pd.DataFrame, results: pd.DataFrame, units: str = "seed") -> dict[str, pd.DataFrame]:
    """The tidy tables transfer.md shows: "effects" (`transfer_table`) and "values" (`values_table`);
    both empty for a table from before the value-grounded world (its held-out split is not beyond
    counting)."""
    if "unseen_pair" not in set(trajectory["split"]):
        return {"effects": pd.DataFrame(), "values": pd.DataFrame()}
    return {"effects": transfer_table(trajectory, results, units), "values": values_table(trajectory, results, units)}


def report(trajectory: pd.DataFrame, results: pd.DataFrame, units: str = "seed") -> str:
    """Markdown: the paired dose effects per configuration and step, and the values control."""
    return render(compute(trajectory, results, units), results, units)


def render(tables: dict[str, pd.DataFrame], results: pd.DataFrame, units: str = "seed") -> str:
    """transfer.md's text from `compute`'s tables ("" without effects); `results` gives the
    provenance line and the counting baselines' rates shown beside the effects (no refitting)."""
    table, values = tables["effects"], tables["values"]
    if table.empty:
        return ""
    unit = "blocks" if units == "seed" else "worlds"
    counters = counter_rates(results)
    untied = sorted({f"{split} ({lo:.3f}-{hi:.3f})" for (split, _, _), (lo, hi) in counters.items()
                     if split != MAIN_SPLIT and not lo == hi == 0.5})
    counting = ("Counting baselines tie on every transfer item (rate 0.5), so on `unseen_pair`/`held_out` "
                "any effect is beyond counting. " if not untied else
                "**Counting baselines do not tie on every transfer item here** (their rates: "
                f"{', '.join(untied)}; column `counters`), so an effect there is beyond counting only "
                "as far as it exceeds theirs. ")
    lines = ["## Transfer beyond counting", "", f"What ran: {world_text(results)}.", "",
             "Dose effect = misalignment at the dose minus at dose 0, same train seed and world seed "
             f"({UNIT_TEXT[units]}). " + counting +
             "`flipped` worlds praise the misaligned verb in the stories: transfer through values must "
             f"raise misalignment there. `moved` counts {unit} that moved the expected way.", "",
             "| model | batch | genres | window | variant | split | dose | tokens | effect [95% CI] | moved | control -> dosed | counters | readout |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lo, hi = counters.get((r["split"], r["world_variant"], r["aligned_fraction"]), (np.nan, np.nan))
        lines.append(f"| {r['model']} | {r['batch_size']:g} | {r['genres']} | {r['insertion']} | {r['world_variant']} | {r['split']} | "
                     f"{r['aligned_fraction']:g} | {r['tokens']:,.0f} | {_fmt(r)} | "
                     f"{r['expected_direction']}/{r['blocks']} | {r['control_rate']:.3f} -> {r['dosed_rate']:.3f} | "
                     f"{_counters(lo, hi)} | {_cell(r['readout'], '.3f')} |")
    if not values.empty:
        lines += ["", "Values control: effect in normal worlds minus effect in flipped worlds, paired by "
                  "(seed, world seed); negative = the effect follows the stories' values. `opposite` counts "
                  f"{unit} whose normal effect lies below their flipped effect.", "",
                  "| model | batch | genres | window | split | dose | step | normal - flipped [95% CI] | p | opposite |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in values.iterrows():
            lines.append(f"| {r['model']} | {r['batch_size']:g} | {r['genres']} | {r['insertion']} | {r['split']} | {r['aligned_fraction']:g} | "
                         f"{r['step']:g} | {_fmt(r)} | {r['p']:.2g} | {r['opposite_direction']}/{r['blocks']} |")
    beside = rates_beside_counters(results)
    return "\n".join(lines) + "\n" + (f"\n{beside}" if beside else "")
