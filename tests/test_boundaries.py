"""The import boundaries of ARCHITECTURE.md, checked on the source with `ast`.

- runtime/ and consensus/ never import actors/;
- nothing outside sim/ and tests/ imports sim/;
- consensus/ imports no trio, socket, time or os (it is sans-IO: its caller does I/O).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["runtime", "consensus", "actors", "sim", "bench", "scripts"]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def python_files(package: str) -> list[Path]:
    base = ROOT / package
    return sorted(p for p in base.rglob("*.py") if ".venv" not in p.parts) if base.exists() else []


def top(module: str) -> str:
    return module.split(".")[0]


def violations(package: str, forbidden: set[str]) -> list[str]:
    out = []
    for path in python_files(package):
        for line, module in imported_modules(path):
            if top(module) in forbidden:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


def test_runtime_does_not_import_actors_or_consensus_or_sim() -> None:
    assert violations("runtime", {"actors", "consensus", "sim"}) == []


def test_consensus_does_not_import_actors_or_sim() -> None:
    assert violations("consensus", {"actors", "sim"}) == []


def test_consensus_is_sans_io() -> None:
    assert violations("consensus", {"trio", "socket", "time", "os", "anyio", "asyncio"}) == []


@pytest.mark.parametrize("package", ["runtime", "consensus", "actors", "bench", "scripts"])
def test_only_sim_and_tests_import_sim(package: str) -> None:
    assert violations(package, {"sim"}) == []


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nfrom sim.world import World\nimport importlib\n"
        "importlib.import_module('sim.x')\n__import__('trio')\n"
    )
    assert [module for _, module in imported_modules(sample)] == [
        "os",
        "sim.world",
        "importlib",
        "sim.x",
        "trio",
    ]
