"""torchrun: two CPU processes (gloo) train and map as one process does; a killed rank fails the job, which resumes.

Every job here is launched as a user launches it, ``torchrun --standalone --nproc_per_node 2 -m hsi ...`` (a free
port per job, so parallel test workers do not collide), and compared with ``python -m hsi ...`` in one process,
both at one thread per process.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi.data.augment import make_augmentation
from hsi.distributed import ShardedBatches, World

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HSI_DIST_TIMEOUT": "60"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hsi"]
SINGLE = [sys.executable, "-m", "hsi"]
# No dropout and batch norm over the global batch: then two processes compute what one does, up to float rounding
# (every augmentation included: each item's random numbers are drawn with the batch order). A small learning rate:
# see assert_trained_alike.
AUGMENT = "flip,brightness,noise,spectral_shift,spectral_smooth,mix"
SAME_AS_ONE = ["--model-option", "dropout=0", "--sync-bn", "--augment", AUGMENT, "--lr", "1e-5", "--pca", "15",
               "--batch-size", "64", "--device", "cpu", "--no-map", "--seed", "3"]


def launch(command, *args, timeout=240):
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)


def train_args(field, out, epochs, patch=9, train_ratio=0.15):
    return ["train", "--cube", field.cube, "--gt", field.gt, "--patch", patch, "--train-ratio", train_ratio,
            "--epochs", epochs, "--out", out, *SAME_AS_ONE]


def history(run):
    """The rows of a run's history.csv without the clock column."""
    lines = (Path(run) / "history.csv").read_text().splitlines()[1:]
    return [[float(v) for v in line.split(",")[:-1]] for line in lines]


def assert_trained_alike(one, two):
    """Two short runs of the same setting, in one and in two processes, agree up to float rounding.

    The processes split each batch, so the loss and gradient sums run in another order (and through the gloo
    all-reduce). Adam moves every weight by about ±lr whatever its gradient's size, so a weight whose gradient is
    within rounding of zero steps whichever way the rounding tips it: at lr 1e-3 the runs drift apart by
    1e-4–1e-3 of the loss within 2 epochs of 3 steps (measured 3.6e-4), at lr 1e-5 by no more than rounding
    (measured at most 9e-8). The runs use 1e-5 and we allow 1e-6; a real difference shows far above that (each
    process normalising by its own half-batch, without --sync-bn: 1e-4), and one test pixel whose two best
    logits are that close may change class."""
    first, second = history(one), history(two)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a[0] == b[0]
        np.testing.assert_allclose([a[1], a[3]], [b[1], b[3]], rtol=1e-6)        # train and validation loss
    m1, m2 = (json.loads((Path(run) / "metrics.json").read_text()) for run in (one, two))
    c1, c2 = np.array(m1["confusion_matrix"]), np.array(m2["confusion_matrix"])
    assert c1.sum() == c2.sum() and np.abs(c1 - c2).sum() <= 2        # one pixel moved: two cells change by 1


@pytest.mark.parametrize("orientations", [None, 8])
def test_each_process_takes_its_share_of_the_single_process_batches(orientations):
    """Each process's items (with augmentation: ``(index, [orientation])`` pairs) are its share of the batches one
    process draws."""
    n, batch = 10, 4
    flip = make_augmentation("flip")
    draw = None if orientations is None else lambda indices, generator: flip.draw(indices, indices, generator)

    def batches(here=World(0, 1)):
        return list(ShardedBatches(n, batch, torch.Generator().manual_seed(7), shuffle=True, here=here, draw=draw))

    single = batches()
    assert [len(b) for b in single] == [3, 3, 4]             # the fewest batches of at most 4, no small last one
    shares = [batches(World(rank, 4)) for rank in range(4)]
    assert all(len(share) == len(single) for share in shares)                # same number of steps everywhere
    for step, batch_items in enumerate(single):
        assert sorted(item for share in shares for item in share[step]) == sorted(batch_items)
    assert shares[3][0] == [] and len(shares[3][2]) == 1      # rank 3: nothing of a 3-item batch, one of the last
    items = [item for batch_items in single for item in batch_items]
    indices = [item[0] for item in items] if orientations else items
    assert sorted(indices) == list(range(n))
    if orientations:
        codes = {code for _, (code,) in items}
        assert codes <= set(range(orientations)) and len(codes) > 1


def test_an_epoch_of_1025_pixels_at_batch_256_has_no_batch_of_one():
    """ip-paper-10's 1,025 training pixels: 5 batches of 205, not 4 of 256 and a one-pixel batch whose batch-norm
    statistics would become the running statistics every evaluation uses."""
    sizes = [len(b) for b in ShardedBatches(1025, 256, torch.Generator().manual_seed(0), shuffle=True)]
    assert sizes == [205] * 5
    assert [len(b) for b in ShardedBatches(100, 256)] == [100]


def test_two_processes_train_as_one(field, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    single = launch(SINGLE, *train_args(field, one, epochs=2))
    assert single.returncode == 0, single.stderr
    job = launch(TORCHRUN, *train_args(field, two, epochs=2))
    assert job.returncode == 0, job.stderr
    assert_trained_alike(one, two)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert not [p for p in two.iterdir() if p.name.startswith(".")]           # no temporary file left behind
    record = json.loads((two / "config.json").read_text())
    assert record["host"]["processes"] == 2 and record["config"]["fit"]["sync_bn"] is True
    # rank 0 alone logs and prints: one result line, one log line per epoch
    assert job.stdout.count("OA ") == 1
    assert job.stderr.count("epoch 2/2  train loss") == 1
    # its progress lines show the global batches' running loss and OA: the last one is the epoch's
    last_step = re.findall(r"epoch 2/2  batch (\d+)/\1  (train loss \S+  OA \S+)", job.stderr)
    epoch = re.findall(r"epoch 2/2  (train loss \S+  OA \S+)", job.stderr)
    assert [line for _, line in last_step] == epoch


def _workers(parent):
    """``{rank: pid}`` of torchrun's worker processes."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = int(next(line for line in status.read_text().splitlines() if line.startswith("PPid:")).split()[1])
            if ppid != parent:
                continue
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        rank = next((int(v.split(b"=")[1]) for v in environ if v.startswith(b"RANK=")), None)
        if rank is not None:
            found[rank] = int(status.parent.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_a_killed_rank_stops_the_job_and_resume_finishes_it(field, tmp_path):
    run = tmp_path / "run"
    args = train_args(field, run, epochs=4, patch=11, train_ratio=0.4)
    job = subprocess.Popen([*TORCHRUN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=ENV)
    deadline = time.monotonic() + 180
    while not ((run / "history.csv").is_file() and len(history(run)) >= 1):
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before its first epoch"
        time.sleep(0.05)
    os.kill(_workers(job.pid)[1], signal.SIGKILL)
    _, stderr = job.communicate(timeout=120)            # the other rank is stopped, no hang
    assert job.returncode != 0
    assert "rank" in stderr and "SIGKILL" in stderr
    done = len(history(run))
    assert 1 <= done < 4
    resumed = launch(TORCHRUN, "train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    # every process restored its own random streams and the shared batch order: the same run as uninterrupted
    reference = tmp_path / "uninterrupted"
    whole = launch(TORCHRUN, *train_args(field, reference, epochs=4, patch=11, train_ratio=0.4))
    assert whole.returncode == 0, whole.stderr
    assert history(run) == history(reference)
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (run, reference)]
    assert metrics[0] == metrics[1]


def test_two_processes_map_a_scene_as_one(trained_run, tmp_path):
    run, _ = trained_run
    outputs = ("npy", "img", "hdr")
    for command, name in ((SINGLE, "one"), (TORCHRUN, "two")):
        job = launch(command, "predict", run, "--format", "npy,envi", "--tile", 16, "--out", tmp_path / name)
        assert job.returncode == 0, job.stderr
        assert job.stdout.count("npy: ") == 1
    for suffix in outputs:
        assert (tmp_path / f"one.{suffix}").read_bytes() == (tmp_path / f"two.{suffix}").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.{s}" for n in ("one", "two") for s in outputs)


def test_a_scene_model_shares_out_crops(field, tmp_path):
    """fcn8s under torchrun trains on a crop per process and step; without --crop it is refused, in one line."""
    scene_run = ["train", "--cube", field.cube, "--gt", field.gt, "--model", "fcn8s", "--pca", "15", "--epochs", 1,
                 "--device", "cpu", "--no-map"]
    job = launch(TORCHRUN, *scene_run, "--crop", 24, "--augment", AUGMENT, "--out", tmp_path / "crops")
    assert job.returncode == 0, job.stderr
    assert "epoch 1/1  batch 2/2" in job.stderr          # 40 x 48 pixels = 4 crops of 24 x 24: 2 steps per process
    assert json.loads((tmp_path / "crops" / "metrics.json").read_text())["oa"] > 0
    job = launch(TORCHRUN, *scene_run, "--out", tmp_path / "run")
    assert job.returncode != 0
    ours = job.stderr.split("elastic")[0]               # what the ranks printed, before torchrun's own report
    assert re.search(r"error \(rank \d\): fcn8s is a scene model: under torchrun its processes share the work by "
                     r"crops; give --crop N", ours)
    assert "Traceback" not in ours
    assert not (tmp_path / "run").exists()
