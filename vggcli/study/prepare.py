"""A study's cheap first steps, in this process: its output folder (ours, the same
protocol), the scaled-digits dataset with train/val/test split by scan, its
records, and the raw-pixel baseline's features."""
import os

import numpy as np

from ..core.errors import VggError
from .plan import paths
from .runner import run_vgg, say

KIND = "reproduce"
SPLITS = ("train", "val", "test")


def pixel_features(rec_path, side, out_path):
    """Each image of ``rec_path`` rescaled to side x side RGB, as an L2-normalised
    vector (the deep features are L2-normalised too), in a ``vgg features`` file."""
    import cv2

    from ..training.data import RecordImages
    from ..testing.features import write_features
    images = RecordImages(rec_path)
    rows, labels = [], []
    for position in range(len(images)):
        image, label = images.image(position)
        rows.append(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).ravel())
        labels.append(label)
    features = np.asarray(rows, dtype=np.float32)
    features -= features.mean(axis=1, keepdims=True)
    features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    info = dict(layer="pixels", scales=[side], aggregate="mean", nets=["raw pixels"],
                dims=features.shape[1], images=len(rows))
    write_features(out_path, features, np.asarray(labels, np.int64),
                   [str(i) for i in range(len(rows))], [], info)


def _claim_folder(out, protocol):
    from data_tools.common import check_overlap, mark_output, output_kind, write_text_atomic

    check_overlap(out, [])
    if os.path.lexists(out) and (not os.path.isdir(out) or os.listdir(out)) and \
            output_kind(out) != KIND:
        raise VggError("--out %s holds files vgg reproduce did not write: vgg never changes "
                       "them; choose another --out" % out)
    os.makedirs(out, exist_ok=True)
    saved = os.path.join(out, "protocol.yaml")
    if os.path.isfile(saved):
        with open(saved, encoding="utf-8", errors="replace") as f:
            if f.read() != protocol["_text"]:
                raise VggError("--out %s holds a study run under another protocol (%s "
                               "differs): choose another --out" % (out, saved))
    else:
        mark_output(out, KIND)
        write_text_atomic(saved, protocol["_text"])


def prepare(protocol, out, progress=None):
    """The output folder, the dataset, its records and the pixel baseline."""
    import shutil

    from data_tools.scaled_digits import write_scaled_digits

    progress = progress or say
    _claim_folder(out, protocol)
    where = paths(out)
    data = protocol["dataset"]
    if not os.path.isfile(os.path.join(where["raw"], "dataset.json")):
        progress("writing the scaled-digits dataset to %s" % where["raw"])
        tmp = where["raw"] + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from a killed run
        write_scaled_digits(tmp, seed=data["seed"], per_scan=data["per_scan"],
                            val_ratio=data["val_ratio"], limit=data.get("limit"),
                            test_ratio=data["test_ratio"],
                            test_per_scan=data.get("test_per_scan"))
        os.rename(tmp, where["raw"])
    if not os.path.isfile(os.path.join(where["data"], "manifest.json")):
        run_vgg(["pack", where["raw"], "--out", where["data"], "--synsets",
                 os.path.join(where["raw"], "synsets.txt"), "--boxes",
                 os.path.join(where["raw"], "boxes.csv"), "--quiet"], progress)
    for split in ("train", "test"):
        path = os.path.join(where["features"], "pixels-%s.npz" % split)
        if not os.path.isfile(path):
            os.makedirs(where["features"], exist_ok=True)
            pixel_features(os.path.join(where["data"], split + ".rec"),
                           protocol["pixels_side"], path)
