"""The example notebooks run from top to bottom in their quick setting and draw real plots.

Each notebook is executed with nbclient in a fresh ``python3`` kernel (ipykernel's own kernel spec, which
jupyter_client finds whenever ipykernel is importable: no ``ipykernel install`` step), in a temporary working
directory, with ``HSI_NOTEBOOK_QUICK=1`` so its parameter cell picks the quick setting. The committed notebooks
carry the outputs of a full run; that they are executed and error-free is checked without a kernel.
"""
import os
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT = 600          # seconds per cell; quick cells take a few seconds
QUICK_ENV = {
    "HSI_NOTEBOOK_QUICK": "1",
    # BLAS and OpenMP thread pools spinning against each other (and other jobs) on a small shared CPU can make
    # a small SVD take seconds instead of milliseconds; one thread each keeps the smoke runs predictable.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def test_the_five_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_explore.ipynb", "02_train_hybridsn.ipynb",
                                           "03_attention_blocks.ipynb", "04_full_scene_maps.ipynb",
                                           "05_compare_models.ipynb"]


def kernel_name():
    """The ``python3`` kernel: ipykernel's native spec, found by jupyter_client without any install step."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        pytest.fail(f"no {KERNEL!r} Jupyter kernel: install the test extra (pip install -e '.[test]', which brings "
                    f"ipykernel)")
    assert spec.language.lower() == "python"
    return KERNEL


def image_outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})]


def structure_problems(nb):
    """The conventions every notebook follows: a Markdown introduction, then the parameter cell."""
    problems = []
    if not nb.cells or nb.cells[0].cell_type != "markdown" or not nb.cells[0].source.lstrip().startswith("#"):
        problems.append("the first cell is not a Markdown introduction with a title")
    if len(nb.cells) < 2 or nb.cells[1].cell_type != "code" or "HSI_NOTEBOOK_QUICK" not in nb.cells[1].source:
        problems.append("the second cell is not the parameter cell reading HSI_NOTEBOOK_QUICK")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert not structure_problems(nb), structure_problems(nb)
    for cell in nb.cells:                      # start from a clean notebook, as a user would
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for name, value in QUICK_ENV.items():      # the kernel inherits this process's environment
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)     # CI sets Agg; let the notebook's inline backend draw
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())

    client = nbclient.NotebookClient(nb, kernel_name=kernel_name(), timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()                           # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start
    print(f"{path.name}: quick run in {seconds:.1f} s")

    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert image_outputs(nb), f"{path.name} drew no image/png output"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, "the notebook wrote files next to itself"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_holds_a_full_run(path):
    """The notebooks are committed executed, in their full setting, without errors, with their plots."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "some cells were not executed"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "cells were run out of order"
    assert not [o for cell in code for o in cell.outputs if o.get("output_type") == "error"]
    assert image_outputs(nb), "no plots in the committed outputs"
    parameters = "".join(o.get("text", "") for o in code[0].outputs)
    assert "QUICK=False" in parameters, "the committed outputs come from a quick run"
    assert os.path.getsize(path) < 4 * 2**20, "keep the committed outputs small (modest figure sizes)"
