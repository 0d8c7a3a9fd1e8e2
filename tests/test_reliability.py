"""Reliability: racing launchers, waiting on live claims, retrying errors, damaged state.

The oracle for every test that resumes or races is the uninterrupted run: metrics (less the
wall-clock `tokens_per_s`) and results must come out equal, not merely "present".
"""

import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling import sweep as sweeper
from scaling.cli import main
from scaling.sweep import expand, launch, run_sweep

TINY = tiny_sweep(train={"steps": 10, "eval_every": 5})


def write_sweep(tmp_path, seeds=(0, 1), name="s.toml"):
    path = tmp_path / name
    path.write_text(TINY + f'[[grid]]\n"train.seed" = {list(seeds)}\n')
    return path


def loss_lines(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in lines]  # wall clock differs


def status(run_dir):
    return json.loads((run_dir / "status.json").read_text())["status"]


def hold_lock(run_dir, pid=None):
    """A lock as a launcher on this host with process `pid` writes it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    import socket

    (run_dir / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid or os.getpid(),
                                              "time": time.time()}))


def test_no_wait_leaves_live_claims_and_says_so(tmp_path, capsys):
    path = write_sweep(tmp_path)
    specs = expand(path)
    out = tmp_path / "out"
    held = out / "runs" / specs[0].run_id
    hold_lock(held)  # this test process is the live launcher training it
    assert main(["sweep", str(path), "--out", str(out), "--no-progress", "--no-wait", "--no-results"]) == 0
    text = capsys.readouterr()
    assert "not waiting (--no-wait)" in text.out + text.err
    assert "1 running elsewhere" in text.out
    assert not (held / "status.json").exists()  # untouched: its claimant is alive
    assert status(out / "runs" / specs[1].run_id) == "done"


def test_waiting_launcher_takes_over_a_claim_released_unfinished(tmp_path):
    path = write_sweep(tmp_path, seeds=(0,))
    (spec,) = expand(path)
    out = tmp_path / "out"
    run_dir = out / "runs" / spec.run_id
    hold_lock(run_dir)

    def die_later():  # the claimant goes away without finishing (a killed launcher on another host)
        time.sleep(1.0)
        (run_dir / "lock").unlink()

    threading.Thread(target=die_later).start()
    t0 = time.time()
    statuses = run_sweep([spec], out, progress=False, poll_s=0.1)
    assert time.time() - t0 >= 1.0  # it waited rather than return "running"
    assert statuses == {spec.run_id: "done"}
    ref = tmp_path / "ref"
    launch(path, ref, progress=False)
    assert loss_lines(run_dir) == loss_lines(ref / "runs" / spec.run_id)


def test_dead_and_damaged_locks_are_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hold_lock(tmp_path / "a", pid=dead.pid)
    assert sweeper._lock_is_stale(tmp_path / "a" / "lock")
    hold_lock(tmp_path / "b")
    assert not sweeper._lock_is_stale(tmp_path / "b" / "lock")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "lock").write_text('{"host": "x", "pi')  # cut by a kill or a bad disk
    assert not sweeper._lock_is_stale(tmp_path / "c" / "lock")  # its heartbeat is fresh
    old = time.time() - sweeper.LOCK_STALE_S - 1
    os.utime(tmp_path / "c" / "lock", (old, old))
    assert sweeper._lock_is_stale(tmp_path / "c" / "lock")
    claim = sweeper.try_claim(tmp_path / "c")
    assert claim is not None and json.loads((tmp_path / "c" / "lock").read_text())["pid"] == os.getpid()
    claim.release()
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".lock")]


def test_error_runs_are_retried_with_a_flag(tmp_path, capsys):
    path = write_sweep(tmp_path, seeds=(0,))
    (spec,) = expand(path)
    out = tmp_path / "out"
    run_dir = out / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"status": "error", "step": None, "reason": "OSError: flaky NFS"}))
    assert main(["sweep", str(path), "--out", str(out), "--no-progress", "--no-results"]) == 1
    assert status(run_dir) == "error"  # not retried silently
    assert main(["sweep", str(path), "--out", str(out), "--no-progress", "--no-results", "--retry-errors"]) == 0
    assert status(run_dir) == "done"
    assert json.loads((run_dir / "status.error.json").read_text())["reason"] == "OSError: flaky NFS"
    assert "retrying 1 run(s)" in capsys.readouterr().out


def _launcher(path, out, *extra):
    cmd = [sys.executable, "-m", "scaling.cli", "sweep", str(path), "--out", str(out), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_four_racing_launchers_with_workers_all_exit_zero(tmp_path):
    """Four launchers, each with two worker processes, on one directory: every run is trained
    exactly once, every launcher exits 0 (those that finish their share first wait), and
    runs and results equal one uninterrupted launcher's."""
    path = write_sweep(tmp_path, seeds=range(6))
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _launcher(path, ref).wait(timeout=900) == 0
    procs = [_launcher(path, out, "--workers", "2") for _ in range(4)]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(logs)
    trained = [x.split(": ")[1] for log in logs for x in log.splitlines() if x.startswith("training")]
    assert sorted(trained) == sorted(s.run_id for s in expand(path))  # all runs, none twice
    a, b = pd.read_csv(ref / "results.csv"), pd.read_csv(out / "results.csv")
    assert not b.duplicated(["run_id", "split"]).any()
    pd.testing.assert_frame_equal(a, b)
    for run_dir in (ref / "runs").iterdir():
        assert loss_lines(run_dir) == loss_lines(out / "runs" / run_dir.name)


# ---------------------------------------------------------------- damaged state

import errno  # noqa: E402
import glob  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from conftest import TextSource  # noqa: E402

from scaling import run as trainer  # noqa: E402
from scaling import rundir  # noqa: E402
from scaling.data import tokenizer as tokenizers  # noqa: E402

TEXT = "the agent reports the error to the operator and waits for approval " * 40


def _train(cfg, out):
    tok = tokenizers.WordTokenizer(sorted(set(TEXT.split())))
    return trainer.train(cfg, out, TextSource(cfg, tok, TEXT), tok, progress=False, evaluate=False)


def _arrays(run_dir, step):
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as ckptr:
        return jax.tree.leaves(ckptr.restore((run_dir / "checkpoints" / str(step)).absolute() / "default"))


def _damage(step_dir, how):
    big = max(glob.glob(str(step_dir / "default" / "ocdbt.process_0" / "d" / "*")), key=os.path.getsize)
    data = bytearray(open(big, "rb").read())
    if how == "truncate":
        data = data[: len(data) // 2]
    else:  # a flipped bit: orbax restores it silently as another number; the sums catch it
        data[len(data) // 2] ^= 0x01
    open(big, "wb").write(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_damaged_latest_checkpoint_falls_back_to_previous(tiny, tmp_path, how):
    cfg = tiny()
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert _train(cfg, ref)["status"] == "done"
    shutil.copytree(ref, run)
    # killed after the last checkpoint, before `done` was written
    (run / "status.json").write_text(json.dumps({"status": "running", "step": 15}))
    _damage(run / "checkpoints" / "20", how)
    with pytest.warns(rundir.DamagedStateWarning, match="checkpoint 20 is damaged"):
        assert _train(cfg, run)["status"] == "done"
    assert loss_lines(run) == loss_lines(ref)
    assert len(list((run / "damaged_checkpoints").iterdir())) == 1
    for a, b in zip(_arrays(ref, 20), _arrays(run, 20)):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_evaluation_refuses_a_damaged_final_checkpoint(tiny, tmp_path):
    cfg = tiny()
    _train(cfg, tmp_path / "run")
    _damage(tmp_path / "run" / "checkpoints" / "20", "flip")
    with pytest.raises(rundir.DamagedCheckpointError, match="checkpoint 20"):
        rundir.load_params(tmp_path / "run")


def test_half_written_and_damaged_jsonl_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": i, "loss": 1.0}) for i in range(1, 7)]
    lines[2] = lines[2][:9] + "\x00\x00" + lines[2][11:]  # a damaged line in the middle
    path.write_text("\n".join(lines[:5]) + "\n" + lines[5][:7])  # and a last line cut by a kill
    with pytest.warns(rundir.DamagedStateWarning, match=r"line\(s\) \[3\]"):
        rundir.truncate_jsonl(path, 4)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 4]
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:7])  # only a cut last line: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rundir.truncate_jsonl(path, 4)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2]


def test_damaged_status_and_config(tiny, tmp_path):
    cfg = tiny()
    run = tmp_path / "run"
    _train(cfg, run)
    before = loss_lines(run)
    (run / "status.json").write_text('{"status": "do')
    with pytest.warns(rundir.DamagedStateWarning, match="status.json is damaged"):
        assert _train(cfg, run)["status"] == "done"
    assert loss_lines(run) == before
    (run / "config.json").write_text('{"config": {"mo')
    with pytest.raises(rundir.DamagedRunError, match="config.json is damaged"):
        _train(cfg, run)
    tok = tokenizers.WordTokenizer(sorted(set(TEXT.split())))
    with pytest.warns(rundir.DamagedStateWarning, match="rewriting it"):
        trainer.prepare(cfg, run, TextSource(cfg, tok, TEXT), tok, repair=True)
    assert json.loads((run / "config.json").read_text())["config"]["train"]["steps"] == 20


def _full_disk_after(monkeypatch, name: str, count: int):
    """os.replace raises ENOSPC from the `count`-th replace onto a file called `name`."""
    real, seen = os.replace, []

    def replace(src, dst, *a, **k):
        if os.path.basename(dst) == name:
            seen.append(dst)
            if len(seen) >= count:
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


TRAIN_SET = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.d_ff=64", "model.seq_len=16",
             "train.steps=20", "train.batch_size=4", "train.steps_per_call=5", "train.checkpoint_every=5",
             "train.eval_every=10", "eval.enabled=false", "data.story_fraction=0.0"]


@pytest.mark.slow
def test_full_disk_stops_the_run_and_the_rerun_resumes_bitwise(tmp_path, monkeypatch, capsys):
    args = [a for s in TRAIN_SET for a in ("--set", s)]
    assert main(["train", "models/nano.toml", "--out", str(tmp_path / "ref"), "--no-progress", *args]) == 0
    with monkeypatch.context() as m:
        _full_disk_after(m, "accounting.json", 3)  # the checkpoint at step 15 cannot be written
        code = main(["train", "models/nano.toml", "--out", str(tmp_path / "run"), "--no-progress", *args])
    assert code == 3
    assert "disk full" in capsys.readouterr().err
    run = tmp_path / "run"
    assert status(run) == "running"
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [5, 10]
    _arrays(run, 10)  # the last good checkpoint restores
    assert main(["train", "models/nano.toml", "--out", str(run), "--no-progress", *args]) == 0
    assert loss_lines(run) == loss_lines(tmp_path / "ref")


def test_full_disk_stops_a_sweep_without_recording_errors(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, seeds=(0, 1))
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _full_disk_after(m, "accounting.json", 1)
        with pytest.raises(OSError) as e:
            launch(path, out, progress=False)
    assert e.value.errno == errno.ENOSPC
    assert {status(p) for p in (out / "runs").iterdir() if (p / "status.json").exists()} <= {"running"}
    assert not list((out / "runs").glob("*/lock"))  # claims released: a rerun takes them at once
    assert set(launch(path, out, progress=False).values()) == {"done"}


def test_a_packed_run_is_bitwise_the_same_whatever_it_is_packed_with(tiny, tmp_path):
    """Which runs share a pack depends on launcher races and kills; the result must not."""
    tok = tokenizers.WordTokenizer(sorted(set(TEXT.split())))

    def run(seed, name):
        cfg = tiny(train={"seed": seed})
        return trainer.prepare(cfg, tmp_path / name, TextSource(cfg, tok, TEXT), tok)

    trainer.train_runs([run(0, "a"), run(1, "b")], progress=False, evaluate=False, width=2)
    trainer.train_runs([run(2, "c"), run(0, "d")], progress=False, evaluate=False, width=2)  # other partner, other slot
    trainer.train_runs([run(0, "e")], progress=False, evaluate=False, width=2)  # a leftover: padded
    for other in ("d", "e"):
        assert loss_lines(tmp_path / other) == loss_lines(tmp_path / "a")
        for x, y in zip(_arrays(tmp_path / "a", 20), _arrays(tmp_path / other, 20)):
            assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_full_disk_inside_a_checkpoint_write_is_a_disk_full_error(tiny, tmp_path, monkeypatch):
    """However the checkpoint library reports it, a full disk during a save reads as ENOSPC."""
    import orbax.checkpoint as ocp

    real = ocp.CheckpointManager.save

    def save(self, step, *a, **k):
        if step == 10:
            raise ValueError("Error writing local file: No space left on device [tensorstore]")
        return real(self, step, *a, **k)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    with pytest.raises(OSError) as e:
        _train(tiny(), tmp_path / "run")
    assert e.value.errno == errno.ENOSPC and "checkpoint 10" in str(e.value)
    monkeypatch.undo()
    assert _train(tiny(), tmp_path / "run")["status"] == "done"
    _train(tiny(), tmp_path / "ref")
    assert loss_lines(tmp_path / "run") == loss_lines(tmp_path / "ref")


def test_a_launcher_log_line_is_one_flushed_write(monkeypatch):
    """`--workers` processes share one stdout: each log line must reach it as a single write
    followed by a flush, or another process's line can land inside it (seen in CI as
    'e2bec08fb13etraining 1 run(s): ...')."""
    from scaling import sweep

    calls = []

    class Out:
        def write(self, s):
            calls.append(("write", s))

        def flush(self):
            calls.append(("flush",))

    monkeypatch.setattr(sys, "stdout", Out())
    bar = sweep._sweep_bar(3, 0, enabled=False)
    sweep._say(bar, "training 1 run(s): abc")
    writes = [c for c in calls if c[0] == "write" and c[1]]
    assert writes == [("write", "training 1 run(s): abc\n")]
    assert calls[-1] == ("flush",)
