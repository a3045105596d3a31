"""Fast inference paths: INT8 through oneDNN (MXNet's quantize_net), and how
closely a fast path (INT8 or 16-bit, see precision.py) follows float32.

Calibration is MXNet's naive min/max over a few real images, centre crops at
the crop size; the quantized graph then runs on inputs of any size, so the
dense form is calibrated once for every test scale. Fidelity is measured on
the images after the calibration ones, so it is not flattered by them.
"""
import warnings

import numpy as np

from ..core.errors import VggError


FIDELITY_IMAGES = 32


def calibration_batch(read_image, count, total, crop, scale, mean_rgb, start=0):
    """NCHW float32 centre crops (minus the mean) of the first ``count`` readable images
    from position ``start`` on."""
    from ..training.data import center_crop_box, rescale_shorter_side

    crops = []
    for position in range(start, total):
        if len(crops) == count:
            break
        try:
            image, _ = read_image(position)
        except VggError:
            continue
        image = rescale_shorter_side(image, max(scale, crop))
        top, left = center_crop_box(image.shape[0], image.shape[1], crop)
        crops.append(image[top:top + crop, left:left + crop])
    if not crops:
        raise VggError("no readable image to calibrate INT8 with")
    batch = np.stack(crops).astype(np.float32) - np.asarray(mean_rgb, np.float32)
    return batch.transpose(0, 3, 1, 2)


def quantize(block, calibration, ctx, batch_size=16):
    """An INT8 copy of a hybridizable block, calibrated on ``calibration`` (NCHW)."""
    import mxnet as mx
    from mxnet.contrib import quantization

    if any(c.device_type != "cpu" for c in ctx):
        raise VggError("--int8 runs on the CPU (oneDNN); use --devices cpu")
    loader = mx.gluon.data.DataLoader(
        mx.gluon.data.ArrayDataset(calibration, np.zeros(len(calibration), np.float32)),
        batch_size=min(batch_size, len(calibration)))
    # NOTE: no logger: given one, even a silenced one, quantize_net sets
    # MXNET_QUANTIZATION_VERBOSE=1 and the C++ pass prints a line per layer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantization.quantize_net(block, quantized_dtype="auto", calib_mode="naive",
                                         calib_data=loader,
                                         num_calib_examples=len(calibration), ctx=ctx[0],
                                         logger=None)


def fidelity_batch(read_image, total, crop, scale, mean_rgb, after=0):
    """Crops to check a fast path on: images after the first ``after`` (the calibration
    ones) where the data has enough, else from the start."""
    start = after if total - after >= FIDELITY_IMAGES // 2 else 0
    return calibration_batch(read_image, FIDELITY_IMAGES, total, crop, scale, mean_rgb,
                             start=start)


def fidelity(reference, fast, batch, ctx, scores=True):
    """How closely ``fast`` follows ``reference`` (float32) on NCHW crops: per-image
    cosine of their outputs (spatially averaged) and, for class ``scores``, top-1
    agreement."""
    import mxnet as mx

    from ..core.precision import to_float32

    x = mx.nd.array(batch, ctx=ctx[0])

    def rows(block):
        out = to_float32(block(x)).asnumpy()
        return out.reshape(out.shape[0], out.shape[1], -1).mean(axis=2)

    a, b = rows(reference), rows(fast)
    cosine = np.sum(a * b, axis=1) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    figures = dict(images=len(batch), cosine_mean=float(cosine.mean()),
                   cosine_min=float(cosine.min()))
    if scores:
        figures["top1_agreement"] = float(np.mean(a.argmax(1) == b.argmax(1)))
    return figures


def describe_fidelity(name, figures):
    agreement = ("top-1 agreement %.1f%%, " % (100 * figures["top1_agreement"])
                 if "top1_agreement" in figures else "")
    return ("%s vs float32 on %d held-out images: %soutput cosine mean %.4f (min %.4f)"
            % (name, figures["images"], agreement, figures["cosine_mean"],
               figures["cosine_min"]))
