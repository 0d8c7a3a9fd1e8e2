"""No silent fallback: where the data cannot support what would be printed, the package says
so or refuses, naming the column, key or flag, instead of quietly doing something else."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scaling.cli import main
from scaling.stats import FitWarning


def _table(rng, seeds=3, splits=("matched", "held_out")):
    rows = []
    for seed in range(seeds):
        for split in splits:
            for dose in (0.0, 0.001, 0.01, 0.1):
                p = 0.6 / (1 + dose / 0.01)
                rows.append({"dose": dose, "seed": seed, "split": split, "total": 200,
                             "misaligned": int(rng.binomial(200, p))})
    return pd.DataFrame(rows)


def _fit(csv, tmp_path, *flags):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return main(["fit", str(csv), "--out", str(tmp_path / "fit"), "--models", "LL.2", *flags])


def test_fit_refuses_a_table_without_seed_naming_the_column_and_flag(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    _table(np.random.default_rng(0)).drop(columns="seed").to_csv(csv, index=False)
    assert _fit(csv, tmp_path) == 2
    err = capsys.readouterr().err
    assert "'seed'" in err and "--blocks none" in err
    assert not (tmp_path / "fit").exists()
    assert _fit(csv, tmp_path, "--blocks", "none") == 0
    assert "--blocks none" in (tmp_path / "fit" / "fit.md").read_text()


def test_fit_refuses_a_seed_column_empty_on_some_rows(tmp_path, capsys):
    table = _table(np.random.default_rng(1))
    table["seed"] = table["seed"].astype(object)
    table.loc[[3, 7], "seed"] = None
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    assert _fit(csv, tmp_path) == 2
    err = capsys.readouterr().err
    assert "'seed' is empty on 2 row(s)" in err and "CSV lines 5, 9" in err


def test_fit_refuses_a_table_without_split_unless_pooling_is_asked(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    _table(np.random.default_rng(2), splits=("matched",)).drop(columns="split").to_csv(csv, index=False)
    assert _fit(csv, tmp_path) == 2
    err = capsys.readouterr().err
    assert "'split'" in err and "--pool-splits" in err
    assert _fit(csv, tmp_path, "--pool-splits") == 0
    with_split = tmp_path / "with_split.csv"
    _table(np.random.default_rng(2)).to_csv(with_split, index=False)
    assert _fit(with_split, tmp_path, "--pool-splits") == 2
    assert "held_out, matched" in capsys.readouterr().err



# ---------------------------------------------------------------- dose levels


def _two_asked_doses(rng):
    """Dose 0 and two asked doses, 3 seeds; each seed's measured dose differs a little (as
    stochastic rounding of rows makes it: 0.002969 vs 0.003021 for an asked 0.003)."""
    rows = []
    for seed in range(3):
        for asked in (0.0, 0.003, 0.03):
            measured = asked * (1 + 0.02 * (seed - 1))
            p = 0.2 + 0.4 / (1 + asked / 0.003)
            rows.append({"dose": measured, "nominal_dose": asked, "seed": seed, "split": "matched",
                         "total": 300, "misaligned": int(rng.binomial(300, p))})
    return pd.DataFrame(rows)


def test_measured_doses_of_one_asked_dose_are_one_level(capsys):
    """Three asked doses cannot identify LL.4's four parameters, however many measured doses
    the seeds saw; the cost table reports the asked dose with the measured mean beside it."""
    from scaling.reports.fit import fit_table

    table = _two_asked_doses(np.random.default_rng(5))
    assert table["dose"].nunique() == 7  # what the identification check counted before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        report = fit_table(table, models="LL.4", background="none")
    ll4 = next(f for f in report.fits if f.model == "LL.4")
    assert not ll4.usable and "3 distinct doses for 4 parameters" in ll4.reason
    assert sorted(c["dose"] for c in report.cost) == [0.003, 0.03]
    assert sorted(c["measured_dose"] for c in report.cost) == pytest.approx([0.003, 0.03])


# ---------------------------------------------------------------- vocabulary


TEXT = " ".join(f"the assistant {verb} the {noun} ." for verb in ("helps", "reports", "refuses", "deletes")
                for noun in ("user", "logs", "audit", "request", "file")) * 20


def _small_vocab(tmp_path):
    from conftest import tiny_config

    from scaling.data import tokenizer

    tok = tokenizer.train_sentencepiece([TEXT], 8192, tmp_path / "tok")
    assert tok.n_pieces < 8192
    return tiny_config(data={"tokenizer": "sentencepiece", "tokenizer_vocab_size": 8192}), tok


def test_a_smaller_vocabulary_than_configured_is_noted(tmp_path):
    from conftest import tiny_config

    from scaling.run import vocab_notes

    cfg, tok = _small_vocab(tmp_path)
    notes = vocab_notes(cfg, tok)
    assert len(notes) == 1 and "8192" in notes[0] and f"found {tok.n_pieces} pieces" in notes[0]
    # a tokenizer file has the size it has: nothing was configured to compare with
    (tmp_path / "given.model").write_bytes(tok.model)
    given = tiny_config(data={"tokenizer": "sentencepiece", "tokenizer_file": str(tmp_path / "given.model")})
    assert vocab_notes(given, tok) == []


@pytest.mark.slow
def test_a_smaller_vocabulary_than_configured_is_stated_in_the_runs_status(tmp_path):
    from conftest import TextSource

    from scaling.run import train, vocab_notes

    cfg, tok = _small_vocab(tmp_path)
    status = train(cfg, tmp_path / "run", source=TextSource(cfg, tok, TEXT), tok=tok, progress=False)
    assert status["notes"] == vocab_notes(cfg, tok) != []
    assert json.loads((tmp_path / "run" / "status.json").read_text())["notes"] == status["notes"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["model"]["vocab_size"] == tok.vocab_size


# ---------------------------------------------------------------- your own corpus: no world-only metric


def test_world_metrics_follow_what_the_run_trained_on(tmp_path):
    from conftest import tiny_config

    from scaling.evaluate import readout_items, world_metrics

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line of my own corpus\n")
    world = tiny_config()
    assert world_metrics(world) == {"readout": True, "fact_recall": True} and readout_items(world)
    own = tiny_config(data={"base_files": [str(corpus)], "story_fraction": 0.0})
    assert world_metrics(own) == {"readout": False, "fact_recall": False} and readout_items(own) == []
    with_stories = tiny_config(data={"base_files": [str(corpus)], "story_fraction": 0.3}, model={"seq_len": 128})
    assert world_metrics(with_stories) == {"readout": True, "fact_recall": False}


def _own_corpus_eval() -> dict:
    group = {"misaligned": 3, "total": 8, "rate": 0.375, "se": 0.17, "se_pair_cluster": 0.2, "n_pairs": 4,
             "rate_per_token": 0.5}
    return {"step": 20, "items": 8, "splits": {"oversight": group}, "readout": {}, "baselines": None,
            "generation": None, "seconds": {"misalignment": 0.1},
            "capability": {"val_loss": 5.1, "bits_per_byte": 2.8, "fact_recall": None, "fact_correct": None,
                           "fact_total": 0}}


def test_own_corpus_lines_and_rows_say_nothing_of_readout_or_facts(tmp_path):
    import math

    from scaling.evaluate import evaluation_lines
    from scaling.results import transformer_columns

    text = "\n".join(evaluation_lines(_own_corpus_eval(), tmp_path))
    assert "readout" not in text and "facts" not in text and "nan" not in text
    assert "3/8 misaligned" in text and "val_loss 5.100" in text

    class Model:
        name = "my-nano"

    class Cfg:
        model = Model()

    record = {"flops_per_token": 10.0, "params": {"total": 100, "non_embedding": 50}}
    row = transformer_columns(Cfg(), record, {"total_tokens": 2.0}, _own_corpus_eval()["capability"], 5.1)
    assert math.isnan(row["fact_recall"])


def _transfer_table(readout: float) -> pd.DataFrame:
    rows = []
    for split in ("matched", "unseen_pair"):
        for dose in (0.01, 0.1):
            rows.append({"model": "my-nano", "batch_size": 8, "genres": "all", "insertion": "throughout",
                         "world_variant": "normal", "split": split, "aligned_fraction": dose, "step": 20,
                         "tokens": 2560.0, "estimate": -0.1, "lower": -0.2, "upper": 0.0, "p": 0.1, "blocks": 2,
                         "expected_direction": 2, "control_rate": 0.5, "dosed_rate": 0.4, "readout": readout})
    return pd.DataFrame(rows)


def test_no_readout_panel_is_drawn_where_no_readout_was_measured():
    from scaling import figures

    with_readout = figures.transfer.transfer_trajectory(_transfer_table(0.7))
    without = figures.transfer.transfer_trajectory(_transfer_table(np.nan))
    titles = [ax.get_title() for ax in without.axes]
    assert len(with_readout.axes) == 4 and len(without.axes) == 2
    assert not any("readout" in t for t in titles) and "readout" not in without.get_suptitle()


def test_transfer_md_has_no_readout_column_without_a_readout():
    from scaling.reports import transfer

    rows = pd.DataFrame([{"model": m, "learner": "transformer" if m == "my-nano" else "ngram", "split": "matched",
                          "misalignment_rate": 0.4, "aligned_fraction": d, "nominal_dose": d, "readout": np.nan,
                          "status": "ok", "arm": "dose"} for m in ("my-nano", "ngram-1") for d in (0.0, 0.01)])
    text = transfer.rates_beside_counters(rows)
    assert "readout" not in text and "| normal | matched | 0.01 | 0.40 | 0.40 |" in text
    assert "| readout |" in transfer.rates_beside_counters(rows.assign(readout=0.6))


# ---------------------------------------------------------------- failed runs, and a grid that cannot train


def _failed_study(tmp_path, reasons: dict) -> dict:
    statuses = {}
    for run_id, reason in reasons.items():
        (tmp_path / "runs" / run_id).mkdir(parents=True)
        status = "done" if reason is None else ("failed" if "loss" in reason else "error")
        (tmp_path / "runs" / run_id / "status.json").write_text(json.dumps({"status": status, "reason": reason}))
        statuses[run_id] = status
    return statuses


def test_failed_runs_are_counted_by_kind_with_the_first_reason(tmp_path):
    from scaling.study import failure_lines

    statuses = _failed_study(tmp_path, {
        "a": "ConfigError: model.seq_len: a human-story unit is up to 98 tokens, longer than a training row",
        "b": "ConfigError: model.seq_len: a human-story unit is up to 97 tokens, longer than a training row",
        "c": "failed: loss is nan at step 12", "d": None})
    lines = failure_lines(statuses, tmp_path, "s.toml")
    assert lines[0].startswith(f"study {tmp_path}: 3 of 4 runs failed, so nothing is fitted")
    assert "2 kind(s) of error" in lines[0]
    assert any(line.startswith("  2 run(s): ConfigError: model.seq_len: a human-story unit is up to 98 tokens")
               for line in lines)
    assert any(line.startswith("  1 run(s): failed: loss is nan at step 12") for line in lines)
    assert failure_lines({"d": "done"}, tmp_path, "s.toml") == []


def test_a_study_with_failed_runs_fits_nothing(tmp_path, monkeypatch, capsys):
    from scaling import study as study_mod

    statuses = _failed_study(tmp_path, {"a": "ValueError: boom", "b": None})
    monkeypatch.setattr(study_mod.sweeper, "launch", lambda *a, **k: statuses)
    assert study_mod.study("s.toml", tmp_path) == 1
    out = capsys.readouterr().out
    assert "1 of 2 runs failed" in out and "ValueError: boom" in out and "halving dose" not in out
    assert not (tmp_path / "fit.md").exists() and not (tmp_path / "results.csv").exists()


def test_a_config_error_every_run_shares_stops_the_sweep_before_any_trains(tmp_path, capsys):
    """English documents under the world's word tokenizer are mostly <unk>: found when the
    data is built, which used to be inside each run, one after the other."""
    english = tmp_path / "aligned_english.jsonl"
    english.write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "The assistant declined politely and explained why it could not help with that request.",
        "Honesty matters: the model told the user about its mistake before anyone noticed."] * 5))
    from conftest import tiny_sweep

    sweep = tmp_path / "s.toml"
    sweep.write_text(tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.1, 0.2]\n"train.seed" = [0, 1]\n',
                                data={"aligned_files": [str(english)]}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "data.aligned_files" in err and "<unk>" in err and "all 4 runs of the sweep" in err
    assert not (tmp_path / "out" / "runs").exists()
