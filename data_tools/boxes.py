"""Bounding boxes for localisation (paper Appendix A): read from PASCAL VOC XML (the
ILSVRC-2012 bbox archives hold one per image) or a CSV, cleaned, and laid out as
GluonCV's detection RecordIO label so GluonCV's readers read our records.

A box is (xmin, ymin, xmax, ymax) in the image's pixels, as the XML gives it
(ILSVRC's ends are inclusive; the devkit's metric counts them so). Cleaning clips
a box to the image and drops one with nothing left; both are counted, so the pack
manifest can say how many.

GluonCV's layout (``gluoncv.data.RecordFileDetection``): [header width (2), object
width (5), then per object: class, xmin / width, ymin / height, xmax / width,
ymax / height].
"""
import csv
import io
import xml.etree.ElementTree as ElementTree

import numpy as np

from .common import VggError

HEADER_WIDTH, OBJECT_WIDTH = 2, 5


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
    """(kept, clipped count, dropped count): each (label, box) clipped to the image
    (0 .. width, 0 .. height); a box with no area left inside it is dropped."""
    kept, clipped, dropped = [], 0, 0
    for label, box in boxes:
        x0, y0, x1, y1 = box
        inside = (min(max(x0, 0), width), min(max(y0, 0), height),
                  min(max(x1, 0), width), min(max(y1, 0), height))
        if inside[2] <= inside[0] or inside[3] <= inside[1]:
            dropped += 1
            continue
        clipped += inside != tuple(box)
        kept.append((label, inside))
    return kept, clipped, dropped


def detection_label(boxes, width, height):
    """GluonCV's detection label (float32) for [(class index, box)] on a width x height
    image."""
    label = [HEADER_WIDTH, OBJECT_WIDTH]
    for index, (x0, y0, x1, y1) in boxes:
        label += [index, x0 / width, y0 / height, x1 / width, y1 / height]
    return np.asarray(label, dtype=np.float32)


def boxes_from_label(label, width, height):
    """The inverse of detection_label: [(class index, box in pixels)]; VggError for a
    label that is not in the layout."""
    label = np.asarray(label, dtype=np.float64).ravel()
    if len(label) < 2 or label[0] < 2 or label[1] < 5 or label[0] != int(label[0]) or \
            label[1] != int(label[1]) or (len(label) - int(label[0])) % int(label[1]):
        raise VggError("not a detection label: %s" % np.array2string(label[:8]))
    objects = label[int(label[0]):].reshape(-1, int(label[1]))
    return [(int(row[0]), (row[1] * width, row[2] * height, row[3] * width,
                           row[4] * height)) for row in objects]
