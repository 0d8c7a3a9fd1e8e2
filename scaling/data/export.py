"""The exact training rows of a run: what the model reads, rebuilt from the config (batch i
of the mixture is a pure function of config, seed and i), for the counting baselines
(scaling.baselines) and anyone who fits a model of their own on them.
"""

from __future__ import annotations

import numpy as np

from scaling.config import Config


def training_row_steps(cfg: Config, steps: int | None = None) -> np.ndarray:
    """The training step of every row `training_rows(cfg, tok, steps)` returns, in its order
    (a step's batch is train.batch_size rows), int64; no data is built."""
    from scaling import stages as staging

    staged = staging.resolve(cfg)
    steps = staging.total_steps(cfg) if steps is None else steps
    parts = [np.arange(st.step0, min(st.step1, steps)) for st in staged if st.objective == "lm" and st.step0 < steps]
    return np.repeat(np.concatenate(parts) if parts else np.zeros(0, np.int64), cfg.train.batch_size)


def training_rows(cfg: Config, tok, steps: int | None = None) -> np.ndarray:
    """Every row of the run's first `steps` steps (default: all) that the mixture feeds,
    int32 [rows, seq_len + 1]: SFT and RL stages (scaling.train.source) are left out."""
    from scaling import stages as staging
    from scaling.data.mixture import Mixture
    from scaling.treatments import strip_marks

    mixture = Mixture(cfg, tok)
    steps = mixture.total_steps if steps is None else steps
    parts = [mixture.batches(st.step0, min(st.step1, steps) - st.step0)
             for st in staging.resolve(cfg) if st.reads_mixture and st.step0 < steps]
    # the tokens the model sees: unlikelihood marks off (scaling.treatments), control tokens on
    return strip_marks(np.concatenate(parts).reshape(-1, cfg.model.seq_len + 1))
