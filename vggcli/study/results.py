"""The numbers a study's jobs wrote: per run, seed and test setting (``collect``), each
training run's course (``training``), and per-image correctness for the paired
per-image tests (``correct``)."""
import json
import os

import numpy as np

from .plan import paths, run_folder, slug_free


def read_report(path):
    """A job's report.json, None when the job left none (failed or skipped)."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _row(report, mode, scales):
    for row in (report or {}).get("rows", []):
        if row["mode"] == mode and list(row["scales"]) == list(scales):
            return 100 * row["top1_error"], 100 * row["top5_error"]
    return None


def training(folder):
    """How a run went, from its log.jsonl: epochs, lr divisions, the last epoch's
    training loss, whether it learned (vgg train's verdict), best val top-1 %."""
    from ..core.plots import read_jsonl
    path = os.path.join(folder, "log.jsonl")
    if not os.path.isfile(path):
        return None
    records = read_jsonl(path)
    epochs = [r for r in records if r.get("event") == "epoch"]
    if not epochs:
        return None
    summary = ([r for r in records if r.get("event") == "summary"] or [{}])[-1]
    return dict(epochs=len(epochs),
                reductions=sum(e.get("schedule") == "reduced" for e in epochs),
                final_loss=epochs[-1]["train_loss"], learned=summary.get("learned"),
                best=100 * min(e["val_top1_err"] for e in epochs),
                seconds=sum(e.get("seconds", 0) for e in epochs))


def collect(protocol, out):
    """{(what, run or None, seed): value}: the numbers the report is made of."""
    where = paths(out)
    scales = protocol["scales"]
    results = {}
    for name, run in protocol["runs"].items():
        tests = scales[run["scale"]]["test"]
        for seed in protocol["seeds"]:
            rep = read_report(os.path.join(where["eval"], "s%d" % seed, name, "report.json"))
            results["single", name, seed] = _row(rep, "dense", [tests[1]])
            results["multi", name, seed] = _row(rep, "dense", tests)
            results["multicrop", name, seed] = _row(rep, "multicrop", tests)
            results["both", name, seed] = _row(rep, "both", tests)
            results["training", name, seed] = training(run_folder(out, seed, name))
    for seed in protocol["seeds"]:
        rep = read_report(os.path.join(where["fuse"], "s%d" % seed, "report.json"))
        results["fusion", None, seed] = (100 * rep["top1_error"], 100 * rep["top5_error"]) \
            if rep else None
        rep = read_report(os.path.join(where["transfer"], "s%d" % seed, "report.json"))
        results["svm", None, seed] = 100 * rep["value"] if rep else None
    rep = read_report(os.path.join(where["transfer"], "pixels", "report.json"))
    results["pixels", None, None] = 100 * rep["value"] if rep else None
    if "localisation" in protocol:
        _collect_localisation(protocol, out, results)
    return results


def _loc_errors(report, k):
    """(the net's, whole image's, central box's) error % at k guesses."""
    if not report:
        return None
    return tuple(100 * errors[str(k)] for errors in (
        report["errors"], report["baselines"]["whole image"],
        report["baselines"]["central box"]))


def _collect_localisation(protocol, out, results):
    loc = protocol["localisation"]
    for seed in protocol["seeds"]:
        tests = os.path.join(paths(out)["localise"], "s%d" % seed)
        for name in loc["runs"]:
            results["training", "loc-" + name, seed] = training(
                run_folder(out, seed, "loc-" + name))
        for name in loc["table8"]:
            rep = read_report(os.path.join(tests, "center-" + name, "report.json"))
            results["center", name, seed] = _loc_errors(rep, 1)
        for row in list(loc["table9"]) + ["fusion"]:
            folder = "fusion" if row == "fusion" else "dense-" + slug_free(row)
            rep = read_report(os.path.join(tests, folder, "report.json"))
            results["dense5", row, seed] = _loc_errors(rep, 5)
            results["dense1", row, seed] = _loc_errors(rep, 1)


def correct(protocol, out, seed, run, setting):
    """Per test image, whether the top-1 class is right (a bool array in record order)
    for ``run`` tested as ``setting`` (single, multi, multicrop, both; run None with
    setting fusion: the seed's fusion), from the scores the eval wrote; None if
    missing."""
    where = paths(out)
    if setting == "fusion":
        folder = os.path.join(where["fuse"], "s%d" % seed)
        names = ["scores.npy"]
    else:
        folder = os.path.join(where["eval"], "s%d" % seed, run)
        tests = protocol["scales"][protocol["runs"][run]["scale"]]["test"]
        names = {"single": ["scores-dense-Q%d.npy" % tests[1]],
                 "multi": ["scores-dense-Q%d.npy" % q for q in tests],
                 "multicrop": ["scores-multicrop-Q%d.npy" % q for q in tests],
                 "both": ["scores.npy"]}[setting]
    files = [os.path.join(folder, n) for n in names + ["labels.npy"]]
    if not all(os.path.isfile(f) for f in files):
        return None
    scores = np.mean([np.load(f, mmap_mode="r") for f in files[:-1]], axis=0)
    return np.argmax(scores, axis=1) == np.load(files[-1])
