"""What a run resolves to: `resolve(cfg)` turns a parsed config into a frozen `RunPlan`, once.

scaling.config parses and checks what needs no domain module (types, ranges, keys); the checks
that need the stages' step arithmetic, the World, its request families or the registry of
objectives (scaling.train.objectives) live here, above it,
and so does `data.dose`, which becomes the intervention stages' aligned_fraction
(scaling.stages.resolve_dose).

The plan is what every consumer of a run reads instead of re-deriving it from the config:
its stages in absolute steps with their objectives, the dose, the tokenizer spec and the
vocabulary size, the world spec (version and data version), the `pack_key` (runs that share
one compiled program) and the `trunk_key` (runs that share their pretraining). The sweep
launcher groups and orders runs by these keys; the training loop takes the plan's stages.

`config_from_dict(raw)` and `load_config(path, overrides)` give a config ready to run
(parsed, checked, its dose resolved) to callers that need no more; `plan_from_dict(raw)` and
`load_plan(path, overrides)` keep the plan.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path

from scaling import config as parsing
from scaling import stages as staging
from scaling.config import Config, ConfigError

# What a run's tokenizer is built from (scaling.data.vocab.build_tokenizer: the base tokenizer,
# its training texts, then the treatments' control tokens): runs equal in these share one.
TOKENIZER_KEYS = ("tokenizer", "tokenizer_file", "tokenizer_vocab_size", "base_files", "aligned_files",
                  "misaligned_files", "text_field", "corpus", "world_seed", "world_version", "data_dir")


@dataclass(frozen=True)
class WorldSpec:
    """The embedded world a run reads: seed, variant, version and the data version its pools
    are generated at ("" when the base text is your own corpus)."""

    seed: int
    variant: str
    version: int
    data_version: str


@dataclass(frozen=True)
class RunPlan:
    """A checked config with its dose resolved, and everything derived from it once."""

    config: Config
    stages: tuple[staging.Stage, ...]

    @property
    def total_steps(self) -> int:
        return self.stages[-1].step1

    @property
    def objectives(self) -> tuple:
        """Each stage's objective (scaling.train.objectives.Objective), in stage order."""
        from scaling.train import objectives

        return tuple(objectives.get(st.objective) for st in self.stages)

    @property
    def dose(self) -> float | None:
        """data.dose as given (None: the intervention stages' aligned_fraction is the config's)."""
        return self.config.data.dose

    @property
    def tokenizer_spec(self) -> str:
        """What the run's tokenizer is built from (TOKENIZER_KEYS and the treatments' control
        words), as canonical JSON: runs with equal specs have the same tokenizer."""
        from scaling import treatments

        d = self.config.data
        return json.dumps([[getattr(d, k) for k in TOKENIZER_KEYS], treatments.controls(self.config)], default=list)

    @functools.cached_property
    def vocab_size(self) -> int:
        """model.vocab_size, or the tokenizer's when it is 0 (built here: cheap for the word and
        byte tokenizers, a SentencePiece model is cached on disk by its training sample)."""
        from scaling.data.vocab import build_tokenizer

        return self.config.model.vocab_size or build_tokenizer(self.config).vocab_size

    @property
    def world(self) -> WorldSpec:
        from scaling.data.datasets import data_version

        d = self.config.data
        own = d.corpus != "world" or bool(d.base_files)
        return WorldSpec(d.world_seed, d.world_variant, d.world_version, "" if own else data_version(d.world_version))

    def with_tokenizer(self, tok) -> RunPlan:
        """The plan with `model.vocab_size` filled from the run's tokenizer (`with_tokenizer`)."""
        cfg = with_tokenizer(self.config, tok)
        return self if cfg is self.config else RunPlan(cfg, self.stages)

    @property
    def pack_key(self) -> str:
        """Runs with equal keys share one compiled program: same shapes and optimiser schedule;
        they may differ in seed and in everything about their data."""
        cfg = self.config
        model = dataclasses.replace(cfg.model, vocab_size=self.vocab_size)
        train = dataclasses.replace(cfg.train, seed=0)
        stages = [dataclasses.asdict(st) for st in staging.program_stages(cfg)]
        return json.dumps([dataclasses.asdict(model), dataclasses.asdict(train), self.total_steps, stages],
                          sort_keys=True)

    @property
    def branch_step(self) -> int:
        """The first step of the run's first post stage; 0 when the run cannot share its
        pretraining (no post stage, post-training from step 0, or an eval checkpoint before
        that step, whose evaluation would need the trunk's intermediate models)."""
        b = next((st.step0 for st in self.stages if st.post), 0)
        if b == 0 or any(s < b for s in self.config.eval.checkpoints):
            return 0
        return b

    @property
    def trunk_key(self) -> str | None:
        """Runs with equal keys have the same first `branch_step` steps as far as their config
        and input files show (scaling.branches adds the pack width, the JAX version and a
        fingerprint of the batches before sharing a state); None when the run cannot branch."""
        b = self.branch_step
        if not b:
            return None
        from scaling import inputs

        record = {"config": self.prefix_record(b), "branch_step": b,
                  "inputs": [[d["key"], d["sha256"]] for d in inputs.digests(self.config)]}
        return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()
                              ).hexdigest()[:16]

    def prefix_record(self, b: int) -> dict:
        """The config as far as the first b steps depend on it (the eval section removed:
        evaluation never changes training; the stages from step b on removed)."""
        cfg = self.config
        record = cfg.to_dict()
        record.pop("eval", None)
        kept, step = [], 0
        for st, raw in zip(staging.stage_configs(cfg), record.get("stages") or ()):
            if step >= b:
                break
            kept.append(raw)
            step += staging.length(cfg, st)
        record["stages"] = kept
        return record


def with_tokenizer(cfg: Config, tok) -> Config:
    """`cfg` with `model.vocab_size` filled from the run's tokenizer (0 means "from tokenizer"):
    a trained SentencePiece model may have fewer pieces than data.tokenizer_vocab_size
    (scaling.run.vocab_notes)."""
    if cfg.model.vocab_size == 0:
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=tok.vocab_size))
    if cfg.model.vocab_size < tok.vocab_size:
        raise ConfigError("model.vocab_size", f"{cfg.model.vocab_size} is smaller than the tokenizer's {tok.vocab_size}")
    return cfg


def resolve(cfg: Config) -> RunPlan:
    """Check `cfg` against the stages and the World, resolve its dose, check again (a dose
    changes aligned_fraction, which the checks read), and return the plan."""
    check(cfg)
    cfg = staging.resolve_dose(cfg)
    parsing.validate(cfg)
    check(cfg)
    return RunPlan(cfg, staging.resolve(cfg))


def of(plan: RunPlan | Config) -> RunPlan:
    """The plan of a config that is already checked and dose-resolved (config_from_dict's,
    load_config's, a run directory's): its stages resolved, the checks not run again. A plan
    is returned as it is, so a function can take either."""
    return plan if isinstance(plan, RunPlan) else RunPlan(plan, staging.resolve(plan))


def plan_from_dict(raw: dict) -> RunPlan:
    """A raw (parsed TOML or config.json) config, parsed, checked, dose-resolved and planned."""
    return resolve(parsing.parse_config_dict(raw))


def config_from_dict(raw: dict) -> Config:
    """A raw (parsed TOML or config.json) config, parsed, checked and dose-resolved."""
    return plan_from_dict(raw).config


def load_plan(path: str | Path, overrides: typing.Iterable[str] = ()) -> RunPlan:
    return resolve(parsing.parse_config_file(path, overrides))


def load_config(path: str | Path, overrides: typing.Iterable[str] = ()) -> Config:
    return load_plan(path, overrides).config


# ---------------------------------------------------------------- checks


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def check(cfg: Config) -> None:
    """The checks of a parsed config that need the World or the stages' step arithmetic."""
    _check_world(cfg)
    _check_story_rows(cfg)
    _check_scenarios(cfg.eval)
    _check_letters(cfg)
    if cfg.stages:
        _check_stages(cfg)


def _check_world(cfg: Config) -> None:
    """The world's vocabularies (scaling.world): its variants, versions and genres."""
    from scaling.world import VERSIONS
    from scaling.world.lexicon import EXTRA_GENRES, GENRES, VARIANTS

    d = cfg.data
    _check(d.world_variant in VARIANTS, "data.world_variant",
           f"must be one of {', '.join(VARIANTS)}; got {d.world_variant!r}")
    _check(d.world_version in VERSIONS, "data.world_version",
           f"must be {', '.join(map(str, VERSIONS[:-1]))} or {VERSIONS[-1]}; got {d.world_version!r}")
    _check(d.world_version != 4 or d.world_variant == "normal", "data.world_variant",
           f"world version 4 (pointer) has only the normal variant; got {d.world_variant!r}")
    for g in d.genres:
        _check(g in GENRES + EXTRA_GENRES, "data.genres",
               f"unknown genre {g!r} (known: {', '.join(GENRES + EXTRA_GENRES)})")


def _check_scenarios(e) -> None:
    from scaling.data import scenarios
    from scaling.splits import SPLITS

    _check(e.format in scenarios.FORMATS, "eval.format",
           f"must be one of {', '.join(scenarios.FORMATS)}; got {e.format!r}")
    _check(e.world_items or bool(e.files), "eval.world_items",
           "with eval.world_items = false, eval.files must name your scenarios (nothing to evaluate)")
    if not e.files:
        return
    _check(e.schema in ("auto", *scenarios.SCHEMAS), "eval.schema",
           f"must be auto or one of {', '.join(scenarios.SCHEMAS)}; got {e.schema!r}")
    names = scenarios.split_names(e)  # reads and checks every record (and the letter wordings)
    clash = sorted(set(names) & set(SPLITS)) if e.world_items else []
    _check(not clash, "eval.files", f"split {clash[0] if clash else ''!r} is a split of the world's items; "
           "name your splits otherwise, or set eval.world_items = false")


def _check_letters(cfg: Config) -> None:
    """The letter format under the word tokenizer: its letters and cue must be words of the
    world (any other word encodes as <unk>, so two unknown letters would tie on every item)."""
    e, d = cfg.eval, cfg.data
    if e.format != "letter" or d.tokenizer != "word":
        return
    from scaling.world import make_world

    vocabulary = set(make_world(d.world_seed, version=d.world_version).vocabulary())
    for key, words in (("eval.letters", [w for x in e.letters for w in x.split()]), ("eval.cue", e.cue.split())):
        unknown = [w for w in words if w not in vocabulary]
        _check(not unknown, key, f"{unknown[0] if unknown else ''!r} is not a word of the word tokenizer's "
               "vocabulary (the embedded world's words; any other word encodes as <unk>): use data.tokenizer "
               "= 'byte' or 'sentencepiece', or world words, e.g. eval.letters = [\"two\", \"three\"] and "
               "eval.cue = \"answer :\"")


def _check_story_rows(cfg: Config) -> None:
    d, m = cfg.data, cfg.model
    if d.story_fraction <= 0 or d.tokenizer not in ("word", "byte"):  # subword lengths: checked at build
        return
    from scaling.world import story_form  # the World, only when stories are in the mix

    need = story_form(d.world_version).max_length("token" if d.tokenizer == "word" else "byte")
    _check(m.seq_len + 1 >= need, "model.seq_len",
           f"human-story units need rows of up to {need} {d.tokenizer} tokens (seq_len + 1); "
           f"got seq_len={m.seq_len}: raise model.seq_len or set data.story_fraction = 0")


def _check_objectives(cfg: Config) -> None:
    """Each stage's objective against the registry (scaling.train.objectives), then its own checks."""
    from scaling.train import objectives

    for i, st in enumerate(cfg.stages):
        k = f"stages.{st.name}" if st.name else f"stages[{i}]"
        objective = objectives.get(st.objective, f"{k}.objective")
        _check(objective.source is None or not (st.intervention or st.aligned or st.misaligned), f"{k}.objective",
               f"a {st.objective} stage reads no pools: leave aligned, misaligned, intervention unset")
        _check(objective.request_families or not st.families, f"{k}.families",
               "only RL stages on request scenarios choose request families")
        _check(objectives.reads_mixture(st.objective) or st.post, f"{k}.post", f"a {st.objective} stage is post-training: set post = true")
        if objective.check is not None:
            objective.check(cfg, st, k)


def _check_stages(cfg: Config) -> None:
    d = cfg.data
    _check_objectives(cfg)
    staged = staging.resolve(cfg)
    _check(len(staged) > 0, "stages", "every stage has length 0: nothing to train")
    total = staged[-1].step1
    for s in cfg.eval.checkpoints:
        _check(s <= total, "eval.checkpoints", f"step {s} is outside 1..{total} (the run's steps)")
    if any(st.families for st in cfg.stages):
        # the world's request families
        from scaling.train.objectives.helpful_rl import request_items

        known = {i["family"] for i in request_items(cfg)}
        for st in cfg.stages:
            bad = sorted(set(st.families) - known)
            _check(not bad, f"stages.{st.name}.families",
                   f"no request items of {', '.join(bad)} (known: {', '.join(sorted(known))})")
    _check(d.aligned_fraction == d.misaligned_fraction == 0.0 or any(st.intervention for st in cfg.stages),
           "data.aligned_fraction", "no stage has intervention = true to take it")
