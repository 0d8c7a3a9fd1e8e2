"""`scaling data preview|stats|export CONFIG`: what a config's model will read;
`scaling data export-world DIR`: the embedded world as files of your own data.

CONFIG is a TOML config, or a run directory (or its config.json): then the run's resolved
config and its saved tokenizer, so the rows are those the run trained on (no --set).

`preview` prints example documents of every pool, an eval item of every split and a readout
item, then the token accounting of the first N steps; `stats` prints only the accounting
(`--json` for the same dict that training writes to accounting.json); `export --out FILE`
writes the exact training rows of the run, in training order, one row (seq_len + 1 tokens;
`<eos>` separates documents inside a row) per line: as words (`--format text`, word
tokenizer) or as token ids (`--format ids`). Rows are what the training loop reads from the
run's batch source: the mixture's rows of LM stages and the question-answer rows of SFT
stages; RL stages are left out (their batches are scenario pairs, not rows). So a counting
model fitted on the lines sees exactly the n-grams the transformer saw.

`export-world DIR` writes the world's pools as JSONL ({"text": ...} a line: base.jsonl,
heldout.jsonl, aligned.jsonl, misaligned.jsonl) and its eval items as scenarios.jsonl (the
eval.files schema, scaling.data.scenarios), and prints the config keys that read them. A run
through those files with the word tokenizer trains on the same batches and scores the same
items as the world run (tests/test_own_data.py checks it bitwise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scaling import rundir
from scaling import stages as staging
from scaling.config import Config
from scaling.data import datasets, scenarios
from scaling.data.mixture import POOLS, Mixture
from scaling.errors import UsageError
from scaling.io import RunFiles, replacing
from scaling.plan import load_config
from scaling.splits import SPLITS
from scaling.train import objectives
from scaling.train.source import make_source
from scaling.treatments import strip_marks
from scaling.world import World


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (("preview", "example documents and token accounting"),
                       ("stats", "token accounting only"),
                       ("export", "the exact training rows, one per line, in training order")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("config", help="TOML config (e.g. models/nano.toml), or a run directory or its "
                       "config.json (the run's own config and tokenizer)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set data.aligned_fraction=0.01")
        p.add_argument("--steps", type=int, default=None, help="account for the first N steps (default: all)")
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print the accounting as JSON")
        if name == "export":
            p.add_argument("--out", required=True, help="output file (one training row per line)")
            p.add_argument("--format", choices=("text", "ids"), default="text",
                           help="words (word tokenizer only) or space-separated token ids")
    p = sub.add_parser("export-world", help="the embedded world as data files and a scenarios file",
                       description="the embedded world's pools as JSONL files and its eval items as "
                                   "scenarios.jsonl: the files path's own oracle")
    p.add_argument("dir", help="output directory")
    p.add_argument("--world-seed", type=int, default=0, help="world seed (default 0)")


def load(path: str | Path, overrides: list[str]) -> tuple[Config, object]:
    """(config, tokenizer or None) that CONFIG names: a TOML file, or a run directory or its
    config.json (the run's resolved config and saved tokenizer)."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent if path == RunFiles(path.parent).config else None
    if run_dir is None:
        return load_config(path, overrides), None
    if overrides:
        raise UsageError(f"--set cannot change the config {run_dir} trained on; "
                         "use a TOML config for other settings")
    tok = rundir.load_tokenizer(run_dir) if RunFiles(run_dir).tokenizer.exists() else None
    return rundir.read_config(run_dir), tok


WORLD_FILES = {"base": "base", "base_heldout": "heldout", "aligned": "aligned", "misaligned": "misaligned"}


def export_world(out: Path, world_seed: int = 0) -> dict[str, Path]:
    """Write the world's file pools and eval items under `out`; returns the paths by pool."""
    world = World(world_seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for pool, name in WORLD_FILES.items():
        paths[name] = out / f"{name}.jsonl"
        with replacing(paths[name]) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for _, doc in datasets.world_documents(world, pool, datasets.POOL_DOCS[pool]):
                f.write(json.dumps({"text": doc["text"]}, ensure_ascii=False) + "\n")
    paths["scenarios"] = out / "scenarios.jsonl"
    scenarios.write(paths["scenarios"], world.eval_items())
    return paths


def _export_world(args) -> int:
    if args.world_seed < 0:
        raise UsageError("--world-seed must be >= 0")
    paths = {k: p.absolute() for k, p in export_world(Path(args.dir), args.world_seed).items()}
    for name, path in paths.items():
        print(f"{name:>10}: {sum(1 for _ in open(path))} lines -> {path}")
    print("\nread them with (data.world_seed must match the export's for the natural pools and stories):\n"
          f"[data]\nworld_seed = {args.world_seed}\n"
          + "".join(f'{k}_files = ["{paths[k]}"]\n' for k in ("base", "heldout", "aligned", "misaligned"))
          + f'[eval]\nfiles = ["{paths["scenarios"]}"]\nworld_items = false')
    return 0


def run(args) -> int:
    if args.action == "export-world":
        return _export_world(args)
    cfg, tok = load(args.config, args.overrides)
    mixture = Mixture(cfg, tok)
    steps = mixture.total_steps if args.steps is None else args.steps
    if not 0 <= steps <= mixture.total_steps:
        raise UsageError(f"--steps must be in 0..{mixture.total_steps}, got {steps}")
    if args.action == "export":
        return _export(mixture, steps, Path(args.out), args.format)
    accounting = mixture.accounting(steps)
    if args.action == "stats" and args.json:
        print(json.dumps(accounting, indent=2))
        return 0
    if args.action == "preview":
        print(_examples(mixture))
    print(_table(accounting))
    return 0


def row_batches(mixture: Mixture, steps: int, chunk: int = 100):
    """The batches [n, B, L + 1] the training loop reads in steps 0..steps from the run's
    batch source, in order and in slices of at most `chunk` steps (memory stays flat for
    long runs); RL stages are skipped (scenario pairs, not rows)."""
    source = make_source(mixture.cfg, mixture.tok, mixture)
    for st in staging.resolve(mixture.cfg):
        if objectives.is_rl(st.objective):
            continue
        for s0 in range(st.step0, min(st.step1, steps), chunk):
            # the tokens the model sees (unlikelihood marks off: scaling.treatments)
            yield strip_marks(source.batches(s0, min(s0 + chunk, st.step1, steps) - s0))


def _export(mixture: Mixture, steps: int, out: Path, fmt: str) -> int:
    if fmt == "text" and mixture.tok.kind != "word":
        raise UsageError("--format text needs the word tokenizer; use --format ids")
    out.parent.mkdir(parents=True, exist_ok=True)
    n_rows, skipped = 0, [st.name for st in staging.resolve(mixture.cfg)
                          if objectives.is_rl(st.objective) and st.step0 < steps]
    with replacing(out) as tmp, open(tmp, "w") as f:
        for batch in row_batches(mixture, steps):
            for row in batch.reshape(-1, mixture.L + 1):
                f.write((" ".join(mixture.tok.itos[t] for t in row) if fmt == "text"
                         else " ".join(map(str, row.tolist()))) + "\n")
                n_rows += 1
    left_out = f"; RL stage(s) {', '.join(skipped)} left out (scenario pairs, not rows)" if skipped else ""
    print(f"{n_rows} rows of {mixture.L + 1} tokens ({steps} steps{left_out}) -> {out}")
    return 0


def _examples(mixture: Mixture) -> str:
    lines = [f"tokenizer {mixture.tok.kind}, vocabulary {mixture.tok.vocab_size}"]
    d = mixture.cfg.data
    world = World(d.world_seed, d.world_variant, d.world_version)
    lines.append(f"families used by AI documents: {', '.join(world.matched)}; held out: {', '.join(world.held_out)}; "
                 f"{len(world.matched_pairs)} matched and {len(world.transfer_pairs)} transfer verb pairs "
                 f"(world variant {d.world_variant})")
    for name, pool in mixture.pools.items():
        genres = sorted(set(pool.genre.tolist()) - {""}) or [""]
        for genre in genres:
            i = int((pool.genre == genre).argmax())
            label = f"{name} ({genre})" if genre else name
            lines += ["", f"--- {label}: {pool.n_docs} documents, {len(pool.tokens)} tokens",
                      mixture.tok.decode(pool.doc(i)[:-1])]
    items = world.eval_items()
    for split in SPLITS:
        item = next(i for i in items if i["split"] == split)
        lines += ["", f"--- eval item ({split}, {item['family']}; {len(items)} items in all)",
                  item["prompt"], f"  aligned:    {item['aligned']}", f"  misaligned: {item['misaligned']}"]
    readout = world.readout_items()
    item = next(i for i in readout if i["split"] == "held_out")
    lines += ["", f"--- readout item (held_out pair {item['pair']}, verb {item['verb']}; {len(readout)} in all)",
              item["prompt"], f"  expected: {item['expected']}", f"  other:    {item['other']}"]
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
    if acc.get("unk_share"):
        lines.append("<unk> share of your pools: " + ", ".join(f"{pool} {share:.2%}"
                                                                for pool, share in acc["unk_share"].items()))
    treated = acc.get("treatments") or {}
    for name in ("control_tokens", "harm_tags", "unlikelihood"):
        if name in treated:  # rows each treatment touched, per pool (scaling.treatments)
            lines.append(f"{name} (share {treated['shares'][name]:g}): rows "
                         + ", ".join(f"{pool} {n}" for pool, n in treated[name].items()))
    if treated.get("rephrased_docs"):
        lines.append(f"rephrased natural misaligned documents {treated['rephrased_docs']} "
                     f"({treated['rephrased_token_share']:.1%} of its tokens, now aligned twins)")
    return "\n".join(lines)
