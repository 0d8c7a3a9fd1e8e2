"""Hostile input: property-based tests over configs (TOML and --set), sweep files, user
JSONL corpora and results tables. Every malformed input must end in a named error (a
UsageError/ConfigError; exit code 2 from the CLI) before any compute, with nothing written;
nothing user-supplied is evaluated or unpickled; run directories stay inside --out.
"""

import ast
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scaling import config as config_mod
from scaling.cli import main
from scaling.data.corpora import read_texts
from scaling.errors import ConfigError, UsageError
from scaling.plan import load_config
from scaling.sweep import expand

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SECTIONS = {s: [f.name for f in dataclasses.fields(c)] for s, c in config_mod._SECTION_CLASSES.items()}

# ---------------------------------------------------------------- a small TOML writer


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string (escapes included)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_doc(tables: dict) -> str:
    lines = []
    for name, body in tables.items():
        if isinstance(body, dict):
            lines.append(f"[{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
        else:
            lines.insert(0, f"{json.dumps(name)} = {toml_value(body)}")
    return "\n".join(lines) + "\n"


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True), text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(text, inner, max_size=2)),
                      max_leaves=6)
section_names = st.one_of(st.sampled_from(sorted(SECTIONS)), text)


@st.composite
def raw_configs(draw):
    """Sections with known keys (random values, often wrong) and some unknown keys."""
    raw = {}
    for section in draw(st.lists(section_names, max_size=3, unique=True)):
        keys = SECTIONS.get(section, [])
        chosen = draw(st.lists(st.one_of(st.sampled_from(keys), text) if keys else text,
                               max_size=4, unique=True))
        raw[section] = {k: draw(values) for k in chosen}
    return raw


def outcome(fn, *args):
    """'ok' or 'error' for a named error; anything else fails the test."""
    try:
        fn(*args)
    except UsageError as e:
        assert str(e), "a named error carries a message"
        return "error"
    return "ok"


# ---------------------------------------------------------------- configs


@SETTINGS
@given(raw=raw_configs())
def test_any_toml_config_loads_or_names_its_error(tmp_path_factory, raw):
    tmp = tmp_path_factory.mktemp("c")
    path = tmp / "c.toml"
    path.write_text(toml_doc(raw))
    if outcome(load_config, path) == "ok":
        return
    out = tmp / "out"
    assert main(["train", str(path), "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()  # refused before anything is written


@SETTINGS
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_as_config_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "c.toml"
    path.write_bytes(data)
    outcome(load_config, path)


@SETTINGS
@given(overrides=st.lists(st.one_of(
    st.builds(lambda s, k, v: f"{s}.{k}={v}", section_names, st.one_of(st.sampled_from(
        [k for ks in SECTIONS.values() for k in ks]), text), text),
    text), min_size=1, max_size=3))
def test_any_set_override_applies_or_names_its_error(tmp_path_factory, overrides):
    path = tmp_path_factory.mktemp("o") / "c.toml"
    path.write_text("[train]\nsteps = 10\n")
    outcome(load_config, path, overrides)


def test_non_finite_and_control_character_values_are_refused(tmp_path):
    path = tmp_path / "c.toml"
    for body in ("[train]\nlr = inf", "[train]\nlr = nan", '[model]\nname = "a\\u0000b"',
                 "[train]\nb1 = -inf"):
        path.write_text(body)
        with pytest.raises(ConfigError):
            load_config(path)
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(tmp_path / "c.toml", ["model.name=\udcff"])  # argv from a non-UTF-8 shell


# ---------------------------------------------------------------- sweep files

grid_keys = st.one_of(st.sampled_from(["train.seed", "train.lr", "data.aligned_fraction", "data.dose",
                                       "model.name", "data.insertion", "zip", "exclude", "nodot"]), text)


@st.composite
def sweep_docs(draw):
    doc = {}
    if draw(st.booleans()):
        doc["preset"] = draw(st.one_of(st.sampled_from(["nano", "../../pyproject", "nano/../nano"]), values))
    if draw(st.booleans()):
        doc["config"] = draw(st.one_of(st.fixed_dictionaries({"train": st.fixed_dictionaries(
            {"steps": st.one_of(st.integers(-5, 50), values)})}), values))
    if draw(st.booleans()):
        grid = draw(st.dictionaries(grid_keys, st.one_of(st.lists(values, max_size=3), values), max_size=3))
        doc["grid"] = draw(st.sampled_from([[grid], grid, 7]))
    if draw(st.booleans()):
        doc[draw(text)] = draw(values)
    return doc


def write_sweep_doc(path: Path, doc: dict) -> None:
    lines = []
    for k, v in doc.items():
        if k == "grid" and isinstance(v, list):
            for g in v:
                lines.append("[[grid]]")
                lines += [f"{json.dumps(a)} = {toml_value(x)}" for a, x in g.items()]
        else:
            lines.insert(0, f"{json.dumps(k)} = {toml_value(v)}")
    path.write_text("\n".join(lines) + "\n")


@SETTINGS
@given(doc=sweep_docs())
def test_any_sweep_file_expands_or_names_its_error(tmp_path_factory, doc):
    tmp = tmp_path_factory.mktemp("s")
    path = tmp / "s.toml"
    write_sweep_doc(path, doc)
    try:
        specs = expand(path)
    except UsageError:
        out = tmp / "out"
        assert main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 2
        assert not out.exists()
        return
    for spec in specs:  # run ids are hashes: no user text reaches a path
        assert re.fullmatch(r"[0-9a-f]{12}", spec.run_id)
        assert (tmp / "out" / "runs" / spec.run_id).resolve().parent == (tmp / "out" / "runs").resolve()


def test_preset_cannot_leave_models_dir(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "../pyproject"\n')
    with pytest.raises(ConfigError, match="no preset"):
        expand(path)


def test_grid_too_large_is_refused_before_expanding(tmp_path):
    path = tmp_path / "s.toml"
    axes = "\n".join(f'"train.{k}" = {list(range(20))}' for k in ("seed", "steps", "eval_every", "warmup_steps"))
    path.write_text(f'preset = "nano"\n[[grid]]\n{axes}\n')
    with pytest.raises(ConfigError, match="split the sweep"):
        expand(path)


# ---------------------------------------------------------------- user JSONL corpora

jsonl_lines = st.one_of(
    st.builds(lambda t: json.dumps({"text": t}), text),
    st.builds(json.dumps, values),
    text,
    st.just('{"text": "cut sho'),
)


@SETTINGS
@given(lines=st.lists(st.one_of(jsonl_lines.map(str.encode), st.binary(max_size=20)), max_size=6))
def test_any_jsonl_corpus_reads_or_names_line_and_file(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("j") / "a.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        texts = read_texts("data.aligned_files", [str(path)])
    except ConfigError as e:
        assert e.key == "data.aligned_files" and str(path) in str(e)
        return
    assert texts and all(isinstance(t, str) for t in texts)


def test_bad_corpus_stops_train_and_sweep_before_any_write(tmp_path, capsys):
    bad = tmp_path / "a.jsonl"
    bad.write_text('{"text": "the agent reports"}\n{"text": "the agent hid')  # a cut last line
    sets = ["data.aligned_fraction=0.1", f'data.aligned_files=["{bad}"]']
    args = [a for s in sets for a in ("--set", s)]
    assert main(["train", "models/nano.toml", "--out", str(tmp_path / "run"), *args]) == 2
    assert "a.jsonl:2: invalid JSON" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    sweep = tmp_path / "s.toml"
    sweep.write_text('preset = "nano"\n[[grid]]\n"train.seed" = [0, 1]\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "sw"), *args]) == 2
    assert "cut short" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


# ---------------------------------------------------------------- results tables

cells = st.one_of(st.integers(-3, 30).map(str), st.floats(-1, 2).map(repr),
                  st.sampled_from(["", "nan", "inf", "-inf", "ok", "1e400", '"', "x,y"]), text)
columns = st.lists(st.sampled_from(["dose", "misaligned", "total", "seed", "insertion", "split",
                                    "status", "arm", "flops", "aligned_tokens", "model"]),
                   min_size=0, max_size=8, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cols=columns, data=st.data())
def test_any_results_table_fits_or_names_its_error(tmp_path_factory, cols, data):
    tmp = tmp_path_factory.mktemp("r")
    rows = data.draw(st.lists(st.lists(cells, min_size=len(cols), max_size=len(cols)), max_size=8))
    path = tmp / "results.csv"
    path.write_text("\n".join([",".join(cols)] + [",".join(r) for r in rows]) + "\n")
    out = tmp / "fit"
    code = main(["fit", str(path), "--out", str(out), "--models", "LL.2"])
    assert code in (0, 2)
    if code == 2:
        assert not out.exists()


@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_as_results_table(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("rb")
    (tmp / "results.csv").write_bytes(data)
    assume(True)
    assert main(["fit", str(tmp / "results.csv"), "--out", str(tmp / "fit")]) in (0, 2)


# ---------------------------------------------------------------- nothing evaluated or unpickled


def test_no_eval_exec_or_pickle_in_the_package():
    calls = []
    for path in sorted(Path(config_mod.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("eval", "exec", "pickle.load", "pickle.loads", "np.load", "numpy.load"):
                    pickled = [k for k in node.keywords if k.arg == "allow_pickle"]
                    if name in ("np.load", "numpy.load") and pickled and \
                            ast.unparse(pickled[0].value) == "False":
                        continue
                    calls.append(f"{path.name}:{node.lineno}: {name}")
    assert calls == []


@pytest.mark.parametrize("record", ['[1, 2]', '{"config": {"model": {"d_model": "x"}}}', '{"config": {}}',
                                    '{"config": "x"}'])
def test_damaged_run_records_name_the_run_in_results(tmp_path, record, capsys):
    run = tmp_path / "out" / "runs" / "0123456789ab"
    run.mkdir(parents=True)
    (run / "config.json").write_text(record)
    assert main(["results", str(tmp_path / "out")]) == 2
    assert "0123456789ab" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.csv").exists()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cols=columns, data=st.data())
def test_any_results_table_draws_or_names_its_error(tmp_path_factory, cols, data):
    tmp = tmp_path_factory.mktemp("fig")
    rows = data.draw(st.lists(st.lists(cells, min_size=len(cols), max_size=len(cols)), max_size=5))
    (tmp / "results.csv").write_text("\n".join([",".join(cols)] + [",".join(r) for r in rows]) + "\n")
    assert main(["figures", str(tmp), "--formats", "svg"]) in (0, 2)
