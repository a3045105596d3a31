"""``vgg eval`` and ``vgg fuse``: the paper's testing (§3.2, §4.2-4.4).

For each test scale Q the image is rescaled isotropically so its shorter side
is Q, then
- dense: the fully convolutional net runs on the whole image; the class score
  map is averaged spatially, passed through soft-max, and averaged with the
  horizontally flipped image's posterior;
- multi-crop: a regular 5x5 grid of crops (the crop size, 224), each also
  flipped: 50 crops per scale, their posteriors averaged;
- both: the dense and multi-crop posteriors averaged.
Several scales: posteriors averaged over Q. Fusion averages nets' posteriors.

Output folder: ``scores.npy`` (N x classes float32 posteriors, record order),
``labels.npy``, ``ids.txt``, per-scale/per-mode ``scores-<mode>-Q<q>.npy``,
``report.json`` (top1_error/top5_error as fractions, settings, images/s) and
``report.md`` (rows shaped like the paper's Tables 3-6).
"""
import functools
import json
import os
import time

import numpy as np

from ..training.data import MAX_SCALE
from ..core.errors import VggError
from .submission import label_ids_of, write_classification

MODES = ("dense", "multicrop", "both")
GRID = 5


def topk_errors(scores, labels, ks=(1, 5)):
    """{k: fraction of images whose label is not among the k highest scores}."""
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64)
    out = {}
    for k in ks:
        k_eff = min(k, scores.shape[1])
        top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        out[k] = float(1.0 - (top == labels[:, None]).any(axis=1).mean())
    return out


def errors_of_mean(arrays, labels, out=None, chunk=4096):
    """Top-1/top-5 errors of the mean of ``arrays`` (N x classes each), computed in
    chunks so memory-mapped score files never need to fit in memory; the mean is
    written to ``out`` when given."""
    wrong = {1: 0.0, 5: 0.0}
    count = len(labels)
    for start in range(0, count, chunk):
        mean = np.mean([a[start:start + chunk] for a in arrays], axis=0)
        if out is not None:
            out[start:start + chunk] = mean
        part = topk_errors(mean, labels[start:start + chunk])
        for k in wrong:
            wrong[k] += part[k] * len(mean)
    return {k: v / max(count, 1) for k, v in wrong.items()}


def grid_positions(length, crop, count=GRID):
    """``count`` evenly spaced crop starts from 0 to length - crop (inclusive)."""
    if length < crop:
        raise VggError("image side %d is smaller than the %d crop" % (length, crop))
    return [int(round(i * (length - crop) / (count - 1))) for i in range(count)]


def grid_crops(image, crop, flip=True):
    """The 5x5 grid of crops of an HxWxC image, row by row (top to bottom, left to
    right within a row), then, with ``flip``, the same 25 crops mirrored in the
    same order: crops[25 + i] == crops[i][:, ::-1]."""
    h, w = image.shape[:2]
    crops = [image[top:top + crop, left:left + crop]
             for top in grid_positions(h, crop) for left in grid_positions(w, crop)]
    if flip:
        crops += [c[:, ::-1] for c in crops]
    return np.stack(crops)


def softmax(x):
    """Soft-max over classes (rows of scores)."""
    from scipy.special import softmax as scipy_softmax
    return scipy_softmax(x, axis=1)


def parse_scales(text):
    """'256,384,512' -> [256, 384, 512]; VggError unless integers in 1..MAX_SCALE."""
    try:
        scales = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise VggError("scales must be positive integers separated by commas, got %r"
                       % (text,)) from None
    if not scales or any(q <= 0 for q in scales):
        raise VggError("scales must be positive integers separated by commas, got %r"
                       % (text,))
    if max(scales) > MAX_SCALE:
        raise VggError("scale %d is above %d, the largest test scale vgg accepts"
                       % (max(scales), MAX_SCALE))
    return scales


class Evaluator:
    """Posteriors of one net for images, per scale and mode (dense / multicrop)."""

    def __init__(self, net, mean_rgb, ctx, batch_size=32, flip=True, int8_calibration=None,
                 dtype="float32"):
        """``int8_calibration``: NCHW crops (see fast.calibration_batch) to run INT8;
        ``dtype``: bfloat16 or float16 to run in 16 bits, as decided by
        ``precision.resolve``."""
        from .inference import DenseForward, fast_copy
        from ..nets.models import dense_form
        self.crop = net.knobs["crop_size"]
        self.forward = DenseForward(mean_rgb, ctx, batch_size=batch_size, flip=flip)
        self.batch_size, self.flip = batch_size, flip
        dense = dense_form(net, frozen=True)  # inference: a conv-shaped weight copy
        dense.hybridize(static_alloc=True)
        net.hybridize(static_alloc=True)
        self.net = fast_copy(net, self.crop, ctx, int8_calibration, dtype)
        self.dense = fast_copy(dense, self.crop, ctx, int8_calibration, dtype)

    def dense_posteriors(self, images):
        """Same-shape HxWx3 images -> (N, classes) posteriors (flip averaged)."""
        return self.forward.pooled(self.dense, images, per_image=softmax)

    def multicrop_posteriors(self, images):
        """Images -> (N, classes): each image's mean posterior over its 50 (or 25) grid
        crops; crops of several images share forward passes."""
        crops = np.concatenate([grid_crops(image, self.crop, flip=self.flip)
                                for image in images])
        out = [softmax(self.forward.run(self.net, crops[s:s + self.batch_size]))
               for s in range(0, len(crops), self.batch_size)]
        return np.concatenate(out).reshape(len(images), -1, out[0].shape[1]).mean(axis=1)


def _score_all(evaluator, source, count, scales, modes, parts, labels, window, progress,
               workers, skipped=None):
    """Fill ``parts[mode, q]`` (N x classes posteriors) and ``labels`` for the first
    ``count`` images of ``source``, decoding and rescaling in a thread pool. An image
    that cannot be read or rescaled is an error, or with ``skipped`` (a dict) noted
    there by position and scored as a grey stand-in whose rows mean nothing."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from ..core.env import available_cores
    from ..training.data import check_rescalable
    from .inference import by_shape, rescaled

    bar = tqdm(total=count, desc="eval", unit="img", disable=not progress, leave=False)
    pool = ThreadPoolExecutor(workers or available_cores())
    try:
        for start in range(0, count, window):
            decoded = list(pool.map(functools.partial(_read, source, skipped, evaluator.crop),
                                    range(start, min(count, start + window))))
            for i, (image, _) in enumerate(decoded):
                try:
                    check_rescalable(image, max(scales))
                except VggError as err:
                    if skipped is None:
                        raise VggError("image %s: %s" % (source.ids[start + i], err)) from None
                    skipped[start + i] = str(err)
                    decoded[i] = (_stand_in(evaluator.crop), -1)
            labels[start:start + len(decoded)] = [label for _, label in decoded]
            for q in scales:
                resized = rescaled([image for image, _ in decoded], q, pool)
                if "dense" in modes:  # same-shape images share a batch
                    for members in by_shape(resized):
                        posteriors = evaluator.dense_posteriors([resized[i] for i in members])
                        for i, row in zip(members, posteriors):
                            parts["dense", q][start + i] = row
                if "multicrop" in modes:
                    step = max(1, evaluator.batch_size // 10)
                    for i in range(0, len(resized), step):
                        parts["multicrop", q][start + i:start + i + step] = \
                            evaluator.multicrop_posteriors(resized[i:i + step])
            bar.update(len(decoded))
    finally:
        bar.close()
        pool.shutdown()


def _stand_in(crop):
    return np.full((crop, crop, 3), 128, np.uint8)


def _read(source, skipped, crop, position):
    try:
        return source.image(position)
    except VggError as err:
        if skipped is None:
            raise
        skipped[position] = str(err)
        return _stand_in(crop), -1


def _rows(parts, labels, modes, scales, mode, final):
    """Table rows: each mode at each scale, each mode over the scales, and for 'both'
    the mean of everything (written to ``final``); returns (rows, final errors)."""
    rows = []
    for m in modes:
        for q in scales:
            errors = errors_of_mean([parts[m, q]], labels)
            rows.append(dict(mode=m, scales=[q], top1_error=errors[1], top5_error=errors[5]))
        if len(scales) > 1:
            errors = errors_of_mean([parts[m, q] for q in scales], labels)
            rows.append(dict(mode=m, scales=scales, top1_error=errors[1],
                             top5_error=errors[5]))
    # dense and multi-crop weigh equally, as do the scales
    errors = errors_of_mean([parts[key] for key in parts], labels, out=final)
    if mode == "both":
        rows.append(dict(mode=mode, scales=scales, top1_error=errors[1], top5_error=errors[5]))
    return rows, errors


def evaluate(net, data, out_dir, scales, mode="dense", flip=True, batch_size=32, ctx=None,
             mean_rgb=None, limit=None, progress=True, workers=None, int8_images=0,
             dtype="float32", overwrite=False, inputs=()):
    """Evaluate ``net`` on the records of ``data`` (a .rec) and write ``out_dir``.

    ``dtype``: the precision asked for (bfloat16 falls back to float32, with a note,
    where the CPU has no AMX). ``out_dir`` follows the output policy
    (data_tools.common): ``overwrite`` replaces a previous eval output, never
    anything else; ``inputs`` (e.g. the params file) may not overlap it.
    Returns the report dict.
    """
    import mxnet as mx

    from data_tools.common import atomic_output, check_output

    from .inference import (RecordSource, check_scales, precision_label,
                            reserved_memmap)

    if mode not in MODES:
        raise VggError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
    check_output(out_dir, "eval", inputs=[data, os.path.splitext(data)[0] + ".idx"]
                 + list(inputs), overwrite=overwrite)
    crop = net.knobs["crop_size"]
    check_scales(scales, crop)
    if mean_rgb is None:
        raise VggError("no mean RGB for preprocessing: the params file has none; give --mean")
    label_ids = label_ids_of(data, net.knobs["classes"])
    source = RecordSource(data)
    count = len(source) if limit is None else min(limit, len(source))
    ctx = ctx or [mx.cpu()]
    evaluator, dtype, fidelity = _evaluator(net, source, scales, mean_rgb, ctx, batch_size,
                                            flip, int8_images, dtype)
    modes = ("dense", "multicrop") if mode == "both" else (mode,)
    classes = net.knobs["classes"]
    with atomic_output(out_dir, folder=True, kind="eval") as tmp:
        parts = {(m, q): reserved_memmap(os.path.join(tmp, "scores-%s-Q%d.npy" % (m, q)),
                                         (count, classes), out_dir) for m in modes for q in scales}
        labels = np.zeros(count, dtype=np.int64)
        started = time.time()
        _score_all(evaluator, source, count, scales, modes, parts, labels,
                   max(batch_size, 64), progress, workers)
        seconds = time.time() - started
        final = reserved_memmap(os.path.join(tmp, "scores.npy"), (count, classes), out_dir)
        rows, errors = _rows(parts, labels, modes, scales, mode, final)
        write_classification(os.path.join(tmp, "submission.txt"), final, label_ids)
        for array in list(parts.values()) + [final]:
            array.flush()
        del parts, final
        np.save(os.path.join(tmp, "labels.npy"), labels)
        with open(os.path.join(tmp, "ids.txt"), "w") as f:
            f.write("".join(i + "\n" for i in source.ids[:count]))
        report = dict(net=net.config, train_scale=(getattr(net, "file_meta", {}) or {}).get(
            "train_scale"), data=data, images=count, scales=scales, mode=mode, flip=flip,
            crop_size=crop, precision=precision_label(int8_images, dtype), fidelity=fidelity,
            top1_error=errors[1], top5_error=errors[5], rows=rows, seconds=seconds,
            images_per_second=count / seconds if seconds > 0 else None, label_ids=label_ids)
        _write_reports(tmp, report, title="vgg eval: net %s" % net.config)
    return report


def _evaluator(net, source, scales, mean_rgb, ctx, batch_size, flip, int8_images, dtype):
    """(the Evaluator, the precision it runs, how closely a fast path follows float32 or
    None): INT8 calibrated on ``source``'s images at the smallest scale."""
    from .inference import fast_path_inputs

    dtype, calibration, check = fast_path_inputs(source, net.knobs["crop_size"], min(scales),
                                                 mean_rgb, int8_images, dtype, ctx)
    evaluator = Evaluator(net, mean_rgb, ctx, batch_size=batch_size, flip=flip,
                          int8_calibration=calibration, dtype=dtype)
    if check is None:
        return evaluator, dtype, None
    from .fast import fidelity as measure
    return evaluator, dtype, measure(net, evaluator.net, check, ctx)


def _scale_label(scales):
    return ",".join(str(q) for q in scales)


def _write_reports(folder, report, title):
    from data_tools.common import printable

    from ..nets.tables import markdown_table
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    table = markdown_table(
        ["ConvNet config.", "train (S)", "test (Q)", "mode", "top-1 val. error (%)",
         "top-5 val. error (%)"],
        [[report["net"], report.get("train_scale") or "?", _scale_label(r["scales"]),
          r["mode"] + ("" if report.get("flip", True) else ", no flip"),
          "%.1f" % (100 * r["top1_error"]), "%.1f" % (100 * r["top5_error"])]
         for r in report["rows"]])
    precision = ""
    if report.get("fidelity"):
        from .fast import describe_fidelity
        precision = "\n%s.\n" % describe_fidelity(report["precision"], report["fidelity"])
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8",
              errors="backslashreplace") as f:  # paths that are not UTF-8
        f.write("# %s\n\n%d images, %s.\n%s\n%s\n" % (
            title, report["images"], printable(report.get("data") or ""), precision, table))
