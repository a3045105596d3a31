"""Planning a pack: which images go to which split with which label, from a
class-folder dataset (``plan_folder``) or ILSVRC-2012's tars, devkit or Kaggle
layout (``plan_imagenet``). ``data_tools.pack`` then packs the plan."""
import os
from collections import OrderedDict

import numpy as np

from . import sources
from .common import VggError

SPLITS = ("train", "val")


def split_items(items, val_ratio, seed):
    """Per-class deterministic split: round(val_ratio * n) images of each class go to val."""
    by_class = OrderedDict()
    for item in sorted(items, key=lambda it: it.ident):
        by_class.setdefault(item.label, []).append(item)
    rng = np.random.RandomState(seed)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label]
        chosen = set(rng.permutation(len(group))[:int(round(val_ratio * len(group)))].tolist())
        for i, item in enumerate(group):
            (val if i in chosen else train).append(item)
    return train, val


def plan_folder(root, val_ratio=0.1, seed=0, synsets=None):
    """(splits, classes, source) for a class-per-folder dataset.

    ``root/train`` + ``root/val`` class folders are used as they are; otherwise
    ``root``'s class folders are split with ``val_ratio``. Classes come from
    ``synsets`` (a file) or the sorted folder names, empty folders included.
    """
    if not os.path.isdir(root):
        raise VggError("dataset folder %s does not exist" % root)
    presplit = all(os.path.isdir(os.path.join(root, s)) for s in SPLITS)
    train_root = os.path.join(root, "train") if presplit else root
    if synsets:
        classes = sources.ClassList.read(synsets)
    else:
        names = set(sources.class_folders(train_root))
        if presplit:
            names |= set(sources.class_folders(os.path.join(root, "val")))
        classes = sources.ClassList(sorted(names))
    test = []
    if presplit:
        train = sources.folder_items(train_root, classes)
        val = sources.folder_items(os.path.join(root, "val"), classes)
        if os.path.isdir(os.path.join(root, "test")):  # a held-out split, packed as test.rec
            test = sources.folder_items(os.path.join(root, "test"), classes)
    else:
        if not 0 <= val_ratio < 1:
            raise VggError("--val-ratio must be in [0, 1), got %r" % val_ratio)
        train, val = split_items(sources.folder_items(root, classes), val_ratio, seed)
    splits = OrderedDict([("train", train)])
    if val:
        splits["val"] = val
    if test:
        splits["test"] = test
    source = dict(kind="folders", root=os.path.abspath(root), presplit=presplit,
                  val_ratio=None if presplit else val_ratio)
    return splits, classes, source


def plan_imagenet(train_tar=None, val_tar=None, devkit=None, root=None, synsets=None):
    """(splits, classes, source, refused) for ILSVRC-2012 in any of its three layouts.

    - tars: ``train_tar`` (tar of ``<wnid>.tar``), ``val_tar`` (flat), ``devkit``
    - extracted: ``root/train/<wnid>/*.JPEG``, ``root/val`` flat (labels from the
      devkit) or in ``<wnid>/`` folders; classes from ``devkit`` or ``synsets``
    - Kaggle: ``root/LOC_synset_mapping.txt``, ``root/LOC_val_solution.csv``,
      ``root/ILSVRC/Data/CLS-LOC/{train,val}``
    """
    refused = []
    splits = OrderedDict()
    if root is None and not (train_tar or val_tar):
        raise VggError("give --train-tar/--val-tar (with --devkit), or --root")
    if root is not None and (train_tar or val_tar):
        raise VggError("give either tars or --root, not both")
    if root is not None and not os.path.isdir(root):
        raise VggError("--root %s is not a folder" % root)
    kaggle = root is not None and os.path.isfile(os.path.join(root, "LOC_synset_mapping.txt"))
    classes, ids_to_wnid = _imagenet_classes(devkit, root if kaggle else None, synsets)

    def devkit_labels():
        if not devkit:
            raise VggError("flat val images need --devkit for their labels")
        return sources.devkit_val_labels(devkit, classes, ids_to_wnid)

    if root is None:
        layout = "tars"
        if train_tar:
            splits["train"] = sources.nested_tar_images(train_tar, classes, refused)
        if val_tar:
            splits["val"] = sources.tar_images(val_tar, devkit_labels(), refused)
    else:
        layout = "kaggle" if kaggle else "extracted"
        data = os.path.join(root, "ILSVRC", "Data", "CLS-LOC") if kaggle else root
        train_dir, val_dir = os.path.join(data, "train"), os.path.join(data, "val")
        if os.path.isdir(train_dir):
            splits["train"] = sources.folder_items(train_dir, classes)
        if os.path.isdir(val_dir):
            if any(e.is_dir() for e in os.scandir(val_dir)):
                splits["val"] = sources.folder_items(val_dir, classes)
            else:
                label_of = (sources.kaggle_val_labels(os.path.join(root, "LOC_val_solution.csv"),
                                                      classes) if kaggle else devkit_labels())
                splits["val"] = sources.flat_items(val_dir, label_of)
        if not splits:
            raise VggError("--root %s has neither train/ nor val/ (looked in %s)"
                           % (root, data))
    source = dict(kind="imagenet", layout=layout, train_tar=train_tar, val_tar=val_tar,
                  devkit=devkit, root=root, synsets=synsets)
    if ids_to_wnid:  # the devkit's label of each class, for submissions (manifest label_ids)
        by_wnid = {wnid: ilsvrc_id for ilsvrc_id, wnid in ids_to_wnid.items()}
        source["label_ids"] = [by_wnid[line.split()[0]] for line in classes.lines()]
    return splits, classes, source, refused


def add_boxes(splits, classes, box_files):
    """``splits`` with boxes from ``box_files`` ({split or "*": path}, "*" for every
    split) attached to their images; returns (splits, the manifest's box report:
    per source the images matched, objects, objects of unknown classes and box
    files that match no image)."""
    from .boxes import attach_boxes, read_box_files

    report = OrderedDict()
    for target, path in box_files.items():
        if not path:
            continue
        found = read_box_files(path)
        names = list(splits) if target == "*" else [target]
        matched = set()
        entry = OrderedDict(file=os.path.abspath(path), files=len(found))
        for name in names:
            if name not in splits:
                raise VggError("boxes %s are for the %s split, which is not packed"
                               % (path, name))
            splits[name], entry[name], keys = attach_boxes(splits[name], found, classes.index)
            matched |= keys
        entry["files_without_image"] = len(set(found) - matched)
        report[target] = entry
    return splits, report


def _imagenet_classes(devkit, kaggle_root, synsets):
    """(the class list, the devkit's ILSVRC2012_ID -> WNID or None) from the devkit, a
    Kaggle root's LOC_synset_mapping.txt or a synsets file, in that order."""
    if devkit:
        return sources.devkit_synsets(devkit)
    if kaggle_root:
        return sources.kaggle_synsets(os.path.join(kaggle_root, "LOC_synset_mapping.txt")), None
    if synsets:
        return sources.ClassList.read(synsets), None
    raise VggError("a class list is needed: give --devkit (or --synsets, or a Kaggle "
                   "root); labels never come from the folders present, where one "
                   "missing folder would shift every later label")
