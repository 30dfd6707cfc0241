"""Is a run's low test score a batch-norm artefact? Re-estimate its batch-norm statistics and test again.

    python benchmarks/batchnorm_recheck.py runs/reproduce/ip-paper-10/{sknet,resnest}/seed-0

For each finished run folder, loads ``best.pt`` and ``split.npz``, scores the test pixels, then resets every
batch-norm layer's running statistics, passes the training windows through the network once in training mode
(batches of 256, a cumulative average instead of the momentum update, no weight changes) and scores the test
pixels again. A large change means the saved statistics, not the weights, made the score.
"""
import argparse
from pathlib import Path

import torch

from hsi.checkpoint import TrainedModel
from hsi.config import RunConfig
from hsi.data.splits import Split
from hsi.kinds import kind_of
from hsi.pipeline import Prepared, evaluate_test
from hsi.runfolder import read_config, run_scene


def recheck(run_dir, batch_size=256):
    """Test OA of ``run_dir`` with its saved batch-norm statistics and with statistics re-estimated."""
    config = RunConfig.from_dict(read_config(run_dir)["config"])
    trained = TrainedModel.from_checkpoint(run_dir / "best.pt")
    split = Split.load(run_dir / "split.npz")
    kind = kind_of(trained.model)
    datasets = kind.datasets(trained.reducer.transform(run_scene(run_dir).cube), split, config,
                             subsets=("train", "test"))
    prepared = Prepared(None, split, trained.reducer, datasets)
    cpu = torch.device("cpu")
    saved = evaluate_test(trained, prepared, cpu)["oa"]
    model = trained.model
    for layer in model.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None
    model.train()
    with torch.no_grad():
        for windows, _ in kind.loader(datasets["train"], batch_size=batch_size):
            model(windows)
    model.eval()
    return saved, evaluate_test(trained, prepared, cpu)["oa"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for run_dir in args.runs:
        saved, again = recheck(run_dir)
        print(f"{run_dir}: test OA {100 * saved:.2f} with its saved batch-norm statistics, {100 * again:.2f} with "
              f"them re-estimated over the training windows", flush=True)


if __name__ == "__main__":
    main()
