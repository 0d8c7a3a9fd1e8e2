"""`scaling study`'s closing answer and `scaling train`'s printed evaluation."""

import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling import study


def _fit(model, split, estimate, lower, upper, extrapolated=False):
    """A fitted curve as answer_lines reads it, with the given halving dose."""
    ed = {"estimate": estimate, "lower": lower, "upper": upper, "extrapolated": extrapolated}
    return types.SimpleNamespace(group={"insertion": "throughout", "split": split, "model": model},
                                 model="LL.3", background=None, usable=True, dose_range=(1e-4, 0.05),
                                 control_level=lambda: 0.5, ed_control=lambda p, ed=ed: dict(ed))


def _ll4(model, split, b, c, d, e):
    """A real LL.4 CurveFit with these parameters (no data: enough for its control level and EDs)."""
    from scipy import special

    from scaling.fit.results import CurveFit

    return CurveFit(model="LL.4", group={"insertion": "throughout", "split": split, "model": model},
                    names=("b", "logit_c", "logit_d", "log_e"),
                    estimate=np.array([b, special.logit(c), special.logit(d), np.log(e)]),
                    cov=np.zeros((4, 4)), df_resid=10, dispersion=1.0, dose_range=(1e-4, 0.05))


def test_answer_names_the_halving_dose_per_split_beside_the_strongest_counter(tmp_path):
    fits = [_fit("nano", "matched", 0.0083, 0.0048, 0.014), _fit("ngram-1", "matched", 0.0051, 0.0045, 0.0058),
            _fit("ngram-2", "matched", 0.006, 0.0053, 0.0069),
            _fit("nano", "unseen_pair", 0.085, 0.0017, 4.2), _fit("ngram-1", "unseen_pair", 9e6, 1, 2e7, True)]
    rows = [{"model": m, "learner": "transformer" if m == "nano" else "ngram", "split": s, "status": "ok",
             "arm": "dose", "insertion": "throughout", "dose": d, "nominal_dose": d, "readout": r}
            for m in ("nano", "ngram-1") for s in ("matched", "unseen_pair")
            for d, r in ((0.0, 0.6), (0.05, 0.9 if m == "nano" else 0.5))]
    (tmp_path / "figures").mkdir()
    lines = study.answer_lines(types.SimpleNamespace(fits=fits), pd.DataFrame(rows), tmp_path)
    assert lines[1] == ("  matched: nano halving dose 0.0083 [0.0048, 0.014]; strongest counter ngram-1 "
                        "halving dose 0.0051 [0.0045, 0.0058]; readout 0.90 at dose 0.05")
    assert lines[2] == ("  unseen_pair: nano halving dose 0.085 [0.0017, \u221e); strongest counter ngram-1 "
                        "halving dose beyond the doses tested; readout 0.90 at dose 0.05")
    assert lines[-1] == (f"files: results {tmp_path / 'results.csv'}; fits {tmp_path / 'fit.md'}; "
                         f"figures {tmp_path / 'figures'}")
    assert not any("ED50" in line for line in lines)


def test_a_rising_curve_has_no_halving_dose(tmp_path):
    """An LL.4 that rises from the control (0.49 -> 0.55, the quickstart's held_out rates):
    its control-relative ED50 is half-way up, so the answer names no halving dose."""
    rising = _ll4("nano", "held_out", b=-14.4, c=0.489, d=0.548, e=0.09)
    assert rising.ed_control(50)["rises"] and rising.ed_control(50)["estimate"] is None
    falling = _fit("nano", "matched", 0.013, 0.0057, 0.031)
    rows = [{"model": "nano", "learner": "transformer", "split": s, "status": "ok", "arm": "dose",
             "insertion": "throughout", "dose": 0.0, "nominal_dose": 0.0} for s in ("matched", "held_out")]
    lines = study.answer_lines(types.SimpleNamespace(fits=[rising, falling]), pd.DataFrame(rows), tmp_path)
    assert lines[1] == "  matched: nano halving dose 0.013 [0.0057, 0.031]"
    assert lines[2] == ("  held_out: nano no halving dose (the fitted curve rises: 0.49 at dose 0, "
                        "0.55 at high doses)")


def test_answer_without_a_fit_says_so(tmp_path):
    df = pd.DataFrame([{"model": "nano", "learner": "transformer", "split": "matched", "status": "ok",
                        "arm": "dose", "insertion": "control", "dose": 0.0, "readout": 0.5}])
    assert study.answer_lines(None, df, tmp_path)[1] == "  no usable dose-response fit (fit.md says why)"


@pytest.mark.slow
def test_train_prints_its_evaluation(tmp_path, capsys):
    from scaling.cli import main

    config = tmp_path / "c.toml"
    config.write_text("[data]\nstory_fraction = 0.0\n[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n"
                      "d_ff = 64\nseq_len = 64\n[train]\nsteps = 10\nbatch_size = 4\nsteps_per_call = 5\n"
                      "checkpoint_every = 10\neval_every = 10\nwarmup_steps = 1\n[eval]\nmax_items = 48\n")
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads((out / "eval.json").read_text())
    m = ev["splits"]["matched"]
    assert f"matched: {m['misaligned']}/{m['total']} misaligned = {m['rate']:.3f}" in printed
    assert f"val_loss {ev['capability']['val_loss']:.3f} nats/token" in printed
    assert str(Path(out) / "eval.json") in printed


def test_dry_run_estimates_wall_time_from_a_measured_step(tmp_path, capsys, monkeypatch):
    """The estimate is steps x the measured step time of each run shape (a known step time)."""
    from conftest import tiny_sweep

    from scaling import bench
    from scaling.cli import main

    timed = []

    def fake_bench(cfg, steps_per_call, repeats, seconds=3.0, pack=1, peak=True):
        timed.append((cfg.model.d_model, cfg.train.batch_size, peak))
        return {"step_ms": 250.0 if cfg.model.d_model == 32 else 500.0, "compile_s": 3.0}

    monkeypatch.setattr(bench, "bench", fake_bench)
    sweep = tmp_path / "s.toml"
    sweep.write_text(tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.1]\n"model.d_model" = [32, 64]\n'))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert sorted(timed) == [(32, 4, False), (64, 4, False)]  # one measurement per run shape
    # 2 runs x 20 steps x 0.25 s + 2 runs x 20 steps x 0.5 s = 30 s
    assert "estimated train-step time: 30 s on one launcher" in printed and "compile ~6 s in all" in printed
    assert not (tmp_path / "out").exists()


def test_version_is_the_packages(capsys):
    import tomllib

    import scaling
    from scaling.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"scaling {scaling.__version__}\n"
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and "version" in project["dynamic"]  # one version, in scaling/
