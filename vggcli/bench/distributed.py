"""The distributed benches: dist_sync on loopback against one process (the bytes each
step sends, the scaling it allows), 2-bit gradient compression's accuracy, and the
scaling model the cluster bench compares its measurements with."""
import os
import shutil
import subprocess
import tempfile
import time


from .common import _row
from ..core.processes import vgg_argv


def _loopback_bytes():
    """Bytes sent over the loopback interface so far (Linux), else None."""
    try:
        with open("/proc/net/dev") as f:
            for line in f:
                name, _, counters = line.partition(":")
                if name.strip() == "lo":
                    return int(counters.split()[8])  # transmit bytes
    except (OSError, ValueError, IndexError):
        pass
    return None


def _log_events(run_dir, event):
    from ..core.plots import read_jsonl
    return read_jsonl(os.path.join(run_dir, "log.jsonl"), event)


def _step_rates(run_dir, workers=1):
    """images/s of every logged interval of a run but the first (graph building), all
    workers together (worker 0 logs its own share of each batch)."""
    return [workers * e["images_per_second"] for e in _log_events(run_dir, "iter")[1:]]


def _digits_records(work):
    """The digits (sklearn's 1,797 scans) packed into ``work``/data; returns that folder."""
    from data_tools import pack as packing
    from data_tools.digits import write_digits

    write_digits(os.path.join(work, "raw"))
    splits, classes, source = packing.plan_folder(
        os.path.join(work, "raw"), synsets=os.path.join(work, "raw", "synsets.txt"))
    packing.pack(splits, classes, os.path.join(work, "data"), packing.PackSettings(),
                 source, progress=False)
    return os.path.join(work, "data")


def _small_net_args(data, out, *extra):
    """vgg train arguments of a 1/8-width net A on the digits (32 px crops)."""
    return ["train", "--net", "A", "--data", data, "--width-mult", "0.125", "--crop-size",
            "32", "--scale", "36", "--batch-size", "32", "--init", "xavier", "--quiet",
            "--out", out] + list(extra)


def bench_distributed(epochs=1, log_every=5):
    """1/8-width net A on the digits: 2 dist_sync workers (+1 server) vs 1 process, and
    with 2-bit gradient compression, bytes sent per step over loopback (measured from
    the kernel's counters). Speeds are per logged interval of ``log_every`` steps (the
    first left out). With 2 cores this shows ps-lite's overhead, not a speed-up."""
    work = tempfile.mkdtemp(prefix="vgg-bench-dist-")
    try:
        data = _digits_records(work)
        runs = {}
        for name, extra, launched in (("one", [], False), ("dist", [], True),
                                      ("2bit", ["--gradient-compression", "2bit:0.5"], True)):
            out = os.path.join(work, name)
            args = _small_net_args(data, out, "--fc-width", "32", "--epochs", str(epochs),
                                   "--log-every", str(log_every), *extra)
            command = vgg_argv(
                ["launch", "-n", "2", "-s", "1", "--", "vgg"] + args + ["--kvstore", "dist_sync"]
                if launched else args)
            sent, start = _loopback_bytes(), time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds = time.perf_counter() - start
            steps = _log_events(out, "epoch")[-1]["iteration"]
            after = _loopback_bytes()
            runs[name] = dict(seconds=seconds, rates=_step_rates(out, 2 if launched else 1),
                              bytes=(after - sent) / steps if None not in (sent, after)
                              else float("nan"))
        return [
            _row("training, 1/8-width net A on digits: 2 dist_sync workers vs 1 process",
                 runs["dist"]["rates"], runs["one"]["rates"], "ours, 1 process", 0.0,
                 "images/s", note="2 cores: overhead, not speed-up; per %d steps, both "
                                  "workers' images" % log_every),
            _row("dist_sync bytes sent per step over loopback: 2-bit compression vs none",
                 runs["2bit"]["bytes"], runs["dist"]["bytes"], "no compression", 1.5,
                 "bytes/step", higher_is_better=False,
                 note="all processes, from /proc/net/dev, over a whole run; pushes shrink "
                      "16x, the pulled weights do not: at most 2 / (1 + 1/16) = 1.88x; "
                      "compressed run %.0f s vs %.0f s"
                      % (runs["2bit"]["seconds"], runs["dist"]["seconds"]))]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_compression_accuracy(seeds=(0, 1), epochs=6, threshold=0.5):
    """What 2-bit gradient compression costs in accuracy: 1/8-width net A (128-wide
    fc6/fc7, no dropout) on the digits, two devices of this CPU (kvstore device: MXNet's
    same quantizer and error feedback as dist_sync, without ps-lite's overhead), the lr
    held at 0.01 for ``epochs`` epochs so the schedule cannot differ between the runs;
    the best validation top-1 error of each seed, with and without compression, runs
    alternated."""
    work = tempfile.mkdtemp(prefix="vgg-bench-2bit-")
    try:
        data = _digits_records(work)
        errors = {"none": [], "2bit": []}
        for seed in seeds:
            for name, extra in (("none", []), ("2bit", ["--gradient-compression",
                                                       "2bit:%g" % threshold])):
                out = os.path.join(work, "%s-%d" % (name, seed))
                args = _small_net_args(data, out, "--fc-width", "128", "--dropout", "0",
                                       "--epochs", str(epochs), "--patience", str(epochs + 1),
                                       "--devices", "cpu:0,1", "--kvstore", "device",
                                       "--seed", str(seed), *extra)
                subprocess.run(vgg_argv(args), check=True, capture_output=True)
                errors[name].append(min(e["val_top1_err"]
                                        for e in _log_events(out, "epoch")))
        return [_row("best val top-1 error in %d epochs, 2 devices: 2-bit:%g compression vs "
                     "none" % (epochs, threshold), errors["2bit"], errors["none"],
                     "no compression", 0.0, "error", higher_is_better=False,
                     note="seeds %s: %s with, %s without" % (
                         ",".join(map(str, seeds)),
                         " ".join("%.3f" % e for e in errors["2bit"]),
                         " ".join("%.3f" % e for e in errors["none"])))]
    finally:
        shutil.rmtree(work, ignore_errors=True)


PAPER_SPEEDUP_4_GPUS = 3.75


def scaling_model(seconds_per_image, parameters, machines=(2, 4, 8, 16), gbits=(10, 25, 100),
                  batch=256, compression=1):
    """Modelled data-parallel speed-up of a dist_sync step of ``batch`` images over W
    machines, each a worker and a server (keys sharded evenly):

        compute(W) = batch / W x seconds_per_image
        comm(W)    = (W - 1) / W x (push + pull) / bandwidth
        push = 4 x parameters / compression bytes, pull = 4 x parameters bytes
        speed-up   = batch x seconds_per_image / (compute(W) + comm(W))

    The (W - 1) / W is the share of each worker's keys held by other machines' servers;
    every link is full-duplex and carries its worker's traffic and its server's
    equally. Compute and communication are not overlapped (an upper bound on the
    step). Returns {(W, Gb/s): speed-up}."""
    result = {}
    for w in machines:
        for g in gbits:
            moved = 4.0 * parameters * (1.0 / compression + 1.0)
            comm = (w - 1) / w * moved / (g * 1e9 / 8)
            result[w, g] = batch * seconds_per_image / (batch / w * seconds_per_image + comm)
    return result
