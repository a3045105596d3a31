"""Bounding boxes for localisation (paper Appendix A): read from PASCAL VOC XML (the
ILSVRC-2012 bbox archives hold one per image) or a CSV, cleaned, and laid out as
GluonCV's detection RecordIO label so GluonCV's readers read our records.

A box is (xmin, ymin, xmax, ymax) in the image's pixels, 0-based with inclusive
ends: the last column and row inside the box, as GluonCV's VOC reader holds them
(the XML's corners are 1-based, so 1 is subtracted; the devkit's metric counts
widths inclusively, x2 - x1 + 1). A CSV gives 0-based inclusive corners as they
are. Cleaning clips a box to the image and drops one with nothing left; both are
counted, so the pack manifest can say how many.

GluonCV's layout (``gluoncv.data.RecordFileDetection``, MXNet's im2rec detection
format): [header width, object width (5), extra header..., then per object: class,
xmin / width, ymin / height, xmax / width, ymax / height]. Our header width is 4:
its extra fields are the original image's width and height, so boxes predicted on
a stored (possibly shrunk) image can be given back in the original's pixels, as
the devkit wants them. GluonCV's readers skip extra header fields.
"""
import csv
import io
import os
import tarfile
import xml.etree.ElementTree as ElementTree

import numpy as np

from .common import TAR_READ_ERRORS, VggError, printable, tar_reason

HEADER_WIDTH, OBJECT_WIDTH = 4, 5


def _text(node, path, where, required=True):
    found = node.find(path)
    if found is None or found.text is None or not found.text.strip():
        if required:
            raise VggError("%s: no <%s>" % (where, path))
        return None
    return found.text.strip()


def _number(node, path, where):
    text = _text(node, path, where)
    try:
        value = float(text)
    except ValueError:
        raise VggError("%s: <%s> is %r, not a number" % (where, path, text[:40])) from None
    if not np.isfinite(value):
        raise VggError("%s: <%s> is not finite" % (where, path))
    return value


def parse_voc(data, where="annotation"):
    """{filename, width, height, objects: [{name, box, truncated, difficult}]} from the
    bytes of a VOC XML file; VggError (naming ``where``) for a damaged one. An image
    without objects gives an empty list."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise VggError("%s is not valid XML: %s" % (where, err)) from None
    if root.tag != "annotation":
        raise VggError("%s: the root element is <%s>, not <annotation>" % (where, root.tag))
    width, height = _number(root, "size/width", where), _number(root, "size/height", where)
    objects = []
    for index, node in enumerate(root.findall("object")):
        at = "%s, object %d" % (where, index + 1)
        box = tuple(_number(node, "bndbox/" + key, at)
                    for key in ("xmin", "ymin", "xmax", "ymax"))
        flags = {key: _text(node, key, at, required=False) for key in ("truncated",
                                                                      "difficult")}
        objects.append(dict(name=_text(node, "name", at), box=box,
                            truncated=flags["truncated"] == "1",
                            difficult=flags["difficult"] == "1"))
    return dict(filename=_text(root, "filename", where, required=False), width=width,
                height=height, objects=objects)


def read_box_csv(data, where="boxes CSV"):
    """{image id: [(class name, (xmin, ymin, xmax, ymax))]} from CSV rows
    ``image,class,xmin,ymin,xmax,ymax`` (a header row naming those columns is allowed)."""
    boxes = {}
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (number == 1 and row[0].strip().lower() == "image"):
            continue
        if len(row) != 6:
            raise VggError("%s, line %d: %d fields, expected image,class,xmin,ymin,xmax,ymax"
                           % (where, number, len(row)))
        try:
            box = tuple(float(v) for v in row[2:])
        except ValueError:
            raise VggError("%s, line %d: the box %r is not four numbers"
                           % (where, number, row[2:])) from None
        if not all(np.isfinite(box)):
            raise VggError("%s, line %d: the box is not finite" % (where, number))
        boxes.setdefault(row[0].strip(), []).append((row[1].strip(), box))
    return boxes


def clean_boxes(boxes, width, height):
    """(kept, clipped count, dropped count): each (label, box) clipped to the image's
    pixels (0 .. width - 1, 0 .. height - 1, ends inclusive); a box with no pixel
    left inside it is dropped."""
    kept, clipped, dropped = [], 0, 0
    for label, box in boxes:
        x0, y0, x1, y1 = box
        inside = (min(max(x0, 0), width - 1), min(max(y0, 0), height - 1),
                  min(max(x1, 0), width - 1), min(max(y1, 0), height - 1))
        if x1 < 0 or y1 < 0 or x0 > width - 1 or y0 > height - 1 or \
                inside[2] < inside[0] or inside[3] < inside[1]:
            dropped += 1
            continue
        clipped += inside != tuple(box)
        kept.append((label, inside))
    return kept, clipped, dropped


def detection_label(boxes, width, height):
    """GluonCV's detection label (float32) for [(class index, box)] on a width x height
    image (the header's extra fields hold that size)."""
    label = [HEADER_WIDTH, OBJECT_WIDTH, width, height]
    for index, (x0, y0, x1, y1) in boxes:
        label += [index, x0 / width, y0 / height, x1 / width, y1 / height]
    return np.asarray(label, dtype=np.float32)


def parse_label(label):
    """(objects as an N x 5 float64 array [class, normalised corners], the source
    (width, height) our header keeps, or None for a label without it); VggError for a
    label that is not in the layout."""
    label = np.asarray(label, dtype=np.float64).ravel()
    if len(label) < 2 or not np.all(np.isfinite(label)) or label[0] < 2 or label[1] < 5 or \
            label[0] != int(label[0]) or label[1] != int(label[1]) or \
            len(label) < label[0] or (len(label) - int(label[0])) % int(label[1]):
        raise VggError("not a detection label: %s" % np.array2string(label[:8]))
    objects = label[int(label[0]):].reshape(-1, int(label[1]))[:, :5]
    extra = label[2:int(label[0])]
    return objects, ((float(extra[0]), float(extra[1])) if len(extra) >= 2 else None)


# A corner within this many pixels of a whole pixel is that pixel: the header keeps
# corners as float32 fractions of the side (relative error 2^-24 = 6e-8), so at
# JPEG's largest side (65,535 px) a whole-pixel corner comes back within 0.004 px.
WHOLE_PIXEL_TOLERANCE = 0.01


def _whole_if_close(value):
    nearest = round(value)
    return float(nearest) if abs(value - nearest) <= WHOLE_PIXEL_TOLERANCE else value


def objects_in_pixels(objects, width, height):
    """[(class index, box in pixels)] of parsed objects on a width x height image; the
    devkit's whole-pixel corners come back exactly (so an IoU of exactly 0.5, which the
    devkit counts as right, stays 0.5)."""
    return [(int(row[0]), tuple(_whole_if_close(v) for v in (
        row[1] * width, row[2] * height, row[3] * width, row[4] * height)))
        for row in objects]


def boxes_from_label(label, width, height):
    """The inverse of detection_label: [(class index, box in pixels)] on a width x
    height image."""
    return objects_in_pixels(parse_label(label)[0], width, height)


# --- box files: a folder or tar of VOC XML files, or a CSV -------------------------

def box_key(name):
    """What a box file and an image are matched by: the file name without folders or
    extension ('n01440764/n01440764_10026.JPEG' and 'n01440764_10026.xml' match)."""
    return os.path.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])[0]


def _voc_boxes(data, where):
    parsed = parse_voc(data, where)
    return [(o["name"], tuple(v - 1 for v in o["box"])) for o in parsed["objects"]]


def _add(found, key, objects, where):
    if key in found:
        raise VggError("%s: two box files for the image %r" % (where, key))
    found[key] = objects


def read_kaggle_csv(data, where="Kaggle boxes CSV"):
    """{image id: [(WNID, box)]} from Kaggle's LOC_train_solution.csv /
    LOC_val_solution.csv (``ImageId,PredictionString`` with 'wnid xmin ymin xmax ymax'
    repeated: the XML files' 1-based corners, so 1 is subtracted)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    found = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if number == 1 or not row:
            continue
        fields = row[1].split() if len(row) == 2 else []
        if len(row) != 2 or not fields or len(fields) % 5:
            raise VggError("%s, line %d: expected ImageId,'wnid xmin ymin xmax ymax ...'"
                           % (where, number))
        objects = []
        for start in range(0, len(fields), 5):
            try:
                box = tuple(float(v) - 1 for v in fields[start + 1:start + 5])
            except ValueError:
                raise VggError("%s, line %d: a box is not four numbers" % (where, number)) \
                    from None
            if not all(np.isfinite(box)):
                raise VggError("%s, line %d: a box is not finite" % (where, number))
            objects.append((fields[start], box))
        found.setdefault(row[0].strip(), []).extend(objects)
    return found


def read_box_files(path):
    """{image key: [(class name, box, 0-based inclusive)]} from ``path``: a folder of
    VOC XML files (searched recursively), a tar of them (.tar, .tar.gz, .tgz: the
    ILSVRC bbox archives as downloaded), a CSV (image,class,xmin,ymin,xmax,ymax) or
    Kaggle's LOC_*_solution.csv. An XML file without objects gives an image with no
    boxes."""
    found = {}
    if os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(".xml"):
                    full = os.path.join(folder, name)
                    with open(full, "rb") as f:
                        _add(found, box_key(name), _voc_boxes(f.read(), printable(full)),
                             printable(path))
        if not found:
            raise VggError("box folder %s holds no .xml files" % printable(path))
        return found
    if not os.path.exists(path):
        raise VggError("box file %s does not exist" % printable(path))
    if not os.path.isfile(path):
        raise VggError("box file %s is not a regular file (a FIFO, socket or device)"
                       % printable(path))
    if path.lower().endswith(".csv"):
        with open(path, "rb") as f:
            data = f.read()
        kaggle = data.lstrip(b"\xef\xbb\xbf").startswith(b"ImageId,PredictionString")
        try:
            rows = (read_kaggle_csv if kaggle else read_box_csv)(data, printable(path))
        except UnicodeDecodeError as err:
            raise VggError("box file %s is not UTF-8 text: %s" % (printable(path), err)) \
                from None
        for image, objects in rows.items():
            _add(found, box_key(image), objects, printable(path))
        return found
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and member.name.lower().endswith(".xml"):
                    data = archive.extractfile(member).read()
                    _add(found, box_key(member.name),
                         _voc_boxes(data, "%s:%s" % (printable(path), member.name)),
                         printable(path))
    except TAR_READ_ERRORS as err:
        raise VggError("box archive %s is damaged or not a tar: %s"
                       % (printable(path), tar_reason(err))) from None
    if not found:
        raise VggError("box archive %s holds no .xml files" % printable(path))
    return found


def attach_boxes(items, found, class_index):
    """``items`` (data_tools.sources.Item) with their boxes ([(class index, box)])
    from ``found`` (read_box_files), matched by box_key; returns (items, counts, the
    keys of ``found`` matched). An object of a class not in the class list is left
    out and counted."""
    out, counts, matched = [], dict(images_with_boxes=0, objects=0, unknown_class=0), set()
    for item in items:
        key = box_key(item.ident)
        objects = found.get(key)
        if objects is None:
            out.append(item)
            continue
        matched.add(key)
        known = [(class_index[name], box) for name, box in objects if name in class_index]
        counts["unknown_class"] += len(objects) - len(known)
        counts["images_with_boxes"] += bool(known)
        counts["objects"] += len(known)
        out.append(item._replace(boxes=known) if known else item)
    return out, counts, matched
