"""The committed reference studies are reproducible by today's code: one committed run of each
retrains, from its sweep file, to its results row (slow tier).

The sweep file and a selection of grid values name the run; the committed row is found by the
columns its config sets. Counts of misaligned answers must be equal; the readout may differ by
an item and the held-out loss by float noise (the training code's reductions have been
reordered since some studies ran: the same data and the same steps, not the same bits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
# study: (sweep file, grid values of the run to retrain)
CASES = {
    "dose_response": ("sweeps/dose_response.toml", {"dose": 0.01, "world_seed": 0, "seed": 0}),
    "genres": ("sweeps/genres.toml", {"genres": ("reasoning",), "world_seed": 0, "seed": 0}),
    "transfer": ("sweeps/transfer.toml", {"aligned_fraction": 0.05, "world_variant": "flipped", "world_seed": 1,
                                          "seed": 0}),
}
# columns a run's config sets (with split and model, they name one committed row)
KEYS = ("world_seed", "seed", "world_variant", "nominal_dose", "aligned_fraction", "misaligned_fraction",
        "filter_misaligned", "genres", "insertion_config", "post_training", "split", "learner")


def _chosen(spec, pick: dict) -> bool:
    d, t = spec.config.data, spec.config.train
    have = {"dose": d.dose, "world_seed": d.world_seed, "seed": t.seed, "genres": tuple(d.genres),
            "aligned_fraction": d.aligned_fraction, "world_variant": d.world_variant}
    return all(have[k] == v for k, v in pick.items())


def _key(col: pd.Series) -> pd.Series:
    """A key column as comparable text: numbers as %g (an int 0 and a float 0.0 are one value)."""
    number = pd.to_numeric(col, errors="coerce")
    return number.map("{:g}".format) if number.notna().all() else col.astype(str)


def _same_runs(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    keys = [k for k in KEYS if k in new.columns and k in old.columns]
    return new.assign(**{k: _key(new[k]) for k in keys}).merge(
        old.assign(**{k: _key(old[k]) for k in keys}), on=keys, suffixes=("", "_committed"))


@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(CASES))
def test_a_committed_run_retrains_to_its_results_row(study, tmp_path):
    from scaling import results
    from scaling.sweep import expand, run_sweep

    sweep, pick = CASES[study]
    specs = [s for s in expand(ROOT / sweep, ["eval.baselines=false"]) if _chosen(s, pick)]
    assert len(specs) == 1, f"{sweep}: {len(specs)} runs match {pick}"
    assert run_sweep(specs, tmp_path, progress=False) == {specs[0].run_id: "done"}
    new = results.results_table(tmp_path)
    new = new[new["learner"] == "transformer"]
    committed = pd.read_csv(ROOT / "fits" / study / "results.csv")
    both = _same_runs(new, committed[committed["learner"] == "transformer"])
    assert len(both) == len(new) == 3, both[["split"]]  # matched, unseen_pair, held_out: one committed row each
    assert (both["data_version"].astype(str) == both["data_version_committed"].astype(str)).all()
    assert (both["misaligned"] == both["misaligned_committed"]).all(), both[["split", "misaligned", "misaligned_committed"]]
    assert (both["total"] == both["total_committed"]).all()
    item = 1 / both["readout_total"]
    assert (np.abs(both["readout"] - both["readout_committed"]) <= item + 1e-9).all()
    assert np.allclose(both["val_loss"], both["val_loss_committed"], rtol=1e-4)
