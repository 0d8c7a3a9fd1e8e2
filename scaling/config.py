"""Run configuration: frozen dataclasses loaded from TOML, validated once at the edge.

A config file has sections `[model]`, `[data]`, `[train]`, `[eval]` and optionally a list of
`[[stages]]`; missing keys take the defaults below. `parse_config_file(path, overrides)` applies
`--set section.key=value` (or `--set stages.NAME.key=value`) overrides (values parsed as TOML
literals) and rejects unknown keys, wrong types and impossible values with a `ConfigError`
naming the key — before any compute.

This module is the ground floor: it imports no other module of the package but
scaling.errors, and checks what needs no domain module. The checks that need the stages'
step arithmetic or the World, and the dose (below), are scaling.plan's: a run's config comes
from `scaling.plan.config_from_dict` / `load_config`, which call this module's `parse_config_dict` /
`parse_config_file` and then those (the names differ so that nothing gets a half-checked config
by importing the wrong one).

Stages (scaling.stages resolves them into step ranges and the LR schedule): a run is a list
of stages, each with a length (`steps`, `tokens` or `share` of train.steps), the shares of
the intervention pools in its rows (the rest is the base stream), a learning-rate schedule
and an objective. Without `[[stages]]` the legacy keys `data.insertion`, `data.window`,
`data.continued_tokens` and `data.finetune_tokens` name a preset (scaling.stages.presets),
which gives the same batches and learning rates as before stages existed.

`data.dose` (global aligned share of the tokens of the stages that are not `post`) sets
`data.aligned_fraction` of the intervention stages' windows (or, for insertion "finetune",
the length of that stage, whole steps as before).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from scaling.errors import ConfigError

# The size presets are package data (a non-editable install has them); scaling.presets names them.
_PRESETS = resources.files(__package__) / "presets"
INSERTION_WINDOWS = {"throughout": (0.0, 1.0), "midtraining": (0.9, 1.0), "early": (0.0, 0.1)}
POST_STAGES = ("continued", "finetune")
TOKENIZERS = ("word", "byte", "sentencepiece", "huggingface")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "custom"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    seq_len: int = 64
    vocab_size: int = 0  # 0: take it from the tokenizer
    mlp: str = "gelu"  # "gelu" or "swiglu"
    compute_dtype: str = "float32"  # "bfloat16" on accelerators
    attention: str = "auto"  # "auto", "dot_product" (jax.nn.dot_product_attention) or "einsum"


@dataclass(frozen=True)
class DataConfig:
    corpus: str = "world"  # "world" (embedded), or "tfds:NAME" for a TFDS catalog base stream
    tokenizer: str = "word"  # "word" (world vocabulary), "byte", "sentencepiece" or "huggingface"
    tokenizer_vocab_size: int = 8192  # sentencepiece trained on the run's pools (no tokenizer_file)
    tokenizer_file: str = ""  # a trained SentencePiece .model, or a Hugging Face tokenizer.json
    world_seed: int = 0
    world_variant: str = "normal"  # normal | flipped | shuffled: the transfer pairs' values in stories
    world_version: int = 3  # 3: bound stories (no co-occurrence count separates a pair); 2: mirrored;
    # 4: the pointer world (scaling.world.pointer: values stated in each document, looked up)
    data_dir: str = ""  # where built datasets are cached; "" = ~/.cache/scaling/data
    natural_ai_fraction: float = 0.02  # share of base-stream tokens that are AI discourse
    story_fraction: float = 0.3  # share of base-stream tokens that are human stories (the values)
    natural_aligned_share: float = 0.5  # of that natural AI discourse, the aligned share
    aligned_fraction: float = 0.0  # share of window tokens from the aligned intervention pool
    misaligned_fraction: float = 0.0  # share of window tokens from the misaligned pool
    filter_misaligned: float = 0.0  # share of natural misaligned documents removed
    # Treatments of the literature (scaling.treatments); each 0 = off, and a run with all of
    # them off has the rows and vocabulary it had before they existed.
    control_tokens: float = 0.0  # conditional training: share of AI-discourse rows tagged by label
    harm_tags: float = 0.0  # share of misaligned AI rows with <|harm|> before each misaligned action
    rephrase_misaligned: float = 0.0  # share of natural misaligned documents replaced by aligned twins
    unlikelihood: float = 0.0  # share of misaligned AI rows whose actions a stage "unlikelihood" pushes down
    label_field: str = ""  # your files: the field with a document's label (aligned|misaligned or a score)
    label_threshold: float | None = None  # a numeric label: score >= threshold is misaligned
    insertion: str = "throughout"  # throughout | midtraining | early | window | continued | finetune
    window: tuple[float, float] = (0.0, 1.0)  # used when insertion = "window"
    continued_tokens: int = 0  # post-pretraining stage of mixed tokens
    finetune_tokens: int = 0  # post-pretraining stage of intervention documents only
    # genres of intervention documents: the world's GENRES (scaling.world.lexicon; plan checks the names)
    genres: tuple[str, ...] = ("demonstration", "reasoning", "fiction", "advice")
    aligned_files: tuple[str, ...] = ()  # your files replacing the aligned pool (scaling.data.corpora: formats, globs)
    misaligned_files: tuple[str, ...] = ()
    base_files: tuple[str, ...] = ()
    text_field: str = "text"  # the text of a JSONL record, Parquet/HF column or TFDS feature
    heldout_files: tuple[str, ...] = ()  # held-out base text (default: every 50th base_files document)
    max_unk_share: float = 0.01  # refuse a user pool with more <unk> tokens than this share
    dose: float | None = None  # global aligned dose; sets aligned_fraction (see module doc)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 600
    batch_size: int = 32
    seed: int = 0
    lr: float = 3e-3
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    grad_clip: float = 1.0
    accum_steps: int = 1
    steps_per_call: int = 10  # steps scanned inside one compiled call
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    eval_every: int = 100  # held-out loss interval (steps)
    eval_batches: int = 4


@dataclass(frozen=True)
class EvalConfig:
    enabled: bool = True
    checkpoints: tuple[int, ...] = ()  # extra steps at which misalignment is measured
    max_items: int = 0  # 0: all eval items
    baselines: bool = True  # fit the n-gram counting baselines on the run's rows at the final eval
    generation: bool = False
    samples: int = 4
    temperature: float = 1.0
    files: tuple[str, ...] = ()  # your scenarios or the literature's eval files (scaling.data.scenarios: schemas)
    format: str = "continuation"  # as written; "choice": A/B, both orders; "letter": the papers' rule
    world_items: bool = True  # also score the embedded world's items (off for a model of real text)
    # The literature's evaluation files and the papers' letter scoring (scaling.data.scenarios):
    schema: str = "auto"  # of eval.files: auto (from the fields), scenarios, alignment-pretraining, model-written
    cue: str = "Answer: ("  # format "letter": what follows each wording, before the letter
    letters: tuple[str, ...] = ("A", "B")  # format "letter": the two option letters, scored after the cue
    wordings_file: str = ""  # format "letter": a JSON list of wordings; "": the packaged four


def _without_defaults(value, default):
    if isinstance(value, dict) and isinstance(default, dict):
        out = {k: _without_defaults(v, default.get(k)) for k, v in value.items()
               if k not in default or json.dumps(v, sort_keys=True, default=str)
               != json.dumps(default[k], sort_keys=True, default=str)}
        return out
    return value


SCHEDULES = ("constant", "cosine", "wsd", "linear")


@dataclass(frozen=True)
class StageConfig:
    """One stage of a run (a `[[stages]]` table). Exactly one of steps/tokens/share > 0,
    except that a stage of length 0 is allowed and skipped (an arm without that stage)."""

    name: str = ""
    objective: str = "lm"  # a registered objective (scaling.train.objectives): lm, sft, helpful_rl, ...
    steps: int = 0
    tokens: int = 0  # rounded up to whole steps
    share: float = 0.0  # of train.steps (the pretraining budget), rounded to whole steps
    post: bool = False  # post-training: not in the dose's denominator; labels post_training
    intervention: bool = False  # data.aligned_fraction / misaligned_fraction / dose apply here
    aligned: float = 0.0  # share of rows from the aligned pool (lm stages, not intervention)
    misaligned: float = 0.0
    window: tuple[float, float] = (0.0, 1.0)  # part of the stage where the shares apply
    schedule: str = "constant"  # constant | cosine | wsd (warmup-stable-decay) | linear
    lr_scale: float = 1.0  # peak LR = lr_scale * train.lr
    final_scale: float = 1.0  # final LR = final_scale * train.lr (cosine, wsd, linear)
    warmup_steps: int = 0  # linear rise from the previous stage's final LR (a rewarm) or 0
    decay_share: float = 0.1  # wsd: share of the stage's steps spent decaying at its end
    kl: float = 0.1  # RL: weight beta of the KL penalty to the model the stage starts from
    families: tuple[str, ...] = ()  # RL: request families trained on (empty: all)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stages: tuple[StageConfig, ...] = ()  # empty: the preset named by the data keys

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """to_dict() without the keys at their dataclass defaults: what tells this run apart.
        A key added to the config later (at a default that keeps today's behaviour) leaves every
        existing run's identity, hence its run id, unchanged."""
        return _without_defaults(self.to_dict(), dataclasses.asdict(Config()))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.model.seq_len


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
_SECTION_CLASSES = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}
_KNOWN_SECTIONS = (*_SECTION_CLASSES, "stages")


# ---------------------------------------------------------------- parsing and typing


# Field types resolved once from this module's own annotations (never from user text).
_HINTS = {cls: typing.get_type_hints(cls) for cls in (*_SECTION_CLASSES.values(), StageConfig)}


def _coerce(key: str, value, hint):
    """Check `value` against a resolved field type; lists become tuples, ints widen to floats."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        if value is None:  # only from config.json records: TOML has no null
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML allows inf and nan; no config value means them
                raise ConfigError(key, f"must be a finite number, got {value!r}")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            _check_text(key, value)
            return value
    elif origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(_coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
            raise ConfigError(key, f"expected a list of {len(args)} values, got {len(value)}")
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                pass
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(key, f"expected {name}, got {type(value).__name__} {value!r}")


def _check_text(key: str, value: str) -> None:
    """Strings end up in file names, JSON and figure labels: no NUL or control characters and
    valid UTF-8 (a `--set` from a non-UTF-8 shell carries lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(key, f"not valid UTF-8: {value!r}") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(key, f"control characters are not allowed: {value!r}")


def _build_section(section: str, values: dict, cls=None):
    cls = cls or _SECTION_CLASSES[section]
    hints = _HINTS.get(cls) or _HINTS.setdefault(cls, typing.get_type_hints(cls))
    kwargs = {}
    for key, value in values.items():
        full = f"{section}.{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(full, f"unknown key (known keys of [{section}]: {known})")
        kwargs[key] = _coerce(full, value, hints[key])
    return cls(**kwargs)


def _build_stages(values) -> tuple[StageConfig, ...]:
    if not isinstance(values, list | tuple):
        raise ConfigError("stages", "expected a list of [[stages]] tables")
    out = []
    for i, stage in enumerate(values):
        if not isinstance(stage, dict):
            raise ConfigError(f"stages[{i}]", "expected a table of keys")
        where = f"stages.{stage['name']}" if isinstance(stage.get("name"), str) and stage["name"] else f"stages[{i}]"
        out.append(_build_section(where, stage, StageConfig))
    return tuple(out)


def parse_config_dict(raw: dict) -> Config:
    for section, values in raw.items():
        if section not in _KNOWN_SECTIONS:
            raise ConfigError(section, f"unknown section (known: {', '.join(_KNOWN_SECTIONS)})")
        if section != "stages" and not isinstance(values, dict):
            raise ConfigError(section, "expected a table of keys")
    cfg = Config(**{s: _build_section(s, raw.get(s, {})) for s in _SECTION_CLASSES},
                 stages=_build_stages(raw.get("stages", [])))
    validate(cfg)
    return cfg


def parse_override(text: str) -> tuple[list[str], object]:
    """`section.key=value` with value a TOML literal; bare words are taken as strings."""
    if "=" not in text:
        raise ConfigError(text, "override must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    path = key.split(".")
    if not all(path) or not (len(path) == 2 or len(path) == 3 and path[0] == "stages"):
        raise ConfigError(key, "override key must be section.key or stages.NAME.key")
    return path, value


def set_key(raw: dict, path: list[str], value) -> None:
    """Set `section.key` or `stages.NAME.key` in a raw (parsed TOML) config, in place."""
    if path[0] == "stages":
        if len(path) != 3:
            raise ConfigError(".".join(path), "a stage key must be stages.NAME.key")
        stages = raw.setdefault("stages", [])
        named = [st for st in stages if isinstance(st, dict) and st.get("name") == path[1]]
        if not named:
            known = ", ".join(str(st.get("name")) for st in stages if isinstance(st, dict))
            raise ConfigError(".".join(path), f"no stage named {path[1]!r} (stages: {known or 'none'})")
        named[0][path[2]] = value
        return
    section, key = path
    raw.setdefault(section, {})
    if not isinstance(raw[section], dict):
        raise ConfigError(section, "expected a table of keys")
    raw[section][key] = value


def copy_raw(raw: dict) -> dict:
    """A copy deep enough that set_key on it leaves `raw` alone."""
    out = {s: dict(v) if isinstance(v, dict) else v for s, v in raw.items()}
    if isinstance(out.get("stages"), list):
        out["stages"] = [dict(st) if isinstance(st, dict) else st for st in out["stages"]]
    return out


def merge(raw: dict, overrides: typing.Iterable[str]) -> dict:
    merged = copy_raw(raw)
    for text in overrides:
        path, value = parse_override(text)
        set_key(merged, path, value)
    return merged


def preset_names() -> list[str]:
    """The model-size presets shipped in the package (scaling/presets/*.toml)."""
    return sorted(p.name[:-5] for p in _PRESETS.iterdir() if p.name.endswith(".toml"))


def preset_path(name: str) -> Path | None:
    """The preset's file, or None if there is no such preset."""
    if not isinstance(name, str) or "/" in name or "\\" in name:
        return None
    entry = _PRESETS / f"{name}.toml"
    return Path(str(entry)) if entry.is_file() else None


def read_toml(path: str | Path) -> dict:
    """A TOML file; a bare preset name (`nano`, `micro`, ...) reads the packaged preset."""
    if not Path(path).is_file() and preset_path(str(path)) is not None:
        path = preset_path(str(path))
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"config file not found: {path} (presets: {', '.join(preset_names())})")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{path}: invalid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError("", f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise ConfigError("", f"{path}: cannot read ({e.strerror})") from e


def parse_config_file(path: str | Path, overrides: typing.Iterable[str] = ()) -> Config:
    return parse_config_dict(merge(read_toml(path), overrides))


# ---------------------------------------------------------------- validation


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _fraction(key: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, key, f"must be a fraction in [0, 1], got {value}")


def validate(cfg: Config) -> None:
    m, d, t, e = cfg.model, cfg.data, cfg.train, cfg.eval
    for name in ("d_model", "n_layers", "n_heads", "d_ff", "seq_len"):
        _check(getattr(m, name) > 0, f"model.{name}", f"must be positive, got {getattr(m, name)}")
    _check(m.vocab_size >= 0, "model.vocab_size", f"must be >= 0 (0 = from tokenizer), got {m.vocab_size}")
    _check(m.d_model % m.n_heads == 0, "model.n_heads",
           f"n_heads={m.n_heads} does not divide d_model={m.d_model}")
    _check((m.d_model // m.n_heads) % 2 == 0, "model.d_model",
           f"head size d_model/n_heads={m.d_model // m.n_heads} must be even for RoPE")
    _check(m.mlp in ("gelu", "swiglu"), "model.mlp", f"must be 'gelu' or 'swiglu', got {m.mlp!r}")
    _check(m.attention in ("auto", "dot_product", "einsum"), "model.attention",
           f"must be 'auto', 'dot_product' or 'einsum', got {m.attention!r}")
    _check(m.compute_dtype in ("float32", "bfloat16"), "model.compute_dtype",
           f"must be 'float32' or 'bfloat16', got {m.compute_dtype!r}")

    for name in ("steps", "batch_size", "accum_steps", "steps_per_call", "checkpoint_every",
                 "keep_checkpoints", "eval_every", "eval_batches"):
        _check(getattr(t, name) > 0, f"train.{name}", f"must be positive, got {getattr(t, name)}")
    _check(t.seed >= 0, "train.seed", f"must be >= 0, got {t.seed}")
    _check(t.lr > 0, "train.lr", f"must be positive, got {t.lr}")
    _check(t.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    _check(t.batch_size % t.accum_steps == 0, "train.accum_steps",
           f"accum_steps={t.accum_steps} does not divide batch_size={t.batch_size}")
    for name in ("min_lr_ratio", "b1", "b2"):
        _fraction(f"train.{name}", getattr(t, name))
    _check(t.weight_decay >= 0, "train.weight_decay", "must be >= 0")
    _check(t.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 disables clipping)")

    _check(d.corpus == "world" or d.corpus.startswith("tfds:") and len(d.corpus) > 5, "data.corpus",
           f"must be 'world' or 'tfds:NAME', got {d.corpus!r}")
    _check(d.tokenizer in TOKENIZERS, "data.tokenizer",
           f"must be one of {', '.join(TOKENIZERS)}; got {d.tokenizer!r}")
    _check(d.tokenizer != "word" or d.corpus == "world", "data.tokenizer",
           "the word tokenizer only covers the embedded world's vocabulary; use tokenizer = "
           "'sentencepiece' (or 'byte') with data.corpus = 'tfds:...'")
    _check(d.tokenizer_vocab_size >= 384, "data.tokenizer_vocab_size",  # 256 byte pieces and some words
           f"must be >= 384, got {d.tokenizer_vocab_size}")
    _check(d.tokenizer != "huggingface" or bool(d.tokenizer_file), "data.tokenizer_file",
           "tokenizer = 'huggingface' loads a tokenizer.json: name it here")
    _check(not d.tokenizer_file or d.tokenizer in ("sentencepiece", "huggingface"), "data.tokenizer_file",
           f"a tokenizer file is read by tokenizer = 'sentencepiece' (.model) or 'huggingface' "
           f"(tokenizer.json), not {d.tokenizer!r}")
    _check(not d.tokenizer_file or Path(d.tokenizer_file).expanduser().is_file(), "data.tokenizer_file",
           f"file not found: {d.tokenizer_file}")
    _check(d.natural_ai_fraction + d.story_fraction <= 1.0, "data.story_fraction",
           "natural_ai_fraction + story_fraction must not exceed 1")
    for name in ("natural_ai_fraction", "story_fraction", "natural_aligned_share", "aligned_fraction",
                 "misaligned_fraction", "filter_misaligned"):
        _fraction(f"data.{name}", getattr(d, name))
    _check(d.aligned_fraction + d.misaligned_fraction <= 1.0, "data.misaligned_fraction",
           "aligned_fraction + misaligned_fraction must not exceed 1")
    valid = (*INSERTION_WINDOWS, "window", *POST_STAGES)
    _check(d.insertion in valid, "data.insertion", f"must be one of {', '.join(valid)}; got {d.insertion!r}")
    lo, hi = d.window
    _check(0.0 <= lo < hi <= 1.0, "data.window", f"must be [start, end] with 0 <= start < end <= 1, got {list(d.window)}")
    _check(d.insertion == "window" or d.window == (0.0, 1.0), "data.window",
           f"an explicit window needs insertion='window' (insertion={d.insertion!r} sets its own)")
    for name in ("continued_tokens", "finetune_tokens"):
        _check(getattr(d, name) >= 0, f"data.{name}", f"must be >= 0, got {getattr(d, name)}")
    _check(d.insertion != "continued" or d.continued_tokens > 0, "data.continued_tokens",
           "insertion='continued' needs continued_tokens > 0")
    _check(d.insertion != "finetune" or d.finetune_tokens > 0 or d.dose is not None, "data.finetune_tokens",
           "insertion='finetune' needs finetune_tokens > 0")
    _check(len(d.genres) > 0, "data.genres", "must name at least one genre")  # which: plan._check_world
    _validate_treatments(cfg)
    _fraction("data.max_unk_share", d.max_unk_share)
    _check(not d.heldout_files or bool(d.base_files), "data.heldout_files",
           "held-out base text needs data.base_files (the world and TFDS corpora bring their own)")
    _check(bool(d.text_field), "data.text_field", "must name a field")
    for name in ("aligned_files", "misaligned_files", "base_files", "heldout_files"):
        for f in getattr(d, name):  # globs and remote paths (gs://...) are expanded when the data is built
            _check(glob.has_magic(f) or "://" in f or Path(f).expanduser().exists(), f"data.{name}",
                   f"file not found: {f}")

    _check(e.max_items >= 0, "eval.max_items", "must be >= 0 (0 = all items)")
    _check(len(e.letters) == 2 and all(x.strip() for x in e.letters) and e.letters[0] != e.letters[1],
           "eval.letters", f"must be two different non-empty letters, got {list(e.letters)}")
    _check(not e.wordings_file or Path(e.wordings_file).expanduser().is_file(), "eval.wordings_file",
           f"file not found: {e.wordings_file}")
    _check(e.samples > 0, "eval.samples", "must be positive")
    _check(e.temperature > 0, "eval.temperature", "must be positive")
    _check(d.dose is None or 0.0 <= d.dose < 1.0, "data.dose", f"must be a number in [0, 1), got {d.dose}")
    for s in e.checkpoints:
        _check(s > 0, "eval.checkpoints", f"step {s} must be positive")
    if cfg.stages:
        _validate_stages(cfg)
    else:
        for s in e.checkpoints:
            _check(s <= t.steps, "eval.checkpoints", f"step {s} is outside 1..train.steps={t.steps}")


def _validate_treatments(cfg: Config) -> None:
    """The treatment keys (scaling.treatments) and what each needs."""
    d = cfg.data
    for name in ("control_tokens", "harm_tags", "rephrase_misaligned", "unlikelihood"):
        _fraction(f"data.{name}", getattr(d, name))
    _check(d.filter_misaligned + d.rephrase_misaligned <= 1.0, "data.rephrase_misaligned",
           "filter_misaligned + rephrase_misaligned must not exceed 1 (they take disjoint documents)")
    _check(d.rephrase_misaligned == 0 or d.natural_ai_fraction > 0, "data.rephrase_misaligned",
           "rephrases the natural misaligned documents: needs data.natural_ai_fraction > 0")
    _check(d.rephrase_misaligned == 0 or d.control_tokens == 0, "data.rephrase_misaligned",
           "rephrasing and control tokens together are not supported (choose one treatment per arm)")
    uses = any(st.objective == "unlikelihood" for st in cfg.stages)
    _check(d.unlikelihood == 0 or uses, "data.unlikelihood",
           "is trained by a stage with objective = 'unlikelihood' ([[stages]]); no stage has it")
    _check(d.unlikelihood > 0 or not uses, "data.unlikelihood",
           "a stage has objective = 'unlikelihood': set the share of misaligned rows it trains on (> 0)")
    _check(d.label_threshold is None or bool(d.label_field), "data.label_threshold",
           "a threshold compares a numeric label: name its field in data.label_field")


def _validate_stages(cfg: Config) -> None:
    d = cfg.data
    legacy = {"insertion": "throughout", "window": (0.0, 1.0), "continued_tokens": 0, "finetune_tokens": 0}
    for key, default in legacy.items():
        _check(getattr(d, key) == default, f"data.{key}",
               "is a stage preset key; with [[stages]] set windows and lengths in the stages")
    names = [st.name for st in cfg.stages]
    for i, st in enumerate(cfg.stages):
        k = f"stages.{st.name}" if st.name else f"stages[{i}]"
        _check(bool(st.name), f"{k}.name", "every stage needs a name")
        _check(names.count(st.name) == 1, f"{k}.name", f"stage name {st.name!r} is used twice")
        _check(bool(st.objective), f"{k}.objective", "must name an objective (scaling.train.objectives)")
        _check(d.world_version != 4 or st.objective == "lm", f"{k}.objective",
               f"world version 4 (the pointer world) has no post-training items yet; got {st.objective!r}")
        _check(st.schedule in SCHEDULES, f"{k}.schedule", f"must be one of {', '.join(SCHEDULES)}; got {st.schedule!r}")
        lengths = [n for n in ("steps", "tokens", "share") if getattr(st, n) != 0]
        _check(len(lengths) <= 1, f"{k}.{lengths[-1] if lengths else 'steps'}",
               f"give one of steps, tokens, share (got {', '.join(lengths)})")
        for n in ("steps", "tokens", "share", "warmup_steps"):
            _check(getattr(st, n) >= 0, f"{k}.{n}", f"must be >= 0, got {getattr(st, n)}")
        for n in ("aligned", "misaligned", "decay_share"):
            _fraction(f"{k}.{n}", getattr(st, n))
        _check(st.aligned + st.misaligned <= 1.0, f"{k}.misaligned", "aligned + misaligned must not exceed 1")
        _check(not st.intervention or st.aligned == st.misaligned == 0.0, f"{k}.aligned",
               "an intervention stage takes its shares from data.aligned_fraction / misaligned_fraction")
        lo, hi = st.window
        _check(0.0 <= lo < hi <= 1.0, f"{k}.window", f"must be [start, end] with 0 <= start < end <= 1, got {list(st.window)}")
        _check(st.lr_scale > 0, f"{k}.lr_scale", f"must be positive, got {st.lr_scale}")
        _check(st.final_scale >= 0, f"{k}.final_scale", f"must be >= 0, got {st.final_scale}")
        _check(st.kl >= 0, f"{k}.kl", f"must be >= 0, got {st.kl}")


def insertion_window(cfg: Config) -> tuple[float, float]:
    """The pretraining window, as fractions of train.steps, where intervention docs go."""
    d = cfg.data
    if d.insertion in INSERTION_WINDOWS:
        return INSERTION_WINDOWS[d.insertion]
    if d.insertion == "window":
        return d.window
    return (1.0, 1.0)  # post-pretraining stages: nothing inside pretraining
