"""The one paired contrast (scaling.stats.paired): scipy's one-sample t as the oracle, the se = 0
answer, Holm on a worked example."""

import math

import numpy as np
import pytest
from scipy import stats

from scaling.stats.paired import PairedContrast, holm, paired_contrast


def test_paired_is_scipys_one_sample_t():
    diffs = np.array([0.11, 0.09, 0.12, 0.05])
    c, ref = paired_contrast(diffs), stats.ttest_1samp(diffs, 0.0)
    assert c.pvalue == pytest.approx(ref.pvalue)
    assert c.conf_int() == pytest.approx(tuple(ref.confidence_interval()))
    assert c.conf_int(0.1) == pytest.approx(tuple(ref.confidence_interval(0.9)))
    assert (c.df, c.blocks) == (3, 4)
    assert c.se == pytest.approx(stats.sem(diffs))
    assert c.summary()["lower"] == c.conf_int()[0] and c.summary()["p"] == c.pvalue
    assert PairedContrast.from_moments(diffs.mean(), diffs.std(ddof=1), 4) == c


def test_below_two_blocks_there_is_an_estimate_only():
    one = paired_contrast([0.3])
    assert one.estimate == 0.3 and one.blocks == 1
    assert all(math.isnan(v) for v in (one.se, one.pvalue, *one.conf_int()))
    none = paired_contrast([])
    assert none.blocks == 0 and math.isnan(none.estimate)


@pytest.mark.parametrize("value", [0.0, 0.25])
def test_se_zero_gives_a_point_interval_and_no_p(value):
    c = paired_contrast([value] * 3)
    assert c.se == 0 and c.conf_int() == (value, value)
    assert math.isnan(c.pvalue)  # undefined, not 0 or 1 (module docstring)


def test_holm_on_a_worked_example():
    # sorted 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.3, 0.9]) == pytest.approx([0.6, 0.9])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 1.2 capped at 1, then the running max
    assert holm([]) == []


def test_a_contrast_with_se_zero_leaves_the_holm_family():
    import pandas as pd

    from scaling.stats.contrasts import add_holm, paired_entry

    tied = paired_entry("tie", "t", pd.Series([0.0, 0.0, 0.0]))
    moved = paired_entry("moved", "t", pd.Series([0.1, 0.12, 0.09]))
    entries = [tied, moved]
    add_holm(entries)
    assert tied["p"] is None and tied["p_holm"] is None
    assert moved["p_holm"] == pytest.approx(moved["p"])  # a family of one
