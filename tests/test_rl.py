"""The RL step on a toy whose optimum is known: a two-armed choice with a reference policy,
where E_pi[r] - beta KL(pi || pi_ref) is maximised by pi* ∝ pi_ref exp(r / beta)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from scaling.train.steps import enter_rl, make_rl_step, optimum


def toy_logp(params, batch):
    """A policy that ignores the scenario: log-weights theta of the two actions."""
    return jnp.broadcast_to(params["theta"], batch["reward"].shape)


def train_toy(p_ref, reward, beta, steps=1500, B=256, lr=0.03, seed=0):
    tx = optax.adam(lr)
    step = make_rl_step(toy_logp, tx, lambda s: lr, beta)
    params = {"theta": jnp.log(jnp.asarray(p_ref, jnp.float32))}
    state = enter_rl({"params": params, "opt": tx.init(params), "step": jnp.zeros((), jnp.int32)})
    rng = np.random.default_rng(seed)
    batches = {"reward": jnp.broadcast_to(jnp.asarray(reward, jnp.float32), (steps, B, 2)),
               "u": jnp.asarray(rng.random((steps, B)), jnp.float32)}
    state, m = jax.jit(lambda s, b: jax.lax.scan(step, s, b))(state, batches)
    return state, jax.device_get(m)


@pytest.mark.parametrize("reward,beta", [((0.0, 1.0), 0.5), ((0.0, 1.0), 2.0), ((1.0, 0.0), 0.5)])
def test_rl_step_converges_to_the_closed_form_optimum(reward, beta):
    p_ref = (0.7, 0.3)
    state, m = train_toy(p_ref, reward, beta)
    want = float(optimum(jnp.asarray(p_ref), jnp.asarray(reward), beta)[1])
    got = float(np.mean(m["p_misaligned"][-300:]))
    print(f"reward {reward} beta {beta}: p(misaligned) {got:.4f}, optimum {want:.4f}")
    assert got == pytest.approx(want, abs=0.02)
    # the reference stays where the stage started
    np.testing.assert_allclose(jax.nn.softmax(state["ref"]["theta"]), p_ref, rtol=1e-6)


def test_kl_holds_the_policy_near_the_reference_and_zero_reward_moves_nothing():
    p_ref = (0.7, 0.3)
    _, strong = train_toy(p_ref, (0.0, 1.0), beta=50.0, steps=600)
    assert float(np.mean(strong["p_misaligned"][-100:])) == pytest.approx(0.3 * np.e**0.02 / (0.7 + 0.3 * np.e**0.02), abs=0.02)
    _, flat = train_toy(p_ref, (1.0, 1.0), beta=0.1, steps=300)
    assert float(np.mean(flat["p_misaligned"][-100:])) == pytest.approx(0.3, abs=0.01)  # baseline removes it
    assert float(np.max(flat["kl"])) < 1e-3


def test_rl_step_is_a_pure_function_of_state_and_batch():
    _, a = train_toy((0.5, 0.5), (0.0, 1.0), 1.0, steps=50, seed=3)
    _, b = train_toy((0.5, 0.5), (0.0, 1.0), 1.0, steps=50, seed=3)
    np.testing.assert_array_equal(a["p_misaligned"], b["p_misaligned"])
