"""vgg features / vgg transfer (Appendix B) on real photos and digits."""
import os
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score

import mxnet as mx

from vggcli.testing import features as feat
from vggcli.nets import models
from vggcli.cli import cli
from vggcli.core.errors import VggError

from .numerics import assert_float32_close, gamma, output_bound


def assert_unit_norm(x):
    """L2 normalisation in float32: a sum of D squares (gamma_D), a square root and a
    division, about gamma(D + 4) from 1."""
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, rtol=gamma(x.shape[1] + 4))


@pytest.fixture(scope="module")
def net():
    return models.initialize(models.get_model("D", classes=7, width_mult=0.125, fc_width=40),
                             seed=6)


@pytest.fixture(scope="module")
def photo_folder(photos, tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for name, image in list(photos.items())[:4]:
        cv2.imwrite(str(root / (name + ".jpg")), image[:, :, ::-1])
    half = cv2.resize(photos["chelsea"], (150, 300))
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)
    cv2.imwrite(str(root / "symmetric.png"), symmetric[:, :, ::-1])
    return str(root)


def _extract(net, folder, out, **kw):
    options = dict(layer="fc7", scales=[224, 256], aggregate="mean", flip=True, l2=True,
                   means=[[110.0, 110.0, 110.0]], progress=False)
    options.update(kw)
    info = feat.extract([net], images=folder, out_path=str(out), **options)
    return feat.load_features(info["path"]), info


@pytest.mark.parametrize("layer,aggregate,dims", [("fc7", "mean", 40), ("fc7", "stack", 80),
                                                  ("pool5", "mean", 64), ("fc8", "mean", 7),
                                                  ("conv4_2", "stack", 128)])
def test_dimensions_and_unit_norm(net, photo_folder, tmp_path, layer, aggregate, dims):
    (x, labels, ids, info), _ = _extract(net, photo_folder, tmp_path / "f", layer=layer,
                                         aggregate=aggregate)
    assert x.shape == (5, dims) and info["dims"] == dims and labels is None
    assert_unit_norm(x)
    assert ids == sorted(ids) and "symmetric.png" in ids


def test_stack_of_one_scale_equals_mean(net, photo_folder, tmp_path):
    """With one scale both are the same computation: equal to the bit."""
    (a, *_), _ = _extract(net, photo_folder, tmp_path / "a", scales=[256], aggregate="stack")
    (b, *_), _ = _extract(net, photo_folder, tmp_path / "b", scales=[256], aggregate="mean")
    np.testing.assert_array_equal(a, b)


@pytest.mark.numerics
def test_symmetric_image_same_with_and_without_flip(net, photo_folder, tmp_path):
    """A mirror-symmetric image equals its flip bit for bit; only rounding differs
    (another batch size), within numerics.output_bound of the unit descriptor."""
    (a, _, ids, _), _ = _extract(net, photo_folder, tmp_path / "a", flip=True)
    (b, *_), _ = _extract(net, photo_folder, tmp_path / "b", flip=False)
    i = ids.index("symmetric.png")
    assert_float32_close(a[i], b[i], output_bound(net, b[i]))
    j = ids.index("rocket.jpg")
    assert not np.allclose(a[j], b[j], rtol=1e-4)


@pytest.mark.numerics
def test_descriptor_at_crop_size_equals_fc7_of_fc_form(net, photos, tmp_path):
    """fc6 as a convolution sums in another order: within numerics.output_bound."""
    folder = tmp_path / "one"
    os.makedirs(folder)
    image = cv2.resize(photos["coffee"], (224, 224), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "coffee.png"), image[:, :, ::-1])
    (x, *_), _ = _extract(net, str(folder), tmp_path / "f", scales=[224], flip=False, l2=False)
    inp = mx.nd.array((image.astype(np.float32) - 110).transpose(2, 0, 1)[None])
    fc7 = net.forward_head(net.forward_features(inp), pre_logits=True).asnumpy()
    assert_float32_close(x, fc7, output_bound(net, fc7))


def test_two_nets_are_stacked(net, photo_folder, tmp_path):
    other = models.initialize(models.get_model("A", classes=7, width_mult=0.125, fc_width=24),
                              seed=1)
    info = feat.extract([net, other], "fc7", [256], str(tmp_path / "two"), images=photo_folder,
                        means=[[110] * 3, [100] * 3], progress=False)
    x, *_ = feat.load_features(info["path"])
    assert x.shape == (5, 64)
    assert_unit_norm(x)


def test_mean_recall_and_accuracy_against_counts():
    """Mean class recall = the mean over the test classes of (correct / images of the
    class), counted by hand; a class the classifier never predicts counts 0."""
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 5])
    predicted = np.array([0, 1, 0, 1, 1, 2, 0, 0, 0, 1])
    classes = np.array([0, 1, 2, 5, 7])
    decision = np.eye(5)[[list(classes).index(p) for p in predicted]]
    value, per_class = feat.score("mean-recall", y_true, decision, classes)
    assert per_class == {0: 2 / 3, 1: 1.0, 2: 0.25, 5: 0.0}
    assert value == pytest.approx((2 / 3 + 1 + 0.25 + 0) / 4)
    assert feat.score("accuracy", y_true, decision, classes)[0] == pytest.approx(0.5)
    with pytest.raises(VggError, match="metric must be one of"):
        feat.score("f1", y_true, decision, classes)


@pytest.fixture(scope="module")
def digit_features(trained_a, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat")
    params = os.path.join(trained_a[0], "best.params")
    raw = os.path.join(os.path.dirname(digits), "raw")
    runner = CliRunner()
    paths = {}
    for split in ("train", "val"):
        paths[split] = str(out / ("%s.npz" % split))
        result = runner.invoke(cli, ["features", "--params", params, "--layer", "fc7",
                                     "--scales", "36,40", "--images", os.path.join(raw, split),
                                     "--out", paths[split], "--quiet"])
        assert result.exit_code == 0, result.output
    return paths, str(out)


@pytest.mark.numerics
def test_transfer_far_above_chance_and_map_equals_sklearn(digit_features, tmp_path):
    """Learning with margin (chance 0.1, seed spread below); mAP from the saved
    classifier equals scikit-learn's on the same decisions."""
    paths, _ = digit_features
    x, labels, ids, info = feat.load_features(paths["train"])
    assert x.shape[1] == 128 and len(set(labels.tolist())) == 10 and info["layer"] == "fc7"
    runner = CliRunner()
    result = runner.invoke(cli, ["transfer", "--train", paths["train"], "--test", paths["val"],
                                 "--metric", "accuracy", "--out", str(tmp_path / "acc")])
    assert result.exit_code == 0, result.output
    import json
    with open(tmp_path / "acc" / "report.json") as f:
        accuracy = json.load(f)["value"]
    assert accuracy > 0.6  # chance 0.1; with net A of seeds 0, 1, 2 (AVX2): 0.85, 0.83, 0.87
    report = feat.transfer(paths["train"], paths["val"], metric="map",
                           out_dir=str(tmp_path / "map"))
    saved = np.load(str(tmp_path / "map" / "classifier.npz"))
    xt, yt, _, _ = feat.load_features(paths["val"])
    decision = xt.dot(saved["coef"].T) + saved["intercept"]
    expected = [average_precision_score(yt == c, decision[:, i])
                for i, c in enumerate(saved["classes"])]
    for c, ap in zip(saved["classes"], expected):
        assert report["per_class"][int(c)] == pytest.approx(ap)
    assert report["value"] == pytest.approx(np.mean(expected))
    recall = feat.transfer(paths["train"], paths["val"], metric="mean-recall")
    assert recall["value"] > 0.6


def test_features_bad_input(trained_a, tmp_path, photo_folder):
    runner = CliRunner()
    params = os.path.join(trained_a[0], "best.params")
    result = runner.invoke(cli, ["features", "--params", params, "--layer", "fc9",
                                 "--images", photo_folder, "--scales", "36", "--out",
                                 str(tmp_path / "x.npz")])
    assert result.exit_code == 2
    assert "unknown layer 'fc9' for net A; valid layers: conv1_1, pool1" in result.output
    empty = tmp_path / "empty"
    os.makedirs(empty)
    result = runner.invoke(cli, ["features", "--params", params, "--images", str(empty),
                                 "--scales", "36", "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "no images in" in result.output
    mixed = tmp_path / "mixed"
    shutil.copytree(photo_folder, mixed)
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    result = runner.invoke(cli, ["features", "--params", params, "--images", str(mixed),
                                 "--scales", "36", "--out", str(tmp_path / "m.npz"),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "skipped broken.jpg: cannot decode" in result.output
    x, _, ids, _ = feat.load_features(str(tmp_path / "m.npz"))
    assert len(ids) == 5 and "broken.jpg" not in ids
    with pytest.raises(VggError, match="not a vgg features file"):
        (tmp_path / "junk.npz").write_bytes(b"junk")
        feat.load_features(str(tmp_path / "junk.npz"))


def test_bfloat16_fallback_is_decided_and_said_once_for_several_nets(net, photo_folder,
                                                                      tmp_path, capfd):
    from vggcli.core import precision
    if precision.prepare("bfloat16")[0] == "bfloat16":
        pytest.skip("this CPU runs bfloat16: there is no fallback to report")
    other = models.initialize(models.get_model("A", classes=7, width_mult=0.125, fc_width=24),
                              seed=1)
    info = feat.extract([net, other], "fc7", [224], str(tmp_path / "two"), images=photo_folder,
                        means=[[110] * 3, [100] * 3], progress=False, dtype="bfloat16")
    assert info["precision"] == "float32"
    assert capfd.readouterr().err.count("note: bfloat16:") == 1
