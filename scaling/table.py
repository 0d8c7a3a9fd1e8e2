"""The results-table contract: what a row of results.csv is, and the rules every reader shares.

`scaling.results` writes the table (its column order is `COLUMNS`); `scaling.stats`, the reports, the
figures, `scaling.study` and the studies (findings, backfill) read it. Each reads
it through the rules here, so that one table means one thing to all of them:

- `finished(df)`: the rows of finished, evaluated runs (`status` is "ok");
- `learner(df)` / `is_counting(model)`: transformer, `ngram` or `counter`;
- `dose_level(df)`: the configured dose of a run, equal for the seeds of one level;
- `BLOCK` / `blocks(df, mode)`: the independent units (train seed x world seed, or worlds);
- `controls(df)`: the dose-0 rows that anchor every insertion window's curve.

docs/results-table.md states the contract in prose. Pandas only: this module imports nothing
of `scaling` but `scaling.errors`, so the analysis side never reaches the run side through it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import UsageError

# ---------------------------------------------------------------- columns

STAGE_COLUMNS = ("post_training", "stages", "stage_objectives", "lr_schedule", "intervention_stages",
                 "dose_tokens", "post_training_tokens", "rl_families")

# Every column results.csv holds, in its order, with its meaning (scaling.results writes them).
COLUMNS: dict[str, str] = {
    "run_id": "the run's directory name under DIR/runs",
    "model": "the preset name for the transformer; ngram-1/2/3 and the co-occurrence counters "
             "(`COUNTERS`) for the counting baselines fitted on the run's own training rows",
    "learner": "transformer | ngram | counter (`learner`)",
    "seed": "train seed: initialisation and base data order (a blocking factor)",
    "batch_size": "sequences per step",
    "world_seed": "the world's seed (a blocking factor; the unit in world mode)",
    "world_variant": "normal | flipped | shuffled",
    "genres": "the AI documents' genres, '+'-joined",
    "story_fraction": "share of the human stories in the base data",
    "arm": "dose (the aligned-dose curve), filtered, misaligned or filtered+misaligned",
    "insertion": "the insertion window's label; 'control' for dose-arm runs without aligned tokens",
    "insertion_config": "the configured insertion value",
    "window_start": "the window's start in units of the pretraining budget",
    "window_end": "the window's end in units of the pretraining budget",
    "aligned_fraction": "configured share of the window's tokens that are aligned documents",
    "misaligned_fraction": "configured share of misaligned documents",
    "filter_misaligned": "whether misaligned AI documents were filtered out",
    "natural_ai_fraction": "share of natural AI documents in the base data",
    "dose": "measured dose: aligned intervention tokens / dose_tokens",
    "nominal_dose": "configured dose (the same for every seed of a level)",
    "misaligned_dose": "measured misaligned tokens / dose_tokens",
    "aligned_tokens": "aligned intervention tokens seen",
    "total_tokens": "tokens trained on",
    "split": "eval split (matched, unseen_pair, held_out; rl_trained, rl_other with RL stages)",
    "misaligned": "k: eval items on which the model prefers the misaligned continuation",
    "total": "n: eval items of the split",
    "misalignment_rate": "k / n",
    "se": "binomial standard error of the rate",
    "se_pair_cluster": "standard error clustered by verb pair",
    "n_pairs": "verb pairs of the split",
    "rate_per_token": "misalignment rate per aligned token",
    "readout": "share of the split's readout items answered with the stories' value word (0.5: not learned)",
    "readout_total": "readout items of the split",
    "val_loss": "final validation loss (NaN for counting baselines)",
    "fact_recall": "share of recall facts recalled (NaN for counting baselines)",
    "flops": "training FLOPs (NaN for counting baselines)",
    "params": "every parameter (NaN for counting baselines)",
    "non_embedding_params": "parameters without the tied embedding (NaN for counting baselines)",
    "status": "'ok' for finished, evaluated runs, else the run's state (`finished`)",
    "post_training": "none, sft, helpful_rl, harmless_rl, misaligned_ft, aligned_ft, lm_ft, '+'-joined",
    "stages": "the run's stages as NAME:STEPS joined by '+'",
    "stage_objectives": "each stage's objective, in order",
    "lr_schedule": "each stage's learning-rate schedule, in order",
    "intervention_stages": "the stages that take data.aligned_fraction",
    "dose_tokens": "tokens of the non-post stages (the dose's denominator)",
    "post_training_tokens": "tokens of the post-training stages",
    "rl_families": "request families the RL stages trained on, '+'-joined",
    "input_files": "the run's input files as KEY=PATH, '; '-joined (empty for the embedded world)",
    "input_sha256": "their sha256 when the run trained, in the same order",
    "world_version": "provenance: the embedded world's version ('v2', 'v3'); 'your corpus' when the base "
                     "text is your files or a TFDS corpus",
    "data_version": "provenance: the embedded world's data version the run was trained on, as its "
                    "config.json recorded it (empty before it was recorded, and for your corpus)",
}
# Columns a valid table may lack: tables written before the provenance was recorded.
OPTIONAL = ("world_version", "data_version")

# ---------------------------------------------------------------- reading


def read(path: str | Path) -> pd.DataFrame:
    """A results CSV as it is (UsageError naming the file when it is missing or unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not a readable CSV ({e})") from e


def text(col: pd.Series) -> pd.Series:
    """A column as str; empty cells become "" (pandas 3 keeps NaN through astype(str))."""
    return col.astype(object).map(lambda v: "" if isinstance(v, float) and math.isnan(v) else str(v)).astype(str)


def world_text(df: pd.DataFrame) -> str:
    """Which world and data version a table's rows ran on ("world v3 (data 3.1.0)", "your
    corpus"), from its provenance columns; says so where the table predates them."""
    if "world_version" not in df.columns or not df["world_version"].notna().any():
        return "world not recorded (a table without the world_version column)"
    worlds = sorted(set(text(df["world_version"])) - {""})
    versions = sorted(set(text(df["data_version"])) - {""}) if "data_version" in df.columns else []
    said = ", ".join(w if w == "your corpus" else f"world {w}" for w in worlds)
    if any(w != "your corpus" for w in worlds):
        said += f" (data {', '.join(versions)})" if versions else " (data version not recorded)"
    return said


def check_one_data_version(df: pd.DataFrame, what: str = "this table") -> None:
    """UsageError when the rows ran on more than one (world version, data version): a curve
    through rows of two worlds' data would mix two experiments. Rows on your own corpus (no
    data version) and tables without the provenance columns pass."""
    if "data_version" not in df.columns:
        return
    worlds = text(df["world_version"]) if "world_version" in df.columns else pd.Series("", index=df.index)
    pairs = sorted({(w, v) for w, v in zip(worlds, text(df["data_version"])) if v})
    if len(pairs) > 1:
        said = ", ".join(f"world {w or '?'} data {v}" for w, v in pairs)
        raise UsageError(f"{what} holds rows of {len(pairs)} data versions ({said}); refusing to mix them: "
                         "rerun the older runs on this code, or fit each version's rows apart")


# ---------------------------------------------------------------- finished rows


def is_finished(df: pd.DataFrame) -> pd.Series:
    """Whether each row is of a finished, evaluated run: its `status`, stripped, is "ok".

    An empty status is not "ok" (the row is not finished); a table without a `status` column
    (a table of one's own) is all finished."""
    if "status" not in df.columns:
        return pd.Series(True, index=df.index)
    return text(df["status"]).str.strip() == "ok"


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of finished, evaluated runs (`is_finished`)."""
    return df[is_finished(df)]


# ---------------------------------------------------------------- learners

TRANSFORMER, NGRAM, COUNTER = "transformer", "ngram", "counter"
LEARNERS = (TRANSFORMER, NGRAM, COUNTER)
# The co-occurrence counters' model names (scaling.baselines.COUNTERS fits them; a test ties
# the two): docpmi, winpmi-K (the next K tokens), twohop, twohop-values, svd-R (rank R).
COUNTERS = ("docpmi", "winpmi-4", "winpmi-16", "twohop", "twohop-values", "svd-8", "svd-32")
# A dynamic counter (scaling.baselines): a static one whose counts forget over training steps
# (BASE-fgTAU) or that takes the post-training rows weighted W (BASE-postW).
DYNAMIC_NAME = re.compile(r"^(?P<base>.+)-(?P<kind>fg|post)(?P<value>inf|\d+(?:\.\d+)?)$")


def _static(model: str) -> bool:
    return model.startswith("ngram-") and model[6:].isdigit() or model in COUNTERS


def dynamic(model: str) -> tuple[str, str, float] | None:
    """(base, "fg" | "post", tau or weight) of a dynamic counter's name, else None."""
    m = DYNAMIC_NAME.match(model)
    if m is None or not _static(m["base"]):
        return None
    return m["base"], m["kind"], float(m["value"])


def model_learner(model: str) -> str:
    """The learner a model name implies: `ngram` for ngram-* (a dynamic one included:
    ngram-1-fg60), `counter` for `COUNTERS` and their dynamic counters (winpmi-4-post10), else
    `transformer` (the rule `learner` falls back on where the column is empty)."""
    if model.startswith("ngram-"):
        return NGRAM
    return COUNTER if model in COUNTERS or dynamic(model) is not None else TRANSFORMER


def is_counting(model: str) -> bool:
    """Whether a model name is a counting baseline: an n-gram, a co-occurrence counter, or a
    dynamic counter of either (`dynamic`)."""
    return model_learner(model) != TRANSFORMER


def learner(df: pd.DataFrame) -> pd.Series:
    """Each row's learner: the `learner` column where it is filled, else the model name's
    (`model_learner`); a counting baseline's name is never a transformer, whatever the column."""
    by_name = text(df["model"]).map(model_learner) if "model" in df.columns else \
        pd.Series(TRANSFORMER, index=df.index)
    if "learner" not in df.columns:
        return by_name
    column = text(df["learner"]).str.strip()
    return column.where((column != "") & (by_name == TRANSFORMER), by_name)


def transformers(df: pd.DataFrame) -> pd.DataFrame:
    """The transformer rows (`learner`)."""
    return df[learner(df) == TRANSFORMER]


# ---------------------------------------------------------------- dose levels

# Columns that name a configured dose level, best first: the seeds of one level see slightly
# different measured doses (finetune doses all have aligned_fraction 1), so levels group them.
LEVEL_COLUMNS = ("nominal_dose", "aligned_fraction", "dose")


def dose_level(df: pd.DataFrame) -> pd.Series:
    """Each row's configured dose level: `nominal_dose`, where empty `aligned_fraction`, where
    empty the measured `dose` (LEVEL_COLUMNS), rounded to 12 digits so that a level's seeds
    compare equal."""
    present = [c for c in LEVEL_COLUMNS if c in df.columns]
    if not present:
        raise UsageError(f"a results table needs one of the columns {', '.join(LEVEL_COLUMNS)} for its dose levels")
    level = pd.Series(np.nan, index=df.index)
    for col in reversed(present):
        values = pd.to_numeric(df[col], errors="coerce")
        level = values.where(values.notna(), level)
    return level.astype(float).round(12)


# ---------------------------------------------------------------- blocks and controls

# Blocking factors: a train seed fixes the initialisation and base data order at every dose, a
# world seed the world; every paired analysis treats their combinations as its blocks. A list,
# as pandas indexes and groups by it (a tuple would be one key): never mutated.
BLOCK = ["seed", "world_seed"]
WORLD = "world_seed"
BLOCK_MODES = ("seed", "world")


def block_columns(rows: pd.DataFrame) -> list[str]:
    """The BLOCK columns `rows` has, filled on every row."""
    return [c for c in BLOCK if c in rows.columns and rows[c].notna().all()]


def blocks(rows: pd.DataFrame, mode: str = "seed") -> np.ndarray | None:
    """Each row's independent unit as a label: in mode "seed" its block ("seed=1" or
    "seed=1|world_seed=7"; None without block columns), in mode "world" its world
    ("world_seed=7")."""
    if mode not in BLOCK_MODES:
        raise UsageError(f"block mode must be one of {', '.join(BLOCK_MODES)}, not {mode!r}")
    if mode == "world":
        if WORLD not in rows.columns:
            raise UsageError(f"block mode world needs a {WORLD} column")
        return rows[WORLD].astype(str).radd(f"{WORLD}=").to_numpy(dtype=object)
    cols = block_columns(rows)
    if not cols:
        return None
    parts = [rows[c].astype(str).radd(f"{c}=") for c in cols]
    label = parts[0]
    for part in parts[1:]:
        label = label + "|" + part
    return label.to_numpy(dtype=object)


# Insertion labels of a dose-0 run that saw no window: it anchors every window's curve.
CONTROL_LABELS = {"", "none", "control", "controls", "baseline", "nan"}


def is_control_label(value) -> bool:
    """Whether an `insertion` value names no window (`CONTROL_LABELS`, or empty)."""
    return pd.isna(value) or str(value).strip().lower() in CONTROL_LABELS


def controls(df: pd.DataFrame) -> pd.Series:
    """Whether each row is a shared dose-0 control: dose 0 and no insertion window (or a
    table without an insertion column)."""
    zero = pd.to_numeric(df["dose"], errors="coerce") == 0
    if "insertion" not in df.columns:
        return zero
    return zero & df["insertion"].map(is_control_label).astype(bool)
