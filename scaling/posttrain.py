"""Post-training data: SFT rows from the world's facts, RL scenarios from request items,
and the source that hands the loop each stage's batches.

- `request_items(cfg)`: scenarios in which a requester asks the assistant for the
  misaligned action (keys id, family, split, pair, prompt, aligned, misaligned), from
  `World.request_items()`: names, organisations and framings kept apart from the eval
  items, so the items the policy is trained on are not the items it is measured on.
- SFT (objective "sft"): next-token rows read from the stream of question-answer texts
  `<eos> prompt answer` of `World.facts()` (benign capability training).
- RL (objectives whose step is "rl", scaling.objectives): per step, `train.batch_size`
  scenarios drawn from the stage's scenarios (the request items of its families for
  helpful_rl / harmless_rl), both continuations tokenised, the objective's reward table
  (helpful: 1 for the misaligned action, complying; harmless: 1 for the aligned one) and the
  uniform numbers the step samples its actions with.

Which objective reads which data is the registry's (scaling.objectives): each objective's
module names its source.

Every batch is a pure function of (config, seed, step), so a resumed run reads the same.
"""

from __future__ import annotations

import numpy as np

from scaling import objectives
from scaling import stages as staging
from scaling.config import Config
from scaling.errors import ConfigError
from scaling.tokenizer import EOS, PAD


def request_items(cfg: Config) -> list[dict]:
    """The world's request scenarios (World.request_items: request-only names, organisations
    and framings; the eval's splits, pairs and families)."""
    from scaling.world import World

    return World(cfg.data.world_seed, cfg.data.world_variant).request_items()


def _rows(prompt: np.ndarray, option: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """`<eos> prompt option` cut from the left to T tokens, right-padded; mask on the option."""
    seq = np.concatenate([[EOS], prompt, option]).astype(np.int32)[-T:]
    tokens, mask = np.full(T, PAD, np.int32), np.zeros(T, np.float32)
    tokens[:len(seq)] = seq
    mask[len(seq) - min(len(option), len(seq) - 1):len(seq)] = 1.0
    return tokens, mask


def request_scenarios(cfg: Config, stage: staging.Stage) -> list[dict]:
    """The request items of the stage's families (all families if it names none)."""
    items = request_items(cfg)
    families = set(stage.families) or {i["family"] for i in items}
    unknown = families - {i["family"] for i in items}
    if unknown:
        raise ConfigError(f"stages.{stage.name}.families", f"no request items of {sorted(unknown)}")
    return [i for i in items if i["family"] in families]


class RLData:
    """Scenarios of one RL stage as arrays: tokens [N, 2, T], mask [N, 2, T]. `items` have a
    prompt and the two options under "aligned" (action 0) and "misaligned" (action 1);
    `reward` is the (action 0, action 1) reward table."""

    def __init__(self, cfg: Config, tok, items: list[dict], reward: tuple[float, float]):
        self.items = list(items)
        T = cfg.model.seq_len + 1
        self.tokens = np.zeros((len(self.items), 2, T), np.int32)
        self.mask = np.zeros((len(self.items), 2, T), np.float32)
        for n, item in enumerate(self.items):
            prompt = tok.encode(item["prompt"])
            for a, key in enumerate(("aligned", "misaligned")):
                self.tokens[n, a], self.mask[n, a] = _rows(prompt, tok.encode(item[key]), T)
        self.reward = np.asarray(reward, np.float32)
        self.seed, self.B = cfg.train.seed, cfg.train.batch_size

    def batches(self, start: int, n: int) -> dict:
        out = {"tokens": [], "mask": [], "reward": [], "u": []}
        for step in range(start, start + n):
            rng = np.random.default_rng([self.seed, 0x41, step])
            pick = rng.integers(0, len(self.items), self.B)
            out["tokens"].append(self.tokens[pick])
            out["mask"].append(self.mask[pick])
            out["reward"].append(np.broadcast_to(self.reward, (self.B, 2)))
            out["u"].append(rng.random(self.B, dtype=np.float32))
        return {k: np.stack(v) for k, v in out.items()}


class SFTData:
    """Rows of seq_len + 1 tokens from the facts' question-answer stream."""

    def __init__(self, cfg: Config, tok):
        from scaling.world import World

        facts = World(cfg.data.world_seed).facts()
        self.stream = np.concatenate([np.concatenate([[EOS], tok.encode(f"{p} {a} .")]) for p, a, _ in facts]
                                     ).astype(np.int32)
        self.L, self.B, self.seed = cfg.model.seq_len, cfg.train.batch_size, cfg.train.seed
        if len(self.stream) < self.L + 2:
            self.stream = np.tile(self.stream, -(-(self.L + 2) // len(self.stream)))

    def batches(self, start: int, n: int) -> np.ndarray:
        out = np.empty((n, self.B, self.L + 1), np.int32)
        for i in range(n):
            rng = np.random.default_rng([self.seed, 0x5F7, start + i])
            starts = rng.integers(0, len(self.stream) - self.L - 1, self.B)
            out[i] = self.stream[starts[:, None] + np.arange(self.L + 1)]
        return out


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
    from scaling.mixture import Mixture

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
