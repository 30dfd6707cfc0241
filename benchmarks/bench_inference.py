"""Full-scene inference: dense (fully-convolutional, tiled) against batched patch mode, same weights.

    python benchmarks/bench_inference.py                 # both cases
    python benchmarks/bench_inference.py --case indian_pines | synthetic | pixel

``indian_pines``: HybridSN (30 PCA bands, 25x25, random weights with non-trivial batch-norm statistics, or
``--checkpoint best.pt``) over all 21,025 pixels in dense and in patch mode: both times, their ratio, the
max |logit difference|, label agreement and peak RSS; then the scene model FCN-8s (random weights, or
``--fcn-checkpoint``) over the same scene in one pass, and its time as a fraction of HybridSN's dense map
(target: at most 1/20). Dense and FCN maps are timed cold (the first call in the process, which includes
oneDNN's kernel set-up) and warm (the median of ``--repeats`` further calls); the ratio is taken on both.
``synthetic``: a 2000x2000x30 scene (the reduced Indian Pines cube tiled and mirrored) in tiled dense mode
only: time and peak RSS. ``pixel``: the pixel models ``rf``, ``svm`` (fitted on a 10 % random split of Indian Pines,
30 whitened PCA bands) and ``spectral_cnn`` (random weights) map all 21,025 pixels through hsi (``scene_logits``:
reduction of the cube included) against the plain pass over the same, already reduced spectra in the same run
(scikit-learn's ``predict_proba`` / ``decision_function`` of the same fitted estimator, the bare module called on
``--batch`` spectra at a time): both medians of ``--repeats`` calls, their ratio (target <= 2) and the agreement of
the labels. Each case runs in its own process so its peak RSS is its own.
"""
import argparse
import resource
import subprocess
import sys
import time

import numpy as np
import torch

import hsi
from hsi.checkpoint import TrainedModel
from hsi.data.preprocess import fit_pca
from hsi.inference import scene_logits


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_model(name, bands, n_classes, patch=None, seed=0):
    """Model ``name`` with its initial weights and random batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = hsi.build_model(name, bands=bands, n_classes=n_classes, patch_size=patch)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def timed(call, repeats):
    """``(result, seconds of the first call, median seconds of `repeats` further calls)``."""
    start = time.perf_counter()
    result = call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    return result, cold, float(np.median(warm))


def indian_pines(checkpoint, fcn_checkpoint, repeats):
    scene = hsi.load_scene("indian_pines")
    if checkpoint:
        trained = TrainedModel.from_checkpoint(checkpoint)
    else:
        trained = TrainedModel(random_model("hybridsn", 30, 16, 25), fit_pca(scene.cube, 30, whiten=True), 25, "zero",
                               scene.class_names, scene.label_ids, scene.palette, scene.bands)
    print(f"Indian Pines 145x145 (21,025 pixels), {trained.model.__class__.__name__} "
          f"{trained.reducer.n_components} bands, {trained.patch_size}x{trained.patch_size}, "
          f"{torch.get_num_threads()} threads")
    dense, dense_cold, dense_s = timed(lambda: scene_logits(trained, scene, mode="dense"), repeats)
    dense_rss = peak_rss_mb()
    start = time.perf_counter()
    patch = scene_logits(trained, scene, mode="patch", batch_size=256)
    patch_s = time.perf_counter() - start
    agree = (dense.argmax(-1) == patch.argmax(-1)).mean()
    print(f"dense  {dense_s:8.2f} s   (cold {dense_cold:.2f} s)   peak RSS {dense_rss:6.0f} MB")
    print(f"patch  {patch_s:8.2f} s   peak RSS {peak_rss_mb():6.0f} MB (whole process)")
    print(f"speed-up {patch_s / dense_s:.1f}x   max |logit difference| {np.abs(dense - patch).max():.2e}   "
          f"label agreement {100 * agree:.3f} % of {dense.shape[0] * dense.shape[1]} pixels")
    if fcn_checkpoint:
        fcn = TrainedModel.from_checkpoint(fcn_checkpoint)
    else:
        fcn = TrainedModel(random_model("fcn8s", 30, 16), fit_pca(scene.cube, 30, whiten=True), None, "zero",
                           scene.class_names, scene.label_ids, scene.palette, scene.bands)
    _, fcn_cold, fcn_s = timed(lambda: scene_logits(fcn, scene), repeats)
    print(f"fcn8s  {fcn_s:8.3f} s   (cold {fcn_cold:.3f} s)   one pass   warm 1/{dense_s / fcn_s:.0f} of HybridSN's "
          f"dense time, cold 1/{dense_cold / fcn_cold:.0f} (target <= 1/20)")


def synthetic(size=2000, bands=30):
    scene = hsi.load_scene("indian_pines")
    reduced = fit_pca(scene.cube, bands, whiten=True).transform(scene.cube)
    reps = -(-size // reduced.shape[0])
    cube = np.pad(reduced, ((0, (reps - 1) * reduced.shape[0]), (0, (reps - 1) * reduced.shape[1]), (0, 0)),
                  mode="symmetric")[:size, :size]
    cube = np.ascontiguousarray(cube)
    del scene, reduced
    model = random_model("hybridsn", bands, 16, 25)
    base = peak_rss_mb()
    print(f"synthetic {size}x{size}x{bands} ({cube.nbytes / 2**20:.0f} MB cube), tiled dense, "
          f"{torch.get_num_threads()} threads")
    start = time.perf_counter()
    labels = hsi.predict_scene(model, cube, mode="dense")
    seconds = time.perf_counter() - start
    print(f"dense  {seconds:8.1f} s   {size * size / seconds:,.0f} pixels/s   peak RSS {peak_rss_mb():6.0f} MB "
          f"(before prediction {base:.0f} MB)   classes used {len(np.unique(labels))}")


def pixel_models(spectra, labels, batch_size):
    """``(name, hsi model, plain pass: () -> scores of the classes present)`` for each pixel model; the plain pass
    is scikit-learn's own estimator fitted the same way (the torch module itself for ``spectral_cnn``)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    pixels = np.flatnonzero(labels >= 0)
    x, y = spectra[pixels], labels[pixels]
    torch.manual_seed(0)
    rf = hsi.build_model("rf", bands=30, n_classes=16, patch_size=1)
    rf.fit(x, y)
    forest = RandomForestClassifier(rf.trees, random_state=rf.seed, n_jobs=1).fit(x, y)
    yield "rf", rf, lambda: forest.predict_proba(spectra)
    svm = hsi.build_model("svm", bands=30, n_classes=16, patch_size=1)
    chosen = svm.fit(x, y)
    svc = SVC(C=chosen["C"], gamma=chosen["gamma"]).fit(x, y)
    yield "svm", svm, lambda: svc.decision_function(spectra)
    cnn = hsi.build_model("spectral_cnn", bands=30, n_classes=16, patch_size=1).eval()
    windows = torch.from_numpy(spectra).reshape(-1, 1, 30, 1, 1)

    def bare():
        with torch.inference_mode():
            return torch.cat([cnn(chunk) for chunk in windows.split(batch_size)]).numpy()[:, np.unique(y)]
    yield "spectral_cnn", cnn, bare


def pixel(repeats, batch_size):
    from hsi.data.splits import random_split

    scene = hsi.load_scene("indian_pines")
    reducer = fit_pca(scene.cube, 30, whiten=True)
    spectra = reducer.transform(scene.cube).reshape(-1, 30).astype(np.float32)
    labels = random_split(scene.labels, train_ratio=0.1, val_ratio=0.0).train.ravel()
    present = np.unique(labels[labels >= 0])
    print(f"Indian Pines 145x145 (21,025 pixels), 30 PCA bands, {(labels >= 0).sum()} training pixels (10 % random), "
          f"batch {batch_size}, {torch.get_num_threads()} thread(s); medians of {repeats} calls after a first one\n")
    print("| model | hsi map (s) | plain pass (s) | ratio | label agreement |")
    print("|---|---:|---:|---:|---:|")
    for name, model, plain in pixel_models(spectra, labels, batch_size):
        trained = TrainedModel(model, reducer, 1, "zero", scene.class_names, scene.label_ids, scene.palette,
                               scene.bands, name)
        ours, _, ours_s = timed(lambda: scene_logits(trained, scene, batch_size=batch_size), repeats)  # noqa: B023
        theirs, _, theirs_s = timed(plain, repeats)
        agree = (ours.reshape(-1, ours.shape[-1]).argmax(1) == present[theirs.argmax(1)]).mean()
        print(f"| `{name}` | {ours_s:.3f} | {theirs_s:.3f} | {ours_s / theirs_s:.2f} | {100 * agree:.2f} % |",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("indian_pines", "synthetic", "pixel"))
    parser.add_argument("--checkpoint", help="use a trained best.pt instead of random weights")
    parser.add_argument("--fcn-checkpoint", help="use a trained fcn8s best.pt instead of random weights")
    parser.add_argument("--size", type=int, default=2000, help="side of the synthetic scene")
    parser.add_argument("--repeats", type=int, default=5, help="warm calls timed after the first (median)")
    parser.add_argument("--batch", type=int, default=256, help="pixels per batch of the pixel case (hsi's default)")
    args = parser.parse_args()
    if args.case == "indian_pines":
        indian_pines(args.checkpoint, args.fcn_checkpoint, args.repeats)
    elif args.case == "synthetic":
        synthetic(args.size)
    elif args.case == "pixel":
        pixel(args.repeats, args.batch)
    else:
        for case in ("indian_pines", "synthetic", "pixel"):
            extra = ["--checkpoint", args.checkpoint] if args.checkpoint and case == "indian_pines" else []
            extra += ["--fcn-checkpoint", args.fcn_checkpoint] if args.fcn_checkpoint and case == "indian_pines" \
                else []
            subprocess.run([sys.executable, __file__, "--case", case, "--size", str(args.size),
                            "--repeats", str(args.repeats), *extra],
                           check=True)


if __name__ == "__main__":
    main()
