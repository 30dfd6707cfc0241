"""The ``hsi`` command: datasets, download, train, evaluate, predict. A thin shell over the Python API."""
import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from .errors import ConfigError, HSIError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2), like every other user mistake; every
    option's help shows its default."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_DefaultsFormatter, **kwargs)

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default X)`` to an option's help when it has a default and the help does not name one."""

    def _get_help_string(self, action):
        text = action.help or ""
        has_default = not (action.default is None or action.default is False or action.default == argparse.SUPPRESS)
        if has_default and action.option_strings and "default" not in text:
            text += " (default %(default)s)"
        return text


def main(argv=None):
    code = _main(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun process ends here, past the interpreter's teardown: there gloo's threads, destroyed with the
        # process group already left, aborted about one job in ten ("terminate called without an active
        # exception", exit -6, after every file was written and closed).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))         # set by torchrun: rank 0 alone logs and prints results
    logging.basicConfig(level=logging.WARNING if args.quiet or rank else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
    where = f" (rank {rank})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    try:
        return args.run(args) or 0
    except HSIError as exc:
        print(f"error{where}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:     # output piped into head and the like
        sys.stderr.close()
        return 0
    except torch_distributed_errors() as exc:
        print(f"error{where}: another process of this torchrun job failed or stopped answering "
              f"({_one_line(exc)[:300]})", file=sys.stderr)
        return 1
    finally:
        from .distributed import finish

        finish()


def torch_distributed_errors():
    """What a collective raises when a peer process died or timed out."""
    import torch.distributed

    return (torch.distributed.DistBackendError,)


def build_parser():
    parser = _Parser(prog="hsi", description="Hyperspectral image classification: HybridSN, CNN backbones, FCNs, "
                                                 "SVM / random forest.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="print only warnings, errors and the results: no progress bars, no per-epoch or "
                             "per-step log lines on stderr")

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
                       description="Train a model (--model, default hybridsn); write config, split, checkpoints, "
                                   "history, metrics, report, plots and the class map into a run folder.")
    _add_train_arguments(p)
    p.set_defaults(run=_train)

    p = sub.add_parser("compare", parents=[common], help="train several models on the same splits and tabulate them",
                       description="Train and test every model on the same split per seed (one run folder per "
                                   "model and seed, resumed or reused when run again); write results.csv, "
                                   "results.md (mean ± std, per-class accuracy, leakage), maps.png and "
                                   "per_class.png. Options as in hsi train apply to every model.")
    p.add_argument("--models", help="comma-separated model names, e.g. hybridsn,se_resnet18,fcn8s,svm,rf")
    p.add_argument("--config", metavar="TOML", help="experiment file: hsi train settings at the top level, runs, "
                                                    "out, and one [[models]] table per model with its own settings")
    p.add_argument("--jobs", type=int, default=1,
                   help="train this many runs of the model x seed grid at once, each a single process (with "
                        "several GPUs, each on its own); CPU threads are shared between them")
    _add_train_arguments(p, compare=True)
    p.set_defaults(run=_compare)

    p = sub.add_parser("evaluate", parents=[common], help="recompute a run's test metrics",
                       description="Recompute the test metrics of a run from best.pt and split.npz, on the scene "
                                   "files recorded in its config.json (checked by sha256).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by hsi train")
    _add_moved_scene_arguments(p)
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("predict", parents=[common], help="classify every pixel of a scene with a trained run",
                       description="Write the full-scene class map of a trained run.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by hsi train")
    p.add_argument("--cube", help="scene cube file to classify (default: the scene recorded in the run's "
                                  "config.json)")
    p.add_argument("--gt", help="label file of --cube, drawn beside the map")
    p.add_argument("--key", help=".mat key of the cube")
    p.add_argument("--gt-key", help=".mat key of the labels")
    p.add_argument("--data-dir", help="folder that now holds the run's scene files, if they moved")
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
    p.add_argument("--tile", type=int, help="side of the tiles predicted at once (rows of a band in patch mode); "
                                           "default: the largest within --memory-mb")
    p.add_argument("--mode", default="auto", choices=("auto", "dense", "patch"),
                   help="dense: exact fully-convolutional; patch: window by window; auto: dense when exact")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--palette", choices=("distinct", "published"),
                   help="map colours: distinct (CIELAB ΔE >= 39 between classes) or published (the colours used "
                        "before, some pairs hard to tell apart); default: the run's own")
    p.set_defaults(run=_predict)
    return parser


def _add_moved_scene_arguments(p):
    g = p.add_argument_group("scene, if its recorded files moved")
    g.add_argument("--data-dir", help="folder that now holds the run's scene files (same names, same data)")
    g.add_argument("--cube", help="the run's scene cube at another path or name (its data is checked)")
    g.add_argument("--gt", help="label file of --cube")
    g.add_argument("--key", help=".mat key of --cube")
    g.add_argument("--gt-key", help=".mat key of --gt")


def _add_train_arguments(p, compare=False):
    """The options of ``hsi train``; ``compare``: those ``hsi compare`` shares (no --model, no --resume)."""
    from .data.augment import list_augmentations
    from .metrics import CHECKPOINT_RULES
    from .models import list_models

    src = p.add_argument_group("scene")
    src.add_argument("--dataset", help="known scene name (see 'hsi datasets')")
    src.add_argument("--cube", help="cube file (.mat, .hdr, .npy) instead of --dataset; with --resume: the "
                                    "run's cube if it moved")
    src.add_argument("--gt", help="label file for --cube")
    src.add_argument("--key", help=".mat key of the cube when the file holds several arrays")
    src.add_argument("--gt-key", help=".mat key of the labels")
    src.add_argument("--data-dir", help="folder holding the scene files (searched before $HSI_DATA_DIR and the "
                                        "cache); with --resume: where the run's files are now, if they moved")
    m = p.add_argument_group("model")
    if not compare:
        m.add_argument("--model", default="hybridsn",
                       help=f"model name: {', '.join(list_models())} (the fcn* models are scene models: they read "
                            f"the whole scene at once)")
        m.add_argument("--model-option", action="append", default=[], metavar="NAME=VALUE",
                       help="an option of the model's builder, e.g. dropout=0 or growth=24 (repeat for several; "
                            "VALUE is read as a number, true/false, null or a JSON list, else as text)")
    m.add_argument("--attention", help="attention block for every slot, e.g. se, cbam (see hsi.list_attention()); "
                                       "none by default")
    s = p.add_argument_group("split and preprocessing")
    s.add_argument("--split", default="random", choices=("random", "fixed", "disjoint", "blocks"),
                   help="random: stratified per class (--train-ratio or --train-per-class); fixed: --train-per-class "
                        "pixels per class (at most half a small class); disjoint: spatially separate parcels, "
                        "no training pixel inside a test window; blocks: spatial block cross-validation over "
                        "--folds blocks")
    s.add_argument("--folds", type=int, help="blocks split: number of spatial blocks; every fold tests on one "
                                             "and trains on the rest beyond a patch//2 buffer")
    ratio = s.add_mutually_exclusive_group()
    ratio.add_argument("--train-ratio", type=float, help="fraction of each class for training (default 0.3)")
    ratio.add_argument("--train-per-class", type=int, help="training pixels per class, instead of --train-ratio")
    s.add_argument("--val-ratio", type=float, default=0.1, help="fraction of training pixels for validation")
    s.add_argument("--pca", type=int, default=30, help="PCA components")
    s.add_argument("--pca-fit", default="train", choices=("train", "scene"),
                   help="fit PCA on training pixels (leak-free) or the whole scene (the paper's protocol)")
    s.add_argument("--whiten", action="store_true", help="whiten the PCA components (as the official code)")
    s.add_argument("--standardize", action="store_true", help="standardise each band before PCA")
    s.add_argument("--patch", type=int, default=25, help="odd window size in pixels")
    s.add_argument("--padding", default="zero", choices=("zero", "reflect"),
                   help="how the scene is extended beyond its border for the edge pixels' windows")
    s.add_argument("--augment", nargs="?", const="flip", default="none", metavar="NAMES",
                   help=f"training augmentations, comma-separated, of {', '.join(list_augmentations())} (alone: "
                        f"flip, the random flips and quarter turns; see hsi.data.augment)")
    s.add_argument("--crop", type=int, help="scene models (fcn*): train on random CROP x CROP windows of the "
                                            "scene instead of the whole scene (for scenes beyond memory)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=100, help="training epochs (passes over the training set)")
    o.add_argument("--batch-size", type=int, default=256,
                   help="patches per step; HybridSN at 25x25x30 keeps about 6 MB per patch for the backward "
                        "pass, so lower it to save memory")
    o.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    o.add_argument("--weight-decay", type=float, default=0.0, help="Adam weight decay (L2)")
    o.add_argument("--scheduler", choices=("plateau", "cosine"),
                   help="learning-rate schedule: plateau halves it after 5 epochs without a better validation "
                        "OA, cosine anneals it over the epochs; constant by default")
    o.add_argument("--patience", type=int, help="stop after this many epochs without a better validation OA "
                                                   "(or, at equal OA, a lower validation loss); off by default")
    o.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    o.add_argument("--checkpoint-on", default="val", choices=CHECKPOINT_RULES,
                   help="what best.pt keeps: the epoch with the best validation OA, the best training OA (the "
                        "official HybridSN code; with --val-ratio 0) or the last epoch")
    o.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    o.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    o.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: batch-norm statistics over the global batch of all processes (then a "
                        "model without dropout trains as in one process, up to float rounding)")
    o.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the batch order")
    r.add_argument("--runs", type=int, default=3 if compare else 1,
                   help="repeat with seeds seed..seed+N-1 and report mean ± std")
    r.add_argument("--out", help="comparison folder (resumed if it holds the same comparison)" if compare else
                   "run folder (default runs/<scene>-<model>-<timestamp>)")
    if not compare:
        r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    r.add_argument("--no-map", action="store_true", help="do not write the full-scene class map")


def _train(args):
    from . import runs

    progress = False if args.quiet else True if sys.stderr.isatty() else "log"
    try:
        if args.resume:
            metrics = runs.resume(args.resume, progress=progress, **_scene_elsewhere(args))
            return _print_metrics(metrics, args.resume)
        config = _config_from_args(args)
        if args.split == "blocks":
            if args.runs > 1:
                raise ConfigError("--split blocks runs one training per fold; give --runs 1 (or leave it out)")
            from .metrics import format_summary

            summary = runs.train_folds(config, args.out, progress=progress)
            if summary is not None:
                print(format_summary(summary))
            return 0
        if args.runs > 1:
            from .metrics import format_summary

            summary = runs.train_many(config, args.runs, args.out, progress=progress)
            if summary is not None:
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


def _config_from_args(args):
    """The run settings the ``hsi train`` (and ``hsi compare``) options describe."""
    from .engine import FitOptions
    from .runs import RunConfig

    if not (args.dataset or args.cube):
        raise ConfigError("give --dataset NAME or --cube PATH --gt PATH")
    if args.dataset and args.cube:
        raise ConfigError("give either --dataset or --cube, not both")
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}")
    return RunConfig(
        dataset=args.dataset, cube=args.cube, gt=args.gt, key=args.key, gt_key=args.gt_key,
        data_dir=args.data_dir, model=getattr(args, "model", "hybridsn"), attention=args.attention,
        model_kwargs=_model_options(getattr(args, "model_option", [])),
        split=args.split, folds=args.folds,
        train_ratio=None if args.train_per_class else args.train_ratio if args.train_ratio is not None else 0.3,
        train_per_class=args.train_per_class, val_ratio=args.val_ratio, pca=args.pca, pca_fit=args.pca_fit,
        whiten=args.whiten, standardize=args.standardize, patch=args.patch, padding=args.padding,
        augment=args.augment, crop=args.crop, seed=args.seed, write_map=not args.no_map,
        fit=FitOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       scheduler=args.scheduler, patience=args.patience, class_weights=args.class_weights,
                       device=args.device, amp=args.amp, workers=args.workers, checkpoint_on=args.checkpoint_on,
                       sync_bn=args.sync_bn))


def _model_options(items):
    """``["dropout=0", "growth=24"]`` as builder keyword arguments."""
    import json

    options = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"--model-option expects NAME=VALUE (e.g. dropout=0), got {item!r}")
        try:
            options[name.strip()] = json.loads(text)
        except ValueError:
            options[name.strip()] = text
    return options


def _compare(args):
    from .comparison import compare, parse_models, read_experiment

    from .distributed import refuse_under_torchrun

    refuse_under_torchrun("hsi compare (it runs its grid as separate processes: --jobs N)")
    progress = False if args.quiet else True if sys.stderr.isatty() else "log"
    if args.config:
        if args.models or args.dataset or args.cube:
            raise ConfigError("--config names the scene and the models itself; give it alone (with --out)")
        config, models, n_runs, out = read_experiment(args.config)
        out = args.out or out
    else:
        if not args.models:
            raise ConfigError("give --models NAME,NAME,... or --config EXPERIMENT.toml")
        config, models, n_runs, out = _config_from_args(args), parse_models(args.models), args.runs, args.out
    if not out:
        raise ConfigError("give --out FOLDER for the comparison (or out = \"...\" in the experiment file)")
    compare(config, models, out, runs=n_runs, progress=progress, jobs=args.jobs)
    print((Path(out) / "results.md").read_text(), end="")
    return 0


def _print_metrics(metrics, run_dir):
    if metrics is None:         # not rank 0 of a torchrun job
        return 0
    print(f"OA {100 * metrics['oa']:.2f}%  AA {100 * metrics['aa']:.2f}%  kappa {metrics['kappa']:.4f}"
          + (f"  ({run_dir})" if run_dir else ""))
    return 0


def _evaluate(args):
    from .metrics import format_report
    from .runs import evaluate_run

    metrics = evaluate_run(args.run_dir, **_scene_elsewhere(args))
    print(format_report(metrics, title=str(args.run_dir)), end="")
    return 0


def _scene_elsewhere(args):
    """Where a run's scene is now, if its recorded files moved (``hsi.runs.run_scene`` arguments)."""
    return {"cube": args.cube, "gt": args.gt, "key": args.key, "gt_key": args.gt_key, "data_dir": args.data_dir}


PREDICT_FORMATS = ("png", "npy", "envi", "rgb", "tif")


def _predict(args):
    from .checkpoint import TrainedModel
    from .engine import resolve_device
    from .data.registry import palette_for
    from .export import parse_formats, write_rgb_png
    from .runs import _model_classes, run_scene
    from .stream import stream_map
    from .viz import false_color

    run_dir = Path(args.run_dir)
    checkpoint = run_dir / f"{args.checkpoint}.pt"
    if not checkpoint.is_file():
        raise ConfigError(f"{run_dir} holds no {checkpoint.name}; expected a run folder written by hsi train")
    formats = parse_formats(args.format, PREDICT_FORMATS)
    if args.memory_mb < 16:
        raise ConfigError(f"--memory-mb must be at least 16, got {args.memory_mb}")
    trained = TrainedModel.from_checkpoint(checkpoint)
    scene = run_scene(run_dir, **_scene_elsewhere(args), verify=args.cube is None)   # any cube may be classified
    trained.check_scene(scene)
    prefix = Path(args.out) if args.out else run_dir / "map"
    written = {}
    map_formats = [f for f in formats if f != "rgb"]
    if map_formats or args.probs:
        written = stream_map(trained, scene, prefix, formats=map_formats, probs=args.probs, mode=args.mode,
                             tile=args.tile,
                             device=resolve_device(args.device), memory_mb=args.memory_mb,
                             ground_truth=_model_classes(scene, trained),
                             palette=None if args.palette is None else palette_for(trained.label_ids, args.palette),
                             progress=not args.quiet and sys.stderr.isatty())
    if "rgb" in formats:
        written["rgb"] = write_rgb_png(false_color(scene.cube, scene.wavelengths), f"{prefix}_rgb.png")
    if int(os.environ.get("RANK", "0")) == 0:
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
