"""Appendix A end to end: boxes packed from ILSVRC-format XML archives and CSVs (read
back by GluonCV), the box following rescale, crop and flip in training, SCR/PCR's
loss on the ground-truth class's box, the mapping of the net's boxes back to the
image, OverFeat's greedy merging, and the commands' errors."""
import io
import json
import os
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from data_tools.boxes import parse_label
from vggcli.cli import cli

from . import mini_imagenet
from .test_pack import MAX_SIDE

# --- ILSVRC's bbox archives for the miniature ILSVRC -----------------------------------


def _voc(name, size, objects):
    """One VOC XML file as ILSVRC2012_bbox_*.tar.gz hold them (1-based inclusive)."""
    parts = ["<annotation><folder>x</folder><filename>%s</filename><size><width>%d</width>"
             "<height>%d</height><depth>3</depth></size><segmented>0</segmented>"
             % (name, size[1], size[0])]
    for wnid, (x0, y0, x1, y1), flags in objects:
        parts.append("<object><name>%s</name><pose>Unspecified</pose><truncated>%d"
                     "</truncated><difficult>%d</difficult><bndbox><xmin>%d</xmin><ymin>%d"
                     "</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>"
                     % ((wnid,) + flags + (x0, y0, x1, y1)))
    return ("".join(parts) + "</annotation>").encode()


def _tgz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def boxed(tmp_path_factory):
    """The miniature ILSVRC with bbox archives, packed with boxes (images shrunk to a
    128 px shorter side): (truth, out dir, manifest, expected boxes per image id in
    source pixels, 0-based)."""
    root = str(tmp_path_factory.mktemp("ilsvrc-boxes"))
    truth = mini_imagenet.build(root)
    train_files, expected = {}, {}
    wnid = mini_imagenet.WNIDS[0]
    other = mini_imagenet.WNIDS[1]
    a, b, c, d = ("%s_10%d" % (wnid, i) for i in range(4))
    h, w = truth.sizes[a + ".JPEG"]
    # two objects of the class, one truncated and difficult; an unknown WNID left out
    train_files["%s/%s.xml" % (wnid, a)] = _voc(a, (h, w), [
        (wnid, (11, 21, 200, 150), (0, 0)), (wnid, (1, 1, 40, 60), (1, 1)),
        ("n99999999", (5, 5, 9, 9), (0, 0))])
    expected[a] = [(0, (10, 20, 199, 149)), (0, (0, 0, 39, 59))]
    h, w = truth.sizes[b + ".JPEG"]
    # one box past the image's right and bottom edges (clipped), one empty (dropped)
    train_files["%s/%s.xml" % (wnid, b)] = _voc(b, (h, w), [
        (wnid, (30, 40, w + 50, h + 9), (1, 0)), (wnid, (w + 5, 2, w + 20, 9), (0, 0))])
    expected[b] = [(0, (29, 39, w - 1, h - 1))]
    train_files["%s/%s.xml" % (wnid, c)] = _voc(c, truth.sizes[c + ".JPEG"], [])  # no box
    train_files["%s/%s_777.xml" % (other, other)] = _voc("x", (10, 10), [
        (other, (1, 1, 5, 5), (0, 0))])  # no such image
    val_files = {}
    for name, label in sorted(truth.val.items()):
        stem = name[:-5]
        h, w = truth.sizes[name]
        val_files["val/%s.xml" % stem] = _voc(stem, (h, w), [(label, (w // 4, h // 4, w // 2,
                                                                     h // 2), (0, 0))])
        expected[stem] = [(mini_imagenet.WNIDS.index(label),
                           (w // 4 - 1, h // 4 - 1, w // 2 - 1, h // 2 - 1))]
    _tgz(os.path.join(root, "ILSVRC2012_bbox_train_v2.tar.gz"), train_files)
    _tgz(os.path.join(root, "ILSVRC2012_bbox_val_v3.tgz"), val_files)
    out = os.path.join(root, "packed")
    layout = truth.layouts["tars"]
    result = CliRunner().invoke(cli, [
        "pack-imagenet", "--train-tar", layout["train_tar"], "--val-tar", layout["val_tar"],
        "--devkit", layout["devkit"], "--train-boxes",
        os.path.join(root, "ILSVRC2012_bbox_train_v2.tar.gz"), "--val-boxes",
        os.path.join(root, "ILSVRC2012_bbox_val_v3.tgz"), "--out", out, "--quiet",
        "--max-short-side", str(MAX_SIDE), "--workers", "2"])
    assert result.exit_code == 3, result.output  # the mini ILSVRC's two broken files
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    return truth, out, manifest, expected


def _records_by_id(out, split):
    from vggcli.training.data import RecordImages
    from vggcli.testing.inference import record_ids
    rec = os.path.join(out, split + ".rec")
    images = RecordImages(rec)
    ids = record_ids(rec, len(images))
    return {ids[i].rsplit("/", 1)[-1][:-5]: images.record(i) for i in range(len(images))}


def test_ilsvrc_boxes_are_packed_clipped_dropped_and_counted(boxed):
    truth, out, manifest, expected = boxed
    train = manifest["splits"]["train"]["boxes"]
    assert train == dict(images=2, objects=3, clipped=1, dropped=1, images_left_without=0)
    assert manifest["splits"]["val"]["boxes"]["images"] == len(truth.val)
    found = manifest["boxes"]["train"]
    assert found["train"]["unknown_class"] == 1 and found["files_without_image"] == 1
    assert found["train"]["images_with_boxes"] == 2  # the XML without objects adds none
    for split in ("train", "val"):
        records = _records_by_id(out, split)
        with_boxes = {k for k, (_, _, extra) in records.items() if len(extra)}
        assert with_boxes == {k for k in expected if k in records}
        keys = [int(line.split()[0]) for line in open(os.path.join(out, split + ".box.idx"))]
        assert len(keys) == len(with_boxes)
        for stem, (_, label, extra) in records.items():
            if not len(extra):
                continue
            objects, header = parse_label(extra)
            source_h, source_w = truth.sizes[stem + ".JPEG"]
            assert tuple(header) == (source_w, source_h)  # the original size, for the devkit
            np.testing.assert_allclose(objects[:, 1:] * np.tile([source_w, source_h], 2),
                                       [box for _, box in expected[stem]], atol=1e-3)
            assert label == expected[stem][0][0]  # the class stays in the header's label


def test_gluoncv_reads_the_packed_boxes_on_the_shrunk_images(boxed):
    """GluonCV's RecordFileDetection gives the boxes in the stored image's pixels: the
    source box times stored size / source size (normalised corners survive the
    shrink); the class comes back in its column."""
    from vggcli.core.compat import import_gluoncv
    RecordFileDetection = import_gluoncv("gluoncv.data").RecordFileDetection
    truth, out, _, expected = boxed
    ids = [line.rstrip("\n").split("\t")[2] for line in open(os.path.join(out, "val.lst"))]
    dataset = RecordFileDetection(os.path.join(out, "val.rec"))
    assert len(dataset) == len(ids)
    for index, ident in enumerate(ids):
        image, label = dataset[index]
        stem = ident[:-5]
        source_h, source_w = truth.sizes[ident]
        scale = np.array([image.shape[1] / source_w, image.shape[0] / source_h] * 2)
        assert min(image.shape[:2]) == min(MAX_SIDE, source_h, source_w)
        (cls, box), = expected[stem]
        np.testing.assert_allclose(label[0, :4], np.array(box) * scale, atol=1e-2)
        assert label[0, 4] == cls


# --- the box through training augmentation ---------------------------------------------

def _magenta_box(crop):
    """Continuous (x0, y0, x1, y1) of the magenta pixels of a crop, or None."""
    r, g, b = (crop[..., i].astype(int) for i in range(3))
    mask = (r > 180) & (b > 180) & (g < 90)
    if mask.sum() < 4:
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


def test_the_box_follows_rescale_crop_and_flip(marked):
    """The training target, turned back into crop pixels, lands on the painted rectangle
    as found in the returned crop's own pixels. Tolerance 2.5 px: the rescale
    (area/linear interpolation) and JPEG blur an edge by about one pixel of the
    rescaled image each, and the threshold can fall on either side of the edge;
    the box is only compared where it lies inside the crop (the target is not cut
    at the crop's border, the pixels are)."""
    from vggcli.training.data import RecordImages, Scale, TrainTransform
    out, _ = marked
    images = RecordImages(os.path.join(out, "train.rec"),
                          index_path=os.path.join(out, "train.box.idx"))
    crop = 48
    transform = TrainTransform(Scale(56, 96), crop, [0, 0, 0], seed=5, pca_std=0, boxes=True)
    checked = 0
    for epoch in range(4):  # half the crops are mirrored: a box that did not follow fails
        for position in range(len(images)):
            pixels, _, target = transform(images, epoch, position)
            label, cx, cy, bw, bh, valid = target
            assert label == images.image(position)[1]
            found = _magenta_box(pixels)
            if not valid or found is None:
                continue
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]) * crop
            np.testing.assert_allclose(np.clip(box, 0, crop), found, atol=2.5)
            checked += 1
    assert checked >= 20


def test_crop_target_by_hand():
    from vggcli.training.data import crop_target
    boxes = np.array([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 4.0, 4.0]])
    target, valid = crop_target(boxes, top=10, left=5, crop=40, flipped=False)
    # the first box: x 5..45, y 10..30 in the crop
    np.testing.assert_allclose(target * 40, [25, 20, 40, 20])
    assert valid == 1.0
    target, _ = crop_target(boxes, top=10, left=5, crop=40, flipped=True)
    np.testing.assert_allclose(target * 40, [15, 20, 40, 20])  # x -> 40 - x
    _, valid = crop_target(boxes[1:], top=10, left=5, crop=40, flipped=False)
    assert valid == 0.0  # nothing of the box in the crop: no loss


# --- SCR / PCR: the loss and the error --------------------------------------------------

def test_pcr_loss_and_gradient_use_only_the_ground_truth_class_box():
    import mxnet as mx
    from mxnet import autograd

    from vggcli.training.tasks import Localisation
    task = Localisation("pcr", classes=3)
    target = [0.5, 0.4, 0.2, 0.3]
    out = mx.nd.array([[9, 9, 9, 9] + target + [7, 7, 7, 7],
                       [9, 9, 9, 9] + target + [7, 7, 7, 7]])
    label = mx.nd.array([[1] + target + [1], [2] + target + [1]])
    out.attach_grad()
    with autograd.record():
        loss = task.loss_fn(out, label)
    loss.backward()
    # class 1's box is exact: no loss; class 2's box misses by 6.5, 6.6, 6.8, 6.7
    expected = sum((7 - t) ** 2 for t in target)
    np.testing.assert_allclose(loss.asnumpy(), [0, expected], rtol=1e-5)
    grad = out.grad.asnumpy()
    assert not grad[:, :4].any() and not grad[0].any()  # other classes' boxes: no gradient
    np.testing.assert_allclose(grad[1, 8:], [2 * (7 - t) for t in target], rtol=1e-5)
    _, hits, _ = task.counts(out, label)
    assert hits.asscalar() == 1
    scr = Localisation("scr", classes=3)
    no_box = mx.nd.array([[0] + target + [0]])
    assert scr.loss_fn(mx.nd.array([[0, 0, 1, 1]]), no_box).asscalar() == 0  # not valid


def test_center_iou_by_hand():
    from vggcli.training.tasks import center_iou
    a = np.array([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4]])
    b = np.array([[0.5, 0.5, 0.4, 0.4], [0.6, 0.5, 0.4, 0.4]])
    np.testing.assert_allclose(center_iou(a, b), [1.0, 0.12 / 0.2])


# --- testing: mapping back, merging -----------------------------------------------------

def test_a_net_box_maps_back_to_source_pixels():
    from vggcli.localisation.localise import to_source_boxes
    # a window at (8, 4) of a 32 px crop, on an image rescaled by 1/2 (ratio 2)
    box = to_source_boxes([0.5, 0.5, 0.5, 0.25], (8, 4), 32, (2.0, 2.0))[0]
    # rescaled: x 16..32, y 16..24 (continuous) -> source 32..64, 32..48 -> last pixels 63, 47
    np.testing.assert_allclose(box, [32, 32, 63, 47])


def test_greedy_merging_joins_near_boxes_and_keeps_far_ones():
    from vggcli.localisation.localise import best_box, greedy_merge
    near = [(10, 10, 50, 50), (12, 10, 52, 50), (10, 12, 50, 52)]
    far = [(100, 100, 110, 110)]
    boxes, scores = greedy_merge(near + far, [0.2, 0.3, 0.1, 0.5])
    assert len(boxes) == 2
    merged = [b for b, s in zip(boxes, scores) if s > 0.55]
    assert len(merged) == 1 and scores[[float(s) for s in scores].index(
        max(scores))] == pytest.approx(0.6)
    # the pairwise means: (b1 + b2) / 2 first, then with b3: x0 = (11 + 10) / 2
    np.testing.assert_allclose(merged[0], [10.5, 11, 50.5, 51])
    assert tuple(best_box(near + far, [0.2, 0.3, 0.1, 0.5])) == pytest.approx(
        (10.5, 11, 50.5, 51))  # three weak boxes that agree beat one stronger alone
    assert len(greedy_merge(near + far, [1, 1, 1, 1], threshold=0.0)[0]) == 4


# --- the commands -----------------------------------------------------------------------

def test_fc_only_fine_tuning_leaves_the_conv_layers_as_they_were(trained):
    from vggcli.nets.models import read_params
    start, _ = read_params(str(trained / "cls" / "best.params"))
    scr, meta = read_params(str(trained / "scr" / "final.params"))
    assert meta["task"] == "scr" and scr["fc8.weight"].shape[0] == 4
    for key, value in start.items():
        same = np.array_equal(value.asnumpy(), scr[key].asnumpy())
        assert same == key.startswith("features."), key
    pcr, meta = read_params(str(trained / "pcr" / "final.params"))
    assert pcr["fc8.weight"].shape[0] == 4 * 2 and meta["task_classes"] == 2


def test_localise_center_dense_and_fusion_write_devkit_submissions(trained, marked, tmp_path):
    out, _ = marked
    val = os.path.join(out, "val.rec")
    runner = CliRunner()
    result = runner.invoke(cli, ["localise", "--params", str(trained / "pcr" / "best.params"),
                                 "--data", val, "--out", str(tmp_path / "c"), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.load(open(tmp_path / "c" / "report.json"))
    count = report["images"]
    assert count == sum(1 for _ in open(os.path.join(out, "val.box.idx")))
    lines = open(tmp_path / "c" / "submission.txt").read().splitlines()
    assert len(lines) == count and all(len(line.split()) == 5 for line in lines)
    # the report is scored on exactly the boxes submission.txt holds (the devkit's
    # 1-based whole pixels read back), against the records' ground truth
    from vggcli.localisation.scoring import localisation_errors
    from vggcli.localisation.localise import BoxRecords, _truths
    truths, _ = _truths(BoxRecords(val))
    submitted = [[(int(f[0]) - 1, tuple(float(v) - 1 for v in f[1:5]))]
                 for f in (line.split() for line in lines)]
    assert {str(k): v for k, v in localisation_errors(submitted, truths).items()} == \
        report["errors"]
    for mode_dir, params in (("d1", "pcr"), ("d2", "scr")):
        result = runner.invoke(cli, [
            "localise", "--params", str(trained / params / "best.params"), "--classifier",
            str(trained / "cls" / "best.params"), "--data", val, "--mode", "dense",
            "--scales", "40,48", "--shifts", "2", "--out", str(tmp_path / mode_dir),
            "--quiet"])
        assert result.exit_code == 0, result.output
        lines = open(tmp_path / mode_dir / "submission.txt").read().splitlines()
        # two classes: two guesses, labels 1-based, boxes inside the images
        assert all(len(line.split()) == 10 for line in lines)
    result = runner.invoke(cli, ["fuse", str(tmp_path / "d1"), str(tmp_path / "d2"), "--out",
                                 str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    fused = json.load(open(tmp_path / "f" / "report.json"))
    assert fused["mode"] == "fusion" and fused["images"] == count
    assert 0 <= fused["errors"]["1"] <= 1 and fused["errors"]["2"] <= fused["errors"]["1"]
    # a damaged member is named, and nothing is written
    import shutil
    shutil.copytree(str(tmp_path / "d2"), str(tmp_path / "d3"))
    (tmp_path / "d3" / "candidates.npy").write_bytes(b"\x93NUMPY garbage")
    os.remove(str(tmp_path / "d2" / "ids.txt"))
    for broken, message in (("d3", "candidates.npy is damaged"), ("d2", "ids.txt")):
        result = runner.invoke(cli, ["fuse", str(tmp_path / "d1"), str(tmp_path / broken),
                                     "--out", str(tmp_path / "g")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "g").exists()


def test_localisation_errors_are_one_line_usage_errors(trained, marked, tmp_path, digits):
    out, _ = marked
    runner = CliRunner()
    cases = [
        (["localise", "--params", str(trained / "cls" / "best.params"), "--data",
          os.path.join(out, "val.rec"), "--out", str(tmp_path / "a")],
         "is not a localisation net"),
        (["localise", "--params", str(trained / "pcr" / "best.params"), "--data",
          os.path.join(out, "val.rec"), "--mode", "dense", "--out", str(tmp_path / "b")],
         "needs --classifier"),
        (["localise", "--params", str(trained / "pcr" / "best.params"), "--data",
          os.path.join(digits, "val.rec"), "--out", str(tmp_path / "c")],
         "val.box.idx not found"),
        (["eval", "--params", str(trained / "pcr" / "best.params"), "--data",
          os.path.join(out, "val.rec"), "--out", str(tmp_path / "d")],
         "is a localisation net"),
        (["train", "--data", digits, "--task", "scr", "--out", str(tmp_path / "e"),
          "--crop-size", "32", "--scale", "36", "--width-mult", "0.125"],
         "train.box.idx not found"),
        (["fuse", str(trained / "cls"), str(tmp_path), "--out", str(tmp_path / "f")], ""),
    ]
    for argv, message in cases:
        result = runner.invoke(cli, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_kaggle_solution_files_give_the_same_boxes_as_the_xml(tmp_path):
    """Kaggle's LOC_val_solution.csv repeats the XML's 1-based corners per object."""
    from data_tools.boxes import read_box_files
    root = tmp_path / "mini"
    mini_imagenet.build(str(root))
    found = read_box_files(str(root / "kaggle" / "LOC_val_solution.csv"))
    assert len(found) == 6
    for objects in found.values():
        assert [box for _, box in objects] == [(0, 1, 29, 39), (4, 5, 69, 79)]
        assert objects[0][0] == objects[1][0] and objects[0][0] in mini_imagenet.WNIDS


def test_damaged_box_files_are_named(tmp_path):
    from data_tools.boxes import read_box_files
    from data_tools.common import VggError
    (tmp_path / "bad.csv").write_text("image,class,xmin,ymin,xmax,ymax\na.jpg,cat,1,2\n")
    with pytest.raises(VggError, match="bad.csv, line 2"):
        read_box_files(str(tmp_path / "bad.csv"))
    (tmp_path / "b.tgz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(VggError, match="b.tgz is damaged or not a tar"):
        read_box_files(str(tmp_path / "b.tgz"))
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "ILSVRC2012_val_00000001.xml").write_bytes(b"<annotation><size>")
    with pytest.raises(VggError, match="ILSVRC2012_val_00000001.xml is not valid XML"):
        read_box_files(str(xml))
    (tmp_path / "latin.csv").write_bytes(b"image,class,xmin,ymin,xmax,ymax\n\xe9.jpg,c,1,2,3,4\n")
    with pytest.raises(VggError, match="latin.csv is not UTF-8 text"):
        read_box_files(str(tmp_path / "latin.csv"))
    (tmp_path / "k.csv").write_text("ImageId,PredictionString\nx,n01 1 2 3\n")
    with pytest.raises(VggError, match="k.csv, line 2: expected ImageId"):
        read_box_files(str(tmp_path / "k.csv"))
    os.mkfifo(str(tmp_path / "fifo.csv"))
    with pytest.raises(VggError, match="not a regular file"):
        read_box_files(str(tmp_path / "fifo.csv"))


@pytest.fixture(scope="module")
def ilsvrc_nets(boxed, tmp_path_factory):
    """A classification net and a PCR net (1 epoch each) on the miniature ILSVRC."""
    _, out, _, _ = boxed
    root = tmp_path_factory.mktemp("ilsvrc-runs")
    common = ["--data", out, "--net", "A", "--crop-size", "32", "--width-mult", "0.125",
              "--fc-width", "32", "--batch-size", "2", "--workers", "0", "--scale", "40",
              "--epochs", "1", "--quiet", "--init", "xavier", "--dropout", "0",
              "--dtype", "float32"]
    runner = CliRunner()
    result = runner.invoke(cli, ["train"] + common + ["--out", str(root / "cls")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train"] + common + [
        "--out", str(root / "pcr"), "--task", "pcr", "--finetune-from",
        str(root / "cls" / "best.params")])
    assert result.exit_code == 0, result.output
    return root


def _lines(folder):
    return [line.split() for line in open(os.path.join(folder, "submission.txt"))]


def test_devkit_labels_reach_every_submission_without_devkit(boxed, ilsvrc_nets, tmp_path):
    """pack-imagenet --devkit records each class's ILSVRC2012_ID (not sorted-WNID
    order); localise, eval and both fusions then submit those labels with no --devkit."""
    from vggcli.localisation.localise import BoxRecords, _truths
    _, out, manifest, _ = boxed
    ids = [mini_imagenet.ILSVRC_IDS[wnid] for wnid in mini_imagenet.WNIDS]
    assert manifest["label_ids"] == ids
    val = os.path.join(out, "val.rec")
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, list(args) + ["--quiet"] if args[0] != "fuse" else args)
        assert result.exit_code == 0, result.output

    # Task 2, central crop with the ground-truth class: that class's ILSVRC2012_ID
    run("localise", "--params", str(ilsvrc_nets / "pcr" / "best.params"), "--data", val,
        "--scales", "40", "--out", str(tmp_path / "c"))
    truths, _ = _truths(BoxRecords(val))
    assert [int(f[0]) for f in _lines(tmp_path / "c")] == [ids[t[0][0]] for t in truths]
    for name, scale in (("d1", "40"), ("d2", "48")):
        run("localise", "--params", str(ilsvrc_nets / "pcr" / "best.params"), "--classifier",
            str(ilsvrc_nets / "cls" / "best.params"), "--data", val, "--mode", "dense",
            "--scales", scale, "--out", str(tmp_path / name))
    run("fuse", str(tmp_path / "d1"), str(tmp_path / "d2"), "--out", str(tmp_path / "lf"))
    assert json.load(open(tmp_path / "lf" / "report.json"))["label_ids"] == ids
    for folder in ("d1", "lf"):
        assert {int(v) for f in _lines(tmp_path / folder) for v in f[::5]} <= set(ids)
    # Task 1 from eval and from fusion: the best class's ILSVRC2012_ID first
    for name, scale in (("e1", "40"), ("e2", "48")):
        run("eval", "--params", str(ilsvrc_nets / "cls" / "best.params"), "--data", val,
            "--scales", scale, "--out", str(tmp_path / name))
    run("fuse", str(tmp_path / "e1"), str(tmp_path / "e2"), "--out", str(tmp_path / "ef"))
    for folder in ("e1", "ef"):
        scores = np.load(str(tmp_path / folder / "scores.npy"))
        lines = _lines(tmp_path / folder)
        assert [int(f[0]) for f in lines] == [ids[c] for c in scores.argmax(axis=1)]
        assert all(len(f) == 5 and len(set(f)) == 5 for f in lines)
    # a member labelled another way is refused: its labels would be submitted for ours
    report = json.load(open(tmp_path / "d2" / "report.json"))
    report["label_ids"] = None
    json.dump(report, open(tmp_path / "d2" / "report.json", "w"))
    result = runner.invoke(cli, ["fuse", str(tmp_path / "d1"), str(tmp_path / "d2"), "--out",
                                 str(tmp_path / "lg")])
    assert result.exit_code == 2 and "label their classes differently" in result.output
    assert not (tmp_path / "lg").exists()
