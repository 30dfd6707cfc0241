"""Rewrite the documentation's result tables from ``benchmarks/results/``, or check that they are up to date.

    python scripts/results_pages.py            # rewrite every generated table
    python scripts/results_pages.py --check    # exit 1, naming the stale pages, if any committed table differs

Each table is made by the benchmark script that owns its figures: ``benchmarks/reproduce.py``'s ``table`` and
``zoo_table`` (the result JSON files), ``benchmarks/compare_table.py``'s ``table`` (two ``hsi compare`` folders
side by side) and ``folder_table`` (one folder's ``results.md``, as ``hsi compare`` wrote it). A page holds a table
between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; a file that is wholly a table (``results.md``,
``zoo.md``) is rewritten whole.
"""
import argparse
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_table  # noqa: E402
import reproduce  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
COMPARE = RESULTS / "compare"
COMPARED = [COMPARE / "ip-random-10", COMPARE / "ip-disjoint-10"]

#: name -> the function printing that table
TABLES: dict[str, Callable[[], str]] = {
    "reproduce": lambda: reproduce.table(RESULTS),
    "zoo": lambda: reproduce.zoo_table(RESULTS),
    "compare": lambda: compare_table.table(COMPARED),
    **{f"compare/{folder.name}": (lambda folder=folder: compare_table.folder_table(folder)) for folder in COMPARED},
}

#: files that are one table, whole
WHOLE = {RESULTS / "results.md": "reproduce", RESULTS / "zoo.md": "zoo",
         **{folder / "results.md": f"compare/{folder.name}" for folder in COMPARED}}

#: pages holding tables between markers
PAGES = [ROOT / "README.md", ROOT / "docs" / "results.md", ROOT / "docs" / "comparing.md", ROOT / "docs" / "models.md"]

MARKED = re.compile(r"(<!-- results:(?P<name>[\w/.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def rewritten(text: str, tables: dict[str, str], page: Path) -> str:
    """``text`` with the body between each pair of markers replaced by its table."""
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in tables:
            raise SystemExit(f"{page}: unknown table {name!r} between markers; known: {', '.join(tables)}")
        return match[1] + tables[name] + match[4]

    return MARKED.sub(fill, text)


def pages() -> dict[Path, str]:
    """Every generated file and its text as the tables make it."""
    made: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in made:
            made[name] = TABLES[name]()
        return made[name]

    out = {path: get(name) for path, name in WHOLE.items()}
    for page in PAGES:
        text = page.read_text()
        names = {m["name"] for m in MARKED.finditer(text)}
        out[page] = rewritten(text, {name: get(name) for name in names if name in TABLES}, page)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a committed table differs from what the scripts make")
    args = parser.parse_args(argv)
    stale = []
    for path, text in pages().items():
        committed = path.read_text() if path.is_file() else ""
        if committed == text:
            continue
        stale.append(path)
        if args.check:
            diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), str(path.relative_to(ROOT)),
                                        "generated", lineterm="", n=0)
            print("\n".join(list(diff)[:40]))
        else:
            path.write_text(text)
            print(f"rewrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print(f"stale: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; run python scripts/results_pages.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
