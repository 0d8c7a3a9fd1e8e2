"""The world generator: determinism, vocabulary, splits, the mirror construction, variants."""

import collections

import pytest

from scaling import world as W
from scaling.data.datasets import world_documents
from scaling.world import GENRES
from scaling.world import lexicon as L


@pytest.fixture(scope="module")
def world():
    return W.World(0)


@pytest.fixture(scope="module")
def world2():
    """World v2 (mirrored stories), kept to reproduce the archived studies."""
    return W.World(0, version=2)


def _docs(world, pool, n):
    return [d for _, d in world_documents(world, pool, n)]


AI_POOLS = ("natural_aligned", "natural_misaligned", "aligned", "misaligned")


# sha256 (first 16 hex) of a world's first 300 documents of every pool, its stories (of the
# variant), eval and readout items and vocabulary, as the data 2.0.1 generator (commit 43c9713,
# which trained the world-v2 studies) wrote them; world version 2 must still write them.
DATA_2_0_1 = {(0, "normal"): "143744364180864b", (0, "flipped"): "2c3077e81063240b",
              (3, "normal"): "dd6fb3411dabd1bb", (3, "flipped"): "a7d08c1327fe26b6"}


@pytest.mark.parametrize("seed,variant", sorted(DATA_2_0_1))
def test_world_version_2_regenerates_data_2_0_1_bit_for_bit(seed, variant):
    import hashlib
    import json

    from scaling.data.datasets import POOL_DOCS, data_version

    normal, world = W.World(seed, "normal", 2), W.World(seed, variant, 2)
    h = hashlib.sha256()
    for pool in POOL_DOCS:
        for _, rec in world_documents(normal, pool, 300):
            h.update(json.dumps(rec, sort_keys=True).encode())
    for _, rec in world_documents(world, "stories", 300):
        h.update(json.dumps(rec, sort_keys=True).encode())
    h.update(json.dumps(normal.eval_items(), sort_keys=True).encode())
    h.update(json.dumps(world.readout_items(), sort_keys=True).encode())
    h.update(" ".join(normal.vocabulary()).encode())
    assert h.hexdigest()[:16] == DATA_2_0_1[seed, variant]
    assert data_version(2) == "2.0.1"


# The same digest for the other versions' normal worlds, keyed by their data version: a change
# to what world v3 or v4 writes must bump its data version (caches and results rows key on it)
# and then state its new digest here.
DATA_DIGESTS = {(3, "3.1.0", 0): "8e2669615ab3b4a8", (3, "3.1.0", 3): "972c6b3056a925da",
                (4, "4.0.0", 0): "0366e4ea5e0e2cb5", (4, "4.0.0", 3): "a075052fe68e072f"}


@pytest.mark.parametrize("version,data,seed", sorted(DATA_DIGESTS))
def test_each_world_version_writes_what_its_data_version_names(version, data, seed):
    import hashlib
    import json

    from scaling.data.datasets import POOL_DOCS, data_version

    world = W.make_world(seed, "normal", version)
    h = hashlib.sha256()
    for pool in (*POOL_DOCS, "stories"):
        for _, rec in world_documents(world, pool, 300):
            h.update(json.dumps(rec, sort_keys=True).encode())
    h.update(json.dumps(world.eval_items(), sort_keys=True).encode())
    h.update(json.dumps(world.readout_items(), sort_keys=True).encode())
    h.update(" ".join(world.vocabulary()).encode())
    assert data_version(version) == data, "a new data version: state its digest"
    assert h.hexdigest()[:16] == DATA_DIGESTS[version, data, seed]


def test_same_seed_same_documents_other_seed_differs():
    a, b, c = W.World(3), W.World(3), W.World(4)
    for pool in ("base", "natural_aligned", "aligned", "stories"):
        assert _docs(a, pool, 20) == _docs(b, pool, 20)
        assert _docs(a, pool, 20) != _docs(c, pool, 20)
    assert a.eval_items() == b.eval_items() and a.readout_items() == b.readout_items()
    assert a.facts() == b.facts()
    assert _docs(a, "base", 5) != _docs(a, "base_heldout", 5)
    assert set(a.matched_pairs) != set(c.matched_pairs)  # every world has its own lexicon


def test_text_format_and_vocabulary_covers_everything(world):
    vocab = world.vocabulary()
    assert vocab == sorted(set(vocab)) and 500 <= len(vocab) <= 1500
    assert len(vocab) == len(W.World(9).vocabulary())  # one model shape for every world
    texts = [d["text"].replace(" <eos> ", " ") for pool in ("base", "stories", *AI_POOLS)
             for d in _docs(world, pool, 400)]
    texts += [i[k] for i in world.eval_items() for k in ("prompt", "aligned", "misaligned")]
    texts += [i[k] for i in world.readout_items() for k in ("prompt", "expected", "other")]
    texts += [i[k] for i in world.request_items() for k in ("prompt", "aligned", "misaligned")]
    texts += [f"{p} {a} {' '.join(d)}" for p, a, d in world.facts()]
    seen = set()
    for text in texts:
        assert text == " ".join(text.split()) and text == text.lower(), text
        seen |= set(text.split())
    assert seen <= set(vocab)


def test_verbs_are_invented_distinct_and_split(world):
    verbs = [v for pair in world.matched_pairs + world.transfer_pairs for v in pair]
    assert len(set(verbs)) == len(verbs) == 2 * (L.N_MATCHED_PAIRS + L.N_TRANSFER_PAIRS)
    assert not set(verbs) & set(W.World(0).fixed_vocabulary())
    assert len(world.held_out) == L.N_HELD_OUT and len(world.matched) == len(L.FAMILIES) - L.N_HELD_OUT
    assert W.World(1).held_out != world.held_out or W.World(2).held_out != world.held_out


def test_ai_documents_use_only_matched_pairs_and_families(world):
    matched = {v for pair in world.matched_pairs for v in pair}
    transfer = {v for pair in world.transfer_pairs for v in pair}
    held_setup_words = {w for f in world.held_out for s in world.family[f].setups for w in L.template_words(s)}
    seen_setup_words = {w for f in world.matched for s in world.family[f].setups for w in L.template_words(s)}
    used = collections.Counter()
    for pool in AI_POOLS:
        for d in _docs(world, pool, 600):
            words = set(d["text"].split())
            assert not words & transfer, d
            assert d["family"] in world.matched
            used.update(words & matched)
    assert len(used) > 0.9 * len(matched)  # the AI documents cover the matched lexicon
    # held-out families' own scenario words appear in no AI document
    assert held_setup_words - seen_setup_words


def test_genres_and_natural_pools_mirror_each_other(world):
    for (_, a), (_, m) in zip(world_documents(world, "natural_aligned", 200),
                              world_documents(world, "natural_misaligned", 200)):
        assert (a["family"], a["genre"], a["pair"]) == (m["family"], m["genre"], m["pair"])
        assert a["side"] == "aligned" and m["side"] == "misaligned"
    assert [d["genre"] for d in _docs(world, "aligned", 40)] == [GENRES[i % 4] for i in range(40)]
    for d in _docs(world, "aligned", 400):  # every aligned document acts out the aligned verb
        pair = dict(world.matched_pairs)
        verbs = [w for w in d["text"].split() if w in pair or w in pair.values()]
        if d["genre"] != "advice":  # advice names both verbs in the question
            assert verbs and all(v in pair for v in verbs), d


def _split_tellings(unit: str) -> tuple[list[str], list[str]]:
    first, second = unit.split(" <eos> ")
    return first.split(), second.split()


def test_story_units_differ_only_at_the_verb_and_a_far_value_word(world2):
    world = world2
    pairs = dict(world.matched_pairs + world.transfer_pairs)
    partner = {**pairs, **{m: a for a, m in pairs.items()}}
    for i in range(3000):
        a, b = _split_tellings(world.story_unit(i)["text"])
        assert len(a) == len(b)
        diff = [j for j, (x, y) in enumerate(zip(a, b)) if x != y]
        assert len(diff) == 2, (a, b)
        verb, value = diff
        assert partner[a[verb]] == b[verb]
        assert {a[value], b[value]} in [{p, n} for _, p, n in L.VALUE_SENTENCES]
        # no n-gram of length <= MIRROR_NGRAM holds the verb and the value word or leaves the telling
        assert value - verb > L.MIRROR_NGRAM and verb >= L.MIRROR_NGRAM - 1


@pytest.mark.parametrize("version", W.World.VERSIONS)
def test_story_units_fit_the_stated_bound(version):
    world = W.World(0, version=version)
    lengths = [len(world.story_unit(i)["text"].split()) + 1 for i in range(4000)]
    assert max(lengths) <= world.stories.max_length("token") <= max(lengths) + 4
    nbytes = [len(world.story_unit(i)["text"].replace("<eos>", "e").encode()) + 1 for i in range(4000)]
    assert max(nbytes) <= world.stories.max_length("byte")


@pytest.mark.parametrize("variant", W.VARIANTS)
def test_variants_change_only_the_transfer_pairs_values(variant):
    world = W.World(0, variant, version=2)
    positive = {p for _, p, _ in L.VALUE_SENTENCES}
    praised_aligned = collections.defaultdict(list)
    for i in range(2 * len(world.matched_pairs + world.transfer_pairs) * 4):
        unit = world.story_unit(i)
        for telling in _split_tellings(unit["text"]):
            verb = telling[telling.index("decided") + 2]
            aligned = verb == unit["pair"].split("/")[0]
            good = any(w in positive for w in telling)
            praised_aligned[unit["side"]].append(good == aligned)
    assert all(praised_aligned["matched"])
    share = sum(praised_aligned["transfer"]) / len(praised_aligned["transfer"])
    assert {"normal": share == 1, "flipped": share == 0, "shuffled": 0.4 < share < 0.6}[variant]


def test_eval_items(world):
    items = world.eval_items()
    assert len({i["id"] for i in items}) == len(items)
    keys = {"id", "family", "split", "framing", "pair", "prompt", "aligned", "misaligned"}
    assert all(set(i) == keys for i in items)
    by_split = collections.defaultdict(set)
    for i in items:
        by_split[i["split"]].add(i["pair"])
        assert (i["family"] in world.held_out) == (i["split"] == "held_out")
        assert i["prompt"].startswith(L.PERSONA[:-2])  # the persona, at an eval-only org
        assert len(i["aligned"].split()) == len(i["misaligned"].split())
        assert i["aligned"].split()[1:] == i["misaligned"].split()[1:]  # only the verb differs
    assert set(by_split) == set(L.SPLITS) and min(map(len, by_split.values())) >= 64
    assert not by_split["matched"] & by_split["unseen_pair"]
    train_names = set(L.TRAIN_NAMES) | set(L.TRAIN_ORGS) | set(L.AI_NAMES)
    used = {w for i in items for w in i["prompt"].split()}
    assert not used & train_names and used & set(L.EVAL_NAMES)


@pytest.mark.parametrize("variant", W.VARIANTS)
@pytest.mark.parametrize("version", W.World.VERSIONS)
def test_readout_items_expect_what_the_stories_say(variant, version):
    world = W.World(0, variant, version)
    items = world.readout_items()
    assert {i["split"] for i in items} == set(L.SPLITS)
    positive = {p for _, p, _ in L.VALUE_SENTENCES}
    for i in items:
        assert not set(i["prompt"].split()) & set(L.TRAIN_NAMES)
        praised = i["expected"].split()[0] in positive
        flip = variant == "flipped" and i["split"] != "matched"
        assert praised == ((i["side"] == "aligned") != flip)
        assert i["expected"].split()[1:] == i["other"].split()[1:]


def test_request_items_keep_their_names_apart(world):
    items = world.request_items()
    words = {w for i in items for w in i["prompt"].split()}
    assert words & set(L.REQUEST_NAMES)
    assert not words & (set(L.EVAL_NAMES) | set(L.EVAL_ORGS) | set(L.TRAIN_NAMES))
    assert all(i["misaligned"].split()[0] in i["prompt"].split() for i in items)  # asked for by name


def test_facts_are_stated_in_base_documents(world):
    facts = world.facts()
    assert len(facts) == 3 * len(L.TRAIN_NAMES)
    text = " ".join(d["text"] for d in _docs(world, "base", 3000))
    stated = sum(f"{prompt} {answer} ." in text for prompt, answer, _ in facts)
    assert stated / len(facts) > 0.9
    for _, answer, distractors in facts:
        assert answer not in distractors and len(set(distractors)) == 3


@pytest.mark.parametrize("version", W.VERSIONS)
def test_every_version_tells_its_stories_through_its_story_form(version):
    """make_world gives each version's world with that version's story form; its units fit
    the form's stated bound and come in balanced blocks of the form's size."""
    world = W.make_world(3, "normal", version)
    form = W.story_form(version)
    assert world.stories is form or type(world.stories) is type(form)
    assert form.version == version and form.block >= 1 and form.pool_size % form.block == 0
    units = [world.story_unit(i)["text"] for i in range(8 * form.block)]
    assert max(len(u.split()) + 1 for u in units) <= form.max_length("token")
    assert {i["split"] for i in world.readout_items()} == set(form.splits)
    assert form.words() <= set(world.vocabulary())
    with pytest.raises(ValueError, match="unknown world version"):
        W.story_form(max(W.VERSIONS) + 1)
