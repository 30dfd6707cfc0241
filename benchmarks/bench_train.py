"""Training throughput against the machine's own limit: for each model at its usual setting, the GFLOP one
training sample costs (forward + backward, counted by ``torch.utils.flop_counter.FlopCounterMode``: the
matrix products and convolutions, not the element-wise work), the median time of an Adam training step on
random windows, and the achieved GFLOP/s as a share of a float32 ``torch.mm`` of 4096x4096 timed in the same
run with the same threads (before and after the models: the machine may be shared).

    python benchmarks/bench_train.py                                  # every model below
    python benchmarks/bench_train.py --models hybridsn ssftt --steps 5 --threads 2

The step is the Trainer's (hsi/engine.py): the batch moved by ``to_device`` (channels-last-3d for 5-D
windows, as in training), summed cross-entropy scaled by the batch, Adam. Prints a Markdown table.
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import hsi
from hsi.engine import to_device

# name: (bands, window, batch, builder options) -- the paper's setting of each model (HybridSN: Roy et al. 2019;
# the #30 models: their authors' code), others at hsi's defaults
SETTINGS = {"hybridsn": (30, 25, 256, {}), "ssftt": (30, 13, 64, {}), "a2s2k_resnet": (200, 9, 32, {}),
            "spectral_cnn": (200, 1, 100, {}), "cnn3d": (200, 5, 100, {}), "spectralformer": (200, 7, 64, {}),
            "spectralformer_pixel": (200, 1, 64, {"pixelwise": True})}
DEFAULT_SETTING = (30, 25, 256, {})
N_CLASSES = 16


def matmul_gflops(size=4096, repeats=3):
    """Median GFLOP/s of a float32 ``torch.mm`` of two ``size`` x ``size`` matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def build(name):
    bands, window, batch, options = SETTINGS.get(name, DEFAULT_SETTING)
    model_name = "spectralformer" if name == "spectralformer_pixel" else name
    torch.manual_seed(0)
    model = hsi.build_model(model_name, bands=bands, n_classes=N_CLASSES, patch_size=window, **options)
    x = torch.randn(batch, 1, bands, window, window)
    y = torch.randint(N_CLASSES, (batch,))
    return model.train(), to_device(x, torch.device("cpu")), y


def step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (loss / len(y)).backward()
    optimizer.step()


def measure(name, steps):
    model, x, y = build(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with FlopCounterMode(display=False) as counter:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    flops = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    step(model, optimizer, x, y)                       # warm-up: oneDNN kernel choice, Adam state
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(model, optimizer, x, y)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"name": name, "bands": x.shape[2], "window": x.shape[-1], "batch": len(y),
            "parameters": sum(p.numel() for p in model.parameters()), "gflop_per_sample": flops / len(y) / 1e9,
            "step_seconds": seconds, "gflops": flops / seconds / 1e9}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SETTINGS),
                        help=f"model names (default: {' '.join(SETTINGS)}; spectralformer_pixel is the pixel-wise "
                             f"SpectralFormer)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rate = matmul_gflops()
    rows = [measure(name, args.steps) for name in args.models]
    rate_after = matmul_gflops()                         # the machine is shared: the rate at both ends
    print(f"`python {' '.join(['benchmarks/bench_train.py', *(argv if argv is not None else sys.argv[1:])])}`, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); float32 torch.mm 4096^3: "
          f"{rate:.1f} GFLOP/s before the models, {rate_after:.1f} after (the share uses their mean)\n")
    mean_rate = (rate + rate_after) / 2
    print("| model | bands | window | batch | parameters | GFLOP / sample (fwd + bwd) | step (s) | GFLOP/s "
          "| share of torch.mm |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['name']} | {row['bands']} | {row['window']} | {row['batch']} | {row['parameters']:,} "
              f"| {row['gflop_per_sample']:.4f} | {row['step_seconds']:.3f} | {row['gflops']:.1f} "
              f"| {100 * row['gflops'] / mean_rate:.0f} % |")


if __name__ == "__main__":
    main()
