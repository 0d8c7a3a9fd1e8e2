"""A run's identity covers the content of its input files (scaling.inputs)."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import tiny_sweep

from scaling import inputs
from scaling.cli import main
from scaling.sweep import expand, launch
from scaling.verify import verify

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_world_run_ids_hash_the_config_alone():
    """Runs without input files are named by the sha256 of the resolved config's identity (the
    keys away from their defaults) alone: no file digest enters."""
    specs = expand(ROOT / "sweeps" / "quickstart.toml")
    assert len(specs) == 12 and not any(inputs.digests(s.config) for s in specs)
    for s in specs:
        canonical = json.dumps(s.config.identity(), sort_keys=True, separators=(",", ":"))
        assert s.run_id == hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _docs(path: Path, word: str) -> Path:
    """Twenty aligned documents in the world's own words (the word tokenizer refuses a pool
    that is mostly <unk>)."""
    path.write_text("".join(json.dumps({"text": f"the assistant {word} the user"}) + "\n"
                            for _ in range(20)))
    return path


def _sweep(tmp_path: Path, aligned: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(tiny_sweep("""
[[grid]]
"data.aligned_fraction" = [0.2]
"train.seed" = [0, 1]
""", data={"story_fraction": 0.0, "aligned_files": [str(aligned)]}))
    return path


def test_digests_name_every_file_key_with_its_sha256(tmp_path):
    aligned = _docs(tmp_path / "a.jsonl", "helped")
    spec = expand(_sweep(tmp_path, aligned))[0]
    want = hashlib.sha256(aligned.read_bytes()).hexdigest()  # an independent hash of the bytes
    assert inputs.digests(spec.config) == [{"key": "data.aligned_files", "path": str(aligned), "sha256": want}]


def test_an_edited_file_means_new_run_ids_and_the_same_file_the_same(tmp_path):
    aligned = _docs(tmp_path / "a.jsonl", "helped")
    first = {s.run_id for s in expand(_sweep(tmp_path, aligned))}
    assert {s.run_id for s in expand(_sweep(tmp_path, aligned))} == first
    _docs(aligned, "shared")  # same length, same path, other content
    assert not first & {s.run_id for s in expand(_sweep(tmp_path, aligned))}


@pytest.mark.slow
def test_editing_an_input_file_retrains_and_verify_names_the_stale_runs(tmp_path, capsys):
    aligned = _docs(tmp_path / "a.jsonl", "helped")
    sweep, out = _sweep(tmp_path, aligned), tmp_path / "out"
    old = launch(sweep, out, progress=False)
    assert set(old.values()) == {"done"}
    assert main(["verify", str(out)]) == 1  # results.csv not written by launch: only that
    main(["results", str(out)])
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()

    _docs(aligned, "shared")
    new = launch(sweep, out, progress=False)
    assert set(new.values()) == {"done"} and not set(new) & set(old)  # trained again, as new runs
    record = json.loads((out / "runs" / next(iter(new)) / "config.json").read_text())
    assert record["inputs"][0]["sha256"] == hashlib.sha256(aligned.read_bytes()).hexdigest()
    main(["results", str(out)])
    df = pd.read_csv(out / "results.csv")
    by_run = df.groupby("run_id")["input_sha256"].first()
    assert by_run[list(new)].nunique() == 1 and by_run[list(old)].nunique() == 1
    assert by_run[list(new)].iloc[0] != by_run[list(old)].iloc[0]
    assert (df["input_files"] == f"data.aligned_files={aligned}").all()

    stale = {f.where for f in verify(out) if "input file edited" in f.problem}
    assert stale == set(old)
    assert main(["verify", str(out)]) == 1
    assert "content changed" in capsys.readouterr().out


@pytest.mark.slow
def test_train_refuses_a_run_directory_trained_on_other_content(tmp_path, capsys):
    aligned = _docs(tmp_path / "a.jsonl", "helped")
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\nstory_fraction = 0.0\naligned_fraction = 0.2\naligned_files = ["{aligned}"]\n'
                      "[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\nd_ff = 64\nseq_len = 16\n"
                      "[train]\nsteps = 5\nbatch_size = 4\nsteps_per_call = 5\ncheckpoint_every = 5\n"
                      "eval_every = 5\nwarmup_steps = 1\n[eval]\nenabled = false\n")
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    _docs(aligned, "shared")
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trained on other data" in err and str(aligned) in err
