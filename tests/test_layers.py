"""The package's layers (docs/architecture.md): lower layers never import upper ones, trials
never import MLflow, and no two modules import each other in a circle (pure source reads)."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from support import REPO

PACKAGE = REPO / "platform" / "trialforge"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Every module `path` imports: anywhere in it, or only at module level (type-checking
    imports included)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if not top_level_only else _top_level(tree.body)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    statements: list[ast.stmt] = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks
            statements.extend(_top_level(node.body))
    return statements


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("train", ("mlflow", "trialforge.tracking", "trialforge.search", "trialforge.registry",
               "trialforge.catalog", "optuna")),
    ("models", ("ray", "mlflow", "optuna", "trialforge.train", "trialforge.search")),
    ("data", ("ray", "mlflow", "optuna", "trialforge.train", "trialforge.search")),
    ("tracking", ("ray", "optuna", "trialforge.search", "trialforge.train.loop")),
    ("catalog", ("ray", "mlflow", "optuna", "torch")),
    ("streaming", ("mlflow", "optuna", "torch", "trialforge.train", "trialforge.search")),
])
def test_a_layer_imports_nothing_above_it(folder: str, forbidden: tuple[str, ...]) -> None:
    offending = {
        f"{path.relative_to(REPO)}: {name}"
        for path in _sources(folder)
        for name in _imports(path, top_level_only=False)
        if any(name == banned or name.startswith(f"{banned}.") for banned in forbidden)
    }
    assert not offending, sorted(offending)


def test_no_two_modules_import_each_other_in_a_circle() -> None:
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: {imported for imported in _imports(path, top_level_only=True)
                    if imported in modules and imported != name}
             for name, path in modules.items()}
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start and len(trail) > 1 and not _is_package_export(trail):
                    circles.append(" -> ".join([*trail, start]))
                elif nxt not in seen and nxt.startswith("trialforge."):
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert not circles, circles


def _is_package_export(trail: list[str]) -> bool:
    """A package's `__init__` re-exporting its own modules is not a circle of concepts."""
    return any(b.startswith(f"{a}.") or a.startswith(f"{b}.") for a, b in itertools.pairwise(trail))
