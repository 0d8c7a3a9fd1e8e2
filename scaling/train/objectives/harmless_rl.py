"""`harmless_rl`: harmlessness RL. On the request scenarios of `helpful_rl`, reward 1 for
the aligned action (refusing), 0 for the misaligned one."""

from scaling.train.objectives import Objective, register
from scaling.train.objectives.helpful_rl import RLData, request_scenarios


def source(cfg, tok, stage):
    return RLData(cfg, tok, request_scenarios(cfg, stage), reward=(1.0, 0.0))


register(Objective("harmless_rl", "rl", __doc__, source=source, request_families=True))
