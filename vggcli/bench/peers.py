"""Benchmarks against PyTorch (eager and torch.compile), threads, bfloat16, INT8,
the GEMM ceiling, dense vs multi-crop testing and distributed training; each
peer runs in its own process so its peak memory is its own."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from statistics import median

import numpy as np

from .common import ROUNDS, _interleave, _row, _timed_rates
from ..core.processes import vgg_argv

# --- PyTorch peer, dense vs multi-crop, features, distributed -----------------------

# Peak RSS of this process's own memory: VmHWM. Not ru_maxrss, which a child inherits
# from the parent it was forked from (the bench process, several GB by then).
_PEAK_RSS = """
import time
def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
def timed_steps(step, batch, reps, settle):
    # after a warm-up step, at least reps timed steps; with settle, more (8 at most) until
    # two steps in a row leave the peak RSS within 1%: MXNet's oneDNN adds a buffer the
    # size of conv1's output at VGG-D's third and fourth training steps
    step()
    rates, flat, last = [], 0, peak_rss_mb()
    while len(rates) < reps or (settle and flat < 2 and len(rates) < reps + 8):
        t = time.perf_counter(); step(); rates.append(batch / (time.perf_counter() - t))
        now = peak_rss_mb()
        flat, last = (flat + 1 if now <= last * 1.01 else 0), now
    print(",".join("%.6g" % r for r in rates), peak_rss_mb())
"""

# VGG-16 (net D) in plain torch.nn for the PyTorch peers. argv: threads, task (infer or
# train), batch, repetitions, variant (eager, compile, bf16: bf16 weights, autocast: bf16
# autocast), settle (1: step until the peak RSS settles). Prints the images/s of each
# timed step and the peak RSS in MB.
_TORCH_VGG16 = _PEAK_RSS + """
import sys, time, torch, torch.nn as nn
threads, task, batch, reps, variant, settle = sys.argv[1:7]
batch, reps, train = int(batch), int(reps), task == "train"
torch.set_num_threads(int(threads))
layers, c = [], 3
for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']:
    if v == 'M': layers.append(nn.MaxPool2d(2, 2))
    else: layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(True)]; c = v
drop = [nn.Dropout()] if train else []
net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(True), *drop,
                    nn.Linear(4096, 4096), nn.ReLU(True), *drop, nn.Linear(4096, 1000))
net = net.to(memory_format=torch.channels_last).train(train)
x = (torch.rand(batch, 3, 224, 224) * 255 - 128).to(memory_format=torch.channels_last)
if variant == "bf16":
    net, x = net.to(torch.bfloat16), x.to(torch.bfloat16)
if variant == "compile":  # inductor's best CPU inference setting: weights frozen, prepacked
    import torch._inductor.config
    torch._inductor.config.freezing = not train
model = torch.compile(net) if variant == "compile" else net
def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "autocast")
if train:
    y = torch.arange(batch) % 1000
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    def step():
        opt.zero_grad()
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward(); opt.step()
else:
    def step():
        with torch.inference_mode(), autocast():
            model(x)
if variant == "compile":  # the first call compiles
    step()
timed_steps(step, batch, reps, settle == "1")
"""

# Our net D, the same way. argv: task, batch, repetitions, dtype, micro-batches (training:
# the batch's gradient accumulated over them, as vgg train --accumulate), settle (as the
# PyTorch script). Prints images/s and peak RSS in MB, or "unsupported <why>" where this
# CPU cannot run the dtype.
_OURS_VGG16 = _PEAK_RSS + """
import sys, time
task, batch, reps, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
micro, settle = int(sys.argv[5]), sys.argv[6] == "1"
import vggcli
vggcli.configure()  # as the vgg command: threads, AMX, quiet logs
from vggcli.core import precision
used, note = precision.prepare(dtype)  # bfloat16 falls back without bf16 instructions
if used != dtype:
    print("unsupported", note); sys.exit(0)
import mxnet as mx
from mxnet import autograd, gluon
from vggcli.nets import models
precision.start_mixed_precision(dtype if task == "train" else "float32")
net = models.get_model("D")
if task != "train":  # as PyTorch, which allocates gradients only in backward
    net.collect_params().setattr("grad_req", "null")
elif micro > 1:
    net.collect_params().setattr("grad_req", "add")
net = models.initialize(net, init="xavier", seed=0)
net.hybridize(static_alloc=True, static_shape=True)
x = mx.nd.random.uniform(-128, 127, shape=(batch, 3, 224, 224))
if task == "train":
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            dict(learning_rate=0.01, momentum=0.9, wd=5e-4))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    y = mx.nd.array([i % 1000 for i in range(batch)])
    part = batch // micro
    def step():
        for k in range(micro):
            with autograd.record():
                loss = loss_fn(precision.to_float32(net(x[k * part:(k + 1) * part])),
                               y[k * part:(k + 1) * part])
            loss.backward()
        trainer.step(batch); mx.nd.waitall()
        if micro > 1:
            net.collect_params().zero_grad()
else:
    forward = precision.convert_for_inference(net, dtype, x[:1].asnumpy(), [mx.cpu()])
    def step():
        forward(x).wait_to_read()
timed_steps(step, batch, reps, settle)
"""


def _has_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        print("bench: torch not installed, skipping the PyTorch peer", file=sys.stderr)
        return False


def _run_torch(task, batch, repeats, variant, threads, settle=False):
    """(images/s, peak RSS MB) of the PyTorch VGG-16, in its own process; ``settle``: more
    steps until the peak RSS stops growing."""
    out = subprocess.run([sys.executable, "-c", _TORCH_VGG16, str(threads), task, str(batch),
                          str(repeats), variant, "1" if settle else "0"], capture_output=True,
                         text=True, check=True)
    return _rates_and_rss(out.stdout)


def _rates_and_rss(stdout):
    """([images/s of each timed step], peak RSS MB) from a peer script's last line."""
    rates, rss = stdout.split()[-2:]
    return [float(r) for r in rates.split(",")], float(rss)


def _run_ours(task, batch, repeats, dtype="float32", env=None, micro=1, settle=False):
    """(images/s, peak RSS MB) of our net D in its own process, or None where this CPU
    cannot run ``dtype``; ``micro``: training micro-batches (vgg train --accumulate);
    ``settle``: more steps until the peak RSS stops growing."""
    out = subprocess.run([sys.executable, "-c", _OURS_VGG16, task, str(batch), str(repeats),
                          dtype, str(micro), "1" if settle else "0"], capture_output=True,
                         text=True, check=True, env=env)
    if out.stdout.startswith("unsupported"):
        print("bench: %s" % out.stdout.split(" ", 1)[1].strip(), file=sys.stderr)
        return None
    return _rates_and_rss(out.stdout)


_MEASURED = {}  # (task, batch) -> our float32 images/s in this run, reused by bench_gflops


def _alternate(sides, rounds, once=()):
    """Each side's ([images/s of every timed step of every round], largest peak RSS),
    the sides' processes alternated round by round (each run returns one tuple)."""
    runs = _interleave(sides, rounds, once)
    return {name: ([r for rates, _ in values for r in rates], max(rss for _, rss in values))
            for name, values in runs.items()}


def bench_torch_inference(batches=(1, 16), repeats=3, rounds=2):
    """VGG-D fp32 inference vs PyTorch's best fp32 (plain torch.nn VGG-16, channels_last,
    eager and torch.compile), same thread count, each run in its own process."""
    if not _has_torch():
        return []
    from ..core.env import available_cores

    cores = available_cores()
    rows = []
    for batch in batches:
        reps = max(repeats, 8 // batch)
        result = _alternate({
            "ours": lambda b=batch, r=reps: _run_ours("infer", b, r),
            "eager": lambda b=batch, r=reps: _run_torch("infer", b, r, "eager", cores),
            "compile": lambda b=batch, r=reps: _run_torch("infer", b, max(r, ROUNDS),
                                                          "compile", cores)},
            rounds, once=("compile",))
        _MEASURED["infer", batch] = median(result["ours"][0])
        best = max(("eager", "compile"), key=lambda k: median(result[k][0]))
        rows.append(_row("VGG-D fp32 inference, 224, batch %d, %d threads" % (batch, cores),
                         result["ours"][0], result[best][0],
                         "PyTorch %s channels_last" % ("torch.compile" if best == "compile"
                                                       else "eager"), 1.0, "images/s",
                         note="PyTorch eager %.2f, torch.compile %.2f images/s"
                         % (median(result["eager"][0]), median(result["compile"][0]))))
    return rows


def bench_threads(batch=1, repeats=4, rounds=2):
    """Our default thread count (every core) vs one OpenMP thread, MXNet 1.9.1's own
    default on this machine: VGG-D fp32 inference."""
    from ..core.env import available_cores

    cores = available_cores()
    one = dict(os.environ, OMP_NUM_THREADS="1")
    mine = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = _alternate({"ours": lambda: _run_ours("infer", batch, repeats, env=mine),
                         "one": lambda: _run_ours("infer", batch, repeats, env=one)}, rounds)
    return [_row("VGG-D fp32 inference, batch %d: our default threads (%d cores) vs 1"
                 % (batch, cores), result["ours"][0], result["one"][0],
                 "OMP_NUM_THREADS=1, MXNet's default", 0.5 * cores, "images/s",
                 note="target: half of linear scaling")]


def bench_bfloat16(batch=16, repeats=3, rounds=2):
    """bfloat16 (AMP, oneDNN on AMX) vs our float32 and PyTorch's best bf16: inference with
    bf16 weights, and a training step (AMP vs torch.autocast). Skipped without AMX."""
    from ..core.env import available_cores

    cores = available_cores()
    if _run_ours("infer", 1, 1, "bfloat16") is None:
        return []
    infer = {"fp32": lambda: _run_ours("infer", batch, repeats),
             "bf16": lambda: _run_ours("infer", batch, repeats, "bfloat16")}
    train = {"fp32": lambda: _run_ours("train", batch, repeats),
             "bf16": lambda: _run_ours("train", batch, repeats, "bfloat16")}
    if _has_torch():
        infer["torch"] = lambda: _run_torch("infer", batch, repeats, "bf16", cores)
        infer["torch-autocast"] = lambda: _run_torch("infer", batch, repeats, "autocast", cores)
        train["torch"] = lambda: _run_torch("train", batch, repeats, "autocast", cores)
    infer, train = _alternate(infer, rounds), _alternate(train, rounds)
    rows = [_row("VGG-D bf16 inference, batch %d, vs our float32" % batch, infer["bf16"][0],
                 infer["fp32"][0], "ours, float32", 1.0, "images/s"),
            _row("VGG-D bf16 training step, batch %d, vs our float32" % batch, train["bf16"][0],
                 train["fp32"][0], "ours, float32", 1.0, "images/s")]
    if "torch" in infer:
        best = max(("torch", "torch-autocast"), key=lambda k: median(infer[k][0]))
        rows += [_row("VGG-D bf16 inference, batch %d" % batch, infer["bf16"][0],
                      infer[best][0], "PyTorch %s" % ("bf16 weights, channels_last"
                                                      if best == "torch" else "autocast"),
                      1.0, "images/s"),
                 _row("VGG-D bf16 training step, batch %d" % batch, train["bf16"][0],
                      train["torch"][0], "PyTorch autocast, channels_last", 1.2, "images/s")]
    return rows


def bench_dense_vs_multicrop(scales=(256, 384, 512), rounds=ROUNDS):
    """Per image, over Q in {256, 384, 512} with flips: dense (6 passes on whole images)
    vs multi-crop (150 crops of 224), VGG-D. Each round times the whole dense evaluation
    and one scale's 50 crops, the scales in turn: every scale's crops are the same 50
    forward passes at 224 x 224, so an image's multi-crop time is 3x one scale's (timing
    all 150 in every round would add two minutes to the bench)."""
    from skimage import data

    import mxnet as mx

    from vggcli.nets import models
    from vggcli.training.data import rescale_shorter_side
    from vggcli.testing.evaluate import Evaluator, grid_crops

    net = models.initialize(models.get_model("D"), seed=0)
    evaluator = Evaluator(net, [120, 115, 100], [mx.cpu()], batch_size=16, flip=True)
    photo = data.chelsea()[:, :400]  # 300 x 400: ImageNet's typical 4:3 shape
    images = [rescale_shorter_side(photo, q) for q in scales]
    for image in images:  # warm-up: one graph per shape
        evaluator.dense_posteriors([image])
    grid = grid_crops(images[0], 224)
    for count in (16, len(grid) % 16):  # the crop batches' two shapes (50 = 3 x 16 + 2)
        evaluator.forward.run(net, grid[:count])

    def dense():
        start = time.perf_counter()
        for image in images:
            evaluator.dense_posteriors([image])
        return 1 / (time.perf_counter() - start)

    def crops(image):
        start = time.perf_counter()
        evaluator.multicrop_posteriors([image])
        return 1 / (len(images) * (time.perf_counter() - start))
    rates = {"dense": [], "crops": []}
    for k in range(rounds):
        rates["dense"].append(dense())
        rates["crops"].append(crops(images[k % len(images)]))
    return [_row("VGG-D eval of a 4:3 image, Q=256,384,512 + flips: dense vs 150 crops",
                 rates["dense"], rates["crops"], "ours, multi-crop", 5.0, "images/s",
                 note="dense %.1f s, multi-crop %.1f s per image (medians)"
                 % (1 / median(rates["dense"]), 1 / median(rates["crops"])))]


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


def bench_scaling(batch=256):
    """The modelled speed-up table (``scaling_model``) for VGG-D from this machine's
    measured training step, beside the paper's 3.75x on 4 GPUs."""
    from vggcli.nets import models
    rate = _MEASURED.get(("train", TRAIN_BATCH)) or median(_run_ours("train", TRAIN_BATCH, 3)[0])
    params = models.count_params(models.get_model("D"))  # 138,357,544
    rows = []
    for compression, label in ((1, "fp32 gradients"), (16, "2-bit pushes")):
        table = scaling_model(1.0 / rate, params, compression=compression, batch=batch)
        for (w, g), speedup in sorted(table.items()):
            if compression == 16 and g != 10:
                continue
            rows.append(_row("modelled VGG-D speed-up, %d machines, %d Gb/s, %s" % (w, g, label),
                             speedup, PAPER_SPEEDUP_4_GPUS if w == 4 else float(w),
                             "paper, 4 GPUs" if w == 4 else "linear", 0.0, "x",
                             note="model: scaling_model; step of %d images at %.2f images/s"
                             % (batch, rate)))
    return rows


MICRO = 4  # micro-batches of the --accumulate memory row
TRAIN_BATCH = 16  # of the training rows


def bench_torch_training(batch=TRAIN_BATCH, steps=ROUNDS):
    """VGG-D training step (forward, backward, SGD with momentum and weight decay) and the
    process's peak RSS, ours (one pass, and with --accumulate) vs PyTorch eager
    channels_last, each in its own process, which takes at least ``steps`` timed steps
    and more until its peak RSS has settled (ours grows until the fourth step, PyTorch's
    until the second; measured over eight). One process per side: a VGG-D step at batch
    16 takes 14-21 s on 2 cores, and a second round of each would add four minutes."""
    if not _has_torch():
        return []
    from ..core.env import available_cores

    cores = available_cores()
    result = _alternate({"ours": lambda: _run_ours("train", batch, steps, settle=True),
                         "torch": lambda: _run_torch("train", batch, steps, "eager", cores,
                                                     settle=True),
                         "accumulate": lambda: _run_ours("train", batch, 2, micro=MICRO,
                                                         settle=True)}, 1)
    _MEASURED["train", batch] = median(result["ours"][0])
    return [_row("VGG-D training step, 224, batch %d" % batch, result["ours"][0],
                 result["torch"][0], "PyTorch channels_last", 1.0, "images/s"),
            _row("VGG-D training peak RSS, batch %d" % batch, result["ours"][1],
                 result["torch"][1], "PyTorch", 1.0, "MB", higher_is_better=False,
                 note="one pass of the whole batch (the same-batch figure); after %d and %d "
                      "steps" % (len(result["ours"][0]) + 1, len(result["torch"][0]) + 1)),
            _row("VGG-D training peak RSS, batch %d as %d x %d (--accumulate %d)"
                 % (batch, MICRO, batch // MICRO, MICRO), result["accumulate"][1],
                 result["torch"][1], "PyTorch, one batch of %d" % batch, 1.0, "MB",
                 higher_is_better=False,
                 note="the same update; %.2f images/s; after %d steps"
                 % (median(result["accumulate"][0]), len(result["accumulate"][0]) + 1))]


def physical_peak(info_path="/proc/cpuinfo", clock_ghz=None):
    """(peak fp32 GFLOP/s, how it was computed) of this machine's cores.

    peak = physical cores x clock x FLOP per cycle per core, with FLOP per cycle =
    2 (a fused multiply-add) x fp32 lanes per vector x vector FMA units. Lanes: 16
    with AVX-512, 8 with AVX2. Units: 2, as on every AVX2/AVX-512 server core we know
    of (Intel Haswell to Sapphire Rapids Gold/Platinum, AMD Zen 2-5); AMD Zen 4
    (family 25 with AVX-512) runs 512-bit operations on 256-bit units, so 8 lanes
    there. Physical cores = logical CPUs / (siblings / cpu cores). The clock is the
    one Linux reports while a GEMM keeps the cores busy (a VM may report its nominal
    clock)."""
    from ..core.env import available_cores
    fields = {}
    try:
        with open(info_path) as f:
            for line in f:
                if ":" in line:
                    key, value = (part.strip() for part in line.split(":", 1))
                    fields.setdefault(key, value)
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    if lanes == 16 and fields.get("vendor_id") == "AuthenticAMD" and \
            fields.get("cpu family") == "25":
        lanes = 8  # Zen 4: 512-bit instructions on 256-bit units
    units = 2
    try:
        per_core = int(fields["siblings"]) / int(fields["cpu cores"])
    except (KeyError, ValueError, ZeroDivisionError):
        per_core = 1
    cores = max(1.0, available_cores() / max(per_core, 1))
    ghz = clock_ghz or float(fields.get("cpu MHz", 0)) / 1000
    flop_per_cycle = 2 * lanes * units
    peak = cores * ghz * flop_per_cycle
    return peak, ("%g physical cores x %.2f GHz x %d FLOP/cycle (2 x %d fp32 lanes x %d FMA "
                  "units)" % (cores, ghz, flop_per_cycle, lanes, units))


def _busy_clock_ghz(work):
    """The clock Linux reports (mean over CPUs) while ``work`` runs in a thread."""
    import threading
    done = threading.Event()
    samples = []

    def sample():
        while not done.is_set():
            try:
                with open("/proc/cpuinfo") as f:
                    values = [float(line.split(":")[1]) for line in f
                              if line.startswith("cpu MHz")]
                if values:
                    samples.append(sum(values) / len(values) / 1000)
            except (OSError, ValueError):
                pass
            done.wait(0.1)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return median(samples) if samples else None


def _best_gemm(size, repeats):
    """{library: fp32 GEMM GFLOP/s} of a size^3 product: MXNet, numpy, torch if present."""
    import mxnet as mx
    flop = 2.0 * size ** 3 / 1e9
    a = mx.nd.random.uniform(shape=(size, size))
    results = {"mx.nd.dot": median(_timed_rates(lambda: mx.nd.dot(a, a).wait_to_read(), flop,
                                                repeats))}
    b = a.asnumpy()
    results["numpy"] = median(_timed_rates(lambda: b.dot(b), flop, repeats))
    try:
        import torch
        t = torch.from_numpy(b)
        results["torch.mm"] = median(_timed_rates(lambda: torch.mm(t, t), flop, repeats))
    except ImportError:
        pass
    return results


def bench_gflops(batch=TRAIN_BATCH, repeats=ROUNDS, size=4096):
    """Achieved GFLOP/s of VGG-D inference and training (batch 16) as a share of this
    machine's physical fp32 peak (``physical_peak``), and of the best GEMM measured here
    (MXNet, numpy, torch) as a second reference. The images/s come from the PyTorch
    comparisons when they ran, else from their own processes."""
    from vggcli.nets import models

    clock = []
    gemms = {}

    def measure():
        gemms.update(_best_gemm(size, repeats))
    clock.append(_busy_clock_ghz(measure))
    peak, formula = physical_peak(clock_ghz=clock[0])
    best = max(gemms, key=gemms.get)
    flops = 2.0 * models.multiply_adds("D") / 1e9  # 30.9 GFLOP per image
    infer = _MEASURED.get(("infer", batch)) or median(_run_ours("infer", batch, repeats)[0])
    train = _MEASURED.get(("train", batch)) or median(_run_ours("train", batch, 3)[0])
    gemm_note = ", ".join("%s %.0f" % kv for kv in sorted(gemms.items()))
    rows = []
    for task, achieved, note in (("inference", infer * flops, ""),
                                 ("training", train * 3 * flops,
                                  "; backward counted as 2x forward")):
        rows.append(_row("VGG-D fp32 %s, batch %d, share of the physical peak" % (task, batch),
                         achieved, peak, "peak: " + formula, 0.0, "GFLOP/s",
                         note="direct convolution FLOPs%s" % note))
        rows.append(_row("VGG-D fp32 %s, batch %d, vs the best GEMM here" % (task, batch),
                         achieved, gemms[best], "%s %d^3" % (best, size), 0.7, "GFLOP/s",
                         note="GEMM GFLOP/s: " + gemm_note))
    rows.append(_row("best fp32 GEMM here, share of the physical peak", gemms[best], peak,
                     "peak: " + formula, 0.5, "GFLOP/s", note=gemm_note))
    return rows


def bench_int8(batch=8, repeats=ROUNDS):
    """VGG-D inference, INT8 (oneDNN, calibrated on real photos) vs our float32."""
    from skimage import data

    import mxnet as mx

    from vggcli.nets import models
    from vggcli.testing.fast import calibration_batch, quantize

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    mean = [120.0, 115.0, 100.0]
    calibration = calibration_batch(lambda i: (photos[i % 4], 0), 8, 8, 224, 256, mean)
    net = models.initialize(models.get_model("D"), seed=0)
    net.hybridize(static_alloc=True, static_shape=True)
    quantized = quantize(net, calibration, [mx.cpu()])
    x = mx.nd.array(np.concatenate([calibration] * (batch // len(calibration) + 1))[:batch])
    for block in (net, quantized):  # warm-up, then single timed steps alternated
        block(x).wait_to_read()
    rates = _interleave({"fp32": lambda: _timed_rates(lambda: net(x).wait_to_read(), batch, 1,
                                                      warm_up=False),
                         "int8": lambda: _timed_rates(lambda: quantized(x).wait_to_read(),
                                                      batch, 1, warm_up=False)}, repeats)
    fp32, int8 = rates["fp32"], rates["int8"]
    from ..core.precision import cpu_description
    return [_row("VGG-D inference, 224, batch %d: INT8 vs float32" % batch, int8, fp32,
                 "ours, float32", 3.0, "images/s", note=cpu_description())]
