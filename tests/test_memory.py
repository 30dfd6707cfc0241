"""Training memory: saved activations beyond the budget go to temporary files, with bit-identical results."""
import numpy as np
import torch

import hsi
from hsi.activations import ActivationStore
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.preprocess import fit_pca
from hsi.pipeline import train


def _gradients(model, x, y, store=None):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)                                 # the same dropout masks
    if store is None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
    else:
        with store:
            loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_offloaded_step_gives_the_same_gradients(indian_pines, one_thread):
    reduced = fit_pca(indian_pines.cube, 15).transform(indian_pines.cube)
    coords = np.argwhere(indian_pines.labels >= 0)[::500]
    windows = PatchDataset(pad_cube(reduced, 11), coords, indian_pines.labels[tuple(coords.T)], 11)
    x, y = windows.__getitems__(list(range(len(windows))))
    x = x.to(memory_format=torch.channels_last_3d)       # as training batches are: non-contiguous strides kept
    torch.manual_seed(0)
    model = hsi.build_model("hybridsn", bands=15, n_classes=16, patch_size=11).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, grads = _gradients(model, x, y)
    model.load_state_dict(state)                         # batch-norm running statistics as before
    store = ActivationStore(budget=0, least=1 << 10)
    offloaded_loss, offloaded_grads = _gradients(model, x, y, store)
    assert store.offloaded > 0
    assert torch.equal(loss, offloaded_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, offloaded_grads))


def test_a_small_training_budget_trains_the_same_model(tmp_path, field, field_config, one_thread):
    runs = {}
    for budget in (1024, 16):       # 16 MB: a batch's saved activations beyond 2 MB go to files
        config = field_config(epochs=1, write_map=False)
        config.fit.memory_mb = budget
        metrics = train(config, tmp_path / str(budget), scene=field.scene, progress=False)
        runs[budget] = metrics, torch.load(tmp_path / str(budget) / "best.pt", weights_only=True)["state_dict"]
    (metrics, weights), (small_metrics, small_weights) = runs[1024], runs[16]
    assert metrics["oa"] == small_metrics["oa"] and metrics["confusion_matrix"] == small_metrics["confusion_matrix"]
    assert all(torch.equal(weights[k], small_weights[k]) for k in weights)


def test_the_last_saved_activations_stay_in_memory():
    """The backward pass frees the last saved tensors first: those stay in memory, the earliest go to files."""
    x = torch.linspace(0, 1, 1024, requires_grad=True)       # saved tensors of 4, 8 and 16 KB, in this order
    store = ActivationStore(budget=16 << 10, least=1 << 10)
    with store:
        y = torch.sin(torch.sin(torch.sin(x).repeat(2)).repeat(2)).sum()
    assert store.offloaded == 12 << 10 and store.held == 16 << 10
    y.backward()
    expected = torch.linspace(0, 1, 1024, requires_grad=True)
    torch.sin(torch.sin(torch.sin(expected).repeat(2)).repeat(2)).sum().backward()
    assert torch.equal(x.grad, expected.grad)
