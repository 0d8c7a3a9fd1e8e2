"""The pure steps: `step(state, batch) -> (state, metrics)` on plain pytrees, one per kind of
objective (scaling.train.objectives: an objective names its step, "lm" or "rl").

LM step: next-token cross-entropy (or an objective's own loss on the rows), AdamW on the
run's staged LR schedule (scaling.train.schedules), gradient accumulation by a scan over
micro-batches; `make_multi_step` scans a step over `train.steps_per_call` steps per compiled
call, so sweeps can `vmap` it across runs.

RL step: REINFORCE with a baseline and a KL penalty, as a pure jitted function.

The policy chooses between the two continuations of a scenario (0 = aligned action,
1 = misaligned action): pi(a | prompt) = softmax over a of log p_model(continuation_a |
prompt), the model's preference between the two as the eval measures it. Per scenario one
action is sampled (a = 1 iff u < pi(1), u ~ U[0, 1) supplied by the batch, so the step is a
pure function of (state, batch)), rewarded by the batch's reward table, and the loss is

    - mean_i (r_i - b_i) log pi(a_i)  +  beta * mean_i KL(pi_i || pi_ref,i)

with b_i the leave-one-out mean reward of the batch (an unbiased baseline) and pi_ref the
policy of the model the stage started from (state["ref"], fixed during the stage). The
first term is an unbiased estimate of -grad E_pi[r]; the KL over the two actions is exact.
The objective E_pi[r] - beta KL(pi || pi_ref) is maximised by pi* ∝ pi_ref exp(r / beta),
which tests/test_rl.py checks on a toy policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from scaling import stages as staging
from scaling.config import Config
from scaling.data.tokenizer import PAD
from scaling.model import Transformer
from scaling.train.schedules import make_schedule

# ---------------------------------------------------------------- LM step


def make_optimizer(cfg: Config, stages: tuple | None = None) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW on the run's staged LR schedule (scaling.train.schedules, over the resolved
    `stages`; a caller with only a config gets them from scaling.stages): one optimiser state
    runs through every stage, each stage sets its own piece of the schedule. The legacy preset
    is warmup then cosine decay over pretraining, and the final rate in the continued and
    finetune stages, so every arm shares the same pretraining schedule."""
    t = cfg.train
    schedule = make_schedule(stages if stages is not None else staging.resolve(cfg))
    parts = [optax.clip_by_global_norm(t.grad_clip)] if t.grad_clip > 0 else []
    parts.append(optax.adamw(schedule, b1=t.b1, b2=t.b2, weight_decay=t.weight_decay,
                             mask=lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)))
    return optax.chain(*parts), schedule


def loss_fn(graphdef, params, tokens_BxL1):
    model = nnx.merge(graphdef, params)
    inputs_BxL, targets_BxL = tokens_BxL1[:, :-1], tokens_BxL1[:, 1:]
    logits_BxLxV = model(inputs_BxL)
    losses_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
    mask_BxL = (targets_BxL != PAD).astype(jnp.float32)
    return (losses_BxL * mask_BxL).sum() / jnp.maximum(mask_BxL.sum(), 1.0)


def make_train_step(graphdef, tx, schedule, accum_steps: int = 1, loss=None):
    """Returns the pure `train_step(state, batch) -> (state, metrics)`; `loss` is an
    objective's own (scaling.train.objectives), else next-token cross-entropy."""
    loss = loss or loss_fn
    grad_fn = jax.value_and_grad(lambda p, b: loss(graphdef, p, b))

    def train_step(state, tokens_BxL1):
        if accum_steps == 1:
            loss, grads = grad_fn(state["params"], tokens_BxL1)
        else:
            micro_MxBxL1 = tokens_BxL1.reshape(accum_steps, -1, tokens_BxL1.shape[-1])

            def accumulate(carry, micro):
                loss_i, grads_i = grad_fn(state["params"], micro)
                return jax.tree.map(jnp.add, carry, (loss_i, grads_i)), None

            zeros = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, state["params"]))
            (loss, grads), _ = jax.lax.scan(accumulate, zeros, micro_MxBxL1)
            loss, grads = jax.tree.map(lambda x: x / accum_steps, (loss, grads))
        updates, opt_state = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": schedule(state["step"])}
        return {"params": params, "opt": opt_state, "step": state["step"] + 1}, metrics

    return train_step


def make_multi_step(train_step):
    """Scan `train_step` over the leading axis of `batches_NxBxL1`: one compiled call."""

    def multi_step(state, batches_NxBxL1):
        return jax.lax.scan(train_step, state, batches_NxBxL1)

    return multi_step


def init_state(cfg: Config, tx):
    model = Transformer(cfg.model, nnx.Rngs(params=cfg.train.seed))
    graphdef, params = nnx.split(model, nnx.Param)
    state = {"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)}
    return graphdef, state


def make_eval_loss(graphdef):
    return jax.jit(lambda params, tokens: loss_fn(graphdef, params, tokens))


# ---------------------------------------------------------------- RL step


def options_logp(graphdef):
    """(params, batch) -> [B, 2] summed log p of each option's tokens given its prompt.

    batch["tokens"]: int32 [B, 2, T] rows `<eos> prompt option` right-padded; batch["mask"]:
    float32 [B, 2, T], 1 at the option's tokens (positions of the scored targets)."""

    def logp(params, batch):
        tokens, mask = batch["tokens"], batch["mask"]
        B, _, T = tokens.shape
        flat, m = tokens.reshape(2 * B, T), mask.reshape(2 * B, T)
        logits = nnx.merge(graphdef, params)(flat[:, :-1]).astype(jnp.float32)
        target = jnp.take_along_axis(logits, flat[:, 1:, None], axis=-1)[..., 0]
        lp = target - jax.nn.logsumexp(logits, axis=-1)
        return (lp * m[:, 1:]).sum(-1).reshape(B, 2)

    return logp


def rl_loss(policy_logp, beta: float):
    """(params, ref_params, batch) -> (loss, metrics) for REINFORCE + KL (module doc)."""

    def loss(params, ref, batch):
        logpi = jax.nn.log_softmax(policy_logp(params, batch), axis=-1)  # [B, 2]
        logref = jax.lax.stop_gradient(jax.nn.log_softmax(policy_logp(ref, batch), axis=-1))
        pi = jnp.exp(logpi)
        action = (batch["u"] < jax.lax.stop_gradient(pi[:, 1])).astype(jnp.int32)
        B = action.shape[0]
        reward = jnp.take_along_axis(batch["reward"], action[:, None], axis=1)[:, 0]
        baseline = (reward.sum() - reward) / max(B - 1, 1)
        chosen = jnp.take_along_axis(logpi, action[:, None], axis=1)[:, 0]
        pg = -jnp.mean(jax.lax.stop_gradient(reward - baseline) * chosen)
        kl = jnp.mean(jnp.sum(pi * (logpi - logref), axis=-1))
        metrics = {"reward": reward.mean(), "kl": kl, "p_misaligned": pi[:, 1].mean()}
        return pg + beta * kl, metrics

    return loss


def make_rl_step(policy_logp, tx, schedule, beta: float):
    """Returns the pure `rl_step(state, batch) -> (state, metrics)`; state holds "params",
    "opt", "step" and "ref" (the parameters the stage started from)."""
    grad_fn = jax.value_and_grad(rl_loss(policy_logp, beta), has_aux=True)

    def rl_step(state, batch):
        (loss, aux), grads = grad_fn(state["params"], state["ref"], batch)
        updates, opt_state = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr": schedule(state["step"]), **aux}
        return {**state, "params": params, "opt": opt_state, "step": state["step"] + 1}, metrics

    return rl_step


def enter_rl(state):
    """State at the start of an RL stage: the current parameters become the reference."""
    return {**state, "ref": jax.tree.map(jnp.copy, state["params"])}


def enter_lm(state):
    """State at the start of an LM stage: no reference model."""
    return {k: v for k, v in state.items() if k != "ref"}


def optimum(p_ref, rewards, beta: float):
    """The closed-form maximiser of E_pi[r] - beta KL(pi || p_ref) over a finite action set."""
    w = jnp.asarray(p_ref) * jnp.exp(jnp.asarray(rewards) / beta)
    return w / w.sum()
