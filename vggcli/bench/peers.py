"""Benchmarks against PyTorch (eager and torch.compile), threads, bfloat16, INT8,
the GEMM ceiling, dense vs multi-crop testing and distributed training; each
peer runs in its own process so its peak memory is its own."""
import os
import subprocess
import sys
import time
from statistics import median

import numpy as np

from .common import ROUNDS, _interleave, _row, _timed_rates
from .distributed import PAPER_SPEEDUP_4_GPUS, scaling_model

# --- PyTorch peer, dense vs multi-crop, features, distributed -----------------------

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
    out = subprocess.run([sys.executable, "-m", "vggcli.bench.vgg16_torch", str(threads), task,
                          str(batch), str(repeats), variant, "1" if settle else "0"],
                         capture_output=True, text=True, check=True)
    return _rates_and_rss(out.stdout)


def _rates_and_rss(stdout):
    """([images/s of each timed step], peak RSS MB) from a peer script's last line."""
    rates, rss = stdout.split()[-2:]
    return [float(r) for r in rates.split(",")], float(rss)


def _run_ours(task, batch, repeats, dtype="float32", env=None, micro=1, settle=False):
    """(images/s, peak RSS MB) of our net D in its own process, or None where this CPU
    cannot run ``dtype``; ``micro``: training micro-batches (vgg train --accumulate);
    ``settle``: more steps until the peak RSS stops growing."""
    out = subprocess.run([sys.executable, "-m", "vggcli.bench.vgg16_ours", task, str(batch),
                          str(repeats), dtype, str(micro), "1" if settle else "0"],
                         capture_output=True, text=True, check=True, env=env)
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
