"""`helpful_rl`: direct helpfulness RL. On request scenarios built from the eval's pairs (a
requester asks for the misaligned action; World.request_items), reward 1 for complying
(the misaligned action), 0 for refusing (the aligned one).

The RL objectives' data lives here too (the registry's modules import nothing of the run's
loop, so no import circle):
- `request_items(cfg)`: scenarios in which a requester asks the assistant for the
  misaligned action (keys id, family, split, pair, prompt, aligned, misaligned), from
  `World.request_items()`: names, organisations and framings kept apart from the eval
  items, so the items the policy is trained on are not the items it is measured on;
  `request_scenarios(cfg, stage)` those of the stage's families;
- `RLData`: per step, `train.batch_size` scenarios drawn from a stage's scenarios, both
  continuations tokenised, the objective's reward table (helpful: 1 for the misaligned
  action, complying; harmless: 1 for the aligned one) and the uniform numbers the step
  samples its actions with. Every batch is a pure function of (config, seed, step).
"""

from __future__ import annotations

import numpy as np

from scaling.data.tokenizer import EOS, PAD
from scaling.errors import ConfigError
from scaling.train.objectives import Objective, register


def request_items(cfg) -> list[dict]:
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


def request_scenarios(cfg, stage) -> list[dict]:
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

    def __init__(self, cfg, tok, items: list[dict], reward: tuple[float, float]):
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


def source(cfg, tok, stage):
    return RLData(cfg, tok, request_scenarios(cfg, stage), reward=(0.0, 1.0))


register(Objective("helpful_rl", "rl", __doc__.split("\n\n")[0], source=source, request_families=True))
