"""``make demo``: the whole paper end to end, in minutes, one seed and two nets of
``make reproduce``'s study, on the same real dataset: scikit-learn's 1,797
handwritten digit scans, each placed twice at a random size and position on a
crop of a real photo (``data_tools/scaled_digits.py``).

pack (with each digit's box) -> train net A -> train net D from A (--init-from)
with scale jittering -> eval both (dense, multi-crop, both; single and
multi-scale) -> fuse A & D -> fc7 features -> linear SVM, against raw pixels ->
a PCR localisation net fine-tuned from D (Appendix A) -> its localisation error
on the central crop and densely, against fixed boxes. Every step is a real ``vgg`` command,
run as a user would, and ``demo/REPORT.md`` collects the paper-shaped tables, the
training curves and the exact commands. The numbers are one seed's, as they come
out; ``make reproduce`` is the study (every net, three seeds, verdicts).

Scaled down as the study's protocol (recipes/reproduce/protocol.yaml) says: 1/8
width, FC width 128, 32x32 crops, S = 36 or jittered in [36, 72].
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

OUT = os.path.join("demo", "out")
REPORT = os.path.join("demo", "REPORT.md")
A_EPOCHS, D_EPOCHS = 30, 12  # caps; the lr schedule usually ends a run before them
LOC_EPOCHS = 8


def vgg(args, log):
    """Run ``vgg ARGS`` in a subprocess, echo and record it; returns its stdout."""
    shown = "vgg " + " ".join(shlex.quote(a) for a in args)
    print("\n$ " + shown, flush=True)
    start = time.time()
    result = subprocess.run([sys.executable, "-m", "vggcli"] + args, stdout=subprocess.PIPE,
                            text=True)
    print(result.stdout.rstrip(), flush=True)
    log.append((shown, time.time() - start))
    if result.returncode != 0:
        raise SystemExit("demo step failed (exit %d): %s" % (result.returncode, shown))
    return result.stdout


def _report_json(folder):
    with open(os.path.join(folder, "report.json")) as f:
        return json.load(f)


def _row(net, train_scale, row):
    return "| %s | %s | %s | %s | %.1f | %.1f |" % (
        net, train_scale, ",".join(map(str, row["scales"])), row["mode"],
        100 * row["top1_error"], 100 * row["top5_error"])


def _localisation_lines(folders):
    """The localisation reports' tables, under the demo's own headings."""
    lines = []
    for title, folder in folders:
        with open(os.path.join(folder, "report.md")) as f:
            body = f.read().split("\n", 1)[1].strip()
        lines += ["", "## %s" % title, "", body]
    return lines


def write_report(path, log, evals, fusion, transfer_lines, curves, started, counts, scales,
                 localisation=()):
    header = ("| ConvNet config. | train (S) | test (Q) | mode | top-1 val. error (%) | "
              "top-5 val. error (%) |\n|---|---|---|---|---|---|")
    single = [_row(net, scales[net], r) for net, rep in evals.items() for r in rep["rows"]
              if len(r["scales"]) == 1 and r["mode"] == "dense"]
    multi = [_row(net, scales[net], r) for net, rep in evals.items() for r in rep["rows"]
             if len(r["scales"]) > 1 and r["mode"] == "dense"]
    modes = [_row(net, scales[net], r) for net, rep in evals.items() for r in rep["rows"]
             if len(r["scales"]) > 1]
    fused = "\n".join("| %s | %s | %s | %.1f | %.1f |" % (
        r["net"], ",".join(map(str, r["scales"])), r["mode"], 100 * r["top1_error"],
        100 * r["top5_error"]) for r in fusion["rows"])
    lines = [
        "# vgg demo report",
        "",
        "The paper's pipeline on scaled digits: scikit-learn's 1,797 real handwritten "
        "scans, each placed twice at a random size (12-60 px) and position on a 64x64 "
        "crop of a real photo; 10 classes, %d train / %d val images, split by scan. "
        "Scaled down to run on a laptop CPU: 1/8 conv width, FC width 128, 32x32 crops. "
        "Chance is 90%% top-1 error. One seed, two nets, numbers as they came out: "
        "`make reproduce` runs the study (every net of Table 3, three seeds, a verdict "
        "per claim). Generated %s in %.0f s." % (counts["train"], counts["val"],
                                                 time.strftime("%Y-%m-%d %H:%M"),
                                                 time.time() - started),
        "",
        "## Table 3 shape: single test scale (dense)", "", header] + single + [
        "", "## Table 4 shape: multi-scale test (dense)", "", header] + multi + [
        "", "## Table 5 shape: dense, multi-crop, and both", "", header] + modes + [
        "", "## Table 6 shape: fusion (averaged soft-max posteriors)", "",
        "| Combined ConvNet models | test (Q) | mode | top-1 val. error (%) | "
        "top-5 val. error (%) |", "|---|---|---|---|---|", fused,
        "", "## Appendix B shape: linear SVM on the held-out split, deep features and raw "
        "pixels", ""] + \
        transfer_lines + _localisation_lines(localisation) + ["", "## Training curves", ""] + \
        ["![%s](%s)" % (name, os.path.relpath(png, os.path.dirname(path)))
         for name, png in curves] + [
        "", "## The commands, as run", "", "```"] + \
        ["%s    # %.0f s" % (cmd, seconds) for cmd, seconds in log] + ["```", ""]
    from data_tools.common import write_text_atomic
    write_text_atomic(path, "\n".join(lines))


def main():
    import vggcli
    vggcli.configure()
    from data_tools.scaled_digits import write_scaled_digits

    from .reproduce import load_protocol, pixel_features, train_flags

    protocol = load_protocol()
    scales, small = protocol["scales"], train_flags(protocol)
    started = time.time()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    raw, data, runs = (os.path.join(OUT, n) for n in ("scaled-digits", "data", "runs"))
    print("writing the scaled-digits dataset to %s" % raw, flush=True)
    dataset = protocol["dataset"]
    counts = write_scaled_digits(raw, seed=dataset["seed"], per_scan=dataset["per_scan"],
                                 val_ratio=dataset["val_ratio"])
    log = []
    vgg(["pack", raw, "--out", data, "--synsets", os.path.join(raw, "synsets.txt"),
         "--boxes", os.path.join(raw, "boxes.csv"), "--quiet"], log)
    vgg(["train", "--net", "A", "--data", data, "--out", os.path.join(runs, "A"),
         "--scale", scales["S1"]["train"], "--epochs", str(A_EPOCHS), "--quiet"] + small, log)
    vgg(["train", "--net", "D", "--data", data, "--out", os.path.join(runs, "D"),
         "--scale", scales["J"]["train"], "--epochs", str(D_EPOCHS), "--init-from",
         os.path.join(runs, "A", "best.params"), "--quiet"] + small, log)
    evals, train_scales = {}, {"A": scales["S1"]["train"], "D": scales["J"]["train"]}
    for net, scale in (("A", "S1"), ("D", "J")):
        folder = os.path.join(OUT, "eval", net)
        vgg(["eval", "--params", os.path.join(runs, net, "best.params"), "--data",
             os.path.join(data, "val.rec"), "--scales",
             ",".join(str(q) for q in scales[scale]["test"]), "--mode", "both", "--out",
             folder, "--quiet"], log)
        evals[net] = _report_json(folder)
    fused_dir = os.path.join(OUT, "eval", "A+D")
    vgg(["fuse", os.path.join(OUT, "eval", "A"), os.path.join(OUT, "eval", "D"), "--out",
         fused_dir], log)
    feats, pixels = {}, {}
    for split in ("train", "val"):
        feats[split] = os.path.join(OUT, "features", "D-fc7-%s.npz" % split)
        vgg(["features", "--params", os.path.join(runs, "D", "best.params"), "--layer", "fc7",
             "--scales", str(scales["J"]["test"][1]), "--images", os.path.join(raw, split),
             "--out", feats[split], "--quiet"], log)
        pixels[split] = os.path.join(OUT, "features", "pixels-%s.npz" % split)
        pixel_features(os.path.join(data, split + ".rec"), protocol["pixels_side"],
                       pixels[split])
    transfer_lines = []
    for name, files in (("fc7 of net D", feats), ("raw pixels, %dx%d RGB" % (
            protocol["pixels_side"], protocol["pixels_side"]), pixels)):
        out = vgg(["transfer", "--train", files["train"], "--test", files["val"], "--out",
                   os.path.join(OUT, "transfer", "fc7" if files is feats else "pixels")], log)
        transfer_lines.append("- %s: %s" % (name, out.strip().splitlines()[-1]))
    # Appendix A: fc8 regresses a box per class, at the fixed scale S2 (§A.1)
    loc_scale = scales["S2"]["train"]
    vgg(["train", "--net", "D", "--data", data, "--out", os.path.join(runs, "D-pcr"),
         "--task", "pcr", "--scale", loc_scale, "--lr", str(protocol["localisation"]["lr"]),
         "--epochs", str(LOC_EPOCHS), "--finetune-from", os.path.join(runs, "D", "best.params"),
         "--quiet"] + small, log)
    located = []
    for mode, title in (("center", "Table 8 shape: localisation, central crop, the "
                                   "ground-truth class"),
                        ("dense", "Table 9 shape: dense localisation, top-5 guesses")):
        folder = os.path.join(OUT, "localise", mode)
        extra = ["--classifier", os.path.join(runs, "D", "best.params"), "--shifts",
                 str(protocol["localisation"]["shifts"])] if mode == "dense" else []
        vgg(["localise", "--params", os.path.join(runs, "D-pcr", "best.params"), "--data",
             os.path.join(data, "val.rec"), "--mode", mode, "--scales", loc_scale, "--out",
             folder, "--quiet"] + extra, log)
        located.append((title, folder))
    curves = [("net %s training curves" % n, os.path.join(runs, n, "curves.png"))
              for n in ("A", "D", "D-pcr")]
    write_report(REPORT, log, evals, _report_json(fused_dir), transfer_lines, curves, started,
                 counts, train_scales, located)
    print("\nreport: %s (%.0f s in all); make reproduce runs the whole study"
          % (REPORT, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
