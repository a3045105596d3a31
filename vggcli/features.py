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
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import VggError
from .precision import resolve

AGGREGATES = ("mean", "stack")


class Describer:
    """Descriptors of one net at one layer."""

    def __init__(self, net, layer, mean_rgb, ctx, flip=True, batch_size=16,
                 int8_calibration=None, dtype="float32", fidelity_check=None):
        """``fidelity_check``: NCHW crops on which a fast path (INT8, 16-bit) is compared
        with float32 (``self.fidelity``)."""
        from .models import dense_form
        self.block = reference = dense_form(net, upto=layer, frozen=True)
        self.block.hybridize(static_alloc=True)
        if int8_calibration is not None:
            from .fast import quantize
            self.block = quantize(self.block, int8_calibration, ctx)
        elif dtype != "float32":
            from .precision import check_devices, convert_for_inference
            check_devices(dtype, ctx)
            crop = net.knobs["crop_size"]
            self.block = convert_for_inference(self.block, dtype,
                                               np.zeros((1, 3, crop, crop), np.float32), ctx)
        self.fidelity = None
        if fidelity_check is not None and self.block is not reference:
            from .fast import fidelity
            self.fidelity = fidelity(reference, self.block, fidelity_check, ctx, scores=False)
        self.mean = np.asarray(mean_rgb, dtype=np.float32).reshape(1, 1, 1, 3)
        self.ctx, self.flip, self.batch_size = ctx, flip, batch_size
        self.dims = [channels for name, channels, _ in net.feature_info if name == layer][0]

    def describe(self, images):
        """Same-shape HxWx3 images -> (N, dims), pooled and flip-averaged."""
        import mxnet as mx
        from mxnet import gluon
        images = np.stack(images)
        batch = np.concatenate([images, images[:, :, ::-1]]) if self.flip else images
        out = []
        for start in range(0, len(batch), self.batch_size):
            x = mx.nd.array((batch[start:start + self.batch_size].astype(np.float32)
                             - self.mean).transpose(0, 3, 1, 2))
            for part in gluon.utils.split_and_load(x, self.ctx, even_split=False):
                out.append(self.block(part).mean(axis=(2, 3)).asnumpy())
        pooled = np.concatenate(out)
        if self.flip:
            return (pooled[:len(images)] + pooled[len(images):]) / 2
        return pooled


def l2_normalise(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _folder_images(folder):
    """(paths, labels or None, class names) of a folder: flat, or one sub-folder per class."""
    from data_tools.sources import IMAGE_EXTENSIONS

    if not os.path.isdir(folder):
        raise VggError("image folder %s does not exist" % folder)
    subdirs = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if subdirs:
        paths, labels = [], []
        for label, name in enumerate(subdirs):
            for root, dirs, files in os.walk(os.path.join(folder, name)):
                dirs.sort()
                for file in sorted(files):
                    if file.lower().endswith(IMAGE_EXTENSIONS):
                        paths.append(os.path.join(root, file))
                        labels.append(label)
        found = (paths, labels, subdirs)
    else:
        paths = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                       if n.lower().endswith(IMAGE_EXTENSIONS))
        found = (paths, None, [])
    if not found[0]:
        raise VggError("no images in %s" % folder)
    return found


class _FolderSource:
    def __init__(self, folder):
        self.folder = folder
        self.paths, self.labels, self.class_names = _folder_images(folder)
        self.ids = [os.path.relpath(p, folder).replace(os.sep, "/") for p in self.paths]

    def __len__(self):
        return len(self.paths)

    def image(self, position):
        import cv2
        image = cv2.imread(self.paths[position], cv2.IMREAD_COLOR)
        if image is None:
            raise VggError("cannot decode")
        return image[:, :, ::-1], (self.labels[position] if self.labels else -1)


class _RecordSource:
    def __init__(self, rec):
        from .data import RecordImages
        from .evaluate import _record_ids
        self.records = RecordImages(rec)
        self.ids = _record_ids(rec, len(self.records))
        self.labels, self.class_names = True, []

    def __len__(self):
        return len(self.records)

    def image(self, position):
        return self.records.image(position)


def extract(nets, layer, scales, out_path, images=None, data=None, aggregate="mean",
            flip=True, l2=True, batch_size=16, ctx=None, means=None, progress=True,
            window=64, workers=None, int8_images=0, dtype="float32"):
    """Write descriptors of ``images`` (a folder) or ``data`` (a .rec) to ``out_path``
    (.npz: features, labels, ids, skipped_ids, info). Returns the info dict.

    ``nets``: networks whose descriptors are stacked; ``means``: their mean RGBs;
    ``dtype``: the precision asked for (bfloat16 falls back to float32, with a note,
    where the CPU has no AMX).
    """
    import mxnet as mx
    from tqdm import tqdm

    from ._env import available_cores
    from .data import rescale_shorter_side

    if aggregate not in AGGREGATES:
        raise VggError("aggregate must be mean or stack, got %r" % (aggregate,))
    if bool(images) == bool(data):
        raise VggError("give exactly one of images (a folder) and data (a .rec)")
    source = _FolderSource(images) if images else _RecordSource(data)
    ctx = ctx or [mx.cpu()]
    calibrations = [None] * len(nets)
    if int8_images and dtype != "float32":
        raise VggError("choose one of --int8 and --dtype %s" % dtype)
    dtype = resolve(dtype)
    if int8_images:
        from .fast import calibration_batch
        calibrations = [calibration_batch(source.image, int8_images, len(source),
                                          net.knobs["crop_size"], min(scales), mean)
                        for net, mean in zip(nets, means)]
    checks = [None] * len(nets)
    if int8_images or dtype != "float32":  # how closely the fast path follows float32
        from .fast import fidelity_batch
        checks = [fidelity_batch(source.image, len(source), net.knobs["crop_size"],
                                 min(scales), mean, after=int8_images)
                  for net, mean in zip(nets, means)]
    describers = [Describer(net, layer, mean, ctx, flip=flip, batch_size=batch_size,
                            int8_calibration=calibration, dtype=dtype, fidelity_check=check)
                  for net, mean, calibration, check in zip(nets, means, calibrations, checks)]
    measured = [d.fidelity for d in describers if d.fidelity]
    fidelity = min(measured, key=lambda f: f["cosine_mean"]) if measured else None
    too_small = [q for q in scales for net in nets if q < net.knobs["crop_size"]]
    if too_small:
        raise VggError("scale %d is smaller than the crop size: the dense net needs Q >= crop"
                       % too_small[0])
    per_net = [d.dims * (len(scales) if aggregate == "stack" else 1) for d in describers]
    dims = sum(per_net)
    out_path = out_path if out_path.endswith(".npz") else out_path + ".npz"
    tmp_dir = out_path + ".tmp-%d" % os.getpid()
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    count = len(source)
    features = np.lib.format.open_memmap(os.path.join(tmp_dir, "features.npy"), mode="w+",
                                         dtype=np.float32, shape=(count, dims))
    labels = np.full(count, -1, dtype=np.int64)
    ids, skipped, written = [], [], 0  # rows are written contiguously, skipped ones left out
    started = time.time()
    bar = tqdm(total=count, desc="features", unit="img", disable=not progress, leave=False)
    pool = ThreadPoolExecutor(workers or available_cores())

    def load(position):
        try:
            return source.image(position)
        except VggError as err:
            return err

    try:
        for start in range(0, count, window):
            positions = list(range(start, min(count, start + window)))
            decoded = list(pool.map(load, positions))
            good = [(p, d) for p, d in zip(positions, decoded) if not isinstance(d, VggError)]
            skipped += [dict(id=source.ids[p], reason=str(d)) for p, d in zip(positions, decoded)
                        if isinstance(d, VggError)]
            blocks = []  # per net: (len(good), per-net dims)
            for describer in describers:
                per_scale = []
                for q in scales:
                    resized = list(pool.map(lambda d, q=q: rescale_shorter_side(d[1][0], q),
                                            good))
                    result = np.zeros((len(good), describer.dims), dtype=np.float32)
                    groups = {}
                    for i, image in enumerate(resized):
                        groups.setdefault(image.shape, []).append(i)
                    for members in groups.values():
                        result[members] = describer.describe([resized[i] for i in members])
                    per_scale.append(result)
                block = np.concatenate(per_scale, axis=1) if aggregate == "stack" else \
                    np.mean(per_scale, axis=0)
                blocks.append(l2_normalise(block) if l2 else block)
            if good:
                rows = np.concatenate(blocks, axis=1)
                if l2 and len(describers) > 1:
                    rows = l2_normalise(rows)
                features[written:written + len(good)] = rows
                labels[written:written + len(good)] = [d[1] for _, d in good]
                ids += [source.ids[p] for p, _ in good]
                written += len(good)
            bar.update(len(positions))
    finally:
        bar.close()
        pool.shutdown()
    seconds = time.time() - started
    if not written:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise VggError("no image of %s could be decoded" % (images or data))
    features.flush()
    info = dict(layer=layer, scales=scales, aggregate=aggregate, flip=flip, l2=l2,
                precision="int8" if int8_images else dtype, fidelity=fidelity,
                nets=[n.config for n in nets], dims=dims, images=written,
                skipped=len(skipped), class_names=source.class_names,
                descriptors_per_second=written / seconds if seconds > 0 else None)
    has_labels = bool(source.labels)
    tmp_file = out_path + ".tmp-%d.npz" % os.getpid()
    with open(tmp_file, "wb") as f:  # np.savez streams the memmap in chunks
        np.savez(f, features=features[:written],
                 labels=labels[:written] if has_labels else np.zeros(0, np.int64),
                 ids=np.array(ids),
                 skipped_ids=np.array([s["id"] for s in skipped] or [""])[:len(skipped)],
                 info=np.array(json.dumps(info)))
    del features
    os.replace(tmp_file, out_path)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    info["skipped_list"] = skipped
    info["path"] = out_path
    return info


def load_features(path):
    """(features, labels or None, ids, info) from a ``vgg features`` file."""
    if not os.path.isfile(path):
        raise VggError("features file %s does not exist" % path)
    try:
        with np.load(path, allow_pickle=False) as data:
            features, labels, ids = data["features"], data["labels"], data["ids"]
            info = json.loads(str(data["info"]))
    except (OSError, ValueError, KeyError) as err:
        raise VggError("%s is not a vgg features file: %s" % (path, err)) from None
    return features, (labels if len(labels) else None), list(ids), info


# --- transfer --------------------------------------------------------------------

METRICS = ("accuracy", "mean-recall", "map")


def average_precision(scores, positives):
    """Non-interpolated AP: the mean of the precisions at each positive's rank (ties are
    ranked together, as scikit-learn does)."""
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    total = positives.sum()
    if total == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, positives = scores[order], positives[order]
    # the last index of each run of equal scores: precision/recall are only defined there
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    hits = np.cumsum(positives)[ends]
    precision = hits / (ends + 1.0)
    recall_gain = np.diff(np.r_[0, hits]) / total
    return float(np.sum(precision * recall_gain))


def score(metric, y_true, decision, classes):
    """The paper's metrics; ``decision`` is (N, classes) one-vs-rest scores."""
    predicted = np.asarray(classes)[np.argmax(decision, axis=1)]
    if metric == "accuracy":
        return float(np.mean(predicted == y_true)), None
    if metric == "mean-recall":
        recalls = [float(np.mean(predicted[y_true == c] == c)) for c in classes
                   if np.any(y_true == c)]
        return float(np.mean(recalls)), dict(zip(map(int, classes), recalls))
    if metric == "map":
        aps = [average_precision(decision[:, i], y_true == c) for i, c in enumerate(classes)]
        return float(np.nanmean(aps)), dict(zip(map(int, classes), aps))
    raise VggError("metric must be one of %s, got %r" % (", ".join(METRICS), metric))


def transfer(train_path, test_path, metric="accuracy", out_dir=None, c_values=None, folds=3,
             seed=0):
    """Linear SVM (LinearSVC, C by cross-validation on the training features), scored on
    the test features. Returns the report dict; writes classifier.npz + reports."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import LinearSVC

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
        from .tables import markdown_table
        os.makedirs(out_dir, exist_ok=True)
        coef = model.coef_ if len(model.classes_) > 2 else np.stack([-model.coef_[0],
                                                                      model.coef_[0]])
        np.savez(os.path.join(out_dir, "classifier.npz"), coef=coef,
                 intercept=np.atleast_1d(model.intercept_), classes=model.classes_,
                 C=model.C)
        with open(os.path.join(out_dir, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        names = info_test.get("class_names") or []
        rows = [["%s (%s)" % (names[c], c) if c < len(names) else c, "%.4f" % v]
                for c, v in (per_class or {}).items()]
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write("# vgg transfer: %s = %.4f\n\nLinear SVM, C = %g (%d-fold CV), %d-D %s "
                    "features of %s at Q = %s (%s).\n\n%s\n" % (
                        metric, value, model.C, folds, report["dims"], report["layer"],
                        " & ".join(report["nets"] or []), report["scales"],
                        report["aggregate"], markdown_table(["class", metric], rows)
                        if rows else ""))
    return report
