"""Fast inference paths: INT8 through oneDNN (MXNet's quantize_net).

Calibration is MXNet's naive min/max over a few real images, centre crops at
the crop size; the quantized graph then runs on inputs of any size, so the
dense form is calibrated once for every test scale.
"""
import logging
import warnings

import numpy as np

from .errors import VggError


def calibration_batch(read_image, count, total, crop, scale, mean_rgb):
    """NCHW float32 centre crops (minus the mean) of the first ``count`` readable images."""
    from .data import center_crop_box, rescale_shorter_side

    crops = []
    for position in range(total):
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
    quiet = logging.getLogger("vgg.quantize")
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantization.quantize_net(block, quantized_dtype="auto", calib_mode="naive",
                                         calib_data=loader,
                                         num_calib_examples=len(calibration), ctx=ctx[0],
                                         logger=quiet)
