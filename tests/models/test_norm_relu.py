"""The fused batch norm + ReLU step and the channels-last depth fold against PyTorch's own modules."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

import hsi
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.preprocess import fit_pca
from hsi.models.hybridsn import fold_depth
from hsi.models.norm_relu import SLICE, ConvNormReLU, batch_norm_relu, fusable


def _plain_forward(sequential, x):
    for module in sequential:          # nn.Sequential's own loop: autograd keeps every module's tensors
        x = module(x)
    return x


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_fused_step_matches_batch_norm_then_relu(layout):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4), nn.ReLU(inplace=True))
    plain[1].weight.data.uniform_(0.5, 1.5)
    plain[1].bias.data.normal_()
    fused = ConvNormReLU(*copy.deepcopy(list(plain)))
    x = torch.randn(3 * SLICE + 5, 2, 6, 7, 7).to(memory_format=layout)     # slices of unequal size
    upstream = torch.randn(3 * SLICE + 5, 4, 4, 5, 5)
    grads = []
    for net, forward in ((plain, _plain_forward), (fused, lambda n, v: n(v))):
        xi = x.clone().requires_grad_()
        y = forward(net, xi)
        (y * upstream).sum().backward()
        grads.append((y.detach(), xi.grad, [p.grad for p in net.parameters()]))
    (y_plain, dx_plain, dp_plain), (y_fused, dx_fused, dp_fused) = grads
    assert torch.equal(y_plain, y_fused)                             # PyTorch's batch norm forward
    for name, value in plain[1].state_dict().items():                # running statistics and batch count
        assert torch.equal(value, fused[1].state_dict()[name]), name
    torch.testing.assert_close(dx_fused, dx_plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(dp_fused, dp_plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_fused_step_writes_the_gradient_over_the_convolution_output():
    """No third map in the backward pass: the convolution's output gradient is its output's own memory."""
    torch.manual_seed(0)
    conv, norm = nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4)
    x = conv(torch.randn(4, 1, 5, 6, 6))
    where = x.data_ptr()
    seen = []
    x.register_hook(lambda grad: seen.append(grad.data_ptr()))
    batch_norm_relu(norm, x).sum().backward()
    assert seen == [where]


def test_fused_step_leaves_eval_sync_and_leaf_inputs_to_pytorch():
    norm = nn.BatchNorm3d(2)
    leaf = torch.randn(2, 2, 3, 3, 3, requires_grad=True)
    before = leaf.detach().clone()
    batch_norm_relu(norm, leaf).sum().backward()        # a leaf may be the user's tensor: never written over
    assert torch.equal(leaf.detach(), before)
    assert fusable(norm) and not fusable(nn.SyncBatchNorm(2))      # torchrun --sync-bn runs PyTorch's
    norm.eval()
    assert not fusable(norm)
    with torch.no_grad():
        assert torch.equal(batch_norm_relu(norm, before.clone()), torch.relu(norm(before)))


def test_depth_fold_is_a_channels_last_map_with_flattens_values():
    x = torch.randn(2, 3, 4, 5, 6).to(memory_format=torch.channels_last_3d).requires_grad_()
    folded = fold_depth(x * 1)
    assert torch.equal(folded, x.detach().flatten(1, 2))
    assert folded.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():                               # eval keeps the contiguous fold: maps bit-identical
        assert fold_depth(x).is_contiguous()


def test_hybridsn_training_step_matches_the_plain_modules(indian_pines, one_thread):
    """A HybridSN step through the fused layers gives PyTorch's plain modules' loss and gradients."""
    reduced = fit_pca(indian_pines.cube, 15).transform(indian_pines.cube)
    coords = np.argwhere(indian_pines.labels >= 0)[::400]
    windows = PatchDataset(pad_cube(reduced, 11), coords, indian_pines.labels[tuple(coords.T)], 11)
    x, y = windows.__getitems__(list(range(len(windows))))
    x = x.to(memory_format=torch.channels_last_3d)       # as training batches are
    torch.manual_seed(0)
    model = hsi.build_model("hybridsn", bands=x.shape[2], n_classes=16, patch_size=x.shape[-1]).train()
    plain = copy.deepcopy(model)
    for stage in plain.stages:
        stage.layers = nn.Sequential(*stage.layers)
    results = []
    for net in (model, plain):
        torch.manual_seed(1)                            # the same dropout masks
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in net.parameters()]))
    (loss, grads), (plain_loss, plain_grads) = results
    torch.testing.assert_close(loss, plain_loss, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
