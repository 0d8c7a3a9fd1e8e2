"""Counting baselines added to a finished study's results table, without training
(`python -m studies.backfill SWEEP.toml RESULTS.csv --out NEW.csv`, from the repository root).

A run's counting baselines (scaling.baselines) are fitted on its training rows, which are a
pure function of its config, and scored on its eval items: no trained model is needed. A
table written before a baseline existed (the co-occurrence counters) gets that baseline's
rows here, computed as the run's own evaluation computes them
(scaling.evaluate.evaluate_baselines) and turned into rows as results.csv turns eval.json
into rows (scaling.results.baseline_rows).

Finding each run's config. Run ids are hashes of the resolved config, and config fields
added since a study ran change them, so the table's run ids are not looked up in the
sweep. Instead every transformer run of the table is matched to the one run of the sweep
(scaling.sweep.expand, with the same --set) whose grid values agree with the run's columns:
each grid key of the sweep is read in the columns its value shows in (KEY_COLUMNS: e.g.
`train.seed` in `seed`, `data.dose` in `aligned_fraction`, `preset` in `model`, a stage key
in the columns that describe the stages and the intervention window), on every run of the
sweep (a run whose grid leaves a key out has the base config's value there). A run matching
no sweep run or several, or two runs matching one, stops everything before any compute.

Checking the match. The matched config is resolved as training resolved it (the
tokenizer's vocabulary), its token accounting rebuilt (scaling.data.mixture), and every column of
the run's transformer row that follows from the config must be what the table recorded:
the settings, aligned and total tokens, measured and nominal dose, FLOPs and parameter
counts, and the number of eval and readout items of each split. Rows of baselines the table
already has (the n-grams) are computed again and must agree with the recorded ones in every
column: that checks that the rebuilt training rows and eval items are the run's own. Any
difference stops with an error naming the run and the column. What these checks cannot see
is a change of the generated text that keeps the vocabulary and the text around the eval
items: the n-grams reproduce their rows on neutral text that has changed (they score the eval
items' words only), the counters, which count whole documents, do not. The world's data are
versioned (scaling.data.datasets.data_version): a run trained on another version's data is refused,
naming both versions; its rows must be rebuilt by the code it was trained with
(`backfill(..., rebuild=...)` takes them from elsewhere).

The table keeps every row it had, byte for byte (it is never re-parsed and re-written);
rows of (run, split, model) it lacks are added, and the rows sorted as results.csv sorts them.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scaling import baselines, results, table
from scaling.errors import UsageError
from scaling.sweep import RunSpec, expand

# Where a grid key's value shows in results.csv. Keys not named here (and not a stage key)
# are matched on every column that follows from the config (CONFIG_COLUMNS).
LAYOUT_COLUMNS = ("insertion", "insertion_config", "window_start", "window_end", "post_training", "stages",
                  "stage_objectives", "lr_schedule", "intervention_stages", "rl_families")
KEY_COLUMNS = {
    "preset": ("model",), "model.name": ("model",),
    "train.seed": ("seed",), "train.batch_size": ("batch_size",),
    "data.world_seed": ("world_seed",), "data.world_variant": ("world_variant",), "data.genres": ("genres",),
    "data.story_fraction": ("story_fraction",), "data.natural_ai_fraction": ("natural_ai_fraction",),
    "data.aligned_fraction": ("aligned_fraction",), "data.dose": ("aligned_fraction",),
    "data.misaligned_fraction": ("misaligned_fraction",), "data.filter_misaligned": ("filter_misaligned",),
    "data.insertion": LAYOUT_COLUMNS, "data.window": LAYOUT_COLUMNS,
    "data.continued_tokens": LAYOUT_COLUMNS, "data.finetune_tokens": LAYOUT_COLUMNS,
}
# The columns of a run that follow from its config alone (no accounting, no model measure).
CONFIG_COLUMNS = ("model", "seed", "batch_size", "world_seed", "world_variant", "genres", "story_fraction", "arm",
                  "aligned_fraction", "misaligned_fraction", "filter_misaligned", "natural_ai_fraction",
                  *LAYOUT_COLUMNS)
# Columns of a transformer row that the rebuilt config cannot give: its own measures and status.
NOT_REBUILT = ("run_id", "learner", "split", *results.split_measures({}, {}), "val_loss", "fact_recall", "status")
_ALL_MODELS = (*(f"ngram-{n}" for n in baselines.ORDERS), *baselines.COUNTERS, *baselines.DYNAMIC)
# --models: by learner (a dynamic counter goes with its base: ngram-1-fg60 is an ngram), the
# dynamic counters alone, or all
MODEL_SETS = {"counter": tuple(m for m in _ALL_MODELS if table.model_learner(m) == "counter"),
              "ngram": tuple(m for m in _ALL_MODELS if table.model_learner(m) == "ngram"),
              "dynamic": baselines.DYNAMIC, "all": _ALL_MODELS}
TRAJECTORY_COLUMNS = ["run_id", "seed", "world_seed", "world_variant", "arm", "insertion", "model",
                      "aligned_fraction", "dose", "nominal_dose", "window_start_tokens", "window_end_tokens",
                      "split", "step", "tokens", "rate", "readout"]  # as trajectory.csv's
REL_TOL = 1e-9  # results.csv holds 10 significant digits (%.10g)
FLOAT_FORMAT = "%.10g"  # as scaling.results writes results.csv


def key_columns(key: str) -> tuple[str, ...]:
    """The results.csv columns a sweep grid key's value shows in."""
    if key in KEY_COLUMNS:
        return KEY_COLUMNS[key]
    if key.startswith("stages."):
        return LAYOUT_COLUMNS
    return CONFIG_COLUMNS


def _value(x):
    """A cell as compared: numbers as float, missing (None, NaN, "") as "", else its text."""
    if x is None:
        return ""
    if isinstance(x, bool | np.bool_ | int | float | np.integer | np.floating):
        return "" if math.isnan(float(x)) else float(x)
    return str(x)


def same(a, b) -> bool:
    """Whether two cells agree to the 10 significant digits results.csv keeps."""
    a, b = _value(a), _value(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    return a == b


def config_columns(cfg) -> dict:
    """The columns of a run that follow from its config alone (CONFIG_COLUMNS), computed by
    scaling.results as results.csv computes them."""
    row = {**results.run_columns("", cfg, {}, ""), "model": cfg.model.name}
    return {c: row[c] for c in CONFIG_COLUMNS}


# ---------------------------------------------------------------- the table


def read_table(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(typed, text): the table parsed, and the same table as the exact text of each cell."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"results table not found: {path}")
    try:
        typed = pd.read_csv(path, dtype={"run_id": str})
        text = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{path}: not a readable CSV table ({e})") from e
    missing = [c for c in ("run_id", "model", "learner", "split", "status") if c not in typed.columns]
    if missing:
        raise UsageError(f"{path}: not a results table (no column {', '.join(missing)})")
    unknown = [c for c in typed.columns if c not in results.COLUMNS]
    if unknown:
        raise UsageError(f"{path}: columns {', '.join(unknown)} are not results.csv columns of this version; "
                         "rows added now could not fill them")
    if not (table.learner(typed) == table.TRANSFORMER).any():
        raise UsageError(f"{path}: no transformer rows (learner transformer): no runs to add baselines to")
    return typed, text


def transformer_runs(typed: pd.DataFrame) -> pd.DataFrame:
    """One row per transformer run of the table (its first split's row: the run's columns)."""
    t = table.transformers(typed)
    return t.drop_duplicates("run_id").set_index("run_id", drop=False)


# ---------------------------------------------------------------- matching runs to the sweep


@dataclass(frozen=True)
class Match:
    run_id: str  # the table's
    spec: RunSpec  # the sweep's run (its run_id is today's hash of the config)


def _label(assignment: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in assignment.items()) or "base config"


def match_runs(runs: pd.DataFrame, specs: list[RunSpec], where: str = "the table") -> list[Match]:
    """Each run (a row of `transformer_runs`) matched to the one sweep run whose grid values
    agree with its columns; UsageError naming every run that matches no run or several, and
    sweep runs matched by two table runs."""
    keys = list(dict.fromkeys(k for s in specs for k in s.assignment))
    columns = list(dict.fromkeys(c for k in keys for c in key_columns(k)))
    have = [c for c in columns if c in runs.columns]
    for k in keys:
        if not any(c in runs.columns for c in key_columns(k)):
            raise UsageError(f"{where} has no column showing the grid key {k!r} "
                             f"(looked for {', '.join(key_columns(k))}): cannot tell its runs apart")
    wanted = [config_columns(s.config) for s in specs]
    matches, errors, by_spec = [], [], {}
    for run_id, row in runs.iterrows():
        found = [s for s, want in zip(specs, wanted) if all(same(row[c], want[c]) for c in have)]
        if len(found) != 1:
            shown = ", ".join(f"{c}={row[c]}" for c in have)
            errors.append(f"run {run_id} ({shown}) matches {'no run' if not found else f'{len(found)} runs'} "
                          "of the sweep" + ("" if not found else ": " + "; ".join(_label(s.assignment) for s in found)))
            continue
        by_spec.setdefault(found[0].run_id, []).append(run_id)
        matches.append(Match(run_id, found[0]))
    for spec_id, run_ids in by_spec.items():
        if len(run_ids) > 1:
            spec = next(s for s in specs if s.run_id == spec_id)
            errors.append(f"runs {', '.join(run_ids)} all match the sweep's run [{_label(spec.assignment)}]")
    if errors:
        raise UsageError(f"{where}: cannot match its runs to the sweep's (by {', '.join(have)}):\n  "
                         + "\n  ".join(errors))
    return matches


# ---------------------------------------------------------------- rebuilding a run


@dataclass
class Rebuilt:
    """What a run's baselines and the checks of its match need, rebuilt."""

    cfg: object  # resolved as training resolved it
    tok: object
    record: dict  # config.json's record (scaling.rundir.config_record)
    acc: dict  # accounting.json at the end of training
    items: list[dict]  # the eval items its evaluation scored
    readout: list[dict]  # its readout items
    rows: np.ndarray | None = None  # its training rows (None: rebuilt from cfg when the baselines are fitted)


def rebuild(match: Match) -> Rebuilt:
    """The run's resolved config, tokenizer, config record and final accounting, as training
    wrote them (scaling.run.prepare, the loop's last accounting.json), and its eval and
    readout items, all from the sweep's config with this code."""
    from scaling import rundir
    from scaling.data.mixture import Mixture
    from scaling.data.vocab import build_tokenizer
    from scaling.evaluate import eval_items, readout_items
    from scaling.plan import with_tokenizer
    from scaling.train.source import make_source

    tok = build_tokenizer(match.spec.config)
    cfg = with_tokenizer(match.spec.config, tok)
    mixture = Mixture(cfg, tok)
    total = make_source(cfg, tok, mixture).total_steps
    return Rebuilt(cfg, tok, rundir.config_record(cfg, total), mixture.accounting(total),
                   eval_items(cfg), readout_items(cfg))


def run_base(run: pd.Series, rebuilt: Rebuilt) -> dict:
    """The columns every row of the run shares, as scaling.results builds them, under the
    table's run id and status."""
    from scaling import inputs

    return results.run_columns(run["run_id"], rebuilt.cfg, rebuilt.acc, run["status"],
                               inputs.digests(rebuilt.cfg), rebuilt.record.get("data_version") or "")


def check_run(run_rows: pd.DataFrame, rebuilt: Rebuilt, label: str = "") -> None:
    """UsageError unless every column of the run's transformer rows that the rebuilt config
    gives is the recorded one, and each split has the recorded number of eval and readout items."""
    run = run_rows.iloc[0]
    had, has = _value(run.get("data_version")), rebuilt.record.get("data_version") or ""
    if had and had != has:
        raise UsageError(f"run {run['run_id']} was trained on data version {had}; this code generates {has or '(your corpus)'} "
                         "for its world, so the rows rebuilt now are not the ones it trained on: refusing to add "
                         "baselines (backfill it with the code it was trained with)")
    want = {**run_base(run, rebuilt),
            **results.transformer_columns(rebuilt.cfg, rebuilt.record, rebuilt.acc, {}, math.nan)}
    bad = [f"{c}: recorded {_show(run[c])}, rebuilt {_show(want[c])}" for c in run_rows.columns
           if c not in NOT_REBUILT and not same(run[c], want[c])]
    if any(b.startswith("params:") for b in bad):
        bad.append(_vocabulary_note(run, rebuilt))
    n_items = pd.Series([i["split"] for i in rebuilt.items]).value_counts()
    n_readout = pd.Series([i["split"] for i in rebuilt.readout]).value_counts()
    for _, row in run_rows.iterrows():
        if row["split"] in n_items and not same(row["total"], n_items[row["split"]]):
            bad.append(f"eval items of {row['split']}: recorded {_show(row['total'])}, rebuilt {n_items[row['split']]}")
        if "readout_total" in row and row["split"] in n_readout and not same(row["readout_total"], n_readout[row["split"]]):
            bad.append(f"readout items of {row['split']}: recorded {_show(row['readout_total'])}, "
                       f"rebuilt {n_readout[row['split']]}")
    if bad:
        raise UsageError(f"run {run['run_id']}: the sweep's run it matched ({label or 'its config'}) does not "
                         "rebuild its recorded columns:\n  " + "\n  ".join(bad))


def _vocabulary_note(run: pd.Series, rebuilt: Rebuilt) -> str:
    """Why parameter counts differ when the model's shape is the same: the vocabulary."""
    if "non_embedding_params" not in run or not same(run["non_embedding_params"],
                                                     rebuilt.record["params"].get("non_embedding")):
        return "(the model's shape differs)"
    vocab = (float(run["params"]) - float(run["non_embedding_params"])) / rebuilt.cfg.model.d_model
    return (f"(the same model with a vocabulary of {vocab:g} tokens then, {rebuilt.tok.vocab_size} now: the "
            "world's text or tokenizer changed since the run was trained (scaling.data.datasets.data_version), so the "
            "rows rebuilt now are not the ones it trained on; rebuild them with the code it was trained with)")


def _show(x) -> str:
    """A cell for a message: numbers as %.10g (as results.csv writes them), missing as "" (empty)."""
    v = _value(x)
    return f"{v:.10g}" if isinstance(v, float) else repr(v)


def baseline_rows(run: pd.Series, rebuilt: Rebuilt, trajectory: dict | None = None) -> pd.DataFrame:
    """Every counting baseline's rows of the run, computed as its own evaluation computes
    them and laid out as results.csv lays them out (all results.COLUMNS). The post-training
    counters' points go into `trajectory` ({model: [POINT]}, eval.json's baseline_trajectory)."""
    from scaling.evaluate import evaluate_baselines

    payload = evaluate_baselines(rebuilt.cfg, rebuilt.tok, rebuilt.items, rows=rebuilt.rows, readout=rebuilt.readout,
                                 trajectory=trajectory)
    return pd.DataFrame(results.baseline_rows(run_base(run, rebuilt), rebuilt.cfg, payload),
                        columns=results.COLUMNS)


def trajectory_rows(run: pd.Series, points: dict, wanted: set[str]) -> list[dict]:
    """trajectory.csv's rows of the `wanted` post-training counters' points of one run, on the
    run's columns as trajectory.csv has them (from the table's transformer row)."""
    keep = ("run_id", "seed", "world_seed", "world_variant", "arm", "insertion", "aligned_fraction", "dose",
            "nominal_dose")
    base = {c: run.get(c, math.nan) for c in keep}
    trained = set(str(run["rl_families"]).split("+")) if isinstance(run.get("rl_families"), str) else None
    return [row for name, pts in sorted(points.items()) if name in wanted for point in pts
            for row in results.point_rows({**base, "model": name}, point, {}, trained)]


def check_present(run_id: str, computed: pd.DataFrame, present: pd.DataFrame) -> None:
    """UsageError unless the baseline rows the table already has for the run equal the
    computed ones in every column (the rebuilt rows and items are the run's own)."""
    at = computed.set_index(["split", "model"])
    bad = []
    for _, row in present.iterrows():
        key = (row["split"], row["model"])
        if key not in at.index:
            bad.append(f"{row['model']} {row['split']}: recorded, but not computed now")
            continue
        new = at.loc[key]
        bad += [f"{row['model']} {row['split']} {c}: recorded {_show(row[c])}, computed {_show(new[c])}"
                for c in present.columns if c not in ("split", "model") and not same(row[c], new[c])]
    if bad:
        raise UsageError(f"run {run_id}: the baselines computed from the rebuilt training rows differ from "
                         "the table's rows of the same baselines, so they are not the run's rows:\n  "
                         + "\n  ".join(bad[:20]) + (f"\n  ... {len(bad) - 20} more" if len(bad) > 20 else ""))


# ---------------------------------------------------------------- the command


def plan(sweep: str | Path, table_path: str | Path, overrides: list[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, list[Match]]:
    """Read the table, expand the sweep and match every transformer run; no compute."""
    typed, text = read_table(table_path)
    specs = expand(sweep, list(overrides))
    return typed, text, match_runs(transformer_runs(typed), specs, str(table_path))


def merged_text(typed: pd.DataFrame, text: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """The table's rows as their exact text, with the `added` rows (in the table's columns,
    written as results.csv writes them) among them, in results.csv's row order."""
    csv = added.to_csv(index=False, float_format=FLOAT_FORMAT)
    added_text = pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False)
    added_typed = pd.read_csv(io.StringIO(csv), dtype={"run_id": str})
    both_text = pd.concat([text, added_text], ignore_index=True)
    both_typed = pd.concat([typed, added_typed], ignore_index=True)
    order = both_typed.sort_values([c for c in results.SORT_COLUMNS if c in both_typed.columns], kind="stable").index
    return both_text.loc[order].reset_index(drop=True)


def backfill(sweep: str | Path, table_path: str | Path, out: str | Path, models: str = "all",
             overrides: list[str] = (), say=print, rebuild=rebuild, trajectory_out: str | Path | None = None) -> dict:
    """Add the rows of the `models` baselines (MODEL_SETS) that the table lacks to every
    finished run of it; write the table to `out`. Returns {runs, skipped, added, seconds}.
    `rebuild(match) -> Rebuilt`: where a run's config, data and items come from (default:
    this code, from the sweep's config). `trajectory_out`: where to write the post-training
    counters' trajectory rows (trajectory.csv's columns; the window columns NaN), if given."""
    from scaling.io import replacing

    if models not in MODEL_SETS:
        raise UsageError(f"models must be one of {', '.join(MODEL_SETS)}, got {models!r}")
    typed, text, matches = plan(sweep, table_path, overrides)
    wanted = set(MODEL_SETS[models])
    say(f"{len(matches)} runs of {table_path} matched to runs of {sweep}")
    finished = set(table.finished(typed)["run_id"])
    ok = [m for m in matches if m.run_id in finished]
    for m in matches:
        if m not in ok:
            say(f"  {m.run_id}: not evaluated (status is not ok): no baseline rows, as its own results have none")

    # every match checked before any baseline is fitted: a wrong table stops in seconds
    rebuilt, t0 = {}, time.perf_counter()
    for k, m in enumerate(ok, 1):
        r = rebuilt[m.run_id] = rebuild(m)
        check_run(typed[(typed["run_id"] == m.run_id) & (table.learner(typed) == table.TRANSFORMER)], r,
                  f"[{_label(m.spec.assignment)}]")
        say(f"  [{k}/{len(ok)}] {m.run_id} = the sweep's [{_label(m.spec.assignment)}]: columns rebuilt")
    say(f"every run's config rebuilds its recorded columns ({time.perf_counter() - t0:.1f} s)")

    added, seconds, counter_points = [], [], []
    for k, m in enumerate(ok, 1):
        t = time.perf_counter()
        r = rebuilt.pop(m.run_id)
        run = transformer_runs(typed).loc[m.run_id]
        points = {}
        computed = baseline_rows(run, r, points)
        counter_points += trajectory_rows(run, points, wanted)
        mine = typed[(typed["run_id"] == m.run_id) & (table.learner(typed) != table.TRANSFORMER)]
        check_present(m.run_id, computed, mine)
        have = set(zip(mine["split"], mine["model"]))
        new = computed[computed["model"].isin(wanted)
                       & ~pd.Series(list(zip(computed["split"], computed["model"])), index=computed.index).isin(have)]
        added.append(new)
        seconds.append(time.perf_counter() - t)
        say(f"  [{k}/{len(ok)}] {m.run_id}: {len(new)} rows added, {len(mine)} checked ({seconds[-1]:.1f} s)")
    new = pd.concat(added, ignore_index=True) if added else pd.DataFrame(columns=results.COLUMNS)
    dropped = [c for c in new.columns if c not in typed.columns and (new[c].map(_value) != "").any()]
    if dropped:
        raise UsageError(f"{table_path} has no column {', '.join(dropped)}, which the added rows fill: "
                         "collect the table again (scaling results) first")
    merged = merged_text(typed, text, new[list(typed.columns)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:
        merged.to_csv(tmp, index=False)
    say(f"{len(new)} rows added to {len(ok)} runs ({sum(seconds):.0f} s of baselines, "
        f"{np.mean(seconds) if seconds else 0:.1f} s a run) -> {out}")
    if trajectory_out is not None:
        traj = pd.DataFrame(counter_points, columns=TRAJECTORY_COLUMNS)
        Path(trajectory_out).parent.mkdir(parents=True, exist_ok=True)
        with replacing(Path(trajectory_out)) as tmp:
            traj.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
        say(f"{len(traj)} trajectory rows of the post-training counters -> {trajectory_out}")
    return {"runs": len(ok), "skipped": len(matches) - len(ok), "added": len(new), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m studies.backfill", description=(
        "Add the counting baselines' rows to a results table without training: each transformer "
        "run of RESULTS is matched to the one run of SWEEP whose grid values its columns show, the "
        "match is checked (the rebuilt config must give the recorded tokens, dose, FLOPs, items, and "
        "the baselines already in the table), and the baselines are fitted on the run's rebuilt "
        "training rows and scored on its eval items. Rows already present are kept as they are."))
    parser.add_argument("sweep", help="the sweep TOML the table's runs were trained from")
    parser.add_argument("results", help="the study's results.csv")
    parser.add_argument("--out", required=True,
                        help="where to write the table with the added rows (RESULTS itself to update it in place)")
    parser.add_argument("--models", choices=tuple(MODEL_SETS), default="all",
                        help="which baselines' rows to add: counter (the co-occurrence counters), ngram "
                             "(ngram-1/2/3), each with its dynamic counters (forgetting BASE-fgTAU, "
                             "post-training BASE-postW), dynamic (those alone), or all (default)")
    parser.add_argument("--trajectory-out", metavar="CSV",
                        help="also write the post-training counters' points at every post-training "
                             "checkpoint (trajectory.csv's columns) to CSV")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override the sweep was run with (scaling sweep --set)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if out.is_dir():
            raise UsageError(f"--out {out} is a directory: give the path of the CSV file to write")
        backfill(args.sweep, args.results, out, args.models, args.overrides,
                 say=lambda line: print(line, flush=True), trajectory_out=args.trajectory_out)
    except UsageError as e:
        print(f"python -m studies.backfill: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
