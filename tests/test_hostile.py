"""The output policy (data_tools.common) under hostile --out choices: every command
that writes refuses to change what it did not write, refuses outputs that overlap
its inputs, and says so in one line (exit 2); every pre-existing file is unchanged."""
import os
import shutil

import pytest
from click.testing import CliRunner

from data_tools.common import MARKER, atomic_output, temporary_name
from vggcli.cli import cli

from .hostile import eval_output, refused


@pytest.fixture(scope="module")
def evaluated(params, digits, tmp_path_factory):
    return eval_output(params, digits, tmp_path_factory.mktemp("ev") / "eval", 20)


def test_eval_into_the_dataset_folder_is_refused(params, digits):
    refused(["eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
             "--out", digits], digits, expect="overlaps the input")


def test_eval_into_a_users_folder_is_refused(params, digits, user_folder):
    refused(["eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
             "--out", user_folder], user_folder, expect="files vgg did not write")


def test_eval_output_is_replaced_only_with_overwrite(params, digits, evaluated):
    val = os.path.join(digits, "val.rec")
    refused(["eval", "--params", params, "--data", val, "--limit", "20", "--out", evaluated],
            evaluated, expect="give --overwrite")
    result = CliRunner().invoke(cli, ["eval", "--params", params, "--data", val, "--limit",
                                      "10", "--out", str(evaluated), "--overwrite", "--quiet"])
    assert result.exit_code == 0, result.output
    with open(evaluated / "ids.txt") as f:
        assert len(f.read().splitlines()) == 10
    assert (evaluated / MARKER).is_file()


def test_fuse_refuses_a_users_folder_and_its_own_inputs(evaluated, user_folder):
    refused(["fuse", evaluated, evaluated, "--out", user_folder], user_folder, evaluated,
            expect="files vgg did not write")
    refused(["fuse", evaluated, evaluated, "--out", evaluated], evaluated,
            expect="overlaps the input")
    refused(["fuse", evaluated, evaluated, "--out", evaluated.parent], evaluated,
            expect="overlaps the input")


def test_features_refuse_an_output_inside_the_images_or_over_a_users_file(
        params, photo_folder, user_folder, tmp_path):
    refused(["features", "--params", params, "--images", photo_folder, "--scales", "36",
             "--out", os.path.join(photo_folder, "f.npz")], photo_folder,
            expect="overlaps the input")
    (user_folder / "table.npz").write_bytes(b"PK\x03\x04 the user's own archive")
    refused(["features", "--params", params, "--images", photo_folder, "--scales", "36",
             "--out", user_folder / "table.npz"], user_folder, expect="not a vgg features")
    result = CliRunner().invoke(cli, ["features", "--params", params, "--images",
                                      photo_folder, "--scales", "36", "--out",
                                      str(tmp_path / "f.npz"), "--quiet"])
    assert result.exit_code == 0, result.output
    refused(["features", "--params", params, "--images", photo_folder, "--scales", "36",
             "--out", tmp_path / "f.npz"], tmp_path, expect="give --overwrite")


def test_transfer_convert_and_train_refuse_a_users_files(params, digits, user_folder):
    refused(["transfer", "--train", "x.npz", "--test", "y.npz", "--out", user_folder],
            user_folder, expect="files vgg did not write")
    refused(["convert", "--from", "gluoncv", params, "--net", "A", "--out",
             user_folder / "model.params"], user_folder, expect="not a vgg params output")
    refused(["convert", "--from", "gluoncv", params, "--net", "A", "--out", params],
            os.path.dirname(params), expect="overlaps the input")
    refused(["train", "--net", "A", "--data", digits, "--out", user_folder], user_folder,
            expect="files vgg did not write")
    refused(["train", "--net", "A", "--data", digits, "--out", os.path.join(digits, "runs")],
            digits, expect="overlaps the input")


def test_pack_refuses_a_users_folder_even_with_resume(tmp_path, user_folder):
    dataset = tmp_path / "dataset" / "cat"
    dataset.mkdir(parents=True)
    shutil.copy(str(user_folder / "notes.tex"), str(dataset / "x.jpg"))
    refused(["pack", dataset.parent, "--out", user_folder], user_folder,
            expect="files vgg did not write")
    refused(["pack", dataset.parent, "--out", user_folder, "--resume"], user_folder,
            expect="nothing to resume")
    refused(["pack", dataset.parent, "--out", dataset.parent / "packed"], dataset.parent,
            expect="overlaps the input")


def test_a_killed_runs_temporary_goes_with_the_next_run(tmp_path):
    """A temporary whose process is gone (SIGKILL) is removed when the same output is
    written next; one of a live process is left alone."""
    target = tmp_path / "out"
    dead = temporary_name(str(target)).replace("-%d" % os.getpid(), "-999999999")
    os.makedirs(dead)
    live = temporary_name(str(target)).replace("-%d" % os.getpid(), "-%d" % os.getppid())
    os.makedirs(live)
    with atomic_output(str(target), folder=True, kind="eval") as tmp:
        (open(os.path.join(tmp, "a"), "w")).close()
    assert not os.path.exists(dead) and os.path.isdir(live)
    assert sorted(os.listdir(target)) == [MARKER, "a"]


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_output(str(target), folder=True, kind="eval") as tmp:
            (open(os.path.join(tmp, "half"), "w")).close()
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def photo_folder(photos, tmp_path_factory):
    import cv2
    root = tmp_path_factory.mktemp("photos")
    for name, image in list(photos.items())[:3]:
        cv2.imwrite(str(root / (name + ".jpg")), cv2.resize(image, (48, 40))[:, :, ::-1])
    return str(root)


@pytest.mark.parametrize("args,expect", [
    (["--kvstore", "dist_sync"], "runs under vgg launch"),
    (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--workers", "-1"], "workers must be >= 0"),
    (["--devices", "cpu:99"], "cpu:99 requested, but this process may use"),
    (["--scale", "10000000"], "Smax <= 4096"),
])
def test_train_options_that_are_refused(digits, tmp_path, args, expect):
    out = tmp_path / "run"
    refused(["train", "--net", "A", "--data", digits, "--out", out] + args, digits, tmp_path,
            expect=expect)
    assert not out.exists() or not [n for n in os.listdir(out) if n.endswith(".params")]


@pytest.mark.parametrize("scales", ["10000000", "256,5000"])
def test_scales_have_an_upper_bound(params, digits, tmp_path, scales):
    message = refused(["eval", "--params", params, "--data", os.path.join(digits, "val.rec"),
                       "--scales", scales, "--out", tmp_path / "e"], digits, expect="above")
    assert "4096" in message


def test_launch_of_a_missing_program_is_one_line(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "vggcli", "launch", "-n", "1", "--",
                           "/nonexistent/program"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: program /nonexistent/program not found (or not executable): nothing to launch")


@pytest.fixture
def odd_folder(tmp_path, photos):
    """A real photo under a Latin-1 name that is not UTF-8, a plain copy, and a FIFO."""
    import cv2
    root = tmp_path / "odd"
    root.mkdir()
    ok, jpeg = cv2.imencode(".jpg", cv2.resize(photos["coffee"], (48, 40))[:, :, ::-1])
    with open(os.path.join(os.fsencode(str(root)), b"caf\xe9.jpg"), "wb") as f:
        f.write(jpeg.tobytes())
    (root / "plain.jpg").write_bytes(jpeg.tobytes())
    os.mkfifo(str(root / "pipe.jpg"))
    return root


def test_odd_names_and_a_fifo_neither_crash_nor_hang(params, odd_folder, tmp_path):
    """Names are bytes on Linux: the Latin-1 one is processed (shown with \\xNN escapes),
    the FIFO is skipped with its reason; no signal death, no hang (timeout)."""
    import subprocess
    import sys

    import numpy as np

    from vggcli.testing.features import load_features
    vgg = [sys.executable, "-m", "vggcli"]
    out = tmp_path / "odd.npz"
    done = subprocess.run(vgg + ["features", "--params", params, "--images", str(odd_folder),
                                 "--scales", "36", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped pipe.jpg: not a regular file" in done.stderr
    x, _, ids, info = load_features(str(out))
    assert ids == ["caf\\xe9.jpg", "plain.jpg"] and info["skipped"] == 1
    np.testing.assert_array_equal(x[0], x[1])  # the same photo under both names
    done = subprocess.run(vgg + ["eval", "--params", params, "--images", str(odd_folder),
                                 "--scales", "36"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith(str(odd_folder / "caf\\xe9.jpg: ")) for line in lines)
    assert str(odd_folder / "pipe.jpg") + ": skipped (not a regular file)" in lines
