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

from .bench_common import _interleave, _median_rate, _row

# --- PyTorch peer, dense vs multi-crop, features, distributed -----------------------

# Peak RSS of this process's own memory: VmHWM. Not ru_maxrss, which a child inherits
# from the parent it was forked from (the bench process, several GB by then).
_PEAK_RSS = """
def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
"""

# VGG-16 (net D) in plain torch.nn for the PyTorch peers. argv: threads, task (infer or
# train), batch, repetitions, variant (eager, compile, bf16: bf16 weights, autocast: bf16
# autocast). Prints the median images/s and the peak RSS in MB.
_TORCH_VGG16 = _PEAK_RSS + """
import sys, time, torch, torch.nn as nn
threads, task, batch, reps, variant = sys.argv[1:6]
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
for _ in range(2 if variant == "compile" else 1):
    step()
rates = []
for _ in range(reps):
    t = time.perf_counter(); step(); rates.append(batch / (time.perf_counter() - t))
print(sorted(rates)[len(rates) // 2], peak_rss_mb())
"""

# Our net D, the same way. argv: task, batch, repetitions, dtype. Prints images/s and peak
# RSS in MB, or "unsupported <why>" where this CPU cannot run the dtype.
_OURS_VGG16 = _PEAK_RSS + """
import sys, time
task, batch, reps, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import vggcli
vggcli.configure()  # as the vgg command: threads, AMX, quiet logs
from vggcli import precision
used, note = precision.prepare(dtype)  # bfloat16 falls back where there is no AMX
if used != dtype:
    print("unsupported", note); sys.exit(0)
import mxnet as mx
from mxnet import autograd, gluon
from vggcli import models
precision.start_mixed_precision(dtype if task == "train" else "float32")
net = models.get_model("D")
if task != "train":  # as PyTorch, which allocates gradients only in backward
    net.collect_params().setattr("grad_req", "null")
net = models.initialize(net, init="xavier", seed=0)
net.hybridize(static_alloc=True, static_shape=True)
x = mx.nd.random.uniform(-128, 127, shape=(batch, 3, 224, 224))
if task == "train":
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            dict(learning_rate=0.01, momentum=0.9, wd=5e-4))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    y = mx.nd.array([i % 1000 for i in range(batch)])
    def step():
        with autograd.record():
            loss = loss_fn(precision.to_float32(net(x)), y)
        loss.backward(); trainer.step(batch); mx.nd.waitall()
else:
    forward = precision.convert_for_inference(net, dtype, x[:1].asnumpy(), [mx.cpu()])
    def step():
        forward(x).wait_to_read()
step()
rates = []
for _ in range(reps):
    t = time.perf_counter(); step(); rates.append(batch / (time.perf_counter() - t))
print(sorted(rates)[len(rates) // 2], peak_rss_mb())
"""


def _has_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        print("bench: torch not installed, skipping the PyTorch peer", file=sys.stderr)
        return False


def _run_torch(task, batch, repeats, variant, threads):
    """(images/s, peak RSS MB) of the PyTorch VGG-16, in its own process."""
    out = subprocess.run([sys.executable, "-c", _TORCH_VGG16, str(threads), task, str(batch),
                          str(repeats), variant], capture_output=True, text=True, check=True)
    rate, rss = out.stdout.split()[-2:]
    return float(rate), float(rss)


def _run_ours(task, batch, repeats, dtype="float32", env=None):
    """(images/s, peak RSS MB) of our net D in its own process, or None where this CPU
    cannot run ``dtype``."""
    out = subprocess.run([sys.executable, "-c", _OURS_VGG16, task, str(batch), str(repeats),
                          dtype], capture_output=True, text=True, check=True, env=env)
    if out.stdout.startswith("unsupported"):
        print("bench: %s" % out.stdout.split(" ", 1)[1].strip(), file=sys.stderr)
        return None
    rate, rss = out.stdout.split()[-2:]
    return float(rate), float(rss)


_MEASURED = {}  # (task, batch) -> our float32 images/s in this run, reused by bench_gflops


def _alternate(sides, rounds, once=()):
    """Median images/s (and the largest peak RSS) of each side's (images/s, RSS) runs."""
    runs = _interleave(sides, rounds, once)
    return {name: (median([r[0] for r in values]), max(r[1] for r in values))
            for name, values in runs.items()}


def bench_torch_inference(batches=(1, 16), repeats=3, rounds=2):
    """VGG-D fp32 inference vs PyTorch's best fp32 (plain torch.nn VGG-16, channels_last,
    eager and torch.compile), same thread count, each run in its own process."""
    if not _has_torch():
        return []
    from ._env import available_cores

    cores = available_cores()
    rows = []
    for batch in batches:
        reps = max(repeats, 8 // batch)
        result = _alternate({
            "ours": lambda b=batch, r=reps: _run_ours("infer", b, r),
            "eager": lambda b=batch, r=reps: _run_torch("infer", b, r, "eager", cores),
            "compile": lambda b=batch, r=reps: _run_torch("infer", b, r, "compile", cores)},
            rounds, once=("compile",))
        _MEASURED["infer", batch] = result["ours"][0]
        best = max(("eager", "compile"), key=lambda k: result[k][0])
        rows.append(_row("VGG-D fp32 inference, 224, batch %d, %d threads" % (batch, cores),
                         result["ours"][0], result[best][0],
                         "PyTorch %s channels_last" % ("torch.compile" if best == "compile"
                                                       else "eager"), 1.0, "images/s",
                         note="PyTorch eager %.2f, torch.compile %.2f images/s"
                         % (result["eager"][0], result["compile"][0])))
    return rows


def bench_threads(batch=4, repeats=3, rounds=2):
    """Our default thread count (every core) vs one OpenMP thread, MXNet 1.9.1's own
    default on this machine: VGG-D fp32 inference."""
    from ._env import available_cores

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
    from ._env import available_cores

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
        best = max(("torch", "torch-autocast"), key=lambda k: infer[k][0])
        rows += [_row("VGG-D bf16 inference, batch %d" % batch, infer["bf16"][0],
                      infer[best][0], "PyTorch %s" % ("bf16 weights, channels_last"
                                                      if best == "torch" else "autocast"),
                      1.0, "images/s"),
                 _row("VGG-D bf16 training step, batch %d" % batch, train["bf16"][0],
                      train["torch"][0], "PyTorch autocast, channels_last", 1.2, "images/s")]
    return rows


def bench_dense_vs_multicrop(scales=(256, 384, 512)):
    """Per image, over Q in {256, 384, 512} with flips: dense (6 passes on whole images)
    vs multi-crop (150 crops of 224), VGG-D."""
    from skimage import data

    import mxnet as mx

    from vggcli import models
    from vggcli.data import rescale_shorter_side
    from vggcli.evaluate import Evaluator

    net = models.initialize(models.get_model("D"), seed=0)
    evaluator = Evaluator(net, [120, 115, 100], [mx.cpu()], batch_size=16, flip=True)
    photo = data.chelsea()[:, :400]  # 300 x 400: ImageNet's typical 4:3 shape
    images = [rescale_shorter_side(photo, q) for q in scales]
    for image in images:  # warm-up: one graph per shape
        evaluator.dense_posteriors([image])
    evaluator.multicrop_posteriors([images[0]])
    start = time.perf_counter()
    for image in images:
        evaluator.dense_posteriors([image])
    dense = time.perf_counter() - start
    start = time.perf_counter()
    for image in images:
        evaluator.multicrop_posteriors([image])
    crops = time.perf_counter() - start
    return [_row("VGG-D eval of a 4:3 image, Q=256,384,512 + flips: dense vs 150 crops",
                 1 / dense, 1 / crops, "ours, multi-crop", 5.0, "images/s",
                 note="dense %.1fs, multi-crop %.1fs per image" % (dense, crops))]


def bench_distributed(epochs=1):
    """Training images/s of 2 dist_sync workers (+1 server) vs 1 process on this machine:
    with 2 cores this shows the overhead of ps-lite, not a speed-up."""
    from data_tools import pack as packing
    from data_tools.digits import write_digits

    work = tempfile.mkdtemp(prefix="vgg-bench-dist-")
    try:
        write_digits(os.path.join(work, "raw"))
        splits, classes, source = packing.plan_folder(
            os.path.join(work, "raw"), synsets=os.path.join(work, "raw", "synsets.txt"))
        packing.pack(splits, classes, os.path.join(work, "data"), packing.PackSettings(),
                     source, progress=False)
        args = ["train", "--net", "A", "--data", os.path.join(work, "data"), "--width-mult",
                "0.125", "--fc-width", "32", "--crop-size", "32", "--scale", "36",
                "--batch-size", "32", "--epochs", str(epochs), "--init", "xavier", "--quiet"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vggcli"] + args + ["--out",
                       os.path.join(work, "one")], check=True, capture_output=True)
        single = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vggcli", "launch", "-n", "2", "-s", "1", "--",
                        "vgg"] + args + ["--kvstore", "dist_sync", "--out",
                                         os.path.join(work, "two")],
                       check=True, capture_output=True)
        double = time.perf_counter() - start
        images = 1438 * epochs
        return [_row("training, 1/8-width net A on digits: 2 dist_sync workers vs 1 process",
                     images / double, images / single, "ours, 1 process", 0.0, "images/s",
                     note="2 cores: overhead, not speed-up; whole commands")]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_torch_training(batch=16, steps=2, rounds=2):
    """VGG-D training step (forward, backward, SGD with momentum and weight decay) and the
    process's peak RSS, ours vs PyTorch eager channels_last; each side in its own process."""
    if not _has_torch():
        return []
    from ._env import available_cores

    cores = available_cores()
    result = _alternate({"ours": lambda: _run_ours("train", batch, steps),
                         "torch": lambda: _run_torch("train", batch, steps, "eager", cores)},
                        rounds)
    _MEASURED["train", batch] = result["ours"][0]
    return [_row("VGG-D training step, 224, batch %d" % batch, result["ours"][0],
                 result["torch"][0], "PyTorch channels_last", 1.0, "images/s"),
            _row("VGG-D training peak RSS, batch %d" % batch, result["ours"][1],
                 result["torch"][1], "PyTorch", 1.0, "MB", higher_is_better=False)]


def bench_gflops(batch=16, repeats=3, size=4096):
    """Achieved GFLOP/s of VGG-D inference and training (batch 16) against this machine's
    fp32 GEMM ceiling (mx.nd.dot of size^3), measured in the same run. The images/s come
    from the PyTorch comparisons when they ran, else from their own processes."""
    import mxnet as mx

    from vggcli import models

    a = mx.nd.random.uniform(shape=(size, size))
    gemm = _median_rate(lambda: mx.nd.dot(a, a).wait_to_read(), 2.0 * size ** 3 / 1e9,
                        repeats)
    flops = 2.0 * models.multiply_adds("D") / 1e9  # 30.9 GFLOP per image
    infer = _MEASURED.get(("infer", batch)) or _run_ours("infer", batch, repeats)[0]
    train = _MEASURED.get(("train", batch)) or _run_ours("train", batch, 2)[0]
    return [_row("VGG-D fp32 inference, batch %d, share of the GEMM ceiling" % batch,
                 infer * flops, gemm, "mx.nd.dot %d^3" % size, 0.7, "GFLOP/s"),
            _row("VGG-D fp32 training, batch %d, share of the GEMM ceiling" % batch,
                 train * 3 * flops, gemm, "mx.nd.dot %d^3" % size, 0.7, "GFLOP/s",
                 note="backward counted as 2x forward")]


def bench_int8(batch=8, repeats=3):
    """VGG-D inference, INT8 (oneDNN, calibrated on real photos) vs our float32."""
    from skimage import data

    import mxnet as mx

    from vggcli import models
    from vggcli.fast import calibration_batch, quantize

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    mean = [120.0, 115.0, 100.0]
    calibration = calibration_batch(lambda i: (photos[i % 4], 0), 8, 8, 224, 256, mean)
    net = models.initialize(models.get_model("D"), seed=0)
    net.hybridize(static_alloc=True, static_shape=True)
    quantized = quantize(net, calibration, [mx.cpu()])
    x = mx.nd.array(np.concatenate([calibration] * (batch // len(calibration) + 1))[:batch])
    fp32 = _median_rate(lambda: net(x).wait_to_read(), batch, repeats)
    int8 = _median_rate(lambda: quantized(x).wait_to_read(), batch, repeats)
    from .precision import cpu_description
    return [_row("VGG-D inference, 224, batch %d: INT8 vs float32" % batch, int8, fp32,
                 "ours, float32", 3.0, "images/s", note=cpu_description())]
