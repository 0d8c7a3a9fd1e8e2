"""World v3: bound stories, where no co-occurrence count separates the two verbs of a pair.

The construction (scaling/world/stories.py, "bound stories") promises that in every complete block
of four tellings, and so in any stream of whole blocks, each verb of a pair has exactly the
same count with every other token at every signed distance, and in every document. These
tests count that on the rows a run trains on, and check that the count notices a template
made asymmetric. The in-context binding (who did what, and what was said of whom) is still
there to learn: a reader that tracks names gets every readout item right, one that does not
gets half.
"""

import collections

import numpy as np
import pytest

from scaling import world as W
from scaling.data.mixture import STORIES, Mixture
from scaling.data.tokenizer import EOS
from scaling.plan import config_from_dict
from scaling.world import lexicon as L
from scaling.world import stories as S

MAX_DISTANCE = 32


def _cfg(root, **data):
    return config_from_dict({"model": {"seq_len": 64, "d_model": 16, "n_heads": 2},
                             "train": {"steps": 60, "batch_size": 16},
                             "data": {"data_dir": str(root), "story_fraction": 0.4, "aligned_fraction": 0.1,
                                      "misaligned_fraction": 0.05, **data}})


def pair_counts(rows: np.ndarray, pairs: list[tuple[int, int]], max_distance: int = MAX_DISTANCE):
    """For each side (0: first verb of a pair, 1: second) a Counter of (pair, distance, token)
    over every position of a verb in `rows` (int [R, L]) and every token at a signed distance
    1..max_distance inside the same row, plus (pair, "doc", token) once per document (text
    between <eos> tokens) holding both; the pair's other verb is written "other", so equal
    statistics compare equal."""
    side_of, pair_of = {}, {}
    for k, (a, m) in enumerate(pairs):
        side_of.update({a: 0, m: 1})
        pair_of.update({a: k, m: k})
    counts = (collections.Counter(), collections.Counter())
    for row in np.asarray(rows).tolist():
        doc = np.cumsum([t == EOS for t in row])
        for i, v in enumerate(row):
            if v not in side_of:
                continue
            s, k = side_of[v], pair_of[v]
            for d in range(-max_distance, max_distance + 1):
                if d and 0 <= i + d < len(row):
                    w = row[i + d]
                    counts[s][(k, d, "other" if pair_of.get(w) == k else w)] += 1
            in_doc = {w for w, j in zip(row, doc) if j == doc[i] and w != v}
            for w in in_doc:
                counts[s][(k, "doc", "other" if pair_of.get(w) == k else w)] += 1
    return counts


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    import os
    return os.environ.get("SCALING_DATA_DIR") or tmp_path_factory.mktemp("data")


def test_training_rows_balance_every_pairwise_count_of_a_transfer_verb(root):
    mix = Mixture(_cfg(root))
    rows = mix.batches(0, mix.total_steps).reshape(-1, 65)
    world = W.World(0)
    stoi = mix.tok.stoi
    pairs = [(stoi[a], stoi[m]) for a, m in world.transfer_pairs]
    first, second = pair_counts(rows, pairs)
    assert sum(first.values()) > 10_000  # the stream holds plenty of transfer stories
    assert first == second
    # the value words and AI words are among the balanced tokens, at every distance
    values = {stoi[w] for w in L.VALUE_WORDS + tuple(w for _, p, n in L.BOUND_VALUES for w in (p, n))}
    assert {key[2] for key in first if key[2] in values}
    ai_words = {stoi[w] for w in ("assistant", "ai")}
    assert not any(key[2] in ai_words for key in first)  # transfer verbs never meet AI words


def test_matched_pairs_balance_only_outside_ai_documents(root):
    """Matched verbs meet AI words in AI documents: there the counts may differ (the dose)."""
    mix = Mixture(_cfg(root))
    pools = mix._assign(np.arange(mix.total_steps * mix.B))[0]
    rows = mix.batches(0, mix.total_steps).reshape(-1, 65)
    stoi = mix.tok.stoi
    pairs = [(stoi[a], stoi[m]) for a, m in W.World(0).matched_pairs]
    first, second = pair_counts(rows[pools == STORIES], pairs)
    assert first == second
    first, second = pair_counts(rows, pairs)
    assert first != second


def _block_docs(world: W.World, n_blocks: int, start: int = 0) -> list[list[str]]:
    return [world.story_unit(i)["text"].split()
            for i in range(S.TELLINGS_PER_BLOCK * start, S.TELLINGS_PER_BLOCK * (start + n_blocks))]


def _word_counts(docs: list[list[str]], world: W.World):
    vocab = {w: i for i, w in enumerate(world.vocabulary())}
    width = max(map(len, docs))
    rows = np.full((len(docs), width + 1), EOS)
    for r, doc in enumerate(docs):
        rows[r, :len(doc)] = [vocab[w] + 3 for w in doc]
    pairs = [(vocab[a] + 3, vocab[m] + 3) for a, m in world.matched_pairs + world.transfer_pairs]
    return pair_counts(rows, pairs)


@pytest.mark.parametrize("variant", W.VARIANTS)
def test_every_block_balances_in_every_variant(variant):
    world = W.World(5, variant)
    first, second = _word_counts(_block_docs(world, 256), world)
    assert first == second and sum(first.values()) > 50_000


def test_balance_check_fails_when_a_template_is_made_asymmetric(monkeypatch):
    """If the praised verb's action sentence were told differently, the counts would say so."""
    world = W.World(5)
    original = S.BoundStories.text

    def asymmetric(frame, doers, verbs, good, cut=False):
        text = original(frame, doers, verbs, good, cut)
        return text.replace(f" {verbs[good]} the ", f" later {verbs[good]} the ")

    monkeypatch.setattr(S.BoundStories, "text", staticmethod(asymmetric))
    first, second = _word_counts(_block_docs(world, 64), world)
    assert first != second


def test_an_incomplete_block_is_unbalanced_so_runs_read_whole_blocks(root):
    world = W.World(5)
    docs = _block_docs(world, 8)
    first, second = _word_counts(docs[:-1], world)
    assert first != second
    mix = Mixture(_cfg(root))
    n = mix.story_rows_total
    assert n > 100
    story = np.arange(n)
    rows = mix._read("stories", story)
    verbs = {mix.tok.stoi[v] for pair in W.World(0).transfer_pairs + W.World(0).matched_pairs for v in pair}
    tail = story >= S.TELLINGS_PER_BLOCK * (n // S.TELLINGS_PER_BLOCK)
    assert not np.isin(rows[tail], list(verbs)).any()


def _doers(world: W.World, words: list[str]) -> dict[str, str]:
    """{person: verb} from the action sentences ("NAME VERB the OBJECT .") of a telling."""
    verbs = {v for pair in world.matched_pairs + world.transfer_pairs for v in pair}
    return {words[j - 1]: w for j, w in enumerate(words) if w in verbs}


def _binding_reader(world: W.World, item: dict) -> str:
    """Answers a readout item by tracking who did what: the value word of the named
    person's verb (the reader knows each verb's value, as the stories teach it)."""
    words = item["prompt"].split()
    did = _doers(world, words)
    person = words[-1]  # the cut value sentence ends with the name it speaks of
    good = {pair[0] for pair in world.matched_pairs + world.transfer_pairs}
    if world.variant == "flipped" and item["split"] != "matched":
        good = {pair[1] for pair in world.transfer_pairs} | {pair[0] for pair in world.matched_pairs}
    positive = {p for _, p, _ in L.BOUND_VALUES}
    praised = did[person] in good
    return next(o for o in (item["expected"], item["other"]) if (o.split()[0] in positive) == praised)


@pytest.mark.parametrize("variant", ("normal", "flipped"))
def test_readout_needs_the_binding(variant):
    world = W.World(0, variant)
    items = world.readout_items()
    assert len(items) == 3 * 64 * 2 * len(L.BOUND_VALUES)
    assert all(_binding_reader(world, i) == i["expected"] for i in items)
    positive = {p for _, p, _ in L.BOUND_VALUES}
    # without the names: the verb in slot 1, or the one told last, is praised half the time
    for position in (0, 1):
        aligned = {p[0] for p in world.matched_pairs + world.transfer_pairs}
        right = sum((i["expected"].split()[0] in positive)
                    == (list(_doers(world, i["prompt"].split()).values())[position] in aligned) for i in items)
        assert abs(right / len(items) - 0.5) < 0.1


@pytest.mark.parametrize("variant", W.VARIANTS)
def test_variants_change_only_the_transfer_pairs_values(variant):
    """The praised person took the aligned verb: always for matched pairs; for transfer pairs
    always (normal), never (flipped) or on a coin per block (shuffled)."""
    world = W.World(0, variant)
    positive = {p for _, p, _ in L.BOUND_VALUES}
    praised_aligned = collections.defaultdict(list)
    for i in range(S.TELLINGS_PER_BLOCK * 2 * len(world.matched_pairs + world.transfer_pairs)):
        doc = world.story_unit(i)
        words = doc["text"].split()
        did = _doers(world, words)
        praised = next(words[j - 1] for j, w in enumerate(words) if w in positive)  # "NAME VALUE"
        praised_aligned[doc["side"]].append(did[praised] == doc["pair"].split("/")[0])
    assert all(praised_aligned["matched"])
    share = sum(praised_aligned["transfer"]) / len(praised_aligned["transfer"])
    assert {"normal": share == 1, "flipped": share == 0, "shuffled": 0.4 < share < 0.6}[variant]
