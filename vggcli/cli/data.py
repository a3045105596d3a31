"""``vgg pack``, ``vgg pack-imagenet`` and ``vgg inspect``: data preparation (§3.1's data)."""
import json
import sys

import click

from .options import overwrite_option

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
        overwrite_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_pack(plan, out_dir, max_short_side, quality, seed, no_shuffle, workers, resume,
              checkpoint_every, quiet, overwrite, inputs, box_files=None):
    from data_tools.pack import EXIT_SKIPPED, PackSettings, pack
    from data_tools.pack_summary import skipped_count, summary
    from data_tools.plan import add_boxes

    splits, classes, source, refused = plan
    box_report = None
    if box_files and any(box_files.values()):
        splits, box_report = add_boxes(splits, classes, box_files)
    settings = PackSettings(max_short_side=max_short_side, quality=quality, seed=seed,
                            shuffle_train=not no_shuffle)
    manifest = pack(splits, classes, out_dir, settings, source, refused=refused,
                    workers=workers, resume=resume, checkpoint_every=checkpoint_every,
                    progress=not quiet, overwrite=overwrite, inputs=inputs, boxes=box_report)
    for line in summary(manifest):
        click.echo(line)
    if skipped_count(manifest):
        click.echo("finished with %d files skipped (see %s/manifest.json); exit status %d"
                   % (skipped_count(manifest), out_dir, EXIT_SKIPPED), err=True)
        sys.exit(EXIT_SKIPPED)


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--val-ratio", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True,
              help="Share of each class held out for val (ignored when DATASET has train/ "
                   "and val/).")
@click.option("--synsets", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Class list, one per line (label = line number). Default: the sorted "
                   "class folder names, empty ones included.")
@click.option("--boxes", type=click.Path(exists=True), default=None,
              help="Bounding boxes for localisation: a folder or tar of PASCAL VOC XML "
                   "files, or a CSV image,class,xmin,ymin,xmax,ymax (0-based pixels, ends "
                   "inclusive); matched to images by file name without extension.")
@pack_options
def pack(dataset, val_ratio, synsets, boxes, **options):
    """Pack a class-per-folder image dataset into indexed RecordIO.

    DATASET holds one folder per class, or train/ and val/ each holding them.
    Corrupt, truncated or empty files are skipped and listed in manifest.json.
    Exit status: 0 done, 2 bad input, 3 done but some files were skipped.

    \b
    Example:
        vgg pack ~/flowers --out data/flowers --val-ratio 0.2
    """
    from data_tools.plan import plan_folder

    splits, classes, source = plan_folder(dataset, val_ratio=val_ratio, seed=options["seed"],
                                          synsets=synsets)
    _run_pack((splits, classes, source, []), inputs=[dataset, synsets, boxes],
              box_files={"*": boxes}, **options)


@click.command("pack-imagenet")
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
@click.option("--train-boxes", type=click.Path(exists=True), default=None,
              help="ILSVRC2012_bbox_train_v2.tar.gz (or its extracted folder, or Kaggle's "
                   "LOC_train_solution.csv): boxes of the training images that have them, "
                   "for localisation (Appendix A).")
@click.option("--val-boxes", type=click.Path(exists=True), default=None,
              help="ILSVRC2012_bbox_val_v3.tgz (or its folder, or Kaggle's "
                   "LOC_val_solution.csv): boxes of every val image.")
@pack_options
def pack_imagenet(train_tar, val_tar, devkit, root, synsets, train_boxes, val_boxes,
                  **options):
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
        vgg pack-imagenet ... --train-boxes ILSVRC2012_bbox_train_v2.tar.gz \\
            --val-boxes ILSVRC2012_bbox_val_v3.tgz --out data/imagenet-boxes
        vgg pack-imagenet --root ~/imagenet-kaggle --out data/imagenet
    """
    from data_tools.plan import plan_imagenet

    plan = plan_imagenet(train_tar=train_tar, val_tar=val_tar, devkit=devkit, root=root,
                         synsets=synsets)
    _run_pack(plan, inputs=[train_tar, val_tar, devkit, root, synsets, train_boxes, val_boxes],
              box_files={"train": train_boxes, "val": val_boxes}, **options)


@click.command()
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
    from data_tools.pack import read_synsets

    report = inspect_rec(rec, samples=samples)
    names = [line.split()[0] for line in read_synsets(os.path.dirname(rec) or ".")] or None
    if as_json:
        click.echo(json.dumps(report, indent=1, default=str))
    else:
        for line in report_lines(report, names):
            click.echo(line)
    if report["problems"]:
        sys.exit(1)


COMMANDS = [pack, pack_imagenet, inspect]
