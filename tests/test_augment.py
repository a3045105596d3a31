"""Units of the training input (§3.1) and the plateau schedule, on small arrays."""
import os

import numpy as np
import pytest
from scipy import stats

from vggcli.training import data
from vggcli.core.devices import parse_devices
from vggcli.core.errors import VggError
from vggcli.training.schedule import PlateauSchedule


class FakeImages:
    """One real photo as every record (label 3)."""

    def __init__(self, image):
        self.picture = image

    def image(self, position):
        return self.picture, 3

    def record(self, position):
        return self.picture, 3, np.zeros(0, np.float32)  # no boxes


def test_jittered_scale_is_uniform_over_the_range():
    scale = data.Scale.parse("256:512")
    draws = np.array([scale.draw(data.image_rng(0, 0, i)) for i in range(4000)])
    assert draws.min() >= 256 and draws.max() <= 512
    assert stats.kstest((draws - 256 + np.random.RandomState(0).uniform(size=draws.size))
                        / 257.0, "uniform").pvalue > 0.01
    assert scale.test_scale == 384 and data.Scale.parse("384").test_scale == 384
    with pytest.raises(VggError):
        data.Scale.parse("512:256")
    with pytest.raises(VggError):
        data.Scale.parse("big")


def test_rescale_sets_the_shorter_side_and_keeps_aspect(photos):
    image = photos["rocket"]  # 427 x 640
    out = data.rescale_shorter_side(image, 256)
    assert out.shape[0] == 256 and abs(out.shape[1] - 640 * 256 / 427) <= 0.5 + 1e-9
    tall = data.rescale_shorter_side(image.transpose(1, 0, 2), 300)
    assert tall.shape[1] == 300 and abs(tall.shape[0] - 640 * 300 / 427) <= 0.5 + 1e-9


def test_crops_stay_inside_and_cover_every_offset():
    rng = np.random.default_rng(0)
    boxes = [data.random_crop_box(10, 7, 5, rng) for _ in range(2000)]
    tops, lefts = zip(*boxes)
    assert set(tops) == set(range(6)) and set(lefts) == set(range(3))
    assert data.center_crop_box(10, 7, 5) == (2, 1)
    with pytest.raises(VggError, match="smaller than the 8 crop"):
        data.random_crop_box(7, 20, 8, rng)


def test_train_transform_crop_flip_and_offset(photos):
    photo = photos["chelsea"]
    mean = [120.0, 110.0, 100.0]
    transform = data.TrainTransform(data.Scale(300), 224, mean, seed=1, pca_std=0.0)
    images = FakeImages(photo)
    flips = 0
    resized = data.rescale_shorter_side(photo, 300)
    for position in range(40):
        crop, offset, label = transform(images, 0, position)
        assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8 and label == 3
        np.testing.assert_allclose(offset, -np.array(mean))  # no colour shift: minus the mean
        rng = data.image_rng(1, 0, position)
        top, left = data.random_crop_box(resized.shape[0], resized.shape[1], 224, rng)
        window = resized[top:top + 224, left:left + 224]
        flipped = rng.random() < 0.5
        flips += flipped
        np.testing.assert_array_equal(crop, window[:, ::-1] if flipped else window)
    assert 10 < flips < 30
    again, _, _ = transform(images, 0, 5)
    np.testing.assert_array_equal(again, transform(images, 0, 5)[0])  # a pure function
    assert not np.array_equal(transform(images, 1, 5)[0], again)  # another epoch, another crop


def test_pca_shift_statistics():
    shifts = np.array([data.pca_shift(np.random.default_rng(i)) for i in range(20000)])
    np.testing.assert_allclose(shifts.mean(axis=0), 0, atol=0.15)
    # covariance of V diag(alpha*lambda): V diag((0.1*lambda)^2) V^T
    expected = data.EIGVEC.dot(np.diag((0.1 * data.EIGVAL) ** 2)).dot(data.EIGVEC.T)
    np.testing.assert_allclose(np.cov(shifts.T), expected, atol=0.03 * expected.max())


def test_network_input_is_mean_subtracted_float_nchw(photos):
    import mxnet as mx
    crop = photos["coffee"][:32, :48]
    offset = np.array([-10.0, 5.0, 2.5], dtype=np.float32)
    x = data.to_network_input(mx.nd.array(crop[None], dtype="uint8"),
                              mx.nd.array(offset[None])).asnumpy()
    assert x.shape == (1, 3, 32, 48)
    np.testing.assert_allclose(x[0], crop.transpose(2, 0, 1).astype(np.float32)
                               + offset[:, None, None])


def test_epoch_batches_cover_every_image_once_and_resume():
    batches = data.EpochBatches(103, 10, seed=4)
    batches.epoch = 2
    keys = [k for batch in batches for k in batch]
    assert sorted(k - 2 * 103 for k in keys) == list(range(103))
    assert len(batches) == 11
    batches.start_batch = 7
    assert [k for batch in batches for k in batch] == keys[70:]
    batches.start_batch, batches.epoch = 0, 3
    assert [k for batch in batches for k in batch] != keys
    fixed = data.EpochBatches(103, 10, seed=4, steps=12)
    assert sum(len(b) for b in fixed) == 120 and len(fixed) == 12


def test_plateau_schedule():
    schedule = PlateauSchedule(0.01, patience=2, max_reductions=2)
    events = [schedule.step(a) for a in
              [0.1, 0.2, 0.2, 0.19, 0.3, 0.3, 0.3, 0.31, 0.31, 0.31, 0.31]]
    assert events == ["improved", "improved", "waiting", "reduced", "improved", "waiting",
                      "reduced", "improved", "waiting", "finished", "waiting"]
    assert schedule.finished and schedule.state["reductions"] == 2
    assert schedule.lr == pytest.approx(0.0001)
    copy = PlateauSchedule(1.0)
    copy.load_state_dict(schedule.state_dict())
    assert copy.lr == schedule.lr and copy.finished


def test_device_lists():
    assert parse_devices("cpu") == [("cpu", 0)]
    assert parse_devices("gpu:0-3") == [("gpu", i) for i in range(4)]
    assert parse_devices("cpu:0,1") == [("cpu", 0), ("cpu", 1)]
    for bad in ("tpu:0", "gpu:a", "gpu:3-1", "gpu:0,0"):
        with pytest.raises(VggError):
            parse_devices(bad)


# --- the box through training augmentation (Appendix A.1) ---------------------------

def _magenta_box(crop):
    """Continuous (x0, y0, x1, y1) of the magenta pixels of a crop, or None."""
    r, g, b = (crop[..., i].astype(int) for i in range(3))
    mask = (r > 180) & (b > 180) & (g < 90)
    if mask.sum() < 4:
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


def test_the_box_follows_rescale_crop_and_flip(marked):
    """The training target, turned back into crop pixels, lands on the painted rectangle
    as found in the returned crop's own pixels. Tolerance 2.5 px: the rescale
    (area/linear interpolation) and JPEG blur an edge by about one pixel of the
    rescaled image each, and the threshold can fall on either side of the edge;
    the box is only compared where it lies inside the crop (the target is not cut
    at the crop's border, the pixels are)."""
    from vggcli.training.data import RecordImages, Scale, TrainTransform
    out, _ = marked
    images = RecordImages(os.path.join(out, "train.rec"),
                          index_path=os.path.join(out, "train.box.idx"))
    crop = 48
    transform = TrainTransform(Scale(56, 96), crop, [0, 0, 0], seed=5, pca_std=0, boxes=True)
    checked = 0
    for epoch in range(4):  # half the crops are mirrored: a box that did not follow fails
        for position in range(len(images)):
            pixels, _, target = transform(images, epoch, position)
            label, cx, cy, bw, bh, valid = target
            assert label == images.image(position)[1]
            found = _magenta_box(pixels)
            if not valid or found is None:
                continue
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) * crop
            np.testing.assert_allclose(np.clip(box, 0, crop), found, atol=2.5)
            checked += 1
    assert checked >= 20
