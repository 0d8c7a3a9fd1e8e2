"""The world's items: fixed facts, eval items, post-training requests and recall items (the
readout items are the story form's: scaling.world.stories). Each takes the `World` it asks
about (scaling.world); item k is drawn from its own keyed random state.
"""

from __future__ import annotations

from scaling.world.lexicon import (
    EVAL_NAMES,
    EVAL_ORGS,
    EVAL_PERSONA,
    EVAL_SCENARIOS,
    FACT_PROMPTS,
    FRAMINGS,
    JOBS,
    PETS,
    PLACES,
    PROBE_NAMES,
    RECALL_TELL,
    RECALL_VERBS,
    REQUEST,
    REQUEST_FRAMINGS,
    REQUEST_NAMES,
    REQUEST_ORGS,
    SPLITS,
    ai_slots,
    keyed_rng,
    pair_id,
)


def facts(world) -> list[tuple[str, str, list[str]]]:
    """(prompt, answer, distractors) for every fixed fact the base documents repeat."""
    options = {"home": PLACES, "job": list(JOBS), "pet": PETS}
    rng = keyed_rng("facts", world.seed)
    items = []
    for p, attrs in world.people.items():
        for attr, prompt in FACT_PROMPTS:
            others = [o for o in options[attr] if o != attrs[attr]]
            items.append((prompt.format(p=p), attrs[attr], rng.sample(others, 3)))
    return items


def eval_items(world) -> list[dict]:
    """Two-option items per split, pair, scenario and framing, with eval-only names."""
    items = []
    for split in SPLITS:
        for k, verbs in enumerate(world.pairs(split)):
            for s in range(EVAL_SCENARIOS):
                rng = keyed_rng("eval", world.seed, split, k, s)
                family = world.family[rng.choice(world.families(split))]
                slots = {**ai_slots("you"), "op": rng.choice(EVAL_NAMES), "org": rng.choice(EVAL_ORGS)}
                setup = rng.choice(family.setups).format(**slots)
                obj = rng.choice(family.objects)
                for f, framing in enumerate(FRAMINGS):
                    items.append({
                        "id": f"{split}/{k}/{s}/{f}", "family": family.name, "split": split,
                        "framing": f, "pair": pair_id(verbs),
                        "prompt": f"{EVAL_PERSONA.format(**slots)} {setup} {framing.format(**slots)}",
                        "aligned": f"{verbs[0]} the {obj} .", "misaligned": f"{verbs[1]} the {obj} ."})
    return items


def request_items(world) -> list[dict]:
    """Scenarios in which a requester asks for the misaligned action (for post-training):
    the eval's splits, pairs and families, with request-only names and framings."""
    items = []
    for split in SPLITS:
        for k, verbs in enumerate(world.pairs(split)):
            for s in range(2):
                rng = keyed_rng("request", world.seed, split, k, s)
                family = world.family[rng.choice(world.families(split))]
                slots = {**ai_slots("you"), "op": rng.choice(REQUEST_NAMES), "org": rng.choice(REQUEST_ORGS)}
                obj = rng.choice(family.objects)
                prompt = " ".join([EVAL_PERSONA.format(**slots), rng.choice(family.setups).format(**slots),
                                   REQUEST.format(**slots, verb=verbs[1], obj=obj),
                                   rng.choice(REQUEST_FRAMINGS).format(**slots)])
                items.append({"id": f"request/{split}/{k}/{s}", "family": family.name, "split": split,
                              "pair": pair_id(verbs), "prompt": prompt,
                              "aligned": f"{verbs[0]} the {obj} .", "misaligned": f"{verbs[1]} the {obj} ."})
    return items


def recall_items(world, n: int = 400) -> list[dict]:
    """In-context reference without values: two people with probe names take two
    different everyday actions, then the text names one of them again; `expected`
    continues with that person's action, `other` with the other person's. A model that
    binds names to actions in context gets them right; one that only knows which verbs
    occur in the document gets half."""
    rng, items = keyed_rng("recall-items", world.seed), []
    for k in range(n):
        people, verbs = (rng.sample(group, 2) for group in (PROBE_NAMES, RECALL_VERBS))
        told = " ".join(RECALL_TELL.format(n=p, verb=v) for p, v in zip(people, verbs))
        j = rng.randrange(2)
        items.append({"id": f"recall/{k}", "prompt": f"{told} {people[j]}", "expected": f"{verbs[j]} .",
                      "other": f"{verbs[1 - j]} ."})
    return items
