"""The whole Indian Pines pipeline, ours against a seed-style baseline written the way the official HybridSN
notebook does it: prepare time, one training epoch, the full-scene map and peak RSS.

    python benchmarks/bench_pipeline.py                  # each pipeline once, 2 + 2 interleaved epochs
    python benchmarks/bench_pipeline.py --repeats 3      # pipelines alternated 3 times (medians), 6 + 6 epochs
    python benchmarks/bench_pipeline.py --batch 64       # both pipelines at batch 64 instead of the paper's 256

Paper settings for both: PCA to 30 whitened components fitted on the whole scene, 25x25 windows, batch 256
(or ``--batch``; what one batch's activations take for the backward pass grows with it: about 6 MB a patch),
Adam 1e-3, one epoch over a stratified random 10 % of the labelled pixels (the same count for both), the same
initial weights (``hsi.build_model("hybridsn", ...)`` after ``torch.manual_seed(0)``), float32 on the CPU.

ours      ``hsi.load_scene`` -> ``RunConfig`` + ``prepare`` (lazy windows of one padded float32 array)
          -> ``Trainer.run_epoch`` (no validation split, so the epoch is training only) -> ``hsi.predict_scene``
          (dense).
baseline  ``applyPCA`` (scikit-learn PCA, whiten=True, on every pixel) -> ``padWithZeros`` -> ``createImageCubes``
          (every padded 25x25x30 patch of the scene, all 21,025 in float64: 2.9 GiB) -> unlabelled patches
          dropped -> stratified ``train_test_split`` -> ``TensorDataset`` + ``DataLoader(shuffle=True)`` -> the
          same model -> the map predicted from the 21,025 materialised patches in batches of 256 (the stack is
          kept for it rather than cut a second time, which would only cost the baseline more).

"prepare" is load -> PCA -> patches -> datasets; "whole pipeline" is prepare + epoch + map. Each pipeline runs
in its own subprocess, so each peak RSS (``ru_maxrss``) is its own; the RSS rows after prepare and after the
epoch show where the peak is reached. The machine may be shared, so the epoch ratio comes from a third process
that alternates epochs of both (ours, baseline, baseline, ours; each from the same initial weights) and sees
the same load on both sides; the single epoch inside each pipeline is shown too. Use ``--repeats`` for
steadier figures.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import hsi

SEED = 0
TRAIN_RATIO = 0.1
BANDS, PATCH, LR = 30, 25, 1e-3
BATCH = 256                     # set by --batch, in the driver and in every child


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def initial_model(n_classes):
    torch.manual_seed(SEED)
    return hsi.build_model("hybridsn", bands=BANDS, n_classes=n_classes, patch_size=PATCH)


def n_train_pixels():
    """Training pixels of our random 10 % split; the baseline's split draws the same number."""
    from hsi.data.splits import make_split

    labels = hsi.load_scene("indian_pines").labels
    return int((make_split(labels, "random", train_ratio=TRAIN_RATIO, val_ratio=0.0, seed=SEED).train >= 0).sum())


# ---------------------------------------------------------------------------------------------------- ours
def ours_prepare(n_train):
    """load -> PCA -> padded cube -> lazy train / val / test datasets, through ``RunConfig`` + ``prepare``."""
    from hsi.config import FitOptions, RunConfig
    from hsi.pipeline import prepare

    scene = hsi.load_scene("indian_pines")
    config = RunConfig(dataset="indian_pines", split="random", train_ratio=TRAIN_RATIO, val_ratio=0.0, pca=BANDS,
                       pca_fit="scene", whiten=True, patch=PATCH, seed=SEED,
                       fit=FitOptions(epochs=1, batch_size=BATCH, lr=LR, device="cpu"))
    prepared = prepare(scene, config)
    assert len(prepared.datasets["train"]) == n_train, (len(prepared.datasets["train"]), n_train)
    return scene, config, prepared


def ours_epoch(scene, config, prepared):
    """One epoch of a fresh model with the engine's ``Trainer``; returns (trainer, loss, OA)."""
    from hsi.engine import Trainer

    trainer = Trainer(initial_model(scene.n_classes), config.fit, prepared.datasets["train"],
                      prepared.datasets["val"], scene.n_classes, seed=SEED)
    row, _ = trainer.run_epoch(progress=False)
    return trainer, row["train_loss"], row["train_oa"]


def run_ours(n_train):
    from hsi.checkpoint import TrainedModel

    start = time.perf_counter()
    scene, config, prepared = ours_prepare(n_train)
    prepare_s, prepare_rss = time.perf_counter() - start, peak_rss_mb()
    start = time.perf_counter()
    trainer, loss, oa = ours_epoch(scene, config, prepared)
    epoch_s, epoch_rss = time.perf_counter() - start, peak_rss_mb()
    trained = TrainedModel(trainer.model, prepared.reducer, config.patch, config.padding, scene.class_names,
                           scene.label_ids, scene.palette, scene.bands)
    start = time.perf_counter()
    label_map = hsi.predict_scene(trained, scene, mode="dense")
    map_s = time.perf_counter() - start
    assert label_map.shape == scene.labels.shape
    return {"prepare_s": prepare_s, "epoch_s": epoch_s, "map_s": map_s, "prepare_rss": prepare_rss,
            "epoch_rss": epoch_rss, "peak_rss": peak_rss_mb(), "n_train": len(prepared.datasets["train"]),
            "train_loss": loss, "train_oa": oa}


# ------------------------------------------------------------------------------------ seed-style baseline
def applyPCA(X, numComponents=75):
    from sklearn.decomposition import PCA

    newX = np.reshape(X, (-1, X.shape[2]))
    pca = PCA(n_components=numComponents, whiten=True)
    newX = pca.fit_transform(newX)
    newX = np.reshape(newX, (X.shape[0], X.shape[1], numComponents))
    return newX, pca


def padWithZeros(X, margin=2):
    newX = np.zeros((X.shape[0] + 2 * margin, X.shape[1] + 2 * margin, X.shape[2]))
    x_offset = margin
    y_offset = margin
    newX[x_offset:X.shape[0] + x_offset, y_offset:X.shape[1] + y_offset, :] = X
    return newX


def createImageCubes(X, y, windowSize=5, removeZeroLabels=True):
    margin = int((windowSize - 1) / 2)
    zeroPaddedX = padWithZeros(X, margin=margin)
    patchesData = np.zeros((X.shape[0] * X.shape[1], windowSize, windowSize, X.shape[2]))
    patchesLabels = np.zeros(X.shape[0] * X.shape[1])
    patchIndex = 0
    for r in range(margin, zeroPaddedX.shape[0] - margin):
        for c in range(margin, zeroPaddedX.shape[1] - margin):
            patch = zeroPaddedX[r - margin:r + margin + 1, c - margin:c + margin + 1]
            patchesData[patchIndex, :, :, :] = patch
            patchesLabels[patchIndex] = y[r - margin, c - margin]
            patchIndex = patchIndex + 1
    if removeZeroLabels:
        patchesData = patchesData[patchesLabels > 0, :, :, :]
        patchesLabels = patchesLabels[patchesLabels > 0]
        patchesLabels -= 1
    return patchesData, patchesLabels


def to_torch_layout(patches):
    """(N, w, w, K) -> (N, 1, K, w, w), as the seed's PyTorch port feeds its 3-D convolutions."""
    return patches.transpose(0, 3, 1, 2)[:, None]


def baseline_prepare(n_train):
    """Returns the scene, every patch of it (float64), the train / test loaders and the arrays the seed's
    notebook keeps alive as globals until its end."""
    from sklearn.model_selection import train_test_split

    scene = hsi.load_scene("indian_pines")
    X, y = scene.cube.astype(np.float64), scene.labels + 1         # the seed's .mat arrays: 0 = unlabelled
    X, pca = applyPCA(X, numComponents=BANDS)
    patches, labels = createImageCubes(X, y, windowSize=PATCH, removeZeroLabels=False)   # all 21,025 patches
    labelled = labels > 0
    X_l, y_l = patches[labelled], labels[labelled] - 1
    Xtrain, Xtest, ytrain, ytest = train_test_split(X_l, y_l, train_size=n_train, random_state=345, stratify=y_l)
    train_set = torch.utils.data.TensorDataset(torch.FloatTensor(to_torch_layout(Xtrain)), torch.LongTensor(ytrain))
    test_set = torch.utils.data.TensorDataset(torch.FloatTensor(to_torch_layout(Xtest)), torch.LongTensor(ytest))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=BATCH, shuffle=False)
    return scene, patches, train_loader, test_loader, (X, X_l, y_l, Xtrain, Xtest, ytrain, ytest)


def baseline_epoch(n_classes, train_loader):
    """One epoch of a fresh model, the seed's loop; returns (model, loss, OA)."""
    net = initial_model(n_classes)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    net.train()
    total_loss, correct, seen = 0.0, 0, 0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(targets)
        correct += (outputs.argmax(1) == targets).sum().item()
        seen += len(targets)
    return net, total_loss / seen, correct / seen


def run_baseline(n_train):
    start = time.perf_counter()
    scene, patches, train_loader, test_loader, seed_globals = baseline_prepare(n_train)   # all held to the end
    prepare_s, prepare_rss = time.perf_counter() - start, peak_rss_mb()
    start = time.perf_counter()
    net, loss, oa = baseline_epoch(scene.n_classes, train_loader)
    epoch_s, epoch_rss = time.perf_counter() - start, peak_rss_mb()
    start = time.perf_counter()
    net.eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(patches), BATCH):
            predictions.append(net(torch.FloatTensor(to_torch_layout(patches[i:i + BATCH]))).argmax(1).numpy())
    np.concatenate(predictions).reshape(scene.labels.shape)     # the map, assembled as the official code does
    map_s = time.perf_counter() - start
    return {"prepare_s": prepare_s, "epoch_s": epoch_s, "map_s": map_s, "prepare_rss": prepare_rss,
            "epoch_rss": epoch_rss, "peak_rss": peak_rss_mb(), "n_train": len(train_loader.dataset),
            "train_loss": loss, "train_oa": oa}


# ----------------------------------------------------------------------------------- interleaved epochs
def run_epochs(n_train, repeats):
    """Epochs of both, alternated ours, baseline, baseline, ours (``repeats`` times) in one process, each from
    the same initial weights: the epoch ratio then sees the same machine load on both sides."""
    scene, config, prepared = ours_prepare(n_train)
    train_loader = baseline_prepare(n_train)[2]             # keeps only the baseline's training tensors
    seconds = {"ours": [], "baseline": []}
    for name in ("ours", "baseline", "baseline", "ours") * repeats:
        start = time.perf_counter()
        ours_epoch(scene, config, prepared) if name == "ours" else baseline_epoch(scene.n_classes, train_loader)
        seconds[name].append(time.perf_counter() - start)
    return seconds


# ------------------------------------------------------------------------------------------------- driver
PIPELINES = {"ours": run_ours, "baseline": run_baseline, "epochs": run_epochs}


def run_child(name, n_train, repeats=1):
    """One pipeline in a fresh interpreter; its result is the JSON on the last line of its output."""
    done = subprocess.run([sys.executable, __file__, "--child", name, "--n-train", str(n_train), "--batch",
                           str(BATCH), "--repeats", str(repeats)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the {name} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternate the two pipelines this many times, and the epochs 2x this many times")
    parser.add_argument("--batch", type=int, default=BATCH, help="batch size of both pipelines (default: 256)")
    parser.add_argument("--child", choices=PIPELINES, help=argparse.SUPPRESS)
    parser.add_argument("--n-train", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    BATCH = args.batch
    if args.child:
        extra = (args.repeats,) if args.child == "epochs" else ()
        print(json.dumps(PIPELINES[args.child](args.n_train, *extra)))
        return

    n_train = n_train_pixels()
    print(f"Indian Pines 145x145x200, PCA {BANDS} whitened, {PATCH}x{PATCH}, batch {BATCH}, one epoch on "
          f"{n_train} training pixels (10 %), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {"ours": [], "baseline": []}
    for r in range(args.repeats):
        for name in ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours"):
            results[name].append(run_child(name, n_train))
            print(f"  pipeline {r + 1} {name:8s}  " + "  ".join(f"{k} {v:.4g}" for k, v in results[name][-1].items()),
                  flush=True)
    epochs = run_child("epochs", n_train, args.repeats)
    for name in ("ours", "baseline"):
        print(f"  interleaved epochs {name:8s}  " + "  ".join(f"{s:.2f} s" for s in epochs[name]), flush=True)
    for name, runs in results.items():
        for run in runs:
            run["total_s"] = run["prepare_s"] + run["epoch_s"] + run["map_s"]
        runs.append({"interleaved_s": statistics.mean(epochs[name])})

    def value(name, key):
        values = [run[key] for run in results[name] if key in run]
        return max(values) if key.endswith("rss") else statistics.median(values)

    n_epochs = len(epochs["ours"])
    rows = [("prepare (load -> datasets)", "prepare_s", "s"),
            (f"train epoch (mean of {n_epochs}, ABBA)", "interleaved_s", "s"),
            ("train epoch in the pipeline", "epoch_s", "s"), ("full-scene map", "map_s", "s"),
            ("whole pipeline", "total_s", "s"), ("peak RSS after prepare", "prepare_rss", "MB"),
            ("peak RSS after the epoch", "epoch_rss", "MB"), ("peak RSS, whole pipeline", "peak_rss", "MB")]
    stat = "median of" if args.repeats > 1 else "one run of"
    print(f"\n{'':33s}{'ours':>12s}{'baseline':>12s}{'ours/baseline':>15s}   (pipelines: {stat} "
          f"{args.repeats} each)")
    for label, key, unit in rows:
        ours, base = value("ours", key), value("baseline", key)
        def fmt(v, unit=unit):
            return f"{v:9.2f} {unit}" if unit == "s" else f"{v:8.0f} {unit}"

        print(f"{label:33s}{fmt(ours):>12s}{fmt(base):>12s}{ours / base:15.3f}")
    for name in ("ours", "baseline"):
        run = results[name][0]
        print(f"{name}: {run['n_train']} training samples, epoch loss {run['train_loss']:.4f}, "
              f"train OA {run['train_oa']:.4f}")


if __name__ == "__main__":
    main()
