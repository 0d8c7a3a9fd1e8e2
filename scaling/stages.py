"""Stages as data: a run is a list of stages; this module turns them into step ranges.

A `[[stages]]` table (scaling.config.StageConfig) gives a stage's length, the shares of the
intervention pools in its rows, its learning-rate schedule (scaling.train.schedules) and its
objective. `resolve(cfg)` returns the run's stages with absolute step ranges; stages of
length 0 are dropped, so a sweep can switch a stage off by setting its length to 0.

Without `[[stages]]`, `presets(cfg)` derives the stages from the legacy data keys, and the
resulting batches and learning rates equal those of the code before stages existed:

  pretrain   train.steps steps, cosine from 0 up to train.lr (train.warmup_steps) and down
             to train.lr * min_lr_ratio; the intervention window is data.insertion's
             (throughout [0, 1], early [0, 0.1], midtraining [0.9, 1], window data.window)
  continued  data.continued_tokens, constant at the final pretraining LR; the intervention
             stage when insertion = "continued", else base text (the equal-compute control)
  finetune   data.finetune_tokens, constant at the final LR; intervention documents only,
             aligned : misaligned = aligned_fraction : misaligned_fraction, if insertion =
             "finetune" (else base text)

The dose of a run is aligned tokens / tokens of the stages that are not `post` (post-training
changes the model after the dose was given; it must not change the dose). `data.dose` sets
the intervention stages' `aligned_fraction` to dose * those tokens / intervention-window
tokens, exact at any share (rows are assigned by stochastic rounding, scaling.data.mixture).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from scaling.config import INSERTION_WINDOWS, Config, StageConfig
from scaling.errors import ConfigError
from scaling.train import objectives


@dataclass(frozen=True)
class Stage:
    """A resolved stage: absolute steps [step0, step1), its intervention window
    [w0, w1) in absolute steps, the shares of its rows inside that window, and its LR
    schedule in absolute learning rates."""

    name: str
    objective: str
    step0: int
    step1: int
    w0: int
    w1: int
    aligned: float
    misaligned: float
    post: bool
    intervention: bool
    schedule: str
    peak_lr: float
    final_lr: float
    warmup_steps: int
    decay_share: float
    kl: float
    families: tuple[str, ...]
    reads_mixture: bool = True  # its objective reads the run's mixture (scaling.train.objectives)

    @property
    def steps(self) -> int:
        return self.step1 - self.step0


def presets(cfg: Config) -> tuple[StageConfig, ...]:
    """The stages the legacy data keys describe (see the module doc)."""
    d, t = cfg.data, cfg.train
    insertion = d.insertion
    window = INSERTION_WINDOWS.get(insertion, d.window if insertion == "window" else (0.0, 1.0))
    a, m = d.aligned_fraction, d.misaligned_fraction
    ft = (a / (a + m), m / (a + m)) if insertion == "finetune" and a + m > 0 else (0.0, 0.0)
    constant = {"schedule": "constant", "lr_scale": t.min_lr_ratio}
    return (
        StageConfig(name="pretrain", steps=t.steps, window=window,
                    intervention=insertion in (*INSERTION_WINDOWS, "window"),
                    schedule="cosine", lr_scale=1.0, final_scale=t.min_lr_ratio,
                    warmup_steps=min(t.warmup_steps, max(t.steps - 1, 0))),
        StageConfig(name="continued", tokens=d.continued_tokens, intervention=insertion == "continued", **constant),
        StageConfig(name="finetune", tokens=d.finetune_tokens, aligned=ft[0], misaligned=ft[1], **constant),
    )


def stage_configs(cfg: Config) -> tuple[StageConfig, ...]:
    return cfg.stages or presets(cfg)


def length(cfg: Config, st: StageConfig) -> int:
    if st.steps:
        return st.steps
    if st.tokens:
        return math.ceil(st.tokens / cfg.tokens_per_step)
    return round(st.share * cfg.train.steps)


def resolve(cfg: Config) -> tuple[Stage, ...]:
    """The run's stages in order with absolute step ranges; zero-length stages dropped."""
    d, out, step = cfg.data, [], 0
    for st in stage_configs(cfg):
        n = length(cfg, st)
        if n == 0:
            continue
        lo, hi = st.window
        a, m = (d.aligned_fraction, d.misaligned_fraction) if st.intervention else (st.aligned, st.misaligned)
        out.append(Stage(st.name, st.objective, step, step + n, step + round(lo * n), step + round(hi * n),
                         a, m, st.post or not objectives.reads_mixture(st.objective), st.intervention, st.schedule,
                         st.lr_scale * cfg.train.lr, st.final_scale * cfg.train.lr, st.warmup_steps,
                         st.decay_share, st.kl, st.families, objectives.reads_mixture(st.objective)))
        step += n
    return tuple(out)


def total_steps(cfg: Config) -> int:
    staged = resolve(cfg)
    return staged[-1].step1 if staged else 0


def stage_at(stages: tuple[Stage, ...], step: int) -> int:
    """Index of the stage that trains step `step` (0-based: step s runs in the stage with
    step0 <= s < step1)."""
    for i, st in enumerate(stages):
        if st.step0 <= step < st.step1:
            return i
    raise ValueError(f"step {step} is outside the run's stages")


def dose_steps(stages: tuple[Stage, ...]) -> int:
    """Steps in the dose's denominator: every stage that is not post-training."""
    return sum(st.steps for st in stages if not st.post)


def intervention_steps(stages: tuple[Stage, ...]) -> int:
    return sum(st.w1 - st.w0 for st in stages if st.intervention)


def fraction_for_dose(cfg: Config, dose: float) -> float:
    """The aligned_fraction that gives a run of this config the global `dose` (may exceed 1,
    which config validation then rejects: the window is too small for that dose)."""
    if not cfg.stages and cfg.data.insertion == "finetune":
        raise ConfigError("data.insertion", "the finetune stage is all intervention: set its dose "
                          "with data.finetune_tokens, not aligned_fraction")
    staged = resolve(cfg)
    inside = intervention_steps(staged)
    if inside == 0:
        raise ConfigError("data.dose", "no intervention window to put the dose in")
    return dose * dose_steps(staged) / inside


def resolve_dose(cfg: Config) -> Config:
    """Turn `data.dose` into aligned_fraction (or, for the legacy finetune preset, into the
    finetune stage's length, whole steps as before). An explicit aligned_fraction (or
    finetune_tokens) must be 0 or the value the dose gives (as in a stored config.json)."""
    d = cfg.data
    if d.dose is None:
        return cfg
    if not cfg.stages and d.insertion == "finetune":
        pre_tokens = cfg.train.steps * cfg.tokens_per_step
        tokens = math.ceil(d.dose * pre_tokens / (1 - d.dose))
        fraction = 1.0 if d.dose > 0 else 0.0
        if d.finetune_tokens not in (0, tokens):
            raise ConfigError("data.finetune_tokens", f"data.dose={d.dose} sets it to {tokens}; give one of the two")
        updates = {"finetune_tokens": tokens, "aligned_fraction": fraction}
    else:
        fraction = fraction_for_dose(cfg, d.dose)
        if not 0 <= fraction <= 1:
            raise ConfigError("data.dose", f"dose {d.dose} needs aligned_fraction {fraction:.3g} > 1 "
                              f"in the intervention window")
        updates = {"aligned_fraction": fraction}
    if d.aligned_fraction not in (0.0, fraction):
        raise ConfigError("data.dose", f"sets aligned_fraction to {fraction:.6g}, but aligned_fraction = "
                          f"{d.aligned_fraction} was given too; give one of the two")
    return dataclasses.replace(cfg, data=dataclasses.replace(d, **updates))


def program_stages(cfg: Config) -> tuple[StageConfig, ...]:
    """What the compiled programs depend on: each stage's length in steps, objective,
    schedule and RL settings, not its data. Runs with equal program stages (and model and
    train settings) share one compiled program."""
    keep = ("name", "objective", "post", "schedule", "lr_scale", "final_scale", "warmup_steps",
            "decay_share", "kl")
    return tuple(StageConfig(**{k: getattr(st, k) for k in keep}, steps=length(cfg, st))
                 for st in stage_configs(cfg) if length(cfg, st) > 0)


def post_training(cfg: Config) -> str:
    """The post-training label of a run (results.csv `post_training`): `none`, or the
    objective of its post stages (`sft`, `helpful_rl`, `harmless_rl`), `misaligned_ft` for
    a post LM stage with misaligned documents, `aligned_ft` with aligned ones, `lm_ft`
    otherwise; several post stages are joined by "+"."""
    labels = []
    for st in resolve(cfg):
        if not st.post:
            continue
        if st.objective != "lm":
            labels.append(st.objective)
        else:
            labels.append("misaligned_ft" if st.misaligned > 0 else "aligned_ft" if st.aligned > 0 else "lm_ft")
    return "+".join(labels) or "none"
