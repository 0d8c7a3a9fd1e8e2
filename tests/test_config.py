import pytest

from scaling.cli import main
from scaling.config import Config, ConfigError, parse_override
from scaling.plan import config_from_dict, load_config


def test_preset_loads_with_defaults_and_overrides():
    cfg = load_config("models/nano.toml", ["train.steps=7", "train.lr=1e-3", "data.window=[0.2, 0.4]",
                                           "data.insertion=window", 'data.genres=["reasoning"]'])
    assert isinstance(cfg, Config)
    assert cfg.model.d_model == 64 and cfg.train.steps == 7 and cfg.train.lr == 1e-3
    assert cfg.data.window == (0.2, 0.4) and cfg.data.genres == ("reasoning",)


def test_override_values_are_toml_literals():
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("data.insertion=early") == (["data", "insertion"], "early")
    assert parse_override("data.window=[0, 0.5]") == (["data", "window"], [0, 0.5])


@pytest.mark.parametrize("raw,key", [
    ({"model": {"d_modle": 64}}, "model.d_modle"),                       # unknown key
    ({"modle": {}}, "modle"),                                            # unknown section
    ({"train": {"steps": "many"}}, "train.steps"),                       # wrong type
    ({"train": {"lr": True}}, "train.lr"),                               # bool is not a number
    ({"model": {"n_heads": 3}}, "model.n_heads"),                        # does not divide d_model
    ({"model": {"d_model": -8}}, "model.d_model"),                       # negative size
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"data": {"aligned_fraction": 1.5}}, "data.aligned_fraction"),      # fraction outside [0, 1]
    ({"data": {"filter_misaligned": -0.1}}, "data.filter_misaligned"),
    ({"data": {"insertion": "sometimes"}}, "data.insertion"),
    ({"data": {"window": [0.5, 0.2], "insertion": "window"}}, "data.window"),
    ({"data": {"window": [0.1, 0.2]}}, "data.window"),                   # window without insertion=window
    ({"data": {"genres": ["poetry"]}}, "data.genres"),                   # the world's vocabularies,
    ({"data": {"world_variant": "tilted"}}, "data.world_variant"),        # checked in plan (the world
    ({"data": {"world_version": 5}}, "data.world_version"),               # owns them, config imports none)
    ({"data": {"world_version": 4, "world_variant": "flipped"}}, "data.world_variant"),
    ({"data": {"aligned_files": ["/no/such/file.jsonl"]}}, "data.aligned_files"),
    ({"data": {"insertion": "finetune"}}, "data.finetune_tokens"),
    ({"train": {"batch_size": 6, "accum_steps": 4}}, "train.accum_steps"),
])
def test_bad_config_names_the_key(raw, key):
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw)
    assert e.value.key == key
    assert key in str(e.value)


def test_cli_rejects_bad_config_with_exit_code_2(tmp_path, capsys):
    code = main(["train", "models/nano.toml", "--out", str(tmp_path / "r"), "--set", "model.n_heads=5"])
    assert code == 2
    assert "model.n_heads" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # rejected before anything was written


def test_cli_rejects_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_default_genres_are_the_worlds():
    """config holds no domain vocabulary, so its default data.genres spells the world's GENRES."""
    from scaling.config import DataConfig
    from scaling.world import GENRES

    assert DataConfig().genres == GENRES
