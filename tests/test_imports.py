"""The package's import graph: no cycles, the models never reach into the data package, and the
core never imports a tool."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnnlab"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every rnnlab module -> the rnnlab modules it imports (a package counts as its __init__)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            targets |= {c for c in candidates if c in modules and c != name}
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A package's __init__ importing its own submodules is not a cycle, so edges into a parent
    package from its children are ignored."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if node.startswith(target + "."):  # a child importing its package's __init__
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target, [*stack, target])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("package", ["rnnlab.models"])
def test_models_do_not_import_the_data_package(package: str) -> None:
    graph = import_graph()
    offenders = {
        (module, target)
        for module, targets in graph.items()
        if module == package or module.startswith(package + ".")
        for target in targets
        if target == "rnnlab.data" or target.startswith("rnnlab.data.")
    }
    assert not offenders


# the core: every subpackage but the tools
CORE = sorted(f"rnnlab.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py"))
CORE.remove("rnnlab.tools")


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("package", CORE)
def test_the_core_does_not_import_the_tools(package: str) -> None:
    offenders = {
        (module, target)
        for module, targets in import_graph().items()
        if _inside(module, package)
        for target in targets
        if _inside(target, "rnnlab.tools")
    }
    assert not offenders


def test_the_package_root_holds_no_tool_module() -> None:
    """Tools live in rnnlab.tools; beside the subpackages the root keeps only the data facts."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "meta.py"]


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys, warnings
import datasets, hydra, lightning, matplotlib, torch, wandb  # their own import-time filters
import rnnlab
sys.modules["sweeps"] = None  # an optional extra, missing: a module that needs it may not exit
before = list(warnings.filters)
for module in pkgutil.walk_packages(rnnlab.__path__, "rnnlab."):
    importlib.import_module(module.name)
print([f for f in warnings.filters if f not in before])
"""


def test_importing_any_module_runs_nothing_exits_never_and_sets_no_warning_filter() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
