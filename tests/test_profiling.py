import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import pytest
from conftest import TextSource, tiny_sweep

from scaling import profiling
from scaling.cli import main


def test_compile_seconds_is_the_union_of_nested_spans_inside_the_window(monkeypatch):
    # spans in the order they end: an inner trace (2-3) ends before its outer compile (1-5)
    monkeypatch.setattr(profiling, "_spans", [(0.0, 0.5), (2.0, 3.0), (1.0, 5.0), (8.0, 9.0)])
    assert profiling.compile_seconds(0.0, 10.0) == pytest.approx(0.5 + 4.0 + 1.0)
    assert profiling.compile_seconds(2.5, 8.5) == pytest.approx(2.5 + 0.5)  # clipped to the window
    assert profiling.compile_seconds(5.0, 8.0) == 0.0


def test_clock_moves_a_phase_compile_time_into_compile():
    clock = profiling.Clock()
    x = jnp.arange(7.0)
    t0 = time.time()
    with clock.phase("evaluation"):
        jax.jit(lambda v: jnp.sin(v) * 3.25 + v)(x).block_until_ready()  # a fresh program: compiled
        time.sleep(0.2)
    wall = time.time() - t0
    assert clock.seconds["compile"] > 0.0
    assert clock.seconds["evaluation"] >= 0.2 - 1e-3
    # the two add up to the wall time around them (a loaded machine may add a little outside)
    assert wall - 0.05 <= clock.seconds["evaluation"] + clock.seconds["compile"] <= wall + 1e-6
    compiled, evaluated = clock.seconds["compile"], clock.seconds["evaluation"]
    with clock.phase("evaluation"):
        time.sleep(0.05)  # no compile this time: all of it stays in the phase
    assert clock.seconds["compile"] == compiled and clock.seconds["evaluation"] >= evaluated + 0.05 - 1e-3


def test_process_started_at_is_before_now():
    started = profiling.process_started_at()
    if started is None:
        pytest.skip("no /proc")
    assert 0 < time.time() - started < 3600 * 24


def test_packed_runs_split_the_shared_phases_so_their_timings_add_up_to_the_wall_time(tiny, tmp_path):
    from scaling import run as runner
    from scaling.data.tokenizer import ByteTokenizer
    from scaling.plan import with_tokenizer

    tok, text = ByteTokenizer(), "the quick brown fox jumps over the lazy dog . " * 200
    t0 = time.time()
    runs = []
    for seed in (0, 1):
        cfg = with_tokenizer(tiny(train={"seed": seed}), tok)
        runs.append(runner.prepare(cfg, tmp_path / str(seed), TextSource(cfg, tok, text), tok))
    statuses = runner.train_runs(runs, progress=False, width=2)
    wall = time.time() - t0
    timings = [s["timings"] for s in statuses]
    assert [t["runs_in_pack"] for t in timings] == [2, 2] and [t["steps"] for t in timings] == [20, 20]
    assert all(t["train_steps"] > 0 and t["checkpoints"] > 0 and t["compile"] > 0 for t in timings)
    assert timings[0]["train_steps"] == pytest.approx(timings[1]["train_steps"])  # one shared program
    both = sum(t[k] for t in timings for k in profiling.RUN_PHASES)
    assert both == pytest.approx(wall, abs=0.05 * wall + 0.05)
    assert json.loads((tmp_path / "0" / "status.json").read_text())["timings"] == timings[0]


@pytest.mark.slow
def test_study_profile_phases_cover_the_measured_wall_time(tmp_path, root, capsys):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.05, 0.3]\n',
                                data={"data_dir": str(root)}, eval={"enabled": True, "max_items": 64},
                                train={"steps": 20, "checkpoint_every": 10, "eval_every": 10}))
    out = tmp_path / "study"
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "scaling.cli", "study", str(sweep), "--out", str(out),
                           "--no-progress", "--profile"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    wall = time.time() - t0
    assert done.returncode == 0, done.stderr
    assert "where the time went" in done.stdout and "| train steps |" in done.stdout

    record = json.loads((out / "profile.json").read_text())
    rows = dict(record["rows"])
    assert record["runs"] == 3
    assert sum(rows.values()) == pytest.approx(record["total"], rel=1e-9)
    # the total is measured from the process start: the subprocess's own wall clock, less
    # interpreter teardown, and the phases leave little of it unattributed
    assert wall - 5.0 < record["total"] <= wall
    assert abs(rows["other"]) < 0.1 * record["total"]
    assert rows["train_steps"] > 0 and rows["evaluation"] > 0 and rows["baselines"] > 0
    assert rows["checkpoints"] > 0 and rows["figures"] > 0 and rows["process"] > 0

    for status_path in (out / "runs").glob("*/status.json"):
        status = json.loads(status_path.read_text())
        timings = status["timings"]
        assert status["status"] == "done" and timings["steps"] == 20 and timings["runs_in_pack"] == 1
        assert set(profiling.RUN_PHASES) <= set(timings)
        # one run, one process: its phases are its wall time (start-up to the status write)
        assert sum(timings[k] for k in profiling.RUN_PHASES) == pytest.approx(timings["wall"], abs=0.05)

    assert main(["profile", str(out)]) == 0  # the same table again, from the directory
    printed = capsys.readouterr().out
    assert f"| total (3 runs) | {record['total']:.1f} | 100% |" in printed


def test_profile_without_runs_is_a_usage_error(tmp_path):
    assert main(["profile", str(tmp_path)]) == 2
