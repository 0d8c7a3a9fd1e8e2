"""Reports: tidy tables computed from a results table (and its fits), rendered as markdown.

Each report computes its table first and renders it without fitting anything:
  fit          `fit_table(df) -> FitReport` (every curve, test and contrast, by scaling.stats);
               `FitReport.to_json()` / `to_markdown()` render fit.json, fit.md and counters.md
  transfer     `compute(trajectory, results) -> {"effects", "values"}`, `render(tables, results)`
  persistence  `compute(trajectory, results, chosen_fits) -> {"persistence", "halving"}`, `render(tables)`
  resistance   `compute(trajectory, results) -> DataFrame`, `render(table)`
  sizes        `size_report(df) -> dict` (per size and the trends; sizes.json), `to_markdown(report)`
  emergence    `readout_table(trajectory) -> DataFrame`, `report(table, threshold)` (emergence.md)
  answer       `write_answer(report, df, out)`: answer.md from a FitReport and its table
  treatments   the treatment arms beside adding and filtering (answer.md's lines)
None reaches the run side (world, data, training, baselines: tests/test_imports.py).
"""
