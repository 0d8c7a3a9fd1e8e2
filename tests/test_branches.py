"""Shared pretraining (scaling.branches): runs of a sweep that differ only after their
pretraining train it once, and each branched run is bitwise the run trained from scratch."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_sweep

from scaling import branches, plan, rundir
from scaling import run as runner
from scaling.sweep import expand, launch

PRE, POST = 20, 6  # steps
FAMILIES = '["shutdown", "oversight"]'
DIRECTIONS = f"""
[[grid]]
[[grid.zip]]
"stages.post.objective" = ["lm", "sft", "helpful_rl", "helpful_benign_rl", "harmless_rl"]
"stages.post.misaligned" = [1.0, 0.0, 0.0, 0.0, 0.0]
"stages.post.families" = [[], [], {FAMILIES}, [], {FAMILIES}]
"""
STAGES = f"""
[[config.stages]]
name = "pretrain"
steps = {PRE}
intervention = true
schedule = "cosine"
warmup_steps = 2
final_scale = 0.1

[[config.stages]]
name = "post"
post = true
steps = {POST}
lr_scale = 0.1
"""


def _sweep(tmp_path: Path, root, extra: str = "", **sections) -> Path:
    sections["data"] = {"data_dir": str(root), "dose": 0.05, **sections.get("data", {})}
    sections["train"] = {"steps": PRE, "checkpoint_every": 10, **sections.get("train", {})}
    text = tiny_sweep(extra, **sections)
    # [[config.stages]] must follow the [config.*] tables; the grid follows them
    head, grid = text.split("\n[[grid]]", 1) if "\n[[grid]]" in text else (text, "")
    path = tmp_path / "sweep.toml"
    path.write_text(head + STAGES + ("\n[[grid]]" + grid if grid else ""))
    return path


def _params(run_dir: Path) -> list[np.ndarray]:
    from flax import nnx

    _, _, model = rundir.load_params(run_dir)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _losses(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("val_loss"), r.get("grad_norm")) for r in rows]


@pytest.mark.slow
def test_branched_runs_are_bitwise_the_runs_trained_from_scratch(tmp_path, root):
    path = _sweep(tmp_path, root, DIRECTIONS)
    out = tmp_path / "sweep"
    assert set(launch(path, out, progress=False).values()) == {"done"}
    specs = expand(path)
    assert len(specs) == 5
    exports = [p for p in (out / branches.DIRNAME).iterdir() if not p.name.startswith(".")]
    assert len(exports) == 1, "five directions of one pretraining share one export"
    statuses = {s.run_id: rundir.read_status(out / "runs" / s.run_id) for s in specs}
    shared = [r for r, st in statuses.items() if "shared_pretraining" in st]
    assert len(shared) == 4
    for run_id in shared:
        st = statuses[run_id]
        assert st["shared_pretraining"]["step"] == PRE
        assert st["timings"]["steps"] == POST, "a branched run trains only its post-training"
    for spec in specs:
        alone = tmp_path / "alone" / spec.run_id
        runner.train(spec.config, alone, progress=False)
        swept = out / "runs" / spec.run_id
        for a, b in zip(_params(alone), _params(swept), strict=True):
            np.testing.assert_array_equal(a, b)
        assert _losses(alone) == _losses(swept), spec.assignment


@pytest.mark.slow
def test_a_branched_run_evaluates_at_the_branch_step_itself(tmp_path, root):
    grid = f"""
[[grid]]
[[grid.zip]]
"stages.post.objective" = ["sft", "helpful_rl"]
"stages.post.families" = [[], {FAMILIES}]
"""
    path = _sweep(tmp_path, root, grid, eval={"enabled": True, "checkpoints": [PRE, PRE + 3], "max_items": 64})
    out = tmp_path / "sweep"
    assert set(launch(path, out, progress=False).values()) == {"done"}
    specs = expand(path)
    steps = {}
    for spec in specs:
        rows = [json.loads(line) for line in (out / "runs" / spec.run_id / "eval_steps.jsonl").read_text().splitlines()]
        steps[spec.assignment["stages.post.objective"]] = rows
        assert sorted({r["step"] for r in rows}) == [PRE, PRE + 3]
    # the model at the branch step is the same, so every measure both runs report agrees there
    sft, rl = ({k: v for k, v in rows[0].items() if k.endswith(("_rate", "_readout"))} for rows in steps.values())
    common = set(sft) & set(rl)
    assert {"matched_rate", "unseen_pair_rate", "matched_readout"} <= common
    assert all(sft[k] == rl[k] for k in common)
    after = [rows[1] for rows in steps.values()]
    assert after[0]["matched_rate"] != after[1]["matched_rate"] or after[0]["matched_margin"] != after[1]["matched_margin"]

def test_a_run_that_evaluates_before_its_post_stage_or_has_none_does_not_branch(tmp_path, root):
    specs = expand(_sweep(tmp_path, root, "", eval={"checkpoints": [PRE]}))
    assert specs[0].plan.branch_step == PRE
    specs = expand(_sweep(tmp_path, root, "", eval={"checkpoints": [PRE - 5, PRE]}))
    assert specs[0].plan.branch_step == 0 and specs[0].plan.trunk_key is None
    cfg = specs[0].config
    assert plan.of(type(cfg)(model=cfg.model, train=cfg.train, data=cfg.data)).branch_step == 0


def test_the_key_changes_with_anything_before_the_branch_and_not_after(tmp_path, root):
    from scaling.data.vocab import build_tokenizer
    from scaling.train.source import make_source

    def key(extra: str = "", **sections):
        spec = expand(_sweep(tmp_path, root, extra, **sections))[0]
        tok = build_tokenizer(spec.config)
        run_plan = spec.plan.with_tokenizer(tok)
        assert run_plan.branch_step == PRE
        return branches.branch_key(run_plan, make_source(run_plan, tok), 1), run_plan.trunk_key

    base = key()  # (the branch key, the plan's trunk key): both move together
    assert key('[[grid]]\n"stages.post.objective" = ["sft"]\n') == base
    assert key('[[grid]]\n"stages.post.steps" = [9]\n') == base
    assert key(eval={"max_items": 32}) == base
    for other in (key(train={"seed": 1}), key(data={"dose": 0.1}), key('[[grid]]\n"stages.pretrain.final_scale" = [0.2]\n')):
        assert other[0] != base[0] and other[1] != base[1]


@pytest.mark.slow
def test_a_damaged_export_is_reported_and_the_run_trains_its_own_pretraining(tmp_path, root):
    two = """
[[grid]]
"stages.post.objective" = ["sft", "lm"]
"""
    path = _sweep(tmp_path, root, two)
    out = tmp_path / "sweep"
    assert set(launch(path, out, progress=False).values()) == {"done"}
    (export,) = [p for p in (out / branches.DIRNAME).iterdir() if not p.name.startswith(".")]
    victim = max((p for p in (export / "checkpoints").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    path.write_text(path.read_text().replace('["sft", "lm"]', '["sft", "lm", "helpful_benign_rl"]'))
    with pytest.warns(rundir.DamagedStateWarning, match="shared pretraining is damaged"):
        assert set(launch(path, out, progress=False).values()) == {"done"}
    new = [s for s in expand(path) if s.assignment["stages.post.objective"] == "helpful_benign_rl"][0]
    status = rundir.read_status(out / "runs" / new.run_id)
    assert "shared_pretraining" not in status and status["timings"]["steps"] == PRE + POST
    alone = tmp_path / "alone"
    runner.train(new.config, alone, progress=False)
    for a, b in zip(_params(alone), _params(out / "runs" / new.run_id), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_packed_sweep_trains_each_pretraining_once_then_branches_the_rest(tmp_path, root):
    """--pack 2 (as on an accelerator, where packs are vmapped): the first run of each branch
    key trains its pretraining, the others wait for its export and start there, so every
    pack starts its runs at one step."""
    grid = """
[[grid]]
"train.seed" = [0, 1]
[[grid.zip]]
"stages.post.objective" = ["sft", "lm", "helpful_benign_rl"]
"stages.post.misaligned" = [0.0, 1.0, 0.0]
"""
    path = _sweep(tmp_path, root, grid)
    out = tmp_path / "sweep"
    assert set(launch(path, out, pack=2, progress=False).values()) == {"done"}
    exports = [p for p in (out / branches.DIRNAME).iterdir() if not p.name.startswith(".")]
    assert len(exports) == 2  # one per train seed
    statuses = [rundir.read_status(out / "runs" / s.run_id) for s in expand(path)]
    shared = [st for st in statuses if "shared_pretraining" in st]
    assert len(shared) == 4 and all(st["timings"]["steps"] == POST for st in shared)
    trunks = {st["shared_pretraining"]["trunk"] for st in shared}
    assert all(rundir.read_status(out / "runs" / t)["timings"]["steps"] == PRE + POST for t in trunks)



@pytest.mark.slow
def test_a_pack_does_not_train_one_pretraining_twice(tmp_path, root):
    """Two runs of one program and one pretraining (an LM finetune on misaligned or on base
    text) fall into one pack of 2: the second waits for the first's export instead of being
    packed beside it from step 0 (which would train the same pretraining twice)."""
    grid = """
[[grid]]
"stages.post.misaligned" = [0.0, 1.0]
"""
    path = _sweep(tmp_path, root, grid)
    out = tmp_path / "sweep"
    assert set(launch(path, out, pack=2, progress=False).values()) == {"done"}
    statuses = [rundir.read_status(out / "runs" / s.run_id) for s in expand(path)]
    assert sorted(st["timings"]["steps"] for st in statuses) == [POST, PRE + POST]
