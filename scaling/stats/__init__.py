"""Statistics on tidy tables, with no study in them. Imports only `scaling.table` and
`scaling.errors` of the package (tests/test_imports.py); the reports that write fit.json and
fit.md from these fits are scaling.reports.

Modules by concern: groups (the input rows of a fit: validation, groups, block modes),
curves (mean curves, EDs), likelihood and fitting, results (CurveFit: params, bse, conf_int(),
summary()), comparisons (model tests, cost), contrasts (named paired contrasts), paired (the
paired contrast over blocks, Holm's adjustment, Fieller's ratio interval), halving (the halving
dose of a group, its dose-trend and lack-of-fit tests), simulate (known-truth studies for the
coverage tests).

Input columns (the results-table contract, scaling.table): dose, misaligned (k), total (n);
optional insertion, split, model (groups; learner, else the model name, tells the counting
baselines: scaling.table.learner), seed and world_seed (blocks), aligned_tokens, flops,
total_tokens (cost per marginal FLOP), val_loss (alignment tax), post_training, status (rows
not finished are dropped: scaling.table.finished), arm (rows other than "dose" are dropped),
nominal_dose, else aligned_fraction, else dose (dose levels: scaling.table.dose_level).
Dose-0 rows whose insertion is empty/"none"/"control" are controls shared by every insertion
window of their (split, model).

Models, per group and pooled over insertion windows ("pooled"), each with one effect per block
(seed x world seed) on its dose-0 level when the rows have two or more blocks (--blocks, see
groups.BLOCK_MODES: the independent unit is the block, or the world with seeds nested in it, the
default with two or more world seeds; none: no blocks, the pooled fits of R's drc):
  loglinear  rate = intercept + slope*ln(dose), binomial ML on dose > 0;
  LL.2       binomial GLM, logit link on ln(dose), dose > 0, limits 0 and 1 (drc: b = -slope;
             its "ED50" is where the rate crosses 0.5: the drc-comparable GLM, no headline);
  LL.3/LL.4  drc's f = c + (d-c)/(1+exp(b(ln x - ln e))) (LL.3: c = 0), binomial ML that
             includes the dose-0 controls (they fix d). b > 0: decreasing, as in drc.
  W1.4       drc's Weibull type 1, f = c + (d-c) exp(-exp(b(ln x - ln e))), fitted like LL.4;
             only when asked for (--models): the default set is the four above.
Each model is a class in scaling.stats.curves.CURVES (its parameters, mean and Jacobian, start
values, EDs, dose-0 and background rules): adding one is one registered class.
With --background the dose axis ln(x0 + dose) is fitted beside each plain model: a fixed x0
for every model; an estimated x0 ("auto") for loglinear and LL.2 only (LL.3/LL.4's plateau d
is confounded with it).
se_robust (drc-style estimates) is the larger of the quasi-binomial and the seed-clustered SE.
Data rows in error messages count from 1 after the CSV header.
"""
from scaling.stats.common import (
    BACKGROUND_MODELS,
    CONTROL_LABELS,
    ED_LEVELS,
    MODELS,
    POOLED,
    Z95,
    FitWarning,
)
from scaling.stats.comparisons import compare_insertions, cost_effectiveness
from scaling.stats.curves import CURVES, CurveModel, register
from scaling.stats.fitting import fit_curve, fit_ll, fit_ll2, fit_loglinear
from scaling.stats.groups import clean_table, group_frames, read_results
from scaling.stats.results import CurveFit, curve_band, predict

__all__ = [
    "BACKGROUND_MODELS", "CONTROL_LABELS", "CURVES", "ED_LEVELS", "MODELS", "POOLED", "Z95", "CurveFit",
    "CurveModel", "FitWarning",
    "clean_table", "compare_insertions", "cost_effectiveness", "curve_band", "fit_curve", "fit_ll",
    "fit_ll2", "fit_loglinear", "group_frames", "predict", "read_results", "register",
]
