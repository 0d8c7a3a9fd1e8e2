"""`scaling train`'s printed evaluation, the dry run's estimate, the version (the study's answer: tests/test_answer.py)."""

import json
from pathlib import Path

import pytest


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
