"""``make bench``: every figure is a ratio against a named peer measured in the same
run, the two sides interleaved, medians of several repetitions.

Writes ``bench/results.json`` and ``bench/results.md``.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

OUT_DIR = "bench"


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def _median_rate(fn, images, repeats):
    fn()  # warm-up: graph build and oneDNN layout conversion
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - start))
    return _median(rates)


def _row(figure, ours, peer, peer_name, target, unit, higher_is_better=True, note=""):
    ratio = ours / peer if higher_is_better else peer / ours
    return dict(figure=figure, ours=ours, peer=peer, peer_name=peer_name, ratio=ratio,
                target=target, unit=unit, passed=ratio >= target, note=note)


# --- inference ----------------------------------------------------------------------

def bench_inference(batch=4, repeats=5):
    """VGG-D fp32 inference, ours vs GluonCV's model-zoo vgg16."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model as gcv_get_model

    from vggcli import models

    x = mx.nd.random.uniform(shape=(batch, 3, 224, 224))
    ours = models.initialize(models.get_model("D"), seed=0)
    ours.hybridize(static_alloc=True, static_shape=True)
    peer = gcv_get_model("vgg16", pretrained=False)
    peer.initialize(mx.init.Xavier())
    peer.hybridize(static_alloc=True, static_shape=True)
    rates = {"ours": [], "peer": []}
    for _ in range(2):  # interleave the two sides
        for name, net in (("ours", ours), ("peer", peer)):
            rates[name].append(_median_rate(lambda n=net: n(x).wait_to_read(), batch, repeats))
    return [_row("VGG-D fp32 inference, 224, batch %d" % batch, _median(rates["ours"]),
                 _median(rates["peer"]), "GluonCV vgg16", 1.0, "images/s")]


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
    return [sys.executable, "-m", "vggcli", "pack", root, "--out", out, "--max-short-side",
            str(short_side), "--quality", str(quality), "--workers", str(cores),
            "--val-ratio", "0", "--quiet"]


def bench_packing(count=240, repeats=3, short_side=256, quality=95):
    """``vgg pack`` vs MXNet's im2rec.py, same input, resize, quality and cores."""
    import mxnet

    from ._env import available_cores

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
                     % (count, short_side, quality, cores), count / _median(ours),
                     count / _median(theirs), "MXNet im2rec.py", 2.0, "images/s",
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


BENCHES = {"inference": bench_inference, "packing": bench_packing}


def render(rows):
    from .tables import markdown_table

    return markdown_table(
        ["figure", "ours", "peer", "ratio", "target", "pass"],
        [[r["figure"], "%.2f %s" % (r["ours"], r["unit"]),
          "%.2f (%s)" % (r["peer"], r["peer_name"]), "%.2fx" % r["ratio"],
          ">= %.1fx" % r["target"], "yes" if r["passed"] else "no"] for r in rows])


def main(argv=None):
    import vggcli  # noqa: F401  (threads before MXNet loads)

    from ._env import quiet_warnings
    quiet_warnings()
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    rows = []
    for name in names:
        print("bench: %s ..." % name, file=sys.stderr, flush=True)
        rows += BENCHES[name]()
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
        json.dump(dict(date=time.strftime("%Y-%m-%d"), rows=rows), f, indent=2)
    table = render(rows)
    with open(os.path.join(OUT_DIR, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
