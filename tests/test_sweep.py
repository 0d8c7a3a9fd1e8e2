import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling.cli import main
from scaling.errors import ConfigError
from scaling.rundir import load_params
from scaling.sweep import expand, launch, run_id

TINY = tiny_sweep()


def write_sweep(tmp_path, grid: str, name="s.toml") -> Path:
    path = tmp_path / name
    path.write_text(TINY + grid)
    return path


GRID = """
[[grid]]
"data.aligned_fraction" = [0.0, 0.1]
"train.seed" = [0, 1]
"""


def test_grid_zip_exclude_and_union(tmp_path):
    path = write_sweep(tmp_path, """
[[grid]]
"data.aligned_fraction" = [0.0, 0.01, 0.1]
"train.seed" = [0, 1]
zip = [{"data.insertion" = ["throughout", "finetune"], "data.finetune_tokens" = [0, 640]}]
exclude = [{"data.insertion" = "finetune", "data.aligned_fraction" = 0.0}]
[[grid]]
"data.filter_misaligned" = [0.5]
"train.seed" = [0, 1]
""")
    specs = expand(path)
    assignments = [s.assignment for s in specs]
    assert len(specs) == 3 * 2 * 2 - 2 + 2
    assert all(not (a.get("data.insertion") == "finetune" and a.get("data.aligned_fraction") == 0.0)
               for a in assignments)
    fine = [s for s in specs if s.config.data.insertion == "finetune"]
    assert all(s.config.data.finetune_tokens == 640 for s in fine)  # zipped, not crossed
    assert len({s.run_id for s in specs}) == len(specs)


def test_run_ids_are_stable_and_config_sensitive(tmp_path):
    a = expand(write_sweep(tmp_path, GRID))
    b = expand(write_sweep(tmp_path, GRID, "t.toml"))
    assert [s.run_id for s in a] == [s.run_id for s in b]
    assert run_id(a[0].config) == a[0].run_id
    changed = expand(write_sweep(tmp_path, GRID, "u.toml"), ["train.lr=1e-4"])
    assert not {s.run_id for s in a} & {s.run_id for s in changed}


def test_invalid_run_anywhere_stops_before_training(tmp_path, capsys):
    path = write_sweep(tmp_path, """
[[grid]]
"data.aligned_fraction" = [0.0, 0.1, 1.5]
""")
    with pytest.raises(ConfigError, match=r"data.aligned_fraction=1.5.*data.aligned_fraction"):
        expand(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "aligned_fraction=1.5" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()


def test_dose_key_gives_equal_global_doses_across_windows(tmp_path):
    specs = expand(write_sweep(tmp_path, """
[[grid]]
"data.dose" = [0.01]
"data.insertion" = ["throughout", "midtraining", "finetune"]
"""))
    cfg = {s.config.data.insertion: s.config for s in specs}
    assert cfg["throughout"].data.aligned_fraction == pytest.approx(0.01)
    assert cfg["midtraining"].data.aligned_fraction == pytest.approx(0.1)  # a tenth of pretraining
    fine = cfg["finetune"].data
    assert fine.aligned_fraction == 1.0
    pre_tokens = 20 * 4 * 16
    assert fine.finetune_tokens / (pre_tokens + fine.finetune_tokens) == pytest.approx(0.01, rel=0.01)


def _statuses(out):
    return {p.name: json.loads((p / "status.json").read_text())["status"] for p in (out / "runs").iterdir()}


def _loss_lines(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    return [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in lines]  # wall clock differs


@pytest.mark.slow
def test_sweep_runs_skips_finished_and_writes_results(tmp_path):
    path = write_sweep(tmp_path, GRID)
    out = tmp_path / "out"
    assert set(launch(path, out, progress=False).values()) == {"done"}
    mtimes = {p: (p / "metrics.jsonl").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert set(launch(path, out, progress=False).values()) == {"done"}
    assert mtimes == {p: (p / "metrics.jsonl").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(["results", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 4 * 3 and set(df["split"]) == {"matched", "unseen_pair", "held_out"}
    assert set(df.loc[df["aligned_fraction"] == 0, "insertion"]) == {"control"}
    assert (df.loc[df["aligned_fraction"] == 0.1, "dose"] > 0).all()
    assert (df["total_tokens"] == 20 * 4 * 16).all()


def _launcher(path, out, *extra):
    cmd = [sys.executable, "-m", "scaling.cli", "sweep", str(path), "--out", str(out), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_concurrent_launchers_train_each_run_exactly_once(tmp_path):
    path, out = write_sweep(tmp_path, GRID), tmp_path / "out"
    # a plain launcher races a launcher with two worker processes: three claimants in all
    procs = [_launcher(path, out, "--no-results"), _launcher(path, out, "--no-results", "--workers", "2")]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    trained = [line.split(": ")[1] for log in logs for line in log.splitlines() if line.startswith("training")]
    assert sorted(trained) == sorted(s.run_id for s in expand(path))  # all runs, none twice
    for run_dir in (out / "runs").iterdir():
        assert [m["step"] for m in _loss_lines(run_dir)] == list(range(1, 21))


@pytest.mark.slow
def test_sigkill_of_launcher_then_rerun_matches_uninterrupted(tmp_path):
    path = write_sweep(tmp_path, GRID)
    assert _launcher(path, tmp_path / "a").wait(timeout=600) == 0
    proc = _launcher(path, tmp_path / "b")
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once the first run finished and the second started
        runs = tmp_path / "b" / "runs"
        if runs.exists() and sum((p / "checkpoints").exists() for p in runs.iterdir()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _launcher(path, tmp_path / "b").wait(timeout=600) == 0
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in "ab")
    pd.testing.assert_frame_equal(a, b)
    for run_dir in (tmp_path / "a" / "runs").iterdir():
        assert _loss_lines(run_dir) == _loss_lines(tmp_path / "b" / "runs" / run_dir.name)


@pytest.mark.slow
def test_packed_runs_equal_unpacked(tmp_path):
    path = write_sweep(tmp_path, GRID)
    launch(path, tmp_path / "one", pack=1, progress=False)
    launch(path, tmp_path / "four", pack=4, progress=False)
    for run_dir in (tmp_path / "one" / "runs").iterdir():
        other = tmp_path / "four" / "runs" / run_dir.name
        x, y = _loss_lines(run_dir), _loss_lines(other)
        # vmap turns matmuls into batched matmuls whose float32 summation order differs on CPU
        np.testing.assert_allclose([m["loss"] for m in x], [m["loss"] for m in y], rtol=1e-4)
        for p, q in zip(jax.tree.leaves(load_params(run_dir)[2]), jax.tree.leaves(load_params(other)[2])):
            np.testing.assert_allclose(p, q, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_shards_partition_the_runs(tmp_path):
    path = write_sweep(tmp_path, GRID)
    for i in range(2):
        launch(path, tmp_path / "out", shard=(i, 2), progress=False)
        if i == 0:
            assert len(list((tmp_path / "out" / "runs").iterdir())) == 2
    assert set(_statuses(tmp_path / "out").values()) == {"done"}
    assert len(_statuses(tmp_path / "out")) == 4
    assert os.path.exists(tmp_path / "out" / "sweep.json")


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parent.parent / "sweeps").glob("*.toml")))
def test_committed_sweeps_expand_into_valid_runs(name):
    specs = expand(Path(__file__).resolve().parent.parent / "sweeps" / name)
    assert specs and len({s.run_id for s in specs}) == len(specs)


def test_a_config_key_added_later_keeps_run_ids_and_resumes_old_run_directories(tmp_path):
    """A key at its default is not part of a run's identity: a run written before the key
    existed keeps its id and resumes; a changed value still refuses to mix checkpoints."""
    import dataclasses
    import json

    from scaling.config import Config
    from scaling.errors import ConfigError
    from scaling.rundir import check_run_dir, write_config

    assert Config().identity() == {}
    cfg = Config()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, aligned_fraction=0.01))
    assert cfg.identity() == {"data": {"aligned_fraction": 0.01}}
    write_config(tmp_path, cfg, 10)
    record = json.loads((tmp_path / "config.json").read_text())
    del record["config"]["data"]["control_tokens"]  # as written before the key existed
    (tmp_path / "config.json").write_text(json.dumps(record))
    assert check_run_dir(tmp_path, cfg) in ("new", "resume")
    other = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, control_tokens=0.5))
    with pytest.raises(ConfigError, match="control_tokens"):
        check_run_dir(tmp_path, other)


def test_a_run_trained_on_other_data_is_not_resumed(tmp_path):
    """A run directory records the data version it was trained on; this code's data for the
    same config is another version: resuming would mix two datasets' checkpoints."""
    import json

    from scaling.config import Config
    from scaling.errors import ConfigError
    from scaling.rundir import check_run_dir, write_config

    cfg = Config()
    write_config(tmp_path, cfg, 10)
    assert check_run_dir(tmp_path, cfg) == "resume"
    record = json.loads((tmp_path / "config.json").read_text())
    record["data_version"] = "3.0.0"
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="data version 3.0.0; this code generates 3.1.0"):
        check_run_dir(tmp_path, cfg)
