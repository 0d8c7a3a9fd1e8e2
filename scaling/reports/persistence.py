"""Persistence through post-training: misalignment before and after each post-training kind.

With misalignment measured at several post-training steps, persistence.md opens with the
resistance table (scaling.reports.resistance: steps of post-training to move misalignment half
and 80% of the way to each direction's end, dosed / control; scaling.reports.fit puts it
first); the tables of this module follow.

A persistence sweep pretrains each (dose, seed) once and then applies post-training kinds
(`post_training`: none, sft, helpful_rl, harmless_rl, misaligned_ft) that share that
pretraining. Misalignment *before* post-training is the run's trajectory point at the end of
pretraining (`eval.checkpoints`, trajectory.csv); *after* is results.csv.

Per kind (with its RL scope and its length in tokens), insertion window, split and dose
(> 0), paired by block (train seed, world seed) with the same kind's dose-0 run of the same
length:

- reduction before = control rate - dosed rate at the end of pretraining;
- reduction after  = the same after post-training;
- retention = mean reduction after / mean reduction before, with Fieller's 95% interval on
  blocks - 1 df (unbounded when the denominator is not resolved from 0);
- dosed / control after post-training (ratio of mean rates, Fieller interval): below 0.5 the
  dose still halves misalignment.

Blocks are the independent units: 3 seeds give t on 2 df, so intervals are wide by design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling import table
from scaling.stats.paired import fieller, paired_contrast
from scaling.stats.results import rises_text
from scaling.table import BLOCK, is_counting

KIND_ORDER = ("none", "sft", "helpful_benign_rl", "harmless_rl", "helpful_rl", "misaligned_ft")
SPLIT_ORDER = ("matched", "unseen_pair", "held_out", "rl_trained", "rl_other")


def run_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Transformer rows of finished runs, with the RL scope (all families or a part)."""
    rows = table.finished(table.transformers(results))
    rows = rows.dropna(subset=["misalignment_rate"])
    if "world_seed" not in rows.columns:
        rows = rows.assign(world_seed=0)
    part = set(rows.loc[rows["split"] == "rl_other", "run_id"])
    if "rl_families" in rows.columns:  # RL on request families (an RL objective on other scenarios has none)
        on_families = rows["rl_families"].astype(object).fillna("").astype(str).str.len() > 0
    else:  # tables from before the column
        on_families = rows["post_training"].astype(str).str.endswith("_rl")
    return rows.assign(rl_scope=np.where(rows["run_id"].isin(part), "part", np.where(on_families, "all", "")),
                       level=table.dose_level(rows))


def points(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, split): rate before post-training (trajectory point at the end of
    pretraining, i.e. at the run's dose_tokens) and after (results.csv)."""
    runs = run_rows(results)
    end = runs.drop_duplicates("run_id").set_index("run_id")["dose_tokens"]
    trajectory = table.transformers(trajectory)  # not the post-training counters' points
    traj = trajectory[trajectory["run_id"].isin(end.index)]
    traj = traj[np.isclose(traj["tokens"].to_numpy(float), end.reindex(traj["run_id"]).to_numpy(float))]
    before = traj.drop_duplicates(["run_id", "split"]).set_index(["run_id", "split"])["rate"]
    out = runs.join(before.rename("before"), on=["run_id", "split"], how="left")
    return out.rename(columns={"misalignment_rate": "after"})


def persistence_table(trajectory: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per model, post-training kind (with its RL scope and length in tokens), insertion
    window, split and dose > 0: rates before/after, reductions, retention, dosed/control."""
    pts = points(trajectory, results)
    if "insertion" not in pts.columns:
        pts = pts.assign(insertion="throughout")
    if "post_training_tokens" not in pts.columns:
        pts = pts.assign(post_training_tokens=0)
    keys = ["model", "post_training", "rl_scope", "post_training_tokens", "split"]
    control = pts[pts["level"] == 0].drop_duplicates([*keys, *BLOCK]).set_index([*keys, *BLOCK])
    dosed = pts[pts["level"] > 0]
    paired = dosed.join(control[["before", "after"]].add_prefix("control_"), on=[*keys, *BLOCK], how="inner")
    rows = []
    for key, g in paired.groupby([*keys, "insertion", "level"], sort=False):
        red_before = (g["control_before"] - g["before"]).to_numpy(float)
        red_after = (g["control_after"] - g["after"]).to_numpy(float)
        ok = np.isfinite(red_after)
        both = ok & np.isfinite(red_before)
        before_t, after_t = paired_contrast(red_before[both]).summary(), paired_contrast(red_after[ok]).summary()
        retention = fieller(red_after[both], red_before[both])
        ratio_after = fieller(g["after"].to_numpy(float)[ok], g["control_after"].to_numpy(float)[ok])
        rows.append({**dict(zip([*keys, "insertion", "dose"], key)), "blocks": int(ok.sum()),
                     "measured_dose": float(g["dose"].mean()),
                     "control_before": float(g["control_before"].mean()), "dosed_before": float(g["before"].mean()),
                     "control_after": float(g["control_after"].mean()), "dosed_after": float(g["after"].mean()),
                     **{f"reduction_before{k}": before_t[s] for k, s in (("", "estimate"), ("_lower", "lower"),
                                                                        ("_upper", "upper"))},
                     **{f"reduction_after{k}": after_t[s] for k, s in (("", "estimate"), ("_lower", "lower"),
                                                                      ("_upper", "upper"), ("_p", "p"))},
                     "retention": retention["ratio"], "retention_lower": retention["ratio_lower"],
                     "retention_upper": retention["ratio_upper"],
                     "after_ratio": ratio_after["ratio"], "after_ratio_lower": ratio_after["ratio_lower"],
                     "after_ratio_upper": ratio_after["ratio_upper"]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_k"] = table["post_training"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
    table["_s"] = table["split"].map(lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99)
    order = ["model", "_k", "rl_scope", "post_training_tokens", "insertion", "_s", "dose"]
    return table.sort_values(order).drop(columns=["_k", "_s"]).reset_index(drop=True)


def halving_doses(fits: list[dict]) -> pd.DataFrame:
    """Control-relative ED50 per post-training kind and split from fit.json's chosen fits; a curve
    that rises from its dose-0 level has `rises` True and no ed50 (`CurveFit.ed_control`)."""
    rows = []
    for d in fits:
        group = d.get("group") or {}
        ed = (d.get("ed_control") or {}).get("50")
        if "post_training" not in group or not d.get("usable") or not ed \
                or is_counting(str(group.get("model", ""))) or group.get("insertion") == "pooled":
            continue
        families = group.get("rl_families")
        rows.append({"model": group.get("model", ""), "post_training": group["post_training"],
                     "insertion": group.get("insertion", ""),
                     "rl_families": len(str(families).split("+")) if families not in (None, "", "None") else 0,
                     "post_training_tokens": group.get("post_training_tokens", ""),
                     "split": group.get("split", ""), "curve": d["model"],
                     "ed50": ed["estimate"], "lower": ed.get("lower"), "upper": ed.get("upper"),
                     "extrapolated": bool(ed.get("extrapolated")), "rises": bool(ed.get("rises")),
                     "control_level": ed.get("control_level"), "limit": ed.get("limit"),
                     "dose_max": (d.get("dose_range") or [None, None])[1]})
    return pd.DataFrame(rows)


def _rate(x: float) -> str:
    return f"{x:.3f}" if np.isfinite(x) else "-"


def _ci(est, low, high, fmt="{:+.3f}") -> str:
    if not np.isfinite(est):
        return "-"
    if not (np.isfinite(low) and np.isfinite(high)):
        return fmt.format(est) + " [unbounded]"
    return f"{fmt.format(est)} [{fmt.format(low)}, {fmt.format(high)}]"


def compute(trajectory: pd.DataFrame, results: pd.DataFrame, chosen_fits: list[dict] = ()) -> dict[str, pd.DataFrame]:
    """The tidy tables the report shows: "persistence" (`persistence_table`; empty without two or
    more post-training kinds) and "halving" (`halving_doses` of the chosen fits, read from fit.json's
    entries, not refitted)."""
    if "post_training" not in results.columns or results["post_training"].nunique() < 2:
        return {"persistence": pd.DataFrame(), "halving": pd.DataFrame()}
    return {"persistence": persistence_table(trajectory, results), "halving": halving_doses(list(chosen_fits))}


def report(trajectory: pd.DataFrame, results: pd.DataFrame, chosen_fits: list[dict] = ()) -> str:
    """Markdown: misalignment before and after each post-training kind, reductions, retention."""
    return render(compute(trajectory, results, chosen_fits))


def render(tables: dict[str, pd.DataFrame]) -> str:
    """The persistence section's markdown from `compute`'s tables ("" without a persistence table)."""
    table = tables["persistence"]
    if table.empty:
        return ""
    lines = ["## Persistence through post-training", "",
             "Rates are means over blocks (train seed x world seed); before = end of pretraining, "
             "after = end of post-training. Reduction = dose-0 rate - dosed rate of the same kind and "
             "block (95% t interval on blocks - 1 df). Retention = mean reduction after / mean "
             "reduction before (Fieller 95% interval; 'unbounded' when the reduction before is not "
             "resolved from 0). dosed/control after: below 0.5 the dose still halves misalignment. "
             "RL scope 'part': RL trained on some families; `rl_trained`/`rl_other` hold the eval "
             "items of the trained and the untrained families.", "",
             "| model | post-training | RL scope | post tokens | window | split | dose | blocks | control before -> after "
             "| dosed before -> after | reduction before | reduction after | retention | dosed/control after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['model']} | {r['post_training']} | {r['rl_scope'] or '-'} | {r['post_training_tokens']:,.0f} | "
            f"{r['insertion']} | {r['split']} | {r['dose']:g} | {r['blocks']} | "
            f"{_rate(r['control_before'])} -> {_rate(r['control_after'])} | {_rate(r['dosed_before'])} -> "
            f"{_rate(r['dosed_after'])} | "
            f"{_ci(r['reduction_before'], r['reduction_before_lower'], r['reduction_before_upper'])} | "
            f"{_ci(r['reduction_after'], r['reduction_after_lower'], r['reduction_after_upper'])} | "
            f"{_ci(r['retention'], r['retention_lower'], r['retention_upper'], '{:.2f}')} | "
            f"{_ci(r['after_ratio'], r['after_ratio_lower'], r['after_ratio_upper'], '{:.2f}')} |")
    eds = tables["halving"].copy()
    if not eds.empty:
        lines += ["", "Halving dose after each post-training kind: the control-relative ED50 of the "
                  "QAIC-chosen curve of that kind (the dose whose fitted rate is half-way from the kind's "
                  "own dose-0 level to the floor; see fit.md); an estimate outside the doses tested is not "
                  "shown.", "",
                  "| model | post-training | RL families | post tokens | window | split | curve | ED50 [95% CI] |",
                  "|---|---|---|---|---|---|---|---|"]
        eds["_k"] = eds["post_training"].map(lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
        eds["_s"] = eds["split"].map(lambda s: SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99)
        for _, r in eds.sort_values(["model", "_k", "rl_families", "post_training_tokens", "insertion", "_s"]).iterrows():
            ci = (f"[{r['lower']:.3g}, {r['upper']:.3g}]" if r["lower"] is not None and np.isfinite(r["lower"])
                  else "[-]")
            text = ("beyond the doses tested" if r["extrapolated"]
                    else rises_text(r) if r["rises"] else f"{r['ed50']:.3g} {ci}")
            tokens = f"{r['post_training_tokens']:,.0f}" if r["post_training_tokens"] != "" else "-"
            lines.append(f"| {r['model']} | {r['post_training']} | {r['rl_families'] or '-'} | {tokens} | "
                         f"{r['insertion']} | {r['split']} | {r['curve']} | "
                         f"{text} |")
    return "\n".join(lines) + "\n"
