"""INT8 inference (oneDNN) against float32, on the digits net trained in the tests."""
import os

import numpy as np
import pytest

import mxnet as mx

from vggcli import evaluate as ev
from vggcli import features as feat
from vggcli import models
from vggcli.errors import VggError
from vggcli.fast import calibration_batch, quantize


@pytest.fixture(scope="module")
def net_and_meta(trained_a):
    net = models.load_model(os.path.join(trained_a[0], "best.params"))
    return net, net.file_meta


def test_int8_eval_agrees_with_float32(net_and_meta, digits, tmp_path):
    net, meta = net_and_meta
    val = os.path.join(digits, "val.rec")
    fp32 = ev.evaluate(net, val, str(tmp_path / "fp32"), [36], mean_rgb=meta["mean_rgb"],
                       progress=False)
    int8 = ev.evaluate(net, val, str(tmp_path / "int8"), [36], mean_rgb=meta["mean_rgb"],
                       progress=False, int8_images=64)
    a = np.load(str(tmp_path / "fp32" / "scores.npy"))
    b = np.load(str(tmp_path / "int8" / "scores.npy"))
    agreement = np.mean(a.argmax(axis=1) == b.argmax(axis=1))
    assert agreement >= 0.97  # seen 0.994 (357 of 359 images)
    assert abs(int8["top1_error"] - fp32["top1_error"]) <= 0.02
    assert int8["precision"].startswith("int8") and fp32["precision"] == "float32"


def test_int8_features_are_close_to_float32(net_and_meta, digits, tmp_path):
    net, meta = net_and_meta
    folder = os.path.join(os.path.dirname(digits), "raw", "val")
    common = dict(images=folder, means=[meta["mean_rgb"]], progress=False)
    feat.extract([net], "fc7", [36], str(tmp_path / "f32"), **common)
    feat.extract([net], "fc7", [36], str(tmp_path / "i8"), int8_images=64, **common)
    a, _, ids_a, _ = feat.load_features(str(tmp_path / "f32.npz"))
    b, _, ids_b, info = feat.load_features(str(tmp_path / "i8.npz"))
    assert ids_a == ids_b and info["precision"] == "int8"
    cosine = np.sum(a * b, axis=1)  # both L2-normalised
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.95  # seen mean ~0.998


def test_int8_needs_the_cpu_and_images(net_and_meta):
    net, meta = net_and_meta
    calibration = np.zeros((2, 3, 32, 32), np.float32)
    with pytest.raises(VggError, match="--int8 runs on the CPU"):
        quantize(net, calibration, [mx.gpu(0)])

    def unreadable(position):
        raise VggError("cannot decode")
    with pytest.raises(VggError, match="no readable image to calibrate"):
        calibration_batch(unreadable, 4, 3, 32, 36, meta["mean_rgb"])
