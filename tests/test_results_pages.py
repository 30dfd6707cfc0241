"""The documentation's result tables are those scripts/results_pages.py makes from benchmarks/results/."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results_pages():
    spec = importlib.util.spec_from_file_location("results_pages", ROOT / "scripts" / "results_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_result_tables_are_the_generated_ones(results_pages, capsys):
    assert results_pages.main(["--check"]) == 0, capsys.readouterr().out


def test_a_table_between_markers_is_replaced_and_an_unknown_one_refused(results_pages):
    page = "text\n<!-- results:zoo -->\n| old |\n<!-- /results:zoo -->\nmore\n"
    assert results_pages.rewritten(page, {"zoo": "| new |\n"}, Path("p.md")) == \
        "text\n<!-- results:zoo -->\n| new |\n<!-- /results:zoo -->\nmore\n"
    with pytest.raises(SystemExit, match="unknown table 'zo'"):
        results_pages.rewritten(page.replace("zoo", "zo"), {"zoo": "| new |\n"}, Path("p.md"))
