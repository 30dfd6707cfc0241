"""Dense (fully-convolutional) inference equals patch-by-patch inference, for every model and every block."""
import pytest
import torch

import hsi
from hsi.checkpoint import TrainedModel
from hsi.data.preprocess import fit_pca
from hsi.data.scenes import Scene
from hsi.inference import scene_logits

HYBRIDSN_FAMILY = ["hybridsn", "hybridsn_2d3d", "hybridsn_se"]     # the models with a dense form


@pytest.fixture(scope="module")
def reducer15(indian_pines):
    return fit_pca(indian_pines.cube, 15, whiten=True)


def crop(scene, rows, cols):
    return Scene(scene.cube[rows, cols], scene.labels[rows, cols], scene.label_ids, scene.class_names,
                 scene.palette, f"{scene.name}-crop")


def randomised(model, seed=0):
    """Random weights with non-trivial batch-norm statistics, and every zero-initialised gate opened."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(shape, generator=generator) * 0.4 - 0.2)
        for p in model.slots.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=generator))
    return model.eval()


def trained_model(scene, reducer, name="hybridsn", patch=11, attention=None, padding="zero"):
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=reducer.n_components, n_classes=scene.n_classes, patch_size=patch,
                            attention=attention)
    return TrainedModel(randomised(model), reducer, patch, padding, scene.class_names, scene.label_ids,
                        scene.palette, scene.bands)


@pytest.mark.parametrize("name", HYBRIDSN_FAMILY)
def test_dense_equals_patch_on_every_pixel_of_a_scene(name, indian_pines, reducer15, assert_same_logits):
    scene = crop(indian_pines, slice(50, 90), slice(60, 108))     # a 40 x 48 scene of its own: four borders
    trained = trained_model(scene, reducer15, name)
    dense = scene_logits(trained, scene, mode="dense")
    patch = scene_logits(trained, scene, mode="patch", batch_size=512)
    assert dense.shape == (40, 48, 16)                    # all 1,920 pixels, borders included
    assert_same_logits(dense, patch)


def test_dense_equals_patch_at_paper_size(indian_pines, assert_same_logits):
    scene = crop(indian_pines, slice(0, 24), slice(121, 145))    # a corner: borders on two sides
    trained = trained_model(scene, fit_pca(indian_pines.cube, 30, whiten=True), patch=25)
    assert_same_logits(scene_logits(trained, scene, mode="dense"), scene_logits(trained, scene, mode="patch"))


def test_dense_equals_patch_with_reflect_padding(indian_pines, reducer15, assert_same_logits):
    scene = crop(indian_pines, slice(0, 30), slice(0, 40))
    trained = trained_model(scene, reducer15, padding="reflect")
    assert_same_logits(scene_logits(trained, scene, mode="dense", tile=16), scene_logits(trained, scene, mode="patch"))


@pytest.mark.parametrize("block", hsi.list_attention())
@pytest.mark.parametrize("name", ["hybridsn", "hybridsn_2d3d"])
def test_dense_equals_patch_with_every_block(name, block, indian_pines, reducer15, assert_same_logits):
    scene = crop(indian_pines, slice(60, 70), slice(0, 12))
    trained = trained_model(scene, reducer15, name, attention=block)
    # batches of 16 windows: a channel-attention energy over hybridsn_2d3d's 1,664 channels is 11 MB a window
    assert_same_logits(scene_logits(trained, scene, mode="dense", tile=12, batch_size=16),
                scene_logits(trained, scene, mode="patch", batch_size=16))


def test_dense_equals_patch_for_a_trained_checkpoint(trained_run, field, assert_same_logits):
    out, metrics = trained_run
    assert metrics["oa"] > 1 / field.scene.n_classes     # it did learn: the weights are not random
    checkpoint = out / "best.pt"
    assert_same_logits(scene_logits(checkpoint, field.scene, mode="dense"),
                scene_logits(checkpoint, field.scene, mode="patch", batch_size=512))


@pytest.mark.parametrize("shape", [(3, 40, 37), (5, 17, 20)])
def test_fft_head_convolution_equals_the_direct_one(shape):
    from hsi.models.dense import fft_valid_conv2d

    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    kernel = torch.randn(4, shape[0], 9, 9, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    direct = torch.nn.functional.conv2d(x[None], kernel, bias)[0]
    cache = {}
    for _ in range(2):                                   # the second call takes the cached kernel spectrum
        out = fft_valid_conv2d(x, kernel, bias, cache, block=8, chunk=5)
        assert out.shape == direct.shape and torch.allclose(out, direct, atol=1e-10)
    assert len(cache) == 1


@pytest.mark.parametrize("name", ["hybridsn", "fcn8s"])
def test_the_memory_probe_leaves_every_layer_in_its_own_mode(name):
    """The tile-size probes run the model in eval mode; a model being trained, with a layer frozen in eval mode
    by its user, comes back exactly as it was."""
    from hsi.inference import scene_floats_per_pixel
    from hsi.models.dense import activation_floats_per_pixel

    model = hsi.build_model(name, bands=15, patch_size=9, n_classes=4).train()
    frozen = next(m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d))).eval()
    floats = activation_floats_per_pixel(model) if name == "hybridsn" else scene_floats_per_pixel(model)
    assert floats > 0
    assert [m.training for m in model.modules()] == [m is not frozen for m in model.modules()]
