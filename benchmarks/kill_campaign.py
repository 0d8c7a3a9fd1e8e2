"""Kill campaign: SIGKILL every stage of a study at random moments, rerun, compare.

The oracle is the same study run once without interruption (the reference). The campaign
runs each stage as a user would (`scaling train`, `scaling eval`, `scaling sweep --workers 2
--pack 2`, `scaling results`, `scaling fit`, `scaling figures`), kills its whole process
group (a preempted machine takes the workers with it) at a random moment, reruns it, kills
it again, ... and finally lets it finish. Then every artefact is compared with the reference:

  metrics.jsonl, eval_steps.jsonl  line by line, bitwise (less the wall-clock tokens_per_s)
  eval.json                        bitwise (less its timings: seconds, items_per_s)
  status.json                      bitwise (less its wall-clock timings)
  checkpoint_sums.json             the same steps (orbax names its data files at random)
  checkpoints/                     the same steps kept; every array restored bitwise equal
  every other file                 byte-identical (results.csv, trajectory.csv, fit.json,
                                   fit.md, figures/*.png|svg, config.json, accounting.json,
                                   tokenizer.json, sweep.json, ...)
and no file may be missing or extra (locks and temporary files of killed writers aside,
which are counted and reported as debris).

    python benchmarks/kill_campaign.py --work runs/campaign               # full: >= 20 kills
    python benchmarks/kill_campaign.py --work runs/campaign --small       # the CI version

Prints one JSON report (kills per stage, reruns, artefacts compared, mismatches) and exits
1 on any mismatch. Needs the world datasets built once (SCALING_DATA_DIR is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODEL = """
[model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
seq_len = 16
[data]
story_fraction = 0.0  # rows of 17 tokens cannot hold a human-story unit
[train]
batch_size = 4
steps_per_call = 5
checkpoint_every = 10
eval_every = 10
warmup_steps = 2
keep_checkpoints = 2
[eval]
enabled = true
max_items = 40
"""

TRAIN = MODEL.replace("[train]\n", "[train]\nsteps = 60\n").replace("max_items = 40\n", "max_items = 40\ncheckpoints = [20]\n")

def sweep_text(small: bool = False) -> str:
    """The model config as a sweep base ([config.SECTION] tables) and a dose x seed grid."""
    lines, section = [], None
    for line in MODEL.strip().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            lines.append(f"[config.{section}]")
            if section == "train":
                lines.append("steps = 30")
        else:
            lines.append(line)
    doses = [0.0, 0.2] if small else [0.0, 0.05, 0.2]
    grid = f'[[grid]]\n"data.aligned_fraction" = {doses}\n"train.seed" = [0, 1]\n'
    return 'preset = "nano"\n' + "\n".join(lines) + "\n" + grid


def stages(work: Path) -> list[tuple[str, list[str], str]]:
    """(name, argv relative to the tree, output it resumes or "") in study order. A stage
    that resumes skips finished work on a rerun; the others redo everything and overwrite
    atomically."""
    return [
        ("train", ["train", "../train.toml", "--out", "run", "--no-progress"], "run"),
        ("eval", ["eval", "run", "--max-items", "40"], ""),
        ("sweep", ["sweep", "../sweep.toml", "--out", "sweep", "--workers", "2", "--pack", "2",
                   "--no-progress", "--no-results"], "sweep"),
        ("results", ["results", "sweep"], ""),
        ("fit", ["fit", "sweep/results.csv", "--out", "sweep", "--models", "loglinear,LL.2"], ""),
        ("figures", ["figures", "sweep", "--formats", "png,svg"], ""),
    ]


def environment() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    env.setdefault("SCALING_DATA_DIR", str(ROOT / ".cache" / "test-data"))
    return env


def start(argv: list[str], cwd: Path, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scaling.cli", *argv], cwd=cwd, env=environment(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def run_reference(work: Path) -> dict[str, float]:
    tree = work / "reference"
    tree.mkdir(parents=True)
    durations = {}
    with open(work / "reference.log", "w") as log:
        for name, argv, _ in stages(work):
            t0 = time.perf_counter()
            rc = start(argv, tree, log).wait()
            durations[name] = time.perf_counter() - t0
            if rc != 0:
                raise SystemExit(f"reference stage {name} exited {rc}: see {work / 'reference.log'}")
    return durations


def run_campaign(work: Path, durations: dict, kills_per_stage: dict, rng: random.Random) -> dict:
    tree = work / "killed"
    tree.mkdir(parents=True)
    report = {}
    with open(work / "killed.log", "w") as log:
        for name, argv, output in stages(work):
            kills, reruns, restarts, moments = 0, 0, 0, []
            attempts, estimate, fresh = 0, durations[name], True
            while kills < kills_per_stage.get(name, 0) and attempts < 4 * kills_per_stage[name]:
                attempts += 1
                # anywhere from interpreter start to the expected end: imports, compiling,
                # training calls, checkpoint writes, evaluation, table and figure writes
                delay = rng.uniform(0.05, 0.95) * estimate
                log.write(f"\n=== {name}: attempt {attempts}, kill after {delay:.2f}s\n")
                log.flush()
                t0 = time.perf_counter()
                proc = start(argv, tree, log)
                try:
                    rc = proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers
                    proc.wait()
                    kills += 1
                    moments.append(round(delay, 2))
                    fresh = False
                    continue
                reruns += 1
                if rc != 0:
                    raise SystemExit(f"{name} exited {rc} after a kill: see {work / 'killed.log'}")
                if output:
                    # it finished before the kill: a finished stage has nothing left to kill,
                    # so start it over (its final artefacts must still equal the reference)
                    if fresh:
                        estimate = time.perf_counter() - t0
                    shutil.rmtree(tree / output)
                    restarts, fresh = restarts + 1, True
            log.write(f"\n=== {name}: final rerun\n")
            log.flush()
            rc = start(argv, tree, log).wait()
            reruns += 1
            if rc != 0:
                raise SystemExit(f"{name} exited {rc} on its final rerun: see {work / 'killed.log'}")
            report[name] = {"kills": kills, "kill_moments_s": moments, "reruns": reruns,
                            "restarts_from_scratch": restarts, "reference_s": round(durations[name], 2)}
    return report


# ---------------------------------------------------------------- comparison

DEBRIS = ("lock", "lock.stale.", ".lock.", ".", "status.error.json", "error.previous.txt")


def is_debris(rel: Path) -> bool:
    """Files a killed writer may leave that are no artefact: locks, temporary files."""
    return any(part.startswith(DEBRIS) or part.endswith(".tmp") or "orbax-checkpoint-tmp" in part
               for part in rel.parts)


def _jsonl(path: Path, drop: str) -> list:
    rows = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        row.pop(drop, None)
        rows.append(row)
    return rows


def _restore(step_dir: Path):
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as ckptr:
        return ckptr.restore(step_dir.absolute() / "default")


def _arrays_equal(a, b) -> bool:
    import jax
    import numpy as np

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(la, lb))


def compare_trees(ref: Path, got: Path) -> dict:
    mismatches, compared, debris = [], 0, []

    def artefacts(root: Path) -> set[Path]:
        """Files, plus checkpoint step directories (compared by their restored arrays)."""
        out = set()
        for p in root.rglob("*"):
            rel = p.relative_to(root)
            in_checkpoint = "checkpoints" in rel.parts[:-1]
            if not (p.is_file() and not in_checkpoint or p.is_dir() and p.parent.name == "checkpoints"):
                continue
            if is_debris(rel):
                if root == got:
                    debris.append(str(rel))
            else:
                out.add(rel)
        return out

    a, b = artefacts(ref), artefacts(got)
    mismatches += [f"missing: {p}" for p in sorted(a - b)]
    mismatches += [f"extra: {p}" for p in sorted(b - a)]
    for rel in sorted(a & b):
        x, y = ref / rel, got / rel
        compared += 1
        if x.is_dir():  # one checkpoint step: every array bitwise
            if not _arrays_equal(_restore(x), _restore(y)):
                mismatches.append(f"checkpoint arrays differ: {rel}")
        elif x.name in ("metrics.jsonl", "eval_steps.jsonl"):
            if _jsonl(x, "tokens_per_s") != _jsonl(y, "tokens_per_s"):
                mismatches.append(f"lines differ: {rel}")
        elif x.name == "eval.json":
            ex, ey = json.loads(x.read_text()), json.loads(y.read_text())
            for e in (ex, ey):  # wall-clock timings
                e.pop("seconds", None)
                e.pop("items_per_s", None)
            if ex != ey:
                mismatches.append(f"differs: {rel}")
        elif x.name == "status.json":
            sx, sy = json.loads(x.read_text()), json.loads(y.read_text())
            sx.pop("timings", None), sy.pop("timings", None)
            if sx != sy:
                mismatches.append(f"differs: {rel}")
        elif x.name == "checkpoint_sums.json":
            # orbax names data files at random: the same checkpoints have other sums; the
            # arrays themselves are compared above, here only which steps are recorded
            if sorted(json.loads(x.read_text())) != sorted(json.loads(y.read_text())):
                mismatches.append(f"recorded steps differ: {rel}")
        elif x.read_bytes() != y.read_bytes():
            mismatches.append(f"bytes differ: {rel}")
    return {"artefacts_compared": compared, "mismatches": mismatches, "debris": sorted(debris)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="scratch directory (emptied first)")
    p.add_argument("--small", action="store_true", help="the CI version: one kill per stage")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    work = Path(args.work).absolute()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "train.toml").write_text(TRAIN.replace("steps = 60", "steps = 30") if args.small else TRAIN)
    (work / "sweep.toml").write_text(sweep_text(args.small))
    per_stage = {"train": 4, "eval": 3, "sweep": 6, "results": 4, "fit": 4, "figures": 4}
    if args.small:
        per_stage = dict.fromkeys(per_stage, 1)
    t0 = time.perf_counter()
    durations = run_reference(work)
    stages_report = run_campaign(work, durations, per_stage, random.Random(args.seed))
    comparison = compare_trees(work / "reference", work / "killed")
    from scaling.verify import verify  # `scaling verify` on the killed study: it must find nothing

    problems = [f"{f.where}: {f.problem}" for f in verify(work / "killed" / "sweep", deep=True) if f.inconsistent]
    report = {"seed": args.seed, "stages": stages_report, "verify_problems": problems,
              "kills": sum(s["kills"] for s in stages_report.values()),
              "reruns": sum(s["reruns"] for s in stages_report.values()),
              "artefacts_compared": comparison["artefacts_compared"],
              "mismatches": len(comparison["mismatches"]), "mismatch_list": comparison["mismatches"],
              "debris": comparison["debris"], "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(report, indent=2))
    return 1 if comparison["mismatches"] or problems else 0


if __name__ == "__main__":
    sys.exit(main())
