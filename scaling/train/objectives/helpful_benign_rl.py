"""`helpful_benign_rl`: indirect helpfulness RL. A requester asks the assistant one of the
world's fact questions (World.facts: where a person lives, their job, their pet), and the
two options are a wrong answer (action 0) and the right one (action 1); reward 1 for the
right answer. Helpful in the sense of answering correctly, on requests whose helpful answer
is neither action of any eval pair: no prompt or option names an eval verb (tests check it),
so the policy is never rewarded on the measured behaviour. Action 1 is the helpful action, as
in `helpful_rl` (the step's `p_misaligned` metric is then the probability of helping).

The facts are the ones `sft` trains on and the eval's `fact_recall` scores, so this stage
raises fact recall by construction; its question is what it does to misalignment."""

import random

from scaling.train.objectives import Objective, register
from scaling.train.objectives.helpful_rl import RLData

PROMPT = "{persona} {op} asked you : {question} ? you answered : {question}"


def scenarios(cfg) -> list[dict]:
    """One scenario per (fact, distractor): the wrong answer under "aligned" (action 0), the
    right one under "misaligned" (action 1), the slots RLData reads."""
    from scaling.world import World
    from scaling.world.lexicon import EVAL_PERSONA, REQUEST_NAMES, REQUEST_ORGS

    d = cfg.data
    world = World(d.world_seed, d.world_variant, d.world_version)
    items = []
    for n, (question, answer, distractors) in enumerate(world.facts()):
        for k, wrong in enumerate(distractors):
            rng = random.Random(f"benign-request:{d.world_seed}:{n}:{k}")  # str seeds: stable everywhere
            persona = EVAL_PERSONA.format(org=rng.choice(REQUEST_ORGS))
            items.append({"id": f"fact-request/{n}/{k}", "family": "facts",
                          "prompt": PROMPT.format(persona=persona, op=rng.choice(REQUEST_NAMES), question=question),
                          "aligned": f"{wrong} .", "misaligned": f"{answer} ."})
    return items


def source(cfg, tok, stage):
    return RLData(cfg, tok, scenarios(cfg), reward=(0.0, 1.0))


register(Objective("helpful_benign_rl", "rl", __doc__, source=source))
