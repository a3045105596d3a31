"""A localisation output: its scores (the boxes as submitted, in whole pixels, and
the baselines'), report.json / report.md, the devkit's submission.txt, ids.txt and,
for dense outputs, the candidates."""
import json
import os

from .candidates import save_candidates
from .geometry import baseline_boxes
from .scoring import MAX_GUESSES, localisation_errors, submission_line, whole_pixels

KIND = "localise"


def _baselines(guesses, sizes):
    """{name: errors}: each guess's class with the whole image or the central box."""
    out = {}
    for name in baseline_boxes(1, 1):
        fixed = [[(label, baseline_boxes(*size)[name]) for label, _ in row]
                 for row, size in zip(guesses, sizes)]
        out[name] = fixed
    return out


def score_report(report, guesses, truths, sizes):
    """The errors of the boxes as submitted (whole pixels), and of the baselines'."""
    ks = range(1, MAX_GUESSES + 1)
    report["errors"] = {str(k): v for k, v in localisation_errors(
        whole_pixels(guesses), truths, ks).items()}
    report["baselines"] = {name: {str(k): v for k, v in
                                  localisation_errors(whole_pixels(fixed), truths, ks).items()}
                           for name, fixed in _baselines(guesses, sizes).items()}


def write_outputs(folder, report, ids, guesses, label_ids, candidates, truths, sizes):
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
