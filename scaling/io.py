"""Files written whole and read back forgivingly; no JAX, so every module can use it.

- `replacing(path)` / `write_text(path, text)`: write a temporary file beside `path`, then
  rename it over `path`: a kill leaves the old file or the new one, never half of one. The
  temporary name carries the process id, so writers racing on one path never share one.
- `write_json(path, obj)`: a run directory's JSON (indented, sorted keys), written so.
- `read_json(path)`: the file's JSON or None; `read_json_why(path)`: (JSON, "") or (None,
  why), a missing file told apart from a damaged one. `read_jsonl(path)`: a log's lines.
- `checkpoint_sums(step_dir)`: sha256 of every file of a checkpoint.
- `read_status(run_dir)` / `run_status(run_dir)`: a run's status.json, and its status word
  ("pending" when there is none to read).
- `RunFiles(run_dir)`: the name of every file of a run directory, spelled here once
  (scaling.rundir writes them; the JAX-free readers, scaling.results and scaling.verify, read
  them through it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STATUS = "status.json"
BRANCHES = "branches"  # a sweep's shared pretrainings, OUT/branches/ beside OUT/runs/ (scaling.branches)


@dataclass(frozen=True)
class RunFiles:
    """Every file of one run directory (scaling.rundir's module doc says what each holds)."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / "config.json")
    tokenizer = property(lambda self: self.root / "tokenizer.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    eval_steps = property(lambda self: self.root / "eval_steps.jsonl")
    status = property(lambda self: self.root / STATUS)
    accounting = property(lambda self: self.root / "accounting.json")
    eval = property(lambda self: self.root / "eval.json")
    items = property(lambda self: self.root / "eval_items.jsonl.gz")
    checkpoints = property(lambda self: self.root / "checkpoints")
    sums = property(lambda self: self.root / "checkpoint_sums.json")
    damaged_checkpoints = property(lambda self: self.root / "damaged_checkpoints")
    shared_pretraining = property(lambda self: self.root / "shared_pretraining.json")
    error = property(lambda self: self.root / "error.txt")
    error_previous = property(lambda self: self.root / "error.previous.txt")  # a retried run's
    status_error = property(lambda self: self.root / "status.error.json")  # a retried run's
    lock = property(lambda self: self.root / "lock")

    @property
    def logs(self) -> tuple[Path, Path]:
        """The jsonl logs a resumed run cuts back to its checkpoint."""
        return self.metrics, self.eval_steps

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / str(step)


@contextlib.contextmanager
def replacing(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write; on leaving the block it replaces `path` (`suffix` ends the
    temporary name, for writers that choose a format by it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a write that failed leaves no debris


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float))


def read_json_why(path: str | Path) -> tuple[object, str]:
    """(object, "") or (None, why): a missing file and a damaged one are told apart."""
    try:
        return json.loads(Path(path).read_text()), ""
    except FileNotFoundError:
        return None, "missing"
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"damaged ({type(e).__name__}: {e})"


def read_json(path: str | Path):
    """The file's JSON, or None if it is missing or unreadable."""
    return read_json_why(path)[0]


def read_jsonl(path: str | Path) -> list[dict]:
    """Lines of a jsonl log; a line cut by a kill is skipped."""
    out = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def checkpoint_sums(step_dir: Path) -> dict[str, str]:
    """sha256 of every file of a checkpoint directory, by path inside it."""
    return {str(p.relative_to(step_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(step_dir.rglob("*")) if p.is_file()}


def read_status(run_dir: str | Path) -> dict:
    """The run's status.json, or {} when it is missing, damaged or not a table."""
    status = read_json(Path(run_dir) / STATUS)
    return status if isinstance(status, dict) else {}


def run_status(run_dir: str | Path) -> str:
    """The run's status word; "pending" when status.json is missing, damaged or has none."""
    return read_status(run_dir).get("status", "pending")
