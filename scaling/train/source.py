"""The run's batch source: the mixture, and each post-training stage's own data.

Each objective's data lives in its module of scaling.train.objectives (the registry): SFT
rows (`objectives.sft.SFTData`), RL scenarios as batches and the world's request scenarios
(`objectives.helpful_rl`: `RLData`, `request_items`, `request_scenarios`). This module
joins them into the run's batch source (`make_source`) and names the request families a
run's RL stages train on (`rl_families`).

Every batch is a pure function of (plan, seed, step), so a resumed run reads the same.
"""

from __future__ import annotations

from scaling import plan as planning
from scaling import stages as staging
from scaling.config import Config
from scaling.plan import RunPlan


class StagedSource:
    """The BatchSource of a run with SFT or RL stages: LM stages read the mixture, others
    their own data; held-out batches and accounting are the mixture's."""

    def __init__(self, plan: RunPlan, tok, mixture):
        self.mixture, self.stages = mixture, plan.stages
        self.total_steps = plan.total_steps
        self.data = {}
        for k, (st, objective) in enumerate(zip(plan.stages, plan.objectives)):
            if objective.source is not None:
                self.data[k] = objective.source(plan.config, tok, st)

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


def make_source(plan: RunPlan | Config, tok, mixture=None):
    """The run's BatchSource: the mixture (built if not given) alone if every stage is LM."""
    from scaling.data.mixture import Mixture

    plan = planning.of(plan)
    mixture = mixture or Mixture(plan.config, tok)
    if all(objective.source is None for objective in plan.objectives):
        return mixture
    return StagedSource(plan, tok, mixture)


def rl_families(plan: RunPlan | Config) -> list[str]:
    """Request families the run's RL stages train on (all request families if a stage names
    none); RL objectives on other scenarios (request_families false) add none."""
    from scaling.train.objectives.helpful_rl import request_items

    plan, out = planning.of(plan), set()
    for st, objective in zip(plan.stages, plan.objectives):
        if objective.request_families:
            out |= set(st.families) or {i["family"] for i in request_items(plan.config)}
    return sorted(out)
