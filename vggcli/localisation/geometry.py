"""Boxes between the net's frame and the image's: the net's (centre x, centre y,
width, height) in crop units, at a window of the rescaled image, as inclusive 0-based
pixels of the source image; clipping; the baselines' fixed boxes; which outputs are a
class's box."""
import numpy as np

CENTRAL_BOX = (0.25, 0.75)  # the baseline's fixed box: the middle half of each side


def to_source_boxes(centers, origins, crop, ratio):
    """Boxes of the net, (cx, cy, w, h) in crop units for windows whose top-left corners
    are ``origins`` (x, y) in the rescaled image, as inclusive 0-based pixels of the
    source image (``ratio``: source pixels per rescaled pixel, x and y)."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 4)
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
    half = np.abs(centers[:, 2:]) / 2
    low = (origins + (centers[:, :2] - half) * crop) * ratio
    high = (origins + (centers[:, :2] + half) * crop) * ratio - 1  # the last pixel inside
    return np.concatenate([low, np.maximum(high, low)], axis=1)


def clip_boxes(boxes, width, height):
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    # np.minimum / np.maximum: np.clip's own checks cost more than the work here
    boxes[:, [0, 2]] = np.minimum(np.maximum(boxes[:, [0, 2]], 0), width - 1)
    boxes[:, [1, 3]] = np.minimum(np.maximum(boxes[:, [1, 3]], 0), height - 1)
    return boxes


def baseline_boxes(width, height):
    """{name: box}: the whole image and the fixed central box."""
    low, high = CENTRAL_BOX
    return {"whole image": (0.0, 0.0, width - 1.0, height - 1.0),
            "central box": (low * width, low * height, high * width - 1, high * height - 1)}


def box_columns(task, label):
    """Which of the net's outputs are the box of class ``label``."""
    start = 4 * label if task == "pcr" else 0
    return slice(start, start + 4)
