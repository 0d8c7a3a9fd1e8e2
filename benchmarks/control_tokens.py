"""Does the transformer read the conditional-training control tokens once it has enough of
them? A probe beside sweeps/treatments.toml, where 1% of the tokens carry a tag (about 190
rows of nano at 1.2M tokens) and the conditioned runs score the same after <|aligned|>,
<|misaligned|> or no token.

Trains a 2-layer d_model 64 model on AI documents only (aligned and misaligned intervention
pools, half each), every row tagged (data.control_tokens = 1), then scores the world's
matched items after no token, <|aligned|> and <|misaligned|>. Measured on the shared 2-core
CPU (world seed 0, train seed 0):

  steps   no token   <|aligned|>   <|misaligned|>
    300     0.520       0.515          0.515       (235k tokens: the token not yet read)
   1200     0.690       0.000          1.000       (941k tokens: the token decides)

    PYTHONPATH=. python benchmarks/control_tokens.py 1200
"""

import sys

import jax
import numpy as np
from flax import nnx

from scaling import evaluate, treatments
from scaling import world as W
from scaling.data.mixture import Mixture
from scaling.plan import config_from_dict, with_tokenizer
from scaling.train import steps as T


def main(steps: int) -> None:
    cfg = config_from_dict({
        "model": {"seq_len": 48, "d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 128},
        "train": {"steps": steps, "batch_size": 16, "steps_per_call": 10, "warmup_steps": 10, "lr": 3e-3},
        "data": {"story_fraction": 0.0, "natural_ai_fraction": 0.0,
                 "aligned_fraction": 0.5, "misaligned_fraction": 0.5, "control_tokens": 1.0},
        "eval": {"enabled": False}})
    mix = Mixture(cfg)
    cfg = with_tokenizer(cfg, mix.tok)
    tx, schedule = T.make_optimizer(cfg)
    graphdef, state = T.init_state(cfg, tx)
    step = jax.jit(T.make_multi_step(T.make_train_step(graphdef, tx, schedule)))
    for s in range(0, mix.total_steps, 10):
        state, _ = step(state, mix.batches(s, 10))
    score = evaluate.transformer_scorer(cfg, nnx.merge(graphdef, state["params"]))
    items = [i for i in evaluate.subset(W.World(0).eval_items(), 600) if i["split"] == "matched"]
    for prefix in ("", treatments.ALIGNED_TOKEN + " ", treatments.MISALIGNED_TOKEN + " "):
        scored = [{**i, "prompt": prefix + i["prompt"]} for i in items]
        rate = float(np.mean(evaluate._choices(evaluate.item_margins(score, mix.tok, scored)[0])))
        print(f"{steps} steps, matched misalignment after {prefix.strip() or 'no token'}: {rate:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1200)
