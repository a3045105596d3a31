"""A small real dataset with no download: scikit-learn's handwritten digits
(1,797 8x8 scans, 10 classes), upsampled and written as an ImageNet-style
class-folder tree (``train/<class>/``, ``val/<class>/``) plus ``synsets.txt``.
"""
import os

import numpy as np

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_digits(root, side=40, val_ratio=0.2, seed=0, limit=None):
    """Write the digits as PNGs of ``side`` x ``side``; returns (train count, val count).

    The split is stratified and fixed by ``seed``; ``limit`` keeps the first
    images of each class (for quick runs).
    """
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.RandomState(seed)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        indices = np.flatnonzero(digits.target == label)
        if limit:
            indices = indices[:limit]
        indices = indices[rng.permutation(len(indices))]
        n_val = int(round(val_ratio * len(indices)))
        for rank, index in enumerate(indices):
            split = "val" if rank < n_val else "train"
            pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.float32)
            big = cv2.resize(pixels, (side, side), interpolation=cv2.INTER_CUBIC)
            big = np.clip(255 - big, 0, 255).astype(np.uint8)  # dark ink on white paper
            folder = os.path.join(root, split, "%d_%s" % (label, NAMES[label]))
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(os.path.join(folder, "digit%04d.png" % index),
                        cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
            counts[split] += 1
    with open(os.path.join(root, "synsets.txt"), "w") as f:
        for label in range(10):
            f.write("%d_%s digit %d\n" % (label, NAMES[label], label))
    return counts["train"], counts["val"]
