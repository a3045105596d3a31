"""Scale-varied digits: a real dataset where object size varies, built in seconds with
no download, for the paper's scale findings (jittering, multi-scale testing) and
localisation (Appendix A).

Each of scikit-learn's 1,797 real 8x8 digit scans is placed ``per_scan`` times on a
64x64 canvas, each time at a random size (its side uniform in 12-60 px, so the
digit's extent varies five-fold) and a random position, over a real-photo
background: a random crop of one of the two photographs scikit-learn ships
(``load_sample_images``: a Chinese temple and a flower), rescaled to the canvas and
flattened to half contrast, so the texture is real but the digit stays legible.
The ink (the scan's intensity, upsampled bicubically, as opacity) is drawn dark
on a light background and light on a dark one.

The box of each placement is the bounding box of the scan's non-zero pixels, in
canvas pixels (x0, y0, x1, y1; x1/y1 exclusive). Train and val are split by *scan*
(stratified per class), and so is the optional test split (``test_ratio``): no
scan is in two splits, so val and test measure generalisation to new handwriting,
not to new placements of seen digits. Test scans may be placed more often
(``test_per_scan``) for a larger test set. Everything follows from
``seed``.

Written as ``train/<class>/``, ``val/<class>/`` PNGs, ``synsets.txt``,
``boxes.json`` ({"train/5_five/s0123-1.png": [x0, y0, x1, y1], ...}), the same
boxes as ``boxes.csv`` for ``vgg pack --boxes`` (image,class,xmin,ymin,xmax,ymax
with inclusive ends: x1 - 1, y1 - 1) and ``dataset.json`` (the parameters).
"""
import json
import os

import numpy as np

from .digits import NAMES

CANVAS = 64
MIN_SIDE, MAX_SIDE = 12, 60
SCAN = 8  # scikit-learn's scans are 8x8, intensities 0-16


def _backgrounds():
    from sklearn.datasets import load_sample_images
    return [np.asarray(image, dtype=np.float32) for image in load_sample_images().images]


def ink_box(scan, side, x, y):
    """(x0, y0, x1, y1) in canvas pixels of the scan's non-zero pixels, the scan drawn
    as a ``side`` square at (x, y); x1/y1 exclusive."""
    rows, cols = np.flatnonzero(scan.any(axis=1)), np.flatnonzero(scan.any(axis=0))
    cell = side / SCAN
    return (int(np.floor(x + cols[0] * cell)), int(np.floor(y + rows[0] * cell)),
            int(np.ceil(x + (cols[-1] + 1) * cell)), int(np.ceil(y + (rows[-1] + 1) * cell)))


def ink_opacity(scan, side):
    """The scan's intensity as opacity in [0, 1], upsampled to ``side`` x ``side``; a
    pixel is inked only inside the cells of non-zero scan pixels (bicubic overshoot
    into empty cells is cut)."""
    import cv2
    alpha = cv2.resize(scan.astype(np.float32) / 16.0, (side, side),
                       interpolation=cv2.INTER_CUBIC)
    support = cv2.resize((scan > 0).astype(np.uint8), (side, side),
                         interpolation=cv2.INTER_NEAREST)
    return np.clip(alpha, 0, 1) * support


def render(scan, side, x, y, background):
    """The canvas: ``background`` (CANVAS x CANVAS x 3 float) with the scan drawn."""
    alpha = ink_opacity(scan, side)
    canvas = background.copy()
    patch = canvas[y:y + side, x:x + side]
    ink = 20.0 if patch.mean() > 127 else 235.0
    canvas[y:y + side, x:x + side] = patch * (1 - alpha[..., None]) + ink * alpha[..., None]
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def _background(photos, rng, canvas=CANVAS, contrast=0.5):
    import cv2
    photo = photos[rng.randint(len(photos))]
    size = rng.randint(canvas, min(photo.shape[:2]) // 2)
    top = rng.randint(photo.shape[0] - size + 1)
    left = rng.randint(photo.shape[1] - size + 1)
    crop = cv2.resize(photo[top:top + size, left:left + size], (canvas, canvas),
                      interpolation=cv2.INTER_AREA)
    return contrast * crop + (1 - contrast) * crop.mean()  # texture, legible digits


def plan(seed=0, per_scan=3, val_ratio=0.2, limit=None, canvas=CANVAS,
         sides=(MIN_SIDE, MAX_SIDE), test_ratio=0.0, test_per_scan=None):
    """[(split, label, scan index, placement, side, x, y)], deterministic for ``seed``;
    val and test scans are chosen per class (round(val_ratio * n) and
    round(test_ratio * n) of each); a test scan is placed ``test_per_scan`` times
    (default ``per_scan``): more test images for the same handwriting."""
    from sklearn.datasets import load_digits
    target = load_digits().target
    rng = np.random.RandomState(seed)
    rows = []
    for label in range(10):
        scans = np.flatnonzero(target == label)[:limit]
        order = rng.permutation(scans).tolist()
        n_val, n_test = int(round(val_ratio * len(scans))), int(round(test_ratio * len(scans)))
        split_of = dict.fromkeys(order[:n_val], "val")
        split_of.update(dict.fromkeys(order[n_val:n_val + n_test], "test"))
        for index in scans:
            split = split_of.get(index, "train")
            for k in range((test_per_scan or per_scan) if split == "test" else per_scan):
                side = rng.randint(sides[0], sides[1] + 1)
                x, y = rng.randint(canvas - side + 1), rng.randint(canvas - side + 1)
                rows.append((split, label, int(index), k, side, int(x), int(y)))
    return rows


def write_scaled_digits(root, seed=0, per_scan=3, val_ratio=0.2, limit=None, canvas=CANVAS,
                        sides=(MIN_SIDE, MAX_SIDE), contrast=0.5, test_ratio=0.0,
                        test_per_scan=None):
    """Write the dataset under ``root`` (see the module docstring); returns
    {split: image count}."""
    import cv2
    from sklearn.datasets import load_digits
    images = load_digits().images
    photos = _backgrounds()
    backgrounds = np.random.RandomState([seed, 1])
    boxes, counts = {}, {"train": 0, "val": 0}
    if test_ratio:
        counts["test"] = 0
    for split, label, index, k, side, x, y in plan(seed, per_scan, val_ratio, limit, canvas,
                                                   sides, test_ratio, test_per_scan):
        scan = images[index]
        image = render(scan, side, x, y, _background(photos, backgrounds, canvas, contrast))
        name = "%s/%d_%s/s%04d-%d.png" % (split, label, NAMES[label], index, k)
        path = os.path.join(root, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path, image[:, :, ::-1])
        boxes[name] = list(ink_box(scan, side, x, y))
        counts[split] += 1
    with open(os.path.join(root, "synsets.txt"), "w") as f:
        f.writelines("%d_%s digit %d\n" % (label, NAMES[label], label) for label in range(10))
    with open(os.path.join(root, "boxes.json"), "w") as f:
        json.dump(boxes, f, indent=0, sort_keys=True)
    with open(os.path.join(root, "boxes.csv"), "w") as f:
        f.write("image,class,xmin,ymin,xmax,ymax\n")
        for name, (x0, y0, x1, y1) in sorted(boxes.items()):
            f.write("%s,%s,%d,%d,%d,%d\n" % (name, name.split("/")[1], x0, y0, x1 - 1, y1 - 1))
    with open(os.path.join(root, "dataset.json"), "w") as f:
        json.dump(dict(name="scaled-digits", seed=seed, per_scan=per_scan, val_ratio=val_ratio,
                       test_ratio=test_ratio, test_per_scan=test_per_scan, canvas=canvas,
                       side_range=list(sides), contrast=contrast, limit=limit,
                       counts=counts), f, indent=1)
    return counts
