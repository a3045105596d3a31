"""What a dense localisation output keeps for fusion, without pickles: ``top.npy``,
``candidates.npy`` and ``truths.json`` (``save_candidates``), read back with every
value checked (``load_candidates``)."""
import json
import os

import numpy as np

from data_tools.common import finite_number, printable

from ..core.errors import VggError
from ..core.ndfile import load_npy
from .scoring import MAX_GUESSES


def save_candidates(folder, candidates, truths, sizes):
    """What fusion needs, without pickles: ``top.npy`` (images x 5 x [class, score],
    -1 where there are fewer classes), ``candidates.npy`` (rows [image, class, score,
    x0, y0, x1, y1]) and ``truths.json`` (the ground truth and source sizes)."""
    top = np.full((len(candidates), MAX_GUESSES, 2), -1.0)
    rows = []
    for image, (classes, found) in enumerate(candidates):
        top[image, :len(classes)] = classes
        for label, (scores, boxes) in found.items():
            block = np.empty((len(scores), 7))
            block[:, 0], block[:, 1], block[:, 2], block[:, 3:] = image, label, scores, boxes
            rows.append(block)
    np.save(os.path.join(folder, "top.npy"), top)
    np.save(os.path.join(folder, "candidates.npy"),
            np.concatenate(rows) if rows else np.zeros((0, 7)))
    with open(os.path.join(folder, "truths.json"), "w") as f:
        json.dump(dict(truths=truths, sizes=sizes), f)


def load_candidates(folder):
    """(per image: (top [(class, score)], {class: (scores, boxes)}), truths, sizes) of a
    dense localisation output; VggError for a damaged one."""
    from data_tools.common import read_json

    top = load_npy(os.path.join(folder, "top.npy"), 3, "f")
    rows = load_npy(os.path.join(folder, "candidates.npy"), 2, "f")
    data = read_json(os.path.join(folder, "truths.json"), "localisation ground truth",
                     required=("truths", "sizes"))
    truths, sizes = _checked_truths(data, folder)
    if top.shape[1:] != (MAX_GUESSES, 2) or rows.shape[1:] != (7,) or \
            len(truths) != len(top) or len(sizes) != len(top) or (
                len(rows) and not (0 <= rows[:, 0].min() and rows[:, 0].max() < len(top))):
        raise VggError("%s: top.npy, candidates.npy and truths.json do not fit together"
                       % printable(folder))
    classes = np.concatenate([top[:, :, 0].ravel(), rows[:, 1]])
    if not (np.isfinite(top).all() and np.isfinite(rows).all()) or \
            (classes != np.floor(classes)).any() or (classes < -1).any() or \
            (classes >= 2 ** 31).any():
        raise VggError("%s: top.npy or candidates.npy holds values that are not finite or "
                       "class numbers that are not whole" % printable(folder))
    order = np.argsort(rows[:, 0], kind="stable")
    rows = rows[order]
    starts = np.searchsorted(rows[:, 0], np.arange(len(top) + 1))
    images = []
    for image in range(len(top)):
        block = rows[starts[image]:starts[image + 1]]
        found = {}
        for label in np.unique(block[:, 1]).astype(int):
            mine = block[block[:, 1] == label]
            found[int(label)] = (mine[:, 2], mine[:, 3:])
        images.append(([(int(c), float(p)) for c, p in top[image] if c >= 0], found))
    return images, truths, sizes


def _checked_truths(data, folder):
    """truths.json's (per image [(class, box)], [(height, width)]), every value checked."""
    try:
        truths = [[(int(c), tuple(float(v) for v in b)) for c, b in row]
                  for row in data["truths"]]
        sizes = [tuple(size) for size in data["sizes"]]
        good = all(isinstance(c, int) and not isinstance(c, bool) and len(b) == 4 and
                   all(finite_number(v) for v in b) for row in data["truths"] for c, b in row) and \
            all(len(size) == 2 and all(finite_number(v) and v > 0 for v in size) for size in sizes)
    except (TypeError, ValueError, OverflowError):
        good = False
    if not good:
        raise VggError("%s: truths.json is damaged (truths must be [class, [x0, y0, x1, y1]] "
                       "per object, sizes [height, width] per image)" % printable(folder))
    return truths, sizes
