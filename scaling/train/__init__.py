"""Training: pure steps, the objectives with their data, LR schedules and a loop with hooks.

- `steps`: the LM step and the RL step, pure functions of (state, batch), scanned per call;
- `objectives/`: the registry of training objectives, each module with its own data;
- `source`: the run's batch source (the mixture, and each post-training stage's data);
- `schedules`: the staged learning-rate schedule;
- `loop`: `train_group`, runs of one pack key trained together, calling the hooks each run
  carries (restore, begin, and `(callback, every)` hooks after each call). The loop writes
  no files and knows neither evaluation nor shared pretraining: scaling.run wires those
  hooks (run directory records, evaluation, branch export).

This package imports nothing at import, so reading the objectives' registry does not load
JAX's training code.
"""
