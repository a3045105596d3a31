"""``make reproduce`` (``vgg reproduce``): the paper's findings (Tables 3-6, 8-9,
Appendices A and B)
at small scale on a real dataset with scale variation, with seeds, and a report that
says per claim whether it held, by a rule stated before the run.

The study is fixed in ``recipes/reproduce/protocol.yaml``. Every step is a real
``vgg`` command run in a subprocess (one thread each, as many at once as there are
cores); their logs, outputs and a JSON-lines record of every job go under the
output folder. A killed study resumes where it stopped: finished jobs are kept,
an interrupted training run continues from its last checkpoint (``--resume``).
"""
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np

from .errors import VggError

KIND = "reproduce"
# The paper's ILSVRC-2012 val errors (top-1, top-5; SPEC.md §5) beside ours.
PAPER = {
    ("A", "S1"): (29.6, 10.4), ("A-LRN", "S1"): (29.7, 10.5), ("B", "S1"): (28.7, 9.9),
    ("C", "S1"): (28.1, 9.4), ("C", "S2"): (28.1, 9.3), ("C", "J"): (27.3, 8.8),
    ("D", "S1"): (27.0, 8.8), ("D", "S2"): (26.8, 8.7), ("D", "J"): (25.6, 8.1),
    ("E", "S1"): (27.3, 9.0), ("E", "S2"): (26.9, 8.7), ("E", "J"): (25.5, 8.0)}
PAPER_MULTISCALE = {
    ("B", "S1"): (28.2, 9.6), ("C", "S1"): (27.7, 9.2), ("C", "S2"): (27.8, 9.2),
    ("C", "J"): (26.3, 8.2), ("D", "S1"): (26.6, 8.6), ("D", "S2"): (26.5, 8.6),
    ("D", "J"): (24.8, 7.5), ("E", "S1"): (26.9, 8.7), ("E", "S2"): (26.7, 8.6),
    ("E", "J"): (24.8, 7.5)}
PAPER_MODES = {("D", "dense"): (24.8, 7.5), ("D", "multicrop"): (24.6, 7.5),
               ("D", "both"): (24.4, 7.2), ("E", "dense"): (24.8, 7.5),
               ("E", "multicrop"): (24.6, 7.4), ("E", "both"): (24.4, 7.1)}
PAPER_FUSION = (23.7, 6.8)  # D & E, multi-crop & dense
# Appendix A: Table 8 (central crop, ground-truth class, S = 384: localisation error)
# and Table 9 (dense, top-5 localisation error), by the protocol's row names.
PAPER_TABLE8 = {("scr", "fc"): 36.4, ("pcr", "fc"): 34.3, ("pcr", "all"): 33.1}
PAPER_TABLE9 = (29.5, 28.2, 27.5)  # 256/256, 384/384, 384/{352,384}, in protocol order
PAPER_LOC_FUSION = 26.9


def protocol_path():
    from .recipes import recipes_dir
    return os.path.join(recipes_dir(), "reproduce", "protocol.yaml")


def load_protocol(path=None):
    """The validated protocol (a dict); VggError naming the file and the fault."""
    from .configs import canonical_name
    from .recipes import read_mapping

    path = path or protocol_path()
    protocol = read_mapping(path, "protocol")

    def fail(message):
        raise VggError("protocol %s: %s" % (path, message))
    for key in ("dataset", "seeds", "model", "training", "scales", "runs", "multicrop",
                "fusion", "features", "pixels_side", "verdict_standard_errors"):
        if key not in protocol:
            fail("%s is missing" % key)
    seeds = protocol["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0
                                                      for s in seeds)):
        fail("seeds must be a list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        fail("seeds repeat")
    scales, runs = protocol["scales"], protocol["runs"]
    for name, scale in scales.items():
        if not (isinstance(scale, dict) and "train" in scale and isinstance(
                scale.get("test"), list) and len(scale["test"]) == 3):
            fail("scale %s needs train and three test scales" % name)
    for name, run in runs.items():
        if not isinstance(run, dict) or run.get("scale") not in scales:
            fail("run %s: scale must be one of %s" % (name, ", ".join(scales)))
        try:
            run["net"] = canonical_name(str(run.get("net")))
        except VggError as err:
            fail("run %s: %s" % (name, err))
        if run.get("parent") is not None and run["parent"] not in runs:
            fail("run %s: parent %s is not a run" % (name, run["parent"]))
        if not (isinstance(run.get("epochs"), int) and run["epochs"] > 0):
            fail("run %s: epochs must be a positive integer" % name)
    order = list(runs)
    for name, run in runs.items():
        if run.get("parent") and order.index(run["parent"]) > order.index(name):
            fail("run %s comes before its parent %s" % (name, run["parent"]))
    for key in ("multicrop", "fusion"):
        if not all(name in runs for name in protocol[key]):
            fail("%s names a run that is not in runs" % key)
    if protocol["features"].get("run") not in runs:
        fail("features.run must be a run")
    if "localisation" in protocol:
        _check_localisation(protocol, fail)
    with open(path, "rb") as f:
        protocol["_text"] = f.read().decode("utf-8")
    return protocol


def _check_localisation(protocol, fail):
    loc = protocol["localisation"]
    for key in ("lr", "epochs", "shifts", "runs", "table8", "table9", "fusion"):
        if key not in loc:
            fail("localisation.%s is missing" % key)
    if not (isinstance(loc["epochs"], int) and loc["epochs"] > 0):
        fail("localisation.epochs must be a positive integer")
    for name, run in loc["runs"].items():
        if not isinstance(run, dict) or run.get("task") not in ("scr", "pcr") or \
                run.get("layers") not in ("fc", "all"):
            fail("localisation run %s needs task scr or pcr and layers fc or all" % name)
        parent = protocol["runs"].get(run.get("parent"))
        if parent is None or ":" in str(protocol["scales"][parent["scale"]]["train"]):
            fail("localisation run %s: parent must be a run at a fixed scale (§A.1)" % name)
    if len(loc["table8"]) != 3 or not all(n in loc["runs"] for n in loc["table8"]):
        fail("localisation.table8 must name three localisation runs")
    if len(loc["table9"]) != 3 or not all(
            isinstance(row, dict) and row.get("run") in loc["runs"] and isinstance(
                row.get("scales"), list) and row["scales"] for row in loc["table9"].values()):
        fail("localisation.table9 must have three rows, each a run and test scales")
    if len(loc["fusion"]) != 2 or not all(n in loc["table9"] for n in loc["fusion"]):
        fail("localisation.fusion must name two table9 rows")


# --- the jobs --------------------------------------------------------------------

class Job:
    """One ``vgg`` command (``argv``), runnable once the jobs named in ``deps`` are done;
    ``done_file`` exists once it has finished (outputs are written atomically)."""

    def __init__(self, name, argv, deps, done_file, resume_argv=None, resumable=None,
                 cost=1):
        self.name, self.argv, self.deps, self.done_file = name, argv, deps, done_file
        self.cost = cost  # for the time estimate: epochs (a training cap) or 1
        self.resume_argv, self.resumable = resume_argv, resumable
        self.status, self.seconds, self.used = "pending", 0.0, argv

    def is_done(self):
        return os.path.isfile(self.done_file)

    def command(self):
        """argv for this attempt: resume a run whose checkpoints an earlier attempt left."""
        if self.resume_argv and self.resumable and os.path.isdir(self.resumable) and \
                os.listdir(self.resumable):
            return self.resume_argv
        return self.argv


def _scale_text(values):
    return ",".join(str(v) for v in values)


def paths(out):
    return dict(raw=os.path.join(out, "scaled-digits"), data=os.path.join(out, "data"),
                runs=os.path.join(out, "runs"), eval=os.path.join(out, "eval"),
                localise=os.path.join(out, "localise"),
                fuse=os.path.join(out, "fuse"), features=os.path.join(out, "features"),
                transfer=os.path.join(out, "transfer"), logs=os.path.join(out, "logs"))


def train_flags(protocol):
    """The ``vgg train`` flags every run of the protocol shares (model and training)."""
    model, training = protocol["model"], protocol["training"]
    flags = ["--crop-size", str(model["crop_size"]), "--width-mult", str(model["width_mult"]),
             "--fc-width", str(model["fc_width"])]
    for key in ("batch_size", "init", "dropout", "patience", "max_reductions", "dtype"):
        if key in training:
            flags += ["--" + key.replace("_", "-"), str(training[key])]
    return flags


def _train_job(protocol, out, seed, name, net, scale, lr, epochs, extra, deps):
    """The job of one ``vgg train`` run of the study (``extra``: its own flags), resumed
    from its checkpoints when an earlier attempt left some."""
    where = paths(out)
    folder = os.path.join(where["runs"], "s%d" % seed, name)
    argv = ["train", "--net", net, "--data", where["data"], "--out", folder,
            "--scale", str(protocol["scales"][scale]["train"]), "--lr", str(lr),
            "--epochs", str(epochs), "--seed", str(seed), "--workers", "0", "--keep", "1",
            "--quiet"] + train_flags(protocol) + extra
    return Job("train s%d/%s" % (seed, name), argv, deps, os.path.join(folder, "final.params"),
               resume_argv=["train", "--resume", folder, "--quiet"],
               resumable=os.path.join(folder, "checkpoints"), cost=epochs)


def plan_jobs(protocol, out):
    """Every job of the study, parents before children (the order they are started in:
    the pixel baseline first, then seeds interleaved, so the cores share the long
    chains)."""
    where = paths(out)
    scales = protocol["scales"]
    val = os.path.join(where["data"], "val.rec")
    jobs = []
    for name, run in protocol["runs"].items():
        for seed in protocol["seeds"]:
            extra, deps = [], []
            if run.get("parent"):
                parent = protocol["runs"][run["parent"]]
                flag = "--finetune-from" if parent["net"] == run["net"] else "--init-from"
                extra = [flag, os.path.join(where["runs"], "s%d" % seed, run["parent"],
                                            "best.params")]
                deps.append("train s%d/%s" % (seed, run["parent"]))
            jobs.append(_train_job(protocol, out, seed, name, run["net"], run["scale"],
                                   run["lr"], run["epochs"], extra, deps))
    for name, run in protocol["runs"].items():
        for seed in protocol["seeds"]:
            folder = os.path.join(where["eval"], "s%d" % seed, name)
            mode = "both" if name in protocol["multicrop"] else "dense"
            jobs.append(Job("eval s%d/%s" % (seed, name), [
                "eval", "--params", os.path.join(where["runs"], "s%d" % seed, name,
                                                 "best.params"),
                "--data", val, "--scales", _scale_text(scales[run["scale"]]["test"]),
                "--mode", mode, "--out", folder, "--quiet"],
                ["train s%d/%s" % (seed, name)], os.path.join(folder, "report.json")))
    for seed in protocol["seeds"]:
        folder = os.path.join(where["fuse"], "s%d" % seed)
        members = [os.path.join(where["eval"], "s%d" % seed, n) for n in protocol["fusion"]]
        jobs.append(Job("fuse s%d" % seed, ["fuse"] + members + ["--out", folder],
                        ["eval s%d/%s" % (seed, n) for n in protocol["fusion"]],
                        os.path.join(folder, "report.json")))
    feats = protocol["features"]
    for seed in protocol["seeds"]:
        params = os.path.join(where["runs"], "s%d" % seed, feats["run"], "best.params")
        files = {}
        for split in ("train", "val"):
            files[split] = os.path.join(where["features"], "s%d-%s.npz" % (seed, split))
            jobs.append(Job("features s%d/%s" % (seed, split), [
                "features", "--params", params, "--layer", feats.get("layer", "fc7"),
                "--scales", _scale_text(feats["scales"]), "--data",
                os.path.join(where["data"], split + ".rec"), "--out", files[split],
                "--quiet"], ["train s%d/%s" % (seed, feats["run"])], files[split]))
        folder = os.path.join(where["transfer"], "s%d" % seed)
        jobs.append(Job("transfer s%d" % seed, [
            "transfer", "--train", files["train"], "--test", files["val"], "--out", folder],
            ["features s%d/train" % seed, "features s%d/val" % seed],
            os.path.join(folder, "report.json")))
    if "localisation" in protocol:
        jobs += localisation_jobs(protocol, out)
    pixels = os.path.join(where["features"], "pixels-%s.npz")
    folder = os.path.join(where["transfer"], "pixels")
    jobs.insert(0, Job("transfer pixels", ["transfer", "--train", pixels % "train", "--test",
                                        pixels % "val", "--out", folder], [],
                    os.path.join(folder, "report.json")))
    return jobs


def _slug(text):
    return text.replace("/", "-").replace("{", "").replace("}", "").replace(",", "+")


def localisation_jobs(protocol, out):
    """Appendix A: localisation nets trained from the classification nets, tested with
    the central crop (Table 8) and densely (Table 9), two dense outputs fused."""
    where = paths(out)
    loc, scales = protocol["localisation"], protocol["scales"]
    val = os.path.join(where["data"], "val.rec")
    jobs = []
    for seed in protocol["seeds"]:
        runs = os.path.join(where["runs"], "s%d" % seed)
        tests = os.path.join(where["localise"], "s%d" % seed)
        for name, run in loc["runs"].items():
            parent = protocol["runs"][run["parent"]]
            jobs.append(_train_job(
                protocol, out, seed, "loc-" + name, parent["net"], parent["scale"], loc["lr"],
                loc["epochs"], ["--task", run["task"], "--train-layers", run["layers"],
                                "--finetune-from",
                                os.path.join(runs, run["parent"], "best.params")],
                ["train s%d/%s" % (seed, run["parent"])]))
        for name in loc["table8"]:
            parent = protocol["runs"][loc["runs"][name]["parent"]]
            folder = os.path.join(tests, "center-" + name)
            jobs.append(Job("localise s%d/center-%s" % (seed, name), [
                "localise", "--params", os.path.join(runs, "loc-" + name, "best.params"),
                "--data", val, "--mode", "center", "--scales",
                str(scales[parent["scale"]]["train"]), "--out", folder, "--quiet"],
                ["train s%d/loc-%s" % (seed, name)], os.path.join(folder, "report.json")))
        for row, test in loc["table9"].items():
            run = loc["runs"][test["run"]]
            folder = os.path.join(tests, "dense-" + _slug(row))
            jobs.append(Job("localise s%d/dense-%s" % (seed, _slug(row)), [
                "localise", "--params", os.path.join(runs, "loc-" + test["run"], "best.params"),
                "--classifier", os.path.join(runs, run["parent"], "best.params"),
                "--data", val, "--mode", "dense", "--scales", _scale_text(test["scales"]),
                "--shifts", str(loc["shifts"]), "--out", folder, "--quiet"],
                ["train s%d/loc-%s" % (seed, test["run"])], os.path.join(folder, "report.json")))
        members = [os.path.join(tests, "dense-" + _slug(row)) for row in loc["fusion"]]
        folder = os.path.join(tests, "fusion")
        jobs.append(Job("localise s%d/fusion" % seed, ["fuse"] + members + ["--out", folder],
                        ["localise s%d/dense-%s" % (seed, _slug(row)) for row in loc["fusion"]],
                        os.path.join(folder, "report.json")))
    return jobs


def run_jobs(jobs, slots, logs, journal, progress=None):
    """Run ``jobs`` (in order, as their dependencies finish) ``slots`` at a time, one
    OpenMP thread each. A failed job's dependants are skipped; the rest go on.
    Each job's output goes to ``logs/<job>.log``; ``journal`` gets a JSON line per
    finished job. Returns {status: count}."""
    progress = progress or _say
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", VGG_AUTO_DTYPE=os.environ.get(
        "VGG_AUTO_DTYPE", "float32"))
    by_name = {job.name: job for job in jobs}
    for job in jobs:
        if job.is_done():
            job.status = "kept"
    from .launch import _die_with_parent, catch_stop_signals

    stopping, restore_signals = catch_stop_signals()  # the loop acts within 0.2 s
    running = {}  # name -> (Popen, start, log file)
    started = time.time()
    total = sum(job.status == "pending" for job in jobs)
    finished = 0
    try:
        while True:
            if stopping:
                raise SystemExit(128 + stopping[0])  # the finally below stops the children
            for job in jobs:
                if job.status == "pending" and any(by_name[d].status in ("failed", "skipped")
                                                   for d in job.deps):
                    job.status = "skipped"
                    finished += 1
                    progress("[%d/%d] skipped %s: a job it needs failed" % (finished, total,
                                                                           job.name))
            ready = [job for job in jobs if job.status == "pending" and all(
                by_name[d].status in ("done", "kept") for d in job.deps)]
            for job in ready[:max(0, slots - len(running))]:
                log = open(os.path.join(logs, job.name.replace("/", "-").replace(" ", "-")
                                        + ".log"), "ab")
                argv = job.used = job.command()
                log.write(("$ vgg %s\n" % " ".join(argv)).encode())
                log.flush()
                process = subprocess.Popen(
                    [sys.executable, "-m", "vggcli"] + argv, env=env, stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=functools.partial(_die_with_parent, os.getpid()))
                running[job.name] = (process, time.time(), log)
                job.status = "running"
            if not running:
                break
            time.sleep(0.2)
            for name, (process, start, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                del running[name]
                job = by_name[name]
                job.seconds = time.time() - start
                job.status = "done" if process.returncode == 0 and job.is_done() else "failed"
                finished += 1
                with open(journal, "a") as f:
                    f.write(json.dumps(dict(job=name, status=job.status, exit=process.returncode,
                                            seconds=round(job.seconds, 1),
                                            command="vgg " + " ".join(job.used),
                                            time=time.time())) + "\n")
                elapsed = time.time() - started
                eta = _estimate(jobs, slots)
                progress("[%d/%d] %s %s in %.0f s%s (elapsed %s, at most about %s left)" % (
                    finished, total, job.status, name, job.seconds,
                    "" if job.status == "done" else ", exit %d: see %s" % (
                        process.returncode, log.name), _clock(elapsed), _clock(eta)))
    finally:
        for process, _, _ in running.values():  # interrupted: children checkpoint, stop
            process.send_signal(signal.SIGTERM)
        for process, _, log in running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
        restore_signals()
    counts = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return counts


def _estimate(jobs, slots):
    """Seconds left if every training run to come costs its cap (an upper bound: the lr
    schedule usually ends a run before its cap), at the pace of the training epochs
    and of the other jobs done so far."""
    left = 0.0
    for training in (True, False):
        kind = [job for job in jobs if job.name.startswith("train") == training]
        done = [job for job in kind if job.status == "done"]
        if done:
            pace = sum(job.seconds for job in done) / sum(job.cost for job in done)
            left += pace * sum(job.cost for job in kind
                               if job.status in ("pending", "running"))
    return left / slots


def _say(message):
    print(message, flush=True)


def _clock(seconds):
    return "%d:%02d" % (seconds // 60, seconds % 60)


# --- the raw-pixel baseline -------------------------------------------------------

def pixel_features(rec_path, side, out_path):
    """Each image of ``rec_path`` rescaled to side x side RGB, as an L2-normalised
    vector (the deep features are L2-normalised too), in a ``vgg features`` file."""
    import cv2

    from .data import RecordImages
    from .features import write_features
    images = RecordImages(rec_path)
    rows, labels = [], []
    for position in range(len(images)):
        image, label = images.image(position)
        rows.append(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).ravel())
        labels.append(label)
    features = np.asarray(rows, dtype=np.float32)
    features -= features.mean(axis=1, keepdims=True)
    features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    info = dict(layer="pixels", scales=[side], aggregate="mean", nets=["raw pixels"],
                dims=features.shape[1], images=len(rows))
    write_features(out_path, features, np.asarray(labels, np.int64),
                   [str(i) for i in range(len(rows))], [], info)


# --- the study ----------------------------------------------------------------------

def prepare(protocol, out, progress=None):
    """The output folder (ours, same protocol), the dataset, its records and the pixel
    baseline's features: cheap steps run in this process."""
    progress = progress or _say
    from data_tools.common import check_overlap, mark_output, output_kind, write_text_atomic
    from data_tools.scaled_digits import write_scaled_digits

    check_overlap(out, [])
    if os.path.lexists(out) and (not os.path.isdir(out) or os.listdir(out)) and \
            output_kind(out) != KIND:
        raise VggError("--out %s holds files vgg reproduce did not write: vgg never changes "
                       "them; choose another --out" % out)
    os.makedirs(out, exist_ok=True)
    saved = os.path.join(out, "protocol.yaml")
    if os.path.isfile(saved):
        with open(saved, encoding="utf-8", errors="replace") as f:
            if f.read() != protocol["_text"]:
                raise VggError("--out %s holds a study run under another protocol (%s "
                               "differs): choose another --out" % (out, saved))
    else:
        mark_output(out, KIND)
        write_text_atomic(saved, protocol["_text"])
    where = paths(out)
    data = protocol["dataset"]
    if not os.path.isfile(os.path.join(where["raw"], "dataset.json")):
        progress("writing the scaled-digits dataset to %s" % where["raw"])
        tmp = where["raw"] + ".tmp"
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from a killed run
        write_scaled_digits(tmp, seed=data["seed"], per_scan=data["per_scan"],
                            val_ratio=data["val_ratio"], limit=data.get("limit"))
        os.rename(tmp, where["raw"])
    if not os.path.isfile(os.path.join(where["data"], "manifest.json")):
        _vgg(["pack", where["raw"], "--out", where["data"], "--synsets",
              os.path.join(where["raw"], "synsets.txt"), "--boxes",
              os.path.join(where["raw"], "boxes.csv"), "--quiet"], progress)
    for split in ("train", "val"):
        path = os.path.join(where["features"], "pixels-%s.npz" % split)
        if not os.path.isfile(path):
            os.makedirs(where["features"], exist_ok=True)
            pixel_features(os.path.join(where["data"], split + ".rec"),
                           protocol["pixels_side"], path)


def _vgg(argv, progress):
    progress("$ vgg " + " ".join(argv))
    done = subprocess.run([sys.executable, "-m", "vggcli"] + argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise VggError("vgg %s failed (exit %d): %s" % (argv[0], done.returncode,
                                                        done.stdout.strip()[-500:]))


def reproduce(out, report_path, protocol=None, slots=None, docs_copy=None, progress=None):
    """Run the study of ``protocol`` (the default protocol file when None) in ``out`` and
    write the report; returns (report text, {job status: count})."""
    progress = progress or _say
    from data_tools.common import available_cores, write_text_atomic

    protocol = protocol or load_protocol()
    started = time.time()
    prepare(protocol, out, progress)
    where = paths(out)
    jobs = plan_jobs(protocol, out)
    slots = slots or available_cores()
    progress("%d jobs, %d at a time (%s)" % (len(jobs), slots, out))
    try:
        counts = run_jobs(jobs, slots, where["logs"], os.path.join(out, "jobs.jsonl"),
                          progress)
    finally:
        ran = sum(job.status in ("done", "failed") for job in jobs)
        with open(os.path.join(out, "sessions.jsonl"), "a") as f:
            f.write(json.dumps(dict(start=started, end=time.time(), jobs_run=ran)) + "\n")
    seconds, sessions = study_time(out)
    results = collect(protocol, out)
    text = report(protocol, results, jobs, seconds, counts, sessions)
    for path in filter(None, (report_path, docs_copy)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_text_atomic(path, text)
    return text, counts


def study_time(out):
    """(seconds, invocations): the wall time of the invocations that ran jobs (a resumed
    study's pauses do not count), from ``sessions.jsonl``."""
    from .plots import read_jsonl
    sessions = read_jsonl(os.path.join(out, "sessions.jsonl"))
    working = [s for s in sessions if s.get("jobs_run")] or sessions[-1:]
    return sum(s["end"] - s["start"] for s in working), len(working)


# --- results ---------------------------------------------------------------------------

def _read(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _row(report, mode, scales):
    for row in (report or {}).get("rows", []):
        if row["mode"] == mode and list(row["scales"]) == list(scales):
            return 100 * row["top1_error"], 100 * row["top5_error"]
    return None


def _training(folder):
    """(epochs, how it ended, best val top-1 %) from a run's log.jsonl."""
    from .plots import read_jsonl
    path = os.path.join(folder, "log.jsonl")
    if not os.path.isfile(path):
        return None
    epochs = read_jsonl(path, "epoch")
    if not epochs:
        return None
    schedules = [e.get("schedule") for e in epochs]
    return dict(epochs=len(epochs), ended="plateau" if schedules[-1] == "finished" else "cap",
                reductions=sum(s == "reduced" for s in schedules),
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
            rep = _read(os.path.join(where["eval"], "s%d" % seed, name, "report.json"))
            results["single", name, seed] = _row(rep, "dense", [tests[1]])
            results["multi", name, seed] = _row(rep, "dense", tests)
            results["multicrop", name, seed] = _row(rep, "multicrop", tests)
            results["both", name, seed] = _row(rep, "both", tests)
            results["training", name, seed] = _training(
                os.path.join(where["runs"], "s%d" % seed, name))
    for seed in protocol["seeds"]:
        rep = _read(os.path.join(where["fuse"], "s%d" % seed, "report.json"))
        results["fusion", None, seed] = (100 * rep["top1_error"], 100 * rep["top5_error"]) \
            if rep else None
        rep = _read(os.path.join(where["transfer"], "s%d" % seed, "report.json"))
        results["svm", None, seed] = 100 * rep["value"] if rep else None
    rep = _read(os.path.join(where["transfer"], "pixels", "report.json"))
    results["pixels", None, None] = 100 * rep["value"] if rep else None
    if "localisation" in protocol:
        _collect_localisation(protocol, where, results)
    return results


def _loc_errors(report, k):
    """(the net's, whole image's, central box's) error % at k guesses."""
    if not report:
        return None
    return tuple(100 * errors[str(k)] for errors in (
        report["errors"], report["baselines"]["whole image"],
        report["baselines"]["central box"]))


def _collect_localisation(protocol, where, results):
    loc = protocol["localisation"]
    for seed in protocol["seeds"]:
        tests = os.path.join(where["localise"], "s%d" % seed)
        for name in loc["runs"]:
            results["training", "loc-" + name, seed] = _training(
                os.path.join(where["runs"], "s%d" % seed, "loc-" + name))
        for name in loc["table8"]:
            rep = _read(os.path.join(tests, "center-" + name, "report.json"))
            results["center", name, seed] = _loc_errors(rep, 1)
        for row in list(loc["table9"]) + ["fusion"]:
            folder = "fusion" if row == "fusion" else "dense-" + _slug(row)
            rep = _read(os.path.join(tests, folder, "report.json"))
            results["dense5", row, seed] = _loc_errors(rep, 5)
            results["dense1", row, seed] = _loc_errors(rep, 1)


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), sd, len(values)


CHANCE_MARGIN = 5.0  # top-1 error points: a net this close to chance has learned nothing


def verdict(differences, k=2.0, null=False, compared=None, chance=90.0):
    """The stated rule on paired per-seed differences (claim's direction positive):
    (mean, standard error, verdict). ``null``: a "does not help" claim, which holds
    unless the difference is over ``k`` standard errors against it. ``compared``:
    the per-seed top-1 errors of each side; a side whose mean is within
    CHANCE_MARGIN of ``chance`` makes the comparison inconclusive."""
    values = [d for d in differences if d is not None]
    if len(values) < 2:
        return None, None, "inconclusive (under 2 seeds)"
    for side in compared or ():
        found = mean_sd(side)
        if found is None or found[0] >= chance - CHANCE_MARGIN:
            return float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(
                len(values))), "inconclusive (at chance)"
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values)))
    if null:
        return mean, se, "not held" if mean < -k * se else "held"
    if mean > k * se:
        return mean, se, "held"
    if mean < -k * se:
        return mean, se, "not held"
    return mean, se, "inconclusive"


# --- the report ---------------------------------------------------------------------

def _per_seed(results, protocol, kind, run, index=0):
    values = []
    for seed in protocol["seeds"]:
        value = results.get((kind, run, seed))
        values.append(value[index] if isinstance(value, tuple) else value)
    return values


def _cell(values):
    found = mean_sd(values)
    if found is None:
        return "—"
    mean, sd, n = found
    return "%.1f ± %.1f" % (mean, sd) if n > 1 else "%.1f" % mean


def _paper_cell(pair):
    return "%.1f / %.1f" % pair if pair else ""


def claims(protocol, results):
    """The findings the issue asks for, as dicts: claim, paper (its evidence), sides
    ([(label, per-seed top-1 errors)] of the better and the worse side by the claim;
    None for the SVM's accuracies), diffs (paired per seed, positive in the claim's
    direction), null (a "does not help" claim) and runs (the training runs behind it)."""
    def err(kind, run):
        return _per_seed(results, protocol, kind, run)

    def minus(a, b):
        return [x - y if x is not None and y is not None else None for x, y in zip(a, b)]

    def best_of(a, b):
        return [min(x, y) if x is not None and y is not None else None for x, y in zip(a, b)]

    scales = protocol["scales"]
    q = {name: scales[run["scale"]]["test"] for name, run in protocol["runs"].items()}

    def pair(claim, paper, better, worse, runs, null=False):
        """``better`` and ``worse``: (label, per-seed top-1 errors); claim: better < worse."""
        return dict(claim=claim, paper=paper, sides=[better, worse],
                    diffs=minus(worse[1], better[1]), null=null, runs=runs)

    def single(name):
        return "%s (Q = %d)" % (name, q[name][1]), err("single", name)

    def multi(name):
        return "%s (Q = %s)" % (name, _scale_text(q[name])), err("multi", name)

    def both(name):
        return "%s multi-crop & dense" % name, err("both", name)

    def better_mode(name):
        return "%s's better of dense and multi-crop" % name, best_of(
            err("multi", name), err("multicrop", name))
    fused = protocol["fusion"][:2]
    found = [
        pair("LRN does not improve net A (A-LRN vs A, Q = S)", "29.6 vs 29.7",
             single("A-S1"), single("A-LRN-S1"), ["A-S1", "A-LRN-S1"], null=True),
        pair("Error falls with depth: B (13 layers) beats A (11)", "28.7 vs 29.6",
             single("B-S1"), single("A-S1"), ["B-S1", "A-S1"]),
        pair("Error falls with depth: D (16 layers) beats B (13)", "27.0 vs 28.7",
             single("D-S1"), single("B-S1"), ["D-S1", "B-S1"]),
        pair("Depth saturates: E (19 layers) is no better than D (16)", "27.0 vs 27.3",
             single("D-S1"), single("E-S1"), ["D-S1", "E-S1"], null=True),
        pair("3x3 beats 1x1 at equal depth: D beats C (S1)", "27.0 vs 28.1",
             single("D-S1"), single("C-S1"), ["D-S1", "C-S1"]),
        pair("Scale jittering beats fixed S in training: D-J vs D-S2 (Q = %d)" % q["D-J"][1],
             "25.6 vs 26.8", single("D-J"), single("D-S2"), ["D-J", "D-S2"]),
        pair("Scale jittering beats fixed S in training: E-J vs E-S2 (Q = %d)" % q["E-J"][1],
             "25.5 vs 26.9", single("E-J"), single("E-S2"), ["E-J", "E-S2"]),
        pair("Multi-scale testing beats single scale: D-J, Q in {%s} vs %d" % (
            _scale_text(q["D-J"]), q["D-J"][1]), "24.8 vs 25.6", multi("D-J"), single("D-J"),
            ["D-J"]),
        pair("Multi-scale testing beats single scale: D-S1, Q in {%s} vs %d" % (
            _scale_text(q["D-S1"]), q["D-S1"][1]), "26.6 vs 27.0", multi("D-S1"),
            single("D-S1"), ["D-S1"]),
        pair("Dense and multi-crop are complementary: both beat the better of the two (D-J)",
             "24.4 vs 24.6", both("D-J"), better_mode("D-J"), ["D-J"]),
        pair("Dense and multi-crop are complementary: both beat the better of the two (E-J)",
             "24.4 vs 24.6", both("E-J"), better_mode("E-J"), ["E-J"]),
        pair("Fusion (%s) beats its better member" % " & ".join(fused), "23.7 vs 24.4",
             ("fusion", err("fusion", None)),
             ("the better member", best_of(*[err("both", n) for n in fused])), fused),
        dict(claim="Deep features beat raw pixels for a linear SVM (accuracy %)",
             paper="(Appendix B: VOC/Caltech)", sides=None, null=False,
             runs=[protocol["features"]["run"]],
             shown=[("fc7 of %s" % protocol["features"]["run"], err("svm", None)),
                    ("raw pixels", [results.get(("pixels", None, None))])],
             diffs=minus(err("svm", None), [results.get(("pixels", None, None))] * len(
                 protocol["seeds"]))),
    ]
    if "localisation" in protocol:
        found += localisation_claims(protocol, results, pair, minus, best_of)
    return found


def localisation_claims(protocol, results, pair, minus, best_of):
    """Appendix A's findings (localisation error %, lower is better), and the issue's:
    the nets beat fixed boxes. Not judged against chance: a fixed box is no net."""
    loc = protocol["localisation"]
    runs, rows = loc["runs"], list(loc["table9"])

    def center(name, index=0):
        return _per_seed(results, protocol, "center", name, index)

    def dense(row, index=0):
        return _per_seed(results, protocol, "dense5", row, index)

    def fixed(values_of, key):
        return best_of(values_of(key, 1), values_of(key, 2))

    def named(kind, layers):
        return next((n for n in loc["table8"] if runs[n]["task"] == kind and
                     runs[n]["layers"] == layers), None)
    scr_fc, pcr_fc, pcr_all = named("scr", "fc"), named("pcr", "fc"), named("pcr", "all")
    out = []
    if scr_fc and pcr_fc:
        out.append(pair("Localisation: PCR beats SCR (FC layers fine-tuned; central crop, "
                        "ground-truth class)", "34.3 vs 36.4", ("PCR", center(pcr_fc)),
                        ("SCR", center(scr_fc)), ["loc-" + pcr_fc, "loc-" + scr_fc]))
    if pcr_fc and pcr_all:
        out.append(pair("Localisation: fine-tuning all layers beats the FC layers only (PCR, "
                        "central crop)", "33.1 vs 34.3", ("all layers", center(pcr_all)),
                        ("FC layers", center(pcr_fc)), ["loc-" + pcr_all, "loc-" + pcr_fc]))
    for name in (scr_fc, pcr_all):
        if name:
            out.append(pair("Localisation: %s localises better than the better fixed box "
                            "(whole image or central box; central crop)" % name,
                            "(issue #17)", (name, center(name)),
                            ("fixed box", fixed(center, name)), ["loc-" + name]))
    out += [
        pair("Localisation: training at S2 beats S1 (dense, %s vs %s, top-5)" % (
            rows[1], rows[0]), "28.2 vs 29.5", (rows[1], dense(rows[1])),
            (rows[0], dense(rows[0])), ["loc-" + loc["table9"][r]["run"] for r in rows[:2]]),
        pair("Localisation: several test scales beat one (dense, %s vs %s, top-5)" % (
            rows[2], rows[1]), "27.5 vs 28.2", (rows[2], dense(rows[2])),
            (rows[1], dense(rows[1])), ["loc-" + loc["table9"][rows[2]]["run"]]),
        pair("Localisation: fusion (%s) beats its better member (dense, top-5)" % " & ".join(
            loc["fusion"]), "26.9 vs 27.5", ("fusion", dense("fusion")),
            ("the better member", best_of(*[dense(r) for r in loc["fusion"]])),
            ["loc-" + loc["table9"][r]["run"] for r in loc["fusion"]]),
        pair("Localisation: dense boxes beat fixed boxes with the same classes (%s, top-5)"
             % rows[1], "(issue #17)", (rows[1], dense(rows[1])),
             ("fixed box", fixed(dense, rows[1])), ["loc-" + loc["table9"][rows[1]]["run"]]),
    ]
    for claim in out:
        claim["judge_chance"] = False
        claim["error"] = "top-5 localisation error" if "top-5" in claim["claim"] else \
            "localisation error"
    return out


def localisation_tables(protocol, results):
    """The report's Table 8 and Table 9 shaped sections (Markdown lines)."""
    from .tables import markdown_table
    loc, scales = protocol["localisation"], protocol["scales"]

    def cell(kind, name, index=0):
        return _cell(_per_seed(results, protocol, kind, name, index))
    rows8 = []
    for name in loc["table8"]:
        run = loc["runs"][name]
        paper = PAPER_TABLE8.get((run["task"], run["layers"]))
        rows8.append(["%s (loc-%s)" % (run["task"].upper(), name),
                      "all" if run["layers"] == "all" else "fc6-fc8",
                      str(scales[protocol["runs"][run["parent"]]["scale"]]["train"]),
                      cell("center", name), "%.1f" % paper if paper else ""])
    first = loc["table8"][0]
    for index, what in ((1, "baseline: the whole image"), (2, "baseline: the central box "
                                                           "(middle half of each side)")):
        rows8.append([what, "—", "—", cell("center", first, index), ""])
    table8 = markdown_table(["regression", "fine-tuned layers", "S = Q",
                             "localisation err. (%)", "paper (ILSVRC, S = 384)"], rows8)
    rows9 = []
    for (row, test), paper in zip(loc["table9"].items(), PAPER_TABLE9):
        run = loc["runs"][test["run"]]
        rows9.append([row, "%s (loc-%s)" % (run["task"].upper(), test["run"]),
                      _scale_text(test["scales"]), cell("dense1", row), cell("dense5", row),
                      "%.1f" % paper])
    rows9.append(["fusion " + " & ".join(loc["fusion"]), "—", "—", cell("dense1", "fusion"),
                  cell("dense5", "fusion"), "%.1f" % PAPER_LOC_FUSION])
    second = list(loc["table9"])[1]
    for index, what in ((1, "the whole image"), (2, "the central box")):
        rows9.append(["baseline: %s, %s's classes" % (what, second), "—", "—",
                      cell("dense1", second, index), cell("dense5", second, index), ""])
    table9 = markdown_table(["train S / test Q", "net", "test Q", "top-1 loc. err. (%)",
                             "top-5 loc. err. (%)", "paper top-5 (ILSVRC)"], rows9)
    return [
        "## Table 8 shape: localisation, central crop, ground-truth class (Appendix A)",
        "",
        "Localisation nets (fc8 regresses boxes) fine-tuned from the classification net of "
        "the same scale with lr %g, at most %d epochs; tested on the central crop at Q = S "
        "with the ground-truth class's box. An image is localised when the box has IoU >= "
        "0.5 with a ground-truth box (the ILSVRC devkit's rule, inclusive pixels)."
        % (loc["lr"], loc["epochs"]),
        "",
        table8,
        "",
        "## Table 9 shape: dense localisation, top-5 guesses (Appendix A)",
        "",
        "The localisation net applied densely (locations %g px apart: %d shifts of the "
        "32 px stride) with the classification net's per-location class scores; each of "
        "the top-5 classes' boxes merged greedily (after OverFeat). Names are train "
        "scale / test scales of the protocol (the paper's 256 and 384 are S1 and S2 here)."
        % (32 / loc["shifts"], loc["shifts"]),
        "",
        table9,
        ""]


def analysis(found, outcome, protocol, results):
    """One sentence on a claim that did not hold (or could not be judged), from the
    numbers: how many seeds went the claim's way, the two sides' mean errors, and
    whether a run behind it was stopped by its epoch cap while still improving."""
    diffs = [d for d in found["diffs"] if d is not None]
    parts = ["%d of %d seeds go the claim's way" % (sum(d > 0 for d in diffs), len(diffs))]
    if found["sides"]:
        parts.append(" vs ".join("%s %s%%" % (label, _cell(values))
                                 for label, values in found["sides"]) + " " + found.get(
            "error", "top-1 error"))
    elif found.get("shown"):
        parts.append(" vs ".join("%s %s%%" % (label, _cell(values))
                                 for label, values in found["shown"]) + " accuracy")
    capped = []
    for name in found["runs"]:
        ended = [results.get(("training", name, s)) for s in protocol["seeds"]]
        count = sum(1 for e in ended if e and e["ended"] == "cap")
        if count:
            capped.append("%s in %d of %d seeds" % (name, count, len(ended)))
    if capped:
        parts.append("stopped by the epoch cap before the lr schedule ended: " +
                     ", ".join(capped))
    if outcome.startswith("inconclusive (at chance)"):
        parts.append("a side within %g points of chance has learned nothing, so the "
                     "comparison says nothing" % CHANCE_MARGIN)
    return "; ".join(parts) + "."


def _machine():
    import platform

    from data_tools.common import available_cores

    from .precision import cpu_description
    return "%s, %d cores, Python %s, %s" % (cpu_description(), available_cores(),
                                            platform.python_version(), platform.system())


def report(protocol, results, jobs, seconds, counts, sessions=1):
    """The Markdown report: paper-shaped tables (mean ± sd over seeds, the paper's
    ILSVRC numbers beside), the findings with their verdicts, training details."""
    from .tables import markdown_table

    seeds = protocol["seeds"]
    scales, runs = protocol["scales"], protocol["runs"]
    k = float(protocol["verdict_standard_errors"])
    chance = 100.0 * (1 - 1.0 / 10)  # ten digit classes
    head = ["ConvNet", "train S", "test Q", "top-1 err. (%)", "top-5 err. (%)",
            "paper top-1 / top-5 (ILSVRC)"]

    def line(name, kind, tests, paper):
        run = runs[name]
        return [name, scales[run["scale"]]["train"], tests,
                _cell(_per_seed(results, protocol, kind, name, 0)),
                _cell(_per_seed(results, protocol, kind, name, 1)),
                _paper_cell(paper.get((run["net"], run["scale"])))]
    table3 = markdown_table(head, [line(n, "single", scales[r["scale"]]["test"][1], PAPER)
                                   for n, r in runs.items()])
    table4 = markdown_table(head, [line(n, "multi", _scale_text(scales[r["scale"]]["test"]),
                                        PAPER_MULTISCALE) for n, r in runs.items()])
    rows5 = []
    for name in protocol["multicrop"]:
        for kind, mode in (("multi", "dense"), ("multicrop", "multicrop"),
                           ("both", "both")):
            rows5.append([name, mode, _cell(_per_seed(results, protocol, kind, name, 0)),
                          _cell(_per_seed(results, protocol, kind, name, 1)),
                          _paper_cell(PAPER_MODES.get((runs[name]["net"], mode)))])
    table5 = markdown_table(["ConvNet", "evaluation", "top-1 err. (%)", "top-5 err. (%)",
                             "paper top-1 / top-5"], rows5)
    fusion_rows = [[name + " (multi-crop & dense)", _cell(_per_seed(results, protocol, "both",
                                                                    name, 0)),
                    _cell(_per_seed(results, protocol, "both", name, 1)), ""]
                   for name in protocol["fusion"]]
    fusion_rows.append(["fusion " + " & ".join(protocol["fusion"]),
                        _cell(_per_seed(results, protocol, "fusion", None, 0)),
                        _cell(_per_seed(results, protocol, "fusion", None, 1)),
                        _paper_cell(PAPER_FUSION)])
    table6 = markdown_table(["Combined ConvNet models", "top-1 err. (%)", "top-5 err. (%)",
                             "paper top-1 / top-5"], fusion_rows)
    pixels = results.get(("pixels", None, None))
    svm = markdown_table(["descriptor", "linear-SVM accuracy on val (%)"], [
        ["%s of %s at Q = %s" % (protocol["features"].get("layer", "fc7"),
                                 protocol["features"]["run"],
                                 _scale_text(protocol["features"]["scales"])),
         _cell(_per_seed(results, protocol, "svm", None))],
        ["raw pixels, %dx%d RGB" % (protocol["pixels_side"], protocol["pixels_side"]),
         "%.1f" % pixels if pixels is not None else "—"]])
    loc_sections = localisation_tables(protocol, results) if "localisation" in protocol \
        else []
    findings, verdicts = [], {}
    notes = []
    for found in claims(protocol, results):
        diffs = found["diffs"]
        mean, se, outcome = verdict(diffs, k, found["null"], [
            values for _, values in found["sides"] or ()] if found.get(
                "judge_chance", True) else None, chance)
        verdicts[outcome] = verdicts.get(outcome, 0) + 1
        findings.append([found["claim"], found["paper"], " ".join(
            "%+.1f" % d if d is not None else "—" for d in diffs),
            "—" if mean is None else "%+.1f ± %.1f" % (mean, se), "**%s**" % outcome])
        if outcome != "held":
            notes.append("- *%s* (%s): %s" % (found["claim"], outcome,
                                              analysis(found, outcome, protocol, results)))
        elif found["null"] and mean > k * se:  # held, though not as "about the same"
            notes.append("- *%s* (held, but not as a tie: the net it should match is worse "
                         "by over %g standard errors): %s" % (
                             found["claim"], k, analysis(found, outcome, protocol, results)))
    table_findings = markdown_table(["claim", "paper (err. %)",
                                     "ours: difference per seed (%s)" % ", ".join(
                                         "s%d" % s for s in seeds),
                                     "mean ± SE", "verdict"], findings)
    training_rows = []
    trained = [(name, runs[name].get("parent"), runs[name]["lr"], runs[name]["epochs"])
               for name in runs]
    if "localisation" in protocol:
        loc = protocol["localisation"]
        trained += [("loc-" + name, run["parent"], loc["lr"], loc["epochs"])
                    for name, run in loc["runs"].items()]
    for name, parent, lr, epochs in trained:
        done = [results.get(("training", name, s)) for s in seeds]
        done = [d for d in done if d]
        training_rows.append([name, parent or "—", str(lr), str(epochs),
                              ", ".join(str(d["epochs"]) for d in done) or "—",
                              ", ".join(d["ended"] for d in done) or "—",
                              ", ".join(str(d["reductions"]) for d in done) or "—",
                              "%.0f" % sum(d["seconds"] for d in done)])
    table_training = markdown_table(["run", "starts from", "lr", "epoch cap",
                                     "epochs per seed", "ended by", "lr divisions",
                                     "train s (all seeds)"], training_rows)
    failed = [job.name for job in jobs if job.status in ("failed", "skipped")]
    summary = ", ".join("%d %s" % (n, v) for v, n in sorted(verdicts.items()))
    lines = [
        "# vgg reproduce: the paper's findings at small scale",
        "",
        "Generated by `make reproduce` (`vgg reproduce`) on %s; the study took %s (h:mm:ss"
        "%s) on %s. Seeds %s; every number is the mean ± standard deviation over the "
        "seeds, as it came out of this run." % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), _hms(seconds),
            ", over %d invocations" % sessions if sessions > 1 else "", _machine(),
            ", ".join(str(s) for s in seeds)),
        "",
        "Data: scaled digits (`data_tools/scaled_digits.py`): each of scikit-learn's 1,797 "
        "real 8x8 digit scans placed %d times at a random size (12-60 px) and position on "
        "a 64x64 crop of a real photo; train and val split by scan. Chance is 90%% top-1 "
        "error. Nets at %s conv width with %d-wide fc6/fc7 and %d px crops (the paper: "
        "full width, 4096, 224)." % (protocol["dataset"]["per_scan"],
                                     protocol["model"]["width_mult"],
                                     protocol["model"]["fc_width"],
                                     protocol["model"]["crop_size"]),
        "",
        "Jobs: %s." % ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())) + (
            " Missing numbers (—) come from these failed or skipped jobs: %s; their logs "
            "are in the output folder's logs/." % ", ".join(failed) if failed else ""),
        "",
        "## Findings",
        "",
        "Rule (fixed in the protocol before the run): for each seed, the difference of "
        "top-1 errors (localisation claims: the localisation error they name) in the "
        "claim's direction (positive: the claim's way); a claim is "
        "**held** when the mean difference exceeds %g standard errors, **not held** when "
        "it is beyond %g standard errors the other way, else **inconclusive**. Claims that "
        "something does *not* help (LRN, depth past 16) are held unless the difference "
        "goes %g standard errors against them. A comparison where either side's mean error is "
        "within %g points of chance (%g%%) is inconclusive: those nets learned nothing. "
        "Verdicts: %s." % (k, k, k, CHANCE_MARGIN, chance, summary),
        "",
        table_findings,
        "",
        "Where a claim did not hold, could not be judged, or held only in the letter of "
        "the rule:" if notes else "Every claim held.",
        ""] + notes + [
        "",
        "## Table 3 shape: single test scale (dense; Q = S, or the middle of a jittered "
        "range)",
        "",
        table3,
        "",
        "## Table 4 shape: multi-scale test (dense)",
        "",
        table4,
        "",
        "## Table 5 shape: dense, multi-crop (%d crops per scale incl. flips) and both, "
        "over three scales" % 50,
        "",
        table5,
        "",
        "## Table 6 shape: fusion (averaged soft-max posteriors, multi-crop & dense)",
        "",
        table6,
        "",
        "## Appendix B shape: deep features against raw pixels, linear SVM (C by 3-fold "
        "cross-validation on train)",
        "",
        svm,
        ""] + loc_sections + [
        "## Training: how each run ended",
        "",
        "A run ends at its third validation plateau (the protocol's lr divisions spent) "
        "or at its epoch cap; *cap* means the schedule had not finished.",
        "",
        table_training,
        "",
        "## Protocol (recipes/reproduce/protocol.yaml, as run)",
        "",
        "```yaml",
        protocol["_text"].rstrip(),
        "```",
        "",
        "Every command of the run, with its exit status and time, is in the output "
        "folder's `jobs.jsonl`; each job's own output in `logs/`.",
        ""]
    return "\n".join(lines)


def _hms(seconds):
    return "%d:%02d:%02d" % (seconds // 3600, seconds % 3600 // 60, seconds % 60)
