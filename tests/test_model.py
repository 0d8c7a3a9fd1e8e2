import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.config import ModelConfig
from scaling.model import Transformer, flops_per_token, param_counts
from scaling.plan import load_config
from scaling.train.steps import init_state, make_multi_step, make_optimizer, make_train_step


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_param_counts_match_module_and_hand_calculation(mlp):
    cfg = ModelConfig(d_model=32, n_layers=3, n_heads=4, d_ff=48, seq_len=8, vocab_size=50, mlp=mlp)
    model = Transformer(cfg, nnx.Rngs(0))
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    counts = param_counts(cfg)
    assert sum(x.size for x in leaves) == counts["total"]
    # by hand: per block qkv 3*32*32 + out 32*32 + up 32*w + down 48*32 + two norms 2*32
    up = 2 * 48 if mlp == "swiglu" else 48
    per_block = 3 * 1024 + 1024 + 32 * up + 48 * 32 + 64
    assert counts["non_embedding"] == 3 * per_block + 32
    assert counts["embedding"] == 50 * 32


def test_flops_per_token_hand_calculation():
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, d_ff=256, seq_len=64, vocab_size=100)
    weights = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 100 * 64
    assert flops_per_token(cfg) == 6 * weights + 6 * 2 * 2 * 64 * 64


@pytest.mark.parametrize("preset,lo,hi", [("nano", 0.08e6, 0.2e6), ("micro", 0.7e6, 1.5e6),
                                          ("small", 8e6, 13e6), ("base", 80e6, 90e6)])
def test_presets_have_their_advertised_size(preset, lo, hi):
    cfg = load_config(f"models/{preset}.toml")
    counts = param_counts(dataclasses.replace(cfg.model, vocab_size=1000))
    size = counts["non_embedding"] if preset == "base" else counts["total"]
    assert lo <= size <= hi


@pytest.mark.slow
def test_model_is_causal():
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=2, d_ff=64, seq_len=8, vocab_size=40)
    model = Transformer(cfg, nnx.Rngs(0))
    t = jnp.arange(8)[None] % 40
    changed = t.at[0, 5].set(39)
    a, b = model(t), model(changed)
    np.testing.assert_array_equal(a[:, :5], b[:, :5])
    assert not np.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.slow
def test_attention_paths_agree():
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64, seq_len=16, vocab_size=40,
                      attention="einsum")
    t = jax.random.randint(jax.random.key(1), (3, 16), 0, 40)
    a = Transformer(cfg, nnx.Rngs(0))(t)
    b = Transformer(dataclasses.replace(cfg, attention="dot_product"), nnx.Rngs(0))(t)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_overfits_a_fixed_batch(tiny):
    cfg = tiny(model={"vocab_size": 30}, train={"lr": 1e-2, "steps": 200, "warmup_steps": 5})
    tx, schedule = make_optimizer(cfg)
    graphdef, state = init_state(cfg, tx)
    batch = jax.random.randint(jax.random.key(0), (4, 17), 3, 30)
    step = jax.jit(make_multi_step(make_train_step(graphdef, tx, schedule)))
    state, m = step(state, jnp.broadcast_to(batch, (200, 4, 17)))
    assert m["loss"][0] > 3.0  # ~ln(30) at init
    assert m["loss"][-1] < 0.1


@pytest.mark.slow
def test_accumulation_matches_one_big_batch(tiny):
    cfg = tiny(model={"vocab_size": 30})
    batch = jax.random.randint(jax.random.key(0), (4, 17), 3, 30)
    results = []
    for accum in (1, 2):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, accum_steps=accum))
        tx, schedule = make_optimizer(c)
        graphdef, state = init_state(c, tx)
        state, _ = jax.jit(make_train_step(graphdef, tx, schedule, accum))(state, batch)
        results.append(state["params"])
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_schedule_warms_up_decays_and_holds_for_post_stages(tiny):
    cfg = tiny(train={"steps": 100, "warmup_steps": 10, "lr": 1.0, "min_lr_ratio": 0.1})
    _, schedule = make_optimizer(cfg)
    assert float(schedule(0)) == 0.0
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(99)) == pytest.approx(0.1, abs=2e-3)
    assert float(schedule(130)) == pytest.approx(0.1)


@pytest.mark.slow
def test_bfloat16_compute_trains_with_float32_parameters(tiny):
    cfg = tiny(model={"vocab_size": 30, "compute_dtype": "bfloat16"}, train={"lr": 1e-2})
    tx, schedule = make_optimizer(cfg)
    graphdef, state = init_state(cfg, tx)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state["params"]))
    batch = jax.random.randint(jax.random.key(0), (4, 17), 3, 30)
    step = jax.jit(make_multi_step(make_train_step(graphdef, tx, schedule)))
    state, m = step(state, jnp.broadcast_to(batch, (50, 4, 17)))
    assert np.isfinite(m["loss"]).all() and m["loss"][-1] < 0.5 * m["loss"][0]
