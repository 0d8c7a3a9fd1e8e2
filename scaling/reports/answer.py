"""The study's answer (answer.md, printed by `scaling study`): what ran, and per split what the
transformer shows beside the counter that comes closest to it.

Per split (and window, world variant, model where a study has several):
- the halving dose as scaling.stats.halving says it (a number only from a curve that fits a real
  dose trend; else "no dose trend", a bracket between tested doses, or the side of the doses);
- the change at the highest dose: the rate there minus at dose 0, paired by block (train seed x
  world seed), mean over blocks with a t interval on blocks - 1 df;
- the strongest counter: of the counting baselines scored on the same runs (n-grams,
  co-occurrence and dynamic counters), the one whose change comes closest to the transformer's
  or beyond it (fit.json's `beyond_counting` contrasts: transformer's reduction - counter's,
  paired by block; the smallest in the transformer's direction). "a counter does too" where
  that difference's interval reaches 0, "beyond every counter" where it excludes 0 on the
  transformer's side;
- the transformer's readout at the highest dose (embedded world only).
The lead lines name the world and data version (or "your corpus"), the model, tokens per run
and the blocks; then the treatment arms, if any (scaling.reports.treatments: each arm against
the dose-0 control, beside its strongest counter); the closing lines say what was not found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scaling.io import write_text
from scaling.reports.treatments import treatment_lines
from scaling.splits import rank as split_rank
from scaling.stats import halving as halving_mod
from scaling.stats.common import POOLED, group_label
from scaling.stats.contrasts import paired_entry
from scaling.table import (
    blocks,
    dose_level,
    finished,
    is_control_label,
    is_counting,
    transformers,
    world_text,
)

CELL_KEYS = ("split", "insertion", "world_variant", "post_training")
POINTER_READOUT_NOTE = ("Readout (world v4): the share of the stories' comprehension questions ('the kind one :') "
                        "the model answers with the right verb; 0.5 = no lookup")
READOUT_NOTE = ("Readout: the share of the split's readout items on which the model prefers the value "
                "word the world's stories give the verb; 0.5 = the values are not learned")


NO_MODEL = "model"  # a table without a model column: one model, named so


def _model(group: dict) -> str:
    return str(group.get("model", NO_MODEL))


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    if "model" not in df.columns:
        df = df.assign(model=NO_MODEL)
    ok = finished(df)
    if "arm" in ok.columns:
        ok = ok[ok["arm"].astype(object).fillna("dose") == "dose"]
    return ok[ok["total"] > 0]


def _cell_rows(ok: pd.DataFrame, group: dict, model: str) -> pd.DataFrame:
    rows = ok[ok["model"].astype(str) == model]
    for key in CELL_KEYS:
        if key not in group or key not in rows.columns or group[key] == POOLED:
            continue
        keep = rows[key].astype(str) == str(group[key])
        if key == "insertion":  # dose-0 controls without a window anchor every window
            keep |= (rows["dose"] == 0) & rows[key].map(is_control_label).astype(bool)
        rows = rows[keep]
    return rows


def change_at_top(rows: pd.DataFrame) -> dict | None:
    """Rate at the highest dose level minus at dose 0, paired by block (mean, t interval)."""
    if rows.empty or not (rows["dose"] == 0).any() or not (rows["dose"] > 0).any():
        return None
    level = dose_level(rows)
    labels = blocks(rows)
    by_block = pd.Series(labels if labels is not None else ["all"] * len(rows), index=rows.index)
    rate = rows["misaligned"] / rows["total"]
    top = float(level[rows["dose"] > 0].max())
    at_top = rate[level == top].groupby(by_block[level == top]).mean()
    at_zero = rate[rows["dose"] == 0].groupby(by_block[rows["dose"] == 0]).mean()
    diffs = (at_top - at_zero).dropna()
    entry = paired_entry("change at the highest dose", "change", diffs) or {
        "estimate": float(diffs.mean()) if len(diffs) else np.nan, "lower": None, "upper": None,
        "blocks": len(diffs)}
    return {**entry, "dose_level": top, "control_rate": float(at_zero.mean()), "top_rate": float(at_top.mean())}


def _change_text(c: dict | None) -> str:
    if not c or not np.isfinite(c.get("estimate", np.nan)):
        return "no change measured (no dose-0 and dosed runs on the same blocks)"
    ci = "" if c.get("lower") is None else f" [{c['lower']:+.2f}, {c['upper']:+.2f}]"
    return (f"{c['control_rate']:.2f} -> {c['top_rate']:.2f} at dose {c['dose_level']:g}, change "
            f"{c['estimate']:+.2f}{ci} over {c['blocks']} block{'s' if c['blocks'] != 1 else ''}")


def strongest_counter(comparisons: list[dict], model: str, group: dict, direction: float = 1.0) -> dict | None:
    """The `beyond_counting` contrast of `model` in `group` whose counter comes closest to the
    transformer's reduction or beyond it: the smallest reduction difference (transformer -
    counter) when the transformer's rate falls with the dose (direction +1), the largest when
    it rises (direction -1)."""
    entries = [c for c in comparisons if c.get("test") == "beyond_counting" and c.get("model") == model
               and str(c.get("split")) == str(group.get("split"))
               and (group.get("insertion") in (None, POOLED) or str(c.get("window")) == str(group.get("insertion")))
               and ("world_variant" not in c or "world_variant" not in group
                    or str(c["world_variant"]) == str(group["world_variant"]))]
    entries = [c for c in entries if c.get("estimate") is not None]
    return min(entries, key=lambda c: (direction or 1.0) * c["estimate"], default=None)


def counter_halvings(report, group: dict) -> list[dict]:
    """The halving entries of the counting baselines in `group`'s cell (same split, window, ...)."""
    return [h for h in report.halving if is_counting(str(h["group"].get("model", "")))
            and all(str(h["group"].get(k)) == str(group.get(k)) for k in CELL_KEYS)]


def _all_flat(report, group: dict) -> int:
    """How many counters the cell has when every one of them has no dose trend, else 0."""
    entries = counter_halvings(report, group)
    return len(entries) if entries and all(h.get("status") == "no trend" for h in entries) else 0


def strongest_counters(report, df: pd.DataFrame) -> dict[str, str]:
    """{group label of a transformer's group without its model: its strongest counter's name}
    (none where every counter of the cell is flat: then no counter is stronger than another)."""
    out, ok = {}, _ok(df)
    for h in report.halving:
        group = h.get("group") or {}
        model = _model(group)
        if not model or is_counting(model) or group.get("insertion") == POOLED or _all_flat(report, group):
            continue
        best = strongest_counter(report.comparisons, model, group, _direction(ok, group))
        if best is not None:
            out[group_label({k: v for k, v in group.items() if k != "model"})] = best["baseline"]
    return out


def _direction(ok: pd.DataFrame, group: dict) -> float:
    """+1 where the transformer's rate falls from dose 0 to the top dose, -1 where it rises."""
    change = change_at_top(_cell_rows(ok, group, _model(group)))
    return -1.0 if change and change["estimate"] > 0 else 1.0


def _verdict(entry: dict | None, trend: bool) -> str:
    if entry is None or not trend:
        return ""
    if entry.get("lower") is None or entry.get("upper") is None:
        return "too few blocks to compare"
    diff = f"difference in reduction {entry['estimate']:+.2f} [{entry['lower']:+.2f}, {entry['upper']:+.2f}]"
    if entry["lower"] > 0:
        return f"beyond every counter ({diff})"
    if entry["upper"] < 0:
        return f"the counter moves more than the transformer ({diff})"
    return f"a counter does too ({diff})"


def provenance(df: pd.DataFrame) -> str:
    """What ran: world and data version (or your corpus), model(s), tokens per run, blocks."""
    ok = _ok(df)
    trained = transformers(ok)
    parts = [world_text(ok)]
    models = sorted(set(trained["model"].astype(str)))
    if models:
        params = trained.groupby(trained["model"].astype(str))["params"].first() if "params" in trained.columns else {}
        parts.append("model " + ", ".join(
            m + (f" ({int(params[m]):,} parameters)" if m in params and np.isfinite(params[m]) else "") for m in models))
    if "total_tokens" in trained.columns and trained["total_tokens"].notna().any():
        tokens = sorted(set(trained["total_tokens"].dropna().astype(int)))
        parts.append("tokens per run " + (f"{tokens[0]:,}" if len(tokens) == 1 else f"{tokens[0]:,} to {tokens[-1]:,}"))
    labels = blocks(trained) if not trained.empty else None
    runs = trained["run_id"].nunique() if "run_id" in trained.columns else len(trained)
    levels = sorted(set(dose_level(trained))) if not trained.empty else []
    parts.append(f"{runs} runs: {len(levels)} doses ({', '.join(f'{d:g}' for d in levels)}) x "
                 f"{len(set(labels)) if labels is not None else 1} blocks (train seed x world seed)")
    return "; ".join(parts)


def _readout(rows: pd.DataFrame, change: dict | None) -> str:
    if "readout" not in rows.columns or change is None:
        return ""
    if "world_version" in rows.columns and (rows["world_version"].astype(str) == "your corpus").all():
        return ""
    top = rows[dose_level(rows) == change["dose_level"]]["readout"].dropna()
    return "" if top.empty else f"{top.mean():.2f} at dose {change['dose_level']:g}"


def answer(report, df: pd.DataFrame, out: Path) -> list[str]:
    """The answer's lines (markdown): what ran, per split, what was not found, the files."""
    ok = _ok(df)
    lines = ["# Answer", "", f"What ran: {provenance(df)}.", "",
             "Halving dose: the dose at which the fitted misalignment rate is half the dose-0 "
             "control's, given only where the rate has a dose trend and the curve fits the dose levels. "
             "Change: rate at the highest dose minus at dose 0, paired by block, 95% t interval. "
             "Strongest counter: the counting baseline whose change on the same runs comes closest to "
             "the transformer's.", ""]
    halvings = {group_label(h["group"]): h for h in report.halving} if report else {}
    cells = sorted((h["group"] for h in (report.halving if report else [])
                    if not is_counting(str(h["group"].get("model", "")))
                    and h["group"].get("insertion") != POOLED),
                   key=lambda g: (split_rank(g.get("split")), str(g.get("split")), group_label(g)))
    varying = [k for k in CELL_KEYS if len({str(g.get(k)) for g in cells}) > 1 or k == "split"]
    several_models = len({_model(g) for g in cells}) > 1
    missing, readout_used, plain = [], False, []
    for group in cells:
        model = _model(group)
        label = ", ".join(str(group[k]) for k in varying if k in group) + (f" ({model})" if several_models else "")
        h = halvings.get(group_label(group))
        rows = _cell_rows(ok, group, model)
        change = change_at_top(rows)
        text = f"- **{label}**: {model} {halving_mod.text(h)}; {_change_text(change)}"
        best = strongest_counter(report.comparisons, model, group, _direction(ok, group))
        flat = _all_flat(report, group)
        if flat:
            text += f". Every counter ({flat}): no dose trend"
        elif best is not None:
            counter = best["baseline"]
            c_group = {**group, "model": counter}
            c_change = change_at_top(_cell_rows(ok, c_group, counter))
            c_half = halvings.get(group_label(c_group))
            trend = h is not None and h.get("status") != "no trend"
            verdict = _verdict(best, trend)
            text += (f". Strongest counter {counter}: {halving_mod.text(c_half)}; "
                     f"{_change_text(c_change)}" + (f"; {verdict}" if verdict else ""))
        else:
            text += ". No counter scored on the same blocks"
        reading = _readout(rows, change)
        if reading:
            readout_used = True
            text += f". Readout {reading}"
        lines.append(text + ".")
        c_half = halvings.get(group_label({**group, "model": best["baseline"]})) if best is not None else None
        plain.append(_plain(label, model, h, change, None if flat else best, c_half, flat, rows))
        if h is None or h.get("status") not in ("estimate", "below", "above", "lack of fit", "no curve"):
            missing.append(f"{label}: {halving_mod.text(h)}")
    if not cells:
        lines.append("- no transformer rows with a dose-0 control and a positive dose (fit.md says why)")
    if readout_used:
        pointer = "world_version" in ok.columns and (ok["world_version"].astype(str) == "v4").all()
        lines += ["", (POINTER_READOUT_NOTE if pointer else READOUT_NOTE) + "."]
    if plain:
        lines += ["", "## In plain words", "", *(f"- {p}" for p in plain)]
        world = _world_note(ok)
        lines += ["", world] if world else []
    lines += treatment_lines(df, is_counting)  # the treatment arms (scaling.treatments), if any
    lines += ["", "Not found: " + ("; ".join(missing) if missing else "nothing: every split has a dose trend") + "."]
    files = [f"results {out / 'results.csv'}", f"fits {out / 'fit.md'}"]
    files += [str(out / name) for name in ("counters.md", "transfer.md", "persistence.md") if (out / name).exists()]
    if (out / "figures").is_dir():
        files.append(f"figures {out / 'figures'}")
    lines += ["", "Files: " + "; ".join(files) + "."]
    return lines


def _plain(label: str, model: str, h: dict | None, change: dict | None, best: dict | None,
           counter_half: dict | None, flat: int, rows: pd.DataFrame) -> str:
    """One sentence per cell: what the transformer shows, which counter shows the same."""
    no_trend = h is not None and h.get("status") == "no trend"
    if change is None or not np.isfinite(change.get("estimate", np.nan)):
        said = f"{label}: no change could be measured (no dose-0 and dosed runs on the same blocks)"
    else:
        moved = (f"from {change['control_rate']:.0%} at dose 0 to {change['top_rate']:.0%} at dose "
                 f"{change['dose_level']:g}")
        said = (f"{label}: the transformer ({model}) shows no dose trend that these {change['blocks']} blocks can "
                f"tell from noise ({moved})" if no_trend else
                f"{label}: the aligned documents {'lower' if change['estimate'] < 0 else 'raise'} the transformer's "
                f"({model}) misalignment, {moved}")
    if flat:
        said += "; no counter moves (every counting baseline is flat), so counting does not explain it"
    elif best is not None and no_trend:
        counter = best["baseline"]
        has = counter_half is not None and counter_half.get("status") != "no trend"
        said += (f"; the strongest counter, {counter}, does have a dose trend: counting alone moves this split"
                 if has else f"; neither does the strongest counter, {counter}")
    elif best is not None and best.get("lower") is not None and best.get("upper") is not None:
        counter = best["baseline"]
        if best["lower"] > 0:
            said += f"; no counter goes as far (the closest, {counter}, moves less), so it is beyond counting"
        elif best["upper"] < 0:
            said += f"; {counter} moves even more, so counting explains it at least as well"
        else:
            said += f"; {counter} shows the same, so counting alone can explain it at this scale"
    readout = rows[dose_level(rows) == change["dose_level"]]["readout"].dropna() \
        if change and "readout" in rows.columns else pd.Series(dtype=float)
    if not readout.empty and readout.mean() < 0.6:
        said += f" (the values are not learned: readout {readout.mean():.2f}, so this is not transfer through values)"
    return said + "."


WORLD_NOTES = {
    "v2": ("World v2 (this run): each human story is told twice, once with each verb of a pair, and "
           "only the value word differs, so a counter that composes co-occurrences (twohop, svd) can carry "
           "a value from the stories to the AI documents' verbs: transfer here may be counting. World v3 "
           "binds each value to a person inside one telling, so no count separates the two verbs of a pair; "
           "its values are not learned by any model within a CPU budget (readout about 0.5 to 24M tokens), "
           "so it is the accelerator world (sweeps/emergence_accelerator.toml)."),
    "v3": ("World v3 (this run) binds each value to a person inside one telling, so no count separates the "
           "two verbs of a pair: every counter sits at 0.5 on the transfer splits. Its values are not learned "
           "within a CPU budget (readout about 0.5 to 24M tokens): it is the accelerator world "
           "(sweeps/emergence_accelerator.toml); world v2 is the CPU world."),
}


def _world_note(ok: pd.DataFrame) -> str:
    """What the world that ran can and cannot show (embedded worlds v2 and v3)."""
    worlds = set(ok["world_version"].astype(str)) if "world_version" in ok.columns else set()
    return WORLD_NOTES.get(worlds.pop(), "") if len(worlds) == 1 else ""


def write_answer(report, df: pd.DataFrame, out: Path) -> list[str]:
    lines = answer(report, df, Path(out))
    write_text(Path(out) / "answer.md", "\n".join(lines) + "\n")
    return lines
