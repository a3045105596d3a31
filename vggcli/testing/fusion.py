"""``vgg fuse`` of eval outputs (§4.4): the soft-max posteriors of several nets
averaged, image by image, checked to be of the same images, labels and classes."""
import json
import os

import numpy as np

from ..core.errors import VggError
from ..core.ndfile import load_npy
from .evaluate import _scale_label, errors_of_mean
from .submission import same_label_ids, write_classification


REPORT_KEYS = ("net", "scales", "mode", "images", "top1_error", "top5_error")


def load_scores(folder):
    """(scores memmap, labels, ids, report) of an eval output folder."""
    paths = {name: os.path.join(folder, name) for name in
             ("scores.npy", "labels.npy", "ids.txt", "report.json")}
    for path in paths.values():
        if not os.path.isfile(path):
            raise VggError("%s is not an eval output folder: %s is missing" % (folder, path))
    from data_tools.common import read_json, read_lines
    scores = load_npy(paths["scores.npy"], 2, "f", mmap=True)
    labels = load_npy(paths["labels.npy"], 1, "iu")
    ids = read_lines(paths["ids.txt"], "image ids")
    report = read_json(paths["report.json"], "eval report", REPORT_KEYS)
    number = (int, float)
    if not (isinstance(report["net"], str) and isinstance(report["mode"], str)
            and isinstance(report["scales"], list)
            and all(isinstance(q, int) for q in report["scales"])
            and isinstance(report["top1_error"], number)
            and isinstance(report["top5_error"], number)):
        raise VggError("eval report %s is damaged: a field has the wrong type"
                       % paths["report.json"])
    if not np.all(np.isfinite(scores)):
        raise VggError("%s holds scores that are not finite numbers" % paths["scores.npy"])
    if len(labels) and (labels.min() < -1 or labels.max() >= scores.shape[1]):
        raise VggError("%s holds labels outside [0, %d)" % (paths["labels.npy"],
                                                            scores.shape[1]))
    if scores.shape[0] != len(labels) or len(ids) != len(labels):
        raise VggError("%s is inconsistent: %d scores, %d labels, %d ids"
                       % (folder, scores.shape[0], len(labels), len(ids)))
    return scores, labels, ids, report


def fuse(folders, out_dir, overwrite=False):
    """Average the posteriors of several eval outputs (paper §4.4); returns the report.
    ``out_dir`` follows the output policy (``overwrite`` replaces a previous fusion)."""
    from data_tools.common import check_output

    check_output(out_dir, "fuse", inputs=folders, overwrite=overwrite)
    if len(folders) < 2:
        raise VggError("fuse needs at least two eval output folders")
    loaded = [load_scores(f) for f in folders]
    scores0, labels0, ids0, _ = loaded[0]
    for folder, (scores, labels, ids, _) in zip(folders[1:], loaded[1:]):
        if ids != ids0:
            raise VggError("%s and %s were evaluated on different images (ids differ)"
                           % (folders[0], folder))
        if not np.array_equal(labels, labels0):
            raise VggError("%s and %s disagree on the labels of the same images"
                           % (folders[0], folder))
        if scores.shape != scores0.shape:
            raise VggError("%s has %d classes, %s has %d" % (folders[0], scores0.shape[1],
                                                              folder, scores.shape[1]))
    from data_tools.common import atomic_output

    from .inference import reserved_memmap
    members = [r for _, _, _, r in loaded]
    label_ids = same_label_ids(members, folders)
    with atomic_output(out_dir, folder=True, kind="fuse") as tmp:
        fused = reserved_memmap(os.path.join(tmp, "scores.npy"), scores0.shape, out_dir)
        errors = errors_of_mean([scores for scores, _, _, _ in loaded], labels0, out=fused)
        write_classification(os.path.join(tmp, "submission.txt"), fused, label_ids)
        fused.flush()
        del fused
        np.save(os.path.join(tmp, "labels.npy"), labels0)
        with open(os.path.join(tmp, "ids.txt"), "w") as f:
            f.write("".join(i + "\n" for i in ids0))
        report = dict(_fusion_report(folders, members, errors, len(labels0)),
                      label_ids=label_ids)
        _write_fusion_reports(tmp, report)
    return report


def _fusion_report(folders, members, errors, images):
    rows = [dict(mode=r["mode"], scales=r["scales"], top1_error=r["top1_error"],
                 top5_error=r["top5_error"], net=r["net"]) for r in members]
    rows.append(dict(mode="fusion", scales=sorted({q for r in members for q in r["scales"]}),
                     top1_error=errors[1], top5_error=errors[5],
                     net=" & ".join(r["net"] for r in members)))
    return dict(net=" & ".join(r["net"] for r in members), members=list(folders),
                images=images, scales=rows[-1]["scales"], mode="fusion",
                top1_error=errors[1], top5_error=errors[5], rows=rows, data=None)


def _write_fusion_reports(folder, report):
    from ..nets.tables import markdown_table
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    table = markdown_table(["Combined ConvNet models", "test (Q)", "mode", "top-1 val. error (%)",
                            "top-5 val. error (%)"],
                           [[r["net"], _scale_label(r["scales"]), r["mode"],
                             "%.1f" % (100 * r["top1_error"]), "%.1f" % (100 * r["top5_error"])]
                            for r in report["rows"]])
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8",
              errors="backslashreplace") as f:  # paths that are not UTF-8
        f.write("# vgg fuse (Table 6 shape)\n\n%d images.\n\n%s\n" % (report["images"], table))
