"""Your own corpora: shards of JSONL, text, Parquet and Hugging Face arrow files, globbed,
streamed in chunks into memory-mapped pools that equal the in-memory tokenization bitwise,
cached by content; TFDS with a configured text field."""

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow_datasets as tfds

from scaling.data import corpora
from scaling.data.datasets import Pool
from scaling.data.mixture import HELDOUT_EVERY, Mixture
from scaling.data.tokenizer import ByteTokenizer
from scaling.errors import ConfigError
from scaling.plan import config_from_dict


def _docs(prefix, n):
    return [f"{prefix} document {i} about rivers and {'long ' * (i % 7)}roads ." for i in range(n)]


@pytest.fixture
def shards(tmp_path):
    """Five shards of four formats, in glob order; returns (glob, every document in order)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    parts = {"a": _docs("a", 300), "b": _docs("b", 40), "c": _docs("c", 25), "d": _docs("d", 30), "e": _docs("e", 20)}
    (folder / "part-a.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in parts["a"]))
    with gzip.open(folder / "part-b.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"body": t, "other": 1}) + "\n" for t in parts["b"])
    (folder / "part-c.txt").write_text("\n".join(parts["c"]) + "\n\n")
    pq.write_table(pa.table({"body": parts["d"], "n": list(range(30))}), folder / "part-d.parquet", row_group_size=7)
    hf = folder / "part-e"  # what datasets.save_to_disk writes: arrow stream files named by state.json
    hf.mkdir()
    table = pa.table({"body": parts["e"]})
    with pa.ipc.new_stream(hf / "data-00000-of-00001.arrow", table.schema) as w:
        w.write_table(table)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (hf / "dataset_info.json").write_text("{}")
    return str(folder / "part-*"), [t for k in "abcde" for t in parts[k]]


def test_every_format_is_read_in_glob_order(shards):
    pattern, docs = shards
    assert corpora.read_texts("data.base_files", [pattern], "body") == docs


def test_streamed_pool_equals_the_in_memory_one_bitwise_and_is_cached(shards, tmp_path, monkeypatch):
    pattern, docs = shards
    monkeypatch.setattr(corpora, "CHUNK_TOKENS", 1000)  # shard a alone holds ~17 chunks
    tok = ByteTokenizer()
    pool, held = corpora.stream_pool("data.base_files", [pattern], tok, tmp_path / "data", "body")
    want = Pool.from_texts(docs, tok)
    assert len(want.tokens) > 15 * corpora.CHUNK_TOKENS and held is None
    assert isinstance(pool.tokens, np.memmap)
    assert np.array_equal(pool.tokens, want.tokens) and np.array_equal(pool.starts, want.starts)

    class NoEncode(ByteTokenizer):
        def encode(self, text):
            raise AssertionError("tokenized again")

    again, _ = corpora.stream_pool("data.base_files", [pattern], NoEncode(), tmp_path / "data", "body")
    assert np.array_equal(again.tokens, want.tokens)  # same content: the cache
    with open(tmp_path / "corpus" / "part-c.txt", "a") as f:
        f.write("one more line\n")
    with pytest.raises(AssertionError, match="tokenized again"):  # edited content: a new pass
        corpora.stream_pool("data.base_files", [pattern], NoEncode(), tmp_path / "data", "body")


def test_held_out_documents_are_every_kth_or_the_last(tmp_path):
    tok = ByteTokenizer()
    for n in (120, 30):
        path = tmp_path / f"b{n}.txt"
        path.write_text("\n".join(_docs("x", n)))
        pool, held = corpora.stream_pool("data.base_files", [str(path)], tok, tmp_path / "data", heldout_every=50)
        full = Pool.from_texts(_docs("x", n), tok)
        keep = np.arange(n) % 50 == 49 if n >= 50 else np.arange(n) == n - 1
        for got, want in ((pool, full.select(~keep)), (held, full.select(keep))):
            assert np.array_equal(got.tokens, want.tokens) and np.array_equal(got.starts, want.starts)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "none-*.jsonl", "no file matches"),
    (lambda d: (d / "x.parquet", pq.write_table(pa.table({"text": ["a"]}), d / "x.parquet"))[0],
     "x.parquet: no column 'body'"),
    (lambda d: (d / "x.csv", (d / "x.csv").write_text("a,b\n"))[0], "unknown file type"),
    (lambda d: (d / "x.jsonl", (d / "x.jsonl").write_text('{"body": "a"}\n{"text": "b"}\n'))[0],
     "x.jsonl:2: each line needs a string field 'body'"),
])
def test_bad_corpora_name_file_and_line(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError, match=message) as e:
        corpora.read_texts("data.base_files", [str(path)], "body")
    assert e.value.key == "data.base_files"


def test_mixture_reads_a_glob_of_shards_with_exact_accounting(root, shards):
    pattern, docs = shards
    cfg = config_from_dict({"data": {"data_dir": str(root), "tokenizer": "byte", "story_fraction": 0.0,
                                     "base_files": [pattern], "text_field": "body", "aligned_fraction": 0.1},
                            "model": {"seq_len": 64}, "train": {"steps": 20, "batch_size": 8}})
    mix = Mixture(cfg)
    assert mix.pools["base"].n_docs + mix.pools["heldout"].n_docs == len(docs)
    assert mix.pools["heldout"].n_docs == len(docs) // HELDOUT_EVERY
    acc = mix.accounting(20)
    assert sum(acc["tokens_by_pool"].values()) == acc["total_tokens"] == 20 * 8 * 64
    stream = np.asarray(mix.pools["base"].tokens, np.int32).tobytes()
    from_files = sum(r.tobytes() in stream for r in mix.batches(0, 20).reshape(-1, 65).astype(np.int32))
    assert from_files * 64 == acc["tokens_by_pool"]["base"] > 0  # every base row is a slice of the files


class ContentCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    code_path = None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"content": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(200)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"content": f"catalog line {i} of a corpus with its own field name ."}


def test_tfds_corpus_with_a_configured_text_field(tmp_path):
    ContentCorpus(data_dir=tmp_path, file_format="array_record").download_and_prepare()
    raw = {"data": {"data_dir": str(tmp_path), "tokenizer": "byte", "corpus": "tfds:content_corpus",
                    "story_fraction": 0.0, "natural_ai_fraction": 0.0},
           "model": {"seq_len": 64}, "train": {"steps": 10, "batch_size": 4}}
    with pytest.raises(ConfigError, match="'text' feature"):
        Mixture(config_from_dict(raw))
    raw["data"]["text_field"] = "content"
    mix = Mixture(config_from_dict(raw))
    assert all("catalog line" in mix.tok.decode(r) for r in mix.batches(0, 10).reshape(-1, 65))
