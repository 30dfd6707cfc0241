"""The public functions and methods of ``hsi`` that lack type hints, counted per module.

    python scripts/annotations.py           # one line per module: unannotated / public, then the total
    python scripts/annotations.py -v        # ... and the names of the unannotated functions

Public: a module-level function or a method of a module-level class whose names do not start with ``_`` (dunder
methods such as ``__init__`` and ``__call__`` count). Annotated: every parameter but a method's ``self`` / ``cls``
has a hint, and so does the return (``__init__`` needs none: it returns None).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hsi"


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _annotated(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> bool:
    args = node.args
    positional = args.posonlyargs + args.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if method and not static:
        positional = positional[1:]
    params = positional + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a is not None]
    return all(p.annotation is not None for p in params) and (node.returns is not None or node.name == "__init__")


def unannotated(path: Path) -> tuple[int, list[str]]:
    """The number of public functions in the file at ``path`` and the qualified names of those without hints."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    public: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, bool]] = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, functions) and _public(node.name):
            public.append((node.name, node, False))
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            public += [(f"{node.name}.{item.name}", item, True) for item in node.body
                       if isinstance(item, functions) and _public(item.name)]
    return len(public), [name for name, node, method in public if not _annotated(node, method)]


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ("hsi",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def counts(root: Path = PACKAGE) -> dict[str, tuple[int, list[str]]]:
    """Module name -> (public functions, names of the unannotated ones), for every module under ``root``."""
    return {module_name(path, root): unannotated(path) for path in sorted(root.rglob("*.py"))}


def main(argv: list[str]) -> int:
    found = counts()
    for name, (public, missing) in found.items():
        print(f"{name:<40} {len(missing):>4} / {public:<4}" + (f"  {', '.join(missing)}" if "-v" in argv else ""))
    total = sum(public for public, _ in found.values())
    print(f"{sum(len(missing) for _, missing in found.values())} of {total} public functions lack type hints")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
