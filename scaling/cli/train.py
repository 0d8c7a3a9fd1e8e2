"""`scaling train CONFIG --out DIR`: pretrain one run (scaling.run), then print its evaluation."""

from __future__ import annotations

from pathlib import Path

from scaling import evaluate, tracking
from scaling.plan import load_config
from scaling.run import train


def add_arguments(p) -> None:
    p.add_argument("config", help="TOML config; a preset from models/ works as is")
    p.add_argument("--out", required=True, help="run directory (re-running resumes it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=200 (TOML literal)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tracker", choices=tracking.TRACKERS, default="none",
                   help="also write the metrics as TensorBoard event files (RUN_DIR/tensorboard) or a "
                        "wandb run (offline without WANDB_API_KEY) when the run ends (default none)")


def run(args) -> int:
    tracking.check(args.tracker)
    cfg = load_config(args.config, args.overrides)
    status = train(cfg, args.out, progress=not args.no_progress)
    tracking.write(Path(args.out), args.tracker)
    print(f"{status['status']} at step {status['step']}: {Path(args.out).absolute()}")
    for note in status.get("notes", []):
        print(f"note: {note}")
    from scaling.io import RunFiles, read_json

    result = read_json(RunFiles(args.out).eval) if cfg.eval.enabled else None
    if status["status"] == "done" and isinstance(result, dict):
        print("\n".join(evaluate.evaluation_lines(result, args.out)))
    return 0 if status["status"] == "done" else 1
