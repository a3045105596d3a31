"""The scale-varied digits dataset (data_tools.scaled_digits): deterministic for a
seed, boxes inside the canvas and tight around the ink, no scan in both splits."""
import json
import os

import numpy as np
import pytest

from data_tools import scaled_digits as sd


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    first, second = str(root / "a"), str(root / "b")
    counts = sd.write_scaled_digits(first, seed=5, per_scan=2, limit=12)
    sd.write_scaled_digits(second, seed=5, per_scan=2, limit=12)
    return first, second, counts


def _files(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(written, tmp_path):
    first, second, counts = written
    assert _files(first) == _files(second)
    assert counts == {"train": 2 * 10 * 12 - counts["val"], "val": 2 * 10 * round(0.2 * 12)}
    other = str(tmp_path / "c")
    sd.write_scaled_digits(other, seed=6, per_scan=2, limit=12)
    assert _files(other)["boxes.json"] != _files(first)["boxes.json"]


def test_no_scan_is_in_both_splits():
    rows = sd.plan(seed=0)
    train = {index for split, _, index, *_ in rows if split == "train"}
    val = {index for split, _, index, *_ in rows if split == "val"}
    assert train and val and not train & val
    assert len(train) + len(val) == 1797  # every scan, each in one split


def test_a_test_split_takes_other_scans_placed_more_often_and_packs_as_test_rec(tmp_path):
    """Three splits by scan, per class round(ratio * n) scans each, test scans placed
    test_per_scan times; vgg pack plans a test split beside train and val."""
    rows = sd.plan(seed=0, per_scan=2, val_ratio=0.1, test_ratio=0.2, test_per_scan=5)
    scans = {split: {index for s, _, index, *_ in rows if s == split}
             for split in ("train", "val", "test")}
    assert not (scans["train"] & scans["val"] or scans["train"] & scans["test"] or
                scans["val"] & scans["test"])
    assert sum(map(len, scans.values())) == 1797
    from sklearn.datasets import load_digits
    target = load_digits().target
    for label in range(10):
        n = int(np.sum(target == label))
        assert sum(target[i] == label for i in scans["test"]) == round(0.2 * n)
    count = {split: sum(s == split for s, *_ in rows) for split in scans}
    assert count["test"] == 5 * len(scans["test"]) and count["val"] == 2 * len(scans["val"])
    root = str(tmp_path / "raw")
    counts = sd.write_scaled_digits(root, seed=1, per_scan=1, limit=5, test_ratio=0.4,
                                    test_per_scan=3)
    assert counts["test"] == 3 * 10 * 2
    from data_tools import pack as packing
    splits, classes, source = packing.plan_folder(root, synsets=os.path.join(root,
                                                                             "synsets.txt"))
    assert list(splits) == ["train", "val", "test"] and len(splits["test"]) == counts["test"]


def test_boxes_lie_inside_the_canvas_and_hold_exactly_the_ink(written):
    """Independent of ink_box's arithmetic: where the rendered canvas differs from a
    canvas drawn with an empty scan is the ink; it must lie inside the box and touch
    each of its four edges (the box is tight), and the box inside the canvas."""
    import cv2
    from sklearn.datasets import load_digits
    first, _, _ = written
    images = load_digits().images
    with open(os.path.join(first, "boxes.json")) as f:
        boxes = json.load(f)
    assert len(boxes) == 2 * 10 * 12
    rows = sd.plan(seed=5, per_scan=2, limit=12)
    for split, label, index, k, side, x, y in rows:
        name = "%s/%d_%s/s%04d-%d.png" % (split, label, sd.NAMES[label], index, k)
        x0, y0, x1, y1 = boxes[name]
        assert 0 <= x0 < x1 <= sd.CANVAS and 0 <= y0 < y1 <= sd.CANVAS
        alpha = np.zeros((sd.CANVAS, sd.CANVAS))
        alpha[y:y + side, x:x + side] = sd.ink_opacity(images[index], side)
        ink = np.argwhere(alpha > 0)
        assert ink[:, 0].min() >= y0 and ink[:, 0].max() < y1
        assert ink[:, 1].min() >= x0 and ink[:, 1].max() < x1
        # tight: the ink reaches within one scan cell of every edge
        cell = side / 8
        assert ink[:, 0].min() - y0 < cell and y1 - 1 - ink[:, 0].max() < cell
        assert ink[:, 1].min() - x0 < cell and x1 - 1 - ink[:, 1].max() < cell
        image = cv2.imread(os.path.join(first, *name.split("/")))
        assert image.shape == (sd.CANVAS, sd.CANVAS, 3)


def test_digit_sizes_vary_five_fold():
    sides = [side for *_, side, _, _ in sd.plan(seed=0)]
    assert min(sides) == sd.MIN_SIDE and max(sides) == sd.MAX_SIDE
    assert np.std(sides) > 0.25 * np.mean(sides)  # uniform 12-60: std/mean ~ 0.38
