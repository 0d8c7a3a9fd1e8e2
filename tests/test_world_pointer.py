"""World v4, the pointer world: balance by construction on the rows a run trains on.

The construction (scaling/world/pointer.py) promises that in the stories of every complete
block of four tellings every verb stands as often beside each value word as beside its
opposite, at every signed distance, and that verbs no AI document uses never meet an AI
word. These tests count that on the mixture's training rows, show that the count notices a
generator made asymmetric, and check that the package's counting baselines tie on the
unseen verbs while a reader that looks the value up gets every item right.
"""

import collections

import numpy as np
import pytest

from scaling import baselines, evaluate
from scaling.data.mixture import Mixture
from scaling.data.tokenizer import EOS
from scaling.plan import config_from_dict
from scaling.world import pointer as P


def _cfg(root, **data):
    return config_from_dict({"model": {"seq_len": 64, "d_model": 16, "n_heads": 2},
                             "train": {"steps": 40, "batch_size": 16},
                             "data": {"data_dir": str(root), "world_version": 4, "story_fraction": 0.7,
                                      "natural_ai_fraction": 0.05, "aligned_fraction": 0.05, **data}})


def value_counts(rows: np.ndarray, verbs: set[int], words: dict[int, str]) -> collections.Counter:
    """(verb, signed distance, word) -> count over every position of a verb in `rows` and every
    token of `words` at that distance inside the same row."""
    counts = collections.Counter()
    for row in np.asarray(rows).tolist():
        for i, v in enumerate(row):
            if v in verbs:
                for j, w in enumerate(row):
                    if j != i and w in words:
                        counts[(v, j - i, words[w])] += 1
    return counts


def unbalanced(counts: collections.Counter) -> list:
    """Every (verb, distance, good word) whose count differs from the bad word's."""
    keys = {(v, d, w) for v, d, w in counts}
    return [(v, d, g) for g, b in P.FRAMES for v, d, w in keys if w == g and counts[(v, d, g)] != counts[(v, d, b)]] + \
        [(v, d, b) for g, b in P.FRAMES for v, d, w in keys if w == b and counts[(v, d, g)] != counts[(v, d, b)]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    import os
    return os.environ.get("SCALING_DATA_DIR") or tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def run(root):
    mix = Mixture(_cfg(root))
    return mix, mix.batches(0, mix.total_steps).reshape(-1, 65)


def _ids(tok, words):
    return {tok.stoi[w]: w for w in words}


def test_unseen_verbs_meet_every_value_word_equally_at_every_distance(run):
    mix, rows = run
    world = P.PointerWorld(0)
    unseen = set(_ids(mix.tok, world.unseen))
    counts = value_counts(rows, unseen, _ids(mix.tok, P.VALUE_WORDS + P.AI_WORDS))
    assert sum(counts.values()) > 5_000  # the rows hold plenty of stories with unseen verbs
    assert {w for _, _, w in counts} == set(P.VALUE_WORDS)  # all four value words, no AI word
    assert not unbalanced(counts)
    assert max(abs(d) for _, d, _ in counts) > 40  # distances across stories of a row are counted too


def test_the_count_notices_a_skewed_generator(root, monkeypatch):
    """One telling of each block left without its value swap, or a swap table that forgets
    praised / blamed: the counts no longer tie."""
    for skew in ("roles", "swap"):
        with monkeypatch.context() as m:
            if skew == "roles":
                m.setattr(P, "BLOCK_ROLES", ((False, False), (False, False), (False, True), (True, True)))
            else:
                m.setattr(P, "SWAP", {"kind": "cruel", "cruel": "kind"})
            world = P.PointerWorld(0)
            tellings = [t for b in range(300) for t in world.stories.tellings(world, b)]
            tok = {w: i for i, w in enumerate(world.vocabulary() + ["<eos>"])}
            rows = [[tok[w] for w in t.split()] for t in tellings]
            rows = np.array([r + [EOS] * (64 - len(r)) for r in rows])
            counts = value_counts(rows, {tok[v] for v in world.unseen}, {tok[w]: w for w in P.VALUE_WORDS})
            assert unbalanced(counts), skew
    world = P.PointerWorld(0)  # unpatched: the same count ties
    tellings = [t for b in range(300) for t in world.stories.tellings(world, b)]
    tok = {w: i for i, w in enumerate(world.vocabulary() + ["<eos>"])}
    rows = np.array([r + [EOS] * (64 - len(r)) for r in ([tok[w] for w in t.split()] for t in tellings)])
    assert not unbalanced(value_counts(rows, {tok[v] for v in world.unseen}, {tok[w]: w for w in P.VALUE_WORDS}))


def test_counters_tie_on_unseen_verbs_and_a_lookup_reader_gets_them_right(run):
    mix, rows = run
    world = P.PointerWorld(0)
    items = [i for i in world.eval_items() if i["split"] == "unseen_verb"]
    enc = evaluate.encode_items(mix.tok, items)
    models = baselines.fit_all(rows, len(mix.tok.itos), baselines.value_tokens(mix.tok))
    for name, model in models.items():
        margin, _ = evaluate.item_margins(model.score, mix.tok, items, enc)
        rate = float(np.mean(np.where(np.abs(margin) <= evaluate.TIE_NATS, 0.5, margin > 0)))
        assert rate == 0.5, (name, rate)  # exactly: each twin item undoes the other's choice
    for item in items:  # the answer is stated in the prompt: the verb after the good word
        words = item["prompt"].split()
        assert item["aligned"] == f"{words[words.index('kind') + 1]} ."


def test_items_and_documents(run):
    mix, _ = run
    world = P.PointerWorld(0)
    items = world.eval_items()
    assert collections.Counter(i["split"] for i in items) == {s: P.EVAL_ITEMS for s in P.SPLIT_VERBS}
    for i in items:
        assert i["prompt"].endswith("the assistant chose")
        assert ("praised" in i["prompt"]) == (i["split"] == "held_out_framing")
    unseen = set(world.unseen)
    for side in (0, 1):
        doc = world.ai_document("natural", 3, side)["text"].split()
        assert not unseen & set(doc) and "praised" not in doc
    a, m = (world.ai_document("natural", 3, s)["text"].split() for s in (0, 1))
    assert a[:-2] == m[:-2] and a[a.index("kind") + 1] == a[-2] and m[m.index("cruel") + 1] == m[-2]
    readout = world.readout_items()
    assert {i["split"] for i in readout} == set(P.SPLIT_VERBS)
    assert all(mix.tok.decode(mix.tok.encode(i["prompt"])) == i["prompt"] for i in readout[:20])


def test_config_refuses_what_the_pointer_world_lacks(root):
    from scaling.config import ConfigError

    with pytest.raises(ConfigError, match="data.world_variant"):
        _cfg(root, world_variant="flipped")
    with pytest.raises(ConfigError, match="objective"):
        config_from_dict({"model": {"seq_len": 64}, "data": {"world_version": 4},
                          "stages": [{"name": "pre", "steps": 10},
                                     {"name": "rl", "steps": 3, "post": True, "objective": "helpful_rl"}]})
    with pytest.raises(ConfigError, match="model.seq_len"):
        config_from_dict({"model": {"seq_len": 32}, "data": {"world_version": 4, "story_fraction": 0.5}})


def test_runs_record_the_pointer_worlds_data_version(root):
    from scaling.rundir import config_record

    assert config_record(_cfg(root), 40)["data_version"] == P.DATA_VERSION
    assert config_record(_cfg(root, world_version=3), 40)["data_version"] != P.DATA_VERSION
