"""vgg eval --images: the eval engine on a folder of images, every option honoured,
the top classes written as CSV or JSON lines."""
import csv
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from vggcli.cli import cli


@pytest.fixture(scope="module")
def photos(digits, tmp_path_factory):
    """Six digit scans of two classes (40x40 PNGs) and a file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    for digit in ("3_three", "7_seven"):
        raw = os.path.join(os.path.dirname(digits), "raw", "val", digit)
        for name in sorted(os.listdir(raw))[:3]:
            shutil.copy(os.path.join(raw, name), folder / ("%s-%s" % (digit, name)))
    (folder / "0-broken.png").write_bytes(b"not an image")
    return str(folder)


def _predict(trained_a, photos, **kw):
    from vggcli.testing.inference import load_for_inference
    from vggcli.testing.predict import predict_folder
    loaded = load_for_inference(os.path.join(trained_a[0], "best.params"), None,
                                (("cpu", 0),))
    return predict_folder(loaded.net, photos, kw.pop("scales", [32]), loaded.mean_rgb,
                          loaded.class_names, top=10, **kw), loaded


def _posteriors(results):
    """{image: full posterior} from top-10 results of a 10-class net."""
    out = {}
    for r in results:
        if "top" in r:
            row = np.zeros(10)
            for c, _, _, p in r["top"]:
                row[c] = p
            out[r["path"]] = row
    return out


def test_dense_prediction_is_the_nets_softmax_on_the_image(trained_a, photos):
    """At Q = crop = 32 a square image's dense score map is 1x1: the FC form's scores on
    the rescaled image, soft-maxed and averaged with its flip's (computed here with the
    FC form, not the engine's dense form). Tolerance: float32 soft-max of the same
    sums in another order, 1e-5."""
    import cv2
    import mxnet as mx
    from scipy.special import softmax

    results, loaded = _predict(trained_a, photos)
    assert results[0] == dict(path=os.path.join(photos, "0-broken.png"),
                              error=results[0]["error"])
    assert "cannot decode" in results[0]["error"]
    found = _posteriors(results)
    assert len(found) == 6
    for path, posterior in found.items():
        image = cv2.imread(os.path.join(photos, path))[:, :, ::-1]
        image = cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (image - np.asarray(loaded.mean_rgb, np.float32)).transpose(2, 0, 1)[None]
        both = np.concatenate([x, x[:, :, :, ::-1]])
        want = softmax(loaded.net(mx.nd.array(both)).asnumpy(), axis=1).mean(axis=0)
        np.testing.assert_allclose(posterior, want, atol=1e-5, err_msg=path)


def test_both_modes_average_dense_and_multicrop(trained_a, photos):
    """--mode both is the mean of the dense and multi-crop posteriors (paper §4.3),
    each averaged over the scales. Tolerance: float32 means, 1e-6."""
    runs = {mode: _posteriors(_predict(trained_a, photos, mode=mode, scales=[36, 40])[0])
            for mode in ("dense", "multicrop", "both")}
    for path, both in runs["both"].items():
        np.testing.assert_allclose(both, (runs["dense"][path] + runs["multicrop"][path]) / 2,
                                   atol=1e-6)
        assert not np.allclose(runs["dense"][path], runs["multicrop"][path], atol=1e-4)


@pytest.mark.parametrize("options", [["--mode", "multicrop", "--batch-size", "7"],
                                     ["--int8", "2", "--no-flip"],
                                     ["--dtype", "bfloat16", "--limit", "4"]])
def test_every_option_reaches_the_written_predictions(trained_a, photos, tmp_path, options):
    params = os.path.join(trained_a[0], "best.params")
    runner = CliRunner()
    base = ["eval", "--params", params, "--images", photos, "--scales", "32,36", "--quiet"]
    for name in ("top.csv", "top.jsonl"):
        result = runner.invoke(cli, base + options + ["--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    images = 4 if "--limit" in options else 7  # the first 4 include the broken file
    with open(tmp_path / "top.csv") as f:
        rows = list(csv.DictReader(f))
    lines = [json.loads(line) for line in open(tmp_path / "top.jsonl")]
    assert len(lines) == images and len(rows) == 5 * (images - 1) + 1
    assert lines[0] == {"image": os.path.join(photos, "0-broken.png"),
                        "error": rows[0]["error"]}
    for line in lines[1:]:
        top = line["top"]
        assert [t["rank"] for t in top] == [1, 2, 3, 4, 5]
        probabilities = [t["probability"] for t in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-5
        assert all(" digit " in t["name"] and t["wnid"] == "" for t in top)  # not WNIDs
        mine = [r for r in rows if r["image"] == line["image"]]
        assert [int(r["class"]) for r in mine] == [t["class"] for t in top]


def test_predictions_out_is_checked_before_any_work(trained_a, photos, tmp_path):
    params = os.path.join(trained_a[0], "best.params")
    runner = CliRunner()
    base = ["eval", "--params", params, "--images", photos, "--out"]
    result = runner.invoke(cli, base + [str(tmp_path / "top.txt")])
    assert result.exit_code == 2 and "give a .csv or .jsonl file" in result.output
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("a,b\n1,2\n")
    result = runner.invoke(cli, base + [str(theirs), "--overwrite"])
    assert result.exit_code == 2 and "not a vgg predictions output" in result.output
    assert theirs.read_text() == "a,b\n1,2\n"
    ours = tmp_path / "ours.csv"
    assert runner.invoke(cli, base + [str(ours), "--limit", "2"]).exit_code == 0
    result = runner.invoke(cli, base + [str(ours), "--limit", "3"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert runner.invoke(cli, base + [str(ours), "--limit", "3", "--overwrite"]).exit_code == 0
    assert len(ours.read_text().splitlines()) == 1 + 1 + 2 * 5


def test_class_lines_give_wnids_and_names():
    from vggcli.testing.predict import split_class_name
    assert split_class_name("n01440764 tench, Tinca tinca") == ("n01440764", "tench, Tinca tinca")
    assert split_class_name("n01440764") == ("n01440764", "")
    assert split_class_name("3_three digit 3") == ("", "3_three digit 3")
