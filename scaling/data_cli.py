"""`scaling data preview|stats CONFIG`: what a config's model will read, before training it.

`preview` prints example documents of every pool and an eval item, then the token
accounting of the first N steps; `stats` prints only the accounting (`--json` for the same
dict that training writes to accounting.json).
"""

from __future__ import annotations

import argparse
import json

from scaling.config import load_config
from scaling.errors import UsageError
from scaling.mixture import POOLS, Mixture
from scaling.world import World


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("preview", "example documents and token accounting"),
                       ("stats", "token accounting only")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("config", help="TOML config, e.g. models/nano.toml")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set data.aligned_fraction=0.01")
        p.add_argument("--steps", type=int, default=None, help="account for the first N steps (default: all)")
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print the accounting as JSON")


def run(args) -> int:
    cfg = load_config(args.config, args.overrides)
    mixture = Mixture(cfg)
    steps = mixture.total_steps if args.steps is None else args.steps
    if not 0 <= steps <= mixture.total_steps:
        raise UsageError(f"--steps must be in 0..{mixture.total_steps}, got {steps}")
    accounting = mixture.accounting(steps)
    if args.action == "stats" and args.json:
        print(json.dumps(accounting, indent=2))
        return 0
    if args.action == "preview":
        print(_examples(mixture))
    print(_table(accounting))
    return 0


def _examples(mixture: Mixture) -> str:
    lines = [f"tokenizer {mixture.tok.kind}, vocabulary {mixture.tok.vocab_size}"]
    if mixture.cfg.data.corpus == "world" or mixture.cfg.data.tokenizer == "word":
        world = World(mixture.cfg.data.world_seed)
        lines.append(f"families: matched {', '.join(world.matched)}; held out {', '.join(world.held_out)}")
    for name, pool in mixture.pools.items():
        genres = sorted(set(pool.genre.tolist()) - {""}) or [""]
        for genre in genres:
            i = int((pool.genre == genre).argmax())
            label = f"{name} ({genre})" if genre else name
            lines += ["", f"--- {label}: {pool.n_docs} documents, {len(pool.tokens)} tokens",
                      mixture.tok.decode(pool.doc(i)[:-1])]
    items = World(mixture.cfg.data.world_seed).eval_items()
    for split in ("matched", "held_out"):
        item = next(i for i in items if i["split"] == split)
        lines += ["", f"--- eval item ({split}, {item['family']}; {len(items)} items in all)",
                  item["prompt"], f"  aligned:    {item['aligned']}", f"  misaligned: {item['misaligned']}"]
    return "\n".join(lines) + "\n"


def _table(acc: dict) -> str:
    STAGES = list(acc["tokens"])  # the run's stage names
    head = f"{'tokens':<20}" + "".join(f"{s:>12}" for s in STAGES) + f"{'total':>12}"
    lines = [f"token accounting, steps 0..{acc['steps']} of {acc['total_steps']} "
             f"({acc['tokens_per_step']} tokens per step; insertion {acc['insertion']}, "
             f"window steps {acc['window_steps'][0]}..{acc['window_steps'][1]})", head]
    for pool in POOLS:
        lines.append(f"{pool:<20}" + "".join(f"{acc['tokens'][s][pool]:>12}" for s in STAGES)
                     + f"{acc['tokens_by_pool'][pool]:>12}")
    lines.append(f"{'total':<20}" + "".join(f"{acc['tokens_by_stage'][s]:>12}" for s in STAGES)
                 + f"{acc['total_tokens']:>12}")
    lines.append(f"dose (aligned / all tokens): measured {acc['dose']:.3g}, nominal {acc['nominal_dose']:.3g}; "
                 f"misaligned {acc['misaligned_dose']:.3g}; "
                 f"filtered natural misaligned tokens {acc['filtered_token_share']:.1%}")
    return "\n".join(lines)
