import json

from scaling.cli import main


def test_bench_json_line(capsys):
    args = ["bench", "models/nano.toml", "--batch", "4", "--seq", "16", "--vocab", "64", "--seconds", "0.2",
            "--repeats", "2", "--steps-per-call", "2", "--json", "--set", "data.story_fraction=0"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tokens_per_s"] > 0 and 0 < result["mfu"] < 1.5
    assert abs(result["flops_per_s"] / (result["tokens_per_s"] * result["flops_per_token"]) - 1) < 1e-3
    assert result["batch"] == 4 and result["seq"] == 16 and result["vocab"] == 64
    assert result["device"] and result["jax"]
    assert main([*args, "--pack", "2"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pack"] == 2


def test_bench_rejects_bad_pack(capsys):
    assert main(["bench", "models/nano.toml", "--pack", "0"]) == 2
