"""The #30 models against transcriptions of their authors' released code (tests/models/zoo_reference.py): the
same weights give the same logits, and the parameter counts at the authors' settings are theirs."""
import re

import numpy as np
import pytest
import torch

import hsi
from tests.models import zoo_reference as ref


def count(model):
    return sum(p.numel() for p in model.parameters())


def transfer(theirs, mine, renames, skip=()):
    """Load ``theirs``' weights and batch-norm statistics into ``mine``: every ``(pattern, replacement)`` applied
    to each key in turn, keys matching a ``skip`` pattern left out, and 3-D kernels laid out
    (out, in, p, p, bands) permuted to hsi's (out, in, bands, p, p) where the shapes differ. Strict: every
    tensor of ``mine`` is filled, and every tensor of ``theirs`` not skipped is used."""
    state, target = {}, mine.state_dict()
    for key, value in theirs.state_dict().items():
        if any(re.search(pattern, key) for pattern in skip):
            continue
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        if value.dim() == 5 and value.shape != target[key].shape:
            value = value.permute(0, 1, 4, 2, 3)
        state[key] = value
    mine.load_state_dict(state, strict=True)


def randomise_statistics(model):
    """Batch-norm running statistics away from 0 and 1, so that eval mode tests them."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)


def same_logits(theirs, mine, x_theirs, x_mine, modes=("eval",)):
    for mode in modes:
        theirs.train(mode == "train")
        mine.train(mode == "train")
        with torch.no_grad():
            torch.testing.assert_close(mine(x_mine), theirs(x_theirs), rtol=1e-4, atol=1e-5)


def test_spectral_cnn_is_deephyperx_hu(one_thread):
    torch.manual_seed(0)
    theirs, mine = ref.HuEtAl(200, 16), hsi.build_model("spectral_cnn", bands=200, n_classes=16, patch_size=1)
    assert count(mine) == count(theirs) == 72_196
    transfer(theirs, mine, ())
    pixels = torch.randn(3, 200)
    windows = torch.randn(3, 1, 200, 5, 5)
    windows[:, 0, :, 2, 2] = pixels                               # the centre pixel is all a pixel model reads
    same_logits(theirs, mine, pixels[:, :, None, None], pixels)
    same_logits(theirs, mine, pixels[:, :, None, None], windows)
    assert mine.spectral_only and hsi.build_model("spectral_cnn", bands=30, n_classes=9).fc1.in_features == 20 * 27


@pytest.mark.parametrize("patch", [5, 3])
def test_cnn3d_is_deephyperx_hamida(patch, one_thread):
    torch.manual_seed(0)
    theirs = ref.HamidaEtAl(200, 16, patch_size=patch)
    mine = hsi.build_model("cnn3d", bands=200, n_classes=16, patch_size=patch)
    assert count(mine) == count(theirs)
    transfer(theirs, mine, ())
    x = torch.randn(2, 1, 200, patch, patch)
    same_logits(theirs, mine, x, x)


def test_a2s2k_resnet_is_the_authors_network(one_thread):
    """At the authors' setting (all 200 bands, 9x9, 16 classes) the count is theirs less the two batch norms
    their middle residual units build and never call (res_net2.bn2, res_net3.bn2: 2 x 48). Outputs compared
    at 7x7, where their final 5x5 average pool is global as hsi's is at every window."""
    torch.manual_seed(0)
    theirs = ref.S3KAIResNet(200, 16, 2)
    mine = hsi.build_model("a2s2k_resnet", bands=200, n_classes=16, patch_size=9)
    unused = count(theirs.res_net2.bn2) + count(theirs.res_net3.bn2)
    assert unused == 96 and count(mine) == count(theirs) - unused == 370_760
    mine = hsi.build_model("a2s2k_resnet", bands=200, n_classes=16, patch_size=7)
    randomise_statistics(theirs)
    renames = [(r"^conv1x1\.", "branch1x1.0."), (r"^batch_norm1x1\.0\.", "branch1x1.1.0."),
               (r"^conv3x3\.", "branch3x3.0."), (r"^batch_norm3x3\.0\.", "branch3x3.1.0."),
               (r"^conv_se\.0\.", "squeeze.0."), (r"^conv_ex\.", "excite."),
               (r"^conv2\.", "collapse.0."), (r"^batch_norm2\.0\.", "collapse.1."),
               (r"^conv3\.", "spatial_conv.0."), (r"^batch_norm3\.0\.", "spatial_conv.1.0."),
               (r"^res_net1\.bn2\.", "res_net1.post_body."), (r"^res_net4\.bn2\.", "res_net4.post_add.0."),
               (r"\.conv1\.0\.", ".conv1."), (r"\.bn0\.", ".pre.0."), (r"\.ecalayer\.", ".eca."),
               (r"^res_net([12])\.", lambda m: f"spectral_units.{int(m[1]) - 1}."),
               (r"^res_net([34])\.", lambda m: f"spatial_units.{int(m[1]) - 3}."),
               (r"^full_connection\.0\.", "fc.")]
    transfer(theirs, mine, renames, skip=(r"^res_net[23]\.bn2\.",))
    x = torch.randn(2, 1, 200, 7, 7)
    same_logits(theirs, mine, x.permute(0, 1, 3, 4, 2), x, modes=("eval", "train"))


def test_ssftt_is_the_authors_network(one_thread):
    """Indian Pines at the authors' setting: 30 PCA bands, 13x13, 16 classes."""
    torch.manual_seed(0)
    theirs, mine = ref.SSFTTnet(bands=30), hsi.build_model("ssftt", bands=30, n_classes=16, patch_size=13)
    assert count(mine) == count(theirs) == 153_224
    randomise_statistics(theirs)
    renames = [(r"^conv3d_features\.", "conv3d."), (r"^conv2d_features\.", "conv2d."),
               (r"^token_wA", "token_wa"), (r"^token_wV", "token_wv"),
               (r"^transformer\.layers\.(\d)\.0\.fn\.norm\.", r"encoder.\1.norm1."),
               (r"^transformer\.layers\.(\d)\.0\.fn\.fn\.to_qkv\.", r"encoder.\1.qkv."),
               (r"^transformer\.layers\.(\d)\.0\.fn\.fn\.nn1\.", r"encoder.\1.proj."),
               (r"^transformer\.layers\.(\d)\.1\.fn\.norm\.", r"encoder.\1.norm2."),
               (r"^transformer\.layers\.(\d)\.1\.fn\.fn\.net\.", r"encoder.\1.mlp."), (r"^nn1\.", "head.")]
    transfer(theirs, mine, renames)
    x = torch.randn(2, 1, 30, 13, 13)
    same_logits(theirs, mine, x, x)


SPECTRALFORMER_RENAMES = [(r"^patch_to_embedding\.", "embedding."),
                          (r"^transformer\.layers\.(\d)\.0\.fn\.norm\.", r"layers.\1.norm1."),
                          (r"^transformer\.layers\.(\d)\.0\.fn\.fn\.to_qkv\.", r"layers.\1.qkv."),
                          (r"^transformer\.layers\.(\d)\.0\.fn\.fn\.to_out\.", r"layers.\1.proj."),
                          (r"^transformer\.layers\.(\d)\.1\.fn\.norm\.", r"layers.\1.norm2."),
                          (r"^transformer\.layers\.(\d)\.1\.fn\.fn\.net\.", r"layers.\1.mlp."),
                          (r"^transformer\.skipcat\.", "fusions."), (r"^mlp_head\.", "head.")]


@pytest.mark.parametrize("pixelwise,patch", [(True, 1), (False, 7)])
def test_spectralformer_is_the_authors_network(pixelwise, patch, one_thread):
    """Their Indian Pines setting (200 bands, 16 classes, band groups of 3, CAF; pixel-wise 1x1 or patch-wise
    7x7), their grouping (demo.py's gain_neighborhood_band) applied to the same windows."""
    torch.manual_seed(0)
    theirs = ref.ViT(image_size=patch, near_band=3, num_patches=200, num_classes=16, dim=64, depth=5, heads=4,
                     mlp_dim=8, dropout=0.1, emb_dropout=0.1, mode='CAF')
    mine = hsi.build_model("spectralformer", bands=200, n_classes=16, patch_size=patch, pixelwise=pixelwise)
    assert count(mine) == count(theirs) and mine.spectral_only == pixelwise
    transfer(theirs, mine, SPECTRALFORMER_RENAMES)
    windows = torch.randn(2, patch, patch, 200, dtype=torch.float64)
    grouped = ref.gain_neighborhood_band(windows.numpy(), 200, 3, patch)
    x_theirs = torch.from_numpy(grouped.transpose(0, 2, 1)).float()
    x_mine = windows.permute(0, 3, 1, 2).unsqueeze(1).float()
    same_logits(theirs, mine, x_theirs, x_mine)
    if pixelwise:                                                 # a spectrum alone, or the centre of any window
        same_logits(theirs, mine, x_theirs, x_mine[:, 0, :, 0, 0])
        wide = torch.randn(2, 1, 200, 5, 5)
        wide[:, :, :, 2, 2] = x_mine[:, :, :, 0, 0]
        same_logits(theirs, mine, x_theirs, wide)


def test_spectralformer_groups_bands_cyclically_in_band_order():
    """Beyond the authors' band_patch=3 their patch-wise grouping orders the lower neighbours nearest first
    (b-1, b-2); hsi orders every group by band, as their pixel-wise grouping does."""
    model = hsi.build_model("spectralformer", bands=6, n_classes=2, patch_size=1, band_patch=5, pixelwise=True)
    spectrum = torch.arange(6.0)[None]
    assert model.group(spectrum)[0].tolist() == [[4, 5, 0, 1, 2], [5, 0, 1, 2, 3], [0, 1, 2, 3, 4],
                                                 [1, 2, 3, 4, 5], [2, 3, 4, 5, 0], [3, 4, 5, 0, 1]]
    theirs = ref.gain_neighborhood_band(spectrum.numpy()[:, None, None, :], 6, 5, 1)[0].T
    np.testing.assert_array_equal(theirs, model.group(spectrum)[0].numpy())
