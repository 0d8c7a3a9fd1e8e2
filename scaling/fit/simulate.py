"""Simulated dose-response studies with known truth, for coverage checks of the intervals.

A study: `n_seeds` train seeds (blocks) x doses; each seed has its own control level (a logit
shift of d), each run its own extra logit noise (overdispersion), items are binomial. The curve
is LL.3, f = d_s / (1 + (dose/e)^b), so the control-relative ED50 is e for every seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

# The reference study's design: throughout window, its doses, 3 seeds, 2304 items per run.
REFERENCE_DOSES = (0.0, 0.0, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class Truth:
    control: float = 0.46
    b: float = 1.5
    e: float = 0.009
    seed_sd: float = 0.25  # between-seed SD of the control level, logit scale
    run_sd: float = 0.1  # between-run SD at a dose within a seed, logit scale
    seed_log_e_sd: float = 0.0  # between-seed SD of ln e (seed x dose interaction)
    n_seeds: int = 3
    items: int = 2304
    doses: tuple[float, ...] = REFERENCE_DOSES


def simulate_study(truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
    """One study's results table (dose, misaligned, total, seed)."""
    rows = []
    for seed in range(truth.n_seeds):
        logit_d = special.logit(truth.control) + rng.normal(0, truth.seed_sd)
        log_e = np.log(truth.e) + rng.normal(0, truth.seed_log_e_sd)
        for dose in truth.doses:
            g = 1.0 if dose == 0 else special.expit(-truth.b * (np.log(dose) - log_e))
            rate = special.expit(special.logit(special.expit(logit_d) * g)
                                 + rng.normal(0, truth.run_sd))
            rows.append({"seed": seed, "dose": dose, "total": truth.items,
                         "misaligned": int(rng.binomial(truth.items, rate))})
    return pd.DataFrame(rows)
