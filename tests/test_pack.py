"""vgg pack-imagenet / vgg pack / vgg inspect on a miniature ILSVRC of real photos."""
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import mxnet as mx

from data_tools import pack as packing
from data_tools.encode import target_size
from vggcli.cli import cli
from vggcli.core.errors import VggError

from . import mini_imagenet

MAX_SIDE = 128


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return mini_imagenet.build(str(tmp_path_factory.mktemp("ilsvrc")))


def _pack_imagenet(out, layout, **extra):
    splits, classes, source, refused = packing.plan_imagenet(**layout)
    settings = packing.PackSettings(max_short_side=MAX_SIDE, quality=90, seed=0)
    return packing.pack(splits, classes, str(out), settings, source, refused=refused,
                        workers=2, progress=False, **extra)


@pytest.fixture(scope="module")
def packed(mini, tmp_path_factory):
    """Each layout packed once: {layout: (out_dir, manifest)}."""
    result = {}
    for name, layout in mini.layouts.items():
        out = tmp_path_factory.mktemp("packed-" + name)
        result[name] = (str(out), _pack_imagenet(out, layout))
    return result


def read_records(out, split):
    """{id: (label, decoded RGB image)} through MXNet's own indexed reader."""
    with open(os.path.join(out, split + ".lst")) as f:
        ids = {int(k): ident for k, _, ident in (line.rstrip("\n").split("\t") for line in f)}
    reader = mx.recordio.MXIndexedRecordIO(os.path.join(out, split + ".idx"),
                                           os.path.join(out, split + ".rec"), "r")
    records = {}
    for key in reader.keys:
        header, payload = mx.recordio.unpack(reader.read_idx(key))
        assert header.id == key
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        records[ids[key]] = (int(header.label), image)
    reader.close()
    return records


def _basename(ident):
    return ident.rsplit("/", 1)[-1]


def test_labels_are_sorted_wnid_indices_from_the_ground_truth(mini, packed):
    out, manifest = packed["tars"]
    sorted_wnids = sorted(mini_imagenet.WNIDS)
    train = read_records(out, "train")
    assert {_basename(i): lab for i, (lab, _) in train.items()} == \
        {name: sorted_wnids.index(w) for name, w in mini.train.items()}
    val = read_records(out, "val")
    assert {i: lab for i, (lab, _) in val.items()} == \
        {name: sorted_wnids.index(w) for name, w in mini.val.items()}
    with open(os.path.join(out, "synsets.txt")) as f:
        assert f.read().splitlines() == ["%s %s" % (w, mini_imagenet.WORDS[w])
                                         for w in sorted_wnids]
    # the class without training images keeps its label and is counted as empty
    assert manifest["splits"]["train"]["per_class"][4] == 0
    assert manifest["classes"] == 5


def test_exactly_the_bad_files_are_skipped(mini, packed):
    for _, manifest in packed.values():
        skipped = {_basename(s["id"]): s["reason"]
                   for s in manifest["splits"]["train"]["skipped"]}
        assert set(skipped) == set(mini.bad)
        assert "truncated" in skipped["n01440764_9003.JPEG"]
        assert skipped["n01440764_9004.JPEG"] == "zero-byte file"
        assert manifest["splits"]["train"]["records"] == len(mini.train)
        assert manifest["splits"]["val"]["skipped"] == []


def test_cmyk_and_png_are_stored_as_rgb_jpeg(packed, mini):
    out, _ = packed["tars"]
    train = {_basename(i): v for i, v in read_records(out, "train").items()}
    reader = mx.recordio.MXIndexedRecordIO(os.path.join(out, "train.idx"),
                                           os.path.join(out, "train.rec"), "r")
    for key in reader.keys:
        _, payload = mx.recordio.unpack(reader.read_idx(key))
        assert payload[:3] == b"\xff\xd8\xff"  # every payload is a JPEG
    reader.close()
    photo = mini_imagenet._photos()[0]
    for name in ("n01440764_9001.JPEG", "n01440764_9002.JPEG"):
        label, image = train[name]
        assert label == 0 and image.ndim == 3 and image.shape[2] == 3
    # the CMYK file decodes to the colours of the photo, not inverted ones
    cmyk = train["n01440764_9001.JPEG"][1].astype(float)
    assert abs(cmyk.mean() - photo.mean()) < 40


def test_sizes_follow_the_resize_rule(mini, packed):
    out, _ = packed["tars"]
    for split in ("train", "val"):
        for ident, (_, image) in read_records(out, split).items():
            h, w = mini.sizes[_basename(ident)]
            short = min(h, w)
            assert min(image.shape[:2]) == min(short, MAX_SIDE)
            if short <= MAX_SIDE:
                assert image.shape[:2] == (h, w)
            else:  # aspect ratio kept to the pixel
                assert abs(max(image.shape[:2]) - max(h, w) * MAX_SIDE / short) <= 1
            assert target_size(w, h, MAX_SIDE)[::-1] == image.shape[:2]


def test_three_layouts_give_the_same_labels_and_pixels(packed):
    reference = None
    for name in ("tars", "extracted", "kaggle"):
        out, manifest = packed[name]
        found = {split: {_basename(i): (lab, img.sum()) for i, (lab, img) in
                         read_records(out, split).items()} for split in ("train", "val")}
        if reference is None:
            reference = found
        assert found == reference, name
        assert manifest["source"]["layout"] == name


def test_manifest_mean_rgb_equals_decoded_records(packed):
    out, manifest = packed["extracted"]
    pixels = np.concatenate([img.reshape(-1, 3).astype(np.float64)
                             for _, img in read_records(out, "train").values()])
    np.testing.assert_allclose(manifest["mean_rgb"], pixels.mean(axis=0), atol=0.5)


def test_records_read_by_mxnet_image_readers(packed, mini):
    out, manifest = packed["tars"]
    dataset = mx.gluon.data.vision.ImageRecordDataset(os.path.join(out, "train.rec"))
    assert len(dataset) == manifest["splits"]["train"]["records"]
    image, label = dataset[0]
    assert image.shape[2] == 3 and 0 <= label < 5
    it = mx.io.ImageRecordIter(path_imgrec=os.path.join(out, "val.rec"),
                               path_imgidx=os.path.join(out, "val.idx"),
                               data_shape=(3, 64, 64), batch_size=2, resize=64,
                               preprocess_threads=1)
    labels = []
    for batch in it:
        labels += batch.label[0].asnumpy()[:2 - batch.pad].astype(int).tolist()
    sorted_wnids = sorted(mini_imagenet.WNIDS)
    assert labels == [sorted_wnids.index(mini.val[n]) for n in sorted(mini.val)]


def test_training_records_are_shuffled_deterministically(mini, tmp_path):
    first = _pack_imagenet(tmp_path / "a", mini.layouts["tars"])
    _pack_imagenet(tmp_path / "b", mini.layouts["tars"])
    a = (tmp_path / "a" / "train.rec").read_bytes()
    assert a == (tmp_path / "b" / "train.rec").read_bytes()
    order = [line.split("\t")[2] for line in (tmp_path / "a" / "train.lst").read_text().split(
        "\n") if line]
    assert order != sorted(order)
    assert first["settings"]["seed"] == 0
    leftovers = [n for n in os.listdir(tmp_path / "a") if "partial" in n or "state" in n
                 or "plan" in n or ".tmp" in n or "done" in n]
    assert leftovers == []


def test_unsafe_tar_members_are_refused(mini, tmp_path):
    val_tar = tmp_path / "val.tar"
    with tarfile.open(mini.layouts["tars"]["val_tar"]) as src, tarfile.open(val_tar, "w") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member))
        for evil in ("../ILSVRC2012_val_00000001.JPEG", "/etc/ILSVRC2012_val_00000002.JPEG"):
            info = tarfile.TarInfo(evil)
            info.size = 3
            dst.addfile(info, io.BytesIO(b"abc"))
    layout = dict(val_tar=str(val_tar), devkit=mini.layouts["tars"]["devkit"])
    before = set(os.listdir(tmp_path))
    manifest = _pack_imagenet(tmp_path / "out", layout)
    reasons = {r["reason"] for r in manifest["refused"]}
    assert reasons == {"'..' in tar member path", "absolute path in tar member"}
    assert manifest["splits"]["val"]["records"] == len(mini.val)
    assert set(os.listdir(tmp_path)) == before | {"out"}


def test_bad_imagenet_inputs_are_clear_errors(mini, tmp_path):
    gz = tmp_path / "train.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(mini.layouts["tars"]["val_tar"], arcname="x.tar")
    with pytest.raises(VggError, match="not a plain .uncompressed. tar"):
        packing.plan_imagenet(train_tar=str(gz), devkit=mini.layouts["tars"]["devkit"])
    with pytest.raises(VggError, match="class list is needed"):
        packing.plan_imagenet(root=mini.layouts["extracted"]["root"])
    with pytest.raises(VggError, match="flat val images need --devkit"):
        packing.plan_imagenet(root=mini.layouts["extracted"]["root"],
                              synsets=_write_synsets(tmp_path))
    stray = os.path.join(mini.layouts["extracted"]["root"], "train", "n99999999")
    os.makedirs(stray)
    try:
        with pytest.raises(VggError, match="class 'n99999999' is not in the class list"):
            packing.plan_imagenet(**mini.layouts["extracted"])
    finally:
        os.rmdir(stray)


def _write_synsets(tmp_path):
    path = tmp_path / "wnids.txt"
    path.write_text("\n".join(mini_imagenet.WNIDS) + "\n")
    return str(path)


def test_cli_exit_codes(mini, tmp_path):
    runner = CliRunner()
    layout = mini.layouts["tars"]
    result = runner.invoke(cli, ["pack-imagenet", "--train-tar", layout["train_tar"],
                                 "--devkit", layout["devkit"], "--out", str(tmp_path / "o"),
                                 "--max-short-side", "128", "--quiet", "--workers", "1"])
    assert result.exit_code == packing.EXIT_SKIPPED, result.output
    assert "train: %d records, 2 skipped" % len(mini.train) in result.output
    result = runner.invoke(cli, ["pack-imagenet", "--val-tar", layout["val_tar"],
                                 "--devkit", layout["devkit"], "--out", str(tmp_path / "v"),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["pack-imagenet", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: give --train-tar/--val-tar (with --devkit), or --root"
    result = runner.invoke(cli, ["pack-imagenet", "--root", mini.layouts["kaggle"]["root"],
                                 "--out", str(tmp_path / "k"), "--quality", "0"])
    assert result.exit_code == 2 and "--quality" in result.output


# --- generic folders -------------------------------------------------------------

@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    """Three classes of real photo crops (30 each) and an empty class folder."""
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.RandomState(1)
    photos = mini_imagenet._photos()
    for c, name in enumerate(["apple", "banana", "cherry"]):
        os.makedirs(root / name)
        for i in range(30):
            size = (rng.randint(60, 200), rng.randint(60, 200))
            (root / name / ("%03d.jpg" % i)).write_bytes(
                mini_imagenet._jpeg(mini_imagenet._crop(photos[c], size, rng)))
    os.makedirs(root / "banana_empty")
    return str(root)


def test_folder_pack_split_and_empty_class(folder_dataset, tmp_path):
    splits, classes, source = packing.plan_folder(folder_dataset, val_ratio=0.2, seed=3)
    assert classes.names == ["apple", "banana", "banana_empty", "cherry"]
    manifest = packing.pack(splits, classes, str(tmp_path), packing.PackSettings(), source,
                            workers=2, progress=False)
    assert manifest["splits"]["train"]["per_class"] == [24, 24, 0, 24]
    assert manifest["splits"]["val"]["per_class"] == [6, 6, 0, 6]
    val = read_records(str(tmp_path), "val")
    assert all(lab == classes.index[i.split("/")[0]] for i, (lab, _) in val.items())
    train_ids = set(read_records(str(tmp_path), "train"))
    assert not train_ids & set(val) and len(train_ids | set(val)) == 90


def _kill_when_checkpointed(args, state_path, timeout=60):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(state_path) as f:
                if json.load(f)["position"] > 0:
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "pack finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_pack_leaves_nothing_complete_and_resumes(folder_dataset, tmp_path):
    reference = tmp_path / "reference"
    base = [sys.executable, "-m", "vggcli", "--threads", "1", "pack", folder_dataset,
            "--val-ratio", "0.1", "--workers", "1", "--checkpoint-every", "5", "--quiet",
            "--max-short-side", "150"]
    subprocess.run(base + ["--out", str(reference)], check=True, capture_output=True)
    out = tmp_path / "killed"
    _kill_when_checkpointed(base + ["--out", str(out)], str(out / "train.state.json"))
    names = set(os.listdir(out))
    assert "manifest.json" not in names and "train.rec" not in names and "val.rec" not in names
    assert "train.rec.partial" in names
    done = subprocess.run(base + ["--out", str(out), "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("train.rec", "train.idx", "train.lst", "val.rec", "val.idx", "val.lst"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["records"] == 81
    assert manifest["splits"]["val"]["records"] == 9
    # after a kill, a rerun without --resume needs --overwrite and then starts over cleanly
    again = tmp_path / "again"
    _kill_when_checkpointed(base + ["--out", str(again)], str(again / "train.state.json"))
    plain = subprocess.run(base + ["--out", str(again)], capture_output=True, text=True)
    assert plain.returncode == 2, plain.stderr
    assert "continue it with --resume" in plain.stderr and "--overwrite" in plain.stderr
    subprocess.run(base + ["--out", str(again), "--overwrite"], check=True, capture_output=True)
    assert (again / "train.rec").read_bytes() == (reference / "train.rec").read_bytes()


# --- inspect -----------------------------------------------------------------------

def test_inspect_reports_and_detects_a_bad_index(packed, tmp_path):
    out, manifest = packed["tars"]
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", os.path.join(out, "train.rec"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["records"] == manifest["splits"]["train"]["records"]
    assert sum(report["labels"].values()) == report["records"]
    assert report["problems"] == []
    for name in ("train.rec", "train.idx"):
        (tmp_path / name).write_bytes(open(os.path.join(out, name), "rb").read())
    lines = (tmp_path / "train.idx").read_text().splitlines()
    key, offset = lines[3].split("\t")
    lines[3] = "%s\t%d" % (key, int(offset) + 4)
    (tmp_path / "train.idx").write_text("\n".join(lines) + "\n")
    result = runner.invoke(cli, ["inspect", str(tmp_path / "train.rec")])
    assert result.exit_code == 1
    assert "disagrees with" in result.output and "from entry 3" in result.output
