"""Where the wall time goes: phases measured as they happen, and `scaling profile OUT`.

A `Clock` adds up wall seconds by phase. JAX reports every compile step (tracing, lowering
to MLIR, XLA compilation or a persistent-cache load) as a time span; the part of those spans
that falls inside a phase is moved out of it into `compile`, whichever phase triggered it,
so `train_steps` is time spent running compiled steps and `evaluation` time spent scoring.

Each run's phases go into its status.json as `timings` (seconds; written when a launch ends
the run, done or failed; a resumed run's timings cover the launch that finished it):

  startup      prepare the run (tokenizer, data source, config) and the programs, restore
  compile      compile spans inside any phase (see above)
  data         host batches stacked and put on the device
  train_steps  the compiled train calls, metrics fetched
  val_loss     the held-out loss every train.eval_every steps
  eval_steps   trajectory evaluations at eval.checkpoints
  checkpoints  checkpoint and accounting.json writes, closing the checkpoint manager
  evaluation   the final evaluation of the transformer (eval.json, eval_items.jsonl.gz)
  baselines    the counting baselines of the final evaluation
  records      metrics.jsonl lines, progress bar
  wall         seconds from the start of prepare to the end of the run in this launch
               (in a pack, the runs' walls overlap)
  runs_in_pack runs trained together: the pack's shared phases (startup of the programs,
               data, train steps, compile) are split evenly between them, so the phases of
               all runs add up to the launcher's time
  started_at, ended_at   Unix time
  steps        train steps run in this launch

`scaling study --profile` adds the study's own phases (process start-up, results.csv, fits,
figures) in OUT/profile.json and prints the table; `scaling profile OUT` prints it again
(or, without profile.json, the table of the runs' phases alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from scaling.errors import UsageError

RUN_PHASES = ("startup", "compile", "data", "train_steps", "val_loss", "eval_steps", "checkpoints",
              "evaluation", "baselines", "records")
STUDY_PHASES = ("results", "fit", "figures")
LABELS = {
    "process": "process start-up (Python, imports)",
    "setup": "sweep expanded and checked, compile cache",
    "startup": "run start-up (data, programs, restore)",
    "compile": "compile (trace, lower, XLA or cache load)",
    "train_steps": "train steps",
    "data": "batches to device",
    "val_loss": "held-out loss (eval_every)",
    "eval_steps": "evaluations at eval.checkpoints",
    "evaluation": "final evaluation (transformer)",
    "baselines": "counting baselines",
    "checkpoints": "checkpoint writes",
    "records": "logs and progress",
    "results": "results.csv",
    "fit": "fits",
    "figures": "figures",
    "other": "other (not in any phase)",
}
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")

_spans: list[tuple[float, float]] = []  # compile spans (Unix time), in the order they ended
_listening = False


def _on_span(event: str, start: float, end: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _spans.append((start, end))


def listen() -> None:
    """Start recording JAX's compile spans (once per process)."""
    global _listening
    if not _listening:
        import jax

        jax.monitoring.register_event_time_span_listener(_on_span)
        _listening = True


def compile_seconds(t0: float, t1: float) -> float:
    """Seconds of [t0, t1] covered by compile spans: their union, as spans nest (a jitted
    function traced inside another reports its own span)."""
    inside = []
    for start, end in reversed(_spans):  # spans are appended as they end: newest last
        if end <= t0:
            break
        if start < t1:
            inside.append((max(start, t0), min(end, t1)))
    covered, reach = 0.0, t0
    for start, end in sorted(inside):
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return covered


class Clock:
    """Wall seconds by phase, compile spans moved into `compile`."""

    def __init__(self):
        listen()
        self.seconds = dict.fromkeys(RUN_PHASES + STUDY_PHASES, 0.0)

    @contextlib.contextmanager
    def phase(self, name: str):
        t0 = time.time()
        try:
            yield
        finally:
            t1 = time.time()
            compiling = compile_seconds(t0, t1)
            self.seconds[name] += t1 - t0 - compiling
            self.seconds["compile"] += compiling

    def move(self, source: str, target: str, seconds: float) -> None:
        """Reattribute `seconds` measured inside `source` (a sub-phase timed by a callee)."""
        seconds = min(seconds, self.seconds[source])
        self.seconds[source] -= seconds
        self.seconds[target] += seconds

    def add(self, other: Clock, share: float = 1.0) -> None:
        for name, s in other.seconds.items():
            self.seconds[name] += share * s

    def run_record(self, started_at: float, runs_in_pack: int, steps: int) -> dict:
        ended_at = time.time()
        return {**{k: round(self.seconds[k], 4) for k in RUN_PHASES}, "wall": round(ended_at - started_at, 4),
                "runs_in_pack": runs_in_pack, "steps": steps,
                "started_at": round(started_at, 3), "ended_at": round(ended_at, 3)}


def process_started_at() -> float | None:
    """Unix time at which this process started (Linux /proc, 10 ms resolution), else None."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(after_name[19])  # field 22, starttime, in clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- the table


def run_timings(out: Path, window: tuple[float, float] | None = None) -> list[dict]:
    """`timings` of every run in OUT/runs (only those trained inside `window`, Unix times)."""
    found = []
    for status_path in sorted((Path(out) / "runs").glob("*/status.json")):
        try:
            timings = json.loads(status_path.read_text()).get("timings")
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(timings, dict):
            continue
        if window and not (window[0] <= timings["started_at"] and timings["ended_at"] <= window[1]):
            continue
        found.append(timings)
    return found


def table(runs: list[dict], study: dict | None = None) -> dict:
    """{rows: [(phase, seconds)], total, runs}: the runs' phases summed, the study's phases
    (profile.json) beside them and `other`, the measured total less every phase."""
    seconds = {k: sum(t.get(k, 0.0) for t in runs) for k in RUN_PHASES}
    if study:
        seconds = {"process": study["process"], "setup": study.get("setup", 0.0), **seconds,
                   **{k: study[k] for k in STUDY_PHASES}}
        seconds["compile"] += study.get("compile", 0.0)
        total = study["total"]
    else:  # no study around the runs: their phases are the whole
        total = sum(seconds.values())
    seconds["other"] = total - sum(seconds.values())
    return {"rows": list(seconds.items()), "total": total, "runs": len(runs)}


def format_table(t: dict) -> str:
    total = t["total"] or float("nan")
    lines = ["| phase | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {LABELS[k]} | {s:.1f} | {100 * s / total:.1f}% |" for k, s in t["rows"]]
    lines.append(f"| total ({t['runs']} runs) | {t['total']:.1f} | 100% |")
    return "\n".join(lines)


def write_study_profile(out: Path, study: dict, window: tuple[float, float]) -> dict:
    """OUT/profile.json: the study's phases and the table over the runs it trained."""
    t = table(run_timings(out, window), study)
    record = {"study": study, "window": list(window), **t}
    (Path(out) / "profile.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return t


def load_table(out: Path) -> dict:
    out = Path(out)
    if not (out / "runs").is_dir():
        raise UsageError(f"no sweep directory (OUT/runs) at {out}")
    path = out / "profile.json"
    if path.exists():
        record = json.loads(path.read_text())
        return table(run_timings(out, tuple(record["window"])), record["study"])
    runs = run_timings(out)
    if not runs:
        raise UsageError(f"no run in {out}/runs has timings (status.json) yet")
    return table(runs)
