"""Period-2 artefacts of a scene model's map: the share of pixels that start an A B A B run (A != B) along a row or
a column, off and on the labelled fields, for the trained upsampling and with it reset to bilinear.

    python benchmarks/fcn_stripes.py RUN_DIR [RUN_DIR ...]

On Indian Pines (random 10 %, seed 0, 100 epochs) an fcn8s with learned transposed convolutions (kernels 18 % from
bilinear) gave 3.47 % / 2.52 % (row / column) off the fields and 0.44 % on them, 0.00 % / 0.01 % with the same
weights but bilinear upsampling; an SVM's map 1.2-1.4 % alike on and off the fields (pixel noise, no stripes).
With the fixed bilinear upsampling of hsi.models.fcn, seeds 0-2 give at most 0.02 %.
"""
import copy
import sys

import numpy as np
import torch

import hsi
from hsi.checkpoint import TrainedModel
from hsi.inference import predict_scene
from hsi.models.fcn import bilinear_kernel


def abab(classes: np.ndarray, mask: np.ndarray) -> list[float]:
    """% of the ``mask`` pixels starting an A B A B run along a row, then along a column."""
    shares = []
    for a, k in ((classes, mask), (classes.T, mask.T)):
        hit = (a[:, :-3] == a[:, 2:-1]) & (a[:, 1:-2] == a[:, 3:]) & (a[:, :-3] != a[:, 1:-2])
        shares.append(100 * float(hit[k[:, :-3]].mean()))
    return shares


def show(name: str, classes: np.ndarray, off: np.ndarray) -> None:
    (row_off, col_off), (row_on, col_on) = abab(classes, off), abab(classes, ~off)
    print(f"{name:45s} ABAB along a row: off fields {row_off:5.2f}%  on {row_on:5.2f}%   "
          f"along a column: off {col_off:5.2f}%  on {col_on:5.2f}%")


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    scene = hsi.load_scene("indian_pines")
    off = scene.labels < 0
    for run in runs:
        trained = TrainedModel.from_checkpoint(f"{run}/best.pt")
        show(run, predict_scene(trained, scene), off)
        reset = copy.deepcopy(trained)
        ups = [m for m in reset.model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)
               and m.weight.dim() == 4 and type(m).__name__ in ("ConvTranspose2d", "BilinearUpsample")]
        with torch.no_grad():
            for m in ups:
                kernel = bilinear_kernel(m.weight.shape[0], m.weight.shape[-1] // 2)
                print(f"   {type(m).__name__}: |W - bilinear| / |bilinear| = "
                      f"{float((m.weight - kernel).norm() / kernel.norm()):.3f}")
                m.weight.copy_(kernel)
        if ups:
            show("   upsampling reset to bilinear", predict_scene(reset, scene), off)


if __name__ == "__main__":
    main(sys.argv[1:])
