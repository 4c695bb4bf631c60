"""The grading package is pure Python: no Django, standard library only (style.md)."""

import ast
import sys
from pathlib import Path

import pytest

GRADING_DIR = Path(__file__).resolve().parents[2] / "toxicity" / "grading"
FILES = sorted(GRADING_DIR.glob("*.py"))


def test_the_grading_modules_are_found():
    names = {path.name for path in FILES}
    assert {"__init__.py", "inputs.py", "crs.py", "icans.py", "engine.py"} <= names


def _imported_modules(tree):
    """(module name, line) of every absolute import, including __import__/import_module calls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("__import__", "import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value, node.lineno


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_django_import(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(name, line) for name, line in _imported_modules(tree)
           if name == "django" or name.startswith("django.") or name.startswith("rest_framework")]
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_standard_library_only(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    outside = [(name, line) for name, line in _imported_modules(tree)
               if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    assert not outside, f"{path.name} imports outside the standard library: {outside}"
