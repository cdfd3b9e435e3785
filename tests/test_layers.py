"""The layers hold: the import-linter contracts catch a forbidden import even inside a function, and core
has no dynamic import (importlib.import_module, __import__) of what the contracts forbid, which they cannot see."""
import ast
import json
import os
import shutil
import subprocess
import sys
try:
    import tomllib
except ImportError:   # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LINTER = PYPROJECT["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"   # beside the interpreter running the tests: the venv's


def forbidden_in_core() -> tuple[str, ...]:
    """What the contracts keep out of padlens.core: the forbidden modules and every layer above it."""
    names = []
    for c in LINTER["contracts"]:
        if c["type"] == "forbidden" and "padlens.core" in c["source_modules"]:
            names += c["forbidden_modules"]
        elif c["type"] == "layers" and "padlens.core" in c["layers"]:
            names += c["layers"][:c["layers"].index("padlens.core")]
    return tuple(names)


def toml_table(header: str, table: dict) -> str:
    """A TOML table of strings, booleans and lists of strings (all the contracts hold); JSON writes those as TOML."""
    assert all(isinstance(v, (str, bool, list)) for v in table.values()), f"not a flat table: {table}"
    return "\n".join([header, *(f"{k} = {json.dumps(v)}" for k, v in table.items())])


@pytest.fixture
def copy(tmp_path):
    """The packages' Python files at tmp/padlens/<part> (as pyproject maps them), with the repository's contracts."""
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        for src in (ROOT / folder).rglob("*.py"):
            dest = tmp_path.joinpath(*package.split("."), src.relative_to(ROOT / folder))
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    top = {k: v for k, v in LINTER.items() if k != "contracts"}
    (tmp_path / "pyproject.toml").write_text("\n\n".join(
        [toml_table("[tool.importlinter]", top),
         *(toml_table("[[tool.importlinter.contracts]]", c) for c in LINTER["contracts"])]) + "\n")
    return tmp_path


def lint(where: Path) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS.is_file(), f"{LINT_IMPORTS} missing: install the test extra (pip install -e '.[test]')"
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], check=False, cwd=where, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(where)}, timeout=120)


@pytest.mark.parametrize("statement, contract", [("import PyQt6", "core stays free of Qt"),
                                                 ("from padlens.gui import worker", "cli > gui > core")])
def test_a_forbidden_import_inside_a_function_in_core_breaks_the_contracts(copy, statement, contract):
    kept = lint(copy)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout
    module = copy / "padlens" / "core" / "mosaic.py"
    module.write_text(module.read_text() + f"\n\ndef f():\n    {statement}\n")
    broken = lint(copy)
    assert broken.returncode != 0 and f"{contract} BROKEN" in broken.stdout, broken.stdout + broken.stderr
    assert "padlens.core.mosaic -> " in broken.stdout, "the report names the module with the import"


def dynamic_imports(source: str) -> list[tuple[int, str | None]]:
    """(line, module name) of every importlib.import_module / import_module / __import__ call; None for a name
    computed at run time."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in ("import_module", "__import__"):
            arg = node.args[0] if node.args else None
            found.append((node.lineno, arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                          else None))
    return found


def test_the_dynamic_import_check_sees_calls_not_comments():
    source = ("import importlib\nimport importlib as il\nfrom importlib import import_module\n"
              "# importlib.import_module('PyQt6')\ntext = \"__import__('pyqtgraph')\"\n"
              "def f(name):\n    importlib.import_module('PyQt6.QtCore')\n    il.import_module('padlens.gui.figures')\n"
              "    import_module(name)\n    return __import__('pyqtgraph')\n")
    assert dynamic_imports(source) == [(7, "PyQt6.QtCore"), (8, "padlens.gui.figures"), (9, None), (10, "pyqtgraph")]


def test_core_has_no_dynamic_import_of_what_the_contracts_forbid():
    forbidden = forbidden_in_core()
    assert {"PyQt6", "pyqtgraph", "padlens.gui", "padlens.cli"} <= set(forbidden), forbidden
    bad = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for line, name in dynamic_imports(path.read_text()):
            if name is None or any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"core/{path.relative_to(ROOT / 'core')}:{line} imports {name or 'a computed name'}")
    assert not bad, ("core must not import Qt, pyqtgraph, padlens.gui or padlens.cli, not even through importlib "
                     "(import-linter cannot see it): " + "; ".join(bad))
