"""The ``hsi`` command: datasets, download, train, evaluate, predict. A thin shell over the Python API."""
import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from .errors import ConfigError, HSIError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2), like every other user mistake."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
    try:
        return args.run(args) or 0
    except HSIError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:     # output piped into head and the like
        sys.stderr.close()
        return 0


def build_parser():
    parser = _Parser(prog="hsi", description="Hyperspectral image classification with the HybridSN family.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")

    p = sub.add_parser("datasets", parents=[common], help="list known scenes and where each would be read from",
                       description="List the known scenes and where each is available locally.")
    p.add_argument("--data-dir", help="also look in this folder")
    p.set_defaults(run=_datasets)

    p = sub.add_parser("download", parents=[common], help="download a known scene",
                       description="Download a known scene's files (checksum-verified where known) into "
                                   "--data-dir or the user cache.")
    p.add_argument("name", help="scene name, see 'hsi datasets'")
    p.add_argument("--data-dir", help="folder to put the files in (default: ~/.cache/hsi/NAME)")
    p.set_defaults(run=_download)

    p = sub.add_parser("train", parents=[common], help="train a model and write a run folder",
                       description="Train a HybridSN-family model; write config, split, checkpoints, history, "
                                   "metrics, report, plots and the class map into a run folder.")
    _add_train_arguments(p)
    p.set_defaults(run=_train)

    p = sub.add_parser("evaluate", parents=[common], help="recompute a run's test metrics",
                       description="Recompute the test metrics of a run from best.pt and split.npz.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("predict", parents=[common], help="classify every pixel of a scene with a trained run",
                       description="Write the full-scene class map of a trained run.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--cube", help="scene cube file (default: the scene the run was trained on)")
    p.add_argument("--gt", help="label file of --cube, drawn beside the map")
    p.add_argument("--key", help=".mat key of the cube")
    p.add_argument("--gt-key", help=".mat key of the labels")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint (best)")
    p.add_argument("--out", help="output path prefix (default: RUN_DIR/map)")
    p.add_argument("--format", default="png,npy",
                   help="comma-separated: png (map with legend beside the ground truth), npy (label ids), envi "
                        "(classification image), tif (GeoTIFF, needs the geo extra), rgb (false-colour "
                        "composite); default png,npy. ENVI and GeoTIFF outputs keep the input's map coordinates")
    p.add_argument("--probs", action="store_true",
                   help="also write the class probabilities and a confidence band as an ENVI float32 cube "
                        "(OUT_probs.hdr)")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="memory budget of the tiled prediction in MB (default 1024); the scene itself is read "
                        "tile by tile from disk")
    p.add_argument("--mode", default="auto", choices=("auto", "dense", "patch"),
                   help="dense: exact fully-convolutional; patch: window by window; auto: dense when exact")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(run=_predict)
    return parser


def _add_train_arguments(p):
    src = p.add_argument_group("scene")
    src.add_argument("--dataset", help="known scene name (see 'hsi datasets')")
    src.add_argument("--cube", help="cube file (.mat, .hdr, .npy) instead of --dataset")
    src.add_argument("--gt", help="label file for --cube")
    src.add_argument("--key", help=".mat key of the cube when the file holds several arrays")
    src.add_argument("--gt-key", help=".mat key of the labels")
    src.add_argument("--data-dir", help="folder holding the scene files")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="hybridsn", help="hybridsn, hybridsn_2d3d or hybridsn_se (default hybridsn)")
    m.add_argument("--attention", help="attention block for both slots, e.g. se, cbam (see hsi.list_attention())")
    s = p.add_argument_group("split and preprocessing")
    s.add_argument("--split", default="random", choices=("random", "fixed", "disjoint"))
    ratio = s.add_mutually_exclusive_group()
    ratio.add_argument("--train-ratio", type=float, help="fraction of each class for training (default 0.3)")
    ratio.add_argument("--train-per-class", type=int, help="training pixels per class")
    s.add_argument("--val-ratio", type=float, default=0.1, help="fraction of training pixels for validation")
    s.add_argument("--pca", type=int, default=30, help="PCA components (default 30)")
    s.add_argument("--pca-fit", default="train", choices=("train", "scene"),
                   help="fit PCA on training pixels (leak-free, default) or the whole scene (paper)")
    s.add_argument("--whiten", action="store_true", help="whiten the PCA components (as the official code)")
    s.add_argument("--standardize", action="store_true", help="standardise each band before PCA")
    s.add_argument("--patch", type=int, default=25, help="odd window size (default 25)")
    s.add_argument("--padding", default="zero", choices=("zero", "reflect"))
    s.add_argument("--augment", action="store_true", help="random flips and quarter turns while training")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=100)
    o.add_argument("--batch-size", type=int, default=256,
                   help="patches per step (default 256); HybridSN at 25x25x30 keeps about 6 MB per patch for "
                        "the backward pass, so lower it to save memory")
    o.add_argument("--lr", type=float, default=1e-3)
    o.add_argument("--weight-decay", type=float, default=0.0)
    o.add_argument("--scheduler", choices=("plateau", "cosine"))
    o.add_argument("--patience", type=int, help="stop after this many epochs without a better validation OA "
                                                   "(or, at equal OA, a lower validation loss)")
    o.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    o.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    o.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    o.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--runs", type=int, default=1, help="repeat with seeds seed..seed+N-1 and report mean ± std")
    r.add_argument("--out", help="run folder (default runs/<scene>-<model>-<timestamp>)")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    r.add_argument("--no-map", action="store_true", help="do not write the full-scene class map")


def _train(args):
    from . import runs
    from .engine import FitOptions

    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.resume:
            metrics = runs.resume(args.resume, progress=progress)
            return _print_metrics(metrics, args.resume)
        if not (args.dataset or args.cube):
            raise ConfigError("give --dataset NAME or --cube PATH --gt PATH")
        if args.dataset and args.cube:
            raise ConfigError("give either --dataset or --cube, not both")
        if args.runs < 1:
            raise ConfigError(f"--runs must be at least 1, got {args.runs}")
        config = runs.RunConfig(
            dataset=args.dataset, cube=args.cube, gt=args.gt, key=args.key, gt_key=args.gt_key,
            data_dir=args.data_dir, model=args.model, attention=args.attention, split=args.split,
            train_ratio=args.train_ratio if args.train_ratio is not None or args.train_per_class else 0.3,
            train_per_class=args.train_per_class, val_ratio=args.val_ratio, pca=args.pca, pca_fit=args.pca_fit,
            whiten=args.whiten, standardize=args.standardize, patch=args.patch, padding=args.padding,
            augment=args.augment, seed=args.seed, write_map=not args.no_map,
            fit=FitOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           weight_decay=args.weight_decay, scheduler=args.scheduler, patience=args.patience,
                           class_weights=args.class_weights, device=args.device, amp=args.amp,
                           workers=args.workers))
        if args.train_per_class:
            config.train_ratio = None
        if args.runs > 1:
            from .metrics import format_summary

            summary = runs.train_many(config, args.runs, args.out, progress=progress)
            print(format_summary(summary))
            return 0
        out = Path(args.out) if args.out else None
        metrics = runs.train(config, out, progress=progress)
        return _print_metrics(metrics, out)
    except runs.Interrupted as stop:
        run_dir = stop.args[0]
        print(f"interrupted: the last completed epoch is saved in {run_dir}/last.pt; "
              f"resume with: hsi train --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _print_metrics(metrics, run_dir):
    print(f"OA {100 * metrics['oa']:.2f}%  AA {100 * metrics['aa']:.2f}%  kappa {metrics['kappa']:.4f}"
          + (f"  ({run_dir})" if run_dir else ""))
    return 0


def _evaluate(args):
    from .metrics import format_report
    from .runs import evaluate_run

    metrics = evaluate_run(args.run_dir)
    print(format_report(metrics, title=str(args.run_dir)))
    return _print_metrics(metrics, None)


PREDICT_FORMATS = ("png", "npy", "envi", "rgb", "tif")


def _predict(args):
    from .checkpoint import TrainedModel
    from .data.scenes import load_scene
    from .engine import resolve_device
    from .export import write_rgb_png
    from .runs import RunConfig, _model_classes, scene_for
    from .stream import stream_map
    from .viz import false_color

    run_dir = Path(args.run_dir)
    checkpoint = run_dir / f"{args.checkpoint}.pt"
    if not checkpoint.is_file():
        raise ConfigError(f"{run_dir} holds no {checkpoint.name}; expected a run folder written by hsi train")
    formats = list(dict.fromkeys(f.strip().lower() for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in PREDICT_FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown map format(s) {unknown or formats}; expected one or more of "
                          f"{', '.join(PREDICT_FORMATS)}")
    if args.memory_mb < 16:
        raise ConfigError(f"--memory-mb must be at least 16, got {args.memory_mb}")
    trained = TrainedModel.from_checkpoint(checkpoint)
    if args.cube:
        scene = load_scene(args.cube, args.gt, key=args.key, gt_key=args.gt_key)
    else:
        config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text())["config"])
        scene = scene_for(config)
    trained.check_scene(scene)
    prefix = Path(args.out) if args.out else run_dir / "map"
    written = {}
    map_formats = [f for f in formats if f != "rgb"]
    if map_formats or args.probs:
        written = stream_map(trained, scene, prefix, formats=map_formats, probs=args.probs, mode=args.mode,
                             device=resolve_device(args.device), memory_mb=args.memory_mb,
                             ground_truth=_model_classes(scene, trained),
                             progress=not args.quiet and sys.stderr.isatty())
    if "rgb" in formats:
        written["rgb"] = write_rgb_png(false_color(scene.cube, scene.wavelengths), f"{prefix}_rgb.png")
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    return 0


def _datasets(args):
    from .data.registry import SCENES
    from .data.scenes import locate

    for name, info in SCENES.items():
        where = locate(name, args.data_dir)
        status = ("tensorly package (offline)" if where == "tensorly" else f"local: {where[0].parent}"
                  if where else "not local (downloads on first use)")
        print(f"{name:<13} {len(info.classes):>2} classes  {info.title:<52} {status}")
    return 0


def _download(args):
    from .data.scenes import fetch

    for path in fetch(args.name, args.data_dir):
        print(path)
    return 0


def _one_line(exc):
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
