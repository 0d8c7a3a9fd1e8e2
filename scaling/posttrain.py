"""Post-training: the source that hands the loop each stage's batches.

Each objective's data lives in its module of scaling.objectives (the registry): SFT rows
(`objectives.sft.SFTData`), RL scenarios as batches and the world's request scenarios
(`objectives.helpful_rl`: `RLData`, `request_items`, `request_scenarios`). This module
joins them into the run's batch source (`make_source`) and names the request families a
run's RL stages train on (`rl_families`).

Every batch is a pure function of (config, seed, step), so a resumed run reads the same.
"""

from __future__ import annotations

from scaling import objectives
from scaling import stages as staging
from scaling.config import Config
from scaling.objectives.helpful_rl import request_items


class StagedSource:
    """The BatchSource of a run with SFT or RL stages: LM stages read the mixture, others
    their own data; held-out batches and accounting are the mixture's."""

    def __init__(self, cfg: Config, tok, mixture):
        self.mixture, self.stages = mixture, staging.resolve(cfg)
        self.total_steps = self.stages[-1].step1
        self.data = {}
        for k, st in enumerate(self.stages):
            objective = objectives.get(st.objective)
            if objective.source is not None:
                self.data[k] = objective.source(cfg, tok, st)

    def batches(self, start: int, n: int):
        k = staging.stage_at(self.stages, start)
        if start + n > self.stages[k].step1:
            raise ValueError(f"steps {start}..{start + n} cross the end of stage {self.stages[k].name!r}")
        if k in self.data:
            return self.data[k].batches(start, n)
        return self.mixture.batches(start, n)

    def heldout_batches(self, n: int):
        return self.mixture.heldout_batches(n)

    def accounting(self, steps_done: int) -> dict:
        return self.mixture.accounting(steps_done)


def make_source(cfg: Config, tok, mixture=None):
    """The run's BatchSource: the mixture (built if not given) alone if every stage is LM."""
    from scaling.data.mixture import Mixture

    mixture = mixture or Mixture(cfg, tok)
    if all(objectives.get(st.objective).source is None for st in staging.resolve(cfg)):
        return mixture
    return StagedSource(cfg, tok, mixture)


def rl_families(cfg: Config) -> list[str]:
    """Request families the run's RL stages train on (all request families if a stage names
    none); RL objectives on other scenarios (request_families false) add none."""
    out = set()
    for st in staging.resolve(cfg):
        if objectives.get(st.objective).request_families:
            out |= set(st.families) or {i["family"] for i in request_items(cfg)}
    return sorted(out)
