"""Module structure: training and evaluation never import each other, not even inside a
function (the AST holds every import statement, wherever it sits)."""

import ast
from pathlib import Path

import pytest

SCALING = Path(__file__).resolve().parent.parent / "scaling"


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names (relative ones resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = "scaling" + (f".{base}" if base else "")
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # `from scaling import train`
    return names


@pytest.mark.parametrize("src,dst", [("train", "evaluate"), ("evaluate", "train")])
def test_no_import_between_training_and_evaluation(src, dst):
    names = imported_modules(SCALING / f"{src}.py")
    assert f"scaling.{dst}" not in names, f"scaling/{src}.py imports scaling.{dst}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from scaling import evaluate\n    from scaling.train import x\n")
    assert {"scaling.evaluate", "scaling.train"} <= imported_modules(path)


def test_no_module_global_heldout_cache():
    import scaling.evaluate as E

    assert not hasattr(E, "_HELDOUT")
