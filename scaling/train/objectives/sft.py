"""`sft`: next-token prediction on the world's fact questions and their answers (benign
capability training): `SFTData` reads rows from the stream of question-answer texts
`<eos> prompt answer` of `World.facts()`, a pure function of (config, seed, step)."""

from __future__ import annotations

import numpy as np

from scaling.data.tokenizer import EOS
from scaling.train.objectives import Objective, register


class SFTData:
    """Rows of seq_len + 1 tokens from the facts' question-answer stream."""

    def __init__(self, cfg, tok):
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


def source(cfg, tok, stage):
    return SFTData(cfg, tok)


register(Objective("sft", "lm", __doc__.split(":")[0], source=source))
