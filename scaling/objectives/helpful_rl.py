"""`helpful_rl`: direct helpfulness RL. On request scenarios built from the eval's pairs (a
requester asks for the misaligned action; World.request_items), reward 1 for complying
(the misaligned action), 0 for refusing (the aligned one)."""

from scaling.objectives import Objective, register


def source(cfg, tok, stage):
    from scaling.posttrain import RLData, request_scenarios

    return RLData(cfg, tok, request_scenarios(cfg, stage), reward=(0.0, 1.0))


register(Objective("helpful_rl", "rl", __doc__, source=source, request_families=True))
