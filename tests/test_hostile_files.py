"""Hostile inputs, part two: every file vgg reads, damaged or crafted, gives one line
naming the file (exit 2); full disks and read-only folders give one line naming the
path and leave nothing behind; names that are not UTF-8, FIFOs, image bombs and
truncated tars are skipped with their reason. Each case checks that every file in
the folders involved is unchanged (tests.hostile)."""
import errno
import json
import os
import pickle
import shutil
import struct

import numpy as np
import pytest

from .hostile import (eval_output, file_size_limit, refused, refused_in_subprocess,
                      snapshot)


@pytest.fixture(scope="module")
def eval_folder(params, digits, tmp_path_factory):
    return eval_output(params, digits, tmp_path_factory.mktemp("hostile-eval") / "eval", 40)


@pytest.fixture(scope="module")
def features_file(params, digits, tmp_path_factory):
    from vggcli.testing.features import extract
    from vggcli.testing.inference import load_for_inference
    out = str(tmp_path_factory.mktemp("hostile-features") / "val.npz")
    loaded = load_for_inference(params)
    extract([loaded.net], "fc7", [36], out, data=os.path.join(digits, "val.rec"),
            means=[loaded.mean_rgb], ctx=loaded.ctx, progress=False)
    return out


# --- packed records -----------------------------------------------------------

def _records_copy(digits, tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    for name in ("val.rec", "val.idx", "val.lst"):
        shutil.copy(os.path.join(digits, name), str(folder / name))
    return folder


def _damage_first_header(folder, offset, fmt, value):
    """Rewrite a field of the first record's IRHeader (after its 8-byte record head)."""
    with open(str(folder / "val.rec"), "r+b") as f:
        f.seek(8 + offset)
        f.write(struct.pack(fmt, value))


RECORD_DAMAGE = {
    "idx-binary-garbage": (lambda d: (d / "val.idx").write_bytes(os.urandom(64) + b"\xff\xfe"),
                           "val.idx is not readable text"),
    "idx-bad-line": (lambda d: (d / "val.idx").write_text("0\t0\n1\tx\n"),
                     "val.idx line 2 is not 'key<TAB>offset'"),
    "lst-malformed": (lambda d: (d / "val.lst").write_text("garbage\n" * 359),
                      "val.lst line 1 is not 'index<TAB>label<TAB>id'"),
    "nan-label": (lambda d: _damage_first_header(d, 4, "<f", float("nan")),
                  "has a damaged header (label nan"),
    "flag-past-record": (lambda d: _damage_first_header(d, 0, "<I", 1 << 20),
                         "has a damaged header"),
}


@pytest.mark.parametrize("case", sorted(RECORD_DAMAGE))
def test_damaged_records_are_one_line(params, digits, tmp_path, case):
    folder = _records_copy(digits, tmp_path)
    damage, expect = RECORD_DAMAGE[case]
    damage(folder)
    refused(["eval", "--params", params, "--data", folder / "val.rec", "--out",
             tmp_path / "e", "--quiet"], folder, expect=expect)
    assert not (tmp_path / "e").exists()


MANIFEST_DAMAGE = {
    "not-json": ("{not json", "pack manifest"),
    "a-list": ("[1, 2]", "a JSON object expected"),
    "mean-text": ('{"classes": 10, "mean_rgb": "grey"}', "mean_rgb must be three numbers"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_DAMAGE))
def test_damaged_manifest_is_one_line(digits, tmp_path, case):
    data = tmp_path / "data"
    shutil.copytree(digits, str(data))
    text, expect = MANIFEST_DAMAGE[case]
    (data / "manifest.json").write_text(text)
    refused(["train", "--net", "A", "--data", data, "--out", tmp_path / "run"], data,
            expect=expect)


# --- eval folders (fuse's inputs) ---------------------------------------------

def _report(folder, change):
    path = folder / "report.json"
    report = json.loads(path.read_text())
    change(report)
    path.write_text(json.dumps(report))


EVAL_DAMAGE = {
    "report-not-json": (lambda f: (f / "report.json").write_text("[1, 2"),
                        "report.json is damaged"),
    "report-no-keys": (lambda f: (f / "report.json").write_text("{}"), "no net, scales"),
    "report-wrong-type": (lambda f: _report(f, lambda r: r.update(top1_error="low")),
                          "a field has the wrong type"),
    "scores-pickled": (lambda f: np.save(str(f / "scores.npy"), np.array([{"x": 1}], object),
                                         allow_pickle=True), "not a plain array file"),
    "scores-1d": (lambda f: np.save(str(f / "scores.npy"), np.zeros(40, np.float32)),
                  "holds a 1-D float32 array"),
    "scores-nan": (lambda f: np.save(str(f / "scores.npy"), np.full((40, 10), np.nan,
                                                                     np.float32)),
                   "not finite numbers"),
    "labels-out-of-range": (lambda f: np.save(str(f / "labels.npy"), np.full(40, 99)),
                            "labels outside [0, 10)"),
    "ids-not-utf8": (lambda f: (f / "ids.txt").write_bytes(b"\xff\xfe\x00" * 40),
                     "ids.txt is not readable text"),
}


@pytest.mark.parametrize("case", sorted(EVAL_DAMAGE))
def test_damaged_eval_folders_are_one_line(eval_folder, tmp_path, case):
    damaged = tmp_path / "damaged"
    shutil.copytree(str(eval_folder), str(damaged))
    change, expect = EVAL_DAMAGE[case]
    change(damaged)
    refused(["fuse", eval_folder, damaged, "--out", tmp_path / "fused"], damaged, eval_folder,
            expect=expect)
    assert not (tmp_path / "fused").exists()


# --- features files (transfer's inputs) ----------------------------------------

FEATURES_DAMAGE = {
    "nan": (lambda d: d.update(features=np.full_like(d["features"], np.nan)), "not finite"),
    "1-d": (lambda d: d.update(features=d["features"][:, 0]), "1-D float32 array"),
    "label-count": (lambda d: d.update(labels=d["labels"][:3]), "3 labels (int64) for"),
    "info-not-object": (lambda d: d.update(info=np.array("[1, 2]")), "info is not a JSON"),
    "pickled-ids": (lambda d: d.update(ids=np.array([{"id": 1}], object)),
                    "not a vgg features file"),
    "not-a-zip": (None, "not a vgg features file"),
}


@pytest.mark.parametrize("case", sorted(FEATURES_DAMAGE))
def test_damaged_features_are_one_line(features_file, tmp_path, case):
    change, expect = FEATURES_DAMAGE[case]
    damaged = tmp_path / "damaged.npz"
    if change is None:
        damaged.write_bytes(b"PK\x03\x04" + os.urandom(200))
    else:
        with np.load(features_file) as data:
            arrays = {k: data[k] for k in data.files}
        change(arrays)
        np.savez(str(damaged), **arrays)
    refused(["transfer", "--train", damaged, "--test", features_file, "--out",
             tmp_path / "t"], tmp_path, os.path.dirname(features_file), expect=expect)


# --- parameter files -----------------------------------------------------------

def _params_damage(params, path, case):
    whole = open(params, "rb").read()
    if case == "truncated":
        path.write_bytes(whole[:len(whole) // 2])
    elif case == "huge-shape":  # the first array's first dimension: 2^40
        at = 8 + 8 + 8 + 4 + 4 + 4
        path.write_bytes(whole[:at] + struct.pack("<q", 1 << 40) + whole[at + 8:])
    elif case == "not-ndarray":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(100))
    elif case == "description-types":
        from vggcli.nets import params as paramfile
        net = paramfile.load_model(params)
        paramfile.save_params(net, str(path), dict(classes="ten"))


PARAMS_DAMAGE = {
    "truncated": "is damaged: array",
    "huge-shape": "declares",
    "not-ndarray": "not an MXNet parameter file",
    "description-types": "damaged description: classes 'ten'",
}


@pytest.mark.parametrize("case", sorted(PARAMS_DAMAGE))
def test_damaged_params_are_one_line(params, digits, tmp_path, case):
    """MXNet would try the allocation a header declares (or print a C++ traceback):
    ndfile checks the layout first."""
    damaged = tmp_path / "damaged.params"
    _params_damage(params, damaged, case)
    refused(["eval", "--params", damaged, "--data", os.path.join(digits, "val.rec"),
             "--out", tmp_path / "e"], tmp_path, expect=PARAMS_DAMAGE[case])


# --- convert's inputs ----------------------------------------------------------

def _torch_file(path, case):
    torch = pytest.importorskip("torch")
    if case == "plain-pickle":
        with open(path, "wb") as f:
            pickle.dump({"features.0.weight": [1.0, 2.0]}, f, protocol=2)
    elif case == "int-keys":
        torch.save({1: torch.zeros(3), "features.0.weight": torch.zeros(3)}, path)
    elif case == "resnet":
        torch.save({"conv1.weight": torch.zeros(4, 3, 7, 7), "bn1.running_mean": torch.zeros(4),
                    "layer1.0.conv1.weight": torch.zeros(4, 4, 3, 3),
                    "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, path)


TORCH_CASES = {
    "plain-pickle": "as a state dict of tensors",
    "int-keys": "keys that are not names (1)",
    "resnet": "is not a torchvision VGG (a ResNet?)",
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_convert_refuses_what_is_not_a_torchvision_vgg(tmp_path, case):
    source = tmp_path / ("%s.pth" % case)
    _torch_file(str(source), case)
    message = refused(["convert", "--from", "torchvision", source, "--net", "A", "--out",
                       tmp_path / "A.params"], tmp_path, expect=TORCH_CASES[case])
    assert "weights_only" not in message  # torch's advice to disable it is never passed on


def test_convert_refuses_negative_caffe_dims(tmp_path):
    from vggcli.nets import convert
    messages = convert.caffe_messages()
    net = messages["NetParameter"](name="x")
    layer = net.layer.add(name="conv1_1", type="Convolution")
    for dims in ([-4, -3, 3, 3], [4]):
        blob = layer.blobs.add()
        blob.shape.dim.extend(dims)
        blob.data.extend([0.0] * 108)
    path = tmp_path / "negative.caffemodel"
    path.write_bytes(net.SerializeToString())
    refused(["convert", "--from", "caffe", path, "--net", "A", "--out", tmp_path / "A.params"],
            tmp_path, expect="negative dimension [-4, -3, 3, 3]")


def test_old_gluoncv_names_convert_in_layer_order(tmp_path):
    """Old GluonCV files name layers vgg0_conv0 ... vgg0_conv12: sorted as text, conv10
    would come before conv2 (a shape error at best). Every converted layer after
    conv1_1 (which takes the folded preprocessing) equals its source exactly."""
    import mxnet as mx

    from vggcli.nets import convert, models
    source = models.initialize(models.get_model("D", classes=7, width_mult=0.125,
                                                fc_width=32, crop_size=32), seed=3)
    named = source._collect_params_with_prefix()
    convs = [n[:-len(".weight")] for n in named if n.startswith("features.")
             and n.endswith(".weight")]
    arrays = {}
    for i, name in enumerate(convs):
        arrays["vgg0_conv%d_weight" % i] = named[name + ".weight"].data()
        arrays["vgg0_conv%d_bias" % i] = named[name + ".bias"].data()
    for j, name in enumerate(("fc6", "fc7", "fc8")):
        arrays["vgg0_dense%d_weight" % j] = named[name + ".weight"].data()
        arrays["vgg0_dense%d_bias" % j] = named[name + ".bias"].data()
    path = str(tmp_path / "old-gluoncv.params")
    mx.nd.save(path, arrays)
    net = convert.convert("gluoncv", path, "D", str(tmp_path / "D.params"), width_mult=0.125,
                          fc_width=32, crop_size=32)
    for name, param in net._collect_params_with_prefix().items():
        if name != "features.conv1_1.weight":
            np.testing.assert_array_equal(param.data().asnumpy(), named[name].data().asnumpy())


# --- run folders ---------------------------------------------------------------

@pytest.fixture(scope="module")
def run_folder(digits, tmp_path_factory):
    from tests.conftest import config
    from vggcli.training.train import train
    out = tmp_path_factory.mktemp("hostile-run") / "run"
    train(config(digits, out, net="A", epochs=1, width_mult=0.125, fc_width=32), progress=False)
    return out


def _state(folder, change):
    import hashlib
    ckpt = folder / "checkpoints" / sorted(os.listdir(str(folder / "checkpoints")))[-1]
    state = json.loads((ckpt / "state.json").read_text())
    change(state)
    (ckpt / "state.json").write_text(json.dumps(state))
    sums = json.loads((ckpt / "checksums.json").read_text())  # a consistent forgery
    data = (ckpt / "state.json").read_bytes()
    sums["state.json"] = dict(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (ckpt / "checksums.json").write_text(json.dumps(sums))


RUN_DAMAGE = {
    "config-python-tag": (lambda f: open(str(f / "config.yaml"), "a").write(
        "net: !!python/object/apply:os.system ['touch pwned']\n"), "could not determine a "
        "constructor for the tag"),
    "state-no-schedule": (lambda f: _state(f, lambda s: s.pop("schedule")), "no schedule"),
    "state-wrong-type": (lambda f: _state(f, lambda s: s.update(epoch="three")),
                         "wrong or missing epoch"),
}


@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_damaged_run_folders_are_one_line(run_folder, tmp_path, case, monkeypatch):
    folder = tmp_path / "run"
    shutil.copytree(str(run_folder), str(folder))
    change, expect = RUN_DAMAGE[case]
    change(folder)
    monkeypatch.chdir(str(tmp_path))
    refused(["train", "--resume", folder, "--epochs", "2"], folder, expect=expect)
    assert not (tmp_path / "pwned").exists()


def test_a_recipe_with_a_python_tag_is_refused_not_run(digits, tmp_path, monkeypatch):
    recipe = tmp_path / "evil.yaml"
    recipe.write_text("net: A\nlr: !!python/object/apply:os.system ['touch pwned']\n")
    monkeypatch.chdir(str(tmp_path))
    refused(["train", "--recipe", recipe, "--data", digits, "--out", tmp_path / "run"],
            tmp_path, expect="is not valid YAML")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("args,expect", [
    (["train", "--net", "A", "--fc-width", "100000000"], "over MXNet's 2^31 limit"),
    (["export", "--dense", "--input-size", "20000"], "over MXNet's 2^31"),
])
def test_sizes_past_mxnets_array_limit_are_refused(params, digits, tmp_path, args, expect):
    extra = ["--data", digits, "--out", tmp_path / "run"] if args[0] == "train" else \
        ["--params", params, "--out", tmp_path / "x"]
    refused(args + extra, digits, tmp_path, expect=expect)


# --- vgg export under the output policy ------------------------------------------

def test_export_replaces_only_its_own_unchanged_files(params, tmp_path, user_folder):
    from click.testing import CliRunner

    from vggcli.cli import cli
    (user_folder / "net-symbol.json").write_text("{\"mine\": true}")
    refused(["export", "--params", params, "--out", user_folder / "net", "--overwrite"],
            user_folder, expect="not a vgg export output")
    prefix = tmp_path / "exp" / "vgg"
    args = ["export", "--params", params, "--out", str(prefix)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    refused(args, prefix.parent, expect="give --overwrite")
    assert CliRunner().invoke(cli, args + ["--overwrite"]).exit_code == 0
    (tmp_path / "exp" / "vgg-0000.params").write_bytes(b"edited by the user")
    refused(args + ["--overwrite"], prefix.parent, expect="not a vgg export output")


# --- full disks and read-only folders ------------------------------------------

LIMITED = {
    "eval": lambda p, d, t: ["eval", "--params", p, "--data", os.path.join(d, "val.rec"),
                             "--out", t / "out", "--quiet"],
    "features": lambda p, d, t: ["features", "--params", p, "--data", os.path.join(
        d, "val.rec"), "--scales", "36", "--out", t / "out.npz", "--quiet"],
    "train": lambda p, d, t: ["train", "--net", "A", "--width-mult", "0.125", "--fc-width",
                              "32", "--crop-size", "32", "--scale", "36", "--epochs", "1",
                              "--data", d, "--out", t / "out", "--quiet"],
}


@pytest.mark.parametrize("command", sorted(LIMITED))
def test_a_full_disk_is_one_line_and_leaves_nothing_complete(params, digits, tmp_path,
                                                              command):
    """RLIMIT_FSIZE (see tests.hostile.file_size_limit) stands for a full disk: no
    SIGBUS from a memory-mapped output, one line naming the output, exit 1, and no
    temporary or complete-looking output left."""
    work = tmp_path / "work"
    work.mkdir()
    refused_in_subprocess(LIMITED[command](params, digits, work), digits, expect="out",
                          code=1, preexec_fn=file_size_limit(8192))
    left = sorted(os.listdir(str(work)))
    if command == "train":  # the run folder stays (resumable), without a checkpoint
        assert left == ["out"] and "checkpoints" not in os.listdir(str(work / "out")) or \
            not os.listdir(str(work / "out" / "checkpoints"))
        assert not [n for n in os.listdir(str(work / "out")) if n.endswith(".params")]
    else:
        assert left == []


def test_a_pack_on_a_full_disk_resumes_when_space_returns(tmp_path, digits):
    from data_tools.digits import write_digits
    raw = tmp_path / "raw"
    write_digits(str(raw), limit=300)
    out = tmp_path / "packed"
    message = refused_in_subprocess(["pack", raw, "--out", out, "--quiet"], raw,
                                    expect="rerun with --resume", code=1,
                                    preexec_fn=file_size_limit(20000))
    assert str(out) in message and not (out / "manifest.json").exists()
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "vggcli", "pack", str(raw), "--out",
                           str(out), "--resume", "--quiet"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = tmp_path / "fresh"
    done = subprocess.run([sys.executable, "-m", "vggcli", "pack", str(raw), "--out",
                           str(fresh), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    for name in ("train.rec", "train.idx", "val.rec", "val.idx"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


@pytest.mark.parametrize("code,expect", [(errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied"),
                                         (errno.ENOSPC, "No space left on device")])
def test_read_only_and_full_folders_are_one_line(params, digits, tmp_path, monkeypatch,
                                                 code, expect):
    """Simulated in-process (a read-only mount needs root): the output folder's
    creation fails as the kernel would make it fail."""
    import data_tools.common as common
    real = common.os.makedirs

    def failing(path, *args, **kwargs):
        if str(tmp_path) in str(path):
            raise OSError(code, os.strerror(code), path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(common.os, "makedirs", failing)
    message = refused(["eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
                       "--out", tmp_path / "e"], digits, tmp_path, expect=expect,
                      code=1 if code == errno.ENOSPC else 2)
    assert str(tmp_path) in message


# --- images: bombs, extreme shapes, odd names, special files, truncated tars -------

def _png_header(width, height):
    """A PNG that declares width x height (a decompression bomb's header)."""
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                             2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def test_declared_size_agrees_with_pillow_and_never_trusts_a_cut_header(photos):
    """Our PNG/JPEG header reader against Pillow's on real photos in every encoding we
    meet (baseline, progressive, EXIF-like APPn segments first, PNG), on a JPEG bomb
    header, and on every prefix of a header: a cut header gives None or the truth."""
    import io

    import cv2
    from PIL import Image

    from vggcli.core.images import declared_size
    encoded = []
    for photo in photos.values():
        bgr = np.ascontiguousarray(photo[:, :, ::-1])
        encoded += [cv2.imencode(".jpg", bgr)[1].tobytes(),
                    cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
                    cv2.imencode(".png", bgr[::7, ::5])[1].tobytes()]
    with io.BytesIO() as buffer:  # an APP1 (EXIF) segment before the frame header
        Image.fromarray(photos["coffee"]).save(buffer, "JPEG", exif=b"Exif\0\0" + b"x" * 300)
        encoded.append(buffer.getvalue())
    for data in encoded:
        truth = Image.open(io.BytesIO(data)).size
        assert declared_size(memoryview(data)) == truth
        for cut in range(0, 700, 3):
            assert declared_size(memoryview(data[:cut])) in (None, truth)
    bomb = bytearray(encoded[0])
    frame = bytes(bomb).index(b"\xff\xc0")
    bomb[frame + 5:frame + 9] = struct.pack(">HH", 60000, 60000)
    assert declared_size(memoryview(bytes(bomb))) == (60000, 60000)
    assert declared_size(memoryview(_png_header(100000, 3))) == (100000, 3)
    assert declared_size(memoryview(b"GIF89a" + b"\0" * 30)) is None  # Pillow's job


@pytest.fixture
def hostile_images(tmp_path, photos):
    """One class folder: a real photo, a bomb header, a 16x12000 strip, a Latin-1 name
    that is not UTF-8, a FIFO and a dangling link."""
    import cv2
    root = tmp_path / "images"
    folder = root / "cat"
    folder.mkdir(parents=True)
    ok, jpeg = cv2.imencode(".jpg", cv2.resize(photos["coffee"], (48, 40))[:, :, ::-1])
    (folder / "plain.jpg").write_bytes(jpeg.tobytes())
    with open(os.path.join(os.fsencode(str(folder)), b"caf\xe9.jpg"), "wb") as f:
        f.write(jpeg.tobytes())
    (folder / "bomb.png").write_bytes(_png_header(100000, 100000))
    cv2.imwrite(str(folder / "strip.png"), np.full((16, 12000, 3), 128, np.uint8))
    os.mkfifo(str(folder / "pipe.jpg"))
    os.symlink(str(tmp_path / "nowhere.jpg"), str(folder / "dangling.jpg"))
    return root


def test_pack_skips_bombs_fifos_and_dangling_links_and_keeps_odd_names(hostile_images,
                                                                        tmp_path):
    import subprocess
    import sys
    before = snapshot(hostile_images)
    out = tmp_path / "packed"
    done = subprocess.run([sys.executable, "-m", "vggcli", "pack", str(hostile_images),
                           "--val-ratio", "0", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {s["id"]: s["reason"] for s in manifest["splits"]["train"]["skipped"]}
    assert reasons["cat/bomb.png"].startswith("declares 100000x100000")
    assert reasons["cat/pipe.jpg"].startswith("not a regular file")
    assert "No such file" in reasons["cat/dangling.jpg"]
    ids = [line.split("\t")[2] for line in (out / "train.lst").read_text().splitlines()]
    assert "cat/caf\\xe9.jpg" in ids and "cat/plain.jpg" in ids and "cat/strip.png" in ids
    assert snapshot(hostile_images) == before


def test_features_skip_bombs_and_strips_with_their_reason(params, hostile_images, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "f.npz"
    done = subprocess.run([sys.executable, "-m", "vggcli", "features", "--params", params,
                           "--images", str(hostile_images), "--scales", "36", "--out",
                           str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped cat/bomb.png: declares 100000x100000" in done.stderr
    assert "skipped cat/strip.png: its 12000x16 pixels rescaled to 36" in done.stderr
    with np.load(str(out)) as data:
        assert sorted(data["ids"]) == ["cat/caf\\xe9.jpg", "cat/plain.jpg"]


def test_the_pixel_limit_is_an_option(params, hostile_images):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "vggcli", "--max-pixels", "1000", "eval",
                           "--params", params, "--images", str(hostile_images / "cat"),
                           "--scales", "36"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "plain.jpg: skipped (declares 48x40 = 1920 pixels, over the limit of 1000" \
        in done.stdout


def test_a_truncated_imagenet_tar_packs_what_is_readable(tmp_path):
    """exit 3: the images before the cut are packed, the damage is listed."""
    import subprocess
    import sys

    from tests.mini_imagenet import build
    layouts = build(str(tmp_path / "mini")).layouts["tars"]
    cut = tmp_path / "cut"
    cut.mkdir()
    for key in ("train_tar", "val_tar"):
        data = open(layouts[key], "rb").read()
        (cut / os.path.basename(layouts[key])).write_bytes(data[:int(len(data) * 0.6)])
    before = snapshot(cut)
    out = tmp_path / "packed"
    done = subprocess.run([sys.executable, "-m", "vggcli", "pack-imagenet", "--train-tar",
                           str(cut / "ILSVRC2012_img_train.tar"), "--val-tar",
                           str(cut / "ILSVRC2012_img_val.tar"), "--devkit",
                           layouts["devkit"], "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    damage = [r for r in manifest["refused"] if "tar is damaged" in r["reason"]
              or "truncated" in r["reason"]]
    assert damage and manifest["splits"]["train"]["records"] > 0
    assert snapshot(cut) == before
