"""``make bench``: every figure is a ratio against a named peer measured in the same
run, the two sides interleaved, medians of several repetitions.

Writes ``bench/results.json`` and ``bench/results.md``. The benchmarks against
PyTorch, and those of precision, memory and scale, are in ``peers``.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from .cluster import bench_cluster
from .common import (OUT_DIR, ROUNDS, _gluoncv_pair, _interleave, _row, _timed_rates,
                     native_logs_silenced)
from .distributed import bench_compression_accuracy, bench_distributed
from .localisation import bench_localisation
from .peers import (bench_bfloat16, bench_dense_vs_multicrop, bench_gflops, bench_int8,
                    bench_scaling, bench_threads, bench_torch_inference, bench_torch_training)
from ..core.processes import vgg_argv

# --- inference ----------------------------------------------------------------------

def bench_inference(batch=4, repeats=3):
    """VGG-D fp32 inference, ours vs GluonCV's model-zoo vgg16."""
    import mxnet as mx

    x = mx.nd.random.uniform(shape=(batch, 3, 224, 224))
    ours, peer = _gluoncv_pair()
    rates = _interleave({name: lambda n=net: _timed_rates(lambda: n(x).wait_to_read(), batch,
                                                          repeats)
                         for name, net in (("ours", ours), ("peer", peer))}, 2)
    return [_row("VGG-D fp32 inference, 224, batch %d" % batch, rates["ours"],
                 rates["peer"], "GluonCV vgg16", 1.0, "images/s")]


# --- packing ------------------------------------------------------------------------

def photo_folder(root, count, classes=10, size=(750, 1000), seed=0):
    """``count`` JPEGs (quality 90) cut from scikit-image's real photos, scaled to
    about ``size`` (h, w) like a large ImageNet photo, in ``classes`` folders."""
    import cv2
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(),
              data.hubble_deep_field(), data.stereo_motorcycle()[0], data.immunohistochemistry()]
    rng = np.random.RandomState(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        crop_h, crop_w = int(h * rng.uniform(0.6, 1)), int(w * rng.uniform(0.6, 1))
        y, x = rng.randint(0, h - crop_h + 1), rng.randint(0, w - crop_w + 1)
        crop = photo[y:y + crop_h, x:x + crop_w]
        if rng.rand() < 0.5:
            crop = crop[:, ::-1]
        jitter = rng.uniform(0.85, 1.15)
        image = cv2.resize(np.ascontiguousarray(crop), (int(size[1] * jitter),
                                                        int(size[0] * jitter)))
        folder = os.path.join(root, "class%02d" % (i % classes))
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(os.path.join(folder, "%05d.jpg" % i), image[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root


def _timed_with_rss(args, env=None):
    """(seconds, peak RSS in MB of the largest process of the command's tree)."""
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper] + args, check=True,
                         capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - start, int(out.split()[-1]) / 1024.0


def _vgg_pack_args(root, out, cores, short_side, quality):
    return vgg_argv(["pack", root, "--out", out, "--max-short-side", str(short_side),
                     "--quality", str(quality), "--workers", str(cores), "--val-ratio", "0",
                     "--quiet"])


def bench_packing(count=240, repeats=ROUNDS, short_side=256, quality=95):
    """``vgg pack`` vs MXNet's im2rec.py, same input, resize, quality and cores."""
    import mxnet

    from ..core.env import available_cores

    cores = available_cores()
    im2rec = os.path.join(os.path.dirname(mxnet.__file__), "tools", "im2rec.py")
    work = tempfile.mkdtemp(prefix="vgg-bench-pack-")
    try:
        root = photo_folder(os.path.join(work, "photos"), count)
        prefix = os.path.join(work, "im2rec", "data")
        os.makedirs(os.path.dirname(prefix))
        subprocess.run([sys.executable, im2rec, "--list", "--recursive", prefix, root],
                       check=True, capture_output=True)
        ours, theirs = [], []
        for _ in range(repeats):
            out = os.path.join(work, "ours")
            shutil.rmtree(out, ignore_errors=True)
            ours.append(_timed_with_rss(_vgg_pack_args(root, out, cores, short_side,
                                                       quality))[0])
            for ext in (".rec", ".idx"):
                if os.path.exists(prefix + ext):
                    os.remove(prefix + ext)
            theirs.append(_timed_with_rss([sys.executable, im2rec, "--resize", str(short_side),
                                           "--quality", str(quality), "--num-thread",
                                           str(cores), prefix, root])[0])
        rows = [_row("packing %d photos ~1000x750 -> short side %d, q%d, %d cores"
                     % (count, short_side, quality, cores), [count / t for t in ours],
                     [count / t for t in theirs], "MXNet im2rec.py", 2.0, "images/s",
                     note="whole command, start-up included")]
        rss = []
        for size in (count // 4, count):
            sub = photo_folder(os.path.join(work, "rss%d" % size), size, seed=1)
            out = os.path.join(work, "rss-out%d" % size)
            rss.append(_timed_with_rss(_vgg_pack_args(sub, out, cores, short_side,
                                                      quality))[1])
        rows.append(_row("packing peak RSS at %d vs %d images" % (count // 4, count),
                         rss[1], rss[0], "ours at %d images" % (count // 4), 0.9, "MB",
                         higher_is_better=False,
                         note="largest process; ratio ~1 means independent of dataset size"))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- training -------------------------------------------------------------------

def _train_step(net, batch):
    import mxnet as mx
    from mxnet import autograd, gluon

    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            dict(learning_rate=0.01, momentum=0.9, wd=5e-4))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.uniform(-100, 100, shape=(batch, 3, 224, 224))
    y = mx.nd.array(np.arange(batch) % 1000)

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        loss.wait_to_read()
        mx.nd.waitall()
    return step


def bench_training(batch=8, repeats=ROUNDS):
    """VGG-D training step (forward, backward, SGD), ours vs GluonCV vgg16, same trainer;
    after a warm-up step each, single timed steps alternate between the two."""
    ours, peer = _gluoncv_pair()
    steps = {name: _train_step(net, batch) for name, net in (("ours", ours), ("peer", peer))}
    for step in steps.values():
        step()
    rates = _interleave({name: lambda s=step: _timed_rates(s, batch, 1, warm_up=False)
                         for name, step in steps.items()}, repeats)
    return [_row("VGG-D training step, 224, batch %d" % batch, rates["ours"], rates["peer"],
                 "GluonCV vgg16", 1.0, "images/s")]


def bench_pipeline(count=240, batch=32, batches=6):
    """Training input (decode, jittered rescale, crop, flip, PCA colour shift) vs MXNet's
    ImageRecordIter with the same augmentation, per core."""
    import mxnet as mx

    from data_tools import pack as packing

    from ..core.env import available_cores
    from ..training.data import (EpochBatches, EpochDataset, RecordImages, Scale,
                                 TrainTransform, make_loader)

    cores = available_cores()
    work = tempfile.mkdtemp(prefix="vgg-bench-pipe-")
    try:
        root = photo_folder(os.path.join(work, "photos"), count, size=(375, 500))
        splits, classes, source = packing.plan_folder(root, val_ratio=0)
        packing.pack(splits, classes, os.path.join(work, "packed"), packing.PackSettings(),
                     source, workers=cores, progress=False)
        rec = os.path.join(work, "packed", "train.rec")
        images = RecordImages(rec)
        dataset = EpochDataset(images, TrainTransform(Scale(256, 512), 224, [120, 115, 100],
                                                      seed=0))
        sampler = EpochBatches(len(images), batch, seed=0)
        loader = make_loader(dataset, sampler, cores)

        def ours():
            seen = 0
            for epoch in range(2):
                sampler.epoch = epoch
                for crops, _, _ in loader:
                    crops.wait_to_read()
                    seen += crops.shape[0]
            return seen

        def theirs():  # ImageRecordIter logs from C++ on every reset
            with native_logs_silenced():
                it = mx.io.ImageRecordIter(
                    path_imgrec=rec, path_imgidx=rec[:-4] + ".idx", data_shape=(3, 224, 224),
                    batch_size=batch, resize=256, min_random_scale=1.0, max_random_scale=2.0,
                    rand_crop=True, rand_mirror=True, pca_noise=0.1, mean_r=120, mean_g=115,
                    mean_b=100, shuffle=True, preprocess_threads=cores)
                seen = 0
                for _ in range(2):
                    it.reset()
                    for data_batch in it:
                        data_batch.data[0].wait_to_read()
                        seen += batch - data_batch.pad
                return seen

        rates = _alternated_rates({"ours": ours, "theirs": theirs}, cores)
        return [_row("training input pipeline, S in [256,512], 224 crops, per core",
                     rates["ours"], rates["theirs"],
                     "MXNet ImageRecordIter", 1.0, "images/s/core",
                     note="ImageRecordIter given preprocess_threads=%d" % cores)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _alternated_rates(sides, cores):
    """{name: [images/s/core per round]}: each side's function (which returns the images
    it read) run in turn, ROUNDS rounds."""
    rates = {name: [] for name in sides}
    for _ in range(ROUNDS):
        for name, read in sides.items():
            start = time.perf_counter()
            seen = read()
            rates[name].append(seen / (time.perf_counter() - start) / cores)
    return rates


BENCHES = {"inference": bench_inference, "int8": bench_int8, "torch": bench_torch_inference,
           "torch-training": bench_torch_training, "threads": bench_threads,
           "bfloat16": bench_bfloat16, "gflops": bench_gflops,
           "training": bench_training, "pipeline": bench_pipeline, "packing": bench_packing,
           "dense": bench_dense_vs_multicrop, "distributed": bench_distributed,
           "compression": bench_compression_accuracy, "scaling": bench_scaling,
           "localise": bench_localisation, "cluster": bench_cluster}
# make bench: all but four, to stay under 15 minutes on 2 cores: the training step against
# GluonCV's vgg16 (same kernels as ours, two minutes; the inference row shows the same),
# the accuracy cost of gradient compression (an experiment, not a speed figure), the
# cluster (root only: make bench-cluster) and dense localisation (it needs the demo's
# nets: make demo, 3 minutes, where it has not run)
DEFAULT = [name for name in BENCHES
           if name not in ("training", "compression", "cluster", "localise")]


def render(rows):
    from ..nets.tables import markdown_table

    def shown(value, spread):
        return "%.2f" % value + (" (%.2f-%.2f)" % tuple(spread) if spread else "")

    return markdown_table(
        ["figure", "ours: median (min-max)", "peer: median (min-max)", "ratio", "target",
         "pass"],
        [[r["figure"], "%s %s" % (shown(r["ours"], r.get("ours_range")), r["unit"]),
          "%s, %s" % (shown(r["peer"], r.get("peer_range")), r["peer_name"]),
          "%.2fx" % r["ratio"], ">= %.1fx" % r["target"], "yes" if r["passed"] else "no"]
         for r in rows])


def main(argv=None):
    import vggcli
    vggcli.configure()  # threads before MXNet loads
    names = (argv if argv is not None else sys.argv[1:]) or DEFAULT
    rows = []
    for name in names:
        print("bench: %s ..." % name, file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows += BENCHES[name]()
        print("bench: %s took %.0f s" % (name, time.perf_counter() - started), file=sys.stderr,
              flush=True)
    from ..core.env import available_cores
    from ..core.precision import cpu_description
    machine = "%s; %d cores" % (cpu_description(), available_cores())
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
        json.dump(dict(date=time.strftime("%Y-%m-%d"), machine=machine, rows=rows), f,
                  indent=2)
    table = render(rows)
    with open(os.path.join(OUT_DIR, "results.md"), "w") as f:
        f.write("%s, %s\n\n%s\n" % (time.strftime("%Y-%m-%d"), machine, table))
    print(machine)
    print(table)
    return 0
