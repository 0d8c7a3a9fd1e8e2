"""The README's findings table is what the committed study tables give."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling import findings as F

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
    assert block == table, "README findings differ: run `scaling findings --write README.md`"


@pytest.mark.slow
@pytest.mark.skipif(not _committed(), reason="the reference suite is not committed")
def test_committed_halving_doses_are_what_scaling_fit_gives_again(tmp_path):
    """The halving doses the table quotes come from fit.json; refitting results.csv with
    `scaling fit --blocks seed` (the seed x world blocks the committed fits were made with)
    gives the same ones."""
    from scaling.fit.report import add_arguments, run

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
