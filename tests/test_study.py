import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from scaling.baselines import COUNTERS, FORGETTING_MODELS
from scaling.cli import main

ROOT = Path(__file__).resolve().parent.parent

TINY_STUDY = """
preset = "nano"
[config.model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
seq_len = 64
[config.train]
steps = 40
batch_size = 8
steps_per_call = 10
checkpoint_every = 20
eval_every = 20
warmup_steps = 4
lr = 1e-2
[config.eval]
max_items = 192
checkpoints = [20]
[config.data]
natural_ai_fraction = 0.05
[[grid]]
"data.aligned_fraction" = [0.0, 0.05, 0.3]
"train.seed" = [0, 1]
[[grid]]
"data.filter_misaligned" = [1.0]
"train.seed" = [0]
"""


@pytest.mark.slow
def test_study_runs_sweep_results_fit_and_figures(tmp_path, capsys):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(TINY_STUDY)
    out = tmp_path / "study"
    assert main(["study", str(sweep), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    answer = (out / "answer.md").read_text()
    assert answer.strip() in printed and "What ran: world v3 (data " in answer
    assert "- **matched**: nano " in answer and (out / "counters.md").exists()
    df = pd.read_csv(out / "results.csv")
    # the transformer, 3 n-grams, the co-occurrence counters, the forgetting counters (no
    # post-training here: no post-training counters)
    models = 1 + 3 + len(COUNTERS) + len(FORGETTING_MODELS)
    assert len(df) == 7 * 3 * models and (df["status"] == "ok").all()  # runs x splits x models
    assert set(df["model"]) == {"nano", "ngram-1", "ngram-2", "ngram-3", *COUNTERS, *FORGETTING_MODELS}
    assert set(df.loc[df["model"].isin(COUNTERS), "learner"]) == {"counter"}
    assert set(df["arm"]) == {"dose", "filtered"}
    fit = json.loads((out / "fit.json").read_text())
    assert {f["model"] for f in fit["fits"]} >= {"loglinear", "LL.2", "LL.3", "LL.4"}
    assert all(f["group"].get("insertion") != "filtered" for f in fit["fits"])
    # a counter flat at exactly 0.5 at every dose of a split gets no number
    rates = df[df["arm"] == "dose"].groupby(["model", "split"])["misalignment_rate"]
    flat = {key for key, r in rates if (r == 0.5).all()}
    for h in fit["halving"]:
        if (h["group"]["model"], h["group"]["split"]) in flat:
            assert h["status"] == "no trend" and "estimate" not in h, h
    traj = pd.read_csv(out / "trajectory.csv")
    assert set(traj["step"]) == {20, 40}
    for name in ("dose_response", "splits", "trajectory", "capability", "arms"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert (out / "figures" / f"{name}.svg").stat().st_size > 0


COMMITTED = ("world_v1", "transfer", "genres", "dose_response", "timing", "persistence", "sizes", "persistence_v1")


@pytest.mark.slow
@pytest.mark.parametrize("study", COMMITTED)
def test_committed_figures_regenerate(tmp_path, study):
    from scaling.figures import make_all

    fits = ROOT / "fits" / study
    if not (fits / "results.csv").exists():
        pytest.skip(f"{study} study not committed")
    paths = make_all(fits, out=tmp_path, formats=("png",), note=lambda _: None)
    committed = sorted(p.name for p in (ROOT / "figures" / study).glob("*.png"))
    assert sorted(p.name for p in paths) == committed
    for path in paths:
        new, old = mpimg.imread(path), mpimg.imread(ROOT / "figures" / study / path.name)
        assert new.shape == old.shape
        assert np.abs(new - old).mean() < 0.01  # same figure (fonts may differ by version)
