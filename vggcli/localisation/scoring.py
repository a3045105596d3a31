"""The ILSVRC localisation metric (paper Appendix A), exactly as the ILSVRC-2012
devkit computes it (``eval_localization_flat.m`` with ``compute_overlap.m``).

A guess is (class, box); a box is (xmin, ymin, xmax, ymax) in pixels, both ends
inclusive, 0-based (data_tools.boxes; the devkit's files are 1-based, which
changes no IoU; ``submission_line`` adds the 1). An image is localised
at k when one of its first k guesses names a ground-truth class and overlaps a
ground-truth box *of that class* with IoU >= 0.5; the error at k is the share of
images that are not. Guesses past the fifth are ignored (the devkit's
``max_num_pred_per_image``); an image with fewer guesses just has fewer chances.
With several ground-truth classes in one image (not in ILSVRC-2012 CLS-LOC, where
every box of an image has its class), each counts 1/n as in the devkit.

Our own code: neither MXNet nor GluonCV has this metric (GluonCV's VOC metrics
are detection mAP, with no +1 and no top-k guesses).
"""
import numpy as np

IOU_THRESHOLD = 0.5
MAX_GUESSES = 5


def devkit_iou(box, truth):
    """IoU with the devkit's inclusive pixel counting: a box from x 0 to x 9 is 10 px
    wide (``compute_overlap.m``: iw = min(xmax) - max(xmin) + 1, and so on)."""
    iw = min(box[2], truth[2]) - max(box[0], truth[0]) + 1
    ih = min(box[3], truth[3]) - max(box[1], truth[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    union = ((box[2] - box[0] + 1) * (box[3] - box[1] + 1)
             + (truth[2] - truth[0] + 1) * (truth[3] - truth[1] + 1) - iw * ih)
    return float(iw * ih / union)


def image_errors(guesses, truths, ks=range(1, MAX_GUESSES + 1)):
    """{k: error of one image} for the first k of ``guesses`` [(class, box)], against
    ``truths`` [(class, box)] (several boxes of a class allowed)."""
    guesses = list(guesses)[:MAX_GUESSES]
    classes = sorted({c for c, _ in truths})
    if not classes:
        raise ValueError("an image without a ground-truth box cannot be scored")
    # first[j]: the first guess index that localises ground-truth class j
    first = []
    for label in classes:
        boxes = [b for c, b in truths if c == label]
        hit = next((i for i, (c, box) in enumerate(guesses) if c == label and any(
            devkit_iou(box, b) >= IOU_THRESHOLD for b in boxes)), None)
        first.append(hit)
    return {k: sum(1.0 for hit in first if hit is None or hit >= k) / len(classes)
            for k in ks}


def localisation_errors(all_guesses, all_truths, ks=range(1, MAX_GUESSES + 1)):
    """{k: mean error over images} (the devkit's flat localisation error)."""
    if len(all_guesses) != len(all_truths):
        raise ValueError("%d images of guesses for %d of ground truth"
                         % (len(all_guesses), len(all_truths)))
    if not all_truths:
        raise ValueError("no images to score")
    totals = {k: 0.0 for k in ks}
    for guesses, truths in zip(all_guesses, all_truths):
        for k, error in image_errors(guesses, truths, ks).items():
            totals[k] += error
    return {k: totals[k] / len(all_truths) for k in ks}


def whole_pixels(all_guesses):
    """Every guess's box in whole pixels, as ``submission_line`` writes it (Python's
    round, half to even): the report is scored on exactly the submitted boxes."""
    return [[(label, tuple(float(round(v)) for v in box)) for label, box in guesses]
            for guesses in all_guesses]


def submission_line(guesses, label_ids=None):
    """One line of the devkit's Task 2 submission: ``label xmin ymin xmax ymax`` per
    guess, boxes as whole 1-based pixels; labels ``label_ids[class]`` (the devkit's
    ILSVRC2012_IDs, see ``devkit_label_ids``), else class + 1."""
    return " ".join("%d %d %d %d %d" % (
        (label_ids[label] if label_ids is not None else label + 1,)
        + tuple(int(round(v)) + 1 for v in box)) for label, box in list(guesses)[:MAX_GUESSES])


def box_to_center(box):
    """(xmin, ymin, xmax, ymax) with exclusive ends -> (centre x, centre y, width,
    height), the paper's box parameterisation (§A.1)."""
    box = np.asarray(box, dtype=np.float64)
    return np.stack([(box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2,
                     box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]], axis=-1)


def center_to_box(center):
    """The inverse of box_to_center."""
    center = np.asarray(center, dtype=np.float64)
    half_w, half_h = center[..., 2] / 2, center[..., 3] / 2
    return np.stack([center[..., 0] - half_w, center[..., 1] - half_h,
                     center[..., 0] + half_w, center[..., 1] + half_h], axis=-1)
