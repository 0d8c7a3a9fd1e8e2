"""The results-table contract (scaling.table): one ok-filter, one learner rule, one dose-level
rule and one block rule, checked against what the writer and the baselines define."""

import numpy as np
import pandas as pd
import pytest

from scaling import table
from scaling.errors import UsageError


def test_the_writer_writes_the_contracts_columns_in_order():
    from scaling import results

    assert results.COLUMNS == list(table.COLUMNS)
    assert set(table.OPTIONAL) <= set(table.COLUMNS)  # provenance: written, but older tables lack it
    assert all(table.COLUMNS.values())


def test_the_counters_are_the_baselines_counters():
    from scaling import baselines

    assert table.COUNTERS == baselines.COUNTERS


def test_finished_keeps_ok_after_stripping_and_drops_empty_status():
    df = pd.DataFrame({"status": ["ok", " ok ", "", np.nan, "failed", "running"]})
    assert table.finished(df).index.tolist() == [0, 1]
    assert table.is_finished(pd.DataFrame({"x": [1, 2]})).all()  # no status column: a table of one's own


def test_learner_reads_the_column_and_falls_back_to_the_name():
    df = pd.DataFrame({"model": ["nano", "ngram-2", "docpmi", "svd-8", "twohop", "nano", "big", "docpmi"],
                       "learner": ["transformer", "ngram", "counter", np.nan, "", np.nan, "counter", "transformer"]})
    # empty learner: the name decides, and a counter's name is never a transformer; a filled
    # column decides for other names
    assert table.learner(df).tolist() == ["transformer", "ngram", "counter", "counter", "counter",
                                          "transformer", "counter", "counter"]
    assert table.transformers(df).index.tolist() == [0, 5]
    no_column = df.drop(columns="learner")
    assert table.learner(no_column).tolist() == ["transformer", "ngram", "counter", "counter", "counter",
                                                 "transformer", "transformer", "counter"]
    assert [table.is_counting(m) for m in ("ngram-1", "winpmi-16", "twohop-values", "nano")] == [True] * 3 + [False]


def test_dose_level_is_nominal_else_aligned_fraction_else_dose():
    df = pd.DataFrame({"nominal_dose": [0.01, np.nan, np.nan, 0.0],
                       "aligned_fraction": [1.0, 0.05, np.nan, 0.0],
                       "dose": [0.0101, 0.0499, 0.0031, 0.0]})
    assert table.dose_level(df).tolist() == [0.01, 0.05, 0.0031, 0.0]
    assert table.dose_level(df[["dose"]]).tolist() == df["dose"].tolist()
    # the seeds of one level compare equal though their floats differ in the last digits
    close = pd.DataFrame({"aligned_fraction": [0.1 + 0.2, 0.3]})
    assert table.dose_level(close).nunique() == 1
    with pytest.raises(UsageError, match="nominal_dose"):
        table.dose_level(pd.DataFrame({"x": [1]}))


def test_blocks_label_seed_blocks_and_worlds():
    df = pd.DataFrame({"seed": [0, 1, 0], "world_seed": [7, 7, 8]})
    assert table.blocks(df).tolist() == ["seed=0|world_seed=7", "seed=1|world_seed=7", "seed=0|world_seed=8"]
    assert table.blocks(df, "world").tolist() == ["world_seed=7", "world_seed=7", "world_seed=8"]
    assert table.blocks(df[["seed"]]).tolist() == ["seed=0", "seed=1", "seed=0"]
    assert table.blocks(pd.DataFrame({"x": [1]})) is None
    with pytest.raises(UsageError, match="block mode"):
        table.blocks(df, "run")


def test_controls_are_dose_zero_rows_without_a_window():
    df = pd.DataFrame({"dose": [0.0, 0.0, 0.0, 0.1], "insertion": ["control", np.nan, "late", "late"]})
    assert table.controls(df).tolist() == [True, True, False, False]
    assert table.controls(df[["dose"]]).tolist() == [True, True, True, False]


def test_read_names_the_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        table.read(tmp_path / "results.csv")
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="bad.csv"):
        table.read(tmp_path / "bad.csv")


def test_world_text_names_the_world_and_says_when_it_was_not_recorded():
    assert table.world_text(pd.DataFrame({"x": [1]})).startswith("world not recorded")
    rows = pd.DataFrame({"world_version": ["v3", "v3"], "data_version": ["3.1.0", np.nan]})
    assert table.world_text(rows) == "world v3 (data 3.1.0)"
    assert table.world_text(rows.assign(data_version=np.nan)) == "world v3 (data version not recorded)"
    assert table.world_text(pd.DataFrame({"world_version": ["your corpus"]})) == "your corpus"


def test_a_table_of_two_data_versions_is_refused_naming_both(tmp_path):
    from scaling.errors import UsageError
    from scaling.reports.fit import fit_table

    rows = pd.DataFrame({"world_version": ["v2", "v2", "your corpus"], "data_version": ["2.0.1", "3.1.0", np.nan]})
    with pytest.raises(UsageError, match=r"2 data versions \(world v2 data 2.0.1, world v2 data 3.1.0\)"):
        table.check_one_data_version(rows)
    table.check_one_data_version(rows.iloc[[0, 2]])  # one version and your corpus: fine
    table.check_one_data_version(rows.drop(columns="data_version"))  # no provenance: nothing to compare
    with pytest.raises(UsageError, match="data versions"):  # before any fit is computed
        fit_table(rows.assign(aligned_fraction=0.0, misaligned_rate=0.5, n=10))


def test_the_figures_never_draw_a_counter_as_the_transformer_when_learner_is_empty():
    # the figures' old transformer_models took every non-ngram model for a transformer when the learner
    # column was empty, so docpmi, twohop, svd-8 ... would have been drawn as transformers
    from scaling.reports import cost as cost_report

    models = ["nano", "docpmi", "svd-8", "ngram-1"]
    results = pd.DataFrame({"model": models, "learner": [np.nan] * 4})
    entries = [{"group": {"model": m, "split": "matched", "insertion": "throughout"}, "dose": 0.01,
                "reduction": 0.1, "se": 0.01, "lower": 0.0, "upper": 0.2} for m in models]
    cost = cost_report.cost_table(results, {"cost_effectiveness": entries})
    assert dict(zip(cost["model"], cost["transformer"])) == {"nano": True, "docpmi": False, "svd-8": False,
                                                             "ngram-1": False}
