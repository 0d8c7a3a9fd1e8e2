"""No silent fallback: where the data cannot support what would be printed, the package says
so or refuses, naming the column, key or flag, instead of quietly doing something else."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scaling.cli import main
from scaling.fit import FitWarning


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
    from scaling.fit import fit_table

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

    from scaling import tokenizer

    tok = tokenizer.train_sentencepiece([TEXT], 8192, tmp_path / "tok")
    assert tok.n_pieces < 8192
    return tiny_config(data={"tokenizer": "sentencepiece", "tokenizer_vocab_size": 8192}), tok


def test_a_smaller_vocabulary_than_configured_is_noted(tmp_path):
    from conftest import tiny_config

    from scaling.train import vocab_notes

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

    from scaling.train import train, vocab_notes

    cfg, tok = _small_vocab(tmp_path)
    status = train(cfg, tmp_path / "run", source=TextSource(cfg, tok, TEXT), tok=tok, progress=False)
    assert status["notes"] == vocab_notes(cfg, tok) != []
    assert json.loads((tmp_path / "run" / "status.json").read_text())["notes"] == status["notes"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["model"]["vocab_size"] == tok.vocab_size
