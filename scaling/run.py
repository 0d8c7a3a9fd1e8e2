"""One run, or a pack of runs, end to end: what `scaling train` and the sweep launcher call.

`prepare` turns a plan and a run directory into a run of the training loop
(scaling.train.loop): the directory checked against the plan (scaling.rundir), its tokenizer
read back or built, the batch source built (scaling.train.source). `train_runs` trains
prepared runs of one pack key with the loop's hooks wired here, the only place that knows all
three of the run directory, evaluation and shared pretraining:

- restore: the newest readable checkpoint, else (a sweep's run that has not reached its
  branch step) the exported trunk of its branch key (scaling.branches), else step 0;
- begin: the logs cut back to the start step, status "running", and a branched run's
  records at its branch step (its evaluation there, if eval.checkpoints names it, then its
  own checkpoint);
- every call: its metrics lines into metrics.jsonl; at eval.checkpoints the evaluation
  (scaling.evaluate.record_step); at train.checkpoint_every, the eval checkpoints and the
  end, accounting.json and a checkpoint; at the branch step, the trunk's export;
- at the end: the final evaluation (scaling.evaluate.evaluate_run), the timings and notes,
  status.json.

`run_group(members, width, branches)` is the launcher's one call: it prepares each (plan,
directory) and trains them together, so the launcher never reaches inside a run.
`train(cfg, out)` trains (or resumes, or skips if finished) one run.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

from scaling import branches, evaluate, profiling, rundir
from scaling import plan as planning
from scaling.config import Config
from scaling.io import RunFiles
from scaling.plan import RunPlan
from scaling.train import loop


@dataclasses.dataclass
class RunDir(loop.Run):
    """A run of the loop that lives in a run directory."""

    out: Path = Path()
    tok: object = None
    mngr: object = None
    log: object = None
    evaluate: bool = False  # whether the hooks evaluate it (eval.enabled, a tokenizer)
    branches: Path | None = None  # a sweep's shared pretraining (scaling.branches); None: never shared
    width: int = 1  # the vmapped width it trains at (part of its branch key)
    branch: tuple[str, int] | None = None  # (branch key, branch step) when the run can share
    branched: str = ""  # the trunk run this run's pretraining came from ("" if trained here)


def vocab_notes(cfg: Config, tok) -> list[str]:
    """What the run's status.json ("notes") and log say about its vocabulary: a SentencePiece
    model trained here with fewer pieces than data.tokenizer_vocab_size."""
    from scaling.data import tokenizer

    trained_here = cfg.data.tokenizer == "sentencepiece" and not cfg.data.tokenizer_file
    note = tokenizer.shortfall(tok, cfg.data.tokenizer_vocab_size) if trained_here and tok is not None else None
    return [note] if note else []


def _saved_tokenizer(out: Path):
    """The run directory's own tokenizer (a resumed run reads the ids it trained on), or None
    if there is none or it is unreadable (then it is rebuilt: the same config gives the same)."""
    try:
        return rundir.load_tokenizer(out)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare(plan: RunPlan | Config, out: str | Path, source: loop.BatchSource | None = None, tok=None,
            repair: bool = False) -> RunDir:
    """Validate the run directory and build the run's data; nothing is trained yet. A
    finished run comes back with its `status` set. `repair`: the caller knows the directory
    belongs to the plan (a sweep names it by the config's hash), so a damaged config.json is
    rewritten rather than refused. `plan` may be a config (checked and dose-resolved)."""
    started_at, clock = time.time(), profiling.Clock()
    with clock.phase("startup"):
        run = _prepare(planning.of(plan), Path(out), source, tok, repair)
    run.clock, run.started_at = clock, started_at
    return run


def _prepare(plan: RunPlan, out: Path, source, tok, repair: bool) -> RunDir:
    if source is None:
        from scaling.data.vocab import build_tokenizer

        tok = _saved_tokenizer(out) or build_tokenizer(plan.config)
    if tok is not None:
        plan = plan.with_tokenizer(tok)
    try:
        mode = rundir.check_run_dir(out, plan.config)
    except rundir.DamagedRunError as e:
        if not repair:
            raise
        warnings.warn(f"{e}: rewriting it from the sweep's config", rundir.DamagedStateWarning, stacklevel=4)
        mode = "repair"
    if mode == "done":
        return RunDir(plan, source, status=rundir.read_status(out), out=out, tok=tok)
    if source is None:
        from scaling.train.source import make_source

        source = make_source(plan, tok)
    out.mkdir(parents=True, exist_ok=True)
    if mode in ("new", "repair"):
        if tok is not None:
            rundir.save_tokenizer(out, tok)
        rundir.write_config(out, plan.config, source.total_steps)
    return RunDir(plan, source, out=out, tok=tok)


def check_data(plan: RunPlan, tokenizers: dict) -> None:
    """Build the run's data (its tokenizer, one per tokenizer spec in `tokenizers`, and its
    batch source) to find the config errors that show only then; raises them."""
    from scaling.data.vocab import build_tokenizer
    from scaling.train.source import make_source

    if plan.tokenizer_spec not in tokenizers:
        tokenizers[plan.tokenizer_spec] = build_tokenizer(plan.config)
    tok = tokenizers[plan.tokenizer_spec]
    make_source(plan.with_tokenizer(tok), tok)


# ---------------------------------------------------------------- the hooks


def _restore(run: RunDir, state, like_at):
    """The newest readable checkpoint (a damaged one is set aside with a warning and the
    previous one is used), else a shared pretraining, else step 0."""
    run.mngr = rundir.checkpoint_manager(run.out, run.cfg)
    restored, step = rundir.restore_newest(run.mngr, like_at)
    state, step = (state, 0) if restored is None else (restored, step)
    return _share_pretraining(run, state, step, like_at)


def _share_pretraining(run: RunDir, state, start: int, like_at):
    """scaling.branches: a run of a sweep that has not reached its branch step starts there
    from an exported trunk of its key, if there is one; a run restored exactly at that step
    exports it (a kill after the checkpoint and before the export). Returns (state, step)."""
    b = run.plan.branch_step if run.branches is not None else 0
    files = RunFiles(run.out)
    if start == 0:
        files.shared_pretraining.unlink(missing_ok=True)  # trained here unless shared below
    if not b or start > b:
        return state, start
    run.branch = (branches.branch_key(run.plan, run.source, run.width), b)
    if start == b:
        branches.export(run.branches, run.branch[0], b, run.cfg, state, run.out)
        return state, start
    shared, record = branches.find(run.branches, run.branch[0], b, run.cfg, like_at(b))
    if shared is None:
        return state, start
    branches.take_logs(run.branches, run.branch[0], run.out)
    rundir.write_json(files.shared_pretraining, {"trunk": record["trunk"], "key": run.branch[0], "step": b})
    run.branched = record["trunk"]
    return shared, b


def _begin(run: RunDir, state, model) -> None:
    rundir.truncate_logs(run.out, run.start)
    rundir.write_status(run.out, {"status": "running", "step": run.start})
    run.log = open(RunFiles(run.out).metrics, "a")  # noqa: SIM115 - closed by _finish
    if run.branched:
        _enter_branch(run, state, model)


def _enter_branch(run: RunDir, state, model) -> None:
    """A branched run's step-b records, as a run trained through step b would have them:
    its evaluation at b (if eval.checkpoints names it), then its own checkpoint."""
    b = run.start
    if b in run.cfg.eval.checkpoints and run.evaluate:
        with run.clock.phase("eval_steps"):
            evaluate.record_step(run.out, run.cfg, run.tok, model(), b, run.heldout)
    with run.clock.phase("checkpoints"):
        rundir.write_json(RunFiles(run.out).accounting, run.source.accounting(b))
        rundir.save_checkpoint(run.mngr, b, state)


def _log(info: loop.StepInfo) -> None:
    for line in info.lines:
        info.run.log.write(json.dumps(line) + "\n")
    info.run.log.flush()


def _evaluate_at(info: loop.StepInfo) -> None:
    run = info.run
    evaluate.record_step(run.out, run.cfg, run.tok, info.model(), info.step, run.heldout)


def _checkpoint(info: loop.StepInfo) -> None:
    run = info.run
    rundir.write_json(RunFiles(run.out).accounting, run.source.accounting(info.step))
    rundir.save_checkpoint(run.mngr, info.step, info.state)


def _export(info: loop.StepInfo) -> None:
    run = info.run
    if run.branch and info.step == run.branch[1] and not run.branched:
        branches.export(run.branches, run.branch[0], info.step, run.cfg, info.state, run.out)


def hooks(run: RunDir) -> loop.Hooks:
    """The loop's hooks of a run that lives in a run directory (module doc), in the order the
    records were always written: metrics, evaluation, checkpoint, branch export."""
    cfg = run.cfg
    checkpoints = frozenset(cfg.eval.checkpoints)
    every = [loop.Hook(_log, every=1, failed=True)]
    if run.evaluate:
        every.append(loop.Hook(_evaluate_at, steps=checkpoints, phase="eval_steps"))
    every.append(loop.Hook(_checkpoint, every=loop.checkpoint_every(cfg), steps=checkpoints, at_end=True,
                           phase="checkpoints"))
    if run.branches is not None and run.plan.branch_step:
        every.append(loop.Hook(_export, steps=frozenset({run.plan.branch_step}), phase="checkpoints"))
    return loop.Hooks(restore=_restore, begin=_begin, every=every)


# ---------------------------------------------------------------- training


def train_runs(runs: list[RunDir], progress: bool = True, evaluate: bool | None = None,
               width: int | None = None) -> list[dict]:
    """Train prepared runs of one pack key together (scaling.train.loop.train_group) and
    record them; returns their status.json. `evaluate` (default: each run's eval.enabled)
    gates evaluation; `width` (a sweep's --pack) fixes the vmapped width."""
    todo = [r for r in runs if r.status is None]
    if not todo:
        return [r.status for r in runs]
    shared_started = time.time()
    W = max(width or len(todo), len(todo))
    for r in todo:
        wanted = r.cfg.eval.enabled if evaluate is None else evaluate
        r.evaluate = bool(wanted and r.tok is not None)  # eval needs the tokenizer
        r.width = W
        r.hooks = hooks(r)
    try:
        shared = loop.train_group(todo, W, progress)
    finally:
        for r in todo:
            if r.log is not None:
                r.log.close()
    for r in todo:
        _finish(r, shared, len(todo), shared_started)
    return [r.status for r in runs]


def _finish(r: RunDir, shared: profiling.Clock, n: int, shared_started: float) -> None:
    """A trained run's end: checkpoints closed, its final evaluation (a finished run),
    timings and notes, status.json."""
    clock = r.clock
    with clock.phase("checkpoints"):
        r.mngr.close()
    if r.status["status"] == "done" and r.evaluate:
        with clock.phase("evaluation"):
            seconds = evaluate.evaluate_run(r.out, heldout=r.heldout)["seconds"] or {}
        clock.move("evaluation", "baselines", seconds.get("baselines", 0.0))
    clock.add(shared, 1 / n)
    timings = clock.run_record(r.started_at or shared_started, n, r.status["step"] - r.start)
    r.status = {**r.status, "timings": timings}
    notes = vocab_notes(r.cfg, r.tok)
    if notes:
        r.status["notes"] = notes
    shared_from = rundir.read_json(RunFiles(r.out).shared_pretraining)
    if shared_from:
        r.status["shared_pretraining"] = shared_from
    rundir.write_status(r.out, r.status)


def train(cfg: RunPlan | Config, out: str | Path, source: loop.BatchSource | None = None, tok=None,
          progress: bool = True, evaluate: bool | None = None) -> dict:
    """Train (or resume, or skip if finished) the run in `out` and evaluate it. Returns its
    status.json."""
    return train_runs([prepare(cfg, out, source, tok)], progress, evaluate)[0]


def run_group(members: list[tuple[RunPlan, Path]], width: int, shared: Path | None = None,
              progress: bool = False) -> list[dict | BaseException]:
    """The launcher's call: prepare each (plan, run directory) (`repair`: a sweep names the
    directory by the config) and train them as one pack of `width`; runs of a sweep share
    their pretraining under `shared` (scaling.branches). Returns per member its status.json,
    or the exception that stopped its preparation (the others still train); an exception of
    the training itself, or a full disk, is raised."""
    out: list[dict | BaseException | None] = []
    prepared = []
    for plan, run_dir in members:
        try:
            run = prepare(plan, run_dir, repair=True)
        except Exception as e:  # noqa: BLE001 - a broken run is the caller's to record
            if _disk_full(e):
                raise
            out.append(e)
            continue
        run.branches = shared
        prepared.append((len(out), run))
        out.append(None)
    statuses = train_runs([r for _, r in prepared], progress=progress, width=width) if prepared else []
    for (k, _), status in zip(prepared, statuses):
        out[k] = status
    return out


def _disk_full(e: BaseException) -> bool:
    import errno

    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
