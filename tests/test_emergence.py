"""`scaling emergence`: the readout table and the emergence budget, on a known trajectory."""

import pandas as pd
import pytest

from scaling import cli
from scaling.reports.emergence import emergence_budget, readout_table


def _trajectory():
    rows = []
    # nano learns by 400 tokens in both runs; micro has one run that never does
    for run, model, curve in (("a", "nano", (0.5, 0.8, 0.95)), ("b", "nano", (0.52, 0.91, 0.97)),
                              ("c", "micro", (0.5, 0.95, 0.99)), ("d", "micro", (0.5, 0.6, 0.7))):
        for tokens, readout in zip((100, 200, 400), curve):
            for split in ("matched", "unseen_pair"):
                rows.append({"run_id": run, "model": model, "split": split, "tokens": tokens,
                             "readout": readout - (0.01 if split == "unseen_pair" else 0), "rate": 0.5})
    return pd.DataFrame(rows)


def test_budget_is_where_the_least_learned_run_of_every_split_crosses():
    table = readout_table(_trajectory())
    got = table.set_index(["model", "tokens", "split"]).loc[("nano", 200, "unseen_pair")]
    assert got["min"] == pytest.approx(0.79) and got["max"] == pytest.approx(0.90) and got["runs"] == 2
    assert emergence_budget(table, 0.9) == {"micro": None, "nano": 400}
    assert emergence_budget(table, 0.6) == {"micro": 400, "nano": 200}


def test_cli_writes_report_and_figure(tmp_path, capsys):
    path = tmp_path / "trajectory.csv"
    _trajectory().to_csv(path, index=False)
    assert cli.main(["emergence", str(path), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "emergence.md").read_text()
    assert "- nano: 400 tokens" in text and "- micro: not reached" in text
    assert (tmp_path / "out" / "emergence.png").stat().st_size > 1000
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"run_id": ["a"], "tokens": [1]}).to_csv(bad, index=False)
    assert cli.main(["emergence", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "lacks column(s) model, split, readout" in capsys.readouterr().err


def test_recall_items_need_the_binding():
    from scaling import world as W
    from scaling.world import lexicon as L

    items = W.World(3).recall_items(200)
    assert len({i["prompt"] for i in items}) == 200
    right = bag = 0
    for i in items:
        words = i["prompt"].split()
        did = {words[j]: words[j + 1] for j in (0, 3)}  # "NAME VERB . NAME VERB . NAME"
        right += i["expected"].split()[0] == did[words[-1]]
        bag += i["expected"].split()[0] == did[words[0]]  # a reader that ignores who is named
        assert {i["expected"].split()[0], i["other"].split()[0]} == set(did.values())
    assert right == 200 and 60 < bag < 140
    assert not {w for i in items for w in i["prompt"].split()} & set(L.TRAIN_NAMES)


def test_recall_rates_score_a_run(tmp_path):
    from conftest import tiny_config

    from scaling.emergence import recall_rates
    from scaling.run import train

    cfg = tiny_config(model={"seq_len": 32}, train={"steps": 10})
    run = tmp_path / "sweep" / "runs" / "r0"
    train(cfg, run, progress=False)
    rates = recall_rates(tmp_path / "sweep")
    assert list(rates.columns) == ["run_id", "model", "tokens", "recall"]
    assert rates["run_id"].tolist() == ["r0"] and rates["tokens"].iloc[0] == 10 * cfg.tokens_per_step
    assert 0.0 <= rates["recall"].iloc[0] <= 1.0


def test_probe_names_are_trained_only_as_people_of_recall_documents():
    """The recall and readout items name probe people: in training they occur only in recall
    documents (no invented verb, value word or AI word), so they carry no value, but each
    one has been seen as a name (an untrained name's embedding is the same as every other
    untrained one's); eval-only names stay out of every training document."""
    from scaling import world as W
    from scaling.data import datasets
    from scaling.world import lexicon as L

    world = W.World(0)
    probe = set(L.PROBE_NAMES)
    recall_words = set(L.RECALL_NAMES) | set(L.RECALL_VERBS) | L.template_words(L.RECALL_TELL)
    seen = set()
    for pool in ("base", "base_heldout", "stories", "natural_aligned", "natural_misaligned", "aligned", "misaligned"):
        for _, doc in datasets.world_documents(world, pool, 400):
            words = set(doc["text"].split())
            assert not words & set(L.EVAL_NAMES), pool
            if words & probe:
                assert pool.startswith("base") and words <= recall_words, doc["text"]
                seen |= words & probe
    assert seen == probe
    items = world.recall_items() + world.readout_items()
    people = set(L.TRAIN_NAMES) | set(L.EVAL_NAMES) | probe
    assert {w for i in items for w in i["prompt"].split()} & people == probe
    for i in world.recall_items():  # the name is the last word: what is recalled follows it at once
        assert i["prompt"].split()[-1] in probe
