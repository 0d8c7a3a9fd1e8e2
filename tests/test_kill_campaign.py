"""The kill campaign (benchmarks/kill_campaign.py): its comparison finds differences, and its
small version (one SIGKILL per stage: train, eval, sweep --workers 2 --pack 2, results, fit,
figures) ends with every artefact equal to the uninterrupted reference."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("kill_campaign", ROOT / "benchmarks" / "kill_campaign.py")
campaign = importlib.util.module_from_spec(spec)
spec.loader.exec_module(campaign)


def test_comparison_finds_every_kind_of_difference(tmp_path):
    ref, got = tmp_path / "ref", tmp_path / "got"
    for tree in (ref, got):
        (tree / "runs" / "a").mkdir(parents=True)
        (tree / "results.csv").write_text("run_id,dose\na,0.1\n")
        (tree / "runs" / "a" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0, "tokens_per_s": 5}) + "\n")
        (tree / "runs" / "a" / "eval.json").write_text(json.dumps({"rate": 0.5, "seconds": {"total": 1}}))
    assert campaign.compare_trees(ref, got)["mismatches"] == []
    (got / "runs" / "a" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0, "tokens_per_s": 9}) + "\n")
    (got / "runs" / "a" / "eval.json").write_text(json.dumps({"rate": 0.5, "seconds": {"total": 3}}))
    (got / "runs" / "a" / "lock.stale.1.2").write_text("{}")
    result = campaign.compare_trees(ref, got)
    assert result["mismatches"] == [] and result["debris"] == ["runs/a/lock.stale.1.2"]  # clocks, locks aside
    (got / "results.csv").write_text("run_id,dose\na,0.10000001\n")
    (got / "runs" / "a" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0000001}) + "\n")
    (got / "extra.png").write_bytes(b"x")
    (ref / "fit.json").write_text("{}")
    assert sorted(campaign.compare_trees(ref, got)["mismatches"]) == [
        "bytes differ: results.csv", "extra: extra.png", "lines differ: runs/a/metrics.jsonl", "missing: fit.json"]


@pytest.mark.slow
def test_small_kill_campaign_loses_nothing(tmp_path, capsys):
    code = campaign.main(["--work", str(tmp_path / "campaign"), "--small", "--seed", "3"])
    report = json.loads(capsys.readouterr().out)
    assert report["mismatch_list"] == []
    assert report["verify_problems"] == []  # scaling verify holds on the killed study's directory
    assert code == 0
    assert report["kills"] >= 4 and report["artefacts_compared"] > 40
