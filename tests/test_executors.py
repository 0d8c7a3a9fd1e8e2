import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling import executors
from scaling.cli import main
from scaling.errors import UsageError

HERE = Path(__file__).parent
# Two runs of the tiny model: enough to cut into two shards.
SWEEP = tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.1]\n', train={"steps": 10, "eval_every": 5})
TIMING = []  # results.csv has no wall-clock columns today; listed here if one is added


def _sweep(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SWEEP)
    return path


def _rows(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "results.csv").drop(columns=TIMING)
    return df.sort_values(["run_id", "split"]).reset_index(drop=True)


def _cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "scaling.cli", "sweep", *map(str, args), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=600)


def test_executor_options_are_checked_before_submission():
    assert executors.parse_options("ray", ["num_gpus=0.25", "address=auto"]) == {"num_gpus": 0.25, "address": "auto"}
    assert executors.parse_options("slurm", ["partition=gpu", "timeout_min=60"]) == {
        "partition": "gpu", "timeout_min": 60}
    with pytest.raises(UsageError, match="unknown for --executor ray"):
        executors.parse_options("ray", ["partition=gpu"])
    with pytest.raises(UsageError, match="num_gpus must be a number"):
        executors.parse_options("ray", ["num_gpus=-1"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        executors.parse_options("slurm", ["partition"])
    assert executors.default_tasks(12, 8) == 2 and executors.default_tasks(3, None) == 3


def test_sweep_rejects_shard_with_an_engine(tmp_path, capsys):
    code = main(["sweep", str(_sweep(tmp_path)), "--out", str(tmp_path / "o"), "--executor", "ray",
                 "--shard", "0/2"])
    assert code == 2 and "makes its own shards" in capsys.readouterr().err


def test_compile_cache_location(tmp_path, monkeypatch):
    monkeypatch.delenv("SCALING_COMPILE_CACHE", raising=False)
    assert executors.cache_dir(tmp_path) == (tmp_path / ".jax_cache").absolute()
    assert executors.cache_dir(tmp_path, "off") is None
    monkeypatch.setenv("SCALING_COMPILE_CACHE", str(tmp_path / "elsewhere"))
    assert executors.cache_dir(tmp_path) == tmp_path / "elsewhere"


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    out = tmp / "A"
    proc = _cli(_sweep(tmp), "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_ray_executor_equals_local_sweep(local_sweep, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "B"
    proc = _cli(_sweep(tmp_path), "--out", out, "--executor", "ray", "--tasks", "2",
                "--executor-opt", "num_cpus=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list((out / "runs").iterdir())) == 2
    pd.testing.assert_frame_equal(_rows(out), _rows(local_sweep))
    # a second submission finds every run finished and trains nothing
    mtimes = sorted(p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.jsonl"))
    assert _cli(_sweep(tmp_path), "--out", out, "--executor", "ray", "--tasks", "2").returncode == 0
    assert sorted(p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.jsonl")) == mtimes


@pytest.mark.slow
def test_slurm_executor_through_submitit_local_equals_local_sweep(local_sweep, tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "C"
    proc = _cli(_sweep(tmp_path), "--out", out, "--executor", "slurm", "--tasks", "2",
                "--executor-opt", "cluster=local", "--executor-opt", "timeout_min=10")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list((out / "slurm").iterdir())) >= 2  # one log folder per array task
    pd.testing.assert_frame_equal(_rows(out), _rows(local_sweep))


@pytest.mark.slow
def test_second_process_loads_the_compiled_step_from_the_cache(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    import json

    def compile_once():
        proc = subprocess.run([sys.executable, str(HERE / "compile_cache_worker.py"), str(tmp_path / "cache")],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first, second = compile_once(), compile_once()
    assert first["hits"] == 0 and first["misses"] >= 1
    assert second["misses"] == 0 and second["hits"] >= 1  # nothing compiled again
    assert any((tmp_path / "cache").iterdir())


def test_kubernetes_example_maps_the_completion_index_onto_shards():
    import re

    text = (HERE.parent / "deploy" / "k8s-indexed-job.yaml").read_text()
    assert "completionMode: Indexed" in text
    completions = re.search(r"completions:\s*(\d+)", text).group(1)
    shards = re.search(r"name: SHARDS\s+value: \"(\d+)\"", text).group(1)
    assert completions == shards  # shard i/N for i = 0..N-1 covers every run once
    assert '--shard "${JOB_COMPLETION_INDEX}/${SHARDS}"' in text
    sweep_file = re.search(r"scaling sweep (sweeps/\S+)", text).group(1)
    assert (HERE.parent / sweep_file).is_file()


def test_workers_are_launchers_of_the_same_shard(monkeypatch):
    started = []

    class Proc:
        def __init__(self, cmd):
            started.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(executors.subprocess, "Popen", Proc)
    shard = executors.Shard("s.toml", "out", ("train.steps=5",), pack=4, index=1, count=3)
    assert executors.start_workers(shard, 2, wait=False) == [0, 0]
    assert started == [[sys.executable, "-m", "scaling.cli", "sweep", "s.toml", "--out", "out", "--workers", "1",
                        "--no-results", "--no-progress", "--shard", "1/3", "--set", "train.steps=5", "--pack", "4",
                        "--no-wait"]] * 2
    with pytest.raises(UsageError, match="to submit"):
        executors.submit("local", None, shard, 3)
