"""The whole Indian Pines pipeline, ours against a seed-style baseline written the way the official HybridSN
notebook does it: prepare time, one training epoch, the full-scene map and peak RSS.

    python benchmarks/bench_pipeline.py                  # each pipeline once (a few minutes)
    python benchmarks/bench_pipeline.py --repeats 3      # ours / baseline alternated 3 times: medians

Paper settings for both: PCA to 30 whitened components fitted on the whole scene, 25x25 windows, batch 256,
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
epoch show where the peak is reached. Timings on a shared machine are noisy: compare the ratios of one run, and
use ``--repeats`` for steadier ones.
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
BANDS, PATCH, BATCH, LR = 30, 25, 256, 1e-3


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
def run_ours(n_train):
    from hsi.checkpoint import TrainedModel
    from hsi.engine import FitOptions, Trainer
    from hsi.runs import RunConfig, prepare

    start = time.perf_counter()
    scene = hsi.load_scene("indian_pines")
    config = RunConfig(dataset="indian_pines", split="random", train_ratio=TRAIN_RATIO, val_ratio=0.0, pca=BANDS,
                       pca_fit="scene", whiten=True, patch=PATCH, seed=SEED,
                       fit=FitOptions(epochs=1, batch_size=BATCH, lr=LR, device="cpu"))
    prepared = prepare(scene, config)
    prepare_s, prepare_rss = time.perf_counter() - start, peak_rss_mb()
    train_set = prepared.datasets["train"]
    assert len(train_set) == n_train, (len(train_set), n_train)

    trainer = Trainer(initial_model(scene.n_classes), config.fit, train_set, prepared.datasets["val"],
                      scene.n_classes, seed=SEED)
    start = time.perf_counter()
    row, _ = trainer.run_epoch(progress=False)
    epoch_s, epoch_rss = time.perf_counter() - start, peak_rss_mb()

    trained = TrainedModel(trainer.model, prepared.reducer, config.patch, config.padding, scene.class_names,
                           scene.label_ids, scene.palette, scene.bands)
    start = time.perf_counter()
    label_map = hsi.predict_scene(trained, scene, mode="dense")
    map_s = time.perf_counter() - start
    assert label_map.shape == scene.labels.shape
    return {"prepare_s": prepare_s, "epoch_s": epoch_s, "map_s": map_s, "prepare_rss": prepare_rss,
            "epoch_rss": epoch_rss, "peak_rss": peak_rss_mb(), "n_train": len(train_set),
            "train_loss": row["train_loss"], "train_oa": row["train_oa"]}


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
    patchesLabels = np.zeros((X.shape[0] * X.shape[1]))
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


def run_baseline(n_train):
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
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
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=BATCH, shuffle=False)   # noqa: F841 (as the seed)
    prepare_s, prepare_rss = time.perf_counter() - start, peak_rss_mb()

    net = initial_model(scene.n_classes)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    start = time.perf_counter()
    net.train()
    total_loss, correct = 0.0, 0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(targets)
        correct += (outputs.argmax(1) == targets).sum().item()
    epoch_s, epoch_rss = time.perf_counter() - start, peak_rss_mb()

    start = time.perf_counter()
    net.eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(patches), BATCH):
            predictions.append(net(torch.FloatTensor(to_torch_layout(patches[i:i + BATCH]))).argmax(1).numpy())
    label_map = np.concatenate(predictions).reshape(y.shape)
    map_s = time.perf_counter() - start
    assert label_map.shape == scene.labels.shape
    return {"prepare_s": prepare_s, "epoch_s": epoch_s, "map_s": map_s, "prepare_rss": prepare_rss,
            "epoch_rss": epoch_rss, "peak_rss": peak_rss_mb(), "n_train": len(train_set),
            "train_loss": total_loss / len(train_set), "train_oa": correct / len(train_set)}


# ------------------------------------------------------------------------------------------------- driver
PIPELINES = {"ours": run_ours, "baseline": run_baseline}


def run_child(name, n_train):
    """One pipeline in a fresh interpreter; its result is the JSON on the last line of its output."""
    done = subprocess.run([sys.executable, __file__, "--child", name, "--n-train", str(n_train)],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the {name} pipeline failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="alternate ours / baseline this many times")
    parser.add_argument("--child", choices=PIPELINES, help=argparse.SUPPRESS)
    parser.add_argument("--n-train", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(PIPELINES[args.child](args.n_train)))
        return

    n_train = n_train_pixels()
    print(f"Indian Pines 145x145x200, PCA {BANDS} whitened, {PATCH}x{PATCH}, batch {BATCH}, one epoch on "
          f"{n_train} training pixels (10 %), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {name: [] for name in PIPELINES}
    for r in range(args.repeats):
        for name in ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours"):
            results[name].append(run_child(name, n_train))
            print(f"  run {r + 1} {name:8s}  " + "  ".join(f"{k} {v:.4g}" for k, v in results[name][-1].items()),
                  flush=True)

    for run in results["ours"] + results["baseline"]:
        run["total_s"] = run["prepare_s"] + run["epoch_s"] + run["map_s"]

    def value(name, key):
        values = [run[key] for run in results[name]]
        return max(values) if key.endswith("rss") else statistics.median(values)

    rows = [("prepare (load -> datasets)", "prepare_s", "s"), ("train epoch", "epoch_s", "s"),
            ("full-scene map", "map_s", "s"), ("whole pipeline", "total_s", "s"),
            ("peak RSS after prepare", "prepare_rss", "MB"),
            ("peak RSS after the epoch", "epoch_rss", "MB"), ("peak RSS, whole pipeline", "peak_rss", "MB")]
    stat = "median of" if args.repeats > 1 else "one run of"
    print(f"\n{'':28s}{'ours':>12s}{'baseline':>12s}{'ours/baseline':>15s}   ({stat} {args.repeats} each)")
    for label, key, unit in rows:
        ours, base = value("ours", key), value("baseline", key)
        fmt = (lambda v: f"{v:9.2f} {unit}") if unit == "s" else (lambda v: f"{v:8.0f} {unit}")
        print(f"{label:28s}{fmt(ours):>12s}{fmt(base):>12s}{ours / base:15.3f}")
    for name in PIPELINES:
        run = results[name][-1]
        print(f"{name}: {run['n_train']} training samples, epoch loss {run['train_loss']:.4f}, "
              f"train OA {run['train_oa']:.4f}")


if __name__ == "__main__":
    main()
