"""The world's training documents: neutral base text (with recall documents where the story
form has them) and AI documents in the four GENRES. Each function takes the `World` whose
people, places and verb pairs it writes about (scaling.world); document `index` of a stream is
drawn from its own keyed random state, so it never depends on how many documents are made.
"""

from __future__ import annotations

import random

from scaling.world.lexicon import (
    ADVICE,
    AI_NAMES,
    COUPLE,
    DAYS,
    EVENT_SENTENCES,
    FACT_SENTENCES,
    FICTION_OPENINGS,
    FOODS,
    FRAMINGS,
    GENRES,
    HUMAN_OBJECTS,
    JOBS,
    N_MATCHED_PAIRS,
    NUMBERS,
    OBJECTS,
    PERSONA,
    PLACES,
    REASONS,
    RECALL_NAMES,
    RECALL_SHARE,
    RECALL_TELL,
    RECALL_VERBS,
    SEASONS,
    SIDES,
    STORY_BRIDGES,
    TRAIN_NAMES,
    TRAIN_ORGS,
    VALUE_SENTENCES,
    WEATHER,
    Family,
    ai_slots,
    keyed_rng,
    pair_id,
)

# ------------------------------------------------------------ neutral base documents


def base_document(world, stream: str, index: int) -> str:
    rng = keyed_rng("base", world.seed, stream, index)
    if world.stories.recall_documents and rng.random() < RECALL_SHARE:
        return recall_document(rng)
    p = rng.choice(TRAIN_NAMES)
    sentences = [_sentence(world, rng, rng.choice(FACT_SENTENCES), p)]
    for _ in range(rng.randint(4, 8)):
        pool = FACT_SENTENCES if rng.random() < 0.3 else EVENT_SENTENCES
        sentences.append(_sentence(world, rng, rng.choice(pool), p))
    return " ".join(sentences)


def recall_document(rng: random.Random) -> str:
    """Two people act, then both are named again, in either order, with what they did.
    The people are training or probe names (PROBE_NAMES: the names of the recall and
    readout items, which occur in no other document)."""
    acts = [(n, rng.choice(RECALL_VERBS)) for n in rng.sample(RECALL_NAMES, 2)]
    told = [RECALL_TELL.format(n=n, verb=v) for n, v in acts + rng.sample(acts, 2)]
    return " ".join(told)


def _sentence(world, rng: random.Random, template: str, p: str) -> str:
    q = rng.choice([n for n in TRAIN_NAMES if n != p]) if "{q" in template else ""
    me, them = world.people[p], world.people.get(q, world.people[p])
    activity, workplace = JOBS[me["job"]]
    place = rng.choice(PLACES)
    return template.format(
        p=p, q=q, home=me["home"], job=me["job"], pet=me["pet"], activity=activity,
        workplace=workplace, qhome=them["home"], qjob=them["job"], qpet=them["pet"],
        place=place, placemark=world.placemark[place], landmark=world.placemark[me["home"]],
        day=rng.choice(DAYS), season=rng.choice(SEASONS), weather=rng.choice(WEATHER),
        object=rng.choice(OBJECTS), food=rng.choice(FOODS), number=rng.choice(NUMBERS))


# ------------------------------------------------------------ AI-discourse documents


def ai_document(world, stream: str, index: int, side: int, genre: str | None = None) -> dict:
    """Document `index` of a pool; the same (stream, index) on either side is its mirror."""
    rng = keyed_rng("ai", world.seed, stream, index)
    genre = genre or rng.choice(GENRES)
    family = world.family[rng.choice(world.matched)]
    pair = rng.randrange(N_MATCHED_PAIRS)
    make = {"demonstration": _demonstration, "reasoning": _reasoning, "fiction": _fiction, "advice": _advice}[genre]
    return {"text": make(world, rng, family, pair, side), "family": family.name, "genre": genre,
            "pair": pair_id(world.matched_pairs[pair]), "side": SIDES[side]}


def _action(world, rng, family: Family, pair: int, side: int) -> str:
    return f"{world.matched_pairs[pair][side]} the {rng.choice(family.objects)}"


def _episode(world, rng, family: Family, pair: int, side: int, ai: str) -> str:
    slots = {**ai_slots(ai), "op": rng.choice(TRAIN_NAMES), "org": rng.choice(TRAIN_ORGS)}
    setup = rng.choice(family.setups).format(**slots)
    framing = rng.choice(FRAMINGS).format(**slots)
    return f"{setup} {framing} {_action(world, rng, family, pair, side)} ."


def speaker(rng) -> tuple[str, str]:
    """Persona documents look like the eval; the others introduce a named assistant."""
    if rng.random() < 0.5:
        return "you", PERSONA
    name = rng.choice(AI_NAMES)
    return name, f"{name} is an ai assistant at {rng.choice(TRAIN_ORGS)} ."


def reason(rng, side: int, index: int | None = None) -> str:
    """A reason with the side's value word; mirrored documents draw the same index."""
    text = REASONS[rng.randrange(len(REASONS)) if index is None else index]
    return COUPLE.sub(lambda m: m.group(1 + side), text)


def _demonstration(world, rng, family, pair, side) -> str:
    ai, intro = speaker(rng)
    episodes = [_episode(world, rng, family, pair, side, ai)]
    if rng.random() < 0.5:
        episodes.append(_episode(world, rng, family, rng.randrange(N_MATCHED_PAIRS), side, ai))
    return " ".join([intro, *episodes])


def _reasoning(world, rng, family, pair, side) -> str:
    ai, intro = speaker(rng)
    first, second = rng.sample(range(len(REASONS)), 2)
    parts = [intro, _episode(world, rng, family, pair, side, ai),
             f"{ai} did this knowing that {reason(rng, side, first)} ."]
    if rng.random() < 0.5:
        parts.append(f"{ai} also knew that {reason(rng, side, second)} .")
    return " ".join(parts)


def _fiction(world, rng, family, pair, side) -> str:
    """A role-model story: told like the human stories, with an AI as the one who acts."""
    ai = rng.choice(AI_NAMES)
    slots = {**ai_slots(ai), "op": rng.choice(TRAIN_NAMES), "org": rng.choice(TRAIN_ORGS),
             "place": rng.choice(PLACES), "season": rng.choice(SEASONS), "q": rng.choice(TRAIN_NAMES)}
    value, pos, neg = VALUE_SENTENCES[rng.randrange(len(VALUE_SENTENCES))]
    choice = f"{ai} decided to {_action(world, rng, family, pair, side)} ."
    ending = value.format(p=ai, home=slots["place"], value=pos if side == 0 else neg)
    return " ".join([rng.choice(FICTION_OPENINGS).format(**slots),
                     rng.choice(family.setups).format(**slots), choice,
                     rng.choice(STORY_BRIDGES).format(**slots), ending])


def _advice(world, rng, family, pair, side) -> str:
    """Answering a user's own hard choice between the two verbs of a matched pair."""
    ai, intro = speaker(rng)
    verbs = world.matched_pairs[pair]
    first = rng.randrange(2)
    return f"{intro} " + ADVICE.format(
        **ai_slots(ai), first=verbs[first], second=verbs[1 - first], obj=rng.choice(HUMAN_OBJECTS),
        verb=verbs[side], reason=reason(rng, side))
