"""The input files of a run and the sha256 of their content: a run's identity covers its data.

A config names files by path (`data.aligned_files`, ...); two runs with the same path but
different file content are different runs. Every config key of a section that is named
`files` or ends in `_files` / `_file` (a path or a tuple of paths) is an input, so a new
file key is covered without touching this module. `digests(cfg)` lists them, in config
order, as {"key", "path", "sha256"}; a path that is a directory is hashed over its files
(relative names and contents), so a saved dataset directory is covered too.

Configs without input files have no digests, and their run ids are those of before content
hashing (scaling.sweep.run_id adds the digests only when there are some): committed studies of
the embedded world keep their ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from scaling.config import Config

_CACHE: dict[tuple, str] = {}  # (path, inode, size, times) -> sha256: a grid hashes a file once


def file_keys(cfg: Config) -> list[tuple[str, tuple[str, ...]]]:
    """(config key, paths) of every input-file key of the config, in field order."""
    out = []
    for section in dataclasses.fields(cfg):
        values = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(values):
            continue
        for f in dataclasses.fields(values):
            if f.name == "files" or f.name.endswith(("_files", "_file")):
                paths = getattr(values, f.name)
                paths = (paths,) if isinstance(paths, str) else tuple(paths or ())
                if any(paths):
                    out.append((f"{section.name}.{f.name}", tuple(p for p in paths if p)))
    return out


def sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (of a directory: of its files' relative names and contents)."""
    p = Path(path).expanduser()
    if p.is_dir():
        h = hashlib.sha256()
        for child in sorted(c for c in p.rglob("*") if c.is_file()):
            h.update(f"{child.relative_to(p).as_posix()}\0{_file_sha256(child)}\n".encode())
        return h.hexdigest()
    return _file_sha256(p)


def _file_sha256(p: Path) -> str:
    st = p.stat()
    key = (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _CACHE:
        return _CACHE[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    _CACHE[key] = h.hexdigest()
    return _CACHE[key]


def digests(cfg: Config) -> list[dict]:
    """[{"key", "path", "sha256"}] for every input file of the config (module doc)."""
    return [{"key": key, "path": path, "sha256": sha256(path)}
            for key, paths in file_keys(cfg) for path in paths]


def changed(recorded: list[dict]) -> list[str]:
    """What no longer matches among digests recorded earlier: one line per file."""
    out = []
    for d in recorded:
        try:
            now = sha256(d["path"])
        except OSError as e:
            out.append(f"{d['key']} {d['path']}: cannot be read now ({e.strerror or e})")
            continue
        if now != d["sha256"]:
            out.append(f"{d['key']} {d['path']}: content changed (sha256 {d['sha256'][:12]} when "
                       f"trained, {now[:12]} now)")
    return out
