"""The package's import graph, read from the source (ast, imports inside functions included):
no module imports itself back through others, config is the ground floor, and training and
evaluation never import each other (scaling.pipeline joins them), and only the command
modules (scaling/cli/) parse arguments."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "scaling"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that module `name` (at `path`) imports anywhere in its body
    (`from scaling import x` imports the module scaling.x when there is one, else a name of
    scaling's __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, module_name(p), modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import circle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_circle_and_in_function_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "m.py"
    source.write_text("import os\nfrom . import fit\n\ndef f():\n    from scaling import stages\n"
                      "    import scaling.world\n    from .fit.curves import LL2\n")
    names = {"scaling", "scaling.stages", "scaling.world", "scaling.m", "scaling.fit", "scaling.fit.curves"}
    assert imported_modules(source, "scaling.m", names) == names - {"scaling", "scaling.m"}
    source.write_text("from scaling import __version__\n")  # a name of the package's __init__
    assert imported_modules(source, "scaling.m", names) == {"scaling"}
    graph = import_graph()
    assert "scaling.stages" in graph["scaling.mixture"]  # a module-level import
    assert "scaling.train" in graph["scaling.sweep"]  # an import inside a function


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_config_is_the_ground_floor():
    assert import_graph()["scaling.config"] <= {"scaling.errors"}


@pytest.mark.parametrize("src,dst", [("train", "evaluate"), ("evaluate", "train")])
def test_no_import_between_training_and_evaluation(src, dst):
    assert f"scaling.{dst}" not in import_graph()[f"scaling.{src}"], f"scaling/{src}.py imports scaling.{dst}"


def imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_only_the_commands_import_argparse(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from argparse import ArgumentParser\n")
    assert imports_argparse(source)
    source.write_text("import argparse_extra\nx = 'import argparse'\n")
    assert not imports_argparse(source)
    outside = [str(p.relative_to(PACKAGE.parent)) for p in sorted(PACKAGE.rglob("*.py"))
               if "cli" not in p.relative_to(PACKAGE).parts[:1] and imports_argparse(p)]
    assert outside == []
    assert imports_argparse(PACKAGE / "cli" / "__init__.py")


def test_no_module_outside_the_commands_defines_one():
    """The commands' argparse definitions and run functions live in scaling/cli/ only."""
    defining = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        names = {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)}
        if {"add_arguments", "run"} & names:
            defining.append(module_name(path))
    assert defining == []


def test_splits_are_declared_below_everything():
    """scaling.splits imports no module of the package (so no JAX): world, evaluation, fit,
    findings and figures all read it."""
    graph = import_graph()
    assert graph["scaling.splits"] == set()
    for reader in ("scaling.world", "scaling.evaluate", "scaling.fit.contrasts", "scaling.findings", "scaling.figures",
                   "scaling.scenarios", "scaling.study"):
        assert "scaling.splits" in graph[reader], reader


def test_the_executors_do_not_import_the_launcher():
    graph = import_graph()
    assert "scaling.sweep" not in graph["scaling.executors"]
    assert "scaling.executors" in graph["scaling.sweep"]


def test_no_module_global_heldout_cache():
    import scaling.evaluate as E

    assert not hasattr(E, "_HELDOUT")
