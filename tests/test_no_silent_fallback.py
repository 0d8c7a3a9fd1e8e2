"""No silent fallback: where the data cannot support what would be printed, the package says
so or refuses, naming the column, key or flag, instead of quietly doing something else."""

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

