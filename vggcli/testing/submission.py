"""What the ILSVRC devkit is given: labels as its ILSVRC2012_IDs where the data came
from ``pack-imagenet --devkit`` (its manifest's ``label_ids``), else class index + 1;
Task 1 (classification) lines of five labels, Task 2 lines in ``localisation``."""
import os

import numpy as np

from ..core.errors import VggError

TOP = 5


def check_label_ids(label_ids, classes, where):
    """``label_ids`` if it is one distinct positive integer per class, else VggError."""
    if label_ids is None:
        return None
    if not (isinstance(label_ids, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in label_ids)
            and len(set(label_ids)) == len(label_ids)
            and (classes is None or len(label_ids) == classes)):
        raise VggError("%s is damaged: label_ids must be %s distinct positive integers"
                       % (where, classes if classes is not None else "a list of"))
    return label_ids


def label_ids_of(records, classes):
    """The devkit labels recorded beside a .rec (its folder's manifest.json), checked
    against the net's ``classes``; None without them."""
    path = os.path.join(os.path.dirname(os.path.abspath(records)), "manifest.json")
    if not os.path.isfile(path):
        return None
    from data_tools.common import printable, read_json
    manifest = read_json(path, "pack manifest")
    label_ids = check_label_ids(manifest.get("label_ids"), manifest.get("classes"), path)
    if label_ids is not None and len(label_ids) != classes:
        raise VggError("%s's manifest labels %d classes; the net has %d"
                       % (printable(records), len(label_ids), classes))
    return label_ids


def same_label_ids(reports, folders):
    """The members' common label mapping (fusion); VggError if two differ."""
    first = reports[0].get("label_ids")
    for report, folder in zip(reports[1:], folders[1:]):
        if report.get("label_ids") != first:
            raise VggError("%s and %s label their classes differently (%s vs %s): fusion "
                           "would submit one net's labels for the other's classes" % (
                               folders[0], folder, _mapping(first),
                               _mapping(report.get("label_ids"))))
    return first


def _mapping(label_ids):
    return "class index + 1" if label_ids is None else "ILSVRC2012_IDs"


def write_classification(path, scores, label_ids=None, chunk=4096):
    """Task 1: per image the five best classes' labels, best first (the devkit's
    ``eval_flat.m`` input); ``scores`` (images x classes) may be a memmap."""
    mapping = np.arange(1, scores.shape[1] + 1) if label_ids is None else np.asarray(label_ids)
    top = min(TOP, scores.shape[1])
    with open(path, "w") as f:
        for start in range(0, len(scores), chunk):
            block = np.asarray(scores[start:start + chunk])
            best = np.argsort(-block, axis=1, kind="stable")[:, :top]
            f.writelines(" ".join(str(int(v)) for v in row) + "\n" for row in mapping[best])
