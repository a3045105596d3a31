"""vgg eval / vgg fuse: the paper's dense, multi-crop and multi-scale testing."""
import json
import os

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import mxnet as mx

from vggcli.testing import evaluate as ev
from vggcli.nets import models
from vggcli.cli import cli
from vggcli.core.errors import VggError

from .numerics import FLOAT32_U, assert_float32_close, gamma, posterior_bound


def test_topk_errors_against_ranks():
    rng = np.random.RandomState(0)
    scores = rng.rand(500, 20)
    labels = rng.randint(0, 20, 500)
    # independent: the rank of the true class (number of classes scoring higher)
    ranks = (scores > scores[np.arange(500), labels][:, None]).sum(axis=1)
    errors = ev.topk_errors(scores, labels)
    assert errors[1] == pytest.approx(np.mean(ranks >= 1))
    assert errors[5] == pytest.approx(np.mean(ranks >= 5))
    chunked = ev.errors_of_mean([scores[:, :], scores * 2], labels, chunk=37)
    assert chunked[1] == pytest.approx(errors[1]) and chunked[5] == pytest.approx(errors[5])


def test_grid_crop_positions_and_order():
    image = np.arange(9 * 13 * 1).reshape(9, 13, 1)
    assert ev.grid_positions(13, 5) == [0, 2, 4, 6, 8]
    assert ev.grid_positions(9, 5) == [0, 1, 2, 3, 4]
    crops = ev.grid_crops(image, 5)
    assert crops.shape == (50, 5, 5, 1)
    np.testing.assert_array_equal(crops[0], image[0:5, 0:5])       # top-left
    np.testing.assert_array_equal(crops[4], image[0:5, 8:13])      # top-right
    np.testing.assert_array_equal(crops[12], image[2:7, 4:9])      # centre
    np.testing.assert_array_equal(crops[20], image[4:9, 0:5])      # bottom-left
    np.testing.assert_array_equal(crops[24], image[4:9, 8:13])     # bottom-right
    for i in range(25):
        np.testing.assert_array_equal(crops[25 + i], crops[i][:, ::-1])
    assert ev.grid_crops(image, 5, flip=False).shape[0] == 25
    with pytest.raises(VggError, match="smaller than the 10 crop"):
        ev.grid_crops(image, 10)


@pytest.fixture(scope="module")
def small_net():
    return models.initialize(models.get_model("D", classes=12, width_mult=0.125, fc_width=48),
                             seed=2)


@pytest.mark.numerics
def test_dense_at_crop_size_equals_fc_form(small_net, photos):
    """Posteriors within numerics.posterior_bound (summation order of fc6)."""
    image = cv2.resize(photos["coffee"], (224, 224), interpolation=cv2.INTER_AREA)
    mean = [120.0, 110.0, 100.0]
    evaluator = ev.Evaluator(small_net, mean, [mx.cpu()], flip=False)
    dense = evaluator.dense_posteriors([image])[0]
    x = mx.nd.array((image.astype(np.float32) - np.array(mean, np.float32))
                    .transpose(2, 0, 1)[None])
    logits = small_net(x).asnumpy()
    fc = ev.softmax(logits)[0]
    assert_float32_close(dense, fc, posterior_bound(small_net, logits, fc))


@pytest.mark.numerics
def test_flip_averaging_is_neutral_on_a_symmetric_image(small_net, photos):
    """A mirror-symmetric image equals its flip bit for bit, so flip averaging changes
    only rounding (the flipped copy runs in a batch of two): numerics.posterior_bound
    on the logits, with the mean of two posteriors adding one rounding."""
    half = cv2.resize(photos["astronaut"], (128, 256))
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)  # 256 x 256, mirror-symmetric
    with_flip = ev.Evaluator(small_net, [100] * 3, [mx.cpu()], flip=True)
    without = ev.Evaluator(small_net, [100] * 3, [mx.cpu()], flip=False)
    logits = models.dense_form(small_net)(mx.nd.array(
        (symmetric.astype(np.float32) - 100).transpose(2, 0, 1)[None])).asnumpy()
    logits = logits.reshape(logits.shape[0], logits.shape[1], -1).transpose(0, 2, 1)
    for kind in ("dense_posteriors", "multicrop_posteriors"):
        expected = getattr(without, kind)([symmetric])
        bound = posterior_bound(small_net, logits, expected) + 2 * FLOAT32_U * expected
        assert_float32_close(getattr(with_flip, kind)([symmetric]), expected, bound, kind)
    # and a photo that is not symmetric does change
    photo = cv2.resize(photos["rocket"], (256, 256))
    assert not np.allclose(with_flip.dense_posteriors([photo]),
                           without.dense_posteriors([photo]), rtol=1e-4)


@pytest.fixture(scope="module")
def evaluated(trained_a, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    params = os.path.join(trained_a[0], "best.params")
    result = CliRunner().invoke(cli, ["eval", "--params", params, "--data",
                                      os.path.join(digits, "val.rec"), "--scales", "36,40",
                                      "--mode", "both", "--out", str(out / "a"), "--quiet"])
    assert result.exit_code == 0, result.output
    return str(out / "a"), result.output


@pytest.mark.numerics
def test_trained_net_every_mode_far_below_chance(evaluated, digits):
    """Every mode below chance, the training scale well below it (seed spread below);
    sums and means of posteriors within their float32 bounds (tests/numerics.py)."""
    folder, output = evaluated
    with open(os.path.join(folder, "report.json")) as f:
        report = json.load(f)
    assert {(r["mode"], tuple(r["scales"])) for r in report["rows"]} == {
        ("dense", (36,)), ("dense", (40,)), ("dense", (36, 40)), ("multicrop", (36,)),
        ("multicrop", (40,)), ("multicrop", (36, 40)), ("both", (36, 40))}
    # Chance is 0.9 with a binomial standard error of sqrt(0.9 * 0.1 / 359) = 0.016 on
    # the 359 val images: at the training scale Q = S = 36 every mode is over 5 of them
    # below chance (not chance); off it (Q = 40, where a net trained at one scale is
    # weakest) only below chance.
    for row in report["rows"]:
        assert row["top1_error"] < 0.9, row
        if row["scales"] == [36]:
            assert row["top1_error"] < 0.9 - 5 * (0.9 * 0.1 / 359) ** 0.5, row
    scores = np.load(os.path.join(folder, "scores.npy"), mmap_mode="r")
    labels = np.load(os.path.join(folder, "labels.npy"))
    # soft-max in float32: C exponentials (a few ulp each), a sum of C terms and a
    # division, then the mean of P parts: within gamma(4 C + P + 2) of 1
    parts_count, classes = 4, scores.shape[1]
    np.testing.assert_allclose(scores.sum(axis=1), 1,
                               rtol=gamma(4 * classes + parts_count + 2))
    assert report["top1_error"] == pytest.approx(np.mean(scores.argmax(axis=1) != labels))
    # the final scores are the mean of the per-mode, per-scale posteriors
    parts = [np.load(os.path.join(folder, "scores-%s-Q%d.npy" % (m, q)))
             for m in ("dense", "multicrop") for q in (36, 40)]
    # a mean of 4 float32 arrays: reordered, within gamma(4) of the values' sum / 4
    assert_float32_close(scores, np.mean(parts, axis=0),
                         2 * gamma(len(parts)) * np.mean(np.abs(parts), axis=0))
    with open(os.path.join(folder, "ids.txt")) as f:
        ids = f.read().splitlines()
    with open(os.path.join(digits, "val.lst")) as f:
        assert ids == [line.split("\t")[2].strip() for line in f]
    with open(os.path.join(folder, "report.md")) as f:
        markdown = f.read()
    assert "| A " in markdown and "%.1f" % (100 * report["top1_error"]) in markdown
    assert "top-1 error %.2f%%" % (100 * report["top1_error"]) in output


def test_fuse_with_itself_and_refusals(evaluated, tmp_path):
    folder, _ = evaluated
    runner = CliRunner()
    result = runner.invoke(cli, ["fuse", folder, folder, "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    # the float32 mean of two equal arrays is exact: (a + a) / 2 == a
    np.testing.assert_array_equal(np.load(str(tmp_path / "f" / "scores.npy")),
                                  np.load(os.path.join(folder, "scores.npy")))
    other = tmp_path / "other"
    os.makedirs(other)
    for name in ("scores.npy", "labels.npy", "report.json"):
        with open(os.path.join(folder, name), "rb") as src:
            (other / name).write_bytes(src.read())
    with open(os.path.join(folder, "ids.txt")) as f:
        ids = f.read().splitlines()
    (other / "ids.txt").write_text("\n".join(ids[::-1]) + "\n")
    result = runner.invoke(cli, ["fuse", folder, str(other), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2 and "were evaluated on different images" in result.output
    result = runner.invoke(cli, ["fuse", folder, str(tmp_path / "nothing"), "--out",
                                 str(tmp_path / "h")])
    assert result.exit_code == 2 and "is not an eval output folder" in result.output


def test_eval_images_prints_named_top5(trained_a, tmp_path, digits):
    import shutil
    raw = os.path.join(os.path.dirname(digits), "raw", "val", "3_three")
    for name in sorted(os.listdir(raw))[:3]:
        shutil.copy(os.path.join(raw, name), tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    result = CliRunner().invoke(cli, ["eval", "--params", os.path.join(trained_a[0],
                                                                        "best.params"),
                                      "--images", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("broken.png: skipped (cannot decode)" in line for line in lines)
    named = [line for line in lines if "digit" in line]
    assert len(named) == 3 and all(line.count(";") == 4 for line in named)


def test_eval_bad_input(trained_a, digits, tmp_path):
    runner = CliRunner()
    params = os.path.join(trained_a[0], "best.params")
    val = os.path.join(digits, "val.rec")
    base = ["eval", "--params", params, "--data", val, "--out", str(tmp_path / "o")]
    for bad in ("a,b", "0", "-256"):
        result = runner.invoke(cli, base + ["--scales", bad])
        assert result.exit_code == 2 and "scales must be positive integers" in result.output
    result = runner.invoke(cli, base + ["--scales", "24,36", "--mode", "multicrop"])
    assert result.exit_code == 2
    assert "scales 24 smaller than the 32 crop" in result.output.replace("scale ", "scales ")
    result = runner.invoke(cli, base + ["--net", "E"])
    assert result.exit_code == 2 and "holds net A, but --net is E" in result.output
    broken = tmp_path / "broken.rec"
    with open(val, "rb") as f:
        broken.write_bytes(f.read()[:2000])
    (tmp_path / "broken.idx").write_text(open(os.path.join(digits, "val.idx")).read())
    result = runner.invoke(cli, ["eval", "--params", params, "--data", str(broken), "--out",
                                 str(tmp_path / "o")])
    assert result.exit_code == 2 and "broken.rec is truncated" in result.output
