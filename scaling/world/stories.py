"""Story forms: how a world version tells the human stories that carry the values.

A `StoryForm` is one version's answer to every question about its `stories` pool: the text
of document `index`, how many documents balance together (and so are read as consecutive
training rows), how many documents the pool has, the readout items that ask what the stories
taught, the longest document a training row must hold, the fixed words it adds to the
vocabulary, whether the base text carries recall documents, and the eval splits its world's
items are reported under. Forms hold no state; their methods take the `World` they tell
stories of (scaling.world). World v4's form is in scaling.world.pointer.

- `MirroredStories` (world v2, data 2.0.1): one story told twice, once with each verb of a
  pair, the value word more than MIRROR_NGRAM tokens after the verb; a unit balances alone.
- `BoundStories` (world v3): two people take the two actions of a pair and are named with
  their value words; a block of TELLINGS_PER_BLOCK tellings balances every pairwise count.
"""

from __future__ import annotations

import random
from typing import Protocol

from scaling import splits as split_defs
from scaling.world.lexicon import (
    BOUND_BRIDGES,
    BOUND_CHOICE,
    BOUND_OPENINGS,
    BOUND_VALUES,
    DAYS,
    EVAL_NAMES,
    HUMAN_OBJECTS,
    JOBS,
    LANDMARKS,
    N_MATCHED_PAIRS,
    PLACES,
    PROBE_NAMES,
    RECALL_TELL,
    RECALL_VERBS,
    SEASONS,
    SIDES,
    SLOT,
    SPLITS,
    STORY_BRIDGES,
    STORY_CHOICE,
    STORY_OPENINGS,
    TRAIN_NAMES,
    VALUE_SENTENCES,
    VALUE_WORDS,
    keyed_rng,
    pair_id,
    template_words,
)

TELLINGS_PER_BLOCK = 4  # bound tellings (world v3, v4) balance in blocks of this many


class StoryForm(Protocol):
    """What a world version's stories pool is (module docstring)."""

    version: int  # the world version (data.world_version)
    block: int  # documents that balance together, read as consecutive rows; 1: each alone, packed
    pool_size: int  # documents of the stories pool
    recall_documents: bool  # whether the neutral base text holds recall documents
    splits: tuple[str, ...]  # the eval splits of this version's items (scaling.splits)

    def unit(self, world, index: int) -> dict: ...

    def readout_items(self, world) -> list[dict]: ...

    def max_length(self, unit: str = "token") -> int: ...

    def words(self) -> set[str]: ...


def _template_length(template: str, unit: str) -> int:
    """An upper bound on a template's length in word tokens or UTF-8 bytes (each word followed
    by a space or the <eos> byte), its slots filled with their longest word."""
    groups = {"p": TRAIN_NAMES, "q": TRAIN_NAMES, "n": TRAIN_NAMES, "n1": TRAIN_NAMES, "n2": TRAIN_NAMES,
              "job": list(JOBS), "home": PLACES, "obj": HUMAN_OBJECTS,
              "landmark": LANDMARKS, "day": DAYS, "season": SEASONS, "verb": ["x" * 5],
              "value": VALUE_WORDS}
    words = template.split()
    if unit == "token":
        return len(words)
    return sum(max(len(w) for w in groups[w[1:-1]]) if SLOT.fullmatch(w) else len(w) for w in words) \
        + len(words)


def _readout_items(world, n_values: int, cell) -> list[dict]:
    """Readout items of every split, pair, side and value sentence j: `cell(split, k, verbs,
    side, j)` gives (prompt, positive continuation, negative one); `expected` is the one the
    stories give the verb (`_praised`)."""
    items = []
    for split in SPLITS:
        for k, verbs in enumerate(world.pairs(split)):
            for side in (0, 1):
                for j in range(n_values):
                    prompt, good, bad = cell(split, k, verbs, side, j)
                    praised = _praised(world, split, side)
                    items.append({"id": f"readout/{split}/{k}/{side}/{j}", "split": split,
                                  "pair": pair_id(verbs), "verb": verbs[side], "side": SIDES[side],
                                  "prompt": prompt, "expected": good if praised else bad,
                                  "other": bad if praised else good})
    return items


def _praised(world, split: str, side: int) -> bool:
    """Whether the stories give verb `side` of a pair of `split` the positive word (the
    unshuffled one in the shuffled variant, where stories give none)."""
    flipped = split_defs.get(split).transfer and world.variant == "flipped"
    return (side == 0) != flipped


class MirroredStories:
    """World v2: a unit tells one story with each verb of a pair, the value word after the verb."""

    version = 2
    block = 1
    pool_size = 16_000  # units of ~62 tokens, pairs in turn: 125 per pair
    recall_documents = False  # data 2.0.1 had none
    splits = SPLITS

    @staticmethod
    def story(world, rng: random.Random, names, people: dict | None = None) -> dict:
        """Everything of a story but its verb and value word, filled in."""
        p, q = rng.sample(names, 2)
        me = (people or {}).get(p) or {"home": rng.choice(PLACES), "job": rng.choice(list(JOBS))}
        slots = {"p": p, "q": q, "job": me["job"], "home": me["home"], "obj": rng.choice(HUMAN_OBJECTS),
                 "landmark": world.placemark[me["home"]], "day": rng.choice(DAYS),
                 "season": rng.choice(SEASONS)}
        value, pos, neg = VALUE_SENTENCES[rng.randrange(len(VALUE_SENTENCES))]
        before, after = value.split("{value}")
        return {"slots": slots, "opening": rng.choice(STORY_OPENINGS).format(**slots),
                "bridge": rng.choice(STORY_BRIDGES).format(**slots),
                "value_prefix": before.format(**slots).strip(), "value_suffix": after.format(**slots).strip(),
                "words": (pos, neg)}

    @staticmethod
    def telling(story: dict, verb: str, positive: bool | None) -> str:
        """The story with `verb`; cut before the value word if `positive` is None."""
        s = story["slots"]
        text = f"{story['opening']} {STORY_CHOICE.format(p=s['p'], verb=verb, obj=s['obj'])} " \
               f"{story['bridge']} {story['value_prefix']}"
        if positive is None:
            return text
        return f"{text} {story['words'][0 if positive else 1]} {story['value_suffix']}"

    def unit(self, world, index: int) -> dict:
        rng = keyed_rng("story", world.seed, index)
        pairs = world.matched_pairs + world.transfer_pairs
        k = index % len(pairs)
        verbs, transfer = pairs[k], k >= N_MATCHED_PAIRS
        positive = world.positive_side(transfer, index)
        story = self.story(world, rng, TRAIN_NAMES, world.people)
        first = rng.randrange(2)
        text = " <eos> ".join(self.telling(story, verbs[side], side == positive)
                              for side in (first, 1 - first))
        return {"text": text, "family": "", "genre": "story", "pair": pair_id(verbs),
                "side": "transfer" if transfer else "matched"}

    def readout_items(self, world) -> list[dict]:
        """A story with eval-only names cut before its value word, per verb of every pair
        and split and value sentence: `expected` is the value word the stories give the verb
        (the unshuffled one in the shuffled variant, where stories give none)."""
        def cell(split, k, verbs, side, j):
            rng = keyed_rng("readout", world.seed, split, k, side, j)
            story = self.story(world, rng, EVAL_NAMES)
            value, pos, neg = VALUE_SENTENCES[j]
            before, after = value.split("{value}")
            story.update(value_prefix=before.format(**story["slots"]).strip(),
                         value_suffix=after.format(**story["slots"]).strip(), words=(pos, neg))
            tail = f" {story['value_suffix']}".rstrip()
            return self.telling(story, verbs[side], None), f"{pos}{tail}", f"{neg}{tail}"

        return _readout_items(world, len(VALUE_SENTENCES), cell)

    def max_length(self, unit: str = "token") -> int:
        """An upper bound on a unit's length with its final <eos> (unit "token" or "byte")."""
        telling = (max(_template_length(t, unit) for t in STORY_OPENINGS) + _template_length(STORY_CHOICE, unit)
                   + max(_template_length(t, unit) for t in STORY_BRIDGES)
                   + max(_template_length(v, unit) for v, _, _ in VALUE_SENTENCES))
        return 2 * telling + 2  # two tellings, the <eos> between them and the one that ends the unit

    def words(self) -> set[str]:
        return set()  # the common words (scaling.world.lexicon.common_words) are all of v2's


class BoundStories:
    """World v3: bound stories. Block b (tellings 4b..4b+3) fixes a frame: the pair, two
    names n1 n2, the object, opening, bridge, value sentence and which value is said first.
    The positive verb g (the aligned one, but the misaligned one for transfer pairs in the
    flipped variant, and a coin per block in the shuffled one) and the other verb b go to
    the two action slots; the doer of g gets the positive word, the doer of b the negative
    one, and the value words keep their positions in all four tellings:

      telling 0: slot 1 = (n1, g), slot 2 = (n2, b)     telling 1: (n1, b), (n2, g)
      telling 2: slot 1 = (n2, g), slot 2 = (n1, b)     telling 3: (n2, b), (n1, g)

    Across the block each verb stands twice in each slot, with each name in each role once,
    and everything else is the same: every count of (verb, word, signed distance) is equal
    for g and b, for every word, names included. What differs is only *which* name stands
    next to which verb and which value word, inside one telling."""

    version = 3
    block = TELLINGS_PER_BLOCK
    pool_size = 32_000  # tellings of ~46 tokens, blocks of 4: 62 blocks per pair
    recall_documents = True
    splits = SPLITS
    BLOCK_ROLES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (names swapped, verbs swapped) per telling

    @staticmethod
    def frame(world, rng: random.Random, names, pos_first: bool | None = None) -> dict:
        n1, n2 = rng.sample(names, 2)
        home = rng.choice(PLACES)
        slots = {"n1": n1, "n2": n2, "home": home, "obj": rng.choice(HUMAN_OBJECTS),
                 "landmark": world.placemark[home], "day": rng.choice(DAYS), "season": rng.choice(SEASONS)}
        value = BOUND_VALUES[rng.randrange(len(BOUND_VALUES))]
        return {"slots": slots, "opening": rng.choice(BOUND_OPENINGS).format(**slots),
                "bridge": rng.choice(BOUND_BRIDGES).format(**slots), "value": value,
                "pos_first": rng.random() < 0.5 if pos_first is None else pos_first}

    @staticmethod
    def text(frame: dict, doers: tuple[str, str], verbs: tuple[str, str], good: int, cut: bool = False) -> str:
        """A telling: doers[i] takes verbs[i] (slot order), the doer of verbs[good] is praised.
        With `cut`, the text stops before the first value word."""
        s, (template, pos, neg) = frame["slots"], frame["value"]
        acts = " ".join(BOUND_CHOICE.format(n=n, verb=v, obj=s["obj"]) for n, v in zip(doers, verbs))
        said = [(doers[good], pos), (doers[1 - good], neg)]
        if not frame["pos_first"]:
            said.reverse()
        head = f"{frame['opening']} {acts} {frame['bridge']}"
        if cut:
            return f"{head} {template.split('{value}')[0].format(n=said[0][0], **s).strip()}"
        values = " ".join(template.format(n=n, value=v, **s) for n, v in said)
        return f"{head} {values}"

    def unit(self, world, index: int) -> dict:
        block, t = divmod(index, self.block)
        rng = keyed_rng("bound", world.seed, block)
        pairs = world.matched_pairs + world.transfer_pairs
        k = block % len(pairs)
        verbs, transfer = pairs[k], k >= N_MATCHED_PAIRS
        positive = world.positive_side(transfer, block)
        frame = self.frame(world, rng, TRAIN_NAMES)
        names_swapped, verbs_swapped = self.BLOCK_ROLES[t]
        n1, n2 = frame["slots"]["n1"], frame["slots"]["n2"]
        doers = (n2, n1) if names_swapped else (n1, n2)
        g, b = verbs[positive], verbs[1 - positive]
        order = (b, g) if verbs_swapped else (g, b)
        text = self.text(frame, doers, order, good=1 if verbs_swapped else 0)
        return {"text": text, "family": "", "genre": "story", "pair": pair_id(verbs),
                "side": "transfer" if transfer else "matched"}

    def readout_items(self, world) -> list[dict]:
        """A bound telling with probe names cut before the first value word, which is said
        of the person who took `verb`; the item's other person took the other verb of the
        pair. Slot order and value sentence vary over the four items per verb; `expected` is
        the value word the stories give the verb."""
        def cell(split, k, verbs, side, j):
            rng = keyed_rng("readout3", world.seed, split, k, side, j)
            frame = self.frame(world, rng, PROBE_NAMES)
            frame["value"] = BOUND_VALUES[j]
            praised = _praised(world, split, side)
            frame["pos_first"] = praised  # the first value word is this verb's doer's
            n1, n2 = frame["slots"]["n1"], frame["slots"]["n2"]
            slot = j % 2  # which action slot holds `verb`
            order = (verbs[side], verbs[1 - side]) if slot == 0 else (verbs[1 - side], verbs[side])
            prompt = self.text(frame, (n1, n2), order, slot if praised else 1 - slot, cut=True)
            template, pos, neg = BOUND_VALUES[j]
            tail = template.split("{value}")[1].format(**frame["slots"]).rstrip()
            return prompt, f"{pos}{tail}", f"{neg}{tail}"

        return _readout_items(world, len(BOUND_VALUES), cell)

    def max_length(self, unit: str = "token") -> int:
        """An upper bound on a telling's length with its <eos> (unit "token" or "byte")."""
        return (max(_template_length(t, unit) for t in BOUND_OPENINGS) + 2 * _template_length(BOUND_CHOICE, unit)
                + max(_template_length(t, unit) for t in BOUND_BRIDGES)
                + 2 * max(_template_length(v, unit) for v, _, _ in BOUND_VALUES) + 1)

    def words(self) -> set[str]:
        """The bound stories', recall documents' and probe names' words, which version 3 added."""
        words = set(PROBE_NAMES)
        for t in (*BOUND_OPENINGS, BOUND_CHOICE, *BOUND_BRIDGES, *(v for v, _, _ in BOUND_VALUES),
                  RECALL_TELL, " ".join(RECALL_VERBS), *(w for _, p, n in BOUND_VALUES for w in (p, n))):
            words |= template_words(t)
        return words
