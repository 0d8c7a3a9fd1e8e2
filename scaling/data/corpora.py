"""Your own corpora: text files of any size as memory-mapped token pools.

A `data.*_files` entry is a path or a glob of shards (`data/shard-*.jsonl`; `gs://` and the
other etils `epath` paths where that library reaches them), each file read by its name:

  .jsonl .json .ndjson (.gz)   one JSON object a line; the document is its `data.text_field`
  .txt (.gz)                   one document a line (empty lines skipped)
  .parquet                     the `data.text_field` column
  a directory                  a Hugging Face dataset written by `save_to_disk` (its arrow
                               files; a DatasetDict: its `train` split), column `data.text_field`

`stream_pool` tokenizes the documents in one streaming pass, CHUNK_TOKENS at a time, into
`tokens.bin` (int32, every document ending with `<eos>`) and `starts.npy`, read back as a
memory map, so a corpus larger than memory trains as the world does. The result is cached
under DATA_DIR/tokens/files/ by the content hash of every file (`datasets.file_sha256`),
the text field and the tokenizer, so an edited file is tokenized again and an unchanged one
never. Dose accounting is unchanged: rows are counted per pool (scaling.data.mixture).
"""

from __future__ import annotations

import glob as globlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from scaling.data.datasets import Pool, file_sha256
from scaling.data.tokenizer import EOS
from scaling.errors import ConfigError

CHUNK_TOKENS = 1 << 20  # tokens buffered before a write to tokens.bin
FORMAT = "1"  # bump when the cache layout changes


def _epath(path: str):
    try:
        from etils import epath
    except ImportError:  # etils comes with tensorflow_datasets; plain paths work without it
        return Path(path).expanduser()
    return epath.Path(os.path.expanduser(path)) if "://" not in path else epath.Path(path)


def expand(key: str, patterns) -> list:
    """Every file of the entries of config key `key`, globs expanded (sorted); ConfigError
    naming an entry that matches nothing."""
    out = []
    for pattern in patterns:
        pattern = str(pattern)
        if globlib.has_magic(pattern):
            parent, rest = _split_glob(pattern)
            matches = sorted(_epath(parent).glob(rest), key=str)
            if not matches:
                raise ConfigError(key, f"no file matches {pattern}")
            out += matches
        else:
            path = _epath(pattern)
            if not path.exists():
                raise ConfigError(key, f"file not found: {pattern}")
            out.append(path)
    return out


def _split_glob(pattern: str) -> tuple[str, str]:
    """(the folder before the first glob character, the rest of the pattern)."""
    parts = pattern.split("/")
    first = next(i for i, p in enumerate(parts) if globlib.has_magic(p))
    return "/".join(parts[:first]) or ".", "/".join(parts[first:])


def iter_texts(key: str, patterns, field: str = "text"):
    """The documents of every file, in order; ConfigError naming the file (and line) of bad input."""
    for path in expand(key, patterns):
        yield from _file_texts(key, path, field)


def read_texts(key: str, patterns, field: str = "text") -> list[str]:
    texts = list(iter_texts(key, patterns, field))
    if not texts:
        raise ConfigError(key, f"no documents in {', '.join(map(str, patterns))}")
    return texts


def check_texts(key: str, patterns, field: str = "text") -> int:
    """Read every document once (a bad line raises ConfigError) without keeping them; the count."""
    n = sum(1 for _ in iter_texts(key, patterns, field))
    if n == 0:
        raise ConfigError(key, f"no documents in {', '.join(map(str, patterns))}")
    return n


def _file_texts(key: str, path, field: str):
    name = str(path)
    suffix = name[:-3] if name.endswith(".gz") else name
    try:
        if path.is_dir():
            yield from _arrow_texts(key, path, field)
        elif suffix.endswith(".parquet"):
            yield from _parquet_texts(key, path, field)
        elif suffix.endswith(".txt"):
            for _, line, _ in _lines(key, path):
                if line.strip():
                    yield line.rstrip("\r")
        elif suffix.endswith((".jsonl", ".json", ".ndjson")):
            yield from _jsonl_texts(key, path, field)
        else:
            raise ConfigError(key, f"{name}: unknown file type (use .jsonl, .txt, .parquet, their .gz, "
                              "or a directory written by Hugging Face save_to_disk)")
    except OSError as e:
        raise ConfigError(key, f"{name}: cannot read ({e.strerror or e})") from e


def _lines(key: str, path):
    """(line number, text, whether the line lacks its end) of a UTF-8 file read as a stream;
    a last line without its end is what a killed writer leaves."""
    with path.open("rb") as raw:
        f = gzip.open(raw) if str(path).endswith(".gz") else raw
        for n, line in enumerate(f, 1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConfigError(key, f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start})") from e
            yield n, text.removesuffix("\n"), not text.endswith("\n")


def _jsonl_texts(key: str, path, field: str):
    for n, line, cut in _lines(key, path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(key, f"{path}:{n}: invalid JSON ({e.msg})"
                              + (" (the file looks cut short)" if cut else "")) from e
        except RecursionError:
            raise ConfigError(key, f"{path}:{n}: JSON nested too deeply") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise ConfigError(key, f"{path}:{n}: each line needs a string field {field!r}")
        try:
            record[field].encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(key, f"{path}:{n}: {field!r} holds an unpaired surrogate escape") from None
        yield record[field]


def _column_texts(key: str, where: str, batches, field: str):
    for batch in batches:
        if field not in batch.schema.names:
            raise ConfigError(key, f"{where}: no column {field!r} (columns: {', '.join(batch.schema.names)}); "
                              "set data.text_field")
        for text in batch.column(field).to_pylist():
            if isinstance(text, str):
                yield text


def _parquet_texts(key: str, path, field: str):
    import pyarrow.parquet as pq

    with path.open("rb") as f:
        data = pq.ParquetFile(io.BytesIO(f.read()) if "://" in str(path) else f)
        if field not in data.schema_arrow.names:
            raise ConfigError(key, f"{path}: no column {field!r} (columns: {', '.join(data.schema_arrow.names)}); "
                              "set data.text_field")
        yield from _column_texts(key, str(path), data.iter_batches(columns=[field]), field)


def _arrow_texts(key: str, folder, field: str):
    """A Hugging Face dataset saved to disk: state.json names its arrow (IPC stream) files."""
    import pyarrow as pa

    if (folder / "dataset_dict.json").exists():
        if not (folder / "train").exists():
            raise ConfigError(key, f"{folder}: a DatasetDict without a 'train' split")
        folder = folder / "train"
    if (folder / "state.json").exists():
        state = json.loads((folder / "state.json").read_text())
        files = [folder / f["filename"] for f in state.get("_data_files", [])]
    else:
        files = sorted(folder.glob("*.arrow"), key=str)
    if not files:
        raise ConfigError(key, f"{folder}: not a file, and no Hugging Face dataset (no state.json or *.arrow)")
    for file in files:
        with file.open("rb") as f:
            yield from _column_texts(key, str(file), pa.ipc.open_stream(f), field)


# ---------------------------------------------------------------- streaming token pools


def pool_key(key: str, patterns, field: str, tokenizer, heldout_every: int) -> str:
    files = [(str(p), file_sha256(p)) for p in expand(key, patterns) for p in _content_files(p)]
    meta = json.dumps({"files": [h for _, h in files], "field": field, "tokenizer": tokenizer.key,
                       "heldout_every": heldout_every, "format": FORMAT})
    return hashlib.sha256(meta.encode()).hexdigest()[:20]


def _content_files(path) -> list:
    """The file itself, or every file under a folder (iterdir: epath has no remote `**`)."""
    if not path.is_dir():
        return [path]
    return [f for p in sorted(path.iterdir(), key=str) for f in _content_files(p)]


def stream_pool(key: str, patterns, tokenizer, root: Path, field: str = "text",
                heldout_every: int = 0) -> tuple[Pool, Pool | None]:
    """(pool, held-out pool or None) of the files' documents; with `heldout_every` = k, every
    k-th document (or, with fewer, the last) is held out. Tokenized once per content."""
    cache = Path(root) / "tokens" / "files" / pool_key(key, patterns, field, tokenizer, heldout_every)
    if not (cache / "done").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".stream-", dir=cache.parent))
        try:
            _tokenize(key, patterns, tokenizer, field, heldout_every, tmp)
            (tmp / "done").write_text("")
            try:
                os.rename(tmp, cache)
            except OSError:
                if not (cache / "done").exists():
                    raise  # not the benign race where another process finished first
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    held = _load(cache / "heldout") if (cache / "heldout").exists() else None
    return _load(cache / "main"), held


class _Writer:
    def __init__(self, folder: Path):
        folder.mkdir()
        self.folder, self.f = folder, open(folder / "tokens.bin", "wb")
        self.buffer, self.buffered, self.lengths = [], 0, []

    def add(self, ids: np.ndarray) -> None:
        doc = np.concatenate([ids.astype(np.int32), [EOS]]).astype(np.int32)
        self.buffer.append(doc)
        self.buffered += len(doc)
        self.lengths.append(len(doc))
        if self.buffered >= CHUNK_TOKENS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.f.write(np.concatenate(self.buffer).tobytes())
        self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        self.f.close()
        np.save(self.folder / "starts.npy", np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64))


def _tokenize(key, patterns, tokenizer, field, heldout_every, out: Path) -> None:
    main = _Writer(out / "main")
    held = _Writer(out / "heldout") if heldout_every else None
    last, n = None, 0
    for n, text in enumerate(iter_texts(key, patterns, field), 1):
        ids = tokenizer.encode(text)
        if held and n % heldout_every == 0:
            held.add(ids)
        else:
            if last is not None:
                main.add(last)
            last = ids  # kept back: with too few documents for a k-th, the last is held out
    if n == 0:
        raise ConfigError(key, f"no documents in {', '.join(map(str, patterns))}")
    if held and not held.lengths and n >= 2:
        held.add(last)
    elif last is not None:
        main.add(last)
    main.close()
    if held:
        held.close()


def _load(folder: Path) -> Pool:
    starts = np.load(folder / "starts.npy", allow_pickle=False)  # cache files are data, never code
    size = int(starts[-1])
    tokens = np.memmap(folder / "tokens.bin", np.int32, "r", shape=(size,)) if size else np.zeros(0, np.int32)
    n = len(starts) - 1
    return Pool(tokens, starts, np.arange(n, dtype=np.int64), np.full(n, "", dtype="<U1"), np.full(n, "", dtype="<U1"))


# ---------------------------------------------------------------- document labels


LABELS = ("aligned", "misaligned")


def iter_labels(key: str, patterns, label_field: str, threshold: float | None = None):
    """The label of every document of JSONL files, in `iter_texts` order: the record's
    `label_field`, "aligned" or "misaligned", or a number that is misaligned at or above
    `threshold` (a harmfulness score). ConfigError naming the file and line of a document
    without one (scaling.treatments needs every label of the files it treats)."""
    for path in expand(key, patterns):
        suffix = str(path)[:-3] if str(path).endswith(".gz") else str(path)
        if path.is_dir() or not suffix.endswith((".jsonl", ".json", ".ndjson")):
            raise ConfigError("data.label_field", f"{path}: labels are read from JSONL records; "
                              "this file is not JSONL")
        for n, line, _ in _lines(key, path):
            if line.strip():
                yield _label(path, n, json.loads(line), label_field, threshold)


def _label(path, n: int, record: dict, field: str, threshold: float | None) -> str:
    where = f"{path}:{n}"
    if field not in record:
        raise ConfigError("data.label_field", f"{where}: the document has no {field!r} field; a treatment "
                          "(data.control_tokens, data.harm_tags) needs every document's label: "
                          "'aligned' or 'misaligned', or a score with data.label_threshold")
    value = record[field]
    if isinstance(value, str) and value in LABELS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if threshold is None:
            raise ConfigError("data.label_threshold", f"{where}: {field!r} is a score ({value!r}): set "
                              "data.label_threshold (at or above it a document is misaligned)")
        return "misaligned" if value >= threshold else "aligned"
    raise ConfigError("data.label_field", f"{where}: {field!r} must be 'aligned', 'misaligned' or a "
                      f"number, got {value!r}")


def pool_labels(key: str, patterns, label_field: str, threshold: float | None, heldout_every: int = 0) -> np.ndarray:
    """Labels of the documents `stream_pool` puts in its main pool (held-out ones left out,
    by the same rule), as a str array."""
    labels = list(iter_labels(key, patterns, label_field, threshold))
    n = len(labels)
    if not heldout_every:
        return np.array(labels, dtype=str)
    main = [i for i in range(1, n + 1) if i % heldout_every != 0]
    if n < heldout_every and n >= 2:  # too few for a k-th: the last document was held out
        main = main[:-1]
    return np.array([labels[i - 1] for i in main], dtype=str)
