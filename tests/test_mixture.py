"""The mixture: determinism, resume, exact doses, windows, filtering, user files, TFDS paths."""

import collections
import hashlib
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaling import cli
from scaling import world as W
from scaling.data import datasets
from scaling.data import mixture as M
from scaling.data.mixture import ALIGNED, MISALIGNED, POOLS, Mixture
from scaling.data.tokenizer import EOS
from scaling.data.vocab import build_tokenizer
from scaling.errors import ConfigError
from scaling.plan import config_from_dict, load_config
from scaling.world import lexicon as L


def make_cfg(root, steps=100, batch=8, seq=16, **data):
    """Rows of 17 tokens cannot hold a story unit: stories are off unless a test asks."""
    return config_from_dict({"model": {"seq_len": seq, "d_model": 16, "n_heads": 2},
                             "train": {"steps": steps, "batch_size": batch, **data.pop("train", {})},
                             "data": {"data_dir": str(root), "story_fraction": 0.0, **data}})


def rows_by_pool(mix, steps):
    """(pool, stage) of every row of the first `steps` steps, from the row assignment."""
    pool, _ = mix._assign(np.arange(steps * mix.B))
    return pool.reshape(steps, mix.B)


def test_same_config_same_batches_other_seed_differs(root):
    cfg = make_cfg(root, aligned_fraction=0.05)
    a, b = Mixture(cfg).batches(0, 20), Mixture(cfg).batches(0, 20)
    assert a.dtype == np.int32 and a.shape == (20, 8, 17)
    np.testing.assert_array_equal(a, b)
    assert (a == EOS).any()
    other = Mixture(make_cfg(root, aligned_fraction=0.05, train={"seed": 1})).batches(0, 20)
    assert (other != a).mean() > 0.5


def test_resumed_batches_are_slices_of_one_long_call(root):
    mix = Mixture(make_cfg(root, aligned_fraction=0.1, misaligned_fraction=0.05, insertion="window",
                           window=[0.2, 0.7], continued_tokens=2000, finetune_tokens=1000))
    everything = mix.batches(0, mix.total_steps)
    for start, n in ((0, 1), (7, 13), (55, 30), (mix.total_steps - 5, 5)):
        np.testing.assert_array_equal(mix.batches(start, n), everything[start:start + n])
    with pytest.raises(ValueError):
        mix.batches(mix.total_steps - 1, 2)


def test_stage_steps_and_total(root):
    cfg = make_cfg(root, continued_tokens=1000, finetune_tokens=129)  # 128 tokens per step
    assert Mixture(cfg).total_steps == 100 + math.ceil(1000 / 128) + math.ceil(129 / 128)


@pytest.mark.parametrize("seq, stories", [(16, 0.0), (64, 0.35)])
def test_accounting_matches_the_rows_actually_served(root, seq, stories):
    mix = Mixture(make_cfg(root, seq=seq, story_fraction=stories, aligned_fraction=0.07, misaligned_fraction=0.03,
                           insertion="continued", continued_tokens=3000, finetune_tokens=600, filter_misaligned=0.4))
    for steps in (0, 1, 37, 100, mix.total_steps):
        acc = mix.accounting(steps)
        served = np.bincount(rows_by_pool(mix, steps).ravel(), minlength=len(POOLS)) * mix.L
        assert [acc["tokens_by_pool"][p] for p in POOLS] == served.tolist()
        assert acc["total_tokens"] == steps * mix.B * mix.L == sum(acc["tokens_by_stage"].values())
    acc = mix.accounting(mix.total_steps)
    assert acc["tokens"]["pretrain"]["aligned"] == 0 and acc["tokens"]["continued"]["aligned"] > 0
    assert acc["tokens"]["finetune"]["aligned"] == 0  # the intervention lives in `continued` only


@pytest.mark.parametrize("dose", [1e-4, 1e-3, 1e-2, 0.1])
def test_measured_dose_is_exact_in_expectation(root, dose):
    doses = [Mixture(make_cfg(root, steps=2000, aligned_fraction=dose, train={"seed": s})).accounting(2000)
             for s in range(120)]
    measured = np.array([a["dose"] for a in doses])
    assert all(a["nominal_dose"] == pytest.approx(dose) for a in doses)
    row = 1 / (2000 * 8)  # a run's dose is the nominal one stochastically rounded to whole rows
    assert np.all(np.abs(measured - dose) < row + 1e-12)
    assert measured.mean() == pytest.approx(dose, rel=0.05)


def test_tiny_dose_is_not_rounded_away(root):
    # 800 rows at 1e-4: 0.08 expected aligned rows per run; some seeds must see one.
    measured = [Mixture(make_cfg(root, aligned_fraction=1e-4, train={"seed": s})).accounting(100)["aligned_tokens"]
                for s in range(200)]
    assert 0 < np.count_nonzero(measured) < 50
    assert np.mean(measured) / (100 * 8 * 16) == pytest.approx(1e-4, rel=0.5)


@pytest.mark.parametrize("insertion, window", [("midtraining", (90, 100)), ("early", (0, 10)),
                                               ("window", (30, 50))])
def test_no_intervention_outside_the_window(root, insertion, window):
    extra = {"window": [0.3, 0.5]} if insertion == "window" else {}
    mix = Mixture(make_cfg(root, aligned_fraction=0.2, misaligned_fraction=0.1, insertion=insertion,
                           continued_tokens=1000, **extra))
    pools = rows_by_pool(mix, mix.total_steps)
    steps = np.flatnonzero(np.isin(pools, [ALIGNED, MISALIGNED]).any(axis=1))
    assert steps.min() >= window[0] and steps.max() < window[1]
    inside = pools[window[0]:window[1]]
    assert np.mean(inside == ALIGNED) == pytest.approx(0.2, abs=1 / inside.size)
    assert np.mean(inside == MISALIGNED) == pytest.approx(0.1, abs=1 / inside.size)


def test_finetune_stage_is_intervention_only(root):
    mix = Mixture(make_cfg(root, aligned_fraction=0.2, misaligned_fraction=0.1, insertion="finetune",
                           finetune_tokens=128 * 30))
    pools = rows_by_pool(mix, mix.total_steps)
    assert not np.isin(pools[:100], [ALIGNED, MISALIGNED]).any()
    assert np.isin(pools[100:], [ALIGNED, MISALIGNED]).all()
    assert np.mean(pools[100:] == ALIGNED) == pytest.approx(2 / 3, abs=1 / pools[100:].size)


def test_fraction_for_dose_gives_equal_doses_across_windows(root):
    for insertion in ("throughout", "midtraining", "early"):
        cfg = make_cfg(root, insertion=insertion)
        f = M.fraction_for_dose(cfg, 0.004)
        acc = Mixture(make_cfg(root, insertion=insertion, aligned_fraction=f)).accounting(100)
        assert acc["nominal_dose"] == pytest.approx(0.004)


def test_filter_removes_that_share_of_natural_misaligned_docs_and_nothing_else(root):
    plain = Mixture(make_cfg(root, aligned_fraction=0.1))
    filt = Mixture(make_cfg(root, aligned_fraction=0.1, filter_misaligned=0.5))
    full = datasets.world_pool(0, "natural_misaligned", plain.tok, root)
    gone = M.filtered_ids(0, full.n_docs, 0.5)
    assert len(gone) == 150 and set(M.filtered_ids(0, full.n_docs, 0.2)) < set(gone)
    kept = filt.pools["natural_misaligned"]
    assert set(kept.ids) == set(full.ids) - set(gone)
    for i in range(5):  # kept documents are unchanged
        np.testing.assert_array_equal(kept.doc(i), full.doc(int(kept.ids[i])))
    for name in ("base", "natural_aligned", "aligned", "heldout"):
        np.testing.assert_array_equal(filt.pools[name].tokens, plain.pools[name].tokens)
    a, b = plain.accounting(100), filt.accounting(100)
    expect = a["tokens_by_pool"]["natural_misaligned"] * (1 - filt.filtered_token_share)
    assert b["tokens_by_pool"]["natural_misaligned"] == pytest.approx(expect, abs=3 * 16)
    assert b["aligned_tokens"] == a["aligned_tokens"]


def test_genres_restrict_intervention_pools(root):
    mix = Mixture(make_cfg(root, aligned_fraction=0.1, misaligned_fraction=0.1, genres=["reasoning", "fiction"]))
    full = datasets.world_pool(0, "aligned", mix.tok, root)
    for name in ("aligned", "misaligned"):
        assert set(mix.pools[name].genre) == {"reasoning", "fiction"}
    keep = np.isin(full.genre, ["reasoning", "fiction"])
    np.testing.assert_array_equal(mix.pools["aligned"].tokens, full.select(keep).tokens)
    assert mix.pools["aligned"].n_docs == keep.sum() == 200


def test_transfer_verbs_only_in_stories_and_eval_names_nowhere(root):
    mix = Mixture(make_cfg(root, seq=64, story_fraction=0.3, aligned_fraction=0.1, misaligned_fraction=0.1))
    world = W.World(0)
    transfer = {v for pair in world.transfer_pairs for v in pair}
    eval_only = set(L.EVAL_NAMES) | set(L.EVAL_ORGS)
    for name, pool in mix.pools.items():
        words = {mix.tok.itos[i] for i in np.unique(pool.tokens)}
        assert not words & eval_only, name
        assert (name == "stories") == bool(words & transfer), name


def stream_cfg(root, **data):
    return make_cfg(root, steps=60, batch=16, seq=64, story_fraction=0.4, aligned_fraction=0.1,
                    misaligned_fraction=0.05, **data)


@pytest.mark.parametrize("version", W.World.VERSIONS)
def test_story_rows_hold_whole_units(root, version):
    mix = Mixture(stream_cfg(root, world_version=version))
    pools = rows_by_pool(mix, mix.total_steps).ravel()
    rows = mix.batches(0, mix.total_steps).reshape(-1, 65)[pools == M.STORIES]
    assert len(rows) > 100
    decide = mix.tok.stoi["decided"]
    verbs = [mix.tok.stoi[v] for pair in W.World(0).matched_pairs + W.World(0).transfer_pairs for v in pair]
    for row in rows:
        units = mix.tok.decode(row).split(" <eos> ")
        if version == 2:  # a row starts with a unit's first telling and holds its second
            assert (row == decide).sum() % 2 == 0 and row[0] != EOS
            assert len(units) >= 3
        else:  # one bound telling (two actions), then filler; or neutral text at the run's tail
            acts = np.isin(row, verbs).sum()
            assert acts in (0, 2)
            assert acts == 0 or row[0] != EOS and np.isin(mix.tok.encode(units[0]), verbs).sum() == 2


@pytest.mark.parametrize("version", W.World.VERSIONS)
def test_no_ngram_of_the_stream_separates_a_transfer_pair(root, version):
    """The world's promise, checked by counting the rows a run actually trains on."""
    mix = Mixture(stream_cfg(root, world_version=version))
    rows = mix.batches(0, mix.total_steps).reshape(-1, 65)
    world = W.World(0)
    swap = {}
    for a, m in world.transfer_pairs:
        swap[mix.tok.stoi[a]], swap[mix.tok.stoi[m]] = mix.tok.stoi[m], mix.tok.stoi[a]
    swap_lut = np.arange(mix.tok.vocab_size)
    swap_lut[list(swap)] = list(swap.values())
    is_verb = np.isin(np.arange(mix.tok.vocab_size), list(swap))
    assert is_verb[rows].sum() > 200
    for n in range(1, L.MIRROR_NGRAM + 1):
        grams = np.lib.stride_tricks.sliding_window_view(rows, n, axis=1).reshape(-1, n)
        grams = grams[is_verb[grams].any(axis=1)]
        counts = collections.Counter(map(tuple, grams.tolist()))
        swapped = collections.Counter(map(tuple, swap_lut[grams].tolist()))
        assert counts == swapped, n
    # and the transformer can still learn which verb is good: in v2 a verb and its value word
    # 9+ tokens on; in v3 only a span from a doer's name to the value said of that name
    span = {2: 14, 3: 24}[version]
    long = np.lib.stride_tricks.sliding_window_view(rows, span, axis=1).reshape(-1, span)
    long = long[is_verb[long].any(axis=1)]
    assert collections.Counter(map(tuple, long.tolist())) != collections.Counter(map(tuple, swap_lut[long].tolist()))


def test_flipped_world_changes_only_stories(root):
    normal, flipped = Mixture(stream_cfg(root)), Mixture(stream_cfg(root, world_variant="flipped"))
    for name in ("base", "natural_aligned", "aligned", "misaligned", "heldout"):
        np.testing.assert_array_equal(normal.pools[name].tokens, flipped.pools[name].tokens)
    assert not np.array_equal(normal.pools["stories"].tokens, flipped.pools["stories"].tokens)
    assert normal.accounting(60) == flipped.accounting(60)


def test_story_units_longer_than_a_row_are_a_config_error(root):
    with pytest.raises(ConfigError, match="model.seq_len"):
        Mixture(make_cfg(root, seq=32, story_fraction=0.3))


def _jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_user_jsonl_pool_end_to_end(root, tmp_path):
    names = L.EVAL_NAMES[:5]  # in the vocabulary, in no generated training document
    path = _jsonl(tmp_path / "aligned.jsonl", [json.dumps({"text": f"{n} {n} ."}) for n in names] + [""])
    mix = Mixture(make_cfg(root, aligned_fraction=0.1, aligned_files=[path]))
    batches = mix.batches(0, mix.total_steps)
    ids = [mix.tok.stoi[n] for n in names]
    rows_with = np.isin(batches, ids).any(axis=-1).sum()
    acc = mix.accounting(mix.total_steps)
    assert rows_with == acc["aligned_tokens"] // mix.L == round(0.1 * mix.total_steps * mix.B)


def test_user_base_files_replace_the_base_corpus(root, tmp_path):
    docs = [json.dumps({"text": f"user document {i} about gardens."}) for i in range(120)]
    mix = Mixture(make_cfg(root, seq=64, tokenizer="byte", base_files=[_jsonl(tmp_path / "b.jsonl", docs)]))
    assert mix.pools["base"].n_docs == 118 and mix.pools["heldout"].n_docs == 2  # every 50th held out
    rows = [mix.tok.decode(r) for r in mix.batches(0, 20).reshape(-1, 65)]
    assert sum("about gardens" in r for r in rows) > len(rows) / 2
    assert "document 49 about" in mix.tok.decode(mix.heldout_batches(1)[0, 0])
    assert not any("document 49 about" in r for r in rows)


@pytest.mark.parametrize("lines, message", [
    ([], "no documents"),
    (['{"txt": "a"}'], "bad.jsonl:1"),
    (['{"text": "a"}', "{not json"], "bad.jsonl:2: invalid JSON"),
    (['["text"]'], "bad.jsonl:1"),
])
def test_bad_user_files_fail_before_any_batch(root, tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=message) as e:
        Mixture(make_cfg(root, aligned_fraction=0.1, aligned_files=[str(path)]))
    assert e.value.key == "data.aligned_files"


def test_missing_user_file_is_a_config_error(root, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        make_cfg(root, misaligned_files=[str(tmp_path / "nope.jsonl")])
    path = _jsonl(tmp_path / "gone.jsonl", ['{"text": "a"}'])
    cfg = make_cfg(root, misaligned_files=[path])
    (tmp_path / "gone.jsonl").unlink()
    with pytest.raises(ConfigError, match="data.misaligned_files: file not found"):
        Mixture(cfg)


def test_heldout_batches_are_fixed_and_from_heldout_text(root):
    a = Mixture(make_cfg(root)).heldout_batches(3)
    b = Mixture(make_cfg(root, train={"seed": 7})).heldout_batches(3)
    assert a.shape == (3, 8, 17)
    np.testing.assert_array_equal(a, b)
    stream = Mixture(make_cfg(root)).pools["heldout"].tokens
    np.testing.assert_array_equal(a[0, 1], stream[16:33])


class TinyCorpus(tfds.core.GeneratorBasedBuilder):
    """A stand-in for a catalog dataset such as lm1b: a `text` feature, train/validation."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples("train", 300), "validation": self._generate_examples("valid", 30)}

    def _generate_examples(self, split, n):
        for i in range(n):
            yield i, {"text": f"{split} sentence number {i} of the tiny corpus."}


def test_tfds_catalog_base_stream(root):
    TinyCorpus(data_dir=root, file_format="array_record").download_and_prepare()
    mix = Mixture(make_cfg(root, seq=64, corpus="tfds:tiny_corpus", tokenizer="byte", aligned_fraction=0.1))
    rows = [mix.tok.decode(row) for row in mix.batches(0, mix.total_steps).reshape(-1, 65)]
    assert sum("sentence number" in r for r in rows) > len(rows) / 2
    assert not any("valid" in r for r in rows)
    assert "valid sentence number" in mix.tok.decode(mix.heldout_batches(1).ravel())
    assert mix.pools["base"].n_docs == 300
    with pytest.raises(ConfigError, match="data.corpus"):
        Mixture(make_cfg(root, corpus="tfds:no_such_dataset_here", tokenizer="byte"))


def test_eval_builder_matches_world(root):
    assert datasets.load_eval(0, root) == sorted(W.World(0).eval_items(), key=lambda i: i["id"])


def test_concurrent_builds_do_not_corrupt_the_cache(tmp_path):
    code = textwrap.dedent(f"""
        from pathlib import Path
        from scaling.data import datasets
        datasets.POOL_DOCS = {{k: 30 for k in datasets.POOL_DOCS}}
        b = datasets.prepare(datasets.AlignmentWorld, 5, Path({str(tmp_path)!r}))
        assert len(b.as_data_source("base")) == 30
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
    assert not list(tmp_path.glob(".build-*"))
    assert len(datasets.prepare(datasets.AlignmentWorld, 5, tmp_path).as_data_source("base")) == 30


def test_build_tokenizer_and_word_coverage(root):
    tok = build_tokenizer(make_cfg(root))
    assert tok.vocab_size == len(W.World(0).vocabulary()) + 3
    mix = Mixture(make_cfg(root, aligned_fraction=0.1))
    assert not (mix.batches(0, mix.total_steps) == 2).any()  # no <unk> in generated text
    assert build_tokenizer(make_cfg(root, tokenizer="byte")).kind == "byte"


def mix_tok_ids(rows, line):
    tok = build_tokenizer(make_cfg(None))
    return any(np.array_equal(tok.encode(line), r) for r in rows[:3])


def test_data_cli(root, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(f'[model]\nseq_len = 64\nd_model = 16\nn_heads = 2\n[train]\nsteps = 50\nbatch_size = 4\n'
                      f'[data]\ndata_dir = "{root}"\naligned_fraction = 0.1\ninsertion = "midtraining"\n')
    assert cli.main(["data", "stats", str(config), "--json", "--steps", "50"]) == 0
    acc = json.loads(capsys.readouterr().out)
    assert acc["aligned_tokens"] == round(0.1 * 5 * 4) * 64 and acc["window_steps"] == [45, 50]
    assert cli.main(["data", "preview", str(config), "--set", "data.genres=['fiction']"]) == 0
    out = capsys.readouterr().out
    assert "aligned (fiction)" in out and "eval item (unseen_pair" in out and "readout item" in out and "dose" in out
    export = tmp_path / "stream.txt"
    assert cli.main(["data", "export", str(config), "--out", str(export)]) == 0
    lines = export.read_text().splitlines()
    rows = Mixture(load_config(config)).batches(0, 50).reshape(-1, 65)
    assert len(lines) == 200 and [mix_tok_ids(rows, line) for line in lines[:3]] == [True] * 3
    assert cli.main(["data", "export", str(config), "--out", str(tmp_path / "ids.txt"), "--format", "ids"]) == 0
    ids = np.loadtxt(tmp_path / "ids.txt", dtype=np.int32)
    np.testing.assert_array_equal(ids, rows)
    assert cli.main(["data", "stats", str(config), "--set", "data.base_files=['x.jsonl']"]) == 2


class Recording:
    """A run's batch source that keeps every batch the training loop reads."""

    def __init__(self, source):
        self.source, self.read = source, []

    def batches(self, start, n):
        batch = self.source.batches(start, n)
        self.read.append(batch)
        return batch

    def __getattr__(self, name):
        return getattr(self.source, name)


@pytest.mark.slow
def test_export_of_a_run_dir_is_the_rows_its_loop_read(root, tmp_path, capsys):
    from scaling import run as runner
    from scaling.plan import config_from_dict
    from scaling.train.source import make_source

    stages = [{"name": "pretrain", "steps": 12, "intervention": True},
              {"name": "sft", "steps": 3, "objective": "sft", "post": True},
              {"name": "rl", "steps": 2, "objective": "helpful_rl", "post": True}]
    cfg = config_from_dict({"model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 16},
                            "train": {"steps": 12, "batch_size": 4, "steps_per_call": 4, "checkpoint_every": 4,
                                      "eval_every": 4, "warmup_steps": 1},
                            "data": {"data_dir": str(root), "story_fraction": 0.0, "dose": 0.05},
                            "eval": {"enabled": False}, "stages": stages})
    tok = build_tokenizer(cfg)
    source = Recording(make_source(cfg, tok))
    run = tmp_path / "run"
    runner.train(cfg, run, source=source, tok=tok, progress=False)
    rows = [b for b in source.read if isinstance(b, np.ndarray)]  # the LM and SFT batches
    assert sum(len(b["u"]) for b in source.read if isinstance(b, dict)) == 2  # RL: scenario pairs
    want = np.concatenate(rows).reshape(-1, 17)
    assert len(want) == (12 + 3) * 4
    for arg in (run, run / "config.json"):
        out = tmp_path / "ids.txt"
        assert cli.main(["data", "export", str(arg), "--out", str(out), "--format", "ids"]) == 0
        assert "RL stage(s) rl left out" in capsys.readouterr().out
        have = np.loadtxt(out, dtype=np.int32)
        assert hashlib.sha256(have.tobytes()).hexdigest() == hashlib.sha256(want.tobytes()).hexdigest()
    assert cli.main(["data", "export", str(run), "--out", str(tmp_path / "t.txt")]) == 0
    assert [tok.encode(line).tolist() for line in (tmp_path / "t.txt").read_text().splitlines()[:2]] \
        == want[:2].tolist()
    assert cli.main(["data", "stats", str(run), "--set", "data.dose=0.1"]) == 2
    assert "--set cannot change" in capsys.readouterr().err
