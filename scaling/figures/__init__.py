"""The study's figures: `scaling figures DIR [--fit FIT.json] [--out DIR/figures]`.

Reads DIR/results.csv and DIR/trajectory.csv (see scaling.results; without trajectory.csv
`scaling figures` builds it from the runs' eval.json files), DIR/fit.json (scaling.reports.fit;
DIR/fits/fit.json also found). Each figure is one function from tidy tables to a matplotlib
Figure, registered by `@figure(NAME, RANK, INPUTS...)` (registry.py) with the `Inputs` fields
it is drawn from; `make_all` draws and saves them all as OUT/NAME.FORMAT (FIGURES, in this
order). One module per family: dose.py (dose_response, splits), transfer.py (transfer,
transfer_trajectory), persistence.py (persistence, resistance), trajectory.py, capability.py,
cost.py, arms.py, emergence.py (drawn by `scaling emergence`); style.py holds the rc
settings, palettes, the broken dose axis, the FacetGrid every figure's panels are drawn
through (`facet_grid` / `finish_grid`, `map_dataframe` with a function that draws one
panel's series) and `save`. The figures compute no statistics: seed and level means, t
intervals, cost-effectiveness and the arm table come from scaling.reports (means, cost, arms),
the dose effects and resistance curves from scaling.reports (transfer, resistance), the fitted curves from fit.json (their
bands evaluated by scaling.stats.curve_band).


  dose_response       misalignment vs measured dose per insertion window, matched families:
                      runs per seed, dose-0 controls at a "0" tick left of a broken log axis,
                      the fitted curve with its 95% band (robust SE) from fit.json, not refitted
  splits              the same for matched and held-out families side by side
  transfer            the transformer's reduction per eval split and its readout
  transfer_trajectory the dose effect over training per split (one evaluation per run: the
                      configurations side by side instead)
  persistence         misalignment after post-training against the pretraining dose, one
                      line per post-training kind, and before it (dashed)
  resistance          misalignment against post-training steps, one line per dose, panels
                      per direction and split (persistence.md's resistance table)
  trajectory          misalignment against training tokens, one line per dose (seed mean);
                      skipped when no run has mid-training points (eval.checkpoints)
  capability          alignment tax: val_loss and fact_recall against dose
  cost_effectiveness  reduction vs the dose-0 controls, per aligned token and per FLOP
  arms                control, each window's top dose, filtered / misaligned arms

Only rows with status "ok" and a finite dose are drawn; a figure without data is skipped with
a note. Panels of the transformer's quantities (transfer, cost-effectiveness) leave the counting
baselines out. Intervals of rate differences (reductions, dose effects) are clipped to [-1, 1],
and the figures say so. A dose panel's title says its halving dose as fit.json's "halving"
entry does (scaling.stats.halving: "no dose trend", "the curve does not fit the dose levels",
the side of the doses, a number with its interval), and only a number is marked on the dose
axis (its bar stops at the axis break); a panel whose dose-0 band misses its controls' mean
says so. With an older fit.json (no "halving"), a halving-dose bound above 1 or more than 100x
below the lowest dose tested is printed open ("[0.0017, ∞)") and a curve that rises from its
dose-0 level is titled "no halving dose (curve rises)". Dose axes have a tick at every dose
tested. Output is deterministic: the same inputs give byte-identical files.
"""

from scaling.figures import (  # noqa: F401  (registers the figures)
    arms,
    capability,
    cost,
    dose,
    emergence,
    persistence,
    trajectory,
    transfer,
)
from scaling.figures.registry import MissingData, figure, make_all, registered
from scaling.figures.style import FORMATS, save

FIGURES = registered()

__all__ = ["FIGURES", "FORMATS", "MissingData", "figure", "make_all", "registered", "save"]
