"""``vgg eval``, ``vgg fuse``, ``vgg features`` and ``vgg transfer``: testing (§3.2, §4)
and deep features (Appendix B)."""
import os

import click

from .options import DEVICES, MEAN, NET, SCALES, dtype_option, overwrite_option

@click.command("eval")
@click.option("--net", "net_name", type=NET, default=None,
              help="Configuration (checked against the params file's own description).")
@click.option("--params", required=True, type=click.Path(dir_okay=False),
              help="Weights (from vgg train or vgg convert).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Labelled records to evaluate (e.g. data/imagenet/val.rec).")
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="A folder of images: each one's top-5 classes, printed or written to "
                   "--out FILE.csv / FILE.jsonl (every other option applies).")
@click.option("--scales", type=SCALES, default=None,
              help="Test scales Q (smaller image side, at most 4096), e.g. 256,384,512. "
                   "Default: the "
                   "training scale S, or 384 for jittered S.")
@click.option("--mode", type=click.Choice(["dense", "multicrop", "both"]), default="dense",
              show_default=True, help="Dense (fully convolutional) testing, 50 crops per "
                                      "scale, or both averaged.")
@click.option("--no-flip", is_flag=True, help="Do not average in horizontally flipped images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images (dense) or crops (multicrop) per forward pass.")
@click.option("--devices", type=DEVICES, default="cpu", show_default=True,
              help="cpu, cpu:0,1 or gpu:0-3.")
@click.option("--mean", type=MEAN, default=None,
              help="Mean R,G,B to subtract (default: from the params file).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Only the first N records (or images).")
@click.option("--int8", "int8_images", type=click.IntRange(min=0), default=0,
              help="Run INT8 (oneDNN, CPU), calibrated on this many images (e.g. 64).")
@dtype_option
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Output folder (scores.npy, labels.npy, ids.txt, report.json, report.md, "
                   "submission.txt); with --images a .csv or .jsonl file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@overwrite_option
def eval_command(net_name, params, data, images, scales, mode, no_flip, batch_size, devices,
                 mean, limit, int8_images, dtype, out_dir, quiet, overwrite):
    """Test a network as the paper does (§3.2): dense, multi-crop, multi-scale.

    Prints top-1/top-5 error and writes posteriors that any numpy user can
    load. With --images instead of --data, each image's top-5 classes (WNIDs,
    names, probabilities), printed or written to --out as CSV or JSON lines.

    \b
    Example:
        vgg eval --params runs/D-jitter/best.params --data data/imagenet/val.rec \\
            --scales 256,384,512 --mode both --devices gpu:0 --out eval/D
        vgg eval --params runs/D-jitter/best.params --images ~/photos --out top5.csv
    """
    from ..testing.evaluate import evaluate
    from ..testing.inference import load_for_inference

    if bool(data) == bool(images):
        raise click.UsageError("give exactly one of --data and --images")
    if data and not out_dir:
        raise click.UsageError("--out is required with --data")
    if images and out_dir:
        from ..testing.predict import check_predictions_out
        check_predictions_out(out_dir, inputs=[params, images], overwrite=overwrite)
    loaded = load_for_inference(params, net_name, devices, mean_rgb=mean)
    if loaded.net.file_meta.get("task", "classify") != "classify":
        raise click.UsageError("%s is a localisation net (--task %s): test it with vgg "
                               "localise" % (params, loaded.net.file_meta["task"]))
    net, ctx, mean_rgb = loaded.net, loaded.ctx, loaded.mean_rgb
    scales = scales or loaded.default_scales(params)
    if images:
        return _predict(loaded, images, scales, mode, no_flip, batch_size, limit, int8_images,
                        dtype, out_dir, quiet)
    report = evaluate(net, data, out_dir, scales, mode=mode, flip=not no_flip,
                      overwrite=overwrite, inputs=[params],
                      batch_size=batch_size, ctx=ctx, mean_rgb=mean_rgb, limit=limit,
                      progress=not quiet, int8_images=int8_images, dtype=dtype)
    with open(os.path.join(out_dir, "report.md")) as f:
        click.echo(f.read().rstrip())
    click.echo("top-1 error %.2f%%, top-5 error %.2f%% (%.1f images/s); written to %s"
               % (100 * report["top1_error"], 100 * report["top5_error"],
                  report["images_per_second"] or 0, out_dir))


def _predict(loaded, images, scales, mode, no_flip, batch_size, limit, int8_images, dtype,
             out_path, quiet):
    from ..testing.predict import predict_folder, write_predictions
    results = predict_folder(loaded.net, images, scales, loaded.mean_rgb, loaded.class_names,
                             ctx=loaded.ctx, flip=not no_flip, dtype=dtype, mode=mode,
                             batch_size=batch_size, limit=limit, int8_images=int8_images,
                             progress=not quiet)
    if out_path:
        write_predictions(out_path, results)
        skipped = sum("error" in r for r in results)
        click.echo("%d images written to %s%s" % (len(results) - skipped, out_path,
                                                  "; %d skipped" % skipped if skipped else ""))
        return
    for result in results:
        if "error" in result:
            click.echo("%s: skipped (%s)" % (result["path"], result["error"]))
            continue
        click.echo("%s: %s" % (result["path"], "; ".join(
            "%s %.3f" % (name, p) for _, _, name, p in result["top"])))


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder, in the same format as vgg eval's.")
@overwrite_option
def fuse(folders, out_dir, overwrite):
    """Fuse networks by averaging their soft-max posteriors (§4.4, Table 6), or fuse
    dense localisation outputs (Appendix A, Table 9): class scores averaged, every
    net's boxes of a class merged together.

    FOLDERS are vgg eval outputs on the same images, or vgg localise --mode dense
    outputs.

    \b
    Example:
        vgg fuse eval/D eval/E --out eval/D+E
        vgg fuse loc/D-256 loc/D-384 --out loc/fusion
    """
    from ..testing.fusion import fuse as fuse_scores
    from ..localisation.fusion import fuse_localisation
    from ..localisation.report import is_localise_output

    kinds = [is_localise_output(folder) for folder in folders]
    if any(kinds) and not all(kinds):
        raise click.UsageError("FOLDERS mix vgg localise and vgg eval outputs")
    if all(kinds):
        fuse_localisation(list(folders), out_dir, overwrite=overwrite)
    else:
        fuse_scores(list(folders), out_dir, overwrite=overwrite)
    with open(os.path.join(out_dir, "report.md")) as f:
        click.echo(f.read().rstrip())


@click.command()
@click.option("--params", required=True, type=click.Path(dir_okay=False),
              help="A localisation net's weights (vgg train --task scr or pcr).")
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Records packed with boxes (e.g. data/imagenet/val.rec; its val.box.idx "
                   "says which have boxes).")
@click.option("--mode", type=click.Choice(["center", "dense"]), default="center",
              show_default=True,
              help="center: the central crop with the ground-truth class (Table 8); dense: "
                   "the whole image at every scale, classes from --classifier, boxes merged "
                   "(Table 9).")
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="The classification net whose scores choose the classes (--mode dense).")
@click.option("--scales", type=SCALES, default=None,
              help="Test scales Q. Default: the localisation net's training scale.")
@click.option("--merge-threshold", type=click.FloatRange(min=0), default=1.0,
              show_default=True,
              help="Greedy merging stops when the closest pair of boxes is further apart "
                   "(centre distance / mean side + 1 - IoU).")
@click.option("--shifts", type=click.IntRange(1, 32), default=1, show_default=True,
              help="--mode dense: also run the nets on the image shifted by 32/N px steps, "
                   "for locations 32/N px apart (OverFeat's offsets; 1 is the paper's).")
@click.option("--devkit", type=click.Path(), default=None,
              help="ILSVRC2012_devkit_t12.tar.gz: write submission.txt with the devkit's "
                   "ILSVRC2012_IDs (default: those vgg pack-imagenet --devkit recorded in "
                   "the data's manifest, else class index + 1).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--devices", type=DEVICES, default="cpu", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: report.json, report.md, submission.txt, ids.txt (and "
                   "candidates.json for dense, which vgg fuse merges).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@overwrite_option
def localise(params, data, mode, classifier, scales, merge_threshold, shifts, devkit,
             batch_size, devices, out_dir, quiet, overwrite):
    """Test a localisation net (Appendix A.2) with the ILSVRC localisation error.

    Prints and writes the error for 1..5 guesses per image, beside two baselines
    (the whole image; a fixed central box), and the devkit's Task 2 submission.

    \b
    Example:
        vgg localise --params runs/D-pcr-384/best.params --data data/imagenet/val.rec \
            --scales 384 --out loc/pcr-center
        vgg localise --params runs/D-pcr-384/best.params --classifier runs/D-384/best.params \
            --data data/imagenet/val.rec --mode dense --scales 352,384 --out loc/D-384
    """
    from ..localisation.localise import localise as run_localise

    run_localise(params, data, out_dir, mode=mode, scales=scales, classifier=classifier,
                 devices=devices, batch_size=batch_size, threshold=merge_threshold,
                 devkit=devkit, shifts=shifts, overwrite=overwrite, progress=not quiet)
    with open(os.path.join(out_dir, "report.md")) as f:
        click.echo(f.read().rstrip())


@click.command()
@click.option("--net", "net_names", type=NET, multiple=True,
              help="Configuration of each --params (optional: files describe their net).")
@click.option("--params", "params_files", required=True, multiple=True,
              type=click.Path(dir_okay=False),
              help="Weights; repeat to stack several nets' descriptors (e.g. D and E).")
@click.option("--layer", default="fc7", show_default=True,
              help="Tap: fc7 (the paper), fc6, fc8, pool5, conv5_3, ...")
@click.option("--scales", type=SCALES, default="256,384,512", show_default=True,
              help="Test scales Q (smaller image side, at most 4096).")
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
@click.option("--devices", type=DEVICES, default="cpu", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output .npz: features, labels, ids, skipped_ids, info.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@overwrite_option
def features(net_names, params_files, layer, scales, aggregate, no_flip, no_l2, images, data,
             batch_size, int8_images, dtype, devices, out_path, quiet, overwrite):
    """Very deep features for other datasets (Appendix B): dense, pooled, flip-averaged,
    multi-scale, L2-normalised descriptors of a named layer.

    \b
    Example:
        vgg features --params D.params --params E.params --layer fc7 \\
            --scales 256,384,512 --aggregate stack --images ~/caltech101 --out c101.npz
    """
    from ..testing.features import extract
    from ..testing.inference import load_for_inference

    if net_names and len(net_names) != len(params_files):
        raise click.UsageError("give --net once per --params, or not at all")
    loaded = [load_for_inference(params, net_names[i] if net_names else None, devices)
              for i, params in enumerate(params_files)]
    nets, means, ctx = [x.net for x in loaded], [x.mean_rgb for x in loaded], loaded[0].ctx
    info = extract(nets, layer, scales, out_path, images=images, data=data,
                   overwrite=overwrite, inputs=list(params_files),
                   aggregate=aggregate, flip=not no_flip, l2=not no_l2,
                   batch_size=batch_size, ctx=ctx, means=means, progress=not quiet,
                   int8_images=int8_images, dtype=dtype)
    for bad in info["skipped_list"]:
        click.echo("skipped %s: %s" % (bad["id"], bad["reason"]), err=True)
    if info.get("fidelity"):
        from ..testing.fast import describe_fidelity
        click.echo(describe_fidelity(info["precision"], info["fidelity"]))
    click.echo("%d descriptors of %d dimensions (%s, Q=%s, %s) in %s; %d skipped; %.1f/s"
               % (info["images"], info["dims"], layer, ",".join(map(str, scales)), aggregate,
                  info["path"], info["skipped"], info["descriptors_per_second"] or 0))


@click.command()
@click.option("--train", "train_path", required=True, type=click.Path(dir_okay=False),
              help="Features of the training images (vgg features).")
@click.option("--test", "test_path", required=True, type=click.Path(dir_okay=False),
              help="Features of the test images.")
@click.option("--metric", type=click.Choice(["accuracy", "mean-recall", "map"]),
              default="accuracy", show_default=True,
              help="mean-recall: Caltech's mean class recall; map: VOC's mean AP.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for classifier.npz, report.json, report.md.")
@overwrite_option
def transfer(train_path, test_path, metric, out_dir, overwrite):
    """Train a linear SVM on deep features and score it (Appendix B, Table 11).

    C is chosen by cross-validation on the training features.

    \b
    Example:
        vgg transfer --train c101-train.npz --test c101-test.npz --metric mean-recall
    """
    from ..testing.features import transfer as run_transfer

    report = run_transfer(train_path, test_path, metric=metric, out_dir=out_dir,
                          overwrite=overwrite)
    click.echo("%s: %.4f (linear SVM, C=%g, %d train / %d test images, %d-D)" % (
        metric, report["value"], report["C"], report["train_images"], report["test_images"],
        report["dims"]))


COMMANDS = [eval_command, fuse, localise, features, transfer]
