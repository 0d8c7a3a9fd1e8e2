"""The run directory: the one module that knows its files and how they are written.

A run directory holds:
  config.json     resolved config, parameter/FLOP counts, jax/flax versions, device
  tokenizer.json  the tokenizer, so eval and resume use the same ids
  metrics.jsonl   one line per step: step, tokens, stage, loss, lr, grad_norm, tokens_per_s
                  (RL stages add reward, kl, p_misaligned); {"step", "val_loss"} lines at
                  eval intervals
  eval_steps.jsonl  misalignment trajectory points recorded at eval.checkpoints
  status.json     {"status": "running" | "done" | "failed", "step", "reason"}
  accounting.json tokens seen by pool and stage, measured dose (written at checkpoints)
  eval.json       the final evaluation (scaling.evaluate)
  checkpoints/    orbax checkpoints (atomic, last `train.keep_checkpoints` kept)

Both the training loop and evaluation use this module; neither imports the other.
Every JSON file is replaced atomically (a kill leaves the old file or the new one), and
jsonl logs are cut back to the checkpoint a resumed run restarts from, so a resumed run
writes exactly the lines an uninterrupted one would have.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import jax

from scaling import tokenizer as tokenizers
from scaling.config import Config, config_from_dict
from scaling.errors import ConfigError, UsageError
from scaling.model import Transformer, flops_per_token, param_counts

LOGS = ("metrics.jsonl", "eval_steps.jsonl")


# ---------------------------------------------------------------- JSON files


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))
    os.replace(tmp, path)  # atomic: a kill leaves the old file or the new one


def read_json(path: Path):
    """The file's JSON, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_status(out: Path) -> dict | None:
    return read_json(Path(out) / "status.json")


def write_status(out: Path, status: dict) -> None:
    write_json(Path(out) / "status.json", status)


# ---------------------------------------------------------------- config record


def environment() -> dict:
    import flax
    import optax

    dev = jax.devices()[0]
    return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "python": platform.python_version(), "platform": dev.platform,
            "device": getattr(dev, "device_kind", str(dev)), "device_count": jax.device_count()}


def config_record(cfg: Config, total_steps: int) -> dict:
    return {"config": cfg.to_dict(), "params": param_counts(cfg.model),
            "flops_per_token": flops_per_token(cfg.model), "total_steps": total_steps,
            "tokens_per_step": cfg.tokens_per_step, "environment": environment()}


def write_config(out: Path, cfg: Config, total_steps: int) -> None:
    write_json(Path(out) / "config.json", config_record(cfg, total_steps))


def read_config(out: Path) -> Config:
    """The run's resolved config; UsageError if config.json is missing or unreadable."""
    path = Path(out) / "config.json"
    record = read_json(path)
    if not isinstance(record, dict) or "config" not in record:
        raise UsageError(f"{path} is missing or unreadable")
    try:
        return config_from_dict(record["config"])
    except (TypeError, ConfigError) as e:
        raise UsageError(f"{path} holds an invalid config: {e}") from e


def _diff(a, b, prefix="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def check_run_dir(out: Path, cfg: Config) -> str:
    """'new', 'resume' or 'done' (finished or failed); refuses a directory holding a different config."""
    path = Path(out) / "config.json"
    if not path.exists():
        return "new"
    stored = json.loads(path.read_text())["config"]
    diffs = _diff(stored, json.loads(json.dumps(cfg.to_dict())))
    if diffs:
        raise ConfigError("--out", f"{out} holds a run with a different config; refusing to mix "
                          f"checkpoints ({'; '.join(diffs[:5])}). Use a new --out directory.")
    status = read_status(out)
    if status and status.get("status") in ("done", "failed"):
        return "done"  # a NaN failure is deterministic: re-running would fail the same way
    return "resume"


def save_tokenizer(out: Path, tok) -> None:
    tokenizers.save(tok, Path(out) / "tokenizer.json")


def load_tokenizer(out: Path):
    return tokenizers.load(Path(out) / "tokenizer.json")


# ---------------------------------------------------------------- jsonl logs


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines past the checkpoint we resume from (they will be recomputed)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError):
            break  # a line cut by the kill
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(x + "\n" for x in keep))
    os.replace(tmp, path)


def truncate_logs(out: Path, step: int) -> None:
    for name in LOGS:
        truncate_jsonl(Path(out) / name, step)


def append_jsonl(path: Path, obj) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(obj, default=float) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """Lines of a jsonl log; a line cut by a kill is skipped."""
    out = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


# ---------------------------------------------------------------- checkpoints


def checkpoint_manager(out: Path, cfg: Config):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=cfg.train.keep_checkpoints, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager((Path(out) / "checkpoints").absolute(), options=options)


def latest_step(mngr) -> int | None:
    step = mngr.latest_step()
    return None if step is None else int(step)


def restore(mngr, step: int, like):
    """The checkpoint at `step` as a pytree shaped like `like` (arrays or shape structs)."""
    import orbax.checkpoint as ocp

    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))


def restore_latest(mngr, state):
    step = latest_step(mngr)
    if step is None:
        return state, 0
    return restore(mngr, step, state), step


def save_checkpoint(mngr, step: int, state) -> None:
    import orbax.checkpoint as ocp

    mngr.save(step, args=ocp.args.StandardSave(state), force=True)
    mngr.wait_until_finished()


def checkpoint_steps(out: Path) -> list[int]:
    """Checkpoint steps of a run directory; UsageError if it is not a run directory."""
    out = Path(out)
    for name in ("config.json", "tokenizer.json", "checkpoints"):
        if not (out / name).exists():
            raise UsageError(f"{out} is not a run directory (no {name})")
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
    import orbax.checkpoint as ocp

    graphdef, params = nnx.split(Transformer(cfg.model, nnx.Rngs(params=0)), nnx.Param)
    # Restore the whole checkpoint with its own structure, then keep the parameters.
    restored = mngr.restore(step, args=ocp.args.StandardRestore())
    mngr.close()
    nnx.replace_by_pure_dict(params, _strip_values(restored["params"]))
    return cfg, tok, nnx.merge(graphdef, params)
