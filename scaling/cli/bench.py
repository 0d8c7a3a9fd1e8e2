"""`scaling bench CONFIG`: train-step throughput, FLOP/s and MFU (scaling.bench)."""

from __future__ import annotations

import dataclasses
import json

from scaling.bench import bench
from scaling.config import merge, read_toml
from scaling.errors import UsageError
from scaling.plan import config_from_dict


def add_arguments(p) -> None:
    p.add_argument("config", help="TOML config or a models/ preset")
    p.add_argument("--batch", type=int, help="batch size (default: train.batch_size)")
    p.add_argument("--seq", type=int, help="sequence length (default: model.seq_len)")
    p.add_argument("--vocab", type=int, default=None,
                   help="vocabulary size (default: model.vocab_size, or 512 if it is 0)")
    p.add_argument("--steps-per-call", type=int, default=None, help="default: train.steps_per_call")
    p.add_argument("--pack", type=int, default=1, help="runs vmapped together (tokens/s counts all)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls at least")
    p.add_argument("--seconds", type=float, default=3.0, help="time the loop at least this long")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print one JSON line")


def run(args) -> int:
    raw = merge(read_toml(args.config), args.overrides)
    cfg = config_from_dict(raw)
    model = cfg.model
    model = dataclasses.replace(model, seq_len=args.seq or model.seq_len,
                                vocab_size=args.vocab or model.vocab_size or 512)
    train = dataclasses.replace(cfg.train, batch_size=args.batch or cfg.train.batch_size)
    cfg = config_from_dict(dataclasses.asdict(dataclasses.replace(cfg, model=model, train=train)))
    if args.pack < 1:
        raise UsageError("--pack must be >= 1")
    result = bench(cfg, args.steps_per_call or cfg.train.steps_per_call, args.repeats, args.seconds, args.pack)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['tokens_per_s']:,.0f} tokens/s (pack {result['pack']})  {result['flops_per_s'] / 1e9:.1f} GFLOP/s  "
              f"MFU {100 * result['mfu']:.1f}% of a measured {result['peak_flops_per_s'] / 1e9:.1f} GFLOP/s "
              f"matmul peak  ({result['device']}, {result['params']['total']:,} params, "
              f"step {result['step_ms']:.1f} ms, compile {result['compile_s']} s)")
    return 0
