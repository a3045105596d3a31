"""Where images come from: class-folder trees, plain tars (read in place, never
extracted) and ILSVRC-2012's devkit/Kaggle label files.

An ``Item`` locates one image's bytes: a file, or a byte range of a tar
(nested tars included, so ``ILSVRC2012_img_train.tar`` is read as it is).
Labels always come from a class list, never from the folders present: one
missing folder must not shift every later label.
"""
import csv
import io
import os
import posixpath
import tarfile
from collections import namedtuple

from .common import TAR_READ_ERRORS, VggError, printable, tar_reason

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

# kind: "file" (container = path) or "tar" (container = tar path, offset/size = bytes);
# boxes: [(class index, (x0, y0, x1, y1))] in the source image's pixels, or None
Item = namedtuple("Item", "label kind container offset size ident boxes", defaults=(None,))

Refused = namedtuple("Refused", "ident reason")


class ClassList:
    """Class names in label order, with optional descriptions (``synsets.txt``)."""

    def __init__(self, names, words=None):
        if len(set(names)) != len(names):
            raise VggError("class list has duplicate names")
        self.names = list(names)
        self.words = dict(words or {})
        self.index = {name: i for i, name in enumerate(self.names)}

    def __len__(self):
        return len(self.names)

    def label(self, name, where):
        try:
            return self.index[name]
        except KeyError:
            raise VggError("%s: class %r is not in the class list (%d classes)"
                           % (where, name, len(self.names))) from None

    def lines(self):
        return ["%s %s" % (n, self.words[n]) if self.words.get(n) else n for n in self.names]

    @classmethod
    def read(cls, path):
        """One class per line: the name, then optional words (``synsets.txt`` format)."""
        names, words = [], {}
        with open(path) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if parts:
                    names.append(parts[0])
                    if len(parts) > 1:
                        words[parts[0]] = parts[1]
        if not names:
            raise VggError("class list %s is empty" % path)
        return cls(names, words)


def _is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def unsafe_member_reason(name):
    """Why a tar member name must not be used, or None. Nothing is ever extracted,
    but such names are refused so they cannot become output paths or ids."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path in tar member"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in tar member path"
    return None


# --- folder trees --------------------------------------------------------------

def folder_items(root, classes, where=None):
    """Items of a class-per-folder tree; folders not in ``classes`` are an error."""
    items = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        label = classes.label(printable(entry.name), where or root)
        for path in _walk_images(entry.path):
            # ids are text: a name that is not UTF-8 keeps its odd bytes as \xNN
            items.append(Item(label, "file", path, 0, 0,
                              printable(os.path.relpath(path, root).replace(os.sep, "/"))))
    return items


def _walk_images(folder):
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [os.path.join(dirpath, n) for n in sorted(filenames) if _is_image(n)]
    return found


def class_folders(root):
    """Sorted sub-folder names (empty ones included)."""
    if not os.path.isdir(root):
        raise VggError("%s is not a folder" % root)
    names = sorted(printable(e.name) for e in os.scandir(root) if e.is_dir())
    if not names:
        raise VggError("%s has no class folders" % root)
    return names


def flat_items(root, label_of):
    """Items of a flat folder whose labels come from ``label_of(file name)``."""
    items = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isfile(path) and _is_image(name):
            items.append(Item(label_of(printable(name)), "file", path, 0, 0, printable(name)))
    return items


# --- tars ----------------------------------------------------------------------

def _open_tar(path):
    if not os.path.isfile(path):
        raise VggError("tar file %s does not exist" % path)
    try:
        return tarfile.open(path, mode="r:")
    except tarfile.ReadError as err:
        raise VggError("%s is not a plain (uncompressed) tar: %s; images are read in place "
                       "by byte offset, so decompress it first" % (path, tar_reason(err))) \
            from None


def _tar_members(tar, where, refused, size):
    """Regular file members of an open tar of ``size`` bytes, with unsafe or odd ones
    refused; a damaged or truncated tar yields what it holds before the damage, and
    the damage is refused (listed) too."""
    members = iter(tar)
    while True:
        try:
            member = next(members)
        except StopIteration:
            return
        except TAR_READ_ERRORS as err:
            refused.append(Refused(where, "tar is damaged after %d members (%s); the rest "
                                   "is unreadable" % (len(tar.members), tar_reason(err))))
            return
        reason = unsafe_member_reason(member.name)
        if reason:
            refused.append(Refused("%s:%s" % (where, member.name), reason))
        elif member.issym() or member.islnk():
            refused.append(Refused("%s:%s" % (where, member.name), "link in tar"))
        elif member.isfile() and member.offset_data + member.size > size:
            refused.append(Refused("%s:%s" % (where, member.name),
                                   "tar is truncated inside this member"))
        elif member.isfile():
            yield member


def tar_images(path, label_of, refused):
    """Items for the images of a flat tar (``ILSVRC2012_img_val.tar``)."""
    items = []
    with _open_tar(path) as tar:
        for member in _tar_members(tar, os.path.basename(path), refused,
                                   os.path.getsize(path)):
            name = posixpath.basename(member.name)
            if _is_image(name):
                items.append(Item(label_of(name), "tar", path, member.offset_data,
                                  member.size, member.name))
    return items


def nested_tar_images(path, classes, refused):
    """Items for a tar of per-class tars ``<wnid>.tar`` (``ILSVRC2012_img_train.tar``).

    Only headers are read (by seeking), so indexing 138 GB takes seconds to minutes.
    """
    items = []
    with _open_tar(path) as outer:
        # a truncated class tar still gives the images before the cut (checked inside)
        for member in _tar_members(outer, os.path.basename(path), refused, float("inf")):
            if not member.name.endswith(".tar"):
                continue
            wnid = posixpath.basename(member.name)[:-4]
            label = classes.label(wnid, "%s:%s" % (path, member.name))
            inner_file = outer.extractfile(member)
            try:
                inner = tarfile.open(fileobj=inner_file, mode="r:")
            except tarfile.ReadError as err:
                refused.append(Refused(member.name, "unreadable class tar: %s"
                                       % tar_reason(err)))
                continue
            with inner:
                for image in _tar_members(inner, member.name, refused, member.size):
                    if _is_image(image.name):
                        items.append(Item(label, "tar", path,
                                          member.offset_data + image.offset_data,
                                          image.size, "%s/%s" % (wnid, image.name)))
    return items


# --- ILSVRC-2012 label sources -------------------------------------------------

def _devkit_file(devkit, suffix):
    """Bytes of the devkit file ending in ``suffix``, from the .tar.gz or a folder."""
    if os.path.isdir(devkit):
        for dirpath, _, filenames in os.walk(devkit):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if path.replace(os.sep, "/").endswith(suffix):
                    with open(path, "rb") as f:
                        return f.read()
    elif os.path.isfile(devkit):
        try:
            with tarfile.open(devkit) as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(suffix) \
                            and not unsafe_member_reason(member.name):
                        return tar.extractfile(member).read()
        except TAR_READ_ERRORS as err:
            raise VggError("devkit %s is damaged or not a tar: %s" % (devkit, tar_reason(err))) \
                from None
    else:
        raise VggError("devkit %s does not exist" % devkit)
    raise VggError("devkit %s has no %s" % (devkit, suffix))


def devkit_synsets(devkit):
    """(ClassList in sorted-WNID order, {ILSVRC2012_ID: WNID}) from ``data/meta.mat``.

    The 1000 leaf synsets have ILSVRC2012_IDs 1-1000, which are NOT in sorted-WNID
    order; class indices here follow the sorted WNIDs, like GluonCV, torchvision
    and the Caffe release.
    """
    import scipy.io

    raw = _devkit_file(devkit, "data/meta.mat")
    try:
        meta = scipy.io.loadmat(io.BytesIO(raw), squeeze_me=True, struct_as_record=False)
        synsets = meta["synsets"]
    except Exception as err:  # scipy raises several types for a bad file
        raise VggError("devkit %s: cannot read data/meta.mat: %s" % (devkit, err)) from None
    leaves = {}
    words = {}
    try:
        for synset in synsets:
            if int(synset.num_children) == 0:
                leaves[int(synset.ILSVRC2012_ID)] = str(synset.WNID)
                words[str(synset.WNID)] = str(synset.words)
    except (AttributeError, TypeError, ValueError) as err:
        raise VggError("devkit %s: data/meta.mat's synsets are damaged (%s)" % (devkit, err)) \
            from None
    if not leaves:
        raise VggError("devkit %s: meta.mat lists no leaf synsets" % devkit)
    return ClassList(sorted(leaves.values()), words), leaves


def devkit_val_labels(devkit, classes, ids_to_wnid):
    """Label of each val file name from ``ILSVRC2012_validation_ground_truth.txt``."""
    text = _devkit_file(devkit, "data/ILSVRC2012_validation_ground_truth.txt").decode(
        "utf-8", "replace")
    truth = []
    for number, line in enumerate(text.split(), 1):
        try:
            ilsvrc_id = int(line)
        except ValueError:
            raise VggError("devkit %s: ground truth line %d is not an ILSVRC2012_ID: %r"
                           % (devkit, number, line[:40])) from None
        if ilsvrc_id not in ids_to_wnid:
            raise VggError("devkit %s: ground truth line %d has ILSVRC2012_ID %d, which is "
                           "not a leaf synset" % (devkit, number, ilsvrc_id))
        truth.append(classes.index[ids_to_wnid[ilsvrc_id]])
    return _val_labeller(truth, "devkit %s" % devkit)


def _val_labeller(truth, where):
    def label_of(name):
        stem = os.path.splitext(posixpath.basename(name))[0]
        try:
            number = int(stem.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            raise VggError("val file %r is not named ILSVRC2012_val_<number>" % name) from None
        if not 1 <= number <= len(truth):
            raise VggError("val file %r: no ground truth for image %d in %s"
                           % (name, number, where))
        return truth[number - 1]
    return label_of


def kaggle_synsets(path):
    """ClassList from Kaggle's ``LOC_synset_mapping.txt`` ('n01440764 tench, ...')."""
    classes = ClassList.read(path)
    return ClassList(sorted(classes.names), classes.words)


def kaggle_val_labels(path, classes):
    """Label of each val file name from ``LOC_val_solution.csv`` (first WNID of the boxes)."""
    labels = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            wnid = row["PredictionString"].split()[0]
            labels[row["ImageId"]] = classes.label(wnid, path)

    def label_of(name):
        stem = os.path.splitext(posixpath.basename(name))[0]
        if stem not in labels:
            raise VggError("%s has no label for val image %s" % (path, stem))
        return labels[stem]
    return label_of
