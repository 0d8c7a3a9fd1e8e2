"""`unlikelihood`: next-token training on the run's mixture in which the marked targets are
pushed down (Welleck et al. 2019; Korbak et al. 2023's unlikelihood objective). In a share
`data.unlikelihood` of the rows of the misaligned pools, scaling.treatments marks the
misaligned action verbs (every text token of your own files' documents); a marked target t
costs -log(1 - p(t)) instead of -log p(t). Every other target is ordinary cross-entropy, so a
stage of this objective with data.unlikelihood on no rows would be an `lm` stage."""

import jax.numpy as jnp
import optax
from flax import nnx

from scaling.errors import ConfigError
from scaling.train.objectives import Objective, register

MIN_COMPLEMENT = 1e-6  # 1 - p(t) is floored here: a certain token costs -log 1e-6, not infinity


def split_marks(tokens_BxL1):
    """(tokens without marks, mask of the marked ones)."""
    from scaling.data.tokenizer import UL_MARK

    marked = tokens_BxL1 >= UL_MARK
    return jnp.where(marked, tokens_BxL1 - UL_MARK, tokens_BxL1), marked


def target_logprobs(graphdef, params, tokens_BxL1):
    """(log p of every target, marked-target mask, non-pad mask), each [B, L]."""
    from scaling.data.tokenizer import PAD

    tokens, marked = split_marks(tokens_BxL1)
    logits_BxLxV = nnx.merge(graphdef, params)(tokens[:, :-1])
    targets_BxL = tokens[:, 1:]
    logp_BxL = -optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
    return logp_BxL, marked[:, 1:], (targets_BxL != PAD).astype(jnp.float32)


def loss(graphdef, params, tokens_BxL1):
    logp_BxL, marked_BxL, mask_BxL = target_logprobs(graphdef, params, tokens_BxL1)
    p_BxL = jnp.exp(jnp.minimum(logp_BxL, 0.0))
    unlikely_BxL = -jnp.log(jnp.maximum(1.0 - p_BxL, MIN_COMPLEMENT))
    losses_BxL = jnp.where(marked_BxL, unlikely_BxL, -logp_BxL)
    return (losses_BxL * mask_BxL).sum() / jnp.maximum(mask_BxL.sum(), 1.0)


def check(cfg, stage, key):
    if cfg.data.unlikelihood <= 0:
        raise ConfigError("data.unlikelihood", f"{key} trains by unlikelihood: set the share of misaligned "
                          "rows it marks (> 0)")


register(Objective("unlikelihood", "lm", __doc__, loss=loss, check=check))
