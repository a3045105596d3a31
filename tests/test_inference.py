"""testing.inference, the engine behind eval, prediction, features and dense
localisation: images grouped by shape, rescaled, and run through a net split over the
devices with the mean subtracted (and, pooled, averaged with the flipped image)."""
from concurrent.futures import ThreadPoolExecutor

import mxnet as mx
import numpy as np
import pytest

from vggcli.nets import models
from vggcli.testing.inference import DenseForward, by_shape, check_scales, rescaled

from .numerics import assert_float32_close, output_bound

MEAN = [120.0, 110.0, 100.0]


@pytest.fixture(scope="module")
def dense_net():
    net = models.initialize(models.get_model("A", classes=5, width_mult=0.125, fc_width=16,
                                             crop_size=32), init="xavier", seed=3,
                            ctx=[mx.cpu(0), mx.cpu(1)])
    return net, models.dense_form(net)


def _images(photos, sides):
    import cv2
    return [cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
            for photo, (h, w) in zip(list(photos.values()) * 3, sides)]


def test_images_are_grouped_by_shape_each_once(photos):
    sides = [(40, 48), (32, 32), (40, 48), (64, 40), (32, 32), (40, 48)]
    groups = by_shape(_images(photos, sides))
    assert sorted(i for group in groups for i in group) == list(range(len(sides)))
    assert sorted(groups) == [[0, 2, 5], [1, 4], [3]]


def test_rescaled_images_have_the_asked_shorter_side(photos):
    images = _images(photos, [(40, 60), (90, 45), (33, 33)])
    with ThreadPoolExecutor(2) as pool:
        out = rescaled(images, 36, pool)
    assert [min(image.shape[:2]) for image in out] == [36, 36, 36]
    assert [round(image.shape[1] / image.shape[0], 1) for image in out] == [1.5, 0.5, 1.0]


def test_the_forward_split_over_two_devices_is_the_net_on_mean_subtracted_pixels(
        photos, dense_net):
    """Four 48x64 photos through the dense net on cpu(0) and cpu(1) (two parts of the
    batch) against the same net on the whole batch, the mean subtracted by hand: the
    same arithmetic in other kernels (output_bound)."""
    net, dense = dense_net
    batch = np.stack(_images(photos, [(48, 64)] * 4))
    got = DenseForward(MEAN, [mx.cpu(0), mx.cpu(1)], flip=False).run(dense, batch)
    x = mx.nd.array((batch.astype(np.float32) - np.float32(MEAN)).transpose(0, 3, 1, 2))
    expected = dense(x.as_in_context(mx.cpu(0))).asnumpy()
    assert got.shape == expected.shape == (4, 5, 1, 2)  # 48 // 32 - 1 + 1, 64 // 32 - 1 + 1
    assert_float32_close(got, expected, output_bound(net, expected))


def test_pooled_outputs_average_the_image_and_its_mirror(photos, dense_net):
    """pooled = (mean over positions of the image's map + the mirrored image's) / 2,
    each with ``per_image`` applied first (here soft-max)."""
    net, dense = dense_net
    images = _images(photos, [(40, 72)] * 3)
    forward = DenseForward(MEAN, [mx.cpu()], batch_size=2, flip=True)

    def softmax(rows):
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    got = forward.pooled(dense, images, per_image=softmax)
    plain = DenseForward(MEAN, [mx.cpu()], flip=False)
    batch = np.stack(images)
    one = softmax(plain.run(dense, batch, pool=True))
    mirrored = softmax(plain.run(dense, batch[:, :, ::-1].copy(), pool=True))
    np.testing.assert_allclose(got, (one + mirrored) / 2, rtol=0, atol=1e-6)
    assert got.shape == (3, 5) and np.allclose(got.sum(axis=1), 1)


def test_scales_below_the_crop_or_past_the_limit_are_refused():
    from vggcli.core.errors import VggError
    from vggcli.testing.evaluate import parse_scales
    with pytest.raises(VggError, match="scales 16,24 smaller than the 32 crop"):
        check_scales([16, 24, 32], 32)
    check_scales([32, 48], 32)
    with pytest.raises(VggError, match="5000 is above 4096"):
        parse_scales("32,5000")
