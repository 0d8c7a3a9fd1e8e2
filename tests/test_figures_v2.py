"""Figures v2: the halving dose marked on the dose axis, seeds visible, transfer with readout."""

import warnings

import numpy as np
import pandas as pd
from scipy import special

from scaling import figures
from scaling.reports import cost as cost_report
from scaling.reports.fit import fit_table
from scaling.reports.means import capability_means, capability_runs, readout_means

SPLITS = ("matched", "unseen_pair", "held_out")


def table(rng) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        shift = rng.normal(0, 0.2)
        for dose in (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1):
            for k, split in enumerate(SPLITS):
                rate = special.expit(special.logit(0.45 / (1 + (dose / (0.01 * 3**k)) ** 1.5))
                                     + shift)
                rows.append({"run_id": f"r{seed}-{dose}", "seed": seed, "dose": dose,
                             "aligned_fraction": dose, "arm": "dose", "model": "nano",
                             "insertion": "throughout" if dose else "control", "split": split,
                             "total": 2000, "misaligned": rng.binomial(2000, rate),
                             "readout": 0.5 + 0.4 * (split != "held_out") * (dose > 0),
                             "status": "ok"})
    return pd.DataFrame(rows)


def fitted(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_table(df, models=["LL.2", "LL.3"], background="none").to_dict()


def test_dose_panel_draws_ll3_and_marks_its_halving_dose():
    df = table(np.random.default_rng(0))
    report = fitted(df)
    results = figures.tables.tidy_results(df)
    entry = figures.fits.choose_fit(report["fits"], {"insertion": "throughout", "split": "matched",
                                                "model": "nano"})
    assert entry["model"] == "LL.3"  # control-relative before the drc-comparable LL.2
    ed = figures.fits.halving_dose(entry)
    assert 0.005 < ed["estimate"] < 0.02
    fig = figures.dose.dose_response(results, report["fits"])
    ax = fig.axes[0]
    assert "halving dose" in ax.get_title()
    xs = [line.get_xdata() for line in ax.get_lines()]
    assert any(len(x) == 2 and np.allclose(x, [ed["lower"], ed["upper"]]) for x in xs)  # CI bar
    # seeds visible: one marker style per seed among the run scatters
    markers = {c.get_paths()[0].vertices.tobytes() for c in ax.collections if c.get_offsets().size}
    assert len(markers) >= 3


def test_transfer_figure_has_every_split_and_the_readout_row():
    df = table(np.random.default_rng(1))
    results = figures.tables.tidy_results(df)
    fig = figures.transfer.transfer(cost_report.cost_table(results), results, readout_means(results))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2  # reduction and readout for the one window
    assert "readout" in visible[1].get_title()
    readout_lines = [line for line in visible[1].get_lines() if len(line.get_xdata()) > 2]
    assert len(readout_lines) == len(SPLITS)


def test_counting_baselines_sit_beside_the_transformer_and_stay_out_of_capability():
    df = table(np.random.default_rng(2))
    df["val_loss"] = 1.5 + 0.1 * df["dose"]
    counting = df.assign(model="ngram-2", val_loss=np.nan)
    both = pd.concat([counting, df], ignore_index=True)  # baseline rows first, same run ids
    results = figures.tables.tidy_results(both)
    fig = figures.dose.dose_response(results, fitted(both)["fits"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert any("ngram-2" in t for t in titles) and any("nano" in t for t in titles)
    runs = capability_runs(results)
    cap = figures.capability.capability(runs, capability_means(runs))
    drawn = [ax for ax in cap.axes if ax.get_visible() and ax.collections]
    assert len(drawn) == 1  # one model with capability values: the transformer
    points = sum(len(c.get_offsets()) for c in drawn[0].collections)
    assert points == df["run_id"].nunique()  # every transformer run, none lost to a baseline
