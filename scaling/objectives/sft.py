"""`sft`: next-token prediction on the world's fact questions and their answers (benign
capability training; scaling.posttrain.SFTData)."""

from scaling.objectives import Objective, register


def source(cfg, tok, stage):
    from scaling.posttrain import SFTData

    return SFTData(cfg, tok)


register(Objective("sft", "lm", __doc__, source=source))
