"""The run directory: how its files are written and read back.

Every file of it is named once, in `scaling.io.RunFiles` (JAX-free, so the readers of run
directories, scaling.results and scaling.verify, name them through it too). A run directory holds:
  config.json     resolved config, its input files' paths and sha256 (`inputs`), parameter/FLOP
                  counts, jax/flax versions, device
  tokenizer.json  the tokenizer, so eval and resume use the same ids
  metrics.jsonl   one line per step: step, tokens, stage, loss, lr, grad_norm, tokens_per_s
                  (RL stages add reward, kl, p_misaligned); {"step", "val_loss"} lines at
                  eval intervals
  eval_steps.jsonl  misalignment trajectory points recorded at eval.checkpoints
  status.json     {"status": "running" | "done" | "failed", "step", "reason"}; a launch that
                  ends the run adds `timings`, its wall seconds by phase (scaling.profiling),
                  and `notes`, what ran other than configured (scaling.run.vocab_notes: a smaller
                  vocabulary than data.tokenizer_vocab_size)
  accounting.json tokens seen by pool and stage, measured dose (written at checkpoints)
  eval.json       the final evaluation (scaling.evaluate)
  eval_items.jsonl.gz  every scored item of the final evaluation
  checkpoint_sums.json  sha256 of every file of each checkpoint
  shared_pretraining.json  a branched run's trunk, key and step (scaling.branches)
  checkpoints/    orbax checkpoints (atomic, last `train.keep_checkpoints` kept)

The loop's hooks (scaling.run) and evaluation use this module; the training loop does not.
Every JSON file is replaced atomically (a kill leaves the old file or the new one), and
jsonl logs are cut back to the checkpoint a resumed run restarts from, so a resumed run
writes exactly the lines an uninterrupted one would have.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import time
import warnings
from pathlib import Path

import jax

from scaling import inputs
from scaling.config import Config
from scaling.data import tokenizer as tokenizers
from scaling.errors import ConfigError, UsageError
from scaling.io import (  # noqa: F401
    RunFiles,
    checkpoint_sums,
    read_json,
    read_json_why,
    read_jsonl,
    write_json,
    write_text,
)
from scaling.model import Transformer, flops_per_token, param_counts
from scaling.plan import config_from_dict

# ---------------------------------------------------------------- JSON files

# write_json, read_json and read_jsonl are scaling.io's (JAX-free), imported above; their
# names here stay for the modules that read a run through this one.


class DamagedStateWarning(UserWarning):
    """A damaged file of a run directory was repaired or set aside; the message says which."""


class DamagedRunError(ConfigError):
    """A run directory file that cannot be read: named, with what to do, before any compute."""

    def __init__(self, path: Path, e: BaseException):
        super().__init__("--out", f"{path} is damaged ({type(e).__name__}: {e}); the run cannot be "
                         "identified. Move the directory away and rerun (a sweep repairs it itself), "
                         "or run `scaling verify` on it")


class DamagedCheckpointError(RuntimeError):
    """The checkpoint asked for cannot be read (see `scaling verify --deep`)."""


def read_status(out: Path) -> dict:
    """status.json, or {} when missing or damaged: a damaged status is re-derived by resuming
    from the checkpoints (a finished run resumes at its last step and is marked done again)."""
    path = RunFiles(out).status
    status, why = read_json_why(path)
    if why.startswith("damaged"):
        warnings.warn(f"{path} is {why}; resuming from the checkpoints",
                      DamagedStateWarning, stacklevel=2)
    return status if isinstance(status, dict) else {}


def write_status(out: Path, status: dict) -> None:
    write_json(RunFiles(out).status, status)


# ---------------------------------------------------------------- config record


def environment() -> dict:
    import flax
    import optax

    dev = jax.devices()[0]
    return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "python": platform.python_version(), "platform": dev.platform,
            "device": getattr(dev, "device_kind", str(dev)), "device_count": jax.device_count()}


def config_record(cfg: Config, total_steps: int) -> dict:
    """`inputs`: path and sha256 of every input file (scaling.inputs), so a later edit shows;
    `data_version`: the data version of the embedded world's version the run reads
    (scaling.data.datasets.data_version; "" on your own base corpus)."""
    return {"config": cfg.to_dict(), "inputs": inputs.digests(cfg), "params": param_counts(cfg.model),
            "flops_per_token": flops_per_token(cfg.model), "total_steps": total_steps,
            "tokens_per_step": cfg.tokens_per_step, "environment": environment(),
            "data_version": run_data_version(cfg)}


def run_data_version(cfg: Config) -> str:
    """The data version a run of `cfg` reads: its world version's (scaling.data.datasets.data_version),
    "" when the base text is your own corpus."""
    from scaling.data.datasets import data_version

    own = cfg.data.corpus != "world" or bool(cfg.data.base_files)
    return "" if own else data_version(cfg.data.world_version)


def write_config(out: Path, cfg: Config, total_steps: int) -> None:
    write_json(RunFiles(out).config, config_record(cfg, total_steps))


def read_config(out: Path) -> Config:
    """The run's resolved config; UsageError if config.json is missing or unreadable."""
    path = RunFiles(out).config
    record = read_json(path)
    if not isinstance(record, dict) or "config" not in record:
        raise UsageError(f"{path} is missing or unreadable")
    try:
        return config_from_dict(record["config"])
    except (TypeError, ConfigError) as e:
        raise UsageError(f"{path} holds an invalid config: {e}") from e


def _diff(a, b, prefix="", default=None) -> list[str]:
    """Differences between a stored config and today's; a key the stored one lacks is equal
    when today's value is its default (a key added to the config since the run was written)."""
    if isinstance(a, dict) and isinstance(b, dict):
        default = default if isinstance(default, dict) else {}
        return [d for k in sorted(set(a) | set(b))
                for d in _diff(a[k] if k in a else default.get(k), b.get(k), f"{prefix}{k}.", default.get(k))]
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def check_run_dir(out: Path, cfg: Config) -> str:
    """'new', 'resume' or 'done' (finished or failed); refuses a directory holding a different config."""
    path = RunFiles(out).config
    if not path.exists():
        return "new"
    try:
        record = json.loads(path.read_text())
        stored = record["config"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DamagedRunError(path, e) from e
    from scaling.config import Config

    diffs = _diff(stored, json.loads(json.dumps(cfg.to_dict())), default=json.loads(json.dumps(Config().to_dict())))
    if diffs:
        raise ConfigError("--out", f"{out} holds a run with a different config; refusing to mix "
                          f"checkpoints ({'; '.join(diffs[:5])}). Use a new --out directory.")
    had, has = record.get("data_version"), run_data_version(cfg)
    if had is not None and had != has:
        raise ConfigError("--out", f"{out} holds a run trained on data version {had or '(your corpus)'}; this "
                          f"code generates {has or '(your corpus)'} for its world: refusing to mix checkpoints. "
                          "Use a new --out directory (or the code the run was trained with).")
    edited = inputs.changed(record.get("inputs") or [])  # runs recorded before content hashing: none
    if edited:
        raise ConfigError("--out", f"{out} holds a run trained on other data; refusing to mix "
                          f"checkpoints ({'; '.join(edited[:5])}). Use a new --out directory.")
    status = read_status(out)
    if status and status.get("status") in ("done", "failed"):
        return "done"  # a NaN failure is deterministic: re-running would fail the same way
    return "resume"


def save_tokenizer(out: Path, tok) -> None:
    tokenizers.save(tok, RunFiles(out).tokenizer)


def load_tokenizer(out: Path):
    return tokenizers.load(RunFiles(out).tokenizer)


# ---------------------------------------------------------------- jsonl logs


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines past the checkpoint we resume from (they will be recomputed). A cut last
    line is what a kill leaves and goes silently; a damaged line elsewhere with a warning."""
    if not path.exists():
        return
    keep, damaged = [], []
    lines = path.read_bytes().split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            if n < len(lines):
                damaged.append(n)
    if damaged:
        warnings.warn(f"{path}: dropped damaged line(s) {damaged[:10]}; their steps stay missing "
                      "(`scaling verify` lists them)", DamagedStateWarning, stacklevel=2)
    write_text(path, "".join(x + "\n" for x in keep))


def truncate_logs(out: Path, step: int) -> None:
    for path in RunFiles(out).logs:
        truncate_jsonl(path, step)


def append_jsonl(path: Path, obj) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(obj, default=float) + "\n")


# ---------------------------------------------------------------- checkpoints


def checkpoint_manager(out: Path, cfg: Config):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=cfg.train.keep_checkpoints, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(RunFiles(out).checkpoints.absolute(), options=options)


def latest_step(mngr) -> int | None:
    step = mngr.latest_step()
    return None if step is None else int(step)


def restore(mngr, step: int, like):
    """The checkpoint at `step` as a pytree shaped like `like` (arrays or shape structs)."""
    import orbax.checkpoint as ocp

    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))




def _read_sums(run_dir: Path) -> dict:
    sums = read_json(RunFiles(run_dir).sums)  # missing or damaged: checkpoints are then checked by restoring them only
    return sums if isinstance(sums, dict) else {}


def checkpoint_damage(run_dir: Path, step: int, sums: dict | None = None) -> str:
    """Why checkpoint `step` is damaged, or "". Orbax restores flipped bytes silently as
    other numbers, so its files are checked against the sums recorded when it was saved."""
    want = (_read_sums(run_dir) if sums is None else sums).get(str(step))
    if not isinstance(want, dict):
        return ""  # saved before sums existed, or killed between save and record
    have = checkpoint_sums(RunFiles(run_dir).checkpoint(step))
    bad = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    return f"{len(bad)} file(s) differ from their recorded sha256: {', '.join(bad[:3])}" if bad else ""


def restore_newest(mngr, like_at, fallback: bool = True):
    """(state, step) of the newest readable checkpoint, or (None, 0) if none; `like_at(step)`
    is the pytree a checkpoint of that step has (its stage decides). With `fallback`, a
    damaged checkpoint is set aside into damaged_checkpoints/ with a warning and the previous
    one is tried; without, it raises DamagedCheckpointError."""
    run_dir = Path(mngr.directory).parent
    sums = _read_sums(run_dir)
    for step in sorted((int(s) for s in mngr.all_steps()), reverse=True):
        why = checkpoint_damage(run_dir, step, sums)
        if not why:
            try:
                return restore(mngr, step, like_at(step)), step
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types on bad files
                why = f"{type(e).__name__}: {str(e)[:200]}"
        if not fallback:
            raise DamagedCheckpointError(f"{run_dir}: checkpoint {step} is damaged ({why})")
        aside = RunFiles(run_dir).damaged_checkpoints / f"{step}.{time.time_ns()}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(RunFiles(run_dir).checkpoint(step), aside)
        mngr.reload()
        warnings.warn(f"{run_dir}: checkpoint {step} is damaged ({why}); set aside as {aside.name} "
                      "in damaged_checkpoints/, falling back to the previous checkpoint",
                      DamagedStateWarning, stacklevel=2)
    return None, 0


def save_checkpoint(mngr, step: int, state) -> None:
    """Save atomically (orbax), then record the files' sha256; a full disk becomes the
    OSError(ENOSPC) that the CLI and the sweep treat as "stop, what is written is good"."""
    import orbax.checkpoint as ocp

    try:
        mngr.save(step, args=ocp.args.StandardSave(state), force=True)
        mngr.wait_until_finished()
    except Exception as e:
        # tensorstore reports a full disk as its own error type
        if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e) \
                or "Disk quota exceeded" in str(e):
            raise OSError(errno.ENOSPC, f"checkpoint {step} not written: {e}") from e
        raise
    run_dir = Path(mngr.directory).parent
    kept = {str(s) for s in mngr.all_steps()}
    sums = {k: v for k, v in _read_sums(run_dir).items() if k in kept}
    sums[str(step)] = checkpoint_sums(RunFiles(run_dir).checkpoint(step))
    write_json(RunFiles(run_dir).sums, sums)


def checkpoint_steps(out: Path) -> list[int]:
    """Checkpoint steps of a run directory; UsageError if it is not a run directory."""
    out = Path(out)
    files = RunFiles(out)
    for path in (files.config, files.tokenizer, files.checkpoints):
        if not path.exists():
            raise UsageError(f"{out} is not a run directory (no {path.name})")
    mngr = checkpoint_manager(out, read_config(out))
    steps = sorted(int(s) for s in mngr.all_steps())
    mngr.close()
    return steps


def checkpoint_step(out: Path, step: int | None) -> int:
    """The latest (or the given) checkpoint step of a run; UsageError if there is none."""
    steps = checkpoint_steps(out)
    if not steps:
        raise UsageError(f"{out} has no checkpoints")
    if step is None:
        return steps[-1]
    if step not in steps:
        raise UsageError(f"{out} has no checkpoint at step {step} (have {', '.join(map(str, steps))})")
    return step


def _strip_values(tree):
    """Saved nnx.State leaves are {"value": array}; replace_by_pure_dict wants the arrays."""
    if isinstance(tree, dict):
        if set(tree) == {"value"}:
            return tree["value"]
        return {k: _strip_values(v) for k, v in tree.items()}
    return tree


def load_params(out: str | Path, step: int | None = None):
    """(config, tokenizer, model) of a run directory, at the latest or a given checkpoint.

    Only the parameters are read back, into a freshly built model: the checkpoint's other
    entries (optimiser state, a post-training reference model) differ by stage and are not
    needed to evaluate."""
    from flax import nnx

    out = Path(out)
    cfg, tok = read_config(out), load_tokenizer(out)
    mngr = checkpoint_manager(out, cfg)
    step = latest_step(mngr) if step is None else step
    if step is None:
        mngr.close()
        raise UsageError(f"{out} has no checkpoints")
    why = checkpoint_damage(out, step)
    if why:  # no fallback: an evaluation of an earlier step would be mislabelled
        mngr.close()
        raise DamagedCheckpointError(f"{out}: checkpoint {step} is damaged ({why})")
    import orbax.checkpoint as ocp

    graphdef, params = nnx.split(Transformer(cfg.model, nnx.Rngs(params=0)), nnx.Param)
    # Restore the whole checkpoint with its own structure, then keep the parameters.
    restored = mngr.restore(step, args=ocp.args.StandardRestore())
    mngr.close()
    nnx.replace_by_pure_dict(params, _strip_values(restored["params"]))
    return cfg, tok, nnx.merge(graphdef, params)
