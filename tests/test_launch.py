"""vgg launch: MXNet's dist_sync KVStore on localhost (loopback only)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from vggcli.train import train

from .conftest import config

TRAIN = ["--net", "A", "--width-mult", "0.125", "--fc-width", "32", "--crop-size", "32",
         "--scale", "36", "--init", "xavier", "--quiet"]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _launch(args, **kw):
    return subprocess.run([sys.executable, "-m", "vggcli", "launch"] + args,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.slow
def test_two_workers_agree_and_match_a_single_process(digits, tmp_path):
    common = ["--net", "A", "--width-mult", "0.25", "--fc-width", "128", "--crop-size", "32",
              "--scale", "36", "--init", "xavier", "--quiet", "--data", digits,
              "--batch-size", "32", "--epochs", "4"]
    result = _launch(["-n", "2", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync",
                      "--out", str(tmp_path / "dist")] + common)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = re.findall(r"final weights sha256 ([0-9a-f]{64})", result.stdout)
    assert len(digests) == 2 and digests[0] == digests[1]
    assert "[worker 0]" in result.stdout and "[worker 1]" in result.stdout
    pids = [int(p) for p in re.findall(r"started \w+(?: \d)?, pid (\d+)", result.stdout)]
    assert len(pids) == 4 and not any(_alive(p) for p in pids)
    dist_err = float(re.findall(r"best val top-1 error ([\d.]+)%", result.stdout)[0]) / 100
    single = train(config(digits, tmp_path / "single", net="A", init="xavier", epochs=4),
                   progress=False)
    # chance is 0.9; seen after 4 epochs: dist 0.66, single 0.63
    assert dist_err < 0.8 and single["best_val_top1_err"] < 0.8
    assert abs(dist_err - single["best_val_top1_err"]) < 0.3
    assert os.path.isfile(tmp_path / "dist" / "final.params")  # rank 0 writes


@pytest.mark.slow
def test_unequal_shards_finish(digits, tmp_path):
    # 1,438 records over 3 workers: shards of 480, 479, 479 -> the same step count
    result = _launch(["-n", "3", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync",
                      "--out", str(tmp_path / "d"), "--data", digits, "--batch-size", "48",
                      "--epochs", "1"] + TRAIN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(set(re.findall(r"final weights sha256 (\w+)", result.stdout))) == 1
    assert result.stdout.count("1 epochs, 30 iterations") == 3  # ceil(480 / 16) each


@pytest.mark.slow
def test_killing_a_worker_stops_the_whole_job(digits, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "vggcli", "launch", "-n", "2", "-s", "1", "--", "vgg", "train",
         "--kvstore", "dist_sync", "--out", str(tmp_path / "k"), "--data", digits,
         "--batch-size", "32", "--epochs", "20"] + TRAIN,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, pids, victim = [], {}, None
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.match(r"\[launch\] started (.+), pid (\d+)", line)
        if found:
            pids[found.group(1)] = int(found.group(2))
        if "training net A" in line and "worker 1" in pids:
            victim = pids["worker 1"]
            time.sleep(1.0)
            os.kill(victim, signal.SIGKILL)
            break
    assert victim, "".join(lines)
    killed_at = time.time()
    rest, err = proc.communicate(timeout=120)
    assert time.time() - killed_at < 60
    assert proc.returncode == 1
    assert "distributed job failed: worker 1 exited with status -9 (killed by signal 9)" in err
    time.sleep(0.5)
    assert not [name for name, pid in pids.items() if _alive(pid)]


def test_launch_usage_errors(tmp_path):
    result = _launch(["-n", "2"])
    assert result.returncode == 2
    result = _launch(["-n", "1", "--launcher", "ssh", "--", "vgg", "nets"])
    assert result.returncode == 2 and "--launcher ssh needs --hosts FILE" in result.stderr


def test_learning_rate_change_reaches_the_servers():
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist_lr_check.py")
    result = _launch(["-n", "2", "-s", "1", "--", sys.executable, script])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count("learning-rate change reached the servers") == 2


def test_silent_start_is_stopped_with_a_message():
    start = time.time()
    result = _launch(["-n", "1", "-s", "1", "--start-timeout", "3", "--", sys.executable,
                      "-c", "import time; time.sleep(120)"])
    assert time.time() - start < 40
    assert result.returncode == 1
    assert "worker 0 failed (no output 3 s after start: it cannot reach the scheduler at " \
           "127.0.0.1:" in result.stderr


@pytest.mark.slow
def test_distributed_resume(digits, tmp_path):
    out = str(tmp_path / "r")
    args = ["-n", "2", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync", "--data",
            digits, "--out", out, "--batch-size", "32"] + TRAIN
    first = _launch(args + ["--epochs", "1"])
    assert first.returncode == 0, first.stderr[-2000:]
    again = _launch(["-n", "2", "-s", "1", "--", "vgg", "train", "--resume", out,
                     "--epochs", "2", "--quiet"])
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "from epoch 2 batch 0" in again.stdout
    assert len(set(re.findall(r"final weights sha256 (\w+)", again.stdout))) == 1
    with open(os.path.join(out, "log.jsonl")) as f:
        epochs = [line for line in f if '"event": "epoch"' in line]
    assert len(epochs) == 2
