"""Shared fixtures: real data cut from the Indian Pines copy inside tensorly, written to temporary folders.

Nothing here reads outside the repository and the installed packages, and every file goes to a temporary folder:
the suite passes on a fresh clone, offline, with no data folder and no environment variable.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import hsi
from hsi.config import FitOptions, RunConfig
from hsi.pipeline import train

if os.environ.get("PYTEST_XDIST_WORKER"):     # the suite runs in two worker processes (setup.cfg): one core each
    torch.set_num_threads(1)

# The second scene: a 40 x 48 field of Indian Pines (rows 16-55, columns 80-127) holding five of its classes.
# Loaded from plain cube/gt files it keeps the file's own label ids (2, 8, 10, 11, 14): ids that are not 1..K,
# the case a sub-scene such as Salinas-A poses.
FIELD_ROWS, FIELD_COLS = slice(16, 56), slice(80, 128)


@pytest.fixture(scope="session", autouse=True)
def private_environment(tmp_path_factory):
    """Point every cache the suite (and the processes and kernels it starts) could write at a temporary folder,
    and hide the data locations a developer's shell may set."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HSI_DATA_DIR", "HSI_SHARED_DATA"):
            patch.delenv(name, raising=False)
        patch.setenv("HSI_CACHE_DIR", str(home / "hsi-cache"))
        for name, folder in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config"),
                             ("MPLCONFIGDIR", "matplotlib"), ("IPYTHONDIR", "ipython"),
                             ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("TORCH_HOME", "torch")):
            patch.setenv(name, str(home / folder))
        yield home


@pytest.fixture
def install_distribution(tmp_path, monkeypatch):
    """``install(name, entry_points, modules={})``: a throw-away distribution ``name`` in ``tmp_path``, declaring
    ``entry_points`` (the text of its ``entry_points.txt``) and holding ``modules`` (module name -> source), put on
    ``sys.path`` until the test ends (``monkeypatch.undo()`` removes it sooner)."""
    def install(name, entry_points, modules=None):
        for module, source in (modules or {}).items():
            (tmp_path / f"{module}.py").write_text(source)
        info = tmp_path / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(entry_points)
        monkeypatch.syspath_prepend(str(tmp_path))

    return install


@pytest.fixture
def one_thread():
    """One torch thread for tests of tiny tensors: a thread pool only adds overhead on a small shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def untrained_hybridsn(indian_pines):
    """A HybridSN (15 PCA bands of Indian Pines, 11x11) with its initial weights, as a TrainedModel."""
    from hsi.checkpoint import TrainedModel
    from hsi.data.preprocess import fit_pca

    torch.manual_seed(0)
    model = hsi.build_model("hybridsn", bands=15, n_classes=16, patch_size=11).eval()
    return TrainedModel(model, fit_pca(indian_pines.cube, 15), 11, "zero", indian_pines.class_names,
                        indian_pines.label_ids, indian_pines.palette, 200)


@pytest.fixture(scope="session")
def indian_pines():
    """The whole Indian Pines scene (145 x 145 x 200, 16 classes), offline from tensorly."""
    return hsi.load_scene("indian_pines")


def original_ids(scene):
    """The label map with the original label ids, 0 for unlabelled: what a ground-truth file holds."""
    return np.where(scene.labels >= 0, scene.label_ids[np.maximum(scene.labels, 0)], 0).astype(np.uint8)


@dataclass
class SceneFiles:
    cube: Path
    gt: Path
    scene: hsi.data.scenes.Scene


@pytest.fixture(scope="session")
def field(tmp_path_factory, indian_pines):
    """The second scene: a field of Indian Pines written as cube.mat / gt.mat (MATLAB v5) and loaded from them."""
    folder = tmp_path_factory.mktemp("field")
    scipy.io.savemat(folder / "cube.mat", {"cube": indian_pines.cube[FIELD_ROWS, FIELD_COLS]})
    scipy.io.savemat(folder / "gt.mat", {"gt": original_ids(indian_pines)[FIELD_ROWS, FIELD_COLS]})
    return SceneFiles(folder / "cube.mat", folder / "gt.mat", hsi.load_scene(folder / "cube.mat", folder / "gt.mat"))


@pytest.fixture(scope="session")
def ip_data_dir(tmp_path_factory, indian_pines):
    """A data folder holding Indian Pines under its registry file names and .mat keys."""
    folder = tmp_path_factory.mktemp("data")
    scipy.io.savemat(folder / "Indian_pines_corrected.mat", {"indian_pines_corrected": indian_pines.cube})
    scipy.io.savemat(folder / "Indian_pines_gt.mat", {"indian_pines_gt": original_ids(indian_pines)})
    return folder


@pytest.fixture(scope="session")
def field_config(field):
    """``field_config(**changes)``: the suite's small run setting on the field (HybridSN, PCA 15, 9 x 9 patches,
    15 % of the pixels for training, 3 epochs, seed 0), with changes."""
    def make(**changes):
        fit = FitOptions(epochs=changes.pop("epochs", 3), batch_size=64, device="cpu")
        values = dict(cube=str(field.cube), gt=str(field.gt), pca=15, patch=9, train_ratio=0.15, seed=0, fit=fit)
        values.update(changes)
        return RunConfig(**values)
    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, field, field_config):
    """One finished run in the suite's small setting, shared by every test that needs a trained run folder:
    ``(run folder, its metrics)``."""
    out = tmp_path_factory.mktemp("runs") / "field"
    return out, train(field_config(), out, scene=field.scene, progress=False)


def same_logits(actual, expected):
    """Float32 logits equal up to rounding, whatever order their sums ran in: 1e-4 relative plus 1e-5 of the largest
    logit (a wrong window or halo moves logits by a sizeable fraction of that). Labels equal exactly, except at a
    pixel whose two best logits are themselves equal to within that rounding (a tie either pass may break its own
    way)."""
    assert actual.shape == expected.shape
    atol = 1e-5 * float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=atol)
    flipped = actual.argmax(-1) != expected.argmax(-1)
    best_two = np.sort(expected[flipped], axis=-1)[:, -2:]
    tolerance = 2 * (atol + 1e-4 * np.abs(best_two[:, 1]))
    assert (best_two[:, 1] - best_two[:, 0] <= tolerance).all(), "a label differs where the logits are no tie"


@pytest.fixture(scope="session")
def assert_same_logits():
    """:func:`same_logits`, for the tests that compare two passes over a scene."""
    return same_logits
