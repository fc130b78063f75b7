"""The shape of the code base: what imports what, and how big the pieces are.

The wings (tools/, tui/, bench/, examples/, scripts/) are the SDK's first users: if they
need a private module, the public API is missing something. ``import agentkit`` stays
cheap: the llama.cpp backend loads on first use. Library modules stay small enough to
read in one sitting.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WINGS = ("tools", "tui", "bench", "examples", "scripts")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``agentkit`` import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    package = "agentkit." + path.parent.name if path.parent.name in ("tools", "tui") else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level and package:
                module = f"{package}.{module}" if module else package
            found.append((node.lineno, module))
            if not node.level:  # a wing's own private names are its business
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m == "agentkit" or m.startswith("agentkit.")]


def _wing_files() -> list[Path]:
    return sorted(p for wing in WINGS for p in (ROOT / wing).rglob("*.py"))


def test_the_wings_use_only_the_public_api() -> None:
    private = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _wing_files()
        for line, module in _imports(path)
        if any(part.startswith("_") for part in module.split(".")[1:])
    ]
    assert private == [], "private agentkit modules imported by the wings:\n" + "\n".join(private)


def test_the_layout_check_sees_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "tools" / "x.py"
    sample.parent.mkdir()
    sample.write_text("from agentkit._errors import ToolError\nfrom agentkit import tool\n")
    assert [m for _, m in _imports(sample)] == [
        "agentkit._errors",
        "agentkit._errors.ToolError",
        "agentkit",
        "agentkit.tool",
    ]


@pytest.mark.parametrize("module", ["agentkit", "agentkit.cli", "agentkit.tui", "agentkit.tools"])
def test_importing_does_not_load_llama_cpp(module: str) -> None:
    code = f"import sys, {module}; print('llama_cpp' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["False", "False"]


def test_the_backend_loads_on_first_use() -> None:
    code = "import sys, agentkit; agentkit.LlamaCppModel; print('llama_cpp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "True"


def _library_files() -> list[Path]:
    return sorted((ROOT / "agentkit").rglob("*.py"))


def test_library_modules_are_small() -> None:
    big = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in _library_files()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    ]
    assert big == [], f"modules over {MAX_FILE_LINES} lines:\n" + "\n".join(big)


def test_library_functions_are_short() -> None:
    long = []
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_every_subpackage_is_packaged() -> None:
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "agentkit." + p.parent.name if p.parent.name != "agentkit" else "agentkit"
        for p in (ROOT / "agentkit").glob("**/__init__.py")
    }
    assert found | {"agentkit.tools", "agentkit.tui"} <= listed, sorted(found - listed)
