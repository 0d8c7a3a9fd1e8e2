"""Answers a reader can trust: the halving dose only from a fit that fits a real dose trend
(scaling.stats.halving), and the study's answer beside the counter that comes closest
(scaling.reports.answer). Simulated tables with known truth."""

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scaling.reports.answer import answer, write_answer
from scaling.reports.fit import fit_table, write_report
from scaling.stats import halving
from scaling.stats.fitting import fit_curve
from scaling.stats.groups import block_labels
from scaling.stats.simulate import Truth, simulate_study

DOSES = (0.0, 0.001, 0.003, 0.01, 0.03)


def _entry(df: pd.DataFrame) -> dict:
    """The halving entry of one simulated group, from its LL.3 fit (the headline curve)."""
    df = df.assign(nominal_dose=df["dose"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_curve("LL.3", df["dose"], df["misaligned"], df["total"], seeds=block_labels(df),
                        blocks=block_labels(df))
    return halving.halving(fit, df, {})


def _study(rng, **truth) -> pd.DataFrame:
    return simulate_study(dataclasses.replace(Truth(doses=DOSES, items=512), **truth), rng)


def test_a_flat_curve_gets_no_halving_dose():
    rng = np.random.default_rng(0)
    flat = _study(rng, e=1e6)  # the dose does nothing within the doses tested
    entry = _entry(flat)
    assert entry["status"] == "no trend" and "estimate" not in entry
    assert halving.text(entry).startswith("no dose trend (p = ")
    # a counter exactly at 0.50 or 0.75 at every dose: the trend test's p is 1, no number
    for rate in (0.5, 0.75):
        exact = flat.assign(misaligned=flat["total"] * rate)
        assert _entry(exact)["status"] == "no trend" and _entry(exact)["p_trend"] == pytest.approx(1.0)


def test_a_curve_that_halves_below_the_lowest_dose_says_so():
    entry = _entry(_study(np.random.default_rng(1), e=0.0003, b=1.2, seed_sd=0.1, run_sd=0.05))
    assert entry["status"] == "below", entry
    assert halving.text(entry) == "halving dose below the lowest dose tested (0.001)"


def test_a_steep_curve_that_reaches_zero_names_the_dose_and_the_remedy():
    """0.875 -> 0.73 -> 0.38 -> 0 -> 0 in every block: no curve can be fitted, and the answer
    says where the halving dose lies and what to add."""
    rng = np.random.default_rng(2)
    rows = [{"dose": d, "seed": s, "total": 512, "misaligned": int(rng.binomial(512, p)) if p else 0}
            for s in range(3) for d, p in zip(DOSES, (0.875, 0.73, 0.38, 0.0, 0.0))]
    entry = _entry(pd.DataFrame(rows))
    assert entry["status"] == "no curve" and entry["bracket"]["zero_dose"] == 0.01
    assert halving.text(entry) == ("no halving dose: rates reach 0 in every block at dose 0.01, so no "
                                   "curve can be fitted; by the dose means it lies between 0.001 and "
                                   "0.003: add doses between them")


def test_a_curve_that_misses_the_dose_levels_is_rejected():
    """A U-shaped dose response (falls, then comes back): LL.3 cannot follow it."""
    rng = np.random.default_rng(3)
    rows = [{"dose": d, "seed": s, "total": 1024, "misaligned": int(rng.binomial(1024, p))}
            for s in range(3) for d, p in zip(DOSES, (0.5, 0.3, 0.1, 0.3, 0.5))]
    entry = _entry(pd.DataFrame(rows))
    assert entry["p_trend"] < 0.001 and entry["status"] in ("lack of fit", "no curve", "rises")
    assert "halving dose 0" not in halving.text(entry)


@pytest.mark.slow
def test_the_trend_and_lack_of_fit_tests_hold_their_level_on_simulated_studies():
    """Overdispersed studies (seed and run effects on the logit scale, as simulate.Truth): under a
    flat truth the trend test rejects at about 5%, under a true LL.3 the lack-of-fit test does."""
    rng = np.random.default_rng(4)
    flat = [_entry(_study(rng, e=1e6))["p_trend"] for _ in range(60)]
    curve = [_entry(_study(rng, e=0.004))["p_lack_of_fit"] for _ in range(60)]
    assert np.mean(np.array(flat) < 0.05) <= 0.12
    curve = [p for p in curve if p is not None]
    assert len(curve) >= 52 and np.mean(np.array(curve) < 0.05) <= 0.12


def _table() -> pd.DataFrame:
    """A world-v3 study: a transformer and three counters on the same runs (2 blocks)."""
    rates = {"nano": (0.5, 0.4, 0.2, 0.05, 0.01), "ngram-1": (0.5, 0.5, 0.5, 0.5, 0.5),
             "docpmi": (0.5, 0.45, 0.35, 0.3, 0.3), "twohop": (0.5, 0.42, 0.18, 0.04, 0.0)}
    rng = np.random.default_rng(5)
    rows = []
    for seed in (0, 1, 2):
        for dose, level in zip(DOSES, range(5)):
            for model, rate in rates.items():
                k = int(rng.binomial(1024, rate[level])) if model != "ngram-1" else 512
                rows.append({"run_id": f"r{seed}{level}", "model": model,
                             "learner": "transformer" if model == "nano" else "counter",
                             "seed": seed, "arm": "dose", "insertion": "throughout" if dose else "control",
                             "dose": dose, "nominal_dose": dose, "aligned_fraction": dose,
                             "split": "matched", "misaligned": k, "total": 1024, "status": "ok",
                             "readout": 0.9 if model == "nano" else np.nan, "total_tokens": 614400,
                             "params": 163456 if model == "nano" else np.nan,
                             "world_version": "v3", "data_version": "3.1.0"})
    return pd.DataFrame(rows)


def test_the_answer_names_the_world_and_the_counter_with_the_largest_paired_contrast(tmp_path):
    df = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fit_table(df)
    write_report(report, tmp_path, df=df)
    lines = write_answer(report, df, tmp_path)
    text = (tmp_path / "answer.md").read_text()
    assert text == "\n".join(lines) + "\n"
    assert "What ran: world v3 (data 3.1.0); model nano (163,456 parameters); tokens per run 614,400" in text
    matched = next(line for line in lines if line.startswith("- **matched**"))
    # twohop falls as far as the transformer; docpmi only part of the way; ngram-1 is flat
    assert "Strongest counter twohop:" in matched and "a counter does too" in matched
    assert "Readout 0.90 at dose 0.03" in matched
    # in plain words: the transformer's direction, and the counter that shows the same
    plain = next(line for line in lines if line.startswith("- matched: "))
    assert "the aligned documents lower the transformer's (nano) misalignment" in plain
    assert "twohop shows the same, so counting alone can explain it" in plain
    assert "World v3 (this run)" in text and "accelerator world" in text
    # fit.md holds the transformer and the strongest counter; every counter is in counters.md
    fit_md, counters_md = (tmp_path / "fit.md").read_text(), (tmp_path / "counters.md").read_text()
    assert "What ran: world v3 (data 3.1.0)." in fit_md
    assert "model=docpmi" not in fit_md and "model=twohop" in fit_md and "model=nano" in fit_md
    assert "model=docpmi" in counters_md and "model=nano" not in counters_md
    # the flat counter gets no number anywhere
    flat = next(h for h in report.halving if h["group"]["model"] == "ngram-1")
    assert flat["status"] == "no trend"


def test_in_plain_words_a_transformer_without_a_trend_is_not_said_to_match_a_counter(tmp_path):
    """A flat transformer beside a falling counter: the plain words say the counter moves,
    never that it 'shows the same'."""
    df = _table()
    flat = df["model"] == "nano"
    df.loc[flat, "misaligned"] = 512 + (df.loc[flat, "seed"] - 1) * 40  # 0.5 at every dose, seed noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fit_table(df)
    lines = answer(report, df, tmp_path)
    plain = next(line for line in lines if line.startswith("- matched: "))
    assert "shows no dose trend that these 3 blocks can tell from noise" in plain
    assert "does have a dose trend: counting alone moves this split" in plain and "shows the same" not in plain


def test_dose_panels_say_the_halving_dose_as_fit_json_does(tmp_path):
    """Titles from the halving entries and the data's own split names; a flat counter's panel
    says "no dose trend" and marks nothing on its dose axis."""
    from scaling import figures

    df = pd.concat([_table(), _table().assign(split="textbook")], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = json.loads(fit_table(df).to_json())
    fits = figures.fits.with_halving(report["fits"], report["halving"])
    fig = figures.dose.splits(figures.tables.tidy_results(df), fits)
    titles = {ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()}
    assert fig._suptitle.get_text() == "Misalignment by eval split: matched, textbook"
    flat = next(t for t in titles if t.startswith("ngram-1: throughout · matched"))
    assert flat.endswith("no dose trend (p = 1)")
    assert not any("beyond the doses" in t for t in titles)
    ngram_ax = next(ax for ax in fig.axes if ax.get_title() == flat)
    assert not [line for line in ngram_ax.lines if line.get_linewidth() == 3]  # no halving-dose bar
    twohop_ax = next(ax for ax in fig.axes if ax.get_title().startswith("twohop: throughout · matched"))
    assert [line for line in twohop_ax.lines if line.get_linewidth() == 3] or "halving dose" not in twohop_ax.get_title()


def test_an_estimate_without_replicate_runs_says_it_is_untested():
    """One run per dose level: no dispersion to test the trend or the fit against."""
    rows = pd.DataFrame([{"dose": d, "seed": 0, "total": 1024, "misaligned": int(1024 * p)}
                         for d, p in zip(DOSES, (0.5, 0.42, 0.3, 0.12, 0.04))])
    entry = _entry(rows)
    assert entry["p_trend"] is None and entry["status"] == "estimate"
    assert halving.text(entry).endswith("(untested: no replicate runs to test the trend and the fit)")
