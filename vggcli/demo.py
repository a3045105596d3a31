"""``make demo``: the whole paper end to end, in minutes, on a real dataset that ships
with scikit-learn (1,797 handwritten digits, upsampled to 40x40, 10 classes).

pack -> train net A (paper init) -> train net D from A (--init-from) -> eval both
(dense, multi-crop, both; single and multi-scale) -> fuse A & D -> fc7 features
-> linear-SVM transfer. Every step is a real ``vgg`` command, run as a user
would, and ``demo/REPORT.md`` collects the paper-shaped tables, the training
curves and the exact commands.

Scaled down so a 2-core CPU finishes in a few minutes: 1/4 width, FC width
128, 32x32 crops, S = 36 (the paper: 224 crops, S = 256).
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
SMALL = ["--width-mult", "0.25", "--fc-width", "128", "--crop-size", "32", "--scale", "36",
         "--batch-size", "32", "--patience", "4"]
SCALES = "36,40,44"


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


def write_report(path, log, evals, fusion, transfer_lines, curves, started):
    header = ("| ConvNet config. | train (S) | test (Q) | mode | top-1 val. error (%) | "
              "top-5 val. error (%) |\n|---|---|---|---|---|---|")
    single = [_row(net, "36", r) for net, rep in evals.items() for r in rep["rows"]
              if len(r["scales"]) == 1 and r["mode"] == "dense"]
    multi = [_row(net, "36", r) for net, rep in evals.items() for r in rep["rows"]
             if len(r["scales"]) > 1 and r["mode"] == "dense"]
    modes = [_row(net, "36", r) for net, rep in evals.items() for r in rep["rows"]
             if len(r["scales"]) > 1]
    fused = "\n".join("| %s | %s | %s | %.1f | %.1f |" % (
        r["net"], ",".join(map(str, r["scales"])), r["mode"], 100 * r["top1_error"],
        100 * r["top5_error"]) for r in fusion["rows"])
    lines = [
        "# vgg demo report",
        "",
        "The paper's pipeline on scikit-learn's handwritten digits (1,797 real scans, 10 "
        "classes; 1,438 train / 359 val), scaled down to run on a laptop CPU: 1/4 conv "
        "width, FC width 128, 32x32 crops, training scale S = 36. Chance is 90%% top-1 "
        "error. Generated %s in %.0f s." % (time.strftime("%Y-%m-%d %H:%M"),
                                           time.time() - started),
        "",
        "## Table 3 shape: single test scale (dense)", "", header] + single + [
        "", "## Table 4 shape: multi-scale test (dense)", "", header] + multi + [
        "", "## Table 5 shape: dense, multi-crop, and both", "", header] + modes + [
        "", "## Table 6 shape: fusion (averaged soft-max posteriors)", "",
        "| Combined ConvNet models | test (Q) | mode | top-1 val. error (%) | "
        "top-5 val. error (%) |", "|---|---|---|---|---|", fused,
        "", "## Appendix B shape: fc7 features + linear SVM on the held-out split", ""] + \
        transfer_lines + ["", "## Training curves", ""] + \
        ["![%s](%s)" % (name, os.path.relpath(png, os.path.dirname(path)))
         for name, png in curves] + [
        "", "## The commands, as run", "", "```"] + \
        ["%s    # %.0f s" % (cmd, seconds) for cmd, seconds in log] + ["```", ""]
    from data_tools.common import write_text_atomic
    write_text_atomic(path, "\n".join(lines))


def main():
    import vggcli
    vggcli.configure()
    from data_tools.digits import write_digits

    started = time.time()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    raw, data, runs = (os.path.join(OUT, n) for n in ("digits", "data", "runs"))
    print("writing scikit-learn's digits as an image-folder dataset in %s" % raw, flush=True)
    write_digits(raw)
    log = []
    vgg(["pack", raw, "--out", data, "--synsets", os.path.join(raw, "synsets.txt"),
         "--quiet"], log)
    vgg(["train", "--net", "A", "--data", data, "--out", os.path.join(runs, "A"),
         "--epochs", "14", "--init", "normal", "--quiet"] + SMALL, log)
    vgg(["train", "--net", "D", "--data", data, "--out", os.path.join(runs, "D"),
         "--epochs", "8", "--init", "xavier", "--init-from",
         os.path.join(runs, "A", "best.params"), "--quiet"] + SMALL, log)
    evals = {}
    for net in ("A", "D"):
        folder = os.path.join(OUT, "eval", net)
        vgg(["eval", "--params", os.path.join(runs, net, "best.params"), "--data",
             os.path.join(data, "val.rec"), "--scales", SCALES, "--mode", "both", "--out",
             folder, "--quiet"], log)
        evals[net] = _report_json(folder)
    fused_dir = os.path.join(OUT, "eval", "A+D")
    vgg(["fuse", os.path.join(OUT, "eval", "A"), os.path.join(OUT, "eval", "D"), "--out",
         fused_dir], log)
    feats = {}
    for split in ("train", "val"):
        feats[split] = os.path.join(OUT, "features", "D-fc7-%s.npz" % split)
        vgg(["features", "--params", os.path.join(runs, "D", "best.params"), "--layer", "fc7",
             "--scales", "36,40", "--images", os.path.join(raw, split), "--out", feats[split],
             "--quiet"], log)
    transfer_lines = []
    for metric in ("accuracy", "mean-recall"):
        out = vgg(["transfer", "--train", feats["train"], "--test", feats["val"], "--metric",
                   metric, "--out", os.path.join(OUT, "transfer", metric)], log)
        transfer_lines.append("- " + out.strip().splitlines()[-1])
    curves = [("net %s training curves" % n, os.path.join(runs, n, "curves.png"))
              for n in ("A", "D")]
    write_report(REPORT, log, evals, _report_json(fused_dir), transfer_lines, curves, started)
    print("\nreport: %s (%.0f s in all)" % (REPORT, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
