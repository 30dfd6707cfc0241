"""The package's layout: every module of ``hsi`` with its line count, the imports between them, the import cycles
and the longest import chain.

    python scripts/layout.py            # a table of modules and lines, then the cycles and the longest chain

Every ``import`` statement counts, those inside functions too: a function-local import that closes a cycle is
still a cycle, only hidden from the interpreter until the function runs.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hsi"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``hsi/data/io.py`` -> ``hsi.data.io``; a package's ``__init__.py`` is the package itself."""
    parts = ("hsi",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``hsi`` modules that module ``name`` imports (relative imports resolved, ``from x import y`` counted
    as an import of ``x.y`` when that is a module, else of ``x``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                found.add(full if full in known else base)
    return {target for target in found if target in known and target != name}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(1000, 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest path of imports (the graph must have no cycle)."""
    memo: dict[str, list[str]] = {}

    def longest_from(node: str) -> list[str]:
        if node not in memo:
            tails = [longest_from(target) for target in sorted(graph[node])]
            memo[node] = [node] + max(tails, key=len, default=[])
        return memo[node]

    return max((longest_from(node) for node in sorted(graph)), key=len, default=[])


def main() -> int:
    found = modules()
    graph = import_graph()
    total = 0
    for name, path in found.items():
        lines = len(path.read_text().splitlines())
        total += lines
        print(f"{name:<40} {lines:>5}")
    print(f"{len(found)} modules, {total} lines")
    loops = cycles(graph)
    for loop in loops:
        print("cycle:", " <-> ".join(loop))
    if not loops:
        chain = longest_chain(graph)
        print(f"longest import chain ({len(chain)} modules): {' -> '.join(chain)}")
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
