import json
import os
from pathlib import Path

import pytest
from conftest import tiny_sweep

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "colab_tpu.ipynb"
# A study small enough for CI: the tiny model, 3 doses x 2 seeds, 96 eval items per run.
TINY = tiny_sweep('[[grid]]\n"data.aligned_fraction" = [0.0, 0.01, 0.1]\n"train.seed" = [0, 1]\n',
                  train={"batch_size": 8, "steps_per_call": 10, "checkpoint_every": 10},
                  eval={"enabled": True, "max_items": 96})


def test_notebook_parameters_cell_is_tagged():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "PACKED_SWEEP" in tagged[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # installs the package itself (a checkout editable, or the wheel), no jax extras that would
    # replace the runtime's jax; no call of the retired colab_tpu.setup_tpu()
    assert '"install", "--quiet", *target]' in code and '[SOURCE] if wheel else ["-e", "."]' in code
    assert "setup_tpu(" not in code
    # one install source, set in the parameters cell; the sweeps are written on Drive as they go
    assert 'SOURCE = ""' in tagged[0].source and not any("SOURCE =" in c.source for c in nb.cells
                                                         if c.cell_type == "code" and c is not tagged[0])
    assert "copytree" not in code and 'DRIVE_DIR if on_drive' in code
    # nothing named: the cell after the parameters stops before it mounts or installs anything
    setup = nb.cells[nb.cells.index(tagged[0]) + 1].source
    assert setup.startswith("if not SOURCE:\n    raise SystemExit(")


def test_notebook_copies_of_the_sweeps_are_the_repositorys():
    """A wheel holds no sweeps/: the notebook writes its own copies, which must not drift."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(c.source for c in nb.cells if "SWEEPS = {" in c.source)
    namespace = {}
    exec(setup[setup.index("SWEEPS = {"):setup.index("for name, text in SWEEPS")], namespace)
    assert namespace["SWEEPS"] == {name: (ROOT / "sweeps" / name).read_text() for name in ("quickstart.toml", "sizes.toml")}


def test_notebook_with_nothing_named_stops_in_its_first_cell_saying_what_to_set():
    """Run all with SOURCE empty: one sentence naming SOURCE, and nothing after it runs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    ran = [i for i, c in enumerate(code) if c.get("execution_count")]
    assert ran == [0, 1]  # the parameters, then the cell that stops
    errors = [(o.ename, o.evalue) for o in code[1].outputs if o.output_type == "error"]
    assert errors == [("SystemExit", "Set SOURCE in the cell above to this package's Git URL, a Drive folder "
                                     "holding a checkout of it, or a built wheel (.whl), then Run all again.")]


@pytest.mark.slow
def test_notebook_runs_headless_on_cpu(tmp_path):
    """The Colab notebook, executed top to bottom by a Jupyter kernel with small parameters
    (papermill's convention: a cell after the one tagged `parameters` overrides it)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(TINY)
    packed = tmp_path / "packed.toml"
    packed.write_text(TINY.replace('"train.seed" = [0, 1]', 'preset = ["nano", "micro"]\n"train.seed" = [0, 1]'))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    overrides = {"SOURCE": str(ROOT), "INSTALL": False, "MOUNT_DRIVE": False, "QUICKSTART": str(sweep),
                 "PACKED_SWEEP": str(packed), "PACK": 4, "DRIVE_DIR": str(tmp_path / "drive" / "scaling")}
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else v}" for k, v in overrides.items())))
    (tmp_path / "drive").mkdir()  # a "mounted Drive": the sweeps are written there as they go
    os.environ.setdefault("PYTHONPATH", str(ROOT))

    def execute():
        client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": str(ROOT)}})
        client.execute()
        return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

    printed = execute()
    out = tmp_path / "drive" / "scaling"
    assert (out / "quickstart" / "results.csv").exists() and (out / "quickstart" / "fit.json").exists()
    results = (out / "sizes" / "results.csv").read_text()
    assert "non_embedding_params" in results and "micro" in results
    assert "device(s)" in printed and "pack 4" in printed and str(out) in printed
    assert "world that ran: the embedded alignment world v3 (normal, world seed 0)" in printed
    shown = [o["data"].get("text/markdown") for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") == "display_data"]
    assert (out / "quickstart" / "answer.md").read_text() in shown  # the answer, not fit.md's head

    # A reconnect: the runtime lost everything but Drive; one run was cut mid-training (its
    # status back to running, its last checkpoint gone). Run all again resumes, trains the
    # cut run from its checkpoint and leaves the finished ones alone.
    runs = sorted((out / "quickstart" / "runs").iterdir())
    cut, kept = runs[0], runs[1:]
    mtimes = {r: (r / "metrics.jsonl").stat().st_mtime_ns for r in kept}
    status = json.loads((cut / "status.json").read_text())
    steps = sorted(int(p.name) for p in (cut / "checkpoints").iterdir() if p.name.isdigit())
    import shutil

    shutil.rmtree(cut / "checkpoints" / str(steps[-1]))
    (cut / "status.json").write_text(json.dumps({**status, "status": "running", "step": steps[-2]}))
    (cut / "eval.json").unlink()
    printed = execute()
    assert json.loads((cut / "status.json").read_text())["status"] == "done" and (cut / "eval.json").exists()
    assert {r: (r / "metrics.jsonl").stat().st_mtime_ns for r in kept} == mtimes
    assert f"training 1 run(s): {cut.name}" in printed
