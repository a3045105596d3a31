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
import os

import numpy as np

from data_tools.common import atomic_output, check_output, printable

from ..core.errors import VggError
from ..testing.submission import label_ids_of
from .dense import dense_candidates, shift_offsets
from .geometry import box_columns, clip_boxes, to_source_boxes
from .merge import MERGE_THRESHOLD, guesses_from_candidates
from .report import KIND, score_report, write_outputs

MODES = ("center", "dense")


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


def _truths(records):
    """Every image's ground truth and source size, from the record headers."""
    found = [records.truth(position)[1:] for position in range(len(records))]
    return [truth for truth, _ in found], [size for _, size in found]


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
                                      batch_size=batch_size, progress=progress)
        guesses = guesses_from_candidates(candidates, threshold)
    report = dict(kind=KIND, mode=mode, task=task, params=os.path.abspath(params),
                  classifier=classifier and os.path.abspath(classifier), data=data,
                  scales=scales, images=len(records), merge_threshold=threshold,
                  shifts=shifts if mode == "dense" else None, label_ids=label_ids)
    score_report(report, guesses, truths, sizes)
    with atomic_output(out_dir, folder=True, kind=KIND) as tmp:
        write_outputs(tmp, report, records.ids, guesses, label_ids, candidates, truths, sizes)
    return report
