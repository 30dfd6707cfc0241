"""The HybridSN family: sizes derived from shapes, every attention block in every slot, train/eval semantics."""
import numpy as np
import pytest
import torch

import hsi
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.preprocess import fit_pca

SIZES = [(30, 25), (15, 25), (30, 19)]
HYBRIDSN_FAMILY = ["hybridsn", "hybridsn_2d3d", "hybridsn_se"]     # the other models are tested in test_backbones


def test_paper_parameter_count():
    model = hsi.build_model("hybridsn", bands=30, n_classes=16, patch_size=25, batch_norm=False)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 5_122_176


def test_sizes_follow_the_input_shape():
    model = hsi.build_model("hybridsn", bands=15, n_classes=9, patch_size=19)
    assert model.window_sizes == (13, 11)
    assert model.head[0].in_features == 64 * 11 * 11
    assert model.slots[0].__class__.__name__ == "Identity"
    se = hsi.build_model("hybridsn_se", bands=30, n_classes=16, patch_size=25)
    assert [type(s).__name__ for s in se.slots] == ["SqueezeExcitation"] * 2
    assert se.head[2].p == 0.1
    two_d_first = hsi.build_model("hybridsn_2d3d", bands=30, n_classes=16, patch_size=25)
    assert two_d_first.head[0].in_features == 480_896           # 32 x 52 x 17 x 17, as the seed's hand-written size


@pytest.mark.parametrize("name", ["hybridsn", "hybridsn_2d3d"])
def test_too_small_patch_names_the_minimum(name):
    with pytest.raises(hsi.ConfigError, match="at least 9"):
        hsi.build_model(name, bands=30, n_classes=16, patch_size=7)


def test_too_few_bands_and_unknown_names():
    with pytest.raises(hsi.ConfigError, match="at least 13 bands"):
        hsi.build_model("hybridsn", bands=12, n_classes=16, patch_size=25)
    with pytest.raises(hsi.ConfigError, match="known models: hybridsn, hybridsn_2d3d, hybridsn_se"):
        hsi.build_model("resnet", bands=30, n_classes=16)
    with pytest.raises(hsi.ConfigError, match=r"slots are \['after_3d', 'after_2d'\]"):
        hsi.build_model("hybridsn", bands=30, n_classes=16, attention={"before_3d": "se"})


def test_attention_per_slot_by_name_class_and_factory():
    from hsi.models.attention.cbam import CBAM

    model = hsi.build_model("hybridsn", bands=30, n_classes=16, attention={"after_3d": CBAM, "after_2d": "se"})
    assert [type(s).__name__ for s in model.slots] == ["CBAM", "SqueezeExcitation"]
    model = hsi.build_model("hybridsn_2d3d", bands=30, n_classes=16, patch_size=19,
                            attention={"after_3d": lambda channels: torch.nn.BatchNorm2d(channels)})
    assert model.slots[1].num_features == 32 * 52 and type(model.slots[0]).__name__ == "Identity"


@pytest.mark.parametrize("block", hsi.list_attention())
@pytest.mark.parametrize("name", HYBRIDSN_FAMILY)
def test_every_model_with_every_block(name, block, one_thread):
    """Every block in every slot, on a small input (15 bands, 11x11): what a block does does not depend on the
    window; the sizes themselves are covered below."""
    check_trains_and_evaluates(name, block, 15, 11)


@pytest.mark.parametrize("bands,patch", SIZES)
@pytest.mark.parametrize("name", HYBRIDSN_FAMILY)
def test_every_model_at_each_size(name, bands, patch):
    check_trains_and_evaluates(name, None, bands, patch)


def check_trains_and_evaluates(name, block, bands, patch):
    """Finite logits and gradients in train mode (dropout active), deterministic in eval mode, a sample alone
    scored as in a batch."""
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=bands, n_classes=16, patch_size=patch, attention=block)
    x = torch.randn(2, 1, bands, patch, patch)

    model.train()
    logits = model(x)
    assert logits.shape == (2, 16) and torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert not torch.equal(model(x), model(x))                       # dropout is active in train mode

    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
        single = model(x[:1])
    assert torch.equal(first, second)
    torch.testing.assert_close(single, first[:1], rtol=1e-4, atol=1e-5 * first.abs().max().item())


def test_entry_point_block_builds_into_hybridsn(install_distribution, monkeypatch):
    from hsi.models.attention import registry

    install_distribution("hsi-ep-block", "[hsi.attention]\nplug_gate = hsi_ep_block:Gate\n", {"hsi_ep_block": (
        "from torch import nn\n\n"
        "class Gate(nn.Module):\n"
        "    def __init__(self, channels):\n"
        "        super().__init__()\n"
        "        self.weight = nn.Parameter(nn.init.ones_(__import__('torch').empty(channels, 1, 1)))\n\n"
        "    def forward(self, x):\n"
        "        return x * self.weight\n")})
    try:
        registry.reload_entry_points()
        assert "plug_gate" in hsi.list_attention()
        model = hsi.build_model("hybridsn", bands=30, n_classes=16, attention={"after_2d": "plug_gate"})
        assert type(model.slots[1]).__name__ == "Gate" and model.slots[1].weight.shape == (64, 1, 1)
        assert model(torch.randn(2, 1, 30, 25, 25)).shape == (2, 16)
    finally:
        monkeypatch.undo()
        registry.reload_entry_points()
    assert "plug_gate" not in hsi.list_attention()


@pytest.fixture(scope="module")
def fixed_batch(indian_pines):
    """Two real Indian Pines patches (15 PCA bands, 11x11) of every class."""
    rng = np.random.default_rng(0)
    coords, labels = [], []
    for k in range(indian_pines.n_classes):
        pixels = np.argwhere(indian_pines.labels == k)
        coords += [pixels[i] for i in rng.choice(len(pixels), 2, replace=False)]
        labels += [k, k]
    reduced = fit_pca(indian_pines.cube, 15, whiten=True).transform(indian_pines.cube)
    return PatchDataset(pad_cube(reduced, 11), coords, labels, 11).__getitems__(list(range(len(labels))))


@pytest.mark.parametrize("name", HYBRIDSN_FAMILY)
def test_each_variant_learns_a_fixed_batch(name, fixed_batch):
    torch.manual_seed(0)
    x, y = fixed_batch
    model = hsi.build_model(name, bands=15, n_classes=16, patch_size=11)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.eval()
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(model(x), y).item()
    model.train()
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(x), y).item()
    assert after <= before / 2, (before, after)
