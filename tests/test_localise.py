"""vgg localise and the fusion of its outputs (Appendix A.2): the central-crop and dense
protocols, devkit submissions with the devkit's labels, and their errors. The boxes'
packing is tested in test_boxes, the training target in test_tasks and
test_augment, merging in test_merge, the geometry in test_geometry."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from vggcli.cli import cli

from . import mini_imagenet


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
