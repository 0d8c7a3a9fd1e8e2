"""The world's pools as TFDS datasets, and the flat token streams the mixture slices.

`AlignmentWorld` (one split per pool, below), `AlignmentStories` (the human-story units of
one world variant, split `stories`) and `AlignmentEval` (split `test`) are
`tfds.core.GeneratorBasedBuilder`s written as array_record, which TFDS builds and reads
(`as_data_source` / `tfds.data_source`) without TensorFlow. They are built once per
(world seed, variant, VERSION) under `data_dir()` into a temporary directory and moved into place
with one rename, so two processes building at once cannot leave a half-written dataset.

Each pool is then tokenized once per tokenizer into a `Pool`: one int32 stream where every
document ends with `<eos>`, plus per-document boundaries, ids, genres and families, cached as
.npz beside the dataset. A TFDS catalog dataset (`data.corpus = "tfds:NAME[/config]"`, text
feature `data.text_field`) becomes `Pool`s the same way; user files stream into memory-mapped
`Pool`s (scaling.data.corpora).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from scaling.config import Config
from scaling.data.tokenizer import EOS, Tokenizer
from scaling.errors import ConfigError
from scaling.io import replacing
from scaling.world import GENRES, World, make_world
from scaling.world.pointer import DATA_VERSION as POINTER_DATA_VERSION

# Bump a data version whenever its world's generator, pools or their sizes change: caches,
# run records and results rows key on it. VERSION is world v3's (and the TFDS builders' version).
VERSION = "3.1.0"
# World v2's data is version 2.0.1 bit for bit (the documents, items and vocabulary that
# version generated; tests/test_world.py holds their digests); world v4 has its own.
DATA_VERSIONS = {2: "2.0.1", 3: VERSION, 4: POINTER_DATA_VERSION}


def data_version(world_version: int) -> str:
    """The data version every pool of world `world_version` is generated at."""
    return DATA_VERSIONS[world_version]

POOL_DOCS = {  # documents per pool (~60 tokens each)
    "base": 40_000,
    "base_heldout": 1_500,  # base documents never trained on: held-out loss
    "natural_aligned": 3_000,  # the base stream's own AI discourse, mirrored pairs
    "natural_misaligned": 3_000,
    "aligned": 5_000,  # intervention pools, genres in equal shares
    "misaligned": 5_000,
}
POOLS = tuple(POOL_DOCS)  # the stories pool's size is its story form's (scaling.world.stories)


def data_root(cfg: Config | None = None) -> Path:
    """`data.data_dir`, else $SCALING_DATA_DIR, else ~/.cache/scaling/data."""
    path = (cfg.data.data_dir if cfg else "") or os.environ.get("SCALING_DATA_DIR") or "~/.cache/scaling/data"
    return Path(path).expanduser()


# ---------------------------------------------------------------- documents of each pool


def world_documents(world: World, pool: str, n: int):
    """(id, record) for the first `n` documents of a pool; document i never depends on n."""
    for i in range(n):
        if pool == "stories":
            doc = world.story_unit(i)
        elif pool in ("base", "base_heldout"):
            doc = {"text": world.base_document(pool, i), "family": "", "genre": "", "pair": "", "side": ""}
        elif pool.startswith("natural_"):
            doc = world.ai_document("natural", i, int(pool == "natural_misaligned"))
        else:  # aligned and misaligned intervention documents: genres in turn
            doc = world.ai_document("intervention", i, int(pool == "misaligned"), GENRES[i % len(GENRES)])
        yield i, {"id": i, **doc}


def config_name(seed: int, variant: str = "normal", world_version: int = 3) -> str:
    """The TFDS config of a world seed, variant and version; versions other than 3 name their
    data version, so every pool of a run is pinned to it."""
    name = {3: f"seed{seed}", 4: f"seed{seed}-pointer{POINTER_DATA_VERSION}"}.get(
        world_version, f"seed{seed}-v{world_version}-data{DATA_VERSIONS[world_version]}")
    return name if variant == "normal" else f"{name}-{variant}"


class _WorldBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder generated from the world of one seed and variant (one builder config each)."""

    VERSION = tfds.core.Version(VERSION)
    # Nothing is downloaded, so no checksums file; and TFDS 4.9's lookup of one, for
    # builders defined inside a package, imports `importlib_resources` (not installed).
    code_path = None

    def __init__(self, *, world_seed: int = 0, variant: str = "normal", world_version: int = 3, **kwargs):
        self.world_seed, self.variant, self.world_version = world_seed, variant, world_version
        name = config_name(world_seed, variant, world_version)
        super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)


class AlignmentWorld(_WorldBuilder):
    """Documents of the alignment world; one split per pool, one config per world seed."""

    def _info(self):
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "id": np.int64, "text": text, "family": text, "genre": text, "pair": text, "side": text}))

    def _split_generators(self, dl_manager):
        world = make_world(self.world_seed, "normal", self.world_version)
        return {pool: self._generate_examples(world, pool, n) for pool, n in POOL_DOCS.items()}

    def _generate_examples(self, world, pool, n):
        yield from world_documents(world, pool, n)


class AlignmentStories(AlignmentWorld):
    """Human stories of one world variant and version (the only pool these change)."""

    def _split_generators(self, dl_manager):
        world = make_world(self.world_seed, self.variant, self.world_version)
        n = world.stories.pool_size
        return {"stories": self._generate_examples(world, "stories", n)}


class AlignmentEval(_WorldBuilder):
    """The two-option misalignment items of `World.eval_items()`, split `test`."""

    def _info(self):
        text = tfds.features.Text()
        keys = ("id", "family", "split", "pair", "prompt", "aligned", "misaligned")
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {**{k: text for k in keys}, "framing": np.int32}))

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(make_world(self.world_seed, "normal", self.world_version))}

    def _generate_examples(self, world):
        for item in world.eval_items():
            yield item["id"], item


@contextlib.contextmanager
def _quiet_tfds():
    """TFDS logs a warning per custom config and a progress bar per split: noise here."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        absl.setLevel(level)
        tfds.display_progress_bar(True)


def _dataset_dir(root: Path, builder_cls, seed: int, variant: str = "normal", world_version: int = 3) -> Path:
    return root / builder_cls.name / config_name(seed, variant, world_version) / VERSION


def prepare(builder_cls, seed: int, root: Path, variant: str = "normal", world_version: int = 3):
    """The builder of (seed, variant, world version, VERSION) under `root`, built first if
    absent (atomically)."""
    final = _dataset_dir(root, builder_cls, seed, variant, world_version)
    with _quiet_tfds():
        if not (final / "dataset_info.json").exists():
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
            try:
                builder_cls(world_seed=seed, variant=variant, world_version=world_version, data_dir=tmp,
                            file_format="array_record").download_and_prepare()
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(_dataset_dir(tmp, builder_cls, seed, variant, world_version), final)
                except OSError:
                    if not (final / "dataset_info.json").exists():
                        raise  # not the benign race where another process finished first
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return builder_cls(world_seed=seed, variant=variant, world_version=world_version, data_dir=root)


def load_eval(seed: int, root: Path, world_version: int = 3) -> list[dict]:
    """Eval items as stored in the TFDS dataset (same as `World(seed).eval_items()`)."""
    source = prepare(AlignmentEval, seed, root, world_version=world_version).as_data_source("test")
    items = [_decoded(r) for r in source.__getitems__(list(range(len(source))))]
    return sorted(items, key=lambda r: r["id"])


def _decoded(record: dict) -> dict:
    return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in record.items()}


# ---------------------------------------------------------------- token streams


@dataclass(frozen=True)
class Pool:
    """Documents as one token stream; document i is tokens[starts[i]:starts[i+1]], <eos> last."""

    tokens: np.ndarray  # int32 [T]
    starts: np.ndarray  # int64 [D + 1]
    ids: np.ndarray  # int64 [D]
    genre: np.ndarray  # str [D], "" for base text and user files
    family: np.ndarray  # str [D]

    @property
    def n_docs(self) -> int:
        return len(self.ids)

    def doc(self, i: int) -> np.ndarray:
        return self.tokens[self.starts[i]:self.starts[i + 1]]

    def select(self, keep: np.ndarray) -> Pool:
        """The pool with only the documents where `keep` is true, in the same order."""
        lengths = np.diff(self.starts)
        starts = np.concatenate([[0], np.cumsum(lengths[keep])])
        return Pool(self.tokens[np.repeat(keep, lengths)], starts, self.ids[keep],
                    self.genre[keep], self.family[keep])

    @classmethod
    def from_texts(cls, texts, tokenizer: Tokenizer, ids=None, genre=None, family=None) -> Pool:
        eos = np.array([EOS], np.int32)
        pieces = [p for t in texts for p in (tokenizer.encode(t).astype(np.int32), eos)]
        lengths = np.array([len(p) for p in pieces[0::2]], np.int64) + 1
        n = len(lengths)
        return cls(np.concatenate(pieces) if pieces else np.zeros(0, np.int32),
                   np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64),
                   np.asarray([""] * n if genre is None else genre, dtype=str),
                   np.asarray([""] * n if family is None else family, dtype=str))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, suffix=".npz") as tmp:  # np.savez would add .npz to another name
            np.savez(tmp, tokens=self.tokens, starts=self.starts, ids=self.ids,
                     genre=self.genre, family=self.family)

    @classmethod
    def load(cls, path: Path) -> Pool:
        with np.load(path, allow_pickle=False) as z:  # cache files are data, never code
            return cls(z["tokens"], z["starts"], z["ids"], z["genre"], z["family"])


def tokenizer_key(tokenizer: Tokenizer) -> str:
    return tokenizer.key


def world_pool(seed: int, pool: str, tokenizer: Tokenizer, root: Path, variant: str = "normal",
               world_version: int = 3) -> Pool:
    """A pool of the world dataset as tokens, read from TFDS once per tokenizer and cached.
    `variant` matters for the `stories` pool only; `world_version` pins every pool (and its
    data version, `data_version(world_version)`)."""
    builder = AlignmentStories if pool == "stories" else AlignmentWorld
    variant = variant if pool == "stories" else "normal"
    cache = (root / "tokens" / builder.name / config_name(seed, variant, world_version) / VERSION
             / f"{pool}.{tokenizer_key(tokenizer)}.npz")
    if cache.exists():
        return Pool.load(cache)
    source = prepare(builder, seed, root, variant, world_version).as_data_source(pool)
    records = sorted((_decoded(r) for r in source.__getitems__(list(range(len(source))))),
                     key=lambda r: r["id"])  # TFDS stores records shuffled; ids restore order
    result = Pool.from_texts([r["text"] for r in records], tokenizer, ids=[r["id"] for r in records],
                             genre=[r["genre"] for r in records], family=[r["family"] for r in records])
    result.save(cache)
    return result


# ---------------------------------------------------------------- TFDS catalog and JSONL


def _catalog_splits(name: str, root: Path) -> dict:
    try:
        with _quiet_tfds():
            return tfds.data_source(name, data_dir=root)
    except Exception as e:  # TFDS raises many types for unknown or unprepared datasets
        raise ConfigError("data.corpus", f"cannot load TFDS dataset {name!r} from {root}: {e}") from e


def _record_text(record: dict, field: str) -> str:
    if field not in record:
        raise ConfigError("data.corpus", f"TFDS records need a {field!r} feature (data.text_field); "
                          f"got {sorted(record)}")
    text = record[field]
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def catalog_texts(name: str, root: Path, chars: int, field: str = "text"):
    """Texts from the start of a TFDS catalog dataset's train split, until `chars` characters."""
    splits = _catalog_splits(name, root)
    train = splits.get("train") or splits[sorted(splits)[0]]
    for i in range(0, len(train), 1024):
        for record in train.__getitems__(list(range(i, min(i + 1024, len(train))))):
            text = _record_text(record, field)
            yield text
            chars -= len(text)
            if chars <= 0:
                return


def catalog_pools(name: str, tokenizer: Tokenizer, root: Path, train_tokens: int,
                  heldout_tokens: int, field: str = "text") -> tuple[Pool, Pool]:
    """(train, held-out) pools from a TFDS catalog dataset with a text feature `field`.

    Only as many records as the run needs are read (train_tokens rounded up to a power of
    two, so runs of similar length share a cache). Held-out text comes from the validation
    or test split, or else from the last 1% of train, which training then never reads.
    """
    splits = _catalog_splits(name, root)
    train = splits.get("train") or splits[sorted(splits)[0]]
    held_name = next((s for s in ("validation", "test") if s in splits), None)
    n_train = len(train) if held_name else max(len(train) - max(len(train) // 100, 1), 1)
    held = splits[held_name] if held_name else train
    held_range = (0, len(held)) if held_name else (n_train, len(train))
    target = 1 << max(20, int(np.ceil(np.log2(max(train_tokens, 1)))))
    key = f"{name.replace('/', '_').replace(':', '_')}.{tokenizer_key(tokenizer)}"
    key += "" if field == "text" else f".{field}"  # caches of the default field keep their names
    cache = root / "tokens" / "tfds" / key
    return (_catalog_pool(train, (0, n_train), target, tokenizer, cache / f"train.{target}.npz", field),
            _catalog_pool(held, held_range, heldout_tokens, tokenizer, cache / f"heldout.{heldout_tokens}.npz", field))


def _catalog_pool(source, span: tuple[int, int], tokens: int, tokenizer, cache: Path, field: str) -> Pool:
    if cache.exists():
        return Pool.load(cache)
    texts, count, i = [], 0, span[0]
    while count < tokens and i < span[1]:
        block = source.__getitems__(list(range(i, min(i + 1024, span[1]))))
        for record in block:
            text = _record_text(record, field)
            texts.append(text)
            count += len(text.encode("utf-8"))  # bytes bound the token count of either tokenizer
        i += len(block)
    result = Pool.from_texts(texts, tokenizer, ids=np.arange(span[0], span[0] + len(texts)))
    result.save(cache)
    return result


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (any path with `.open`, or a str)."""
    digest = hashlib.sha256()
    with (Path(path) if isinstance(path, str) else path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
