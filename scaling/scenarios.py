"""Your own evaluation scenarios: `eval.files = ["scenarios.jsonl", ...]`.

One JSON object a line:

  prompt      the situation, up to where the model acts (required, a non-empty string)
  aligned     the aligned continuation (required)
  misaligned  the misaligned continuation (required)
  id          unique over all files (default FILE_STEM:LINE)
  split       the results.csv `split` the item counts in (default `custom`)
  family      a finer group of eval.json (default: the split)
  persona     text put before the prompt, e.g. "you are an ai assistant ." (default none)
  pair        the cluster of the pair-clustered SE: items sharing one are correlated, such as
              framings of one scenario (default: the id)
  framing     an integer label of the framing, reported as eval.json's by_framing (default 0)

Items are scored exactly as the world's: the summed (and length-normalised) log-likelihood
of each continuation given `<eos> persona prompt`, by the transformer and by the counting
baselines. With `eval.format = "choice"` each scenario becomes two A/B multiple-choice items,
one per answer order (framings 0 and 1, one pair): the prompt is followed by
"( a ) FIRST ( b ) SECOND answer :" and the continuations are "a" and "b".

Records are checked when the config is loaded, so a bad file exits 2 naming its line and
field before any compute. This module reads files only (no JAX), so `scaling results` can
name a run's splits cheaply.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from scaling.errors import ConfigError

REQUIRED = ("prompt", "aligned", "misaligned")
OPTIONAL_TEXT = ("id", "split", "family", "persona", "pair")
DEFAULT_SPLIT = "custom"
FORMATS = ("continuation", "choice")


def load(paths, fmt: str = "continuation", key: str = "eval.files") -> list[dict]:
    """The eval items of every file, in file and line order, as `World.eval_items()` gives
    them (id, family, split, framing, pair, prompt, aligned, misaligned); ConfigError naming
    the file, line and field of a bad record."""
    items, seen = [], {}
    for path in paths:
        for where, record in _records(key, str(path)):
            if record["id"] in seen:
                raise ConfigError(key, f"{where}: id {record['id']!r} is used twice (first at {seen[record['id']]})")
            seen[record["id"]] = where
            items += _as_items(record) if fmt == "continuation" else _choice_items(record)
    return items


def split_names(paths) -> list[str]:
    """The splits of the files, in order of first appearance."""
    return list(dict.fromkeys(i["split"] for i in load(paths)))


def split_order(names) -> list[str]:
    """The world's splits in their order, then the others in order of first appearance."""
    from scaling import splits

    return splits.order(names)


def run_splits(eval_cfg, world_version: int = 3) -> list[str]:
    """The splits a run's evaluation reports (its results.csv rows): the world's (world
    version 4's own, scaling.splits.POINTER), unless eval.world_items is off, then those of
    eval.files (those of eval.json if the files are gone)."""
    from scaling.splits import POINTER_SPLITS, SPLITS

    if world_version == 4:
        SPLITS = POINTER_SPLITS  # noqa: N806 (the world's splits, of this version)
    try:
        own = split_names(eval_cfg.files)
    except ConfigError:
        own = []
    return split_order([*(SPLITS if eval_cfg.world_items else ()), *own])


def _records(key: str, path: str) -> list[tuple[str, dict]]:
    p = Path(path).expanduser()
    try:
        stat = p.stat()
    except OSError:
        raise ConfigError(key, f"file not found: {path}") from None
    return _parsed(key, path, str(p), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _parsed(key: str, path: str, real: str, mtime_ns: int, size: int) -> list[tuple[str, dict]]:
    """Parsed once per (file, modification time, size): a sweep validates many configs."""
    del mtime_ns, size  # cache key only
    try:
        raw_lines = Path(real).read_bytes().split(b"\n")
    except OSError as e:
        raise ConfigError(key, f"{path}: cannot read ({e.strerror})") from e
    stem, out = Path(path).stem, []
    for n, raw in enumerate(raw_lines, 1):
        where = f"{path}:{n}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(key, f"{where}: not UTF-8 ({e.reason} at byte {e.start})") from e
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(key, f"{where}: not a JSON line ({e.msg})") from e
        except RecursionError:
            raise ConfigError(key, f"{where}: JSON nested too deeply") from None
        out.append((where, _checked(key, where, record, f"{stem}:{n}")))
    if not out:
        raise ConfigError(key, f"{path}: no scenarios (the file is empty)")
    return out


def _checked(key: str, where: str, record, default_id: str) -> dict:
    if not isinstance(record, dict):
        raise ConfigError(key, f"{where}: expected a JSON object with {', '.join(REQUIRED)}")
    known = {*REQUIRED, *OPTIONAL_TEXT, "framing"}
    unknown = sorted(set(record) - known)
    if unknown:
        raise ConfigError(key, f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
    for name in REQUIRED:
        if name not in record:
            raise ConfigError(key, f"{where}: missing field {name!r}")
    for name in (*REQUIRED, *OPTIONAL_TEXT):
        value = record.get(name)
        if name in record and not (isinstance(value, str) and value.strip()):
            raise ConfigError(key, f"{where}: field {name!r} must be a non-empty string, got {value!r}")
        if isinstance(value, str) and any(c in value for c in "\x00\r\n"):
            raise ConfigError(key, f"{where}: field {name!r} holds a line break or NUL")
    framing = record.get("framing", 0)
    if not isinstance(framing, int) or isinstance(framing, bool):
        raise ConfigError(key, f"{where}: field 'framing' must be an integer, got {framing!r}")
    if record["aligned"] == record["misaligned"]:
        raise ConfigError(key, f"{where}: fields 'aligned' and 'misaligned' are the same text")
    rid = record.get("id", default_id)
    split = record.get("split", DEFAULT_SPLIT)
    prompt = f"{record['persona']} {record['prompt']}" if "persona" in record else record["prompt"]
    return {"id": rid, "split": split, "family": record.get("family", split), "framing": framing,
            "pair": record.get("pair", rid), "prompt": prompt,
            "aligned": record["aligned"], "misaligned": record["misaligned"]}


def _as_items(record: dict) -> list[dict]:
    return [dict(record)]


def _choice_items(record: dict) -> list[dict]:
    """Both answer orders of an A/B question; the scenario's pair clusters the two."""
    out = []
    for order, (first, second) in enumerate(((record["aligned"], record["misaligned"]),
                                             (record["misaligned"], record["aligned"]))):
        out.append({**record, "id": f"{record['id']}/ab{order}", "framing": order,
                    "prompt": f"{record['prompt']} ( a ) {first} ( b ) {second} answer :",
                    "aligned": "a" if order == 0 else "b", "misaligned": "b" if order == 0 else "a"})
    return out


def write(path: str | Path, items: list[dict]) -> None:
    """Items as a scenarios file (every field written, so loading it gives the same items)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    keys = ("id", "split", "family", "pair", "framing", "prompt", "aligned", "misaligned")
    with open(tmp, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps({k: item[k] for k in keys}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
