"""`scaling bench` against benchmarks/torch_eager.py, side by side in one run.

On a shared machine absolute tokens/s drift with the load, so the two are run alternately,
`--rounds` times per shape, and the ratio is taken of the medians: both see the same load.
Needs torch (not a dependency of the project):

    python benchmarks/versus_torch.py --rounds 3 --seconds 8
    python benchmarks/versus_torch.py --shapes d128 --jax-set model.attention=dot_product   # a lever

Shapes: d128 = d_model 128, 2 layers, seq 128, batch 32; d256 = d_model 256, 4 layers, seq
256, batch 16; both vocab 256, 4 heads, d_ff 4 x d_model (torch_eager.py's architecture).
Prints one JSON line per measurement, then a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {"d128": {"d_model": 128, "layers": 2, "seq": 128, "batch": 32},
          "d256": {"d_model": 256, "layers": 4, "seq": 256, "batch": 16}}
VOCAB = 256


def jax_command(shape: dict, seconds: float, steps_per_call: int | None, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "scaling.cli", "bench", str(ROOT / "models" / "micro.toml"),
           "--batch", str(shape["batch"]), "--seq", str(shape["seq"]), "--vocab", str(VOCAB),
           "--set", f"model.d_model={shape['d_model']}", "--set", f"model.n_layers={shape['layers']}",
           "--set", "model.n_heads=4", "--set", f"model.d_ff={4 * shape['d_model']}",
           "--seconds", str(seconds), "--json"]
    cmd += ["--steps-per-call", str(steps_per_call)] if steps_per_call else []
    return cmd + [a for s in extra for a in ("--set", s)]


def torch_command(shape: dict, seconds: float) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "torch_eager.py"), "--d-model", str(shape["d_model"]),
            "--layers", str(shape["layers"]), "--heads", "4", "--seq", str(shape["seq"]),
            "--batch", str(shape["batch"]), "--vocab", str(VOCAB), "--seconds", str(seconds)]


def measure(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--rounds", type=int, default=3, help="alternating JAX/torch measurements per shape")
    p.add_argument("--seconds", type=float, default=8.0, help="timed loop of each measurement")
    p.add_argument("--steps-per-call", type=int, default=None, help="JAX steps scanned per call")
    p.add_argument("--jax-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for the JAX side (attention path, dtype)")
    a = p.parse_args()
    rows = []
    for name in a.shapes:
        shape, got = SHAPES[name], {"jax": [], "torch": []}
        for _ in range(a.rounds):
            for impl, cmd in (("jax", jax_command(shape, a.seconds, a.steps_per_call, a.jax_set)),
                              ("torch", torch_command(shape, a.seconds))):
                result = measure(cmd)
                got[impl].append(result["tokens_per_s"])
                print(json.dumps({"shape": name, "impl": impl, **result}), flush=True)
        jax_med, torch_med = statistics.median(got["jax"]), statistics.median(got["torch"])
        rows.append((name, jax_med, torch_med, jax_med / torch_med))
    print("\n| shape | JAX tokens/s | torch eager tokens/s | ratio |\n|---|---:|---:|---:|")
    for name, j, t, r in rows:
        print(f"| {name} | {j:,.0f} | {t:,.0f} | {r:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
