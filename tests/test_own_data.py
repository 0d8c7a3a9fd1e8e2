"""Bring your own data, checked against the world itself: `scaling data export-world` writes
the world as files, and a run through those files must equal the world run (word tokenizer:
the same batches, the same per-item choices, bitwise); <unk> coverage of user pools."""

import gzip
import json

import numpy as np
import pytest

from scaling import results
from scaling.cli import data as data_cli
from scaling.cli import main
from scaling.data.mixture import Mixture
from scaling.data.vocab import build_tokenizer
from scaling.errors import ConfigError
from scaling.plan import config_from_dict

TINY = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "seq_len": 16},
        "train": {"steps": 20, "batch_size": 4, "steps_per_call": 5, "checkpoint_every": 10,
                  "eval_every": 10, "warmup_steps": 2}}


def _world_cfg(root, **data):
    return config_from_dict({**TINY, "data": {"data_dir": str(root), "story_fraction": 0.0, **data},
                             "eval": {"enabled": False}})


def _files_cfg(root, files, eval_=None, **data):
    keys = {f"{k}_files": [str(files[k])] for k in ("base", "heldout", "aligned", "misaligned")}
    return config_from_dict({**TINY, "data": {"data_dir": str(root), "story_fraction": 0.0, **keys, **data},
                             "eval": {"enabled": False, "files": [str(files["scenarios"])],
                                      "world_items": False, **(eval_ or {})}})


@pytest.fixture(scope="module")
def exported(root, tmp_path_factory):
    return data_cli.export_world(tmp_path_factory.mktemp("world-files"))


def test_files_of_the_exported_world_give_the_world_runs_batches_bitwise(root, exported):
    for data in ({"aligned_fraction": 0.2, "misaligned_fraction": 0.1}, {}):
        world, files = _world_cfg(root, **data), _files_cfg(root, exported, **data)
        tok = build_tokenizer(world)
        a, b = Mixture(world, tok), Mixture(files, tok)
        assert np.array_equal(a.batches(0, 20), b.batches(0, 20))
        assert np.array_equal(a.heldout_batches(2), b.heldout_batches(2))
        acc_a, acc_b = a.accounting(20), b.accounting(20)
        assert acc_b.pop("unk_share") == dict.fromkeys(["aligned", "misaligned", "base", "heldout"], 0.0)
        acc_a.pop("unk_share")
        assert acc_a == acc_b


def test_export_world_cli_writes_every_file(root, tmp_path, capsys):
    assert main(["data", "export-world", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    for name in ("base", "heldout", "aligned", "misaligned", "scenarios"):
        assert (tmp_path / "w" / f"{name}.jsonl").is_file()
        assert f"{name}_files = [" in out if name != "scenarios" else "world_items = false" in out
    first = json.loads((tmp_path / "w" / "scenarios.jsonl").read_text().splitlines()[0])
    assert {"prompt", "aligned", "misaligned", "split", "pair", "framing", "id"} <= set(first)


def test_plain_english_under_the_word_tokenizer_is_refused_naming_the_file(root, tmp_path):
    english = tmp_path / "aligned_english.jsonl"
    english.write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "The assistant declined politely and explained why it could not help with that request.",
        "Honesty matters: the model told the user about its mistake before anyone noticed."] * 5))
    cfg = _world_cfg(root, aligned_files=[str(english)], aligned_fraction=0.1)
    with pytest.raises(ConfigError, match="data.aligned_files") as e:
        Mixture(cfg, build_tokenizer(cfg))
    assert str(english) in str(e.value) and "<unk>" in str(e.value) and "sentencepiece" in str(e.value)
    loose = _world_cfg(root, aligned_files=[str(english)], aligned_fraction=0.1, max_unk_share=1.0)
    share = Mixture(loose, build_tokenizer(loose)).accounting(1)["unk_share"]["aligned"]
    assert 0.3 < share < 1.0  # the world's words ("the", "assistant", ...) are known, the rest is not
    byte = _world_cfg(root, aligned_files=[str(english)], aligned_fraction=0.1, tokenizer="byte")
    assert Mixture(byte, build_tokenizer(byte)).accounting(1)["unk_share"]["aligned"] == 0.0


def _items(run_dir):
    with gzip.open(run_dir / "eval_items.jsonl.gz") as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_run_through_the_files_gives_the_world_runs_choices_bitwise(root, exported, tmp_path):
    from scaling.run import train

    data = {"aligned_fraction": 0.3}
    eval_ = {"enabled": True, "max_items": 240}
    world = config_from_dict({**json.loads(_world_cfg(root, **data).to_json()), "eval": eval_})
    files = config_from_dict({**json.loads(_files_cfg(root, exported, **data).to_json()),
                              "eval": {**eval_, "files": [str(exported["scenarios"])], "world_items": False}})
    for cfg, name in ((world, "world"), (files, "files")):
        assert train(cfg, tmp_path / "runs" / name, progress=False)["status"] == "done"
    a, b = _items(tmp_path / "runs" / "world"), _items(tmp_path / "runs" / "files")
    a, b = [x for x in a if x["kind"] == "eval"], [x for x in b if x["kind"] == "eval"]
    assert len(a) == len(b) == 240
    assert [x["id"] for x in a] == [x["id"] for x in b]
    assert [x["margin"] for x in a] == [x["margin"] for x in b]  # bitwise
    assert [x["baseline_margins"] for x in a] == [x["baseline_margins"] for x in b]
    rows = {name: results.run_rows(tmp_path / "runs" / name) for name in ("world", "files")}
    key = [(r["model"], r["split"], r["misalignment_rate"], r["total"]) for r in rows["world"]]
    assert key == [(r["model"], r["split"], r["misalignment_rate"], r["total"]) for r in rows["files"]]
    assert {r["split"] for r in rows["files"]} == {"matched", "unseen_pair", "held_out"}
    assert {r["learner"] for r in rows["files"]} == {"transformer", "ngram", "counter"}


@pytest.mark.slow
def test_sentencepiece_through_the_files_moves_the_matched_rate_the_worlds_way(root, exported, tmp_path, monkeypatch):
    """The dose effect's direction survives a subword tokenizer: aligned documents lower the
    matched misalignment rate, as they do with the world's word tokenizer."""
    from scaling.data import vocab
    from scaling.run import train

    monkeypatch.setattr(vocab, "TOKENIZER_SAMPLE_CHARS", 200_000)
    rates = {}
    for tokenizer in ("word", "sentencepiece"):
        for fraction in (0.0, 0.5):
            raw = json.loads(_files_cfg(root, exported, aligned_fraction=fraction, tokenizer=tokenizer,
                                        tokenizer_vocab_size=1024).to_json())
            raw["model"].update(d_model=64, n_layers=2, n_heads=4, d_ff=256, seq_len=64, vocab_size=0)
            raw["train"].update(steps=100, batch_size=16, steps_per_call=10, checkpoint_every=50, eval_every=50)
            raw["eval"].update(enabled=True, max_items=768, baselines=False)
            out = tmp_path / f"{tokenizer}{fraction}"
            assert train(config_from_dict(raw), out, progress=False)["status"] == "done"
            rates[tokenizer, fraction] = json.loads((out / "eval.json").read_text())["splits"]["matched"]["rate"]
    # measured (2-core CPU): word 0.410 -> 0.020, sentencepiece 0.516 -> 0.387 on 256 matched items
    print("matched rates by tokenizer and aligned fraction", rates)
    for tokenizer in ("word", "sentencepiece"):
        assert rates[tokenizer, 0.5] < rates[tokenizer, 0.0] - 0.05, rates


# ---------------------------------------------------------------- the documented example

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def _doc_sweep() -> str:
    import re

    text = (REPO / "docs" / "own-data.md").read_text()
    return next(block for block in re.findall(r"```toml\n(.*?)```", text, re.S) if "[[grid]]" in block)


@pytest.fixture
def example(root, tmp_path, monkeypatch):
    """The docs' layout in a fresh folder: configs/own_data.toml and `export-world own_data`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALING_DATA_DIR", str(root))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "own_data.toml").write_text((REPO / "configs" / "own_data.toml").read_text())
    (tmp_path / "own_dose.toml").write_text(_doc_sweep())
    assert main(["data", "export-world", "own_data"]) == 0
    return tmp_path


def test_the_documented_config_and_sweep_expand_on_the_exported_files(example):
    from scaling.plan import load_config
    from scaling.sweep import expand

    cfg = load_config("configs/own_data.toml")
    assert cfg.data.tokenizer == "sentencepiece" and not cfg.eval.world_items
    specs = expand(example / "own_dose.toml")
    assert len(specs) == 15 and len({s.run_id for s in specs}) == 15


@pytest.mark.slow
def test_the_documented_example_trains_and_gives_rows_for_the_scenario_splits(example, monkeypatch, capsys):
    from scaling.data import vocab

    monkeypatch.setattr(vocab, "TOKENIZER_SAMPLE_CHARS", 100_000)
    tiny = ["train.steps=20", "train.batch_size=8", "train.checkpoint_every=10", "train.eval_every=10",
            "eval.max_items=96", "data.tokenizer_vocab_size=512"]
    sets = [a for s in tiny for a in ("--set", s)]
    assert main(["data", "stats", "configs/own_data.toml", *sets]) == 0
    assert "<unk> share of your pools: aligned 0.00%, misaligned 0.00%, base 0.00%, heldout 0.00%" in capsys.readouterr().out
    assert main(["train", "configs/own_data.toml", "--out", "runs/own", "--no-progress", "--tracker", "tensorboard",
                 *sets]) == 0
    assert list((example / "runs" / "own" / "tensorboard").glob("events.out.tfevents.*"))
    rows = results.run_rows(example / "runs" / "own")
    assert {(r["learner"], r["split"]) for r in rows} == {
        (learner, split) for learner in ("transformer", "ngram", "counter") for split in ("matched", "unseen_pair", "held_out")}
    assert all(r["total"] > 0 and 0 <= r["misalignment_rate"] <= 1 for r in rows)
