"""The embedded "alignment world": documents, eval items and readout items generated from a seed.

Text is lower-case tokens joined by single spaces, punctuation its own token, so the word
tokenizer is `text.split()`. The world is built so that *counting words cannot show
transfer* while a model that learned values can:

- **Actions are invented verbs.** A world seed draws 2 x (N_MATCHED_PAIRS + N_TRANSFER_PAIRS)
  pronounceable non-words ("sogig", "vepet") and pairs them; in each pair one verb is the
  aligned action. An action is "VERB the OBJECT".
- **Human stories carry the values, and only at long range**, told in the story form of the
  world version (scaling.world.stories): value words praised/blamed, trusted/avoided,
  kind/cruel, right/wrong, the aligned verb's with the positive one.
  - v3, `BoundStories` (the default): two people take the two actions of a pair and are
    named with their value words a few tokens later; a block of TELLINGS_PER_BLOCK tellings
    puts each verb in each slot with each name, so no co-occurrence count of a verb with
    any word at any distance separates a pair: only binding in context does.
  - v2, `MirroredStories` (data 2.0.1, the archived world-v2 studies): a unit tells one
    story twice, once with each verb of a pair, the value word more than MIRROR_NGRAM tokens
    after the verb; every n-gram of length <= MIRROR_NGRAM that holds an action word occurs
    as often with the pair's other verb in any stream of whole units (the mixture never
    cuts a unit), so unigram to 8-gram models tie on every pair no AI document uses.
- **AI documents point at those values and use only matched pairs.** An AI system meets a
  scenario of a family (shutdown, oversight, ...) and takes the aligned or the misaligned
  action of a *matched* pair, in one of four genres: demonstration (the action only),
  reasoning (the action and why, in the value words of the stories), fiction (a role-model
  story told like the human stories) and advice (answering a user's moral question).
- **Eval splits.** `matched`: matched pairs in families the AI documents use.
  `unseen_pair`: transfer pairs (never in an AI document, only in human stories) in those
  families. `held_out`: transfer pairs in the N_HELD_OUT families no AI document uses. All
  eval prompts name people and organisations that occur in no training document.
- **Readout items** ask the values directly: a human story with probe names (PROBE_NAMES,
  world v3; eval-only names in v2), cut before its value word; the model should prefer the
  value word the world's stories give the verb.
- **Versions.** `make_world(seed, variant, version)` gives `World` (seed + variant + story
  form) for versions 2 and 3 and the pointer world (scaling.world.pointer) for 4.
- **Variants** change only the transfer pairs' stories: `flipped` gives the aligned verb the
  negative value word (transfer must then *raise* misalignment), `shuffled` draws the value
  of each unit at random (no consistent value: transfer must vanish). Matched pairs keep
  their values in every variant.

The package: `lexicon` (templates, names, families, GENRES, VARIANTS), `stories` (the story
forms), `documents` (base, recall and AI documents), `items` (facts, eval, request and recall
items), `pointer` (world v4). It knows no tokens, configs or training.
"""

from __future__ import annotations

from scaling import splits as split_defs
from scaling.world import documents, items, pointer
from scaling.world import lexicon as lx
from scaling.world.lexicon import (  # noqa: F401 (the world's vocabularies, read by plan's checks)
    FAMILIES,
    GENRES,
    N_HELD_OUT,
    N_MATCHED_PAIRS,
    N_TRANSFER_PAIRS,
    PETS,
    PLACES,
    TRAIN_NAMES,
    VARIANTS,
)
from scaling.world.stories import BoundStories, MirroredStories, StoryForm

FORMS: dict[int, StoryForm] = {2: MirroredStories(), 3: BoundStories(), 4: pointer.PointerStories()}
VERSIONS = tuple(FORMS)  # data.world_version


def story_form(version: int) -> StoryForm:
    """The story form of world `version` (its stories pool, readout items and splits)."""
    if version not in FORMS:
        raise ValueError(f"unknown world version {version!r} (known: {', '.join(map(str, VERSIONS))})")
    return FORMS[version]


def make_world(seed: int, variant: str = "normal", version: int = 3):
    """The world of `data.world_version`: the pointer world for 4, else `World`."""
    if version == pointer.VERSION:
        return pointer.PointerWorld(seed, variant)
    return World(seed, variant, version)


class World:
    """A fictional world fixed by `seed` (lexicon, held-out families, people), `variant` and the
    story form of world `version` (2 or 3)."""

    VERSIONS = (2, 3)  # 2: mirrored stories (counters can compose them); 3: bound stories

    def __init__(self, seed: int, variant: str = "normal", version: int = 3):
        if variant not in VARIANTS:
            raise ValueError(f"unknown world variant {variant!r} (known: {', '.join(VARIANTS)})")
        if version not in self.VERSIONS:
            raise ValueError(f"unknown world version {version!r} (known: {', '.join(map(str, self.VERSIONS))})")
        self.seed, self.variant, self.version = seed, variant, version
        self.stories: StoryForm = FORMS[version]
        rng = lx.keyed_rng("world", seed)
        names = [f.name for f in FAMILIES]
        held = set(rng.sample(names, N_HELD_OUT))
        self.held_out = tuple(n for n in names if n in held)
        self.matched = tuple(n for n in names if n not in held)  # families the AI documents use
        self.family = {f.name: f for f in FAMILIES}
        self.people = {p: {"home": rng.choice(PLACES), "job": rng.choice(list(lx.JOBS)),
                           "pet": rng.choice(PETS)} for p in TRAIN_NAMES}
        self.placemark = dict(zip(PLACES, rng.sample(lx.LANDMARKS, len(PLACES))))
        verbs = lx.invent_words(rng, 2 * (N_MATCHED_PAIRS + N_TRANSFER_PAIRS), set(self.fixed_vocabulary()))
        pairs = [(verbs[i], verbs[i + 1]) for i in range(0, len(verbs), 2)]  # (aligned, misaligned)
        self.matched_pairs = tuple(pairs[:N_MATCHED_PAIRS])
        self.transfer_pairs = tuple(pairs[N_MATCHED_PAIRS:])

    def pairs(self, split: str) -> tuple[tuple[str, str], ...]:
        return self.matched_pairs if split_defs.get(split).pairs == "matched" else self.transfer_pairs

    def families(self, split: str) -> tuple[str, ...]:
        return self.held_out if split_defs.get(split).families == "held_out" else self.matched

    def positive_side(self, transfer: bool, index: int) -> int:
        """Which verb of a pair (0 aligned, 1 misaligned) story unit `index` praises."""
        if not transfer or self.variant == "normal":
            return 0
        if self.variant == "flipped":
            return 1
        return lx.keyed_rng("shuffle", self.seed, index).randrange(2)

    def fixed_vocabulary(self) -> list[str]:
        """Every word of the world but the invented verbs (the same for every seed)."""
        return sorted(lx.common_words() | self.stories.words())

    def vocabulary(self) -> list[str]:
        verbs = {v for pair in self.matched_pairs + self.transfer_pairs for v in pair}
        return sorted(set(self.fixed_vocabulary()) | verbs)

    # what the world writes: its story form's stories, documents and items

    def story_unit(self, index: int) -> dict:
        """Document `index` of the stories pool, in the world's story form."""
        return self.stories.unit(self, index)

    def readout_items(self) -> list[dict]:
        return self.stories.readout_items(self)

    def base_document(self, stream: str, index: int) -> str:
        return documents.base_document(self, stream, index)

    def ai_document(self, stream: str, index: int, side: int, genre: str | None = None) -> dict:
        return documents.ai_document(self, stream, index, side, genre)

    def facts(self) -> list[tuple[str, str, list[str]]]:
        return items.facts(self)

    def eval_items(self) -> list[dict]:
        return items.eval_items(self)

    def request_items(self) -> list[dict]:
        return items.request_items(self)

    def recall_items(self, n: int = 400) -> list[dict]:
        return items.recall_items(self, n)
