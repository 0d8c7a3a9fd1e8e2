"""Tracked runs: TensorBoard event files written from a run's record hold every scalar of
metrics.jsonl and of the evaluation trajectory, once per step (read back from the files)."""

import json
import struct

import numpy as np
import pytest

from scaling import tracking
from scaling.cli import main

pytest.importorskip("tensorboardX")


def _run_dir(path, steps=6):
    path.mkdir(parents=True)
    lines = [{"step": s, "tokens": 10 * s, "stage": "pretrain", "loss": 5.0 - 0.5 * s, "lr": 0.001,
              "grad_norm": 1.0 + s, "tokens_per_s": 99.0} for s in range(1, steps + 1)]
    lines.insert(3, {"step": 3, "tokens": 30, "val_loss": 4.25})
    (path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (path / "eval.json").write_text(json.dumps({"trajectory": [
        {"step": 6, "tokens": 60, "matched_rate": 0.375, "held_out_readout": 0.5}]}))
    return path


def _events(folder):
    """(tag, value, step) of every scalar in the event files, parsed from the TFRecord frames."""
    from tensorboardX.proto import event_pb2

    out = []
    for file in sorted(folder.glob("events.out.tfevents.*")):
        data, at = file.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            out += [(v.tag, v.simple_value, event.step) for v in event.summary.value]
    return out


def test_tensorboard_events_hold_every_scalar_once(tmp_path):
    run = _run_dir(tmp_path / "run")
    tracking.write(run, "tensorboard")
    tracking.write(run, "tensorboard")  # rewritten whole, not appended
    got = sorted(_events(run / "tensorboard"))
    assert got == sorted((t, float(np.float32(v)), s) for t, v, s in tracking.scalars(run))  # float32 on disk
    assert ("train/loss", 2.0, 6) in got and ("val/loss", 4.25, 3) in got and ("eval/matched_rate", 0.375, 6) in got
    assert len([g for g in got if g[0] == "train/loss"]) == 6 and not any("tokens" in g[0] for g in got)


def test_track_command_covers_a_sweep_and_refuses_missing_packages(tmp_path, capsys, monkeypatch):
    for name in ("a", "b"):
        _run_dir(tmp_path / "sweep" / "runs" / name, steps=3)
    assert main(["track", str(tmp_path / "sweep")]) == 0
    assert all(_events(tmp_path / "sweep" / "runs" / n / "tensorboard") for n in ("a", "b"))
    assert main(["track", str(tmp_path / "nothing")]) == 2
    monkeypatch.setitem(__import__("sys").modules, "wandb", None)  # as if the extra were not installed
    assert main(["track", str(tmp_path / "sweep"), "--tracker", "wandb"]) == 2
    assert "pip install wandb" in capsys.readouterr().err
