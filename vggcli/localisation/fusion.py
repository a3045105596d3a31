"""Table 9's fusion of dense localisation outputs (``vgg fuse`` of localise folders)."""
import os

import numpy as np

from data_tools.common import atomic_output, check_output, printable

from ..core.errors import VggError
from ..testing.submission import same_label_ids
from .candidates import load_candidates
from .merge import MERGE_THRESHOLD, guesses_from_candidates
from .report import KIND, score_report, write_outputs
from .scoring import MAX_GUESSES


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
    score_report(report, guesses, truths, sizes)
    with atomic_output(out_dir, folder=True, kind="fuse") as tmp:
        write_outputs(tmp, report, ids, guesses, label_ids, None, truths, sizes)
    return report
