"""The accelerator benchmark behind benchmarks/accelerator.sh; writes one JSON file.

Sections (each timed; a failing section records its error and the others still run):
  bench_base  `scaling bench` at the `base` preset (85M non-embedding params, bf16, batch 64 x
              seq 512, the world's 992-word vocabulary): tokens/s and MFU, against the matmul
              peak measured on the device and against the vendor's dense bf16 peak if known
  packed      nano and micro at pack K = 1, 8, 32, 128: tokens/s of all K runs, relative to K=1
  quickstart  wall time of `scaling study sweeps/quickstart.toml` (dataset build included)
--tiny shrinks every shape so the script can be checked on a CPU in a couple of minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Dense bf16 peak FLOP/s from the vendors' data sheets (no sparsity), by jax device_kind.
NOMINAL_BF16_PEAK = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100": 989e12, "NVIDIA H200": 989e12,
                     "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA A100-SXM4-40GB": 312e12,
                     "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v6 lite": 918e12, "TPU v4": 275e12}


def config(preset: str, overrides: list[str]):
    from scaling.config import merge, read_toml
    from scaling.plan import config_from_dict

    # random tokens: the data config is unused, and short tiny rows cannot hold a story unit
    cfg = config_from_dict(merge(read_toml(preset), ["data.story_fraction=0", *overrides]))
    model = dataclasses.replace(cfg.model, vocab_size=cfg.model.vocab_size or 992)
    return dataclasses.replace(cfg, model=model)


def bench_base(tiny: bool) -> dict:
    from scaling.bench import bench

    over = ["model.compute_dtype=\"bfloat16\""]
    if tiny:
        over += ["model.d_model=64", "model.n_layers=1", "model.n_heads=2", "model.d_ff=128",
                 "model.seq_len=32", "train.batch_size=4"]
    cfg = config("base", over)
    r = bench(cfg, steps_per_call=10, repeats=3 if tiny else 10, seconds=1.0 if tiny else 5.0)
    nominal = NOMINAL_BF16_PEAK.get(r["device"])
    r["mfu_nominal_peak"] = r["flops_per_s"] / nominal if nominal else None
    r["nominal_peak_flops_per_s"] = nominal
    return r


def packed(tiny: bool) -> dict:
    from scaling.bench import bench

    out = {}
    packs = (1, 2) if tiny else (1, 8, 32, 128)
    for preset in ("nano", "micro"):
        over = ["train.batch_size=4", "model.seq_len=16"] if tiny else []
        cfg = config(preset, over)
        rows = []
        for k in packs:
            r = bench(cfg, steps_per_call=10, repeats=3, seconds=0.5 if tiny else 2.0, pack=k)
            rows.append({"pack": k, "tokens_per_s": r["tokens_per_s"], "step_ms": r["step_ms"],
                         "compile_s": r["compile_s"], "mfu": r["mfu"]})
            rows[-1]["relative_to_pack_1"] = rows[-1]["tokens_per_s"] / rows[0]["tokens_per_s"]
            print(f"  {preset} pack {k}: {r['tokens_per_s']:,.0f} tokens/s "
                  f"(x{rows[-1]['relative_to_pack_1']:.1f})", flush=True)
        out[preset] = rows
    return out


def quickstart(tiny: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "scaling.cli", "study", "sweeps/quickstart.toml", "--out",
               str(Path(tmp) / "qs"), "--no-progress"]
        if tiny:
            cmd += ["--set", "train.steps=10", "--set", "eval.max_items=64"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 1), "exit_code": proc.returncode, "command": " ".join(cmd[1:]),
            "tail": proc.stdout[-1500:] + proc.stderr[-1500:]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--tiny", action="store_true", help="tiny shapes: check the script on a CPU")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args()
    import jax

    from scaling.rundir import environment

    result = {"tiny": args.tiny, "environment": environment(),
              "devices": [getattr(d, "device_kind", str(d)) for d in jax.devices()], "sections": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for name, fn in (("bench_base", bench_base), ("packed", packed), ("quickstart", quickstart)):
        print(f"{name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            result[name] = fn(args.tiny)
        except Exception:  # noqa: BLE001 - one broken section must not lose the others
            result[name] = {"error": traceback.format_exc()[-3000:]}
        result["sections"][name] = round(time.perf_counter() - t0, 1)
        result["elapsed_s"] = round(time.perf_counter() - t_all, 1)
        out.write_text(json.dumps(result, indent=2, default=float) + "\n")  # after every section
        print(f"{name}: {result['sections'][name]} s", flush=True)
    failed = [k for k in ("bench_base", "packed", "quickstart") if "error" in result[k]]
    print(f"wrote {out} ({result['elapsed_s']} s){'; failed: ' + ', '.join(failed) if failed else ''}")
    return 1 if failed or result["quickstart"].get("exit_code") else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
