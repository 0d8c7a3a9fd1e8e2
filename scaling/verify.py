"""`scaling verify DIR`: is a run or sweep directory consistent, and what must be rerun?

Reads only what is on disk (no training, no JAX unless `--deep`). For each run:
  config     config.json readable; in a sweep, its hash is the directory name (RUN_ID); every
             input file still has the sha256 recorded when the run was trained
  status     status.json readable; done / running / failed / error / pending, and for a
             `running` run whether a live launcher holds it or it was interrupted
  checkpoints  a done run's latest checkpoint is its last step; every file of a checkpoint
             matches the sha256 recorded when it was saved; leftovers of killed writes; with
             --deep every checkpoint is also restored (a damaged one is named)
  metrics    metrics.jsonl lines parse, steps 1..N each once (N = the latest checkpoint for an
             interrupted run, total_steps for a done one), held-out loss present
  accounting accounting.json at the same step as the checkpoint, tokens = steps x tokens per
             step, dose = aligned tokens / tokens before post-training (all tokens without post
             stages), no aligned tokens without an aligned pool
  eval       a done run with evaluation on has eval.json at its last step
For a sweep also: every run of sweep.json has a directory, and results.csv / trajectory.csv
equal the tables rebuilt from the runs (byte for byte, as `scaling results` writes them).

Prints one line per finding and the commands that repair what is inconsistent; exit status
0 when consistent, 1 when not, 2 when DIR is neither a run nor a sweep directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from pathlib import Path

from scaling.errors import UsageError
from scaling.io import RunFiles, checkpoint_sums, read_json_why

STEP_DIR = re.compile(r"^\d+$")


@dataclasses.dataclass
class Finding:
    where: str  # run id, or a file of the sweep
    problem: str
    fix: str = ""  # the command (or action) that repairs it; "" = informational only

    @property
    def inconsistent(self) -> bool:
        return bool(self.fix)


def checkpoint_steps(run_dir: Path) -> tuple[list[int], list[str]]:
    """Committed checkpoint steps, and leftovers of interrupted writes."""
    ckpt = RunFiles(run_dir).checkpoints
    if not ckpt.is_dir():
        return [], []
    steps, debris = [], []
    for p in ckpt.iterdir():
        if STEP_DIR.match(p.name) and p.is_dir():
            steps.append(int(p.name))
        elif "tmp" in p.name:
            debris.append(p.name)
    return sorted(steps), sorted(debris)


def metric_steps(run_dir: Path) -> tuple[list[int], list[int], list[int]]:
    """(steps of loss lines, steps of val_loss lines, numbers of unparsable lines)."""
    loss, val, bad = [], [], []
    path = RunFiles(run_dir).metrics
    if not path.exists():
        return loss, val, bad
    for n, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            step = row["step"]
        except (ValueError, KeyError, TypeError):
            bad.append(n)
            continue
        (val if "val_loss" in row else loss).append(step)
    return loss, val, bad


def _restorable(step_dir: Path) -> str:
    """'' if orbax restores the checkpoint, else why not."""
    import orbax.checkpoint as ocp

    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.restore(step_dir.absolute() / "default")
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        return f"{type(e).__name__}: {str(e)[:120]}"
    return ""


def _live_claim(run_dir: Path) -> bool:
    from scaling.sweep import claimed_by_live_launcher

    return claimed_by_live_launcher(run_dir)


def check_run(run_dir: Path, in_sweep: bool, rerun: str, deep: bool = False) -> list[Finding]:
    """Findings for one run directory; `rerun` is the command that resumes it."""
    from scaling.errors import ConfigError
    from scaling.plan import config_from_dict

    rid = run_dir.name
    out: list[Finding] = []
    files = RunFiles(run_dir)
    record, why = read_json_why(files.config)
    status, swhy = read_json_why(files.status)
    state = status.get("status") if isinstance(status, dict) else None
    if state == "error":
        reason = status.get("reason") or "?"
        return [Finding(rid, f"recorded as error ({reason})",
                        f"{rerun} --retry-errors" if in_sweep else rerun)]
    if record is None:
        if why == "missing" and state is None:
            return [Finding(rid, "not started", rerun)]
        return [Finding(rid, f"config.json {why}", f"move {run_dir} away, then {rerun}")]
    try:
        cfg = config_from_dict(record["config"])
    except (ConfigError, KeyError, TypeError) as e:
        return [Finding(rid, f"config.json does not hold a valid config ({e})", f"move {run_dir} away, then {rerun}")]
    recorded = record.get("inputs") or []  # runs recorded before content hashing: none
    if in_sweep:
        from scaling.sweep import run_id

        # the directory is named after the unresolved config (vocab_size 0 = from tokenizer)
        # and the input files' content when it was trained
        unresolved = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=0))
        if rid not in (run_id(cfg, recorded), run_id(unresolved, recorded)):
            out.append(Finding(rid, "config hash does not match the directory name: this directory "
                               "holds another run's config", f"move {run_dir} away, then {rerun}"))
    from scaling.inputs import changed

    for line in changed(recorded):
        out.append(Finding(rid, f"input file edited since training: {line}; the run describes the old "
                           "data (a rerun trains the edited data as new runs)", f"move {run_dir} away, then {rerun}"))
    total = record.get("total_steps")
    steps, debris = checkpoint_steps(run_dir)
    if debris:
        out.append(Finding(rid, f"leftovers of interrupted checkpoint writes: {', '.join(debris)} "
                           "(ignored on resume)"))
    sums, _ = read_json_why(files.sums)
    for s in steps:
        want = sums.get(str(s)) if isinstance(sums, dict) else None
        if isinstance(want, dict) and checkpoint_sums(files.checkpoint(s)) != want:
            out.append(Finding(rid, f"checkpoint {s} differs from the sha256 recorded when it was saved "
                               "(damaged); a resume sets it aside and falls back to the previous one",
                               rerun if state != "done" else f"move {run_dir} away, then {rerun}"))
    if deep:
        for s in reversed(steps):
            problem = _restorable(files.checkpoint(s))
            if problem:
                out.append(Finding(rid, f"checkpoint {s} cannot be restored ({problem}); a resume falls "
                                   "back to the previous one", rerun if state != "done" else
                                   f"move {run_dir} away, then {rerun}"))
    latest = steps[-1] if steps else 0
    loss, val, bad = metric_steps(run_dir)
    if bad:
        out.append(Finding(rid, f"metrics.jsonl has unreadable line(s) {bad[:5]}",
                           rerun if state != "done" else f"move {run_dir} away, then {rerun}"))
    if state is None:
        out.append(Finding(rid, f"status.json {swhy}; last checkpoint at step {latest}", rerun))
        return out
    if state == "running":
        if _live_claim(run_dir):
            out.append(Finding(rid, f"being trained by a live launcher (checkpoint at step {latest})"))
        else:
            out.append(Finding(rid, f"interrupted (last checkpoint at step {latest} of {total})", rerun))
        if sorted(set(loss)) != list(range(1, len(set(loss)) + 1)) or len(loss) != len(set(loss)):
            out.append(Finding(rid, "metrics.jsonl steps are not 1..N each once", rerun))
        return out
    if state == "failed":
        out.append(Finding(rid, f"failed at step {status.get('step')} ({status.get('reason')}): "
                           "deterministic, rerunning fails the same way"))
        return out
    if state != "done":
        out.append(Finding(rid, f"unknown status {state!r}", rerun))
        return out
    # done: every record must agree on the last step
    if latest != total:
        out.append(Finding(rid, f"status done but the latest checkpoint is step {latest}, not {total}",
                           f"move {run_dir} away, then {rerun}"))
    if loss != list(range(1, (total or 0) + 1)):
        missing = sorted(set(range(1, (total or 0) + 1)) - set(loss))
        dup = len(loss) - len(set(loss))
        out.append(Finding(rid, f"metrics.jsonl loss steps are not 1..{total} each once "
                           f"({len(missing)} missing, {dup} repeated)", f"move {run_dir} away, then {rerun}"))
    if total and total not in val:
        out.append(Finding(rid, f"no held-out loss at the last step {total}", f"move {run_dir} away, then {rerun}"))
    out += _check_accounting(run_dir, rid, record, cfg, total, rerun)
    if cfg.eval.enabled:
        ev, ewhy = read_json_why(files.eval)
        if ev is None:
            out.append(Finding(rid, f"eval.json {ewhy}", f"scaling eval {run_dir}"))
        elif isinstance(ev, dict) and ev.get("step") not in (None, total):
            out.append(Finding(rid, f"eval.json is of step {ev.get('step')}, not the last step {total}",
                               f"scaling eval {run_dir}"))
    return out


def _check_accounting(run_dir, rid, record, cfg, total, rerun) -> list[Finding]:
    acc, why = read_json_why(RunFiles(run_dir).accounting)
    fix = f"move {run_dir} away, then {rerun}"
    if not isinstance(acc, dict):
        return [Finding(rid, f"accounting.json {why or 'is not an object'}", fix)]
    out = []
    per_step = record.get("tokens_per_step") or cfg.tokens_per_step
    if acc.get("steps") != total:
        out.append(Finding(rid, f"accounting.json is of step {acc.get('steps')}, not {total}", fix))
    if acc.get("total_tokens") != (acc.get("steps") or 0) * per_step:
        out.append(Finding(rid, f"accounting.json: total_tokens {acc.get('total_tokens')} != steps x "
                           f"tokens per step ({acc.get('steps')} x {per_step})", fix))
    tokens, aligned = acc.get("total_tokens") or 0, acc.get("aligned_tokens")
    all_aligned, what = aligned, "all tokens"
    if isinstance(acc.get("dose_tokens"), int | float) and isinstance(acc.get("tokens"), dict):
        from scaling.plan import of  # post-training stages are outside the dose

        pre = {st.name for st in of(cfg).stages if not st.post}
        aligned = sum((acc["tokens"].get(n) or {}).get("aligned", 0) for n in pre)
        tokens, what = acc["dose_tokens"], "tokens before post-training"
    dose = acc.get("dose")
    if not isinstance(dose, int | float) or not isinstance(aligned, int | float) or \
            tokens and not math.isclose(dose, aligned / tokens, rel_tol=1e-12, abs_tol=1e-15):
        out.append(Finding(rid, f"accounting.json: dose {dose} != aligned tokens / {what} "
                           f"({aligned} / {tokens})", fix))
    aligned = all_aligned
    if cfg.data.aligned_fraction == 0 and aligned:
        out.append(Finding(rid, f"accounting.json: {aligned} aligned tokens but aligned_fraction is 0", fix))
    return out


def _table_findings(sweep_dir: Path) -> list[Finding]:
    """results.csv and trajectory.csv against tables rebuilt from the runs, byte for byte."""
    from scaling import results as results_mod

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            df = results_mod.results_table(sweep_dir)
        except Exception as e:  # noqa: BLE001 - a run that breaks the table is the finding
            return [Finding("results.csv", f"cannot rebuild the table from the runs ({e})",
                            f"scaling verify {sweep_dir} (fix the runs named above)")]
        tables = {"results.csv": df, "trajectory.csv": results_mod.trajectory_table(sweep_dir, df)}
        for name, table in tables.items():
            want = Path(tmp) / name
            results_mod._write_csv(table, want)
            have = sweep_dir / name
            if not have.exists():
                out.append(Finding(name, "missing", f"scaling results {sweep_dir}"))
            elif have.read_bytes() != want.read_bytes():
                out.append(Finding(name, "differs from the table rebuilt from the runs (stale, damaged "
                                   "or edited)", f"scaling results {sweep_dir}"))
        out += duplicate_rows(df, sweep_dir)
    return out


def duplicate_rows(df, sweep_dir: Path) -> list[Finding]:
    """Rows that agree on every identifying column (scaling.results.row_key): one run's
    evaluation of one model on one split recorded twice."""
    from scaling.results import row_key

    dup = df[df.duplicated(row_key(df.columns), keep=False)] if not df.empty else df
    if dup.empty:
        return []
    first = dup.iloc[0]
    return [Finding("results.csv", f"{len(dup)} rows share run, model and split (e.g. run {first['run_id']}, "
                    f"model {first['model']}, split {first['split']})", f"scaling results {sweep_dir}")]


def verify(path: str | Path, deep: bool = False) -> list[Finding]:
    d = Path(path)
    if (d / "runs").is_dir() or (d / "sweep.json").exists():
        manifest, why = read_json_why(d / "sweep.json")
        rerun = "scaling sweep SWEEP.toml --out " + str(d)
        if isinstance(manifest, dict):
            sweep_file = manifest.get("sweep", "SWEEP.toml")
            sets = "".join(f" --set {o}" for o in manifest.get("overrides", []))
            rerun = f"scaling sweep {sweep_file} --out {d}{sets}"
        findings = [] if manifest is not None else [Finding("sweep.json", why, rerun)]
        listed = set((manifest or {}).get("runs", {})) if isinstance(manifest, dict) else set()
        present = {p.name: p for p in sorted((d / "runs").glob("*")) if p.is_dir()}
        for rid in sorted(listed - set(present)):
            findings.append(Finding(rid, "not started", rerun))
        for rid, run_dir in present.items():
            if listed and rid not in listed:
                findings.append(Finding(rid, "not a run of sweep.json (another sweep's run, or the "
                                        "sweep changed); it still goes into results.csv"))
            findings += check_run(run_dir, True, rerun, deep)
        return findings + _table_findings(d)
    if RunFiles(d).config.exists() or RunFiles(d).status.exists():
        return check_run(d, False, f"scaling train CONFIG --out {d}", deep)
    raise UsageError(f"{d} is neither a run directory (config.json) nor a sweep directory (runs/)")
