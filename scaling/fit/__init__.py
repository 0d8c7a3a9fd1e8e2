"""Dose-response fits of a results table: `scaling fit RESULTS.csv --out DIR`.

Modules by concern: table (input table validation, groups, block modes),
curves (mean curves, EDs), likelihood and fitting, results (CurveFit: params, bse, conf_int(),
summary()), comparisons (model tests, cost), contrasts (named paired contrasts, Holm), report
(fit_table, fit.json/fit.md; the command is scaling.cli.fit); simulate (known-truth studies for the coverage tests).

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
table.BLOCK_MODES: the independent unit is the block, or the world with seeds nested in it, the
default with two or more world seeds; none: no blocks, the pooled fits of R's drc):
  loglinear  rate = intercept + slope*ln(dose), binomial ML on dose > 0;
  LL.2       binomial GLM, logit link on ln(dose), dose > 0, limits 0 and 1 (drc: b = -slope;
             its "ED50" is where the rate crosses 0.5: the drc-comparable GLM, no headline);
  LL.3/LL.4  drc's f = c + (d-c)/(1+exp(b(ln x - ln e))) (LL.3: c = 0), binomial ML that
             includes the dose-0 controls (they fix d). b > 0: decreasing, as in drc.
  W1.4       drc's Weibull type 1, f = c + (d-c) exp(-exp(b(ln x - ln e))), fitted like LL.4;
             only when asked for (--models): the default set is the four above.
Each model is a class in scaling.fit.curves.CURVES (its parameters, mean and Jacobian, start
values, EDs, dose-0 and background rules): adding one is one registered class.
With --background the dose axis ln(x0 + dose) is fitted beside each plain model: a fixed x0
for every model; an estimated x0 ("auto") for loglinear and LL.2 only (LL.3/LL.4's plateau d
is confounded with it).

fit.json:
  fits[]: group, model, data, usable, reason, notes, n_obs, n_seeds, blocks, dispersion,
    df_resid, loglik, aic, background, params, se (plain, as drc), se_cluster, se_robust,
    ed (drc's relative EDs), control_level (fitted rate at dose 0, average block), ed_control
    {"10","50","90": {estimate, lower, upper, se_log, method, df, extrapolated}}: the dose at
    which the rate is p% of the way from control_level to the floor; interval exp(ln ED +-
    t*SE), SE from the sandwich clustered by unit (block, or world) with t on units - 1
    df (method "cluster"; the quasi-binomial SE with t on df_resid when there is one unit); a
    curve that rises from control_level (its limit at high doses at or above it) has no halving
    dose: {estimate: null, lower: null, upper: null, rises: true, control_level, limit}; vcov,
    bootstrap.
  comparisons[]: each {name, test, estimate, lower, upper, p, p_holm, ...}: background (QAIC
    and quasi F test; "preferred" by QAIC), lack_of_fit (against one rate per dose level),
    equal_slope / equal_ed50 (LL.2) and equal_halving_dose (LL.3) across windows, and the
    paired contrasts of scaling.fit.contrasts. p_holm: Holm over the family named in
    report.HOLM_FAMILY, None outside it.
  aic_table[]: QAIC model choice (binomial AIC listed, never used to choose);
  cost_effectiveness[]: reduction vs dose 0 paired by block, per aligned token and per
    marginal FLOP.
se_robust (drc-style estimates) is the larger of the quasi-binomial and the seed-clustered SE.
Data rows in error messages count from 1 after the CSV header.
"""
from scaling.fit.common import (
    BACKGROUND_MODELS,
    CONTROL_LABELS,
    ED_LEVELS,
    MODELS,
    POOLED,
    Z95,
    FitWarning,
)
from scaling.fit.comparisons import compare_insertions, cost_effectiveness
from scaling.fit.curves import CURVES, CurveModel, register
from scaling.fit.fitting import fit_curve, fit_ll, fit_ll2, fit_loglinear
from scaling.fit.report import FitReport, fit_table, write_report
from scaling.fit.results import CurveFit, curve_band, predict
from scaling.fit.table import clean_table, group_frames, read_results

__all__ = [
    "BACKGROUND_MODELS", "CONTROL_LABELS", "CURVES", "ED_LEVELS", "MODELS", "POOLED", "Z95", "CurveFit",
    "CurveModel", "FitReport", "FitWarning",
    "clean_table", "compare_insertions", "cost_effectiveness", "curve_band", "fit_curve", "fit_ll",
    "fit_ll2", "fit_loglinear", "fit_table", "group_frames", "predict", "read_results", "register",
    "write_report",
]
