"""scaling.reports.means: the seed means and t intervals the figures draw, against scipy's t
distribution computed here (the oracle), and the tables' pooling rules."""

import numpy as np
import pandas as pd
from scipy import stats

from scaling.reports import means


def test_seed_means_give_the_t_interval_of_each_mean():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"level": np.repeat([0.0, 0.01, 0.1], [3, 4, 1]), "rate": rng.uniform(0, 1, 8)})
    table = means.seed_means(rows, ["level"])
    assert table["level"].tolist() == [0.0, 0.01, 0.1] and table["seeds"].tolist() == [3, 4, 1]
    for _, row in table.iloc[:2].iterrows():
        rates = rows.loc[rows["level"] == row["level"], "rate"]
        half = stats.t.ppf(0.975, len(rates) - 1) * rates.std(ddof=1) / np.sqrt(len(rates))
        np.testing.assert_allclose([row["lower"], row["upper"]], [rates.mean() - half, rates.mean() + half],
                                   rtol=1e-12)
    one = table.iloc[2]  # one seed: no interval, the mean itself
    assert one["lower"] == one["upper"] == one["rate"]


def test_arm_means_have_no_interval_for_one_run():
    table = pd.DataFrame({"model": "nano", "split": "matched", "label": ["a", "a", "a", "b"],
                          "rate": [0.2, 0.4, 0.3, 0.5]})
    out = means.arm_means(table).set_index("label")
    half = stats.t.ppf(0.975, 2) * np.std([0.2, 0.4, 0.3], ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(out.loc["a", ["rate", "half"]].astype(float), [0.3, half], rtol=1e-12)
    assert out.loc["b", "rate"] == 0.5 and pd.isna(out.loc["b", "half"])


def test_readout_means_pool_each_window_with_the_controls():
    results = pd.DataFrame({"model": "nano", "arm": "dose", "split": "matched",
                            "insertion": ["control", "control", "early", "late"], "level": [0.0, 0.0, 0.1, 0.1],
                            "dose": [0.0, 0.0, 0.1, 0.1], "readout": [0.5, 0.7, 0.9, 0.8]})
    out = means.readout_means(results)
    assert sorted(out["window"].unique()) == ["early", "late"]
    for window, readout in (("early", 0.9), ("late", 0.8)):
        mine = out[out["window"] == window].set_index("level")["readout"]
        assert mine.to_dict() == {0.0: 0.6, 0.1: readout}  # the controls' mean in each window's cell
    assert means.readout_means(results.drop(columns="readout")).empty


def test_trajectory_means_keep_the_dose_arm_and_color_by_the_measured_dose():
    traj = pd.DataFrame({"model": "nano", "split": "matched", "arm": ["dose"] * 4 + ["filtered"],
                         "insertion": ["control", "control", "early", "early", "early"],
                         "aligned_fraction": [0.0, 0.0, 0.1, 0.1, 0.1], "nominal_dose": [0.0, 0.0, 0.1, 0.1, 0.1],
                         "dose": [0.0, 0.0, 0.09, 0.11, 0.1], "tokens": 100, "rate": [0.4, 0.6, 0.2, np.nan, 0.9]})
    out = means.trajectory_means(traj)
    assert out[["insertion", "level", "seeds"]].values.tolist() == [["control", 0.0, 2], ["early", 0.1, 1]]
    assert out["rate"].tolist() == [0.5, 0.2] and out["color_dose"].tolist() == [0.0, 0.09]
    assert means.trajectory_means(traj.iloc[:0]).empty
