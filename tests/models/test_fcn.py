"""Scene models (FCN-32s/16s/8s, FCN-JPU), the DCM block, the receptive-field probe and tiled prediction."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hsi
from hsi.data.preprocess import fit_pca
from hsi.inference import scene_logits
from hsi.models.attention.dcm import DCM
from hsi.models.fcn import upsampler
from hsi.models.receptive import receptive_field_radius

SCENE_MODELS = hsi.list_models("scene")
NARROW = dict(widths=(8, 8, 8), context_width=16)
BLOCKS = [None] + hsi.list_attention()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sub_scene(indian_pines):
    """A 64x64 crop of Indian Pines reduced to 15 standardised PCA bands, its classes folded to 4:
    ``(x (1, 15, 64, 64), labels (1, 64, 64))``."""
    cube = indian_pines.cube[40:104, 40:104]
    reduced = fit_pca(cube, 15, whiten=True).transform(cube)
    labels = indian_pines.labels[40:104, 40:104]
    folded = np.where(labels >= 0, labels % 4, -1)
    return torch.from_numpy(reduced).permute(2, 0, 1)[None], torch.from_numpy(folded)[None]


def randomise_batch_norm(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_block_in_every_scene_model_trains_a_step_and_evaluates_deterministically(sub_scene, block):
    x, labels = sub_scene
    for name in SCENE_MODELS:
        torch.manual_seed(0)
        model = hsi.build_model(name, bands=15, n_classes=4, attention=block, **NARROW)
        assert model.kind == "scene"
        before = [p.detach().clone() for p in model.parameters()]
        loss = F.cross_entropy(model(x), labels, ignore_index=-1)
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.grad is not None:
                    parameter -= 0.1 * parameter.grad
        assert torch.isfinite(loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), name
        model.eval()
        with torch.no_grad():
            first, second = model(x), model(x)
        assert first.shape == (1, 4, 64, 64)
        assert torch.equal(first, second), name
        # the map path runs the same model with channels-last strides: the same logits up to float rounding
        mapped = scene_logits(model, x[0].permute(1, 2, 0).numpy(), device="cpu")
        expected = first[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(mapped, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(), err_msg=name)


def test_output_is_cropped_to_any_input_size():
    model = hsi.build_model("fcn8s", bands=5, n_classes=3, **NARROW).eval()
    for height, width in ((33, 50), (64, 64), (37, 97)):
        assert model(torch.randn(1, 5, height, width)).shape == (1, 3, height, width)


def test_build_model_with_danet_in_the_context_slot():
    model = hsi.build_model("fcn8s", bands=30, n_classes=16, attention="danet")
    assert type(model.encoder.slot).__name__ == "DualAttention"
    with pytest.raises(hsi.ConfigError, match="context"):
        hsi.build_model("fcn8s", bands=30, n_classes=16, attention={"after_3d": "se"})


def test_upsampling_is_bilinear_and_fixed():
    x = torch.randn(1, 3, 8, 8)
    for factor in (2, 8):
        up = upsampler(3, factor)
        reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        inner = slice(factor, -factor)          # the borders differ: zero padding against edge clamping
        with torch.no_grad():
            assert torch.allclose(up(x)[..., inner, inner], reference[..., inner, inner], atol=1e-6)
    model = hsi.build_model("fcn8s", bands=5, n_classes=3, **NARROW)
    learned = {name for name, _ in model.named_parameters()}
    assert "final_up.weight" in model.state_dict() and not {"final_up.weight", "skip_ups.0.weight"} & learned


def dcm_transcription(block, x, scale=1.0):
    """DMNet's head as in its released code (mmsegmentation's DCM): per filter size k, kernels
    G = Conv1x1(AdaptiveAvgPool_k(x)), features R = ReLU(BN(Conv1x1(x))), D[n, c] = R[n, c] (*) G[n, c] as one
    convolution with N * C groups over R viewed as (1, N * C, H, W), zero padding with one more row/column at
    top/left for even k; O_k = ReLU(BN(D)); output = ReLU(BN(Conv3x3([x, O_1, ..., O_k]))). With ``scale`` s:
    the O_k of x / s, times s (hsi's scale-free default)."""
    outputs, x = [x], x / scale
    for branch in block.branches:
        k = branch.filter_size
        kernels = F.conv2d(F.adaptive_avg_pool2d(x, k), branch.generate.weight, branch.generate.bias)
        conv, bn, _ = branch.reduce
        reduced = F.relu(F.batch_norm(F.conv2d(x, conv.weight), bn.running_mean, bn.running_var, bn.weight,
                                      bn.bias, eps=bn.eps))
        n, c, h, w = reduced.shape
        before, after = (k - 1) // 2 + (k - 1) % 2, (k - 1) // 2
        padded = F.pad(reduced.reshape(1, n * c, h, w), (before, after, before, after))
        dynamic = F.conv2d(padded, kernels.reshape(n * c, 1, k, k), groups=n * c).reshape(n, c, h, w)
        bn = branch.norm[0]
        outputs.append(scale * F.relu(F.batch_norm(dynamic, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                   eps=bn.eps)))
    conv, bn, _ = block.project
    joined = F.conv2d(torch.cat(outputs, 1), conv.weight, padding=1)
    return F.relu(F.batch_norm(joined, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))


@pytest.mark.parametrize("batch", [1, 3])
def test_dcm_equals_dmnet_transcription(batch):
    torch.manual_seed(0)
    block = randomise_batch_norm(DCM(16, filter_sizes=(1, 2, 3, 5, 7), scale_free=False), seed=1).double().eval()
    x = 3 * torch.randn(batch, 16, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(block(x), dcm_transcription(block, x), rtol=1e-10, atol=1e-12)
        block.scale_free = True
        scale = x.pow(2).mean((1, 2, 3), keepdim=True).sqrt()
        assert torch.allclose(block(x), dcm_transcription(block, x, scale), rtol=1e-10, atol=1e-12)
        assert not torch.allclose(block(x), dcm_transcription(block, x), rtol=1e-3)


def test_dcm_fills_a_hybridsn_slot_at_batch_one():
    model = hsi.build_model("hybridsn", bands=16, n_classes=4, patch_size=11, attention="dcm")
    assert model.kind == "patch"
    logits = model(torch.randn(1, 1, 16, 11, 11))
    logits.sum().backward()
    assert logits.shape == (1, 4)


def test_receptive_field_radius_bounds_what_an_output_depends_on(sub_scene):
    x = sub_scene[0]
    x = torch.cat([torch.cat([x, x.flip(-1)], -1), torch.cat([x.flip(-2), x.flip(-2, -1)], -1)], -2)  # 128x128
    model = randomise_batch_norm(hsi.build_model("fcn16s", bands=15, n_classes=4, widths=(8, 8, 8),
                                                 context_width=8)).eval()
    radius = receptive_field_radius(model)
    assert radius is not None and radius < 60
    for centre in (64, 67):                         # two alignments with the pooling grid
        changed = x.clone()
        keep = slice(centre - radius, centre + radius + 1)
        mask = torch.ones(128, 128, dtype=torch.bool)
        mask[keep, keep] = False
        changed[..., mask] = torch.randn(int(mask.sum()))
        with torch.no_grad():
            assert torch.allclose(model(x)[..., centre, centre], model(changed)[..., centre, centre], atol=1e-4)
            assert not torch.allclose(model(x)[..., centre, centre], model(x.roll(1, -1))[..., centre, centre])
    assert receptive_field_radius(hsi.build_model("fcn16s", bands=15, n_classes=4, widths=(8, 8, 8),
                                                  context_width=8, attention="se")) is None


def test_tiled_prediction_equals_one_pass(indian_pines):
    cube = fit_pca(indian_pines.cube, 6).transform(indian_pines.cube)
    cube = np.concatenate([cube, cube[::-1]], 0)[:200]                    # 200 x 145: wider than two halos
    torch.manual_seed(0)
    model = randomise_batch_norm(hsi.build_model("fcn8s", bands=6, n_classes=5, **NARROW)).eval()
    whole = scene_logits(model, cube, device="cpu")
    tiled = scene_logits(model, cube, tile=64, device="cpu")
    tolerance = 1e-5 * np.abs(whole).max() + 1e-6
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=tolerance)
    top2 = np.sort(whole, -1)[..., -2:]
    differ = whole.argmax(-1) != tiled.argmax(-1)
    assert (top2[..., 1] - top2[..., 0])[differ].max(initial=0) <= 2 * tolerance
    with pytest.raises(hsi.ConfigError, match="scene model"):
        scene_logits(model, cube, mode="patch")
