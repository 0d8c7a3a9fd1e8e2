"""The package's import graph, read from the source (ast, imports inside functions included,
and modules a package loads by name through importlib): no module imports itself back through
others, config is the ground floor, training and evaluation never import each other
(scaling.run joins them), only the command modules (scaling/cli/) parse arguments, and no
lower home imports a higher one (the results-table contract, the statistics, the fits)."""

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
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if _imports_by_name(node):
            found |= _loaded_by_name(node, tree, name, modules)
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


def _imports_by_name(node: ast.AST) -> bool:
    """A call of importlib.import_module or __import__."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or \
        (isinstance(f, ast.Name) and f.id in ("import_module", "__import__"))


def _loaded_by_name(call: ast.Call, tree: ast.AST, name: str, modules: set[str]) -> set[str]:
    """The package's modules an import by name may load: f"{__name__}.{x}" (a registry loading
    its own modules, as scaling.train.objectives does) any module below `name`; a string constant that
    module; any other expression every module whose name the source spells as a string
    (scaling.cli's command table)."""
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.FormattedValue) \
            and isinstance(arg.values[0].value, ast.Name) and arg.values[0].value.id == "__name__":
        return {m for m in modules if m.startswith(f"{name}.")}
    if isinstance(arg, ast.Constant):
        return {arg.value} & modules
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in modules}


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
    assert "scaling.stages" in graph["scaling.data.mixture"]  # a module-level import
    assert "scaling.run" in graph["scaling.sweep"]  # an import inside a function


def test_the_checker_follows_a_registry_that_imports_by_name(tmp_path):
    # posttrain imports the registry, the registry loads its modules by name, and one of them
    # imports posttrain back: the circle scaling.objectives had, invisible to import statements
    root = tmp_path / "scaling"
    (root / "objectives").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "posttrain.py").write_text("from scaling import objectives\n")
    (root / "objectives" / "__init__.py").write_text(
        "import importlib\n\ndef load():\n    importlib.import_module(f'{__name__}.sft')\n")
    (root / "objectives" / "sft.py").write_text("def source():\n    from scaling.posttrain import SFTData\n")
    paths = sorted(root.rglob("*.py"))
    names = {".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__") for p in paths}
    graph = {n: imported_modules(p, n, names) for n, p in zip(sorted(names), sorted(paths, key=lambda p: ".".join(
        p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__")))}
    assert "scaling.objectives.sft" in graph["scaling.objectives"]
    assert cycles(graph) == [["scaling.objectives", "scaling.objectives.sft", "scaling.posttrain"]]
    assert not registry_and_plugins(cycles(graph)[0])
    assert "scaling.train.objectives.sft" in import_graph()["scaling.train.objectives"]  # the real registry


def registry_and_plugins(component: list[str]) -> bool:
    """A package and the modules it loads by name, which import it back to register themselves
    (scaling.objectives, scaling.cli): one unit by design, not a circle between homes."""
    package = min(component, key=len)
    return all(m == package or m.startswith(f"{package}.") for m in component)


def test_no_import_circles():
    """Not even the treatments one main had (treatments.extra_splits scored items, importing
    evaluate, which imports baselines, mixture ... and mixture imports treatments): the scoring
    half now lives in scaling.evaluate, the data half below scaling.data.mixture."""
    graph = import_graph()
    assert [c for c in cycles(graph) if not registry_and_plugins(c)] == []
    assert "scaling.evaluate" not in reached(graph, "scaling.treatments")


def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for m in graph[todo.pop()] - seen:
            seen.add(m)
            todo.append(m)
    return seen


def home(graph: dict[str, set[str]], prefix: str) -> list[str]:
    return [m for m in graph if m == prefix or m.startswith(f"{prefix}.")]


def test_the_results_table_contract_is_below_everything_it_serves():
    """scaling.table imports nothing of the package but its errors: readers of results.csv never
    reach the run side (JAX, the world, the data) through it."""
    assert reached(import_graph(), "scaling.table") <= {"scaling.errors"}


def test_statistics_import_only_the_table_contract():
    graph = import_graph()
    allowed = {"scaling.table", "scaling.errors", *home(graph, "scaling.stats")}
    for module in home(graph, "scaling.stats"):
        assert reached(graph, module) <= allowed, module


RUN_SIDE = ("baselines", "world", "data", "mixture", "datasets", "train")


def test_the_reports_do_not_reach_the_run_side():
    """scaling.reports (fit.json, fit.md, transfer.md, ...) reads tables and fits: it never
    reaches how the rows were made (RUN_SIDE; a home may be a module or a package)."""
    graph = import_graph()
    for module in home(graph, "scaling.reports"):
        bad = [m for m in reached(graph, module) for higher in RUN_SIDE
               if m == f"scaling.{higher}" or m.startswith(f"scaling.{higher}.")]
        assert bad == [], f"{module} reaches {', '.join(sorted(bad))}"


def studies_imports(path: Path) -> list[str]:
    """The modules of the top-level studies/ folder that the source at `path` imports, anywhere
    in its body (by statement or by importlib name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif _imports_by_name(node) and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        found += [n for n in names if n == "studies" or n.startswith("studies.")]
    return found


def test_the_package_never_imports_the_studies(tmp_path):
    """studies/ (the reference suite's findings, the literature's numbers, backfills) imports
    scaling; scaling never imports it back."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from studies.findings import render\n    import importlib\n"
                      "    importlib.import_module('studies.backfill')\n")
    assert studies_imports(source) == ["studies.findings", "studies.backfill"]
    offenders = {module_name(p): studies_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
    assert {m: found for m, found in offenders.items() if found} == {}


FIGURES_NEVER_REACH = ("world", "data", "train", "baselines", "evaluate", "sweep")  # data: mixture, datasets, ...


def imports_scipy_stats(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.startswith("scipy.stats") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("scipy.stats")
                                                 or node.module == "scipy" and any(a.name == "stats" for a in node.names)):
            return True
    return False


def test_the_figures_draw_tables_and_never_reach_the_run_side(tmp_path):
    """scaling.figures draws the tables scaling.reports computes: no module of it reaches a
    run-side module (through any import, importlib included) or imports scipy.stats."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from scipy import stats\n")
    assert imports_scipy_stats(source)
    source.write_text("from scipy import special\nimport scipy.optimize\n")
    assert not imports_scipy_stats(source)
    graph = import_graph()
    run_side = {m for h in FIGURES_NEVER_REACH for m in home(graph, f"scaling.{h}")}
    figures = home(graph, "scaling.figures")
    assert len(figures) > 5
    for module in figures:
        assert not reached(graph, module) & run_side, f"{module} reaches {sorted(reached(graph, module) & run_side)}"
        path = PACKAGE.parent.joinpath(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        assert not imports_scipy_stats(path), module


def _within(module: str, homes) -> bool:
    return any(module == h or module.startswith(f"{h}.") for h in homes)


def test_the_world_knows_no_tokens_config_data_or_training():
    """scaling.world writes text from a seed: nothing it reaches tokenizes, parses a config,
    builds pools, models or trains."""
    graph = import_graph()
    banned = ("scaling.data", "scaling.config", "scaling.model", "scaling.train")
    for module in home(graph, "scaling.world"):
        assert not [m for m in reached(graph, module) if _within(m, banned)], module


def test_the_data_side_imports_no_model_training_evaluation_or_launcher():
    """scaling.data turns text into rows: none of its modules imports the model, training
    (the objectives' registry included: a stage says whether it reads the mixture,
    scaling.stages.Stage.reads_mixture), evaluation or the sweep launcher."""
    graph = import_graph()
    banned = ("scaling.model", "scaling.train", "scaling.evaluate", "scaling.sweep")
    for module in home(graph, "scaling.data"):
        assert not [m for m in graph[module] if _within(m, banned)], module


def test_config_is_the_ground_floor():
    assert import_graph()["scaling.config"] <= {"scaling.errors"}


def test_no_import_between_training_and_evaluation():
    graph = import_graph()
    assert not set(home(graph, "scaling.train")) & graph["scaling.evaluate"]
    for module in home(graph, "scaling.train"):
        assert "scaling.evaluate" not in graph[module], module


@pytest.mark.parametrize("higher", ["evaluate", "branches", "rundir", "run", "sweep", "baselines"])
def test_training_writes_no_files_and_knows_neither_evaluation_nor_branches(higher):
    """scaling/train/ (steps, objectives, source, schedules, the loop) reaches none of the run
    directory, evaluation, shared pretraining or the launcher, even through other modules: the
    loop's hooks are wired by scaling.run."""
    graph = import_graph()
    for module in home(graph, "scaling.train"):
        assert f"scaling.{higher}" not in reached(graph, module), f"{module} reaches scaling.{higher}"


# What the sweep launcher may import itself: the plan and the one training entry (scaling.run),
# the JAX-free run-directory files (io), the executors; besides them the config parsing its grid
# expansion needs (config, errors, presets), the input digests of a run id (inputs), the corpus
# check before any claim (corpora) and the dry run's FLOPs and step timing (model, bench).
LAUNCHER_IMPORTS = {"scaling.plan", "scaling.run", "scaling.io", "scaling.executors", "scaling.config",
                    "scaling.errors", "scaling.presets", "scaling.inputs", "scaling.data.corpora", "scaling.model",
                    "scaling.bench"}


def test_the_launcher_does_not_reach_inside_runs():
    assert import_graph()["scaling.sweep"] <= LAUNCHER_IMPORTS


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
    for reader in ("scaling.world", "scaling.evaluate", "scaling.reports.fit", "scaling.figures.style",
                   "scaling.data.scenarios", "scaling.reports.answer"):
        assert "scaling.splits" in graph[reader], reader


def test_the_executors_do_not_import_the_launcher():
    graph = import_graph()
    assert "scaling.sweep" not in graph["scaling.executors"]
    assert "scaling.executors" in graph["scaling.sweep"]


def test_no_module_global_heldout_cache():
    import scaling.evaluate as E

    assert not hasattr(E, "_HELDOUT")
