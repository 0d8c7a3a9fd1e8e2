"""`scaling verify`: a consistent sweep passes; each injected inconsistency is found, named,
and given the command that repairs it (exit 1)."""

import json
import shutil

import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling.cli import main
from scaling.results import collect, results_table
from scaling.sweep import launch
from scaling.verify import duplicate_rows

SWEEP = tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.1]\n', train={"steps": 10, "eval_every": 5})


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    (tmp / "s.toml").write_text(SWEEP)
    launch(tmp / "s.toml", tmp / "out", progress=False)
    collect(tmp / "out")
    return tmp / "out"


def copy(sweep_dir, tmp_path):
    shutil.copytree(sweep_dir, tmp_path / "out")
    out = tmp_path / "out"
    runs = sorted((out / "runs").iterdir())
    return out, runs


def verify(path, capsys):
    code = main(["verify", str(path)])
    return code, capsys.readouterr().out


def test_consistent_sweep_and_run_pass(sweep_dir, capsys):
    assert verify(sweep_dir, capsys)[0] == 0
    run = next((sweep_dir / "runs").iterdir())
    code, text = verify(run, capsys)
    assert code == 0 and "consistent" in text
    assert main(["verify", str(sweep_dir / "nothing")]) == 2


def _edit_json(path, **changes):
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))


def _flip(step_dir):
    big = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0x01
    big.write_bytes(bytes(data))


INJECTIONS = {
    "lost last checkpoint": (lambda out, r: shutil.rmtree(r / "checkpoints" / "10"), "latest checkpoint is step 5"),
    "run dir renamed": (lambda out, r: r.rename(r.with_name("0123456789ab")), "config hash does not match"),
    "accounting dose edited": (lambda out, r: _edit_json(r / "accounting.json", dose=0.5), "dose 0.5 !="),
    "accounting step behind": (lambda out, r: _edit_json(r / "accounting.json", steps=5), "accounting.json is of step 5"),
    "metrics line lost": (lambda out, r: (r / "metrics.jsonl").write_text(
        "".join(x + "\n" for x in (r / "metrics.jsonl").read_text().splitlines() if '"step": 3,' not in x)),
        "1 missing"),
    "metrics line cut": (lambda out, r: (r / "metrics.jsonl").write_text(
        (r / "metrics.jsonl").read_text()[:-20]), "unreadable line"),
    "status error": (lambda out, r: _edit_json(r / "status.json", status="error", reason="boom"), "--retry-errors"),
    "killed mid-run": (lambda out, r: _edit_json(r / "status.json", status="running", step=5), "interrupted"),
    "config cut": (lambda out, r: (r / "config.json").write_text('{"config": {"mod'), "config.json damaged"),
    "results edited": (lambda out, r: (out / "results.csv").write_text(
        (out / "results.csv").read_text().replace("not evaluated", "ok", 1)), "results.csv: differs"),
    "results missing": (lambda out, r: (out / "results.csv").unlink(), "results.csv: missing"),
    "run never started": (lambda out, r: shutil.rmtree(r), "not started"),
    "checkpoint bit flipped": (lambda out, r: _flip(r / "checkpoints" / "10"), "checkpoint 10 differs from the sha256"),
}


@pytest.mark.parametrize("name", INJECTIONS)
def test_injected_inconsistency_is_found(sweep_dir, tmp_path, capsys, name):
    out, runs = copy(sweep_dir, tmp_path)
    inject, expected = INJECTIONS[name]
    inject(out, runs[-1])
    code, text = verify(out, capsys)
    assert code == 1, text
    assert expected in text, text
    assert "to repair, run:" in text


# Evaluated runs: results.csv holds a row per (run, split, model), the transformer's and the
# counting baselines'.
EVALUATED = tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.1]\n', train={"steps": 10, "eval_every": 5},
                       eval={"enabled": True, "max_items": 96})


@pytest.fixture(scope="module")
def evaluated_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify_eval")
    (tmp / "s.toml").write_text(EVALUATED)
    launch(tmp / "s.toml", tmp / "out", progress=False)
    collect(tmp / "out")
    return tmp / "out"


def test_sweep_with_baselines_passes(evaluated_dir, capsys):
    """Several models per (run, split) are not duplicates (a (run, split) key reported them)."""
    df = results_table(evaluated_dir)
    assert df.groupby(["run_id", "split"]).size().min() >= 4  # the transformer and ngram-1..3
    assert set(df["learner"]) >= {"transformer", "ngram"}
    code, text = verify(evaluated_dir, capsys)
    assert code == 0, text


def test_true_duplicate_row_is_reported(evaluated_dir):
    df = results_table(evaluated_dir)
    assert duplicate_rows(df, evaluated_dir) == []
    row = df[df["learner"] == "ngram"].iloc[[0]].copy()
    row["misaligned"] += 1  # a second, different evaluation of the same run, model and split
    findings = duplicate_rows(pd.concat([df, row]), evaluated_dir)
    assert len(findings) == 1 and findings[0].inconsistent
    assert f"model {row['model'].iloc[0]}" in findings[0].problem and "2 rows" in findings[0].problem
    another_model = row.assign(model="ngram-9")  # a row told apart by one identifying column
    assert duplicate_rows(pd.concat([df, another_model]), evaluated_dir) == []
