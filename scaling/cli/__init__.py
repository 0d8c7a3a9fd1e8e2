"""`scaling` console script: one subcommand per module of this package.

Each command module (scaling/cli/NAME.py) holds the command's argparse definition,
`add_arguments(parser)`, and `run(args) -> int`, which calls into the domain modules; no
module outside scaling.cli imports argparse. Only the module of the chosen command is
imported, so `scaling fit` does not pay for importing JAX.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import sys

from scaling.errors import UsageError

COMMANDS = {
    "train": ("scaling.cli.train", "pretrain one model from a config (resumes after a kill)"),
    "eval": ("scaling.cli.eval", "score a run's misalignment and capability"),
    "bench": ("scaling.cli.bench", "train-step throughput, FLOP/s and MFU on this device"),
    "data": ("scaling.cli.data", "preview documents and token accounting of a config"),
    "sweep": ("scaling.cli.sweep", "run a grid of configs (skips finished runs, resumes others)"),
    "results": ("scaling.cli.results", "collect a sweep's runs into results.csv"),
    "fit": ("scaling.cli.fit", "fit dose-response curves to a results table"),
    "figures": ("scaling.cli.figures", "draw the study figures from results.csv and fit.json"),
    "study": ("scaling.cli.study", "sweep, results, fit and figures in one command"),
    "sizes": ("scaling.cli.sizes", "ED50 and slope of the dose-response against model size"),
    "track": ("scaling.cli.track", "a run's or sweep's metrics as TensorBoard event files or wandb runs"),
    "profile": ("scaling.cli.profile", "where a sweep's or study's wall time went, by phase (a table)"),
    "verify": ("scaling.cli.verify", "check a run or sweep directory for consistency; say what to rerun"),
    "emergence": ("scaling.cli.emergence", "readout against training tokens: where the model learns the values"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def _top_help() -> str:
    lines = ["usage: scaling COMMAND [options]  (scaling COMMAND --help for details; scaling --version)", "",
             "Alignment dose-response studies with small JAX transformers.", "", "commands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in _available().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = _available()
    if argv and argv[0] in ("-V", "--version"):
        from scaling import __version__

        print(f"scaling {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    name = argv[0]
    if name not in commands:
        print(f"scaling: error: unknown command {name!r}\n\n{_top_help()}", file=sys.stderr)
        return 2
    module_name, help_text = commands[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"scaling {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UsageError as e:
        print(f"scaling {name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Every file is written atomically, so what is on disk is the last good state.
        print(f"scaling {name}: error: disk full ({e}); stopped. Finished work and the last "
              "checkpoint of each run are intact: free space and run the same command again "
              "to resume.", file=sys.stderr)
        return 3

