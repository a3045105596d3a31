"""``vgg eval --images``: every image of a folder through the eval engine (dense,
multi-crop or both, each scale, flip, batches, float32 / bfloat16 / INT8), its top
classes printed or written as CSV or JSON lines."""
import csv
import json

import numpy as np

from ..core.errors import VggError

FORMATS = (".csv", ".jsonl")
CSV_HEADER = ["image", "rank", "class", "wnid", "name", "probability", "error"]


def check_predictions_out(path, inputs=(), overwrite=False):
    """Refuse, before any work, an --out that is not .csv / .jsonl or that holds a file
    vgg did not write."""
    from data_tools.common import check_output
    if not path.lower().endswith(FORMATS):
        raise VggError("--out %s: with --images, give a .csv or .jsonl file" % path)
    check_output(path, "predictions", inputs=inputs, overwrite=overwrite,
                 recognise=_is_ours)


def _is_ours(path):
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return False
    if path.lower().endswith(".csv"):
        return first == ",".join(CSV_HEADER)
    try:
        return isinstance(json.loads(first), dict) and "image" in json.loads(first)
    except ValueError:
        return False


def split_class_name(line):
    """(WNID or "", name) of a class line ('n01440764 tench, Tinca tinca')."""
    first, _, rest = line.partition(" ")
    if len(first) == 9 and first[0] == "n" and first[1:].isdigit():
        return first, rest
    return "", line


def predict_folder(net, folder, scales, mean_rgb, class_names=None, ctx=None, top=5,
                   flip=True, dtype="float32", mode="dense", batch_size=32, limit=None,
                   int8_images=0, progress=False, workers=None):
    """Per image (in the folder's sorted order, the first ``limit``; ``path`` printable):
    dict(path, top=[(class, wnid, name, probability)]) or dict(path, error). ``mode``:
    dense, multicrop or both (their posteriors averaged, as eval's), each averaged over
    ``scales``."""
    import mxnet as mx

    from .evaluate import MODES, Evaluator, _score_all
    from .inference import FolderSource, check_scales, fast_path_inputs, printable

    if mode not in MODES:
        raise VggError("--mode must be one of %s, got %r" % (", ".join(MODES), mode))
    crop = net.knobs["crop_size"]
    check_scales(scales, crop)
    source = FolderSource(folder)
    count = len(source) if limit is None else min(limit, len(source))
    ctx = ctx or [mx.cpu()]
    dtype, calibration, _ = fast_path_inputs(source, crop, min(scales), mean_rgb, int8_images,
                                             dtype, ctx)
    evaluator = Evaluator(net, mean_rgb, ctx, batch_size=batch_size, flip=flip,
                          int8_calibration=calibration, dtype=dtype)
    modes = ("dense", "multicrop") if mode == "both" else (mode,)
    classes = net.knobs["classes"]
    parts = {(m, q): np.zeros((count, classes), np.float32) for m in modes for q in scales}
    skipped = {}
    _score_all(evaluator, source, count, scales, modes, parts, np.zeros(count, np.int64),
               max(batch_size, 64), progress, workers, skipped=skipped)
    posteriors = np.mean(list(parts.values()), axis=0)
    names = [split_class_name(n) for n in class_names] if class_names else None
    results = []
    for position in range(count):
        path = printable(source.paths[position])
        if position in skipped:
            results.append(dict(path=path, error=skipped[position]))
            continue
        best = np.argsort(-posteriors[position], kind="stable")[:top]
        results.append(dict(path=path, top=[
            (int(c),) + (names[c] if names and c < len(names) else ("", str(c)))
            + (float(posteriors[position, c]),) for c in best]))
    return results


def write_predictions(path, results):
    """``results`` as CSV (a row per image and rank; an unreadable image's row holds its
    error) or JSON lines (one object per image), written under a temporary name."""
    from data_tools.common import atomic_output
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if path.lower().endswith(".csv"):
                writer = csv.writer(f)
                writer.writerow(CSV_HEADER)
                for r in results:
                    if "error" in r:
                        writer.writerow([r["path"], "", "", "", "", "", r["error"]])
                    for rank, (c, wnid, name, p) in enumerate(r.get("top", ()), 1):
                        writer.writerow([r["path"], rank, c, wnid, name, "%.6f" % p, ""])
            else:
                for r in results:
                    row = dict(image=r["path"])
                    if "error" in r:
                        row["error"] = r["error"]
                    else:
                        row["top"] = [dict(rank=rank, **{"class": c}, wnid=wnid, name=name,
                                           probability=p)
                                      for rank, (c, wnid, name, p) in enumerate(r["top"], 1)]
                    f.write(json.dumps(row) + "\n")
