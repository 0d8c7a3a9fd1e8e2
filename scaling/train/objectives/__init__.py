"""Training objectives as a registry: one module of this package per objective.

A stage's `objective` (scaling.config.StageConfig) names an `Objective` registered here. Each
module of this package registers one at import (`register(Objective(...))`); `get(name)`
imports every module of the package the first time it is asked, so adding an objective is
one file here (plus its test) and nothing else:

- `step`: which compiled step trains the stage: "lm" (next-token loss on rows
  [B, seq_len + 1], the pretraining step) or "rl" (scaling.train.steps: REINFORCE on two-option
  scenarios, with the model the stage starts from as the KL reference);
- `source(cfg, tok, stage)`: the stage's own batch source (`.batches(start, n)`, a pure
  function of config, seed and step), or None: the stage reads the run's mixture (scaling.data.mixture);
- `loss(graphdef, params, tokens)`: an "lm" step's own loss on the rows (None: next-token
  cross-entropy, scaling.train.steps.loss_fn); an objective with a loss may read the mixture
  (`unlikelihood`: rows marked by scaling.treatments);
- `request_families`: the stage trains on the world's request families (`stages.NAME.families`
  chooses them; results.csv then splits the eval into rl_trained / rl_other rows);
- `check(cfg, stage, key)`: checks that need the World or the stages (raise ConfigError
  naming `key`); run by scaling.plan, above the ground floor.

scaling.config stays the ground floor: it knows objectives only as strings; scaling.plan checks
them against this registry.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from dataclasses import dataclass

from scaling.errors import ConfigError

STEPS = ("lm", "rl")


@dataclass(frozen=True)
class Objective:
    name: str
    step: str  # "lm" | "rl" (module doc)
    doc: str = ""
    source: typing.Callable | None = None  # (cfg, tok, stage) -> batch source; None: the mixture
    request_families: bool = False
    check: typing.Callable | None = None  # (cfg, stage_config, key) -> None
    loss: typing.Callable | None = None  # (graphdef, params, tokens_BxL1) -> scalar; None: cross-entropy

    @property
    def rl(self) -> bool:
        return self.step == "rl"


_REGISTRY: dict[str, Objective] = {}
_loaded = False


def register(objective: Objective) -> Objective:
    if objective.step not in STEPS:
        raise ValueError(f"objective {objective.name!r}: step must be one of {STEPS}, got {objective.step!r}")
    if objective.name in _REGISTRY and _REGISTRY[objective.name] != objective:
        raise ValueError(f"objective {objective.name!r} is registered twice")
    if objective.source is None and objective.name != "lm" and objective.loss is None:
        raise ValueError(f"objective {objective.name!r}: only 'lm' and objectives with their own loss "
                         "read the mixture; give a source")
    _REGISTRY[objective.name] = objective
    return objective


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{module}")
    _loaded = True


def names() -> tuple[str, ...]:
    """Registered objective names, "lm" first."""
    _load()
    return tuple(sorted(_REGISTRY, key=lambda n: (n != "lm", n)))


def get(name: str, key: str = "objective") -> Objective:
    _load()
    if name not in _REGISTRY:
        raise ConfigError(key, f"must be one of {', '.join(names())}; got {name!r}")
    return _REGISTRY[name]


def is_rl(name: str) -> bool:
    return get(name).rl


def reads_mixture(name: str) -> bool:
    """Whether a stage of this objective reads the run's mixture (False for unknown names,
    which scaling.plan reports)."""
    _load()
    objective = _REGISTRY.get(name)
    return objective is not None and objective.source is None
