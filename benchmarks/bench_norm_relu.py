"""Time of a HybridSN training step with the fused batch norm + ReLU (``hsi.models.norm_relu``) against the same
network on PyTorch's plain modules, steps of the two interleaved in one process, so both see the same load:

    python benchmarks/bench_norm_relu.py                     # batch 256, 25x25x30, 3 rounds, torch's threads
    python benchmarks/bench_norm_relu.py --threads 1 --rounds 5

A round runs fused, plain, plain, fused, each a whole step (forward in the Trainer's activation store, backward,
Adam) on one random channels-last batch; prints the median step of each and their ratio (fused / plain).
"""
import argparse
import copy
import statistics
import time

import torch
from torch import nn

import hsi
from hsi.activations import ActivationStore


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--patch", type=int, default=25)
    parser.add_argument("--bands", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fused = hsi.build_model("hybridsn", bands=args.bands, n_classes=16, patch_size=args.patch).train()
    plain = copy.deepcopy(fused)
    for stage in plain.stages:
        stage.layers = nn.Sequential(*stage.layers)
    x = torch.randn(args.batch, 1, args.bands, args.patch, args.patch).to(memory_format=torch.channels_last_3d)
    y = torch.randint(0, 16, (args.batch,))
    store = ActivationStore(1024 * 2**20 // 32)             # the Trainer's at the default --memory-mb
    optimizers = {"fused": torch.optim.Adam(fused.parameters()), "plain": torch.optim.Adam(plain.parameters())}
    models = {"fused": fused, "plain": plain}

    def step(name):
        optimizers[name].zero_grad(set_to_none=True)
        start = time.perf_counter()
        with store:
            loss = nn.functional.cross_entropy(models[name](x), y)
        loss.backward()
        optimizers[name].step()
        return time.perf_counter() - start

    step("fused"), step("plain")                            # warm-up: oneDNN primitives, allocator
    times = {"fused": [], "plain": []}
    for _ in range(args.rounds):
        for name in ("fused", "plain", "plain", "fused"):
            times[name].append(step(name))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"batch {args.batch}, {args.patch}x{args.patch}x{args.bands}, {torch.get_num_threads()} threads, "
          f"{2 * args.rounds} steps each: fused {median['fused']:.3f} s, plain {median['plain']:.3f} s, "
          f"fused / plain {median['fused'] / median['plain']:.3f}")


if __name__ == "__main__":
    main()
