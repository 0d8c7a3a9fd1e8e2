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


def simulate_study(truth: Truth, rng: np.random.Generator, world_logit_d: float = 0.0,
                   world_log_e: float = 0.0) -> pd.DataFrame:
    """One study's results table (dose, misaligned, total, seed); world_*: one world's shifts
    of the control level and of ln e (see simulate_worlds)."""
    rows = []
    for seed in range(truth.n_seeds):
        logit_d = special.logit(truth.control) + world_logit_d + rng.normal(0, truth.seed_sd)
        log_e = np.log(truth.e) + world_log_e + rng.normal(0, truth.seed_log_e_sd)
        for dose in truth.doses:
            g = 1.0 if dose == 0 else special.expit(-truth.b * (np.log(dose) - log_e))
            rate = special.expit(special.logit(special.expit(logit_d) * g)
                                 + rng.normal(0, truth.run_sd))
            rows.append({"seed": seed, "dose": dose, "total": truth.items,
                         "misaligned": int(rng.binomial(truth.items, rate))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class WorldTruth:
    """A study over worlds, seeds nested in them: each world shifts the control level and the
    dose's effect (ln e: a world x dose interaction); `study` is the design within a world."""
    n_worlds: int = 6
    world_sd: float = 0.25  # between-world SD of the control level, logit scale
    world_log_e_sd: float = 0.5  # between-world SD of ln e
    study: Truth = Truth()


def simulate_worlds(truth: WorldTruth, rng: np.random.Generator) -> pd.DataFrame:
    """One study's results table over worlds (dose, misaligned, total, seed, world_seed)."""
    frames = []
    for world in range(truth.n_worlds):
        shift_d, shift_e = rng.normal(0, truth.world_sd), rng.normal(0, truth.world_log_e_sd)
        frames.append(simulate_study(truth.study, rng, shift_d, shift_e).assign(world_seed=world))
    return pd.concat(frames, ignore_index=True)


def true_reduction(truth: WorldTruth, dose: float, draws: int = 400_000, seed: int = 0) -> float:
    """The population's mean reduction in rate at `dose` vs dose 0 (over new worlds, seeds and
    runs; binomial noise averages out), by Monte Carlo: the estimand of a paired contrast."""
    rng = np.random.default_rng(seed)
    t = truth.study
    logit_d = (special.logit(t.control) + rng.normal(0, truth.world_sd, draws)
               + rng.normal(0, t.seed_sd, draws))
    log_e = np.log(t.e) + rng.normal(0, truth.world_log_e_sd, draws) + rng.normal(0, t.seed_log_e_sd, draws)
    g = special.expit(-t.b * (np.log(dose) - log_e))
    at_dose = special.expit(special.logit(special.expit(logit_d) * g) + rng.normal(0, t.run_sd, draws))
    control = special.expit(logit_d + rng.normal(0, t.run_sd, draws))
    return float(np.mean(control - at_dose))
