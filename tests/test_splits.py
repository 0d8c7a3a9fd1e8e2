"""The eval splits, declared once in scaling.splits and read everywhere else."""

import math

import pandas as pd
import pytest

from scaling import splits
from scaling.cli import main
from scaling.data import scenarios
from scaling.results import COLUMNS
from scaling.world import World


def test_the_world_draws_each_split_from_its_declared_pairs_and_families():
    world = World(0)
    assert [s.name for s in splits.WORLD] == list(splits.SPLITS) == ["matched", "unseen_pair", "held_out"]
    for s in splits.WORLD:
        assert world.pairs(s.name) == (world.matched_pairs if s.pairs == "matched" else world.transfer_pairs)
        assert world.families(s.name) == (world.held_out if s.families == "held_out" else world.matched)
        assert s.transfer == (s.pairs == "transfer")  # a transfer split's verbs are in no AI document
    assert splits.TRANSFER == ("unseen_pair", "held_out") and splits.MAIN == "matched"
    items = world.eval_items()
    for s in splits.WORLD:
        mine = [i for i in items if i["split"] == s.name]
        assert {i["family"] for i in mine} == set(world.families(s.name))
    with pytest.raises(KeyError, match="unknown split 'typo'"):
        world.pairs("typo")


def test_order_puts_the_worlds_first_then_the_others_as_found():
    assert splits.order(["custom", "held_out", "zeta", "matched", "alpha", "custom"]) == [
        "matched", "held_out", "custom", "zeta", "alpha"]
    assert scenarios.split_order(["b", "unseen_pair", "a"]) == ["unseen_pair", "b", "a"]
    assert [splits.rank(s) for s in ("matched", "unseen_pair", "held_out", "custom")] == [0, 1, 2, 3]
    assert splits.style("held_out") == ("s", ":") and splits.style("custom") == splits.OTHER_STYLE


def test_unknown_names_what_no_source_brings():
    rows = [("matched", math.nan), ("rl_other", ""), ("mine", "eval.files=/x/s.jsonl"), ("typo", math.nan),
            ("", "data.base_files=/x/b.jsonl"), ("typo", "")]
    assert splits.unknown(rows) == ["typo", ""]


def _results(tmp_path, split, input_files):
    rows = [{c: math.nan for c in COLUMNS} | {"run_id": f"r{i}", "split": s, "arm": "dose", "status": "ok",
                                              "dose": 0.01, "input_files": input_files}
            for i, s in enumerate(("matched", split))]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "results.csv", index=False)


def test_figures_refuse_a_split_no_source_brings(tmp_path, capsys):
    _results(tmp_path, "unseen_pairs", math.nan)
    assert main(["figures", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'unseen_pairs'" in err and "unknown split" in err
    assert not (tmp_path / "figures").exists()


def test_figures_take_a_scenario_files_own_split(tmp_path, capsys):
    _results(tmp_path, "custom", "eval.files=/data/scenarios.jsonl")
    assert main(["figures", str(tmp_path)]) == 0
    assert "unknown split" not in capsys.readouterr().err
