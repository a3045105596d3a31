"""``vgg inspect``: what a .rec holds, and whether its .idx agrees with it."""
import os
from collections import Counter

from .common import VggError

from .recordio import IR_HEADER, read_index, read_record_at


def inspect_rec(rec_path, samples=5):
    """Scan a .rec from start to end and check its .idx against it.

    Returns a dict: records, label histogram, a few decoded image sizes, and
    ``problems`` (empty when the file and index agree).
    """
    import cv2
    import numpy as np

    if not os.path.isfile(rec_path):
        raise VggError("record file %s does not exist" % rec_path)
    idx_path = os.path.splitext(rec_path)[0] + ".idx"
    problems = []
    starts, labels, sizes, extra_labelled = [], Counter(), [], 0
    file_size = os.path.getsize(rec_path)
    with open(rec_path, "rb") as handle:
        offset = 0
        while offset < file_size:
            try:
                payload, next_offset = read_record_at(handle, offset)
            except VggError as err:
                problems.append("%s: %s" % (rec_path, err))
                break
            if len(payload) < IR_HEADER.size:
                problems.append("%s: record at byte %d is shorter than its header"
                                % (rec_path, offset))
                break
            flag, label, key, _ = IR_HEADER.unpack_from(payload)
            if IR_HEADER.size + 4 * flag > len(payload):
                problems.append("%s: record at byte %d has a damaged header (%d extra labels "
                                "in %d bytes)" % (rec_path, offset, flag, len(payload)))
                break
            extra_labelled += flag > 0  # boxes (vgg pack --boxes); the class stays in label
            starts.append((key, offset))
            labels[label] += 1
            if len(sizes) < samples:
                image = cv2.imdecode(np.frombuffer(payload, np.uint8, offset=IR_HEADER.size +
                                                   4 * flag), cv2.IMREAD_COLOR)
                sizes.append(None if image is None else tuple(image.shape[:2]))
            offset = next_offset
    if os.path.isfile(idx_path):
        index = read_index(idx_path)
        if index != starts:
            mismatch = next((i for i, (a, b) in enumerate(zip(index, starts)) if a != b),
                            min(len(index), len(starts)))
            problems.append("%s disagrees with %s from entry %d (%d index entries, %d records)"
                            % (idx_path, rec_path, mismatch, len(index), len(starts)))
    else:
        problems.append("no index file %s" % idx_path)
    return dict(path=rec_path, records=len(starts), bytes=file_size,
                labels=dict(sorted(labels.items(), key=lambda kv: str(kv[0]))),
                sample_sizes=sizes, problems=problems, with_extra_labels=extra_labelled)


def report_lines(report, class_names=None):
    lines = ["%s: %d records, %.1f MB" % (report["path"], report["records"],
                                          report["bytes"] / 1e6)]
    counts = report["labels"]
    if counts:
        values = list(counts.values())
        lines.append("labels: %d distinct, %d-%d records per label" % (len(counts), min(values),
                                                                      max(values)))
        for label, count in list(counts.items())[:20]:
            name = ""
            if class_names and isinstance(label, float) and label.is_integer() and \
                    0 <= label < len(class_names):  # a damaged header's label may be anything
                name = " " + class_names[int(label)]
            lines.append("  %g%s: %d" % (label, name, count) if isinstance(label, float)
                         else "  %s: %d" % (label, count))
        if len(counts) > 20:
            lines.append("  ... %d more labels" % (len(counts) - 20))
    if report.get("with_extra_labels"):
        lines.append("%d records carry extra labels (boxes, GluonCV's detection layout)"
                     % report["with_extra_labels"])
    lines.append("sample sizes (h, w): %s" % ", ".join(str(s) for s in report["sample_sizes"]))
    lines += ["problem: " + p for p in report["problems"]] or ["index: matches the records"]
    return lines
