"""The ``vgg`` command. Each command parses its options and calls one library function.

Library modules are imported inside the commands: MXNet must not be loaded
before ``--threads`` has been applied, and ``vgg --help`` stays fast.
"""
import json
import os
import sys

import click

from . import __version__
from . import configure
from .errors import VggError
from .configs import CONFIGS, canonical_name
from .precision import DTYPES


class CliError(click.ClickException):
    """A library error shown as one 'Error: ...' line with its own exit code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class VggGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VggError as err:
            raise CliError(str(err), err.exit_code) from None


class NetType(click.ParamType):
    """A registry name (case-insensitive); the error lists the valid names."""

    name = "net"

    def get_metavar(self, param, *args, **kwargs):
        return "[%s]" % "|".join(CONFIGS)

    def convert(self, value, param, ctx):
        try:
            return canonical_name(value)
        except VggError as err:
            self.fail(str(err), param, ctx)


NET = NetType()


class ScalesType(click.ParamType):
    """'256,384,512': positive integers separated by commas."""

    name = "Q[,Q...]"

    def convert(self, value, param, ctx):
        from .evaluate import parse_scales
        try:
            return parse_scales(value)
        except VggError as err:
            self.fail(str(err), param, ctx)


class DevicesType(click.ParamType):
    """'cpu', 'cpu:0,1', 'gpu:0-3' -> [(kind, index)]; ``as_text`` keeps the checked
    text (training configs store it)."""

    name = "DEVICES"

    def __init__(self, as_text=False):
        self.as_text = as_text

    def convert(self, value, param, ctx):
        from .devices import parse_devices
        try:
            devices = parse_devices(value)
        except VggError as err:
            self.fail(str(err), param, ctx)
        return value if self.as_text else devices


DEVICES_TEXT = DevicesType(as_text=True)


@click.group(cls=VggGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vgg")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for MXNet's operators. Default: $OMP_NUM_THREADS if set, "
                   "else every core this process may use (MXNet alone would use one).")
def cli(threads):
    """Very deep convolutional networks (Simonyan & Zisserman, ICLR 2015), one command per step.

    \b
    Example:
        vgg nets
        vgg nets --net D --width-mult 0.25 --crop-size 64 --classes 10
    """
    configure(threads)


@cli.command()
@click.option("--net", "nets", type=NET, multiple=True,
              help="Only these configurations (repeatable). Default: all six.")
@click.option("--classes", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Outputs of fc8.")
@click.option("--width-mult", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Multiplier on every convolution's width.")
@click.option("--fc-width", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Width of fc6 and fc7.")
@click.option("--crop-size", type=click.IntRange(min=32), default=224, show_default=True,
              help="Input crop side (a multiple of 32).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def nets(nets, classes, width_mult, fc_width, crop_size, as_json):
    """Print the paper's Table 1 (layers) and Table 2 (parameters) from the code's own table.

    Parameter counts come from the built networks' parameter shapes (no
    weights are allocated); multiply-adds are per image at the crop size.

    \b
    Example:
        vgg nets --net D --net E
    """
    from .tables import network_tables

    selected = list(nets) or list(CONFIGS)
    tables = network_tables(selected, classes=classes, width_mult=width_mult,
                            fc_width=fc_width, crop_size=crop_size)
    if as_json:
        click.echo(json.dumps(tables["rows"], indent=2))
    else:
        click.echo(tables["markdown"])


def pack_options(command):
    """Options shared by ``vgg pack`` and ``vgg pack-imagenet``."""
    options = [
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Output folder (train/val .rec/.idx/.lst, synsets.txt, "
                          "manifest.json)."),
        click.option("--max-short-side", type=click.IntRange(min=0), default=512,
                     show_default=True,
                     help="Shrink images whose shorter side is longer (never enlarges); "
                          "0 stores them as they are."),
        click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
                     help="JPEG quality of re-encoded images."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the training-record shuffle (and of --val-ratio splits)."),
        click.option("--no-shuffle", is_flag=True,
                     help="Keep training records in id order instead of shuffling them."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Decoding processes. Default: every available core."),
        click.option("--resume", is_flag=True,
                     help="Continue an interrupted pack in --out from its last checkpoint."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000,
                     show_default=True, help="Images between checkpoints (flushed to disk)."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_pack(plan, out_dir, max_short_side, quality, seed, no_shuffle, workers, resume,
              checkpoint_every, quiet):
    from data_tools.pack import EXIT_SKIPPED, PackSettings, pack, skipped_count, summary

    splits, classes, source, refused = plan
    settings = PackSettings(max_short_side=max_short_side, quality=quality, seed=seed,
                            shuffle_train=not no_shuffle)
    manifest = pack(splits, classes, out_dir, settings, source, refused=refused,
                    workers=workers, resume=resume, checkpoint_every=checkpoint_every,
                    progress=not quiet)
    for line in summary(manifest):
        click.echo(line)
    if skipped_count(manifest):
        click.echo("finished with %d files skipped (see %s/manifest.json); exit status %d"
                   % (skipped_count(manifest), out_dir, EXIT_SKIPPED), err=True)
        sys.exit(EXIT_SKIPPED)


@cli.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--val-ratio", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True,
              help="Share of each class held out for val (ignored when DATASET has train/ "
                   "and val/).")
@click.option("--synsets", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Class list, one per line (label = line number). Default: the sorted "
                   "class folder names, empty ones included.")
@pack_options
def pack(dataset, val_ratio, synsets, **options):
    """Pack a class-per-folder image dataset into indexed RecordIO.

    DATASET holds one folder per class, or train/ and val/ each holding them.
    Corrupt, truncated or empty files are skipped and listed in manifest.json.
    Exit status: 0 done, 2 bad input, 3 done but some files were skipped.

    \b
    Example:
        vgg pack ~/flowers --out data/flowers --val-ratio 0.2
    """
    from data_tools.pack import plan_folder

    splits, classes, source = plan_folder(dataset, val_ratio=val_ratio, seed=options["seed"],
                                          synsets=synsets)
    _run_pack((splits, classes, source, []), **options)


@cli.command("pack-imagenet")
@click.option("--train-tar", type=click.Path(dir_okay=False), default=None,
              help="ILSVRC2012_img_train.tar (a tar of <wnid>.tar), read in place.")
@click.option("--val-tar", type=click.Path(dir_okay=False), default=None,
              help="ILSVRC2012_img_val.tar (flat), read in place.")
@click.option("--devkit", type=click.Path(), default=None,
              help="ILSVRC2012_devkit_t12.tar.gz or its folder: classes and val labels.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Extracted layout (train/<wnid>/, val/) or Kaggle's (LOC_*.txt/csv).")
@click.option("--synsets", type=click.Path(exists=True, dir_okay=False), default=None,
              help="WNID list for an extracted layout without a devkit.")
@pack_options
def pack_imagenet(train_tar, val_tar, devkit, root, synsets, **options):
    """Pack ILSVRC-2012 into indexed RecordIO, straight from the downloaded tars.

    Class i is the i-th WNID in sorted order (GluonCV, torchvision and the
    Caffe release agree); val labels come from the devkit's ground truth (or
    Kaggle's LOC_val_solution.csv). CMYK and greyscale JPEGs and PNGs named
    .JPEG are stored as RGB JPEGs; broken files are skipped and listed.
    Exit status: 0 done, 2 bad input, 3 done but some files were skipped.

    \b
    Example:
        vgg pack-imagenet --train-tar ILSVRC2012_img_train.tar \\
            --val-tar ILSVRC2012_img_val.tar --devkit ILSVRC2012_devkit_t12.tar.gz \\
            --out data/imagenet
        vgg pack-imagenet --root ~/imagenet-kaggle --out data/imagenet
    """
    from data_tools.pack import plan_imagenet

    plan = plan_imagenet(train_tar=train_tar, val_tar=val_tar, devkit=devkit, root=root,
                         synsets=synsets)
    _run_pack(plan, **options)


@cli.command()
@click.argument("rec", type=click.Path(exists=True, dir_okay=False))
@click.option("--samples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Records whose images are decoded to show their sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect(rec, samples, as_json):
    """Count the records of a .rec, histogram its labels, and check its .idx.

    Exit status 1 when the index and the records disagree.

    \b
    Example:
        vgg inspect data/imagenet/val.rec
    """
    import os

    from data_tools.inspect_rec import inspect_rec, report_lines

    report = inspect_rec(rec, samples=samples)
    synsets = os.path.join(os.path.dirname(rec) or ".", "synsets.txt")
    names = None
    if os.path.isfile(synsets):
        with open(synsets) as f:
            names = [line.split()[0] for line in f if line.strip()]
    if as_json:
        click.echo(json.dumps(report, indent=1, default=str))
    else:
        for line in report_lines(report, names):
            click.echo(line)
    if report["problems"]:
        sys.exit(1)


def _field_options(command):
    """One option per training setting, generated from recipes.FIELDS (one source)."""
    from .recipes import CHOICES, FIELDS

    types = {int: int, float: float, str: str}
    special = {"net": NET, "devices": DEVICES_TEXT}
    for key in reversed(list(FIELDS)):
        default, kind, help_text = FIELDS[key]
        flag = "--" + key.replace("_", "-")
        shown = "" if default is None else " [paper/default: %s]" % (default,)
        kind = special.get(key) or (click.Choice(CHOICES[key]) if key in CHOICES
                                    else types[kind])
        command = click.option(flag, key, type=kind, default=None,
                               help=help_text + shown)(command)
    return command


@cli.command()
@click.option("--recipe", default=None,
              help="A recipe name (see 'vgg recipe list') or YAML file; flags override it.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its newest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_field_options
def train(recipe, resume_dir, quiet, **options):
    """Train a network with the paper's procedure (§3.1), on one or several devices.

    Defaults are the paper's: SGD, momentum 0.9, batch 256, weight decay 5e-4,
    dropout 0.5, lr 1e-2 divided by 10 on validation plateaus (3 times at
    most), up to 74 epochs. Writes config.yaml, log.jsonl (JSON lines),
    curves.png, checkpoints/ (every epoch), best.params and final.params.
    Exit status: 0 done, 1 training failed (e.g. the loss diverged), 2 bad input.

    \b
    Example:
        vgg train --recipe A-256 --data data/imagenet --out runs/A-256 --devices gpu:0-3
        vgg train --recipe D-256 --data data/imagenet --out runs/D-256 \\
            --init-from runs/A-256/best.params --devices gpu:0-3
        vgg train --resume runs/D-256
    """
    from .recipes import RESUMABLE, resolve, validate
    from .train import read_config, train as run_training

    given = {k: v for k, v in options.items() if v is not None}
    if resume_dir:
        changed = sorted(set(given) - set(RESUMABLE) - {"out"})
        if recipe or changed:
            raise VggError("--resume continues %s with its saved config.yaml; only %s may be "
                           "given with it (got %s)" % (resume_dir, ", ".join(
                               "--" + k.replace("_", "-") for k in RESUMABLE),
                               ", ".join("--" + k.replace("_", "-") for k in changed)
                               or "--recipe"))
        config, meta = read_config(resume_dir)
        config.update(validate(given, where="options"))
        config["out"] = resume_dir
    else:
        config, meta = resolve(recipe, given)
        if meta.get("parent") and not (config["init_from"] or config["finetune_from"]):
            raise VggError("recipe %s starts from the weights of %s: give --init-from or "
                           "--finetune-from (vgg recipe plan %s prints the chain)"
                           % (meta["recipe"], meta["parent"], meta["recipe"]))
    summary = run_training(config, meta, resume=bool(resume_dir), progress=not quiet)
    click.echo("done: %d epochs, %d iterations, best val top-1 error %.2f%%; weights in %s"
               % (summary["epochs"], summary["iterations"],
                  100 * (summary["best_val_top1_err"] or 0), summary["out"]))


@cli.group()
def recipe():
    """The paper's Table 3 rows as training recipes (recipes/*.yaml).

    \b
    Example:
        vgg recipe list
        vgg recipe plan E-jitter --data data/imagenet --devices gpu:0-3
    """


@recipe.command("list")
def recipe_list():
    """List the recipes with their descriptions.

    \b
    Example:
        vgg recipe list
    """
    from .recipes import list_recipes, load_recipe

    for name in list_recipes():
        click.echo("%-12s %s" % (name, load_recipe(name).get("description", "")))


@recipe.command("show")
@click.argument("name")
def recipe_show(name):
    """Print a recipe resolved over the paper's defaults.

    \b
    Example:
        vgg recipe show D-384
    """
    import yaml

    from .recipes import resolve
    config, meta = resolve(name)
    click.echo(yaml.safe_dump(dict(meta, **config), sort_keys=False).rstrip())


@recipe.command("plan")
@click.argument("name")
@click.option("--data", default="DATA", show_default=True, help="Packed dataset folder.")
@click.option("--runs", default="runs", show_default=True, help="Folder for the run folders.")
@click.option("--devices", type=DEVICES_TEXT, default=None,
              help="Devices for every run, e.g. gpu:0-3.")
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
              help="Precision for every run (see vgg train --dtype).")
def recipe_plan(name, data, runs, devices, dtype):
    """Print the chain of runs that produces a recipe, as exact commands.

    \b
    Example:
        vgg recipe plan E-jitter      # A-256 -> E-256 -> E-384 -> E-jitter
    """
    from .recipes import plan_commands

    steps = plan_commands(name, data=data, runs=runs, devices=devices, dtype=dtype)
    click.echo(" -> ".join(step[0] for step in steps))
    for number, (step, description, command) in enumerate(steps, 1):
        click.echo("\n# %d. %s: %s\n%s" % (number, step, description, command))


def dtype_option(command):
    return click.option(
        "--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
        help="Precision of convolutions and dense layers: bfloat16 on CPUs with AMX (falls "
             "back to float32 elsewhere, with a message), float16 on GPUs.")(command)


class MeanType(click.ParamType):
    """'R,G,B': three numbers."""

    name = "R,G,B"

    def convert(self, value, param, ctx):
        try:
            values = [float(v) for v in str(value).split(",")]
        except ValueError:
            values = []
        if len(values) != 3:
            self.fail("must be three numbers R,G,B, got %r" % value, param, ctx)
        return values


@cli.command("eval")
@click.option("--net", "net_name", type=NET, default=None,
              help="Configuration (checked against the params file's own description).")
@click.option("--params", required=True, type=click.Path(dir_okay=False),
              help="Weights (from vgg train or vgg convert).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Labelled records to evaluate (e.g. data/imagenet/val.rec).")
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="A folder of unlabelled images: print each one's top-5 classes.")
@click.option("--scales", type=ScalesType(), default=None,
              help="Test scales Q (smaller image side), e.g. 256,384,512. Default: the "
                   "training scale S, or 384 for jittered S.")
@click.option("--mode", type=click.Choice(["dense", "multicrop", "both"]), default="dense",
              show_default=True, help="Dense (fully convolutional) testing, 50 crops per "
                                      "scale, or both averaged.")
@click.option("--no-flip", is_flag=True, help="Do not average in horizontally flipped images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images (dense) or crops (multicrop) per forward pass.")
@click.option("--devices", type=DevicesType(), default="cpu", show_default=True,
              help="cpu, cpu:0,1 or gpu:0-3.")
@click.option("--mean", type=MeanType(), default=None,
              help="Mean R,G,B to subtract (default: from the params file).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N records.")
@click.option("--int8", "int8_images", type=click.IntRange(min=0), default=0,
              help="Run INT8 (oneDNN, CPU), calibrated on this many images (e.g. 64).")
@dtype_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (scores.npy, labels.npy, ids.txt, report.json, report.md).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_command(net_name, params, data, images, scales, mode, no_flip, batch_size, devices,
                 mean, limit, int8_images, dtype, out_dir, quiet):
    """Test a network as the paper does (§3.2): dense, multi-crop, multi-scale.

    Prints top-1/top-5 error and writes posteriors that any numpy user can
    load. With --images instead of --data, prints each image's top-5 classes.

    \b
    Example:
        vgg eval --params runs/D-jitter/best.params --data data/imagenet/val.rec \\
            --scales 256,384,512 --mode both --devices gpu:0 --out eval/D
        vgg eval --params runs/D-jitter/best.params --images ~/photos
    """
    from .evaluate import evaluate, predict_folder
    from .inference import load_for_inference

    if bool(data) == bool(images):
        raise click.UsageError("give exactly one of --data and --images")
    if data and not out_dir:
        raise click.UsageError("--out is required with --data")
    loaded = load_for_inference(params, net_name, devices, mean_rgb=mean)
    net, ctx, mean_rgb = loaded.net, loaded.ctx, loaded.mean_rgb
    scales = scales or loaded.default_scales(params)
    if images:
        for result in predict_folder(net, images, scales, mean_rgb, loaded.class_names,
                                     ctx=ctx, flip=not no_flip, dtype=dtype):
            if "error" in result:
                click.echo("%s: skipped (%s)" % (result["path"], result["error"]))
                continue
            click.echo("%s: %s" % (result["path"], "; ".join(
                "%s %.3f" % (name, p) for _, name, p in result["top"])))
        return
    report = evaluate(net, data, out_dir, scales, mode=mode, flip=not no_flip,
                      batch_size=batch_size, ctx=ctx, mean_rgb=mean_rgb, limit=limit,
                      progress=not quiet, int8_images=int8_images, dtype=dtype)
    with open(os.path.join(out_dir, "report.md")) as f:
        click.echo(f.read().rstrip())
    click.echo("top-1 error %.2f%%, top-5 error %.2f%% (%.1f images/s); written to %s"
               % (100 * report["top1_error"], 100 * report["top5_error"],
                  report["images_per_second"] or 0, out_dir))


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder, in the same format as vgg eval's.")
def fuse(folders, out_dir):
    """Fuse networks by averaging their soft-max posteriors (§4.4, Table 6).

    FOLDERS are vgg eval outputs on the same images.

    \b
    Example:
        vgg fuse eval/D eval/E --out eval/D+E
    """
    from .evaluate import fuse as fuse_scores

    fuse_scores(list(folders), out_dir)
    with open(os.path.join(out_dir, "report.md")) as f:
        click.echo(f.read().rstrip())


@cli.command()
@click.option("--net", "net_names", type=NET, multiple=True,
              help="Configuration of each --params (optional: files describe their net).")
@click.option("--params", "params_files", required=True, multiple=True,
              type=click.Path(dir_okay=False),
              help="Weights; repeat to stack several nets' descriptors (e.g. D and E).")
@click.option("--layer", default="fc7", show_default=True,
              help="Tap: fc7 (the paper), fc6, fc8, pool5, conv5_3, ...")
@click.option("--scales", type=ScalesType(), default="256,384,512", show_default=True,
              help="Test scales Q.")
@click.option("--aggregate", type=click.Choice(["mean", "stack"]), default="mean",
              show_default=True, help="Average the scales' descriptors or concatenate them.")
@click.option("--no-flip", is_flag=True, help="Do not average in the flipped image.")
@click.option("--no-l2", is_flag=True, help="Skip the final L2 normalisation.")
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="A folder of images (class sub-folders give labels).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Labelled records (.rec) instead of --images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--int8", "int8_images", type=click.IntRange(min=0), default=0,
              help="Run INT8 (oneDNN, CPU), calibrated on this many images (e.g. 64).")
@dtype_option
@click.option("--devices", type=DevicesType(), default="cpu", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output .npz: features, labels, ids, skipped_ids, info.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def features(net_names, params_files, layer, scales, aggregate, no_flip, no_l2, images, data,
             batch_size, int8_images, dtype, devices, out_path, quiet):
    """Very deep features for other datasets (Appendix B): dense, pooled, flip-averaged,
    multi-scale, L2-normalised descriptors of a named layer.

    \b
    Example:
        vgg features --params D.params --params E.params --layer fc7 \\
            --scales 256,384,512 --aggregate stack --images ~/caltech101 --out c101.npz
    """
    from .features import extract
    from .inference import load_for_inference

    if net_names and len(net_names) != len(params_files):
        raise click.UsageError("give --net once per --params, or not at all")
    loaded = [load_for_inference(params, net_names[i] if net_names else None, devices)
              for i, params in enumerate(params_files)]
    nets, means, ctx = [x.net for x in loaded], [x.mean_rgb for x in loaded], loaded[0].ctx
    info = extract(nets, layer, scales, out_path, images=images, data=data,
                   aggregate=aggregate, flip=not no_flip, l2=not no_l2,
                   batch_size=batch_size, ctx=ctx, means=means, progress=not quiet,
                   int8_images=int8_images, dtype=dtype)
    for bad in info["skipped_list"]:
        click.echo("skipped %s: %s" % (bad["id"], bad["reason"]), err=True)
    if info.get("fidelity"):
        from .fast import describe_fidelity
        click.echo(describe_fidelity(info["precision"], info["fidelity"]))
    click.echo("%d descriptors of %d dimensions (%s, Q=%s, %s) in %s; %d skipped; %.1f/s"
               % (info["images"], info["dims"], layer, ",".join(map(str, scales)), aggregate,
                  info["path"], info["skipped"], info["descriptors_per_second"] or 0))


@cli.command()
@click.option("--train", "train_path", required=True, type=click.Path(dir_okay=False),
              help="Features of the training images (vgg features).")
@click.option("--test", "test_path", required=True, type=click.Path(dir_okay=False),
              help="Features of the test images.")
@click.option("--metric", type=click.Choice(["accuracy", "mean-recall", "map"]),
              default="accuracy", show_default=True,
              help="mean-recall: Caltech's mean class recall; map: VOC's mean AP.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for classifier.npz, report.json, report.md.")
def transfer(train_path, test_path, metric, out_dir):
    """Train a linear SVM on deep features and score it (Appendix B, Table 11).

    C is chosen by cross-validation on the training features.

    \b
    Example:
        vgg transfer --train c101-train.npz --test c101-test.npz --metric mean-recall
    """
    from .features import transfer as run_transfer

    report = run_transfer(train_path, test_path, metric=metric, out_dir=out_dir)
    click.echo("%s: %.4f (linear SVM, C=%g, %d train / %d test images, %d-D)" % (
        metric, report["value"], report["C"], report["train_images"], report["test_images"],
        report["dims"]))


@cli.command()
@click.option("--from", "source", required=True,
              type=click.Choice(["gluoncv", "torchvision", "caffe"]),
              help="Where the weights come from.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--net", "net_name", type=NET, required=True, help="Configuration they hold.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Our parameter file (with its preprocessing).")
def convert(source, path, net_name, out):
    """Import weights: GluonCV .params, torchvision .pth, the authors' .caffemodel.

    The source's preprocessing (torchvision's /255 and std, Caffe's BGR order)
    is folded into conv1_1 and the mean is stored in the file, so vgg eval and
    vgg features use it as it is. torchvision files are read with torch's
    weights-only loader (pickled code is refused); Caffe files need no Caffe.

    \b
    Example:
        vgg convert --from torchvision vgg16-397923af.pth --net D --out D.params
        vgg convert --from caffe VGG_ILSVRC_19_layers.caffemodel --net E --out E.params
    """
    from .convert import convert as run_convert

    net = run_convert(source, path, net_name, out)
    click.echo("net %s (%d classes) from %s %s -> %s" % (net.config, net.knobs["classes"],
                                                         source, path, out))


@cli.command()
@click.option("--net", "net_name", type=NET, default=None, help="Configuration (checked).")
@click.option("--params", required=True, type=click.Path(dir_okay=False), help="Weights.")
@click.option("--format", "fmt", type=click.Choice(["symbol", "onnx"]), default="symbol",
              show_default=True, help="MXNet symbol JSON + params, or also ONNX.")
@click.option("--dense", is_flag=True, help="Export the fully convolutional form.")
@click.option("--input-size", type=click.IntRange(min=32), default=None,
              help="Input side for --dense (default: the crop size).")
@click.option("--out", "prefix", required=True, help="Output prefix.")
def export(net_name, params, fmt, dense, input_size, prefix):
    """Export a net for other tools: MXNet symbol (gluon.SymbolBlock.imports) or ONNX.

    \b
    Example:
        vgg export --params D.params --format onnx --out export/vgg16
        vgg export --params D.params --dense --input-size 384 --out export/vgg16-dense
    """
    from .convert import export as run_export
    from .inference import load_for_inference

    net = load_for_inference(params, net_name, need_mean=False).net
    for path in run_export(net, prefix, fmt=fmt, dense=dense, input_size=input_size):
        click.echo(path)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("-n", "--workers", type=click.IntRange(min=1), required=True,
              help="Worker processes (each trains on its shard of the records).")
@click.option("-s", "--servers", type=click.IntRange(min=1), default=None,
              help="Parameter-server processes. Default: as many as workers.")
@click.option("--launcher", type=click.Choice(["local", "ssh"]), default="local",
              show_default=True, help="local: this machine, loopback only; ssh: --hosts.")
@click.option("--hosts", "hosts_file", type=click.Path(dir_okay=False), default=None,
              help="Host file for --launcher ssh, one host per line.")
@click.option("--interface", default=None,
              help="Network interface for ps-lite with ssh (e.g. eth0).")
@click.option("--start-timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds a worker may stay silent at start before the job is stopped.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(workers, servers, launcher, hosts_file, interface, start_timeout, command):
    """Run a training job on MXNet's distributed KVStore (ps-lite dist_sync).

    Starts the scheduler, servers and workers, prefixes each one's output with
    its rank, and stops the whole job (non-zero exit) as soon as any process
    fails. In local mode everything listens on 127.0.0.1 only.

    \b
    Example:
        vgg launch -n 2 -s 1 -- vgg train --kvstore dist_sync --net A \\
            --data data/imagenet --out runs/A-dist
        vgg launch -n 4 --launcher ssh --hosts hosts.txt --interface eth0 -- \\
            vgg train --kvstore dist_device_sync --devices gpu:0-3 ...
    """
    from .launch import launch as run_launch

    run_launch(list(command), workers, servers=servers, launcher=launcher,
               hosts_file=hosts_file, interface=interface, start_timeout=start_timeout)


@cli.command()
@click.argument("names", nargs=-1)
def bench(names):
    """Run benchmarks (all by default); each figure is a ratio against a named peer
    measured in the same run. Writes bench/results.json and bench/results.md.

    NAMES: inference, int8, torch, torch-training, gflops, training, pipeline,
    packing, dense, distributed.

    \b
    Example:
        vgg bench packing dense
    """
    from .bench import BENCHES, main as run_bench

    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise VggError("unknown benchmark %s; valid: %s" % (", ".join(unknown),
                                                            ", ".join(BENCHES)))
    run_bench(list(names))


def main():
    try:
        cli(prog_name="vgg")
    except BaseException as exit_or_error:
        if os.environ.get("DMLC_ROLE") == "worker":
            # NOTE: a failed ps-lite worker would block forever at interpreter exit
            # (ps::Finalize waits for every node); leave at once so the launcher
            # sees the failure and stops the job.
            code = getattr(exit_or_error, "code", 1)
            if code not in (0, None):
                if not isinstance(exit_or_error, SystemExit):
                    import traceback
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)
        raise


if __name__ == "__main__":
    sys.exit(main())
