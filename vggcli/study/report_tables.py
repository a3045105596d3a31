"""The report's paper-shaped tables (Markdown), mean ± sd over seeds, with the paper's
ILSVRC numbers beside."""
from ..nets.tables import markdown_table
from . import paper
from .claims import per_seed
from .plan import scale_text
from .stats import mean_sd


def cell(values):
    found = mean_sd(values)
    if found is None:
        return "—"
    mean, sd, n = found
    return "%.1f ± %.1f" % (mean, sd) if n > 1 else "%.1f" % mean


def paper_cell(pair):
    return "%.1f / %.1f" % pair if pair else ""


def classification_tables(protocol, results):
    scales, runs = protocol["scales"], protocol["runs"]
    head = ["ConvNet", "train S", "test Q", "top-1 err. (%)", "top-5 err. (%)",
            "paper top-1 / top-5 (ILSVRC)"]

    def line(name, kind, tests, numbers):
        run = runs[name]
        return [name, scales[run["scale"]]["train"], tests,
                cell(per_seed(results, protocol, kind, name, 0)),
                cell(per_seed(results, protocol, kind, name, 1)),
                paper_cell(numbers.get((run["net"], run["scale"])))]
    table3 = markdown_table(head, [line(n, "single", scales[r["scale"]]["test"][1], paper.SINGLE)
                                   for n, r in runs.items()])
    table4 = markdown_table(head, [line(n, "multi", scale_text(scales[r["scale"]]["test"]),
                                        paper.MULTISCALE) for n, r in runs.items()])
    rows5 = []
    for name in protocol["multicrop"]:
        for kind, mode in (("multi", "dense"), ("multicrop", "multicrop"), ("both", "both")):
            rows5.append([name, mode, cell(per_seed(results, protocol, kind, name, 0)),
                          cell(per_seed(results, protocol, kind, name, 1)),
                          paper_cell(paper.MODES.get((runs[name]["net"], mode)))])
    table5 = markdown_table(["ConvNet", "evaluation", "top-1 err. (%)", "top-5 err. (%)",
                             "paper top-1 / top-5"], rows5)
    rows6 = [[name + " (multi-crop & dense)" if name in protocol["multicrop"] else name,
              cell(per_seed(results, protocol, "both" if name in protocol["multicrop"]
                            else "multi", name, 0)),
              cell(per_seed(results, protocol, "both" if name in protocol["multicrop"]
                            else "multi", name, 1)), ""] for name in protocol["fusion"]]
    rows6.append(["fusion " + " & ".join(protocol["fusion"]),
                  cell(per_seed(results, protocol, "fusion", None, 0)),
                  cell(per_seed(results, protocol, "fusion", None, 1)),
                  paper_cell(paper.FUSION)])
    table6 = markdown_table(["Combined ConvNet models", "top-1 err. (%)", "top-5 err. (%)",
                             "paper top-1 / top-5"], rows6)
    pixels = results.get(("pixels", None, None))
    feats = protocol["features"]
    svm = markdown_table(["descriptor", "linear-SVM accuracy on test (%)"], [
        ["%s of %s at Q = %s" % (feats.get("layer", "fc7"), feats["run"],
                                 scale_text(feats["scales"])),
         cell(per_seed(results, protocol, "svm", None))],
        ["raw pixels, %dx%d RGB" % (protocol["pixels_side"], protocol["pixels_side"]),
         "%.1f" % pixels if pixels is not None else "—"]])
    multicrop = 2 * 5 * 5
    return [
        "## Table 3 shape: single test scale (dense; Q = S, or the middle of a jittered "
        "range)", "", table3, "",
        "## Table 4 shape: multi-scale test (dense)", "", table4, "",
        "## Table 5 shape: dense, multi-crop (%d crops per scale incl. flips) and both, "
        "over three scales" % multicrop, "", table5, "",
        "## Table 6 shape: fusion (averaged soft-max posteriors)", "", table6, "",
        "## Appendix B shape: deep features against raw pixels, linear SVM (C by 3-fold "
        "cross-validation on train)", "", svm, ""]


def localisation_tables(protocol, results):
    """Table 8 and Table 9 shaped sections."""
    loc, scales = protocol["localisation"], protocol["scales"]

    def loc_cell(kind, name, index=0):
        return cell(per_seed(results, protocol, kind, name, index))
    rows8 = []
    for name in loc["table8"]:
        run = loc["runs"][name]
        number = paper.TABLE8.get((run["task"], run["layers"]))
        rows8.append(["%s (loc-%s)" % (run["task"].upper(), name),
                      "all" if run["layers"] == "all" else "fc6-fc8",
                      str(scales[protocol["runs"][run["parent"]]["scale"]]["train"]),
                      loc_cell("center", name), "%.1f" % number if number else ""])
    first = loc["table8"][0]
    for index, what in ((1, "baseline: the whole image"),
                        (2, "baseline: the central box (middle half of each side)")):
        rows8.append([what, "—", "—", loc_cell("center", first, index), ""])
    table8 = markdown_table(["regression", "fine-tuned layers", "S = Q",
                             "localisation err. (%)", "paper (ILSVRC, S = 384)"], rows8)
    rows9 = []
    for (row, spec), number in zip(loc["table9"].items(), paper.TABLE9):
        run = loc["runs"][spec["run"]]
        rows9.append([row, "%s (loc-%s)" % (run["task"].upper(), spec["run"]),
                      scale_text(spec["scales"]), loc_cell("dense1", row),
                      loc_cell("dense5", row), "%.1f" % number])
    if loc["fusion"]:
        rows9.append(["fusion " + " & ".join(loc["fusion"]), "—", "—",
                      loc_cell("dense1", "fusion"), loc_cell("dense5", "fusion"),
                      "%.1f" % paper.LOC_FUSION])
    second = list(loc["table9"])[min(1, len(loc["table9"]) - 1)]
    for index, what in ((1, "the whole image"), (2, "the central box")):
        rows9.append(["baseline: %s, %s's classes" % (what, second), "—", "—",
                      loc_cell("dense1", second, index), loc_cell("dense5", second, index), ""])
    table9 = markdown_table(["train S / test Q", "net", "test Q", "top-1 loc. err. (%)",
                             "top-5 loc. err. (%)", "paper top-5 (ILSVRC)"], rows9)
    return [
        "## Table 8 shape: localisation, central crop, ground-truth class (Appendix A)", "",
        "Localisation nets (fc8 regresses boxes) fine-tuned from the classification net of "
        "the same scale with lr %g for %d epochs; tested on the central crop at Q = S with "
        "the ground-truth class's box. An image is localised when the box has IoU >= 0.5 "
        "with a ground-truth box (the ILSVRC devkit's rule, inclusive pixels)."
        % (loc["lr"], loc["epochs"]), "", table8, "",
        "## Table 9 shape: dense localisation, top-5 guesses (Appendix A)", "",
        "The localisation net applied densely (locations %g px apart: %d shifts of the "
        "32 px stride) with the classification net's per-location class scores; each of "
        "the top-5 classes' boxes merged greedily (after OverFeat). Names are train "
        "scale / test scales of the protocol (the paper's 256 and 384 are S1 and S2 here)."
        % (32 / loc["shifts"], loc["shifts"]), "", table9, ""]
