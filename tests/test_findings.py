"""The README's findings table is what the committed study tables give."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies import findings as F

ROOT = Path(__file__).resolve().parent.parent


def _committed() -> bool:
    return all((ROOT / "fits" / s / "results.csv").exists() for s in F.STUDIES)


def test_verdicts_are_rules_on_the_interval():
    assert F.verdict_below(-0.1, -0.3) == "reproduces"
    assert F.verdict_below(0.3, 0.1) == "does not"
    assert F.verdict_below(0.1, -0.1) == "cannot tell at this scale"
    assert F.verdict_above(0.9, 0.6, 0.5) == "reproduces"
    assert F.verdict_above(0.4, 0.1, 0.5) == "does not"
    assert F.verdict_above(np.nan, np.nan) == "cannot tell at this scale"


def test_paired_effect_pairs_by_block():
    # Each block's control differs (0.3..0.7); the dose lowers every block by exactly 0.2, so
    # pairing gives -0.2 with a zero-width interval while the unpaired means would be noisy.
    rows = []
    for seed in range(3):
        for world in range(2):
            base = 0.3 + 0.08 * (seed * 2 + world)
            for dose, rate in ((0.0, base), (0.01, base - 0.2)):
                rows.append({"learner": "transformer", "status": "ok", "seed": seed, "world_seed": world,
                             "split": "matched", "arm": "dose", "aligned_fraction": dose,
                             "nominal_dose": dose, "misalignment_rate": rate})
    e = F.paired(pd.DataFrame(rows), F._at_dose(0.01), F._is_control, "matched")
    assert e["estimate"] == pytest.approx(-0.2) and e["blocks"] == 6
    assert e["lower"] == pytest.approx(-0.2) and e["upper"] == pytest.approx(-0.2)


@pytest.mark.skipif(not _committed(), reason="the reference suite is not committed")
def test_readme_findings_table_is_what_the_committed_tables_give():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = F.render(F.findings(ROOT))
    block = F.readme_block((ROOT / "README.md").read_text())
    assert block is not None, "README.md has no findings block"
    assert block == table, "README findings differ: run `python -m studies.findings --write README.md`"


@pytest.mark.slow
@pytest.mark.skipif(not _committed(), reason="the reference suite is not committed")
def test_committed_halving_doses_are_what_scaling_fit_gives_again(tmp_path):
    """The halving doses the table quotes come from fit.json; refitting results.csv with
    `scaling fit --blocks seed` (the seed x world blocks the committed fits were made with)
    gives the same ones."""
    from scaling.cli.fit import add_arguments, run

    for study in ("dose_response",):
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(parser.parse_args([str(ROOT / "fits" / study / "results.csv"), "--out", str(tmp_path),
                                   "--blocks", "seed"]))
        fresh = json.loads((tmp_path / "fit.json").read_text())
        committed = json.loads((ROOT / "fits" / study / "fit.json").read_text())
        for split in ("matched", "unseen_pair", "held_out"):
            assert F._chosen_ed50(fresh, split) == F._chosen_ed50(committed, split)


def _effect(estimate, lower, upper):
    return {"estimate": estimate, "lower": lower, "upper": upper}


def test_a_counter_does_too_when_its_interval_reaches_the_transformers():
    ours = _effect(-0.3, -0.4, -0.2)
    assert F.counter_reaches(_effect(-0.15, -0.2, -0.1), ours, -1)  # touches the upper bound
    assert F.counter_reaches(_effect(-0.8, -0.9, -0.7), ours, -1)  # beyond it: counting does more
    assert not F.counter_reaches(_effect(0.0, -0.1, 0.1), ours, -1)  # reaches the side, not the effect
    assert F.counter_reaches(_effect(0.5, 0.4, 0.6), _effect(0.3, 0.2, 0.4), +1)
    assert not F.counter_reaches(_effect(0.1, 0.0, 0.15), _effect(0.3, 0.2, 0.4), +1)
    assert F.counter_reaches(_effect(-0.2, np.nan, np.nan), ours, -1)  # one block: its estimate


def test_strongest_counter_is_the_one_furthest_in_the_findings_direction():
    rows = []
    for model, learner, effect in (("nano", "transformer", -0.3), ("ngram-1", "ngram", -0.1),
                                   ("twohop", "counter", -0.5), ("docpmi", "counter", 0.2)):
        for seed in range(3):
            for dose, rate in ((0.0, 0.5), (0.01, 0.5 + effect + 0.01 * seed)):
                rows.append({"model": model, "learner": learner, "status": "ok", "seed": seed, "world_seed": 0,
                             "split": "unseen_pair", "arm": "dose", "aligned_fraction": dose,
                             "nominal_dose": dose, "misalignment_rate": rate, "readout": 0.9})
    res = pd.DataFrame(rows)
    name, e = F.strongest_counter(res, lambda r, who: F.paired(r, F._at_dose(0.01), F._is_control, "unseen_pair", who), -1)
    assert name == "twohop" and e["estimate"] == pytest.approx(-0.49)
    name, _ = F.strongest_counter(res, lambda r, who: F.paired(r, F._at_dose(0.01), F._is_control, "unseen_pair", who), +1)
    assert name == "docpmi"
    row = F._paired_row(res, F._at_dose(0.01), F._is_control, "unseen_pair", -1, "f", "lit",
                        lambda e: "ours", "t on {df} df")
    assert "strongest counter twohop -0.49" in row["ours"] and row["counter"] == "twohop"
    assert F.holm_verdicts([row])[0]["verdict"] == "reproduces, but twohop does too"


def _verdict_row(verdict="reproduces", p=0.001, **kw):
    return F._row("f", "lit", "ours", "test", verdict, p=p, **kw)


def test_final_verdicts_readout_holm_literature_and_counter():
    assert F.final_verdict(_verdict_row(readout=0.54), 0.001) == "values not learned: readout 0.54"
    assert F.final_verdict(_verdict_row(readout=0.9), 0.001) == "reproduces"
    assert F.final_verdict(_verdict_row(), 0.06) == "cannot tell at this scale"  # Holm-adjusted p decides
    # the literature's -0.36 lies below the interval's lower bound: smaller than the literature's
    small = dict(literature_effect=-0.36, effect=_effect(-0.1, -0.2, -0.05), sign=-1)
    assert F.final_verdict(_verdict_row(**small), 0.001) == "reproduces, smaller than the literature's"
    assert F.final_verdict(_verdict_row(**small), 0.5) == "smaller than the literature's"
    inside = dict(literature_effect=-0.15, effect=_effect(-0.1, -0.2, -0.05), sign=-1)
    assert F.final_verdict(_verdict_row(**inside), 0.001) == "reproduces"
    assert F.final_verdict(_verdict_row("new measurement", p=np.nan), np.nan) == "new measurement"


def test_holm_runs_over_every_rows_primary_contrast():
    rows = [_verdict_row(p=p) for p in (0.01, 0.02, 0.04)] + [_verdict_row("new measurement", p=np.nan)]
    out = F.holm_verdicts(rows)
    # Holm: 0.03, 0.04, 0.04 -> all below 0.05; a fourth p of 0.04 would push them over
    assert [r["verdict"] for r in out[:3]] == ["reproduces"] * 3
    assert "Holm 0.03 over 3 rows" in out[0]["test"] and out[3]["test"] == "test"
    out = F.holm_verdicts([_verdict_row(p=p) for p in (0.01, 0.02, 0.04, 0.04)])
    assert [r["verdict"] for r in out] == ["reproduces"] + ["cannot tell at this scale"] * 3


def test_the_halving_dose_of_a_rising_headline_curve_is_withdrawn():
    rising = {"fits": [{"group": {"split": "held_out", "model": "nano", "insertion": "throughout"}, "usable": True,
                        "background": None, "control_level": 0.49, "model": "LL.3",
                        "ed_control": {"50": {"estimate": None, "lower": None, "upper": None, "rises": True,
                                              "control_level": 0.49, "limit": 0.55}}}]}
    assert F._chosen_ed50(rising, "held_out") == "no halving dose (curve rises) (LL.3)"


def test_the_strongest_counter_is_taken_in_the_transformers_own_direction():
    """A finding claims a decrease (sign -1) but the transformer rose (+0.10): the counter that
    comes closest to it is the one that rose most, not a saturated counter at 0."""
    import pandas as pd

    from studies import findings as F

    results = pd.DataFrame({"model": ["ngram-1", "svd-8", "twohop"]})
    effects = {"ngram-1": 0.0, "svd-8": 0.23, "twohop": 0.11}

    def contrast(rows, who):
        e = effects[rows["model"].iloc[0]]
        return {"estimate": e, "lower": e - 0.05, "upper": e + 0.05}

    ours = {"estimate": 0.10, "lower": -0.01, "upper": 0.19}
    assert F.strongest_counter(results, contrast, F._direction(ours, -1))[0] == "svd-8"
    assert F.strongest_counter(results, contrast, -1)[0] == "ngram-1"  # the claimed sign alone
    assert F._direction({"estimate": float("nan")}, -1) == -1


def test_the_command_checks_and_writes_the_readme_block(tmp_path, monkeypatch, capsys):
    """`python -m studies.findings --check/--write`: exit 1 on a stale block, 0 once written, 2
    (naming the file) without markers; the table itself is stubbed (the README test computes it)."""
    rows = [{"finding": "f", "literature": "l", "ours": "o | p", "test": "t", "verdict": "v"}]
    monkeypatch.setattr(F, "findings", lambda root: rows)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{F.START}\nstale\n{F.END}\nend\n")
    assert F.main(["--check", str(readme)]) == 1
    assert F.main(["--write", str(readme)]) == 0
    assert F.main(["--check", str(readme)]) == 0
    assert readme.read_text() == f"intro\n{F.render(rows)}\nend\n" and "o \\| p" in readme.read_text()
    (tmp_path / "none.md").write_text("no markers\n")
    assert F.main(["--check", str(tmp_path / "none.md")]) == 2
    assert "none.md has no <!-- findings:start -->" in capsys.readouterr().err


def test_the_literature_is_data_and_a_bad_claim_is_named(tmp_path):
    """Every claim of literature.toml is read, and its numbers give the literature's effect
    (treated - reference); a claim without its texts or with half a pair of rates is refused,
    naming the file and the claim."""
    data = F._literature()
    assert set(data["claims"]) == set(F.CLAIMS) and F.RESISTANCE_DIRECTIONS[0][0] == "helpful_rl"
    for key, c in F.CLAIMS.items():
        assert F.literature_effect(key) == (c["treated"] - c["reference"] if "treated" in c else None)
    bad = tmp_path / "literature.toml"
    bad.write_text('[rules]\nreadout_needed = 0.85\n[claims.dose]\nfinding = "x"\nliterature = "y"\nreference = 0.4\n')
    with pytest.raises(F.UsageError, match=r"literature.toml: claim 'dose' needs"):
        F._literature(bad)
    bad.write_text("[claims\n")
    with pytest.raises(F.UsageError, match="literature.toml"):
        F._literature(bad)
