"""scaling.io: whole-file writes, forgiving reads, checkpoint sums, run status."""

import hashlib
import json
import os

import pytest

from scaling import io


def test_replacing_writes_whole_files_and_leaves_no_debris(tmp_path):
    path = tmp_path / "a.json"
    io.write_json(path, {"b": 1, "a": [2.5]})
    assert path.read_text() == json.dumps({"a": [2.5], "b": 1}, indent=2, sort_keys=True)
    io.write_text(path, "new")
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError), io.replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "new"  # the old file stays whole
    assert os.listdir(tmp_path) == ["a.json"]  # and the temporary one is gone
    with io.replacing(tmp_path / "f.png", suffix=".png") as tmp:
        assert tmp.name.endswith(".png") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "f.png").read_bytes() == b"x"


def test_reads_tell_missing_from_damaged(tmp_path):
    assert io.read_json_why(tmp_path / "none.json") == (None, "missing")
    (tmp_path / "bad.json").write_text('{"status": ')
    obj, why = io.read_json_why(tmp_path / "bad.json")
    assert obj is None and why.startswith("damaged (JSONDecodeError")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe")
    assert io.read_json(tmp_path / "bytes.json") is None
    (tmp_path / "log.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')  # a line cut by a kill
    assert io.read_jsonl(tmp_path / "log.jsonl") == [{"step": 1}, {"step": 2}]
    assert io.read_jsonl(tmp_path / "no.jsonl") == []


def test_run_status(tmp_path):
    assert io.run_status(tmp_path) == "pending" and io.read_status(tmp_path) == {}
    (tmp_path / "status.json").write_text("[1, 2]")  # not a table
    assert io.run_status(tmp_path) == "pending"
    (tmp_path / "status.json").write_text('{"status": "done", "step": 7}')
    assert io.run_status(tmp_path) == "done" and io.read_status(tmp_path)["step"] == 7


def test_checkpoint_sums(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "x").write_bytes(b"abc")
    (tmp_path / "y").write_bytes(b"")
    assert io.checkpoint_sums(tmp_path) == {"d/e/x": hashlib.sha256(b"abc").hexdigest(),
                                           "y": hashlib.sha256(b"").hexdigest()}
