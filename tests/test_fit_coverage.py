"""Coverage of control-relative ED50 intervals and paired dose effects on simulated studies
with known truth.

Each replicate is a reference-sized study (3 train seeds x 9 doses, 2304 items per run) whose
seeds differ in their control level and, in the second scenario, in their ED50 as well (a seed
x dose interaction). The shipped interval (`ED_METHOD`: seed blocks, seed-clustered sandwich,
t on G-1 df) must cover the true ED50 in 90-98% of 200 replicates in both; the quasi-binomial
interval, which trusts the dose-response to be common to all seeds, must not (that is why it
is not the shipped method).

Over worlds (`simulate_worlds`: seeds nested in worlds, each world its own control level and
ED50), the world is the unit: `--blocks world` (SEs clustered by world, paired effects averaged
within each world, t on worlds - 1 df) against seed x world blocks (t on blocks - 1 df) and a
GEE of the runs' rates with world clusters (exchangeable, normal interval). Measured with
`world_coverage` (400 replicates, rng seed 1; the ED50 of LL.3, the reduction at dose 0.01 of
cost_effectiveness, and `gee_intervals` of the same reduction):
                     ED50 seed  ED50 world  pair seed  pair world  GEE robust  GEE bias-reduced
    6 worlds x 3 seeds   0.745      0.970      0.748       0.968      0.863        0.910
    2 worlds x 3 seeds   0.610      0.973      0.670       0.948      0.583        0.762
So world blocks with t on worlds - 1 df are shipped (auto uses them with two or more worlds);
BinomialBayesMixedGLM was not measured (it needs one row per item, 373k per replicate here).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from scaling import stats as F
from scaling.stats.common import ED_METHOD
from scaling.stats.comparisons import cost_effectiveness
from scaling.stats.groups import block_labels, cluster_labels, with_blocks
from scaling.stats.simulate import (
    Truth,
    WorldTruth,
    simulate_study,
    simulate_worlds,
    true_reduction,
)

REPLICATES = 200


def coverage(truth: Truth, method: str, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    hits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        for _ in range(REPLICATES):
            df = simulate_study(truth, rng)
            seeds = df["seed"].to_numpy()
            fit = F.fit_curve("LL.3", df["dose"], df["misaligned"], df["total"], seeds=seeds,
                              blocks=seeds, warn=False)
            ed = fit.ed_control(50, method) if fit.usable else None
            hits.append(ed is not None and ed["lower"] is not None
                        and ed["lower"] <= truth.e <= ed["upper"])
    return float(np.mean(hits))


@pytest.mark.slow
@pytest.mark.parametrize("truth", [Truth(), Truth(seed_log_e_sd=0.15)],
                         ids=["seeds-shift-level", "seeds-differ-in-ed50"])
def test_shipped_ed50_interval_covers_truth(truth):
    assert ED_METHOD == "cluster"
    assert 0.90 <= coverage(truth, ED_METHOD) <= 0.98


@pytest.mark.slow
def test_quasi_interval_undercovers_when_seeds_differ_in_ed50():
    assert coverage(Truth(seed_log_e_sd=0.15), "quasi") < 0.90


def test_simulated_study_has_the_known_ed50():
    # Without noise the LL.3 fit recovers the truth: the generator and the curve agree.
    truth = Truth(seed_sd=0.0, run_sd=0.0, items=10**7)
    df = simulate_study(truth, np.random.default_rng(0))
    fit = F.fit_curve("LL.3", df["dose"], df["misaligned"], df["total"], warn=False)
    assert fit.ed_control(50)["estimate"] == pytest.approx(truth.e, rel=2e-3)
    assert fit.control_level() == pytest.approx(truth.control, rel=1e-3)


def world_coverage(truth: WorldTruth, replicates: int, dose: float = 0.01, seed: int = 1) -> dict:
    """Share of replicates whose 95% interval covers the truth, per block mode: the ED50 of LL.3
    (truth e) and the paired reduction at `dose` (truth: `true_reduction`)."""
    target = true_reduction(truth, dose)
    rng = np.random.default_rng(seed)
    hits = {f"{what} {mode}": [] for what in ("ed50", "reduction") for mode in ("seed", "world")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.FitWarning)
        for _ in range(replicates):
            df = simulate_worlds(truth, rng)
            for mode in ("seed", "world"):
                rows = with_blocks(df, mode)
                fit = F.fit_curve("LL.3", rows["dose"], rows["misaligned"], rows["total"],
                                  seeds=cluster_labels(rows), blocks=block_labels(rows), warn=False)
                ed = fit.ed_control(50) if fit.usable else None
                hits[f"ed50 {mode}"].append(ed is not None and ed["lower"] is not None
                                            and ed["lower"] <= truth.study.e <= ed["upper"])
                entry = next(e for e in cost_effectiveness({}, rows) if e["dose"] == pytest.approx(dose))
                hits[f"reduction {mode}"].append(entry["lower"] <= target <= entry["upper"])
            for cov, (lower, upper) in gee_intervals(df, dose).items():
                hits.setdefault(f"reduction gee {cov}", []).append(lower <= target <= upper)
    return {k: float(np.mean(v)) for k, v in hits.items()}


def gee_intervals(df, dose: float) -> dict:
    """95% intervals of the reduction at `dose` from a GEE of the runs' rates on a dosed
    indicator, world clusters (exchangeable), robust and bias-reduced covariances."""
    import statsmodels.api as sm

    rows = df[(df["dose"] == 0) | (df["dose"] == dose)]
    exog = sm.add_constant((rows["dose"] > 0).to_numpy(float))
    model = sm.GEE((rows["misaligned"] / rows["total"]).to_numpy(), exog, groups=rows["world_seed"].to_numpy(),
                   cov_struct=sm.cov_struct.Exchangeable())
    out = {}
    for cov in ("robust", "bias_reduced"):
        lower, upper = model.fit(cov_type=cov).conf_int()[1]
        out[cov] = (-upper, -lower)  # the coefficient is the rise; the reduction is its negative
    return out


@pytest.mark.slow
@pytest.mark.parametrize("worlds", [6, 2])
def test_world_blocks_cover_truth_when_worlds_differ_and_seed_blocks_do_not(worlds):
    cover = world_coverage(WorldTruth(n_worlds=worlds), REPLICATES)
    assert 0.90 <= cover["ed50 world"] <= 0.99 and 0.90 <= cover["reduction world"] <= 0.99, cover
    assert cover["ed50 seed"] < 0.85 and cover["reduction seed"] < 0.85, cover


def test_world_mode_pairs_within_worlds_and_counts_worlds():
    """A known-truth table without noise: the dose lowers world w's rate by 0.1 * (w + 1) in
    every seed, seeds differ in their control; world mode must give the mean over worlds (0.2)
    with t on worlds - 1 = 2 df, seed mode the same mean on 3 x 3 - 1 = 8 df."""
    rows = []
    for world in range(3):
        for seed in range(3):
            control = 0.5 + 0.05 * seed + 0.02 * world
            for dose, rate in ((0.0, control), (0.01, control - 0.1 * (world + 1))):
                rows.append({"world_seed": world, "seed": seed, "dose": dose, "total": 1000,
                             "misaligned": round(1000 * rate)})
    df = pd.DataFrame(rows)
    for mode, df_expected in (("world", 2), ("seed", 8)):
        entry = cost_effectiveness({}, with_blocks(df, mode))[0]
        assert entry["reduction"] == pytest.approx(0.2, abs=1e-9) and entry["df"] == df_expected
    spread = np.std([0.1, 0.2, 0.3], ddof=1) / np.sqrt(3)
    assert cost_effectiveness({}, with_blocks(df, "world"))[0]["se"] == pytest.approx(spread, abs=1e-9)
