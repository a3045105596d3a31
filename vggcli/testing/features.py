"""``vgg features`` and ``vgg transfer``: very deep features for other datasets
(paper Appendix B).

Per image and scale Q: the net runs densely on the whole image rescaled to
shorter side Q, up to a named layer (``fc7`` in the paper); the descriptor map
is globally average-pooled and averaged with the flipped image's. Scales are
averaged (``mean``) or concatenated (``stack``); the result is L2-normalised;
several nets' descriptors are concatenated. A linear SVM on top (``transfer``)
is scored with the paper's metrics: accuracy, mean class recall (Caltech) or
mean average precision (VOC).
"""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.errors import VggError
from ..core.ndfile import NUMPY_READ_ERRORS, save_npz

AGGREGATES = ("mean", "stack")


class Describer:
    """Descriptors of one net at one layer."""

    def __init__(self, net, layer, mean_rgb, ctx, flip=True, batch_size=16,
                 int8_calibration=None, dtype="float32", fidelity_check=None):
        """``fidelity_check``: NCHW crops on which a fast path (INT8, 16-bit) is compared
        with float32 (``self.fidelity``)."""
        from .inference import DenseForward, fast_copy
        from ..nets.models import dense_form
        reference = dense_form(net, upto=layer, frozen=True)
        reference.hybridize(static_alloc=True)
        self.block = fast_copy(reference, net.knobs["crop_size"], ctx, int8_calibration,
                               dtype)
        self.fidelity = None
        if fidelity_check is not None and self.block is not reference:
            from .fast import fidelity
            self.fidelity = fidelity(reference, self.block, fidelity_check, ctx, scores=False)
        self.forward = DenseForward(mean_rgb, ctx, batch_size=batch_size, flip=flip)
        self.dims = [channels for name, channels, _ in net.feature_info if name == layer][0]

    def describe(self, images):
        """Same-shape HxWx3 images -> (N, dims), pooled and flip-averaged."""
        return self.forward.pooled(self.block, images)


def l2_normalise(x):
    from sklearn.preprocessing import normalize
    return normalize(x, norm="l2", axis=1)


def _describers(nets, means, layer, source, scales, ctx, flip, batch_size, int8_images,
                dtype):
    """One Describer per net, each in the precision asked for (calibrated and checked on
    its own crops), and the worst fidelity among them."""
    from .inference import fast_path_inputs

    describers = []
    for net, mean in zip(nets, means):
        # after the first net dtype is the resolved one: a fallback is decided (and
        # said) once
        dtype, calibration, check = fast_path_inputs(source, net.knobs["crop_size"],
                                                     min(scales), mean, int8_images, dtype,
                                                     ctx)
        describers.append(Describer(net, layer, mean, ctx, flip=flip, batch_size=batch_size,
                                    int8_calibration=calibration, dtype=dtype,
                                    fidelity_check=check))
    measured = [d.fidelity for d in describers if d.fidelity]
    return describers, dtype, (min(measured, key=lambda f: f["cosine_mean"]) if measured
                               else None)


def _descriptors(describers, images, scales, aggregate, l2, pool):
    """(len(images), dims) descriptors: per net, per scale, stacked or averaged."""
    from .inference import by_shape, rescaled

    blocks = []
    for describer in describers:
        per_scale = []
        for q in scales:
            resized = rescaled(images, q, pool)
            result = np.zeros((len(images), describer.dims), dtype=np.float32)
            for members in by_shape(resized):
                result[members] = describer.describe([resized[i] for i in members])
            per_scale.append(result)
        block = np.concatenate(per_scale, axis=1) if aggregate == "stack" else \
            np.mean(per_scale, axis=0)
        blocks.append(l2_normalise(block) if l2 else block)
    rows = np.concatenate(blocks, axis=1)
    return l2_normalise(rows) if l2 and len(describers) > 1 else rows


def _describe_all(describers, source, features, labels, scales, aggregate, l2, window,
                  progress):
    """Fill ``features``/``labels`` row by row with the readable images of ``source``;
    returns (ids written, skipped [{id, reason}])."""

    from tqdm import tqdm

    from ..core.env import available_cores

    from ..training.data import check_rescalable

    def load(position):
        try:
            image, label = source.image(position)
            check_rescalable(image, max(scales))
            return image, label
        except VggError as err:
            return err

    count, ids, skipped = len(source), [], []
    bar = tqdm(total=count, desc="features", unit="img", disable=not progress, leave=False)
    pool = ThreadPoolExecutor(available_cores())
    try:
        for start in range(0, count, window):
            positions = list(range(start, min(count, start + window)))
            decoded = list(pool.map(load, positions))
            good = [(p, d) for p, d in zip(positions, decoded) if not isinstance(d, VggError)]
            skipped += [dict(id=source.ids[p], reason=str(d)) for p, d in zip(positions, decoded)
                        if isinstance(d, VggError)]
            if good:  # rows are written contiguously, skipped images left out
                written = len(ids)
                features[written:written + len(good)] = _descriptors(
                    describers, [d[0] for _, d in good], scales, aggregate, l2, pool)
                labels[written:written + len(good)] = [d[1] for _, d in good]
                ids += [source.ids[p] for p, _ in good]
            bar.update(len(positions))
    finally:
        bar.close()
        pool.shutdown()
    return ids, skipped


def is_features_file(path):
    """Whether ``path`` is a file vgg features wrote (an .npz with our info record)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "info" in data.files and "features" in data.files
    except NUMPY_READ_ERRORS:
        return False


def extract(nets, layer, scales, out_path, images=None, data=None, aggregate="mean",
            flip=True, l2=True, batch_size=16, ctx=None, means=None, progress=True,
            window=64, int8_images=0, dtype="float32", overwrite=False, inputs=()):
    """Write descriptors of ``images`` (a folder) or ``data`` (a .rec) to ``out_path``
    (.npz: features, labels, ids, skipped_ids, info). Returns the info dict.

    ``nets``: networks whose descriptors are stacked; ``means``: their mean RGBs;
    ``dtype``: the precision asked for (bfloat16 falls back to float32, with a note,
    where the CPU has no AMX).
    """
    import mxnet as mx

    from data_tools.common import check_output, scratch_folder

    from .inference import FolderSource, RecordSource, check_scales, reserved_memmap

    if aggregate not in AGGREGATES:
        raise VggError("aggregate must be mean or stack, got %r" % (aggregate,))
    if bool(images) == bool(data):
        raise VggError("give exactly one of images (a folder) and data (a .rec)")
    out_path = out_path if out_path.endswith(".npz") else out_path + ".npz"
    check_output(out_path, "features", inputs=[images, data] + list(inputs),
                 overwrite=overwrite, recognise=is_features_file)
    for net in nets:
        check_scales(scales, net.knobs["crop_size"])
    source = FolderSource(images) if images else RecordSource(data)
    ctx = ctx or [mx.cpu()]
    describers, dtype, fidelity = _describers(nets, means, layer, source, scales, ctx, flip,
                                              batch_size, int8_images, dtype)
    dims = sum(d.dims * (len(scales) if aggregate == "stack" else 1) for d in describers)
    count = len(source)
    started = time.time()
    with scratch_folder(out_path) as rows_dir:
        features = reserved_memmap(os.path.join(rows_dir, "features.npy"), (count, dims), out_path)
        labels = np.full(count, -1, dtype=np.int64)
        ids, skipped = _describe_all(describers, source, features, labels, scales, aggregate,
                                     l2, window, progress)
        seconds = time.time() - started
        if not ids:
            raise VggError("no image of %s could be decoded" % (images or data))
        features.flush()
        info = dict(layer=layer, scales=scales, aggregate=aggregate, flip=flip, l2=l2,
                    precision="int8" if int8_images else dtype, fidelity=fidelity,
                    nets=[n.config for n in nets], dims=dims, images=len(ids),
                    skipped=len(skipped), class_names=source.class_names,
                    descriptors_per_second=len(ids) / seconds if seconds > 0 else None)
        write_features(out_path, features[:len(ids)],
                       labels[:len(ids)] if source.labelled else np.zeros(0, np.int64), ids,
                       [s["id"] for s in skipped], info)
        del features
    info["skipped_list"] = skipped
    info["path"] = out_path
    return info


def write_features(out_path, features, labels, ids, skipped_ids, info):
    """A ``vgg features`` file (the one layout load_features reads), written atomically;
    ``labels`` empty for unlabelled images."""
    from data_tools.common import atomic_output
    with atomic_output(out_path) as tmp_file, open(tmp_file, "wb") as f:
        # streams a memmap in chunks
        save_npz(f, features=features, labels=labels, ids=np.array(ids),
                 skipped_ids=np.array(list(skipped_ids) or [""])[:len(skipped_ids)],
                 info=np.array(json.dumps(info)))


def load_features(path):
    """(features, labels or None, ids, info) from a ``vgg features`` file."""
    if not os.path.isfile(path):
        raise VggError("features file %s does not exist" % path)
    try:
        with np.load(path, allow_pickle=False) as data:
            features, labels, ids = data["features"], data["labels"], data["ids"]
            info = json.loads(str(data["info"]))
    except NUMPY_READ_ERRORS as err:
        raise VggError("%s is not a vgg features file: %s" % (path, err)) from None
    problem = None
    if features.ndim != 2 or features.dtype.kind != "f":
        problem = "features are a %d-D %s array, not rows of floats" % (features.ndim,
                                                                         features.dtype)
    elif not np.all(np.isfinite(features)):
        problem = "features hold values that are not finite numbers"
    elif labels.ndim != 1 or labels.dtype.kind not in "iu" or \
            len(labels) not in (0, len(features)):
        problem = "%d labels (%s) for %d rows" % (len(labels), labels.dtype, len(features))
    elif ids.ndim != 1 or len(ids) != len(features):
        problem = "%d ids for %d rows" % (len(ids), len(features))
    elif not isinstance(info, dict):
        problem = "its info is not a JSON object"
    if problem:
        raise VggError("features file %s is damaged: %s" % (path, problem))
    return features, (labels if len(labels) else None), list(ids), info


# --- transfer --------------------------------------------------------------------

METRICS = ("accuracy", "mean-recall", "map")


def score(metric, y_true, decision, classes):
    """The paper's metrics (scikit-learn's): accuracy, mean class recall over the
    test set's classes (Caltech), mean average precision (VOC); ``decision`` is
    (N, classes) one-vs-rest scores. Returns (value, per-class dict or None)."""
    from sklearn.metrics import accuracy_score, average_precision_score, recall_score

    predicted = np.asarray(classes)[np.argmax(decision, axis=1)]
    if metric == "accuracy":
        return float(accuracy_score(y_true, predicted)), None
    if metric == "mean-recall":
        present = [c for c in classes if np.any(y_true == c)]
        recalls = recall_score(y_true, predicted, labels=present, average=None,
                               zero_division=0)
        return float(np.mean(recalls)), dict(zip(map(int, present), map(float, recalls)))
    if metric == "map":
        aps = [float(average_precision_score(y_true == c, decision[:, i]))
               if np.any(y_true == c) else float("nan") for i, c in enumerate(classes)]
        return float(np.nanmean(aps)), dict(zip(map(int, classes), aps))
    raise VggError("metric must be one of %s, got %r" % (", ".join(METRICS), metric))


def transfer(train_path, test_path, metric="accuracy", out_dir=None, c_values=None, folds=3,
             seed=0, overwrite=False):
    """Linear SVM (LinearSVC, C by cross-validation on the training features), scored on
    the test features. Returns the report dict; writes classifier.npz + reports to
    ``out_dir`` (output policy: ``overwrite`` replaces a previous transfer output)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import LinearSVC

    from data_tools.common import check_output

    if out_dir:
        check_output(out_dir, "transfer", inputs=[train_path, test_path], overwrite=overwrite)

    x_train, y_train, _, info_train = load_features(train_path)
    x_test, y_test, _, info_test = load_features(test_path)
    if y_train is None or y_test is None:
        raise VggError("transfer needs labelled features (a .rec, or a folder of class "
                       "folders) for both --train and --test")
    if x_train.shape[1] != x_test.shape[1]:
        raise VggError("%s has %d-dimensional features, %s has %d" % (
            train_path, x_train.shape[1], test_path, x_test.shape[1]))
    if metric not in METRICS:
        raise VggError("metric must be one of %s, got %r" % (", ".join(METRICS), metric))
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise VggError("%s has a single class: nothing to learn" % train_path)
    c_values = c_values or [0.01, 0.1, 1.0, 10.0]
    smallest = np.bincount(y_train).min() if len(y_train) else 0
    folds = max(2, min(folds, int(smallest)))
    search = GridSearchCV(LinearSVC(dual=True, max_iter=20000, random_state=seed),
                          {"C": c_values}, cv=StratifiedKFold(folds, shuffle=True,
                                                              random_state=seed))
    search.fit(x_train, y_train)
    model = search.best_estimator_
    decision = model.decision_function(x_test)
    if decision.ndim == 1:  # two classes: one column of scores for classes[1]
        decision = np.stack([-decision, decision], axis=1)
    value, per_class = score(metric, y_test, decision, model.classes_)
    report = dict(metric=metric, value=value, per_class=per_class, C=float(model.C),
                  cv_folds=folds, train=train_path, test=test_path,
                  train_images=len(y_train), test_images=len(y_test),
                  dims=int(x_train.shape[1]), layer=info_train.get("layer"),
                  nets=info_train.get("nets"), scales=info_train.get("scales"),
                  aggregate=info_train.get("aggregate"))
    if out_dir:
        _write_transfer(out_dir, model, report, info_test.get("class_names") or [])
    return report


def _write_transfer(out_dir, model, report, names):
    """classifier.npz, report.json and report.md, written as one output folder."""
    from data_tools.common import atomic_output

    from ..nets.tables import markdown_table

    coef = model.coef_ if len(model.classes_) > 2 else np.stack([-model.coef_[0],
                                                                  model.coef_[0]])
    rows = [["%s (%s)" % (names[c], c) if c < len(names) else c, "%.4f" % v]
            for c, v in (report["per_class"] or {}).items()]
    with atomic_output(out_dir, folder=True, kind="transfer") as folder:
        save_npz(os.path.join(folder, "classifier.npz"), coef=coef,
                 intercept=np.atleast_1d(model.intercept_), classes=model.classes_,
                 C=model.C)
        with open(os.path.join(folder, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(folder, "report.md"), "w", encoding="utf-8",
                  errors="backslashreplace") as f:  # paths that are not UTF-8
            f.write("# vgg transfer: %s = %.4f\n\nLinear SVM, C = %g (%d-fold CV), %d-D %s "
                    "features of %s at Q = %s (%s).\n\n%s\n" % (
                        report["metric"], report["value"], model.C, report["cv_folds"],
                        report["dims"], report["layer"], " & ".join(report["nets"] or []),
                        report["scales"], report["aggregate"],
                        markdown_table(["class", report["metric"]], rows) if rows else ""))
