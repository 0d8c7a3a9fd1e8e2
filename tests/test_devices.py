import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling import devices
from scaling.errors import ConfigError, UsageError

HERE = Path(__file__).parent


def test_padded_runs_fill_every_device():
    assert [devices.padded_runs(k, 8) for k in (1, 3, 8, 9, 32)] == [8, 8, 8, 16, 32]
    assert devices.pad_runs(["a", "b"], 4) == ["a", "b", "b", "b"]


def test_collectives_are_found_in_hlo_text():
    text = "%all-reduce.3 = f32[4]{0} all-reduce(f32[4]{0} %x), replica_groups={{0,1}}"
    assert devices.collectives(text) == ["all-reduce"]
    assert devices.collectives("%fusion.1 = f32[4]{0} fusion(f32[4]{0} %all-reduce.3)") == []
    assert devices.collectives("%ag = f32[8] all-gather-start(f32[4] %x)") == ["all-gather"]


def test_bad_parallel_settings_are_named(monkeypatch):
    cpus = [object()] * 4  # placement only counts devices before building a mesh
    monkeypatch.setenv("SCALING_PARALLEL", "sideways")
    with pytest.raises(UsageError, match="SCALING_PARALLEL"):
        devices.placement(32, 1, cpus)
    monkeypatch.setenv("SCALING_PARALLEL", "data")
    with pytest.raises(ConfigError, match="train.batch_size"):
        devices.placement(30, 1, cpus)
    with pytest.raises(UsageError, match="--pack 1"):
        devices.placement(32, 4, cpus)
    monkeypatch.setenv("SCALING_PARALLEL", "runs")
    assert devices.placement(32, 1, cpus) is None  # a lone run: nothing to spread
    monkeypatch.setenv("SCALING_PARALLEL", "auto")
    assert devices.placement(30, 1, cpus) is None  # uneven batch: one device, no error
    assert devices.placement(32, 1, cpus[:1]) is None


def test_distributed_request_reads_the_environment():
    assert devices.distributed_request({}) is None
    assert devices.distributed_request({"SLURM_NTASKS": "1", "SLURM_STEP_ID": "0"}) is None
    assert devices.distributed_request({"SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"}) == {}
    assert devices.distributed_request({"TPU_WORKER_HOSTNAMES": "a,b"}) == {}
    assert devices.distributed_request({"TPU_WORKER_HOSTNAMES": "a"}) is None
    env = {"SCALING_NUM_PROCESSES": "2", "SCALING_PROCESS_ID": "1"}
    assert devices.distributed_request(env, "h:1234") == {
        "coordinator_address": "h:1234", "num_processes": 2, "process_id": 1}
    with pytest.raises(UsageError, match="SCALING_PROCESS_ID"):
        devices.distributed_request({"SCALING_NUM_PROCESSES": "2", "SCALING_PROCESS_ID": "2"}, "h:1")
    with pytest.raises(UsageError, match="SCALING_NUM_PROCESSES"):
        devices.distributed_request({}, "h:1")


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
    root = tmp_path_factory.mktemp("multidevice")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    proc = subprocess.run([sys.executable, str(HERE / "multidevice_worker.py"), str(root)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_packed_runs_on_8_devices_equal_one_device_without_communication(eight_devices):
    r = eight_devices
    assert r["device_count"] == 8
    (loss1, params1), (loss8, params8) = r["packed_one"], r["packed_mesh"]
    assert len(loss8) == 3 and all(len(x) == 10 for x in loss8)
    np.testing.assert_allclose(loss8, loss1, rtol=1e-5, atol=1e-6)
    for a, b in zip(params1, params8):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-6)
    assert r["packed_hlo"] == {"kind": "runs", "collectives": [], "slots": 8, "n_devices": 8}
    b = r["bench"]  # `scaling bench --pack` places runs as training does; counts the 3 real runs
    assert (b["devices"], b["placement"], b["pack"]) == (8, "runs", 3) and b["tokens_per_s"] > 0


@pytest.mark.slow
def test_data_parallel_on_8_devices_equals_one_device(eight_devices):
    r = eight_devices
    (loss1, params1), (loss8, params8) = r["data_one"], r["data_mesh"]
    np.testing.assert_allclose(loss8, loss1, rtol=1e-5, atol=1e-6)
    for x, y in zip(params1[0], params8[0]):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-6)
    # the gradient all-reduce is what data parallelism is: the checker sees it
    assert r["data_hlo"]["kind"] == "data" and "all-reduce" in r["data_hlo"]["collectives"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_job_trains_like_one_process():
    """Two local processes form one JAX job (jax.distributed.initialize from the environment)
    and train one run data-parallel over both; the losses equal a single-process run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    for key in ("SCALING_COORDINATOR", "SCALING_NUM_PROCESSES", "SCALING_PROCESS_ID"):
        env.pop(key, None)
    worker = [sys.executable, str(HERE / "multihost_worker.py")]
    job = {**env, "SCALING_COORDINATOR": f"127.0.0.1:{_free_port()}", "SCALING_NUM_PROCESSES": "2"}
    procs = [subprocess.Popen(worker, env={**job, "SCALING_PROCESS_ID": str(i)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    two = json.loads(outs[0][0].strip().splitlines()[-1])
    assert (two["process_count"], two["device_count"], two["local_device_count"], two["kind"]) == \
        (2, 4, 2, "data")
    single = subprocess.run(worker, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    one = json.loads(single.stdout.strip().splitlines()[-1])
    assert (one["process_count"], one["kind"]) == (1, None)
    assert len(two["losses"]) == 10
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5, atol=1e-6)
