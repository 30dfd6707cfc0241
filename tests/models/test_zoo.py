"""The #30 models in hsi's training path: each (without a block, and with one where it has a slot) takes one
Trainer step at batch 2 on Indian Pines windows and then scores deterministically at batch 1; sizes and the
errors that name the smallest window and band count."""
import numpy as np
import pytest
import torch

import hsi
from hsi.config import FitOptions
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.preprocess import fit_pca
from hsi.engine import Trainer, predict_logits
from hsi.kinds import kind_of

BANDS = 15
# (model, patch, options, attention blocks to try): each model at a small window it accepts
CASES = [("spectral_cnn", 1, {}, [None]), ("spectral_cnn", 5, {}, [None]),
         ("cnn3d", 5, {}, [None, "se"]), ("a2s2k_resnet", 7, {}, [None, "se"]), ("ssftt", 7, {}, [None, "se"]),
         ("spectralformer", 1, {"pixelwise": True}, [None]), ("spectralformer", 5, {}, [None])]


@pytest.fixture(scope="module")
def reduced_field(indian_pines):
    """A 12 x 12 crop of Indian Pines reduced to 15 PCA bands, with its labels."""
    crop = indian_pines.cube[60:72, 60:72]
    return fit_pca(crop, BANDS).transform(crop), indian_pines.labels[60:72, 60:72]


def windows(cube, labels, patch, coords):
    coords = np.asarray(coords)
    return PatchDataset(pad_cube(cube, patch), coords, labels[coords[:, 0], coords[:, 1]], patch)


@pytest.mark.parametrize("name,patch,options,block",
                         [(n, p, o, b) for n, p, o, blocks in CASES for b in blocks],
                         ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(v) or "-")
def test_trains_a_step_and_scores_deterministically(name, patch, options, block, reduced_field, one_thread):
    cube, labels = reduced_field
    labelled = np.argwhere(labels >= 0)
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=BANDS, n_classes=16, patch_size=patch, attention=block, **options)
    if block is not None:
        assert type(model.slot).__name__ != "Identity"
    before = [p.detach().clone() for p in model.parameters()]
    train_set, val_set = windows(cube, labels, patch, labelled[:2]), windows(cube, labels, patch, labelled[:0])
    trainer = Trainer(model, FitOptions(epochs=1, batch_size=2, device="cpu"), train_set, val_set, 16)
    row, _ = trainer.run_epoch(progress=False)
    assert np.isfinite(row["train_loss"]) and len(trainer.train_loader) == 1
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))     # every weight moved
    test_set = windows(cube, labels, patch, labelled[2:8])
    loader = kind_of(model).loader(test_set, 1)
    first, again = predict_logits(model, loader, torch.device("cpu"))[0], predict_logits(model, loader,
                                                                                         torch.device("cpu"))[0]
    assert first.shape == (6, 16) and torch.isfinite(first).all() and torch.equal(first, again)


@pytest.mark.parametrize("name,small,message", [
    ("cnn3d", {"patch_size": 1}, "window of at least 3"), ("cnn3d", {"bands": 2}, "at least 3 bands"),
    ("a2s2k_resnet", {"patch_size": 1}, "window of at least 3"), ("a2s2k_resnet", {"bands": 6}, "at least 7 bands"),
    ("ssftt", {"patch_size": 3}, "window of at least 5"), ("ssftt", {"bands": 2}, "at least 3 bands"),
    ("spectralformer", {"bands": 2}, "at least band_patch=3 bands"),
    ("spectralformer", {"patch_size": 4}, "odd patch size")])
def test_too_small_inputs_name_the_smallest(name, small, message):
    sizes = {"bands": BANDS, "patch_size": 7} | small
    with pytest.raises(hsi.ConfigError, match=message):
        hsi.build_model(name, n_classes=16, **sizes)


@pytest.mark.parametrize("name,patch,bands", [("cnn3d", 3, 3), ("a2s2k_resnet", 3, 7), ("ssftt", 5, 3),
                                              ("spectral_cnn", 1, 1), ("spectralformer", 1, 3)])
def test_the_smallest_sizes_build_and_run(name, patch, bands):
    model = hsi.build_model(name, bands=bands, n_classes=4, patch_size=patch).eval()
    assert model(torch.randn(2, 1, bands, patch, patch)).shape == (2, 4)


def test_kinds_slots_and_pixel_models():
    for name in ("spectral_cnn", "cnn3d", "a2s2k_resnet", "ssftt", "spectralformer"):
        assert name in hsi.list_models("patch")
        model = hsi.build_model(name, bands=30, n_classes=16, patch_size=7)     # what the run code reads
        assert (model.kind, model.bands, model.n_classes, model.patch_size) == ("patch", 30, 16, 7)
    assert hsi.build_model("spectral_cnn", bands=30, n_classes=16).spectral_only
    assert hsi.build_model("spectralformer", bands=30, n_classes=16, pixelwise=True).spectral_only
    assert not hsi.build_model("spectralformer", bands=30, n_classes=16).spectral_only
    assert not getattr(hsi.build_model("ssftt", bands=30, n_classes=16), "spectral_only", False)
    for name in ("spectral_cnn", "spectralformer"):
        with pytest.raises(hsi.ConfigError, match=f"{name} has no attention slot"):
            hsi.build_model(name, bands=30, n_classes=16, attention="se")
    with pytest.raises(hsi.ConfigError, match=r"slots are \['after_2d'\]"):
        hsi.build_model("ssftt", bands=30, n_classes=16, attention={"after_3d": "se"})
