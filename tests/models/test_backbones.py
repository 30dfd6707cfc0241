"""ResNet, pre-activation ResNet, SE-ResNet, DenseNet-BC, SKNet and ResNeSt as patch classifiers: every block in
every backbone, sizes from shapes, the slot before the addition, and the SE, SK and split-attention blocks
against transcriptions of their papers' formulas (and ResNeSt's released code) with shared weights."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hsi
from hsi.checkpoint import TrainedModel, save_checkpoint
from hsi.data.patches import pad_cube
from hsi.data.preprocess import fit_pca
from hsi.data.scenes import Scene
from hsi.inference import scene_logits
from hsi.models import create_attention
from hsi.models.attention.se import SqueezeExcitation
from hsi.models.attention.sk import SelectiveKernel
from hsi.models.backbone import stage_strides
from hsi.models.resnest import SplitAttentionConv
from hsi.models.resnet import BasicBlock, Bottleneck

BACKBONES = ["resnet18", "resnet34", "resnet50", "preact_resnet18", "se_resnet18", "se_resnet50", "densenet_bc",
             "sknet", "resnest"]
UNITS = {"resnet18": 8, "resnet34": 16, "resnet50": 16, "preact_resnet18": 8, "se_resnet18": 8, "se_resnet50": 16,
         "densenet_bc": 3, "sknet": 8, "resnest": 8}     # slots filled: residual units, or dense blocks


pytestmark = pytest.mark.usefixtures("one_thread")


def test_backbones_are_registered_patch_models():
    assert set(BACKBONES) <= set(hsi.list_models())
    for name in BACKBONES:
        model = hsi.build_model(name, bands=15, n_classes=16, patch_size=9)
        assert model.kind == "patch" and (model.bands, model.n_classes, model.patch_size) == (15, 16, 9)


def step_then_evaluate(model, bands, patch):
    """One SGD step at batch 2 (every parameter gets a finite gradient and the loss moves), then eval at batch 1:
    deterministic, and equal to the same sample evaluated in a batch of 2."""
    x = torch.randn(2, 1, bands, patch, patch)
    y = torch.tensor([0, 5])
    model.train()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            p -= 0.01 * p.grad                    # plain SGD, without torch.optim's one-off start-up cost
    model.eval()
    with torch.no_grad():
        single, again, pair = model(x[:1]), model(x[:1]), model(x)
    assert single.shape == (1, model.n_classes) and torch.isfinite(single).all()
    assert torch.equal(single, again)
    torch.testing.assert_close(single, pair[:1], rtol=1e-4, atol=1e-5)
    assert F.cross_entropy(pair, y).item() != pytest.approx(loss.item(), abs=1e-6)


# se_resnet18/50 with a block are resnet18/50 with that block (test_slot_takes_one_spec_or_a_dict_...)
@pytest.mark.parametrize("block", hsi.list_attention())
@pytest.mark.parametrize("name", [name for name in BACKBONES if not name.startswith("se_")])
def test_every_backbone_with_every_block(name, block):
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=15, n_classes=16, patch_size=9, attention=block)
    slots = [m for n, m in model.named_modules() if n.endswith(".slot")]
    assert len(slots) == UNITS[name] and all(type(m) is type(create_attention(block, 64)) for m in slots)
    step_then_evaluate(model, 15, 9)


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_at_paper_size(name):
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=30, n_classes=16, patch_size=25)
    step_then_evaluate(model, 30, 25)
    model.train()
    assert model(torch.randn(1, 1, 30, 25, 25)).shape == (1, 16)      # a last training batch of one


@pytest.mark.parametrize("name", BACKBONES)
def test_sizes_follow_the_input_shape(name):
    big = hsi.build_model(name, bands=30, n_classes=16, patch_size=25)
    small = hsi.build_model(name, bands=15, n_classes=9, patch_size=9)

    def count(model):
        return sum(p.numel() for p in model.parameters())

    stem, features = big.stem[0], big.head.in_features
    assert stem.in_channels == 30 and small.stem[0].in_channels == 15
    assert features == small.head.in_features == big.features(torch.zeros(1, 30, 25, 25)).shape[1]
    # only the stem's input and the head's output depend on bands and classes; the window size changes no weight
    assert count(big) - count(small) == 9 * stem.out_channels * (30 - 15) + (features + 1) * (16 - 9)
    assert big.map_size > small.map_size >= 3


@pytest.mark.parametrize("patch,strides", [(9, [1, 2, 2, 1]), (15, [1, 2, 2, 1]), (25, [1, 2, 2, 2]),
                                           (3, [1, 1, 1, 1]), (5, [1, 2, 1, 1])])
def test_stages_halve_the_window_only_while_it_stays_at_least_three_wide(patch, strides):
    assert stage_strides(patch, 4) == strides


def test_slot_takes_one_spec_or_a_dict_and_se_resnet_is_resnet_with_se():
    by_name = hsi.build_model("resnet18", bands=15, n_classes=16, patch_size=9, attention="cbam")
    by_dict = hsi.build_model("resnet18", bands=15, n_classes=16, patch_size=9, attention={"unit": "cbam"})
    assert [type(m).__name__ for m in by_name.modules()] == [type(m).__name__ for m in by_dict.modules()]
    with pytest.raises(hsi.ConfigError, match=r"unknown attention slot\(s\) \['after_2d'\].*'unit'"):
        hsi.build_model("resnet18", bands=15, n_classes=16, attention={"after_2d": "se"})
    with pytest.raises(hsi.ConfigError, match=r"\['block'\]"):
        hsi.build_model("densenet_bc", bands=15, n_classes=16, attention={"unit": "se"})
    torch.manual_seed(0)
    se = hsi.build_model("se_resnet18", bands=15, n_classes=16, patch_size=9).state_dict()
    torch.manual_seed(0)
    plain_with_se = hsi.build_model("resnet18", bands=15, n_classes=16, patch_size=9, attention="se").state_dict()
    assert se.keys() == plain_with_se.keys() and all(torch.equal(se[k], plain_with_se[k]) for k in se)
    emptied = hsi.build_model("se_resnet18", bands=15, n_classes=16, patch_size=9, attention="none")
    assert not any(isinstance(m, SqueezeExcitation) for m in emptied.modules())


class Zero(nn.Module):
    def __init__(self, channels):
        super().__init__()

    def forward(self, x):
        return torch.zeros_like(x)


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
@pytest.mark.parametrize("preact", [False, True])
def test_slot_sits_on_the_residual_branch_before_the_addition(block, preact):
    torch.manual_seed(0)
    channels = 16 * block.expansion
    unit = block(channels, 16, attention=Zero, preact=preact).eval()
    x = torch.randn(2, channels, 5, 5)
    with torch.no_grad():                    # a slot that zeroes the branch leaves only the shortcut
        torch.testing.assert_close(unit(x), x if preact else torch.relu(x))
        unit.slot = nn.Identity()
        assert not torch.allclose(unit(x), x if preact else torch.relu(x))


@pytest.mark.parametrize("depth,growth", [(40, 24), (22, 12)])
def test_densenet_bc_widths_follow_depth_growth_and_compression(depth, growth):
    model = hsi.build_model("densenet_bc", bands=15, n_classes=16, patch_size=9, depth=depth, growth=growth)
    n = (depth - 4) // 6
    channels = 2 * growth + n * growth            # after block 1
    channels = channels // 2 + n * growth         # transition (θ = 0.5), block 2
    channels = channels // 2 + n * growth         # transition, block 3
    assert model.head.in_features == channels
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == depth - 1                # every layer but the classifier
    with pytest.raises(hsi.ConfigError, match="6n \\+ 4"):
        hsi.build_model("densenet_bc", bands=15, n_classes=16, depth=41)


def randomise_norms(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=generator)
                m.running_var.uniform_(0.5, 2, generator=generator)
                m.weight.normal_(1, 0.3, generator=generator)
                m.bias.normal_(0, 0.3, generator=generator)
    return module.eval()


def test_se_equals_its_formula():
    """Hu et al. 2018, eqs. 2-4: z = GAP(u), s = σ(W2 δ(W1 z)), x̃_c = s_c · u_c."""
    torch.manual_seed(0)
    block = SqueezeExcitation(48, reduction=4).eval()
    u = torch.randn(3, 48, 5, 7)
    w1, b1 = block.mlp[0].weight[:, :, 0, 0], block.mlp[0].bias
    w2, b2 = block.mlp[2].weight[:, :, 0, 0], block.mlp[2].bias
    z = u.sum((2, 3)) / (u.shape[2] * u.shape[3])
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    with torch.no_grad():
        torch.testing.assert_close(block(u), s[:, :, None, None] * u)


@pytest.mark.parametrize("stride", [1, 2])
def test_sk_convolution_equals_its_formula(stride):
    """Li et al. 2019, eqs. 1-6 with M = 2: U = Ũ + Û (3×3 and dilated 3×3 branches, grouped conv, BN, ReLU),
    s = GAP(U), z = δ(W s + b) (the FC's BN replaced by a bias: it acts on one value per sample),
    a_c = e^{A_c z} / (e^{A_c z} + e^{B_c z}), b_c = 1 - a_c, V_c = a_c Ũ_c + b_c Û_c."""
    torch.manual_seed(0)
    channels, groups = 64, 8
    sk = randomise_norms(SelectiveKernel(channels, groups=groups, reduction=4, min_hidden=8, stride=stride))
    x = torch.randn(2, channels, 9, 9)

    def branch(index, dilation):
        conv, norm = sk.branches[index][0], sk.branches[index][1]
        out = F.conv2d(x, conv.weight, None, stride, dilation, dilation, groups)
        return torch.relu(F.batch_norm(out, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                       False, 0.0, norm.eps))

    u_tilde, u_hat = branch(0, 1), branch(1, 2)
    s = (u_tilde + u_hat).mean((2, 3))
    z = torch.relu(s @ sk.squeeze[0].weight[:, :, 0, 0].T + sk.squeeze[0].bias)
    select, bias = sk.select.weight[:, :, 0, 0], sk.select.bias
    a_logit, b_logit = z @ select[:channels].T + bias[:channels], z @ select[channels:].T + bias[channels:]
    a = torch.exp(a_logit) / (torch.exp(a_logit) + torch.exp(b_logit))
    v = a[:, :, None, None] * u_tilde + (1 - a)[:, :, None, None] * u_hat
    with torch.no_grad():
        out = sk(x)
    assert out.shape == (2, channels, 5 if stride == 2 else 9, 5 if stride == 2 else 9)
    torch.testing.assert_close(out, v, rtol=1e-5, atol=1e-5)


class ReleasedSplat(nn.Module):
    """The forward pass of ``SplAtConv2d`` and ``rSoftMax`` in github:zhanghang1989/ResNeSt
    (resnest/torch/models/splat.py), transcribed with the module under test's weights; ``bn1`` is left out
    (the module has a bias there instead)."""

    def __init__(self, module):
        super().__init__()
        self.m, self.radix, self.cardinality = module, module.radix, module.cardinality

    def rsoftmax(self, x):
        batch = x.size(0)
        if self.radix > 1:
            x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
            x = F.softmax(x, dim=1)
            return x.reshape(batch, -1)
        return torch.sigmoid(x)

    def forward(self, x):
        conv, bn0 = self.m.conv[0], self.m.conv[1]
        x = F.relu(F.batch_norm(conv(x), bn0.running_mean, bn0.running_var, bn0.weight, bn0.bias, False, 0.0,
                                bn0.eps))
        batch, rchannel = x.shape[:2]
        if self.radix > 1:
            splited = torch.split(x, rchannel // self.radix, dim=1)
            gap = sum(splited)
        else:
            gap = x
        gap = F.relu(self.m.fc1[0](F.adaptive_avg_pool2d(gap, 1)))
        atten = self.rsoftmax(self.m.fc2(gap)).view(batch, -1, 1, 1)
        if self.radix > 1:
            attens = torch.split(atten, rchannel // self.radix, dim=1)
            return sum(att * split for (att, split) in zip(attens, splited))
        return atten * x


@pytest.mark.parametrize("radix,cardinality,stride", [(2, 1, 1), (2, 2, 2), (4, 2, 1), (1, 2, 1)])
def test_split_attention_equals_the_released_code(radix, cardinality, stride):
    torch.manual_seed(0)
    module = randomise_norms(SplitAttentionConv(32, 24, stride, radix=radix, cardinality=cardinality))
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        out = module(x)
        assert out.shape == (2, 24, 4 if stride == 2 else 7, 4 if stride == 2 else 7)
        torch.testing.assert_close(out, ReleasedSplat(module)(x), rtol=1e-5, atol=1e-6)


def test_split_attention_refuses_channels_it_cannot_group():
    with pytest.raises(hsi.ConfigError, match="divisible by radix × cardinality"):
        SplitAttentionConv(30, 24, radix=4)


@pytest.mark.parametrize("name,options", [("densenet_bc", {"depth": 22, "growth": 12}),
                                          ("resnet18", {"attention": {"unit": "cbam"}})])
def test_checkpoint_rebuilds_the_backbone_and_prediction_uses_patch_mode(name, options, indian_pines, tmp_path):
    """A checkpoint holds the model as name + plain keyword arguments (as ``hsi train`` writes it); the rebuilt
    model gives the same logits, whole-scene prediction runs window by window, and messages name the model."""
    scene = Scene(indian_pines.cube[:12, :12], indian_pines.labels[:12, :12], indian_pines.label_ids,
                  indian_pines.class_names, indian_pines.palette, "indian_pines-crop")
    reducer = fit_pca(scene.cube, 8)
    kwargs = {"bands": 8, "n_classes": 16, "patch_size": 9, **options}
    torch.manual_seed(0)
    model = randomise_norms(hsi.build_model(name, **kwargs))
    save_checkpoint({"model": {"name": name, "kwargs": kwargs}, "state_dict": model.state_dict(),
                     "preprocess": reducer.to_dict(), "patch_size": 9, "padding": "zero", "bands_in": scene.bands,
                     "class_names": list(scene.class_names), "label_ids": scene.label_ids.tolist(),
                     "palette": scene.palette.tolist()}, tmp_path / "best.pt")
    trained = TrainedModel.from_checkpoint(tmp_path / "best.pt")
    x = torch.randn(2, 1, 8, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(trained.model(x), model(x))
    logits = scene_logits(trained, scene, mode="auto")
    patches = torch.from_numpy(pad_cube(reducer.transform(scene.cube), 9)).permute(2, 0, 1)
    window = patches[:, 3:12, 5:14].reshape(1, 1, 8, 9, 9)          # the window centred on pixel (3, 5)
    with torch.no_grad():
        np.testing.assert_allclose(logits[3, 5], model(window)[0].numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(hsi.ConfigError, match=f"^{name} has no dense form"):    # the registry name
        scene_logits(trained, scene, mode="dense")
