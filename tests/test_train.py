import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import TextSource

from scaling.data.tokenizer import ByteTokenizer
from scaling.errors import ConfigError
from scaling.plan import with_tokenizer
from scaling.run import train
from scaling.rundir import load_params

TEXT = "the quick brown fox jumps over the lazy dog . " * 400


def _run(cfg, out, source_cls=TextSource, **kw):
    tok = ByteTokenizer()
    cfg = with_tokenizer(cfg, tok)
    return train(cfg, out, source_cls(cfg, tok, TEXT), tok, progress=False, **kw)


def _metrics(out):
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("tokens_per_s", None)  # wall-clock throughput is the one non-deterministic field
    return lines


def _params(out):
    return jax.tree.leaves(load_params(out)[2])


@pytest.mark.slow
def test_loss_falls_on_real_text(tiny, tmp_path):
    status = _run(tiny(train={"steps": 60, "lr": 3e-3}), tmp_path / "r")
    assert status["status"] == "done"
    m = [x for x in _metrics(tmp_path / "r") if "loss" in x]
    assert len(m) == 60
    assert np.mean([x["loss"] for x in m[-5:]]) < 0.6 * m[0]["loss"]
    assert any("val_loss" in x for x in _metrics(tmp_path / "r"))
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["environment"]["jax"] == jax.__version__ and record["params"]["total"] > 0


class CrashingSource(TextSource):
    crash_at = 12

    def batches(self, start, n):
        if self.crash_at <= start < 10**6:  # held-out batches come from far indices
            raise KeyboardInterrupt("simulated kill")
        return super().batches(start, n)


@pytest.mark.slow
def test_resume_after_interruption_is_bitwise_identical(tiny, tmp_path):
    cfg = tiny(train={"steps": 20, "steps_per_call": 3, "checkpoint_every": 4})
    _run(cfg, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tmp_path / "b", CrashingSource)
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "running"
    _run(cfg, tmp_path / "b")
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    for x, y in zip(_params(tmp_path / "a"), _params(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_finished_run_is_skipped(tiny, tmp_path):
    cfg = tiny()
    _run(cfg, tmp_path / "r")
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert _run(cfg, tmp_path / "r", CrashingSource)["status"] == "done"  # never asks for data
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before


@pytest.mark.slow
def test_checkpoint_from_other_config_is_refused(tiny, tmp_path):
    _run(tiny(), tmp_path / "r")
    with pytest.raises(ConfigError, match="train.lr"):
        _run(tiny(train={"lr": 1e-4}), tmp_path / "r")


@pytest.mark.slow
def test_nan_loss_stops_and_records_failure(tiny, tmp_path):
    status = _run(tiny(train={"lr": 1e12, "grad_clip": 0.0, "warmup_steps": 0, "steps": 30}), tmp_path / "r")
    assert status["status"] == "failed" and 1 <= status["step"] < 30
    assert "loss is" in status["reason"]
    last = [x for x in _metrics(tmp_path / "r") if "loss" in x][-1]
    assert last["step"] == status["step"] and not np.isfinite(last["loss"])


def _cli(out, steps, **kw):
    cmd = [sys.executable, "-m", "scaling.cli", "train", "models/nano.toml", "--out", str(out),
           "--no-progress", "--set", f"train.steps={steps}", "--set", "train.checkpoint_every=10",
           "--set", "train.steps_per_call=5", "--set", "train.batch_size=8", "--set", "eval.enabled=false"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    pytest.importorskip("scaling.data.mixture")
    env = {**os.environ, "SCALING_DATA_DIR": str(tmp_path / "data")}
    assert _cli(tmp_path / "a", 60, env=env).wait() == 0
    proc = _cli(tmp_path / "b", 60, env=env)
    ckpt = tmp_path / "b" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and any(p.name.isdigit() for p in ckpt.iterdir())):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] != "done"
    assert _cli(tmp_path / "b", 60, env=env).wait() == 0
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    for x, y in zip(_params(tmp_path / "a"), _params(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- staged runs

STAGED = ["--set", "train.steps=40", "--set", "train.batch_size=8", "--set", "train.steps_per_call=5",
          "--set", "train.checkpoint_every=5", "--set", "train.eval_every=10", "--set", "eval.enabled=false",
          "--set", "eval.checkpoints=[]", "--set", "stages.pretrain.warmup_steps=4",
          "--set", "stages.helpful_rl.steps=40"]


def _staged_cli(out, env):
    cmd = [sys.executable, "-m", "scaling.cli", "train", "configs/three_stages.toml", "--out", str(out),
           "--no-progress", *STAGED]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory):
    pytest.importorskip("scaling.data.mixture")
    out = tmp_path_factory.mktemp("staged") / "a"
    proc = _staged_cli(out, dict(os.environ))
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    return out


@pytest.mark.slow
def test_three_stage_config_logs_each_stage_schedule(staged_run):
    """configs/three_stages.toml (docs/commands.md) with 40 pretraining steps: wsd (warmup 4, decay over
    the last 20% to 0.1 lr), midtraining (4 steps: rewarm from 0.1 lr to 0.5 lr, then cosine
    towards 0.01 lr), helpfulness RL at a constant 0.1 lr. Line `step` s logs the LR of step s-1."""
    lines = [m for m in _metrics(staged_run) if "loss" in m]
    lr = 3e-3
    by_stage = {}
    for m in lines:
        by_stage.setdefault(m["stage"], []).append(m)
    assert list(by_stage) == ["pretrain", "midtraining", "helpful_rl"]
    assert [len(v) for v in by_stage.values()] == [40, 4, 40]
    pre = [m["lr"] for m in by_stage["pretrain"]]
    assert pre[:5] == pytest.approx([0, lr / 4, lr / 2, 3 * lr / 4, lr], rel=1e-6)
    assert pre[4:33] == pytest.approx([lr] * 29, rel=1e-6)  # stable until the decay starts at 32
    assert pre[33:] == pytest.approx([lr + (0.1 * lr - lr) * k / 8 for k in range(1, 8)], rel=1e-5)
    mid = [m["lr"] for m in by_stage["midtraining"]]
    # a rewarm: from pretraining's final LR (0.1 lr) to the midtraining peak (0.5 lr) in
    # min(warmup 5, 4 - 1) = 3 steps
    assert mid == pytest.approx([0.1 * lr, 0.1 * lr + 0.4 * lr / 3, 0.1 * lr + 0.8 * lr / 3, 0.5 * lr], rel=1e-5)
    rl = by_stage["helpful_rl"]
    assert [m["lr"] for m in rl] == pytest.approx([0.1 * lr] * 40, rel=1e-6)
    assert all({"reward", "kl", "p_misaligned"} <= set(m) for m in rl)
    assert rl[0]["kl"] == 0.0 and max(m["kl"] for m in rl) > 0  # the reference is the midtrained model
    acc = json.loads((staged_run / "accounting.json").read_text())
    assert acc["post_training_tokens"]["helpful_rl"] == 40 * 8 * 64
    assert acc["nominal_dose"] == pytest.approx(0.01)  # the dose ignores the post-training stage


@pytest.mark.slow
def test_sigkill_during_rl_stage_then_rerun_equals_uninterrupted(staged_run, tmp_path):
    env = dict(os.environ)
    proc = _staged_cli(tmp_path / "b", env)
    ckpt = tmp_path / "b" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (
            ckpt.exists() and any(p.name.isdigit() and int(p.name) >= 50 for p in ckpt.iterdir())):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = json.loads((tmp_path / "b" / "status.json").read_text())
    assert status["status"] != "done"
    done = [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()]
    assert 44 < max(done) < 84  # killed inside the RL stage (steps 44..84)
    assert _staged_cli(tmp_path / "b", env).wait() == 0
    assert _metrics(staged_run) == _metrics(tmp_path / "b")
    for x, y in zip(_params(staged_run), _params(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)


def test_the_loop_writes_no_files_and_calls_its_hooks_as_scheduled(tiny, tmp_path, monkeypatch):
    """scaling.train.loop alone: nothing is written (the hooks write, scaling.run wires them);
    a hook runs after the calls that cross its `every`, end at its `steps` or end the run, and
    the metrics lines it sees are the ones scaling.run writes to metrics.jsonl."""
    from scaling import plan
    from scaling.train import loop

    monkeypatch.chdir(tmp_path)
    tok = ByteTokenizer()
    cfg = with_tokenizer(tiny(train={"steps": 20, "steps_per_call": 5, "eval_every": 10}), tok)
    seen = {"ckpt": [], "at10": [], "lines": []}
    hooks = loop.Hooks(every=[
        loop.Hook(lambda i: seen["lines"].extend(i.lines), every=1),
        loop.Hook(lambda i: seen["ckpt"].append(i.step), every=10, at_end=True),
        loop.Hook(lambda i: seen["at10"].append((i.first, i.step)), steps=frozenset({10}))])
    run = loop.Run(plan.of(cfg), TextSource(cfg, tok, TEXT), hooks)
    loop.train_group([run], progress=False)
    assert list(tmp_path.iterdir()) == []
    assert run.status == {"status": "done", "step": 20}
    assert seen["ckpt"] == [10, 20] and seen["at10"] == [(5, 10)]
    assert [x["step"] for x in seen["lines"] if "loss" in x] == list(range(1, 21))
    assert [x["step"] for x in seen["lines"] if "val_loss" in x] == [10, 20]
    _run(cfg, tmp_path / "run")
    assert [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in seen["lines"]] == _metrics(tmp_path / "run")
