"""A miniature ILSVRC-2012 built from real photos shipped with scikit-image, in the
three layouts users download (tars + devkit, extracted, Kaggle), with the
awkward files the real one has: a CMYK JPEG, a PNG named .JPEG, plus a
truncated JPEG, a zero-byte file and a class without training images.

``build(root)`` returns a ``Truth`` with every image's true class and size.
"""
import io
import os
import tarfile
from collections import namedtuple

import numpy as np
import scipy.io
from PIL import Image

# Sorted WNIDs; their ILSVRC2012_IDs are deliberately NOT in sorted order.
WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475"]
ILSVRC_IDS = {"n01440764": 3, "n01443537": 5, "n01484850": 1, "n01491361": 4, "n01494475": 2}
WORDS = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
         "n01484850": "great white shark", "n01491361": "tiger shark",
         "n01494475": "hammerhead, hammerhead shark"}
EMPTY_CLASS = "n01494475"  # no training images: its label must still be 4
SIZES = [(300, 400), (260, 180), (100, 120), (500, 330)]  # (h, w): some above 128, some not
BAD = {"n01440764_9003.JPEG": "truncated", "n01440764_9004.JPEG": "zero-byte"}

Truth = namedtuple("Truth", "train val sizes bad layouts")


def _photos():
    from skimage import data
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(),
            data.hubble_deep_field()]


def _jpeg(pixels, mode="RGB", quality=92):
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _crop(photo, size, rng):
    h, w = size
    ph, pw = photo.shape[:2]
    if ph < h or pw < w:
        scale = max(h / ph, w / pw) * 1.01
        photo = np.asarray(Image.fromarray(photo).resize((int(pw * scale) + 1,
                                                          int(ph * scale) + 1)))
        ph, pw = photo.shape[:2]
    y, x = rng.randint(0, ph - h + 1), rng.randint(0, pw - w + 1)
    return np.ascontiguousarray(photo[y:y + h, x:x + w])


def make_images(seed=0):
    """({name: bytes} train, {name: bytes} val, truth dicts)."""
    rng = np.random.RandomState(seed)
    photos = _photos()
    train, train_truth, sizes = {}, {}, {}
    for c, wnid in enumerate(WNIDS):
        if wnid == EMPTY_CLASS:
            continue
        for i, size in enumerate(SIZES):
            name = "%s_%d.JPEG" % (wnid, 100 + i)
            train[(wnid, name)] = _jpeg(_crop(photos[c], size, rng))
            train_truth[name], sizes[name] = wnid, size
    first = WNIDS[0]
    cmyk_pixels = _crop(photos[0], (150, 200), rng)
    train[(first, "n01440764_9001.JPEG")] = _jpeg(cmyk_pixels, mode="CMYK")
    train[(first, "n01440764_9002.JPEG")] = _png(_crop(photos[0], (140, 90), rng))
    good = _jpeg(_crop(photos[0], (200, 200), rng))
    train[(first, "n01440764_9003.JPEG")] = good[:len(good) // 2]
    train[(first, "n01440764_9004.JPEG")] = b""
    for name, size in (("n01440764_9001.JPEG", (150, 200)), ("n01440764_9002.JPEG", (140, 90))):
        train_truth[name], sizes[name] = first, size
    val, val_truth = {}, {}
    val_classes = [WNIDS[2], WNIDS[0], WNIDS[4], WNIDS[1], WNIDS[3], WNIDS[2]]
    for i, wnid in enumerate(val_classes, 1):
        name = "ILSVRC2012_val_%08d.JPEG" % i
        size = SIZES[i % len(SIZES)]
        val[name] = _jpeg(_crop(photos[WNIDS.index(wnid)], size, rng))
        val_truth[name], sizes[name] = wnid, size
    return train, val, train_truth, val_truth, sizes


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_devkit(path, val_truth):
    records = [(ILSVRC_IDS[w], w, WORDS[w], 0) for w in WNIDS]
    records += [(6, "n01473806", "aquatic vertebrate", 2), (7, "n00001740", "entity", 9)]
    synsets = np.array(records, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"),
                                       ("num_children", "O")])
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"synsets": synsets})
    truth = "".join("%d\n" % ILSVRC_IDS[val_truth[n]] for n in sorted(val_truth))
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", buffer.getvalue())
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
             truth.encode())


def build(root, seed=0):
    train, val, train_truth, val_truth, sizes = make_images(seed)
    layouts = {}
    # 1. the downloaded tars
    tars = os.path.join(root, "tars")
    os.makedirs(tars)
    write_devkit(os.path.join(tars, "ILSVRC2012_devkit_t12.tar.gz"), val_truth)
    with tarfile.open(os.path.join(tars, "ILSVRC2012_img_train.tar"), "w") as outer:
        for wnid in WNIDS:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for (w, name), data in sorted(train.items()):
                    if w == wnid:
                        _add(tar, name, data)
            _add(outer, wnid + ".tar", inner.getvalue())
    with tarfile.open(os.path.join(tars, "ILSVRC2012_img_val.tar"), "w") as tar:
        for name, data in sorted(val.items()):
            _add(tar, name, data)
    layouts["tars"] = dict(train_tar=os.path.join(tars, "ILSVRC2012_img_train.tar"),
                           val_tar=os.path.join(tars, "ILSVRC2012_img_val.tar"),
                           devkit=os.path.join(tars, "ILSVRC2012_devkit_t12.tar.gz"))
    # 2. extracted: train/<wnid>/ (one empty), val flat, devkit for labels
    extracted = os.path.join(root, "extracted")
    for wnid in WNIDS:
        os.makedirs(os.path.join(extracted, "train", wnid))
    for (wnid, name), data in train.items():
        _write(os.path.join(extracted, "train", wnid, name), data)
    for name, data in val.items():
        _write(os.path.join(extracted, "val", name), data)
    layouts["extracted"] = dict(root=extracted, devkit=layouts["tars"]["devkit"])
    # 3. Kaggle
    kaggle = os.path.join(root, "kaggle")
    data_dir = os.path.join(kaggle, "ILSVRC", "Data", "CLS-LOC")
    for wnid in WNIDS:
        os.makedirs(os.path.join(data_dir, "train", wnid))
    for (wnid, name), data in train.items():
        _write(os.path.join(data_dir, "train", wnid, name), data)
    for name, data in val.items():
        _write(os.path.join(data_dir, "val", name), data)
    with open(os.path.join(kaggle, "LOC_synset_mapping.txt"), "w") as f:
        for wnid in reversed(WNIDS):  # any order: classes are sorted WNIDs
            f.write("%s %s\n" % (wnid, WORDS[wnid]))
    with open(os.path.join(kaggle, "LOC_val_solution.csv"), "w") as f:
        f.write("ImageId,PredictionString\n")
        for name, wnid in sorted(val_truth.items()):
            f.write("%s,%s 1 2 30 40 %s 5 6 70 80\n" % (name[:-5], wnid, wnid))
    layouts["kaggle"] = dict(root=kaggle)
    return Truth(train_truth, val_truth, sizes, BAD, layouts)
