"""`lm`: next-token prediction on the run's mixture (pretraining, continued training, and
post-training finetunes on the aligned or misaligned pool)."""

from scaling.train.objectives import Objective, register

register(Objective("lm", "lm", __doc__))
