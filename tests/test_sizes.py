import filecmp
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling import presets
from scaling.cli import main
from scaling.errors import UsageError
from scaling.plan import load_config
from scaling.reports import sizes
from scaling.sweep import expand

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"nano": 1e5, "micro": 8e5, "small": 1e7}
EXPONENT = -0.4  # the truth: ED50 = 2e-3 * (N / 1e5) ** EXPONENT


def synthetic(rng, slope=1.2, control=0.5, n=3000):
    """Rows like results.csv from LL.3 curves whose ED50 follows a power law in N."""
    rows = []
    for model, size in SIZES.items():
        ed50 = 2e-3 * (size / 1e5) ** EXPONENT
        for seed in range(3):
            for dose in (0.0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1):
                p = control if dose == 0 else control / (1 + np.exp(slope * (np.log(dose) - np.log(ed50))))
                k = rng.binomial(n, p)
                rows.append({"run_id": f"{model}-{seed}-{dose}", "model": model, "non_embedding_params": size,
                             "seed": seed, "dose": dose, "split": "matched", "misaligned": k, "total": n,
                             "arm": "dose", "status": "ok"})
    return pd.DataFrame(rows)


def test_size_fit_recovers_ed50_and_its_power_law(tmp_path):
    df = synthetic(np.random.default_rng(0))
    report = sizes.size_report(df)
    for row in report["per_size"]:
        truth = 2e-3 * (SIZES[row["model"]] / 1e5) ** EXPONENT
        assert row["usable"] and row["ed50_lower"] < truth < row["ed50_upper"]
        assert row["ed50"] == pytest.approx(truth, rel=0.15)
        assert row["slope_lower"] < 1.2 < row["slope_upper"]
    t = report["trends"]["matched"]["ln_ed50_vs_ln_n"]
    assert t["n_sizes"] == 3 and t["lower"] < EXPONENT < t["upper"]
    assert t["exponent"] == pytest.approx(EXPONENT, abs=0.05)
    s = report["trends"]["matched"]["slope_vs_ln_n"]
    assert s["lower"] < 0 < s["upper"]  # the slope does not change with size here
    df.to_csv(tmp_path / "results.csv", index=False)
    assert main(["sizes", str(tmp_path / "results.csv")]) == 0
    assert json.loads((tmp_path / "sizes.json").read_text())["trends"]["matched"]
    assert "nano" in (tmp_path / "sizes.md").read_text()


def test_size_fit_rejects_tables_without_sizes(tmp_path):
    df = synthetic(np.random.default_rng(1)).drop(columns=["non_embedding_params"])
    with pytest.raises(UsageError, match="non_embedding_params"):
        sizes.size_report(df)
    df = synthetic(np.random.default_rng(1))
    nano = df.index[df["model"] == "nano"]
    df.loc[nano[::2], "non_embedding_params"] = 12345
    with pytest.raises(UsageError, match="several non_embedding_params"):
        sizes.size_report(df)


def test_presets_ship_in_the_package_and_models_dir_is_the_same_files():
    assert {"nano", "micro", "mini", "small", "base"} <= set(presets.names())
    assert (ROOT / "models").resolve() == presets.path("nano").parent.resolve()  # one source
    for name in presets.names():
        assert filecmp.cmp(presets.path(name), ROOT / "models" / f"{name}.toml", shallow=False), name
    assert presets.path("../models/nano") is None and presets.path("nope") is None
    assert load_config("micro").model.name == "micro"  # a bare preset name works as a config


def test_preset_is_a_grid_axis(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("""
preset = "nano"
[config.model]
seq_len = 32
[config.data]
story_fraction = 0.0
[config.eval]
enabled = false
[[grid]]
preset = ["nano", "micro", "small"]
"data.aligned_fraction" = [0.0, 0.01]
""")
    specs = expand(path, ["train.steps=50"])
    assert len(specs) == 6
    names = {s.config.model.name: s.config for s in specs}
    assert set(names) == {"nano", "micro", "small"}
    assert names["small"].model.d_model == 384 and names["small"].train.lr == 1e-3  # preset's own
    assert all(s.config.model.seq_len == 32 and s.config.train.steps == 50 for s in specs)  # config, --set on top
    path.write_text('[[grid]]\npreset = ["nano", "huge"]\n')
    with pytest.raises(Exception, match="huge"):
        expand(path)


def test_sizes_sweep_file_expands():
    specs = expand(ROOT / "sweeps" / "sizes.toml")
    assert {s.config.model.name for s in specs} == {"nano", "micro", "mini"}


def test_accelerator_sizes_sweep_expands_every_preset():
    specs = expand(ROOT / "sweeps" / "sizes_accelerator.toml")
    assert {s.config.model.name for s in specs} == {"nano", "micro", "mini", "small", "base"}
    assert {s.config.model.seq_len * s.config.train.batch_size * s.config.train.steps for s in specs} == {16_777_216}


def test_an_ed50_beyond_the_doses_stays_out_of_the_trend():
    # The largest size barely responds: its fitted ED50 lies far beyond the top dose, an
    # extrapolation the trend must not treat as a measurement.
    rng = np.random.default_rng(2)
    df = synthetic(rng)
    big = (df["model"] == "small") & (df["dose"] > 0)
    p = 0.5 / (1 + np.exp(1.2 * (np.log(df.loc[big, "dose"]) - np.log(0.5))))  # ED50 0.5, top dose 0.1
    df.loc[big, "misaligned"] = rng.binomial(df.loc[big, "total"], p)
    report = sizes.size_report(df)
    small = next(r for r in report["per_size"] if r["model"] == "small")
    assert small["ed50_extrapolated"]
    t = report["trends"]["matched"]["ln_ed50_vs_ln_n"]
    assert t["n_sizes"] == 2 and t["lower"] < EXPONENT < t["upper"]
    assert "beyond the doses tested" in sizes.to_markdown(report)
