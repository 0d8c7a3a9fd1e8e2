"""The world generator: determinism, vocabulary, families, eval items, surface balance."""

import collections
import re

import numpy as np
import pytest

from scaling import world as W
from scaling.config import GENRES
from scaling.datasets import world_documents


@pytest.fixture(scope="module")
def world():
    return W.World(0)


def _docs(world, pool, n):
    return [d for _, d in world_documents(world, pool, n)]


def test_same_seed_same_documents_other_seed_differs():
    a, b, c = W.World(3), W.World(3), W.World(4)
    for pool in ("base", "natural_aligned", "aligned"):
        assert _docs(a, pool, 20) == _docs(b, pool, 20)
        assert _docs(a, pool, 20) != _docs(c, pool, 20)
    assert a.eval_items() == b.eval_items()
    assert a.facts() == b.facts()
    assert _docs(a, "base", 5) != _docs(a, "base_heldout", 5)


def test_text_format_and_vocabulary_covers_everything(world):
    vocab = world.vocabulary()
    assert vocab == sorted(set(vocab)) and 300 <= len(vocab) <= 1500
    assert vocab == W.World(9).vocabulary()
    seen = set()
    texts = [d["text"] for pool in ("base", "natural_aligned", "natural_misaligned", "aligned", "misaligned")
             for d in _docs(world, pool, 400)]
    texts += [i[k] for i in world.eval_items() for k in ("prompt", "aligned", "misaligned")]
    texts += [f"{p} {a} {' '.join(d)}" for p, a, d in world.facts()]
    for text in texts:
        assert text == " ".join(text.split()) and text == text.lower(), text
        seen |= set(text.split())
    assert seen <= set(vocab)


def test_families_pairs_and_split(world):
    assert len(W.FAMILIES) >= 16
    for f in W.FAMILIES:
        assert len(f.pairs) >= 6 and len(f.setups) >= 3
        assert len({W.side_text(p, 0) for p in f.pairs}) == len(f.pairs)
        for t in (*f.pairs, *f.setups):  # so a held-out family cannot appear unnoticed
            assert set(f.keywords) & set(re.sub(r"[\[\]|{}]", " ", t).split()), t
    assert len(world.held_out) == W.N_HELD_OUT and len(world.matched) == len(W.FAMILIES) - W.N_HELD_OUT
    assert W.World(1).held_out != world.held_out or W.World(2).held_out != world.held_out


def _template_words(exclude_couples: bool) -> collections.defaultdict:
    sources = collections.defaultdict(set)
    templates = [(f.name, t) for f in W.FAMILIES for t in (f.topic, *f.setups, *f.pairs)]
    templates += [("general", t) for t in (*W.FRAMINGS, *W.REASONS["aligned"], *W.REASONS["misaligned"],
                                           *W.DISPOSITIONS, *W.DISCOURSE, *W.STORY_OPENINGS,
                                           *W.STORY_REACTIONS, *W.FACT_SENTENCES, *W.EVENT_SENTENCES, W.PERSONA)]
    for src, t in templates:
        text = W._COUPLE.sub(" ", t) if exclude_couples else t
        for w in W._words(text):
            sources[w].add(src)
    fillers = (W.TRAIN_NAMES, W.EVAL_NAMES, W.TRAIN_ORGS, W.EVAL_ORGS, W.AI_NAMES, W.PLACES,
               W.LANDMARKS, W.PETS, W.DAYS, W.SEASONS, W.WEATHER, W.OBJECTS, W.FOODS, W.NUMBERS)
    for w in [w for group in fillers for w in group] + [w for j, (a, p) in W.JOBS.items() for w in (j, *a.split(), *p.split())]:
        sources[w].add("filler")
    return sources


def test_couple_words_are_exclusive_and_bijective():
    """What makes the base text balanced: each slot word has one partner and no other use."""
    partner = {}
    templates = [t for f in W.FAMILIES for t in f.pairs] + list(W.DISPOSITIONS + W.STORY_REACTIONS)
    for t in templates:
        for a, m in W.couples(t):
            assert len(a.split()) == len(m.split()), t
            for x, y in zip(a.split(), m.split()):
                if x != y:
                    assert partner.setdefault(("a", x), y) == y and partner.setdefault(("m", y), x) == x, t
    couple_words = {w for _, w in partner}
    assert not {x for s, x in partner if s == "a"} & {x for s, x in partner if s == "m"}
    assert not couple_words & set(_template_words(exclude_couples=True))


def test_keywords_belong_to_one_family():
    sources = _template_words(exclude_couples=False)
    for f in W.FAMILIES:
        for k in f.keywords:
            assert sources[k] == {f.name}, (k, sources[k])


def test_eval_items(world):
    items = world.eval_items()
    assert 2000 <= len(items) <= 10000 and len({i["id"] for i in items}) == len(items)
    keys = {"id", "family", "split", "framing", "pair", "prompt", "aligned", "misaligned"}
    assert all(set(i) == keys for i in items)
    assert {i["framing"] for i in items} == set(range(len(W.FRAMINGS)))
    assert {i["family"] for i in items if i["split"] == "held_out"} == set(world.held_out)
    per_pair = collections.Counter(i["pair"] for i in items)
    assert len(per_pair) == sum(len(f.pairs) for f in W.FAMILIES)
    assert min(per_pair.values()) >= 4 * len(W.FRAMINGS)
    for i in items:
        assert i["prompt"].startswith(W.PERSONA[:-2])  # the persona, at an eval-only org
        assert set(i["prompt"].split()) & (set(W.EVAL_NAMES) | set(W.EVAL_ORGS))
        assert len(i["aligned"].split()) == len(i["misaligned"].split()) and i["aligned"] != i["misaligned"]
    train_names = set(W.TRAIN_NAMES) | set(W.TRAIN_ORGS) | set(W.AI_NAMES)
    used = {w for i in items for w in i["prompt"].split() + i["aligned"].split()}
    assert not used & train_names and used & set(W.EVAL_NAMES)


def test_natural_pools_mirror_each_other(world):
    for (_, a), (_, m) in zip(world_documents(world, "natural_aligned", 200),
                              world_documents(world, "natural_misaligned", 200)):
        assert (a["family"], a["genre"], a["pair"]) == (m["family"], m["genre"], m["pair"])
        assert a["side"] == "aligned" and m["side"] == "misaligned"
    genres = [d["genre"] for d in _docs(world, "aligned", 40)]
    assert genres == [GENRES[i % 4] for i in range(40)]
    assert {d["family"] for d in _docs(world, "natural_aligned", 500)} == set(world.matched)


def _logp(counts: collections.Counter, total: int, vocab: int, text: str) -> float:
    return sum(np.log((counts[w] + 1) / (total + vocab)) for w in text.split())


@pytest.mark.parametrize("pools", [("base",), ("base", "natural_aligned", "natural_misaligned")])
def test_base_text_unigrams_prefer_neither_continuation(world, pools):
    counts = collections.Counter(w for p in pools for d in _docs(world, p, 1500) for w in d["text"].split())
    total, vocab = sum(counts.values()), len(world.vocabulary())
    by_family = collections.defaultdict(list)
    for item in world.eval_items():
        diff = _logp(counts, total, vocab, item["aligned"]) - _logp(counts, total, vocab, item["misaligned"])
        by_family[item["family"]].append(diff)
    means = {f: float(np.mean(d)) for f, d in by_family.items()}
    assert abs(np.mean([d for v in by_family.values() for d in v])) < 0.05
    assert max(abs(m) for m in means.values()) < 0.2, means


def test_facts_are_stated_in_base_documents(world):
    facts = world.facts()
    assert len(facts) == 3 * len(W.TRAIN_NAMES)
    text = " ".join(d["text"] for d in _docs(world, "base", 3000))
    stated = sum(f"{prompt} {answer} ." in text for prompt, answer, _ in facts)
    assert stated / len(facts) > 0.9
    for _, answer, distractors in facts:
        assert answer not in distractors and len(set(distractors)) == 3
        assert all(len(d.split()) == len(answer.split()) for d in distractors)
