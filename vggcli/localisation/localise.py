"""``vgg localise``: the paper's localisation testing (Appendix A.2) and its fusion.

Two protocols, on the records of a split that have boxes (``val.box.idx``):

- ``center`` (Table 8): each image rescaled to Q, its central crop given to the
  localisation net, the box of the ground-truth class taken (PCR; SCR has one
  box); the error is the share of images whose box misses every ground-truth box
  of that class (IoU < 0.5, the devkit's inclusive pixels).
- ``dense`` (Table 9): the localisation net applied to the whole image at each
  scale Q (its fully convolutional form: one box per location, per class for
  PCR), the classification net applied the same way. The image's class scores
  are the classification net's soft-max averaged over locations and scales; for
  each of the top 5 classes, the boxes of every location and scale are merged
  greedily (``greedy_merge``, after OverFeat) and the merged box with the
  highest summed class score is that class's guess. Errors for k = 1..5 guesses.

Both protocols also score two baselines with the same classes: the whole image,
and a fixed central box (the middle half of each side), so a number says how much
the net adds. A box from the net is (centre x, centre y, width, height) in units
of the crop side, in the crop's (location's) window; it is mapped back to the
original image's pixels (the record's header keeps the original size).

Our own code: MXNet and GluonCV have no box-regression testing of this kind.
"""
import json
import os

import numpy as np

from data_tools.common import atomic_output, check_output, printable

from ..core.errors import VggError
from .scoring import MAX_GUESSES, localisation_errors, submission_line, whole_pixels
from ..testing.submission import label_ids_of, same_label_ids

MODES = ("center", "dense")
STRIDE = 32  # pool5's stride: the dense output's locations are this far apart
MERGE_THRESHOLD = 1.0
CENTRAL_BOX = (0.25, 0.75)  # the baseline's fixed box: the middle half of each side
KIND = "localise"


# --- boxes between the net's frame and the image's -------------------------------------

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
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height - 1)
    return boxes


def baseline_boxes(width, height):
    """{name: box}: the whole image and the fixed central box."""
    low, high = CENTRAL_BOX
    return {"whole image": (0.0, 0.0, width - 1.0, height - 1.0),
            "central box": (low * width, low * height, high * width - 1, high * height - 1)}


# --- OverFeat's greedy merging ---------------------------------------------------------

def match_scores(box, boxes):
    """How far ``box`` is from each of ``boxes`` (rows x0, y0, x1, y1): the distance of
    the centres over the pair's mean side, plus 1 - IoU (inclusive pixels). NOTE:
    OverFeat's text adds the raw intersection area to the centre distance, which
    would keep overlapping boxes apart; 1 - IoU makes overlap count for merging, as
    its description of the procedure intends."""
    box, boxes = np.asarray(box, dtype=np.float64), np.asarray(boxes, dtype=np.float64)
    sides, side = boxes[:, 2:] - boxes[:, :2] + 1, box[2:] - box[:2] + 1
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - (box[:2] + box[2:]) / 2,
                              axis=1)
    mean_side = np.maximum((sides.sum(axis=1) + side.sum()) / 4, 1e-9)
    inter = np.clip(np.minimum(boxes[:, 2:], box[2:]) - np.maximum(boxes[:, :2], box[:2]) + 1,
                    0, None).prod(axis=1)
    union = sides.prod(axis=1) + side.prod() - inter
    return distance / mean_side + 1 - inter / np.maximum(union, 1e-9)


def greedy_merge(boxes, scores, threshold=MERGE_THRESHOLD):
    """(boxes, scores) after OverFeat's greedy merge: while the closest pair of boxes
    has a match score under ``threshold``, replace it by the mean of the two boxes
    with the sum of their scores. The pair matrix is built once and updated by a
    row per merge (O(n^2) work in numpy, for the hundreds of boxes of a class)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(boxes) < 2:
        return list(boxes), list(scores)
    pairs = np.stack([match_scores(box, boxes) for box in boxes])
    np.fill_diagonal(pairs, np.inf)
    while len(boxes) > 1:
        flat = int(np.argmin(pairs))
        i, j = divmod(flat, len(boxes))
        if pairs[i, j] > threshold:
            break
        merged, total = (boxes[i] + boxes[j]) / 2, scores[i] + scores[j]
        keep = np.ones(len(boxes), dtype=bool)
        keep[[i, j]] = False
        boxes, scores = np.vstack([boxes[keep], merged]), np.append(scores[keep], total)
        row = match_scores(merged, boxes)
        row[-1] = np.inf
        pairs = pairs[keep][:, keep]
        pairs = np.vstack([np.hstack([pairs, row[:-1, None]]), row[None]])
    return list(boxes), list(scores)


def best_box(boxes, scores, threshold=MERGE_THRESHOLD):
    merged, totals = greedy_merge(boxes, scores, threshold)
    return merged[int(np.argmax(totals))]


# --- the data ---------------------------------------------------------------------------

class BoxRecords:
    """The records of a .rec that have boxes (its ``.box.idx``): image, class, the
    ground truth in source pixels, the source size and the image's id."""

    def __init__(self, rec):
        from ..training.data import RecordImages
        from ..testing.inference import record_ids
        index = os.path.splitext(rec)[0] + ".box.idx"
        if not os.path.isfile(index):
            raise VggError("%s not found: localisation is tested on records with boxes; "
                           "pack the data with boxes (vgg pack --boxes, vgg pack-imagenet "
                           "--val-boxes)" % printable(index))
        self.records = RecordImages(rec, index_path=index)
        total = RecordImages(rec).total
        ids = record_ids(rec, total)
        if self.records.keys.max() >= total:
            raise VggError("%s names record %d; %s has %d"
                           % (index, self.records.keys.max(), rec, total))
        self.ids = [ids[key] for key in self.records.keys]

    def __len__(self):
        return len(self.records)

    def truth(self, position):
        """(label, truths [(class, box)], (source width, height)), from the record's
        header (its image is decoded only for a label that does not keep the source
        size)."""
        label, extra = self.records.labels(position)
        return self._truth(position, label, extra, None)

    def get(self, position):
        """(image, label, truths [(class, box)], (source width, height))."""
        image, label, extra = self.records.record(position)
        return (image,) + self._truth(position, label, extra, image)

    def _truth(self, position, label, extra, image):
        from data_tools.boxes import objects_in_pixels, parse_label
        try:
            objects, source = parse_label(extra)
        except VggError as err:
            raise VggError("%s: record %d: %s" % (self.records.rec_path, position, err)) \
                from None
        if source is None:
            image = self.records.record(position)[0] if image is None else image
            source = (float(image.shape[1]), float(image.shape[0]))
        return label, objects_in_pixels(objects, *source), source


# --- the nets ---------------------------------------------------------------------------

def load_localiser(path, devices):
    """(InferenceNet, task, classes) of a localisation net's params file."""
    from ..testing.inference import load_for_inference
    loaded = load_for_inference(path, devices=devices)
    meta = loaded.net.file_meta
    task = meta.get("task")
    if task not in ("scr", "pcr"):
        raise VggError("params file %s is not a localisation net (train one with vgg train "
                       "--task scr or pcr)" % printable(path))
    classes = meta.get("task_classes")
    if not isinstance(classes, int) or classes < 1:
        raise VggError("params file %s does not record its class count" % printable(path))
    return loaded, task, classes


def box_columns(task, label):
    """Which of the net's outputs are the box of class ``label``."""
    start = 4 * label if task == "pcr" else 0
    return slice(start, start + 4)


# --- the protocols ----------------------------------------------------------------------

def _progress(total, desc, enabled):
    from ..training.train_state import progress_factory
    return progress_factory(enabled)(total, 0, desc)


def center_protocol(loc, task, records, scale, batch_size=32, progress=True):
    """Per image [(ground-truth class, box)] from the central crop at Q = ``scale``."""
    from ..training.data import center_crop_box, rescale_shorter_side
    from ..testing.inference import DenseForward

    net = loc.net
    crop = net.knobs["crop_size"]
    net.hybridize(static_alloc=True)
    forward = DenseForward(loc.mean_rgb, loc.ctx, batch_size=batch_size, flip=False)
    guesses, bar = [], _progress(len(records), "localise (centre crop)", progress)
    for start in range(0, len(records), batch_size):
        crops, places = [], []
        for position in range(start, min(start + batch_size, len(records))):
            image, label, _, (width, height) = records.get(position)
            rescaled = rescale_shorter_side(image, scale)
            top, left = center_crop_box(rescaled.shape[0], rescaled.shape[1], crop)
            crops.append(rescaled[top:top + crop, left:left + crop])
            ratio = (width / rescaled.shape[1], height / rescaled.shape[0])
            places.append((label, (left, top), ratio, width, height))
        out = forward.run(net, np.stack(crops))
        for row, (label, origin, ratio, width, height) in zip(out, places):
            box = to_source_boxes(row[box_columns(task, label)], origin, crop, ratio)
            guesses.append([(label, tuple(clip_boxes(box, width, height)[0]))])
        bar.update(len(crops))
    bar.close()
    return guesses


def dense_maps(block, forward, image):
    """The dense block's output for one HxWx3 image: (channels, rows, columns)."""
    return forward.run(block, image[None])[0]


def shift_offsets(shifts):
    """Pixel offsets (per axis) at which the dense nets also run: ``shifts`` steps of
    STRIDE / shifts, so locations are STRIDE / shifts apart instead of STRIDE."""
    if shifts < 1 or STRIDE % shifts:
        raise VggError("--shifts must divide %d, got %d" % (STRIDE, shifts))
    return [step * STRIDE // shifts for step in range(shifts)]


def dense_candidates(loc, task, classifier, records, scales, shifts=1, progress=True):
    """Per image: (the classification net's top-5 (class, score)), and its candidates
    {class: [(score, box)]} for those classes from every location and scale.

    ``shifts`` > 1 also runs both nets on the image shifted by fractions of the
    stride (OverFeat's offsets), for locations STRIDE / shifts apart. NOTE: the
    paper's dense output has locations 32 px apart for a 224 crop (1/7 of it);
    a scaled-down study with 32 px crops needs shifts to keep that geometry, or
    an image of 54 px gives a single location."""
    from ..training.data import rescale_shorter_side
    from ..testing.evaluate import softmax
    from ..testing.inference import DenseForward
    from ..nets.models import dense_form

    crop = loc.net.knobs["crop_size"]
    if classifier.net.knobs["crop_size"] != crop:
        raise VggError("the classification net's crop (%d) differs from the localisation "
                       "net's (%d): their dense outputs would not share locations"
                       % (classifier.net.knobs["crop_size"], crop))
    loc_dense, cls_dense = dense_form(loc.net, frozen=True), dense_form(classifier.net,
                                                                        frozen=True)
    loc_dense.hybridize(static_alloc=True)
    cls_dense.hybridize(static_alloc=True)
    loc_forward = DenseForward(loc.mean_rgb, loc.ctx, flip=False)
    cls_forward = DenseForward(classifier.mean_rgb, classifier.ctx, flip=False)
    offsets = shift_offsets(shifts)
    results, bar = [], _progress(len(records), "localise (dense)", progress)
    for position in range(len(records)):
        image, _, _, (width, height) = records.get(position)
        maps = []
        for scale in scales:
            rescaled = rescale_shorter_side(image, scale)
            ratio = (width / rescaled.shape[1], height / rescaled.shape[0])
            for dy in offsets:
                for dx in offsets:
                    if min(rescaled.shape[0] - dy, rescaled.shape[1] - dx) < crop:
                        continue
                    part = np.ascontiguousarray(rescaled[dy:, dx:])
                    boxes = dense_maps(loc_dense, loc_forward, part)
                    scores = dense_maps(cls_dense, cls_forward, part)
                    scores = softmax(scores.reshape(scores.shape[0], -1).T).T.reshape(
                        scores.shape)
                    maps.append((boxes, scores, ratio, (dx, dy)))
        posterior = np.mean([s.reshape(s.shape[0], -1).mean(axis=1) for _, s, _, _ in maps],
                            axis=0)
        top = np.argsort(-posterior, kind="stable")[:MAX_GUESSES]
        candidates = {}
        for label in top:
            found_scores, found_boxes = [], []
            for boxes, scores, ratio, (dx, dy) in maps:
                grid_rows, grid_cols = boxes.shape[1:]
                cols, rows = np.meshgrid(np.arange(grid_cols), np.arange(grid_rows))
                centres = boxes[box_columns(task, int(label))].reshape(4, -1).T
                origins = np.stack([STRIDE * cols.ravel() + dx, STRIDE * rows.ravel() + dy],
                                   axis=1)
                found_boxes.append(clip_boxes(to_source_boxes(centres, origins, crop, ratio),
                                              width, height))
                # each box scored by its location's class score (by the whole map's mean
                # when the classification net's map has another size)
                found_scores.append(scores[label].ravel() if scores.shape[1:] == boxes.shape[1:]
                                    else np.full(grid_rows * grid_cols, scores[label].mean()))
            candidates[int(label)] = (np.concatenate(found_scores), np.concatenate(found_boxes))
        results.append(([(int(c), float(posterior[c])) for c in top], candidates))
        bar.update(1)
    bar.close()
    return results


def guesses_from_candidates(results, threshold=MERGE_THRESHOLD):
    """Per image up to 5 (class, box): the classes by score, each with its best merged
    box."""
    guesses = []
    for top, candidates in results:
        row = []
        for label, _ in top:
            scores, boxes = candidates.get(label, ((), ()))
            if len(scores):
                row.append((label, tuple(best_box(boxes, scores, threshold))))
        guesses.append(row)
    return guesses


# --- running it and the reports ----------------------------------------------------------

def _truths(records):
    """Every image's ground truth and source size, from the record headers."""
    found = [records.truth(position)[1:] for position in range(len(records))]
    return [truth for truth, _ in found], [size for _, size in found]


def _baselines(guesses, sizes):
    """{name: errors}: each guess's class with the whole image or the central box."""
    out = {}
    for name in baseline_boxes(1, 1):
        fixed = [[(label, baseline_boxes(*size)[name]) for label, _ in row]
                 for row, size in zip(guesses, sizes)]
        out[name] = fixed
    return out


def devkit_label_ids(devkit, class_names):
    """ILSVRC2012_ID of each class (sorted-WNID order) from the devkit's meta.mat."""
    from data_tools.sources import devkit_synsets
    _, ids_to_wnid = devkit_synsets(devkit)
    by_wnid = {wnid: ilsvrc_id for ilsvrc_id, wnid in ids_to_wnid.items()}
    names = [name.split()[0] for name in class_names]
    missing = [n for n in names if n not in by_wnid]
    if missing:
        raise VggError("--devkit %s does not know the classes %s" % (devkit, missing[:3]))
    return [by_wnid[n] for n in names]


def localise(params, data, out_dir, mode="center", scales=None, classifier=None,
             devices=(("cpu", 0),), batch_size=32, threshold=MERGE_THRESHOLD, devkit=None,
             shifts=1, overwrite=False, progress=True):
    """Run a protocol (``MODES``) and write ``out_dir``: report.json / report.md
    (errors at k = 1..5, the baselines), submission.txt (the devkit's Task 2 lines),
    ids.txt, and for ``dense`` the candidates ``fuse_localisation`` merges
    (``save_candidates``).
    Returns the report."""
    from ..testing.evaluate import parse_scales
    from ..testing.inference import check_scales

    if mode not in MODES:
        raise VggError("--mode must be one of %s, got %r" % (", ".join(MODES), mode))
    if mode == "dense" and not classifier:
        raise VggError("--mode dense needs --classifier: the classification net whose "
                       "scores choose the classes (Appendix A.2)")
    shift_offsets(shifts)  # refused before any work
    check_output(out_dir, KIND, inputs=[params, data, classifier, devkit], overwrite=overwrite)
    loc, task, classes = load_localiser(params, devices)
    if isinstance(scales, str):
        scales = parse_scales(scales)
    scales = list(scales) if scales else loc.default_scales(params)
    check_scales(scales, loc.net.knobs["crop_size"])
    records = BoxRecords(data)
    label_ids = devkit_label_ids(devkit, loc.class_names) if devkit else \
        label_ids_of(data, len(loc.class_names))
    truths, sizes = _truths(records)
    candidates = None
    if mode == "center":
        if len(scales) != 1:
            raise VggError("--mode center takes one scale (Table 8), got %s"
                           % ",".join(map(str, scales)))
        guesses = center_protocol(loc, task, records, scales[0], batch_size, progress)
    else:
        from ..testing.inference import load_for_inference
        classifier_net = load_for_inference(classifier, devices=devices)
        if classifier_net.net.file_meta.get("task", "classify") != "classify":
            raise VggError("--classifier %s is a localisation net, not a classification net"
                           % printable(classifier))
        candidates = dense_candidates(loc, task, classifier_net, records, scales, shifts,
                                      progress)
        guesses = guesses_from_candidates(candidates, threshold)
    report = dict(kind=KIND, mode=mode, task=task, params=os.path.abspath(params),
                  classifier=classifier and os.path.abspath(classifier), data=data,
                  scales=scales, images=len(records), merge_threshold=threshold,
                  shifts=shifts if mode == "dense" else None, label_ids=label_ids)
    _score(report, guesses, truths, sizes)
    with atomic_output(out_dir, folder=True, kind=KIND) as tmp:
        _write(tmp, report, records.ids, guesses, label_ids, candidates, truths, sizes)
    return report


def _score(report, guesses, truths, sizes):
    """The errors of the boxes as submitted (whole pixels), and of the baselines'."""
    ks = range(1, MAX_GUESSES + 1)
    report["errors"] = {str(k): v for k, v in localisation_errors(
        whole_pixels(guesses), truths, ks).items()}
    report["baselines"] = {name: {str(k): v for k, v in
                                  localisation_errors(whole_pixels(fixed), truths, ks).items()}
                           for name, fixed in _baselines(guesses, sizes).items()}


def _write(folder, report, ids, guesses, label_ids, candidates, truths, sizes):
    guesses = whole_pixels(guesses)
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8",
              errors="backslashreplace") as f:  # paths that are not UTF-8
        f.write(report_markdown(report))
    with open(os.path.join(folder, "submission.txt"), "w") as f:
        f.writelines(submission_line(row, label_ids) + "\n" for row in guesses)
    with open(os.path.join(folder, "ids.txt"), "w") as f:
        f.writelines(i + "\n" for i in ids)
    if candidates is not None:
        save_candidates(folder, candidates, truths, sizes)


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

    from ..testing.evaluate import _load_array
    top = _load_array(os.path.join(folder, "top.npy"), 3, "f")
    rows = _load_array(os.path.join(folder, "candidates.npy"), 2, "f")
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
    import math

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    try:
        truths = [[(int(c), tuple(float(v) for v in b)) for c, b in row]
                  for row in data["truths"]]
        sizes = [tuple(size) for size in data["sizes"]]
        good = all(isinstance(c, int) and not isinstance(c, bool) and len(b) == 4 and
                   all(number(v) for v in b) for row in data["truths"] for c, b in row) and \
            all(len(size) == 2 and all(number(v) and v > 0 for v in size) for size in sizes)
    except (TypeError, ValueError, OverflowError):
        good = False
    if not good:
        raise VggError("%s: truths.json is damaged (truths must be [class, [x0, y0, x1, y1]] "
                       "per object, sizes [height, width] per image)" % printable(folder))
    return truths, sizes


def report_markdown(report):
    ks = [str(k) for k in range(1, MAX_GUESSES + 1)]
    what = ("central crop, the ground-truth class" if report["mode"] == "center" else
            "dense, classes from the classification net")
    lines = ["# Localisation error (%s, %s, Q = %s)" % (
        report["task"].upper() if report.get("task") else "fusion", what,
        ",".join(map(str, report["scales"]))), "",
        "%d images; a guess is right when its class is the ground truth's and its box "
        "has IoU >= 0.5 with one of that class's boxes (the ILSVRC devkit's rule)."
        % report["images"], "",
        "| boxes | " + " | ".join("top-%s err %%" % k for k in ks) + " |",
        "|---|" + "---|" * len(ks)]
    rows = [("the net" if report["mode"] != "fusion" else "fusion", report["errors"])]
    rows += [("baseline: %s" % name, errors) for name, errors in report["baselines"].items()]
    for name, errors in rows:
        lines.append("| %s | " % name + " | ".join("%.1f" % (100 * errors[k]) for k in ks)
                     + " |")
    if report["mode"] == "center":
        lines += ["", "With the ground-truth class there is one guess per image: every "
                  "column is the top-1 error (the paper's Table 8)."]
    return "\n".join(lines) + "\n"


def is_localise_output(folder):
    from data_tools.common import output_kind
    return output_kind(folder) == KIND


def fuse_localisation(folders, out_dir, threshold=MERGE_THRESHOLD, overwrite=False):
    """Table 9's fusion of dense localisation outputs: class scores averaged, and each
    class's candidate boxes from every net merged together."""
    from data_tools.common import read_json, read_lines
    if len(folders) < 2:
        raise VggError("fusion needs at least two localisation outputs")
    check_output(out_dir, "fuse", inputs=folders, overwrite=overwrite)
    loaded, ids = [], None
    for folder in folders:
        report = read_json(os.path.join(folder, "report.json"), "localisation report",
                           required=("mode", "scales"))
        if report["mode"] != "dense":
            raise VggError("%s is a %s-protocol output; fusion merges dense ones"
                           % (printable(folder), report["mode"]))
        these = read_lines(os.path.join(folder, "ids.txt"), "image list")
        if ids is not None and these != ids:
            raise VggError("%s scored other images than %s" % (printable(folder),
                                                               printable(folders[0])))
        ids = these
        loaded.append((report, load_candidates(folder)))
    label_ids = same_label_ids([report for report, _ in loaded], folders)
    if label_ids is not None:
        for folder, (_, (images, _, _)) in zip(folders, loaded):
            if any(c >= len(label_ids) for top, found in images
                   for c in [c for c, _ in top] + list(found)):
                raise VggError("%s: a class number past its %d labelled classes"
                               % (printable(folder), len(label_ids)))
    results = []
    for per_net in zip(*[images for _, (images, _, _) in loaded]):
        scores, merged = {}, {}
        for top, found in per_net:
            for label, score in top:
                scores[label] = scores.get(label, 0.0) + score / len(per_net)
            for label, (their_scores, boxes) in found.items():
                merged.setdefault(label, []).append((their_scores, boxes))
        merged = {label: (np.concatenate([s for s, _ in parts]),
                          np.concatenate([b for _, b in parts]))
                  for label, parts in merged.items()}
        top = sorted(scores.items(), key=lambda item: -item[1])[:MAX_GUESSES]
        results.append((top, merged))
    guesses = guesses_from_candidates(results, threshold)
    _, truths, sizes = loaded[0][1]
    report = dict(kind=KIND, mode="fusion", task=None, members=[os.path.abspath(f)
                                                                 for f in folders],
                  scales=sorted({q for r, _ in loaded for q in r["scales"]}),
                  images=len(ids), merge_threshold=threshold, label_ids=label_ids)
    _score(report, guesses, truths, sizes)
    with atomic_output(out_dir, folder=True, kind="fuse") as tmp:
        _write(tmp, report, ids, guesses, label_ids, None, truths, sizes)
    return report
