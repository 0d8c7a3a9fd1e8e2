"""Dose-response fits of a results table: `scaling fit RESULTS.csv --out DIR`.

Modules by concern: table (input table, groups, dose levels; shared with the figures), curves,
likelihood and fitting, results (CurveFit), comparisons, report (fit_table, fit.json/fit.md, CLI).

Input columns: dose, misaligned (k), total (n); optional insertion, split, model (groups),
seed (clusters, bootstrap units), aligned_tokens, flops (cost-effectiveness), status (rows
other than "ok" are dropped), arm (rows other than "dose" are dropped: the filtering and
misaligned arms are not points of the dose-response curve), nominal_dose or else
aligned_fraction (groups the seeds of one dose level for cost-effectiveness). Dose-0 rows whose insertion is empty/"none"/"control" are
controls shared by every insertion window of their (split, model).

Models, per group and pooled over insertion windows ("pooled"):
  loglinear  rate = intercept + slope*ln(dose), binomial ML on dose > 0;
  LL.2       binomial GLM, logit link on ln(dose), dose > 0 (drc: b = -slope, e = ED50);
  LL.3/LL.4  drc's f = c + (d-c)/(1+exp(b(ln x - ln e))) (LL.3: c = 0), binomial ML that
             includes the dose-0 controls (they fix d). b > 0: decreasing, as in drc.
With --background the dose axis ln(x0 + dose) is fitted beside each plain model and compared
by AIC: a fixed x0 for every model; an estimated x0 ("auto") for loglinear and LL.2 only, since
LL.3/LL.4 already have a low-dose plateau d with which an estimated x0 is confounded.

fit.json:
  fits[]: group, model, data ("dose>0" | "all doses"), usable, reason, notes, n_obs, n_seeds,
    dispersion (Pearson X2/df), df_resid, loglik, aic, background (null | {mode, estimate,
    se, se_robust, lower, upper}), params, se (plain binomial, as drc), se_cluster, se_robust,
    ed {"10","50","90": {estimate, se, lower, upper, lower_log, upper_log, se_robust,
    lower_robust, upper_robust, lower_log_robust, upper_log_robust}}, vcov {names, estimate,
    plain, cluster} (internal parametrisation, read by `predict`), bootstrap.
  comparisons[]: equal_slope / equal_ed50 on LL.2 across insertion windows (lr, df, p: binomial
    likelihood ratio; lr_robust = lr/max(1, dispersion), p_robust: its F test), and background
    (AIC with and without; "preferred": "background" only if it lowers AIC by >= 2).
  aic_table[], cost_effectiveness[] (misalignment reduction vs dose 0 per aligned token, FLOP).

se_robust of every quantity is the larger of the quasi-binomial SE (se*sqrt(max(1, X2/df)))
and the sandwich SE clustered by seed (needs >= 2 seeds); every significance statement uses it.
Intervals are estimate +- z*SE (t(df_resid) for the continuous mode); *_log intervals are
exp(ln ED +- z*SE/ED). Data rows in error messages count from 1 after the CSV header.
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
from scaling.fit.curves import _ed_dose, _make_design
from scaling.fit.fitting import _fit_glm, _fit_ml, fit_curve, fit_ll, fit_ll2, fit_loglinear
from scaling.fit.report import FitReport, add_arguments, fit_table, run
from scaling.fit.results import CurveFit, curve_band, predict
from scaling.fit.table import clean_table, group_frames, read_results

__all__ = [
    "BACKGROUND_MODELS", "CONTROL_LABELS", "ED_LEVELS", "MODELS", "POOLED", "Z95", "CurveFit",
    "FitReport", "FitWarning", "_ed_dose", "_fit_glm", "_fit_ml", "_make_design", "add_arguments",
    "clean_table", "compare_insertions", "cost_effectiveness", "curve_band", "fit_curve", "fit_ll",
    "fit_ll2", "fit_loglinear", "fit_table", "group_frames", "predict", "read_results", "run",
]
