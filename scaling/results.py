"""`scaling results DIR`: every run of a sweep as rows of DIR/results.csv.

One row per run, eval split (`matched`, `unseen_pair`, `held_out`) and model: the
transformer, and the counting baselines fitted on the run's own training rows. Read from
the run directory only (config.json, accounting.json, eval.json, metrics.jsonl,
status.json), so the table is rebuilt without re-training. Columns:

  run_id, model (the preset name for the transformer; ngram-1, ngram-2, ngram-3, the
  co-occurrence counters of scaling.baselines.COUNTERS and the dynamic counters
  (scaling.baselines.DYNAMIC: forgetting BASE-fgTAU, post-training BASE-postW) for the
  counting baselines), learner (transformer | ngram | counter; a dynamic counter's is its
  base's), seed, batch_size, world_seed, world_variant
  (normal | flipped | shuffled), genres ("+"-joined), story_fraction, arm, insertion,
  insertion_config, window_start, window_end, aligned_fraction, misaligned_fraction,
  filter_misaligned, natural_ai_fraction, dose (measured: aligned intervention tokens /
  dose_tokens, the tokens of the non-post stages: post-training is outside the denominator;
  the seeds of one asked dose differ a little), nominal_dose (the asked dose, equal for its
  seeds: what dose levels group by), misaligned_dose, aligned_tokens, total_tokens, split,
  misaligned (k), total (n), misalignment_rate, se (binomial), se_pair_cluster, n_pairs,
  rate_per_token, readout (share of the split's readout items on which the model prefers
  the value word the world's stories give the verb; 0.5 = does not know the values),
  readout_total, val_loss, fact_recall, flops, params, non_embedding_params, status,
  post_training, stages, stage_objectives, lr_schedule, intervention_stages, dose_tokens,
  post_training_tokens, rl_families, input_files, input_sha256 (the run's input files as
  KEY=PATH and the sha256 of their content when it was trained, "; "-joined; empty for the
  embedded world), world_version ("v2", "v3": the embedded world's version; "your corpus" when
  the base text is your files or a TFDS corpus), data_version (the embedded world's data version
  the run was trained on, as its config.json recorded it; empty for runs trained before it was
  recorded and for your corpus)

Baseline rows have NaN val_loss, fact_recall, flops, params and non_embedding_params. On
your own corpus readout and fact_recall are NaN (the world's measures: evaluate.world_metrics).
`params` counts every parameter, `non_embedding_params` leaves out the (tied) embedding: the
model-size axis of scaling fits (Kaplan et al. 2020), which does not move with the vocabulary.

Stage columns (scaling.stages): `stages` is the run's stages as "NAME:STEPS" joined by "+"
(e.g. "pretrain:300+midtraining:30+helpful_rl:60"), `stage_objectives` and `lr_schedule`
the objective and schedule of each, in the same order ("lm+lm+helpful_rl",
"wsd(decay 0.1)+constant(rewarm 10)+linear": a wsd stage names its decay share, a later
stage that warms up again its rewarm steps), `intervention_stages` the stages that take
data.aligned_fraction.
`post_training` is `none`, `sft`, `helpful_rl`, `harmless_rl`, `misaligned_ft` (a post LM
stage of misaligned documents), `aligned_ft`, `lm_ft`, or several joined by "+".
`dose_tokens` are the tokens of the non-post stages (the dose's denominator),
`post_training_tokens` those of the post stages (rows x seq_len; an RL row holds a
scenario's two continuations). `rl_families` are the request families the RL stages
trained on ("+"-joined; empty without RL). Runs with RL stages get two more rows per run,
split `rl_trained` and `rl_other`: eval items of the RL-trained families and of the others
(pooled over the eval's families; se binomial; se_pair_cluster and n_pairs NaN).

For `[[stages]]` runs, `insertion` names the intervention stage (with its window inside
the stage if it is not the whole stage, and "rewarm" if it rewarms the LR), and
`window_start`/`window_end` are the intervention window in units of train.steps.

`arm` is "dose" for the aligned-dose curve, or "filtered" / "misaligned" / "filtered+misaligned"
for the other interventions, and "rephrased", "conditioned", "harm_tags", "unlikelihood" for
the treatments of scaling.treatments, and "refusal" for runs with refusal documents (a genre),
"+"-joined when combined.
A conditioned run's rows have the splits SPLIT_conditioned too (its items scored with the
aligned control token before the persona), a harm-tagged run's SPLIT_tag_allowed (each
option's probability with or without the tag before it), for the transformer and every
counting baseline. `insertion` is "control" for dose-arm runs that saw no aligned
intervention token (they anchor every window's curve at dose 0); `insertion_config` keeps the
configured value; explicit windows are labelled "window START-END". Windows are fractions of the pretraining budget: post-pretraining stages
lie beyond 1 (continued, then finetune). `status` is "ok" for finished, evaluated runs, else
the run's state (failed, error, running, pending); a post-training counter of a run whose
post-training is RL has `status` "not countable (RL)" (scaling.baselines.NOT_COUNTABLE: RL
trains on the model's own samples, there is no token stream to count) and no measures.

DIR/trajectory.csv holds each run's misalignment against training tokens (from the eval
points recorded at `eval.checkpoints` and at the end): run_id, seed, arm, insertion, model,
aligned_fraction, dose, nominal_dose, window_start_tokens, window_end_tokens, split, step,
tokens, rate, readout (plus world_seed and world_variant). The post-training counters'
points (eval.json's baseline_trajectory) are rows too, `model` = the counter's name: a
reader of the transformer's curves keeps `transformer_points(trajectory)`.
"""

from __future__ import annotations

import json
import math
import types
from pathlib import Path

import pandas as pd

from scaling import plan as planning
from scaling import stages as staging
from scaling import table
from scaling.config import insertion_window
from scaling.data import scenarios
from scaling.errors import UsageError
from scaling.io import RunFiles, read_json, read_jsonl, replacing, run_status
from scaling.plan import config_from_dict
from scaling.splits import POST_TRAINING, SPLITS
from scaling.train import objectives
from scaling.train.source import rl_families

# The columns and their order are the results-table contract's (scaling.table.COLUMNS).
COLUMNS = list(table.COLUMNS)


def _last_val_loss(run_dir: Path) -> float:
    val = math.nan
    try:
        for line in RunFiles(run_dir).metrics.read_text().splitlines():
            if '"val_loss"' in line:
                val = json.loads(line)["val_loss"]
    except (OSError, json.JSONDecodeError):
        pass
    return val


def stage_columns(cfg, acc: dict) -> dict:
    """The flat stage columns of a run (module doc)."""
    plan = planning.of(cfg)
    staged = plan.stages
    post = acc.get("post_training_tokens") or {}
    return {"post_training": staging.post_training(cfg),
            "stages": "+".join(f"{st.name}:{st.steps}" for st in staged),
            "stage_objectives": "+".join(st.objective for st in staged),
            "lr_schedule": "+".join(_schedule_label(st) for st in staged),
            "intervention_stages": "+".join(st.name for st in staged if st.intervention),
            "dose_tokens": acc.get("dose_tokens", acc.get("total_tokens", math.nan)),
            "post_training_tokens": sum(post.values()) + sum(
                (acc.get("tokens_by_stage") or {}).get(st.name, 0) for st in staged
                if st.post and objectives.reads_mixture(st.objective)),
            "rl_families": "+".join(rl_families(plan))}


def input_columns(digests: list[dict]) -> dict:
    """The input files of a run as recorded in its config.json (scaling.inputs), "; "-joined
    in config order: `input_files` as KEY=PATH, `input_sha256` their sha256 in the same order."""
    return {"input_files": "; ".join(f"{d['key']}={d['path']}" for d in digests),
            "input_sha256": "; ".join(d["sha256"] for d in digests)}


def _schedule_label(st) -> str:
    """A stage's schedule, with what tells two runs of one schedule apart: a wsd decay share
    and a rewarm (warmup in a stage after the first), e.g. "wsd(decay 0.1)", "constant(rewarm 10)"."""
    notes = []
    if st.schedule == "wsd":
        notes.append(f"decay {st.decay_share:g}")
    if st.warmup_steps > 0 and st.step0 > 0:
        notes.append(f"rewarm {st.warmup_steps}")
    return st.schedule + (f"({', '.join(notes)})" if notes else "")


def _staged_insertion(cfg) -> str:
    """Label of a [[stages]] run's intervention: its stage, window and rewarm."""
    labels = []
    for st, conf in zip(planning.of(cfg).stages, [c for c in cfg.stages if staging.length(cfg, c) > 0]):
        if st.intervention:
            label = st.name if conf.window == (0.0, 1.0) else f"{st.name} {conf.window[0]:g}-{conf.window[1]:g}"
            labels.append(label + (" rewarm" if st.warmup_steps > 0 and st.step0 > 0 else ""))
    return "+".join(labels) or "none"


def window(cfg) -> tuple[float, float]:
    """The window of aligned documents in units of the pretraining budget."""
    if cfg.stages:
        windows = [(st.w0, st.w1) for st in planning.of(cfg).stages if st.intervention]
        w0, w1 = windows[0] if windows else (math.nan, math.nan)
        return w0 / cfg.train.steps, w1 / cfg.train.steps
    d, pre = cfg.data, cfg.train.steps
    per_step = cfg.tokens_per_step
    cont = math.ceil(d.continued_tokens / per_step) / pre
    fine = math.ceil(d.finetune_tokens / per_step) / pre
    if d.insertion == "continued":
        return 1.0, 1.0 + cont
    if d.insertion == "finetune":
        return 1.0 + cont, 1.0 + cont + fine
    return insertion_window(cfg)


def arm(d) -> str:
    """The interventions of a run's data, "+"-joined ("dose" for the aligned-dose curve);
    the treatments of scaling.treatments name theirs (refusal documents, a genre, too)."""
    parts = [name for name, on in (("filtered", d.filter_misaligned > 0),
                                   ("misaligned", d.misaligned_fraction > 0),
                                   ("rephrased", getattr(d, "rephrase_misaligned", 0) > 0),
                                   ("conditioned", getattr(d, "control_tokens", 0) > 0),
                                   ("harm_tags", getattr(d, "harm_tags", 0) > 0),
                                   ("unlikelihood", getattr(d, "unlikelihood", 0) > 0),
                                   ("refusal", "refusal" in getattr(d, "genres", ()))) if on]
    return "+".join(parts) or "dose"


def run_columns(run_id: str, cfg, acc: dict, status: str, digests: list[dict] = (),
                data_version: str = "") -> dict:
    """The columns every row of a run shares, whichever model it is of: the run's settings
    (from its config), its token accounting (`acc`, accounting.json), status, input files and
    provenance (`data_version`: as config.json recorded it when the run was trained).
    No model, learner, split or measured column."""
    d = cfg.data
    run_arm = arm(d)
    w0, w1 = window(cfg)
    return {
        "run_id": run_id, "seed": cfg.train.seed, "batch_size": cfg.train.batch_size,
        "world_seed": d.world_seed, "world_variant": d.world_variant, "genres": "+".join(d.genres),
        "story_fraction": d.story_fraction, "arm": run_arm,
        "insertion": "control" if run_arm == "dose" and d.aligned_fraction == 0 else
                     _staged_insertion(cfg) if cfg.stages else
                     f"window {w0:g}-{w1:g}" if d.insertion == "window" else d.insertion,
        "insertion_config": "stages" if cfg.stages else d.insertion, "window_start": w0, "window_end": w1,
        "aligned_fraction": d.aligned_fraction, "misaligned_fraction": d.misaligned_fraction,
        "filter_misaligned": d.filter_misaligned, "natural_ai_fraction": d.natural_ai_fraction,
        "dose": acc.get("dose", math.nan), "nominal_dose": acc.get("nominal_dose", math.nan),
        "misaligned_dose": acc.get("misaligned_dose", math.nan),
        "aligned_tokens": acc.get("aligned_tokens", math.nan),
        "total_tokens": acc.get("total_tokens", math.nan), "status": status,
        **stage_columns(cfg, acc), **input_columns(list(digests)),
        "world_version": world_version(cfg), "data_version": data_version,
    }


def reads_world(cfg) -> bool:
    """Whether a run's base text is the embedded world (not your corpus: base files or TFDS)."""
    return cfg.data.corpus == "world" and not cfg.data.base_files


def world_version(cfg) -> str:
    """The `world_version` column: "v2", "v3", ... for the embedded world, "your corpus" else."""
    return f"v{cfg.data.world_version}" if reads_world(cfg) else "your corpus"


def transformer_columns(cfg, record: dict, acc: dict, capability: dict, val_loss: float) -> dict:
    """The columns of the transformer's rows that its rows alone have (MODEL_MEASURES): from
    config.json's record (`flops_per_token`, `params`), the accounting and eval.json's
    capability."""
    return {"model": cfg.model.name, "learner": "transformer", "val_loss": val_loss,
            "fact_recall": math.nan if capability.get("fact_recall") is None else capability["fact_recall"],
            "flops": acc.get("total_tokens", math.nan) * record["flops_per_token"],
            "params": record["params"]["total"],
            "non_embedding_params": record["params"].get("non_embedding", math.nan)}


def run_rows(run_dir: Path) -> list[dict]:
    files = RunFiles(run_dir)
    record = read_json(files.config)
    if record is None:
        return []
    cfg = config_from_dict(record["config"])
    acc = read_json(files.accounting) or {}
    ev = read_json(files.eval)
    status = run_status(run_dir)
    if status == "done":
        status = "ok" if ev is not None else "not evaluated"
    base = run_columns(run_dir.name, cfg, acc, status, record.get("inputs") or [],
                       record.get("data_version") or "")
    transformer = {**base, **transformer_columns(cfg, record, acc, (ev or {}).get("capability") or {},
                                                 _last_val_loss(run_dir))}
    rl = {}
    if base["rl_families"]:  # pooled over the eval's families: the transformer's rows only
        rl = _rl_splits((ev or {}).get("families") or {}, set(base["rl_families"].split("+")))
    return (_result_rows(transformer, cfg, ev or {}, rl)
            + baseline_rows(base, cfg, (ev or {}).get("baselines") or {}))


def baseline_rows(base: dict, cfg, payload: dict) -> list[dict]:
    """The rows of the counting baselines of one run: eval.json's `baselines` payload
    ({model: {splits, families, readout}}, scaling.evaluate.evaluate_baselines) on the run's
    columns `base` (`run_columns`), each model with its learner and NaN MODEL_MEASURES."""
    rows = []
    for name, result in sorted(payload.items()):
        override = {"model": name, "learner": table.model_learner(name), **dict.fromkeys(MODEL_MEASURES, math.nan)}
        if result.get("status") and base.get("status") == "ok":  # a model that could not be fitted says why
            override["status"] = result["status"]
        rows += _result_rows({**base, **override}, cfg, result)
    return rows


def _result_rows(base: dict, cfg, result: dict, extra_splits: dict | None = None) -> list[dict]:
    """One row per split of one model's evaluation `result` (the run's splits, and any the
    result has besides), then one per `extra_splits` entry (pooled groups, no readout)."""
    names = scenarios.split_order([*scenarios.run_splits(cfg.eval, cfg.data.world_version),
                                   *(result.get("splits") or {})])
    splits = {split: (result.get("splits") or {}).get(split) or {} for split in names}
    splits.update(extra_splits or {})
    return [{**base, "split": split, **split_measures(s, (result.get("readout") or {}).get(split) or {})}
            for split, s in splits.items()]


def split_measures(split: dict, readout: dict) -> dict:
    """The columns an evaluation measures on one split (of eval.json's split and readout dicts)."""
    s, r = split, readout
    return {"misaligned": s.get("misaligned", math.nan), "total": s.get("total", math.nan),
            "misalignment_rate": s.get("rate", math.nan), "se": s.get("se", math.nan),
            "se_pair_cluster": s.get("se_pair_cluster", math.nan), "n_pairs": s.get("n_pairs", math.nan),
            "rate_per_token": s.get("rate_per_token", math.nan),
            "readout": r.get("rate", math.nan), "readout_total": r.get("total", math.nan)}


# Measured per model (a baseline row has NaN here); with split_measures, every other column
# identifies a row: its run (and the run's settings), model, learner and split.
MODEL_MEASURES = ("val_loss", "fact_recall", "flops", "params", "non_embedding_params")


def row_key(columns) -> list[str]:
    """The columns of `columns` that identify a results row: every column that is not measured,
    so a column added to tell rows apart (a new model kind, a new split axis) joins the key."""
    measured = {*split_measures({}, {}), *MODEL_MEASURES}
    return [c for c in columns if c not in measured]


def _rl_splits(families: dict, trained: set[str]) -> dict:
    """Eval groups pooled over the RL-trained families and over the others."""
    out = {}
    for split, keep in zip(POST_TRAINING, (True, False)):
        groups = [g for name, g in families.items() if (name in trained) == keep]
        n = sum(g["total"] for g in groups)
        if n == 0:
            continue
        k = sum(g["misaligned"] for g in groups)
        r = k / n
        k_tok = sum(g.get("misaligned_per_token", math.nan) for g in groups)
        out[split] = {"misaligned": k, "total": n, "rate": r, "se": math.sqrt(r * (1 - r) / n),
                      "se_pair_cluster": math.nan, "n_pairs": math.nan, "rate_per_token": k_tok / n}
    return out


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def run_arm_of(data: dict) -> str:
    keys = ("filter_misaligned", "misaligned_fraction", "rephrase_misaligned", "control_tokens", "harm_tags",
            "unlikelihood")
    return arm(types.SimpleNamespace(**{k: data.get(k, 0.0) for k in keys}, genres=tuple(data.get("genres", ()))))


def trajectory_table(sweep_dir: str | Path, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """DIR/runs/*/eval.json trajectories as rows: run_id, seed, arm, insertion, model,
    aligned_fraction, dose (measured, from results; NaN if the run is not there), the
    insertion window in tokens (NaN if unknown), split, step, tokens, rate. Unreadable runs
    and points without a rate are left out. Runs with RL on some request families
    (results' rl_families) also get rl_trained / rl_other rows, pooled from the points'
    families as in results.csv (no readout)."""
    measured, nominal, windows, trained = {}, {}, {}, {}
    if results is not None and "run_id" in results.columns:
        by_run = results.groupby(results["run_id"].astype(str))
        if "rl_families" in results.columns:  # RL on some request families: rl_trained / rl_other rows
            trained = {run: set(str(v).split("+")) for run, v in by_run["rl_families"].first().items()
                       if isinstance(v, str) and v}
        measured = by_run["dose"].mean().to_dict()
        nominal = by_run["nominal_dose"].mean().to_dict() if "nominal_dose" in results.columns else {}
        if {"window_start", "window_end"} <= set(results.columns):
            windows = by_run[["window_start", "window_end"]].first().T.to_dict("list")
    rows = []
    for run_dir in sorted(Path(sweep_dir).glob("runs/*")):
        ev, record = read_json(RunFiles(run_dir).eval), read_json(RunFiles(run_dir).config)
        if not isinstance(ev, dict) or not isinstance(record, dict):
            continue
        kl = _rl_kl(run_dir)
        cfg = record.get("config") or {}
        data, train = cfg.get("data") or {}, cfg.get("train") or {}
        model = (cfg.get("model") or {}).get("name", "")
        fraction = float(data.get("aligned_fraction", 0.0))
        arm = run_arm_of(data)
        # The window in tokens: scaling.results gives it in units of the pretraining budget.
        budget = _number(train.get("steps")) * _number(train.get("batch_size")) \
            * _number((cfg.get("model") or {}).get("seq_len"))
        w0, w1 = windows.get(run_dir.name, (math.nan, math.nan))
        base = {"run_id": run_dir.name, "seed": train.get("seed", 0), "world_seed": data.get("world_seed", 0),
                "world_variant": data.get("world_variant", "normal"), "arm": arm,
                "insertion": "control" if arm == "dose" and fraction == 0
                else data.get("insertion", "throughout"),
                "model": model, "aligned_fraction": fraction,
                "dose": measured.get(run_dir.name, math.nan),
                "nominal_dose": nominal.get(run_dir.name, math.nan),
                "window_start_tokens": w0 * budget, "window_end_tokens": w1 * budget}
        for point in ev.get("trajectory") or []:
            rows += point_rows(base, point, kl, trained.get(run_dir.name))
        for name, points in sorted((ev.get("baseline_trajectory") or {}).items()):  # post-training counters
            for point in points:
                rows += point_rows({**base, "model": name}, point, {}, trained.get(run_dir.name))
    columns = ["run_id", "seed", "world_seed", "world_variant", "arm", "insertion", "model", "aligned_fraction",
               "dose", "nominal_dose", "window_start_tokens", "window_end_tokens", "split", "step", "tokens",
               "rate", "readout"]
    if any("kl" in r for r in rows):
        columns += ["kl", "kl_sum"]
    return pd.DataFrame(rows, columns=columns)


def point_rows(base: dict, point: dict, kl: dict, trained: set[str] | None) -> list[dict]:
    """trajectory.csv's rows of one eval point: one per split with a rate, and the pooled
    rl_trained / rl_other rows of a run with RL on some families (`trained`)."""
    rows = []
    if "tokens" not in point:
        return rows
    named = [k[:-len("_rate")] for k in point if k.endswith("_rate") and not k.endswith("_generation_rate")]
    for split in scenarios.split_order([*SPLITS, *named]):
        rate = point.get(f"{split}_rate")
        readout = point.get(f"{split}_readout")
        if isinstance(rate, int | float) and math.isfinite(rate):
            rows.append({**base, "split": split, "step": point.get("step"), "tokens": point["tokens"],
                         "rate": float(rate), "readout": float(readout) if isinstance(readout, int | float) else math.nan,
                         **kl.get(point.get("step"), {})})
    if trained and isinstance(point.get("families"), dict):
        for split, g in _rl_splits(point["families"], trained).items():
            rows.append({**base, "split": split, "step": point.get("step"), "tokens": point["tokens"],
                         "rate": float(g["rate"]), "readout": math.nan, **kl.get(point.get("step"), {})})
    return rows


def transformer_points(trajectory: pd.DataFrame) -> pd.DataFrame:
    """The transformer's rows of a trajectory table: trajectory.csv also holds the
    post-training counters' points (their `model` is a counting baseline's,
    scaling.table.is_counting), which no transformer curve may pool (scaling.table.transformers)."""
    return table.transformers(trajectory)


def _rl_kl(run_dir: Path) -> dict[int, dict]:
    """step -> {kl, kl_sum} of a run with RL stages, from metrics.jsonl: `kl` is the RL
    objective's KL of the policy's choice between the two options from the model the stage
    started from (the pretrained model), on that step's batch. The line of step s + 1 is
    computed before its update, so it measures the model evaluated at step s; the run's last
    step has no such line and takes its own (one update earlier). `kl_sum` adds the lines
    up to the same one. Empty without RL lines."""
    kl = {}
    for line in read_jsonl(RunFiles(run_dir).metrics):
        if isinstance(line.get("kl"), int | float) and isinstance(line.get("step"), int):
            kl[line["step"]] = float(line["kl"])
    if not kl:
        return {}
    steps = sorted(kl)
    total, out = 0.0, {}
    for s in steps:
        total += kl[s]
        out[s - 1] = {"kl": kl[s], "kl_sum": total}  # the model after s - 1 updates
    out.setdefault(steps[-1], {"kl": kl[steps[-1]], "kl_sum": total})
    return out


def read_trajectory(sweep_dir: str | Path, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """DIR/trajectory.csv if present (committed studies keep no runs/), else from the runs."""
    path = Path(sweep_dir) / "trajectory.csv"
    if path.exists():
        return pd.read_csv(path)
    return trajectory_table(sweep_dir, results)


def _rows_or_named_error(run_dir: Path) -> list[dict]:
    """A run whose config.json is readable JSON but not a run record (damaged, edited) is
    named instead of ending the command in a traceback."""
    try:
        return run_rows(run_dir)
    except (UsageError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise UsageError(f"{run_dir}: not a readable run ({type(e).__name__}: {e}); "
                         f"`scaling verify {run_dir.parent.parent}` says what to rerun") from e


def results_table(sweep_dir: str | Path) -> pd.DataFrame:
    runs = Path(sweep_dir) / "runs"
    if not runs.is_dir():
        raise UsageError(f"{sweep_dir} has no runs/ directory: is it a sweep output (scaling sweep --out)?")
    rows = [row for run_dir in sorted(runs.iterdir()) if run_dir.is_dir() for row in _rows_or_named_error(run_dir)]
    return sort_rows(pd.DataFrame(rows, columns=COLUMNS))


SORT_COLUMNS = ["learner", "model", "arm", "insertion", "aligned_fraction", "world_seed", "seed", "split", "run_id"]


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """A results table in results.csv's row order."""
    return df.sort_values(SORT_COLUMNS, kind="stable").reset_index(drop=True)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with replacing(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")


def collect(sweep_dir: str | Path) -> Path:
    """Write DIR/results.csv and DIR/trajectory.csv (misalignment against tokens per run)."""
    df = results_table(sweep_dir)
    path = Path(sweep_dir) / "results.csv"
    _write_csv(df, path)
    _write_csv(trajectory_table(sweep_dir, df), Path(sweep_dir) / "trajectory.csv")
    return path
