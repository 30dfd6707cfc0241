"""The ``hsi`` command: datasets, models, download, train, evaluate, predict. A thin shell over the Python API."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import Field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .activations import return_freed_memory
from .config import FitOptions, RunConfig, choices_of, field_default, value_types
from .data.splits import is_folded
from .errors import ConfigError, HSIError

if TYPE_CHECKING:
    from .runfolder import MovedScene

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line (exit 2), like every other user mistake; every
    option's help shows its default."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=_DefaultsFormatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see '{self.prog} --help')\n")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default X)`` to an option's help when it has a default and the help does not name one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        has_default = not (action.default is None or action.default is False or action.default == argparse.SUPPRESS)
        if has_default and action.option_strings and "default" not in text:
            text += " (default %(default)s)"
        return text


def main(argv: Sequence[str] | None = None) -> int:
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


def _main(argv: Sequence[str] | None) -> int:
    return_freed_memory()           # a finished batch's tensors leave the process at once
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
    except BrokenPipeError:     # output piped into head and the like (an OSError: caught before the others)
        sys.stderr.close()
        return 0
    except OSError as exc:      # a full disk, a read-only file system, ...: what failed and where
        print(f"error{where}: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except torch_distributed_errors() as exc:
        print(f"error{where}: another process of this torchrun job failed or stopped answering "
              f"({_one_line(exc)[:300]})", file=sys.stderr)
        return 1
    finally:
        from .distributed import finish

        finish()


def torch_distributed_errors() -> tuple[type[Exception], ...]:
    """What a collective raises when a peer process died or timed out."""
    import torch.distributed

    return (torch.distributed.DistBackendError,)


def build_parser() -> _Parser:
    parser = _Parser(prog="hsi", description="Hyperspectral image classification: HybridSN, CNN backbones, FCNs, "
                                                 "SVM / random forest.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="print only warnings, errors and the results: no progress bars, no per-epoch or "
                             "per-step log lines on stderr")

    p = sub.add_parser("datasets", parents=[common], help="list known scenes and where each would be read from",
                       description="List the known scenes and where each is available locally.")
    p.add_argument("--data-dir", help="also look in this folder")
    p.set_defaults(run=_datasets)

    p = sub.add_parser("models", parents=[common], help="list the models: kind, size, smallest window and bands",
                       description="List every registered model (kind, smallest window and band count, how a scene "
                                   "is mapped, attention slots, parameters at 30 bands and 16 classes), or one in "
                                   "detail.")
    p.add_argument("name", nargs="?", help="one model to describe in detail")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.set_defaults(run=_models)

    p = sub.add_parser("inspect", parents=[common], help="print what a cube file holds",
                       description="Print what the reader of FILE found: shape, dtype, wavelength range, bad "
                                   "bands, no-data share, CRS and transform (or the swath geometry).")
    p.add_argument("file", help="a cube file of any known reader (.tif, .nc, .he5, .hdr, .mat, .npy, ...)")
    p.add_argument("--key", help="the array's name, for files holding several")
    p.set_defaults(run=_inspect)

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
                        "(classification image), tif (GeoTIFF), cog (Cloud-Optimized GeoTIFF), gpkg (class "
                        "polygons, GeoPackage), rgb (false-colour composite); default png,npy. tif, cog and gpkg "
                        "need the geo extra. ENVI, GeoTIFF and GeoPackage outputs keep the input's map coordinates; "
                        "for a swath with a GLT (EMIT) tif, cog and gpkg are orthorectified on the GLT's grid")
    p.add_argument("--probs", action="store_true",
                   help="also write the class probabilities and a confidence band as an ENVI float32 cube "
                        "(OUT_probs.hdr), with any format; tif and cog add OUT_probs.tif (one float32 band per "
                        "class, named by it, on the map's grid)")
    p.add_argument("--geometry", default="ortho", choices=("ortho", "sensor"),
                   help="swath products with a GLT (EMIT): tif and cog orthorectified on the GLT's map grid "
                        "(ortho), or in the product's rows and columns with its latitude and longitude in "
                        "OUT_latlon.tif (sensor); other scenes have one grid")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="memory budget of the tiled prediction in MB (default 1024); the scene itself is read "
                        "tile by tile from disk")
    p.add_argument("--tile", type=int, help="side of the tiles predicted at once (rows of a band in patch mode); "
                                           "default: the largest within --memory-mb")
    p.add_argument("--mode", default="auto", choices=("auto", "dense", "patch"),
                   help="dense: exact fully-convolutional; patch: window by window; auto: dense when exact")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    _add_setting(p, next(f for f in fields(RunConfig) if f.name == "rgb_bands"), "the run's own")
    p.add_argument("--palette", choices=("distinct", "published"),
                   help="map colours: distinct (CIELAB ΔE >= 39 between classes) or published (the colours used "
                        "before, some pairs hard to tell apart); default: the run's own")
    p.set_defaults(run=_predict)
    return parser


def _add_moved_scene_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scene, if its recorded files moved")
    g.add_argument("--data-dir", help="folder that now holds the run's scene files (same names, same data)")
    g.add_argument("--cube", help="the run's scene cube at another path or name (its data is checked)")
    g.add_argument("--gt", help="label file of --cube")
    g.add_argument("--key", help=".mat key of --cube")
    g.add_argument("--gt-key", help=".mat key of --gt")


GROUPS = ("scene", "model", "split and preprocessing", "optimisation", "run")


def _add_train_arguments(p: argparse.ArgumentParser, compare: bool = False) -> None:
    """The options of ``hsi train``, one per settings field of :class:`~hsi.config.RunConfig` and
    :class:`~hsi.config.FitOptions` (default, help and choices from the field); ``compare``: the fields ``hsi
    compare`` shares (no --model, no --model-option) and no --resume."""
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in settings_fields():
        if compare and not f.metadata["compare"]:
            continue
        group = groups[f.metadata["group"]]
        if f.name in ("train_ratio", "train_per_class"):      # one way to size the training set
            if "train size" not in exclusive:
                exclusive["train size"] = group.add_mutually_exclusive_group()
            group = exclusive["train size"]
        _add_setting(group, f)
    r = groups["run"]
    r.add_argument("--runs", type=int, default=3 if compare else 1,
                   help="repeat with seeds seed..seed+N-1 and report mean ± std")
    r.add_argument("--out", help="comparison folder (resumed if it holds the same comparison)" if compare else
                   "run folder (default runs/<scene>-<model>-<timestamp>)")
    if not compare:
        r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")


def settings_fields() -> list[Field[Any]]:
    """Every settings field that a command-line option sets: those of RunConfig, then those of its FitOptions."""
    return [f for f in fields(RunConfig) if f.name != "fit"] + list(fields(FitOptions))


def _add_setting(group: argparse._ActionsContainer, f: Field[Any], unset: str | None = None) -> None:
    """The option of one settings field: its flag, type, default, choices and help from the field; ``unset``:
    left out, the option is None and means this (``hsi predict``: the run's own setting)."""
    flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
    default = field_default(f)
    kinds = [k for k in value_types(RunConfig if f.name in RUN_FIELDS else FitOptions)[f.name]
             if k is not type(None)]
    help_text = f.metadata["help"] + (f"; here, left out: {unset}" if unset else "")
    if kinds == [bool]:
        group.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", help=help_text)
        return
    if kinds == [dict]:
        group.add_argument(flag, dest=f.name, action="append", default=[], metavar=f.metadata["metavar"],
                           help=help_text)
        return
    if f.metadata["const"] is not None:
        group.add_argument(flag, dest=f.name, nargs="?", const=f.metadata["const"], default=default,
                           metavar=f.metadata["metavar"], help=help_text)
        return
    choices = choices_of(f)
    if f.name == "model":
        help_text += f": {', '.join(choices or ())}; 'hsi models' gives each one's smallest window and band count"
        choices = None          # an unknown name is the registry's error, which lists the names
    default = None if f.metadata["unset_on_cli"] else default
    group.add_argument(flag, dest=f.name, type=kinds[0], default=default, metavar=f.metadata["metavar"],
                       choices=None if choices is None else [c for c in choices if c is not None], help=help_text)


RUN_FIELDS = {f.name for f in fields(RunConfig)}


def _train(args: argparse.Namespace) -> int:
    from . import experiments, pipeline

    progress = False if args.quiet else True if sys.stderr.isatty() else "log"
    try:
        if args.resume:
            metrics = pipeline.resume(args.resume, progress=progress, **_scene_elsewhere(args))
            return _print_metrics(metrics, args.resume)
        config = _config_from_args(args)
        if is_folded(args.split) and args.fold is None:
            if args.runs > 1:
                raise ConfigError(f"--split {args.split} runs one training per fold; give --runs 1 (or leave it out)")
            from .metrics import format_summary

            summary = experiments.train_folds(config, args.out, progress=progress)
            if summary is not None:
                print(format_summary(summary))
            return 0
        if args.runs > 1:
            from .metrics import format_summary

            summary = experiments.train_many(config, args.runs, args.out, progress=progress)
            if summary is not None:
                print(format_summary(summary))
            return 0
        out = Path(args.out) if args.out else None
        metrics = pipeline.train(config, out, progress=progress)
        return _print_metrics(metrics, out)
    except pipeline.Interrupted as stop:
        run_dir, epoch = stop.args
        saved = f"epoch {epoch}, the last completed, is saved" if epoch else \
            "no epoch had completed; the initial state is saved"
        print(f"interrupted: {saved} in {run_dir}/last.pt; resume with: hsi train --resume {run_dir}",
              file=sys.stderr)
        return EXIT_INTERRUPTED


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run settings the ``hsi train`` (and ``hsi compare``) options describe; a field without an option (the
    model of ``hsi compare``) keeps its default."""
    if not (args.dataset or args.cube):
        raise ConfigError("give --dataset NAME or --cube PATH --gt PATH")
    if args.dataset and args.cube:
        raise ConfigError("give either --dataset or --cube, not both")
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}")
    values = {f.name: getattr(args, f.name) for f in fields(RunConfig) if f.name != "fit" and hasattr(args, f.name)
              and not (f.metadata["unset_on_cli"] and getattr(args, f.name) is None)}
    if "model_kwargs" in values:
        values["model_kwargs"] = _model_options(values["model_kwargs"])
    if args.train_per_class is not None:
        values["train_ratio"] = None
    return RunConfig(**values, fit=FitOptions(**{f.name: getattr(args, f.name) for f in fields(FitOptions)}))


def _model_options(items: Iterable[str]) -> dict[str, Any]:
    """``["dropout=0", "growth=24"]`` as builder keyword arguments."""
    import json

    options: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"--model-option expects NAME=VALUE (e.g. dropout=0), got {item!r}")
        try:
            options[name.strip()] = json.loads(text)
        except ValueError:
            options[name.strip()] = text
    return options


def _compare(args: argparse.Namespace) -> int:
    from .distributed import refuse_under_torchrun
    from .experiments import compare, parse_models, read_experiment

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


def _print_metrics(metrics: dict[str, Any] | None, run_dir: Path | str | None) -> int:
    if metrics is None:         # not rank 0 of a torchrun job
        return 0
    print(f"OA {100 * metrics['oa']:.2f}%  AA {100 * metrics['aa']:.2f}%  kappa {metrics['kappa']:.4f}"
          + (f"  ({run_dir})" if run_dir else ""))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .metrics import format_report
    from .pipeline import evaluate_run

    metrics = evaluate_run(args.run_dir, **_scene_elsewhere(args))
    print(format_report(metrics, title=str(args.run_dir)), end="")
    return 0


def _scene_elsewhere(args: argparse.Namespace) -> MovedScene:
    """Where a run's scene is now, if its recorded files moved (``hsi.runs.run_scene`` arguments)."""
    return {"cube": args.cube, "gt": args.gt, "key": args.key, "gt_key": args.gt_key, "data_dir": args.data_dir}


def _predict(args: argparse.Namespace) -> int:
    from .checkpoint import TrainedModel
    from .data.splits import Split
    from .distributed import resolve_device
    from .outputs import parse_formats
    from .pipeline import write_map
    from .runfolder import read_run_config, run_scene
    from .viz import parse_rgb_bands

    run_dir = Path(args.run_dir)
    read_run_config(run_dir)            # an edited or damaged config.json stops here, before anything is read
    checkpoint = run_dir / f"{args.checkpoint}.pt"
    if not checkpoint.is_file():
        raise ConfigError(f"{run_dir} holds no {checkpoint.name}; expected a run folder written by hsi train")
    formats = parse_formats(args.format, required=not args.probs)
    if args.memory_mb < 16:
        raise ConfigError(f"--memory-mb must be at least 16, got {args.memory_mb}")
    trained = TrainedModel.from_checkpoint(checkpoint)
    rgb_bands = args.rgb_bands if args.rgb_bands is not None else read_run_config(run_dir).rgb_bands
    parse_rgb_bands(rgb_bands)
    scene = run_scene(run_dir, **_scene_elsewhere(args), verify=args.cube is None)   # any cube may be classified
    trained.check_scene(scene)
    own_split = args.cube is None and (run_dir / "split.npz").is_file()     # the run's scene: score test pixels
    split = Split.load(run_dir / "split.npz") if own_split else None
    written = write_map(trained, scene, Path(args.out) if args.out else run_dir / "map", formats=formats,
                        probs=args.probs, mode=args.mode, tile=args.tile, device=resolve_device(args.device),
                        memory_mb=args.memory_mb, palette=args.palette, geometry=args.geometry,
                        progress=not args.quiet and sys.stderr.isatty(), here=None,
                        title=f"{scene.name} / {trained.name} ({run_dir.name}/{checkpoint.name})",
                        trained_pixels=None if split is None else (split.train >= 0) | (split.val >= 0),
                        rgb_bands=rgb_bands)
    if int(os.environ.get("RANK", "0")) == 0:
        for fmt, path in written.items():
            print(f"{fmt}: {path}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from .data.registry import SCENES
    from .data.scenes import locate

    for name, info in SCENES.items():
        where = locate(name, args.data_dir)
        status = ("tensorly package (offline)" if where == "tensorly" else f"local: {where[0].parent}"
                  if where else "not local (downloads on first use)")
        print(f"{name:<13} {len(info.classes):>2} classes  {info.title:<52} {status}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import catalog

    if args.name is not None:
        print(catalog.details(catalog.model_row(args.name)))
        return 0
    rows = catalog.model_rows()
    print(catalog.markdown_table(rows) if args.markdown else catalog.plain_table(rows))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .data.io import inspect_file

    print("\n".join(inspect_file(args.file, args.key)))
    return 0


def _download(args: argparse.Namespace) -> int:
    from .data.scenes import fetch

    for path in fetch(args.name, args.data_dir):
        print(path)
    return 0


def _os_error(exc: OSError) -> str:
    """An OSError as one line: the file, the system's reason, and what it means for the files written before."""
    where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    reason = exc.strerror or _one_line(exc)
    hint = _OS_HINTS.get(exc.errno, "") if exc.errno is not None else ""
    return f"{where + ': ' if where else ''}{reason}{hint}"


_OS_HINTS = {
    errno.ENOSPC: " (the disk is full; files written before this one are intact: free space and run again, or "
                  "--resume a training)",
    errno.EDQUOT: " (disk quota exceeded; files written before this one are intact)",
    errno.EFBIG: " (the file size limit was reached; files written before this one are intact)",
    errno.EROFS: " (a read-only file system: choose an --out on a writable one)",
    errno.EACCES: " (no permission: choose another --out)",
}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
