"""The error boundary: every failure a command can meet is one 'Error: ' line with a
nonzero exit; a bug says it is one and leaves its traceback in a crash log. The six
cases issue #28 found by hand, each as a test."""
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from vggcli.cli import cli

from .hostile import file_size_limit, refused, refused_in_subprocess, snapshot


def test_inspect_names_a_record_whose_header_points_past_its_end(digits, tmp_path):
    """The first record's IRHeader flag (extra labels) set past the record's bytes:
    one problem line naming the file, exit 1 as for any damaged file."""
    rec = tmp_path / "val.rec"
    shutil.copy(os.path.join(digits, "val.rec"), str(rec))
    shutil.copy(os.path.join(digits, "val.idx"), str(tmp_path / "val.idx"))
    data = bytearray(rec.read_bytes())
    struct.pack_into("<I", data, 8, 0x00FFFFFF)  # after the magic and the length word
    rec.write_bytes(bytes(data))
    result = CliRunner().invoke(cli, ["inspect", str(rec)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "damaged header" in result.output and str(rec) in result.output


def test_pack_skips_an_image_too_wide_for_jpeg(tmp_path):
    """A 70000x1 PNG (JPEG stops at 65,500 pixels a side) is skipped with the
    reason, the rest packed; exit 3, pack's status for skipped files."""
    import cv2
    root = tmp_path / "raw"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            image = np.full((40, 40, 3), 60 * i + (20 if name == "cat" else 120), np.uint8)
            cv2.imwrite(str(root / name / ("%d.png" % i)), image)
    cv2.imwrite(str(root / "dog" / "wide.png"), np.zeros((1, 70000, 3), np.uint8))
    result = CliRunner().invoke(cli, ["pack", str(root), "--out", str(tmp_path / "out"),
                                      "--val-ratio", "0.34", "--quiet"])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "1 skipped" in result.output
    assert "skipped dog/wide.png: cannot be stored as JPEG" in result.output


def test_export_into_a_folder_that_is_a_file_is_one_line(params, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    refused(["export", "--params", params, "--out", str(blocker / "model")], tmp_path,
            expect="a file of that name is in the way")


def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(params, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    refused_in_subprocess(["export", "--params", params, "--out", str(work / "model")],
                          expect=str(work / "model"), code=1,
                          preexec_fn=file_size_limit(4096))
    assert [n for n in os.listdir(str(work)) if not n.startswith(".")] == []


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_a_width_multiplier_that_is_not_finite_is_refused(value):
    refused(["nets", "--width-mult", value], expect="width", code=2)


def test_eval_of_records_under_a_name_that_is_not_utf8(params, digits, tmp_path):
    odd = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9")
    os.makedirs(odd)
    for name in (b"val.rec", b"val.idx"):
        shutil.copy(os.path.join(os.fsencode(digits), name), os.path.join(odd, name))
    import subprocess
    import sys
    out = os.path.join(os.fsencode(str(tmp_path)), b"out\xff")
    done = subprocess.run([sys.executable.encode(), b"-m", b"vggcli", b"eval", b"--params",
                           os.fsencode(params), b"--data", os.path.join(odd, b"val.rec"),
                           b"--limit", b"20", b"--out", out, b"--quiet"],
                          capture_output=True, timeout=300)
    text = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0 and "Traceback" not in text, text[-2000:]
    with open(os.path.join(out, b"report.md"), "rb") as f:
        assert b"caf\\xe9" in f.read()  # the odd byte kept visible, escaped


def test_a_bug_is_one_line_with_its_traceback_in_a_crash_log(monkeypatch, tmp_path):
    """An exception no one foresaw: exit 1, one line saying it is a bug and where the
    traceback went; VGG_DEBUG=1 lets the exception through."""
    from vggcli.nets import tables

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(tables, "network_tables", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, ["nets"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error: ")]
    assert "internal error (ZeroDivisionError: a bug)" in line and "report it" in line
    (log,) = [p for p in os.listdir(str(tmp_path / "cache" / "vgg" / "crashes"))]
    path = tmp_path / "cache" / "vgg" / "crashes" / log
    assert str(path) in line and "ZeroDivisionError: a bug" in path.read_text()
    assert set(snapshot(tmp_path)) - set(before) == {os.fsencode(str(path))}
    monkeypatch.setenv("VGG_DEBUG", "1")
    result = CliRunner().invoke(cli, ["nets"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_reader_that_closes_the_pipe_is_no_error():
    """``vgg recipe list | head -1``: the closed pipe ends the command quietly (click's
    exit status 1), not as an internal error."""
    proc = subprocess.Popen([sys.executable, "-m", "vggcli", "recipe", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes before the first line, as head does after one
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 1), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
