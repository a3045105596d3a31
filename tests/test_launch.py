"""vgg launch: MXNet's dist_sync KVStore on localhost (loopback only)."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from .hostile import alive

TRAIN = ["--net", "A", "--width-mult", "0.125", "--fc-width", "32", "--crop-size", "32",
         "--scale", "36", "--init", "xavier", "--quiet"]


def _launch(args, **kw):
    return subprocess.run([sys.executable, "-m", "vggcli", "launch"] + args,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.numerics
def test_two_workers_step_like_one_process(digits, tmp_path):
    """Two dist_sync workers, each on half of a batch, take the step one process takes
    on the whole batch: the servers sum the two pushed gradients (two float32 terms:
    exact) and apply SGD to the sum, so the weights after the step differ from one
    process's only by the gradient's summation order, bounded as in
    test_train.test_two_devices_compute_the_gradient_of_the_whole_batch (lr / B times
    the gradient bound, plus the update's rounding)."""
    import mxnet as mx

    from .numerics import FLOAT32_U, describe
    from .test_train import gradients_after, one_batch, step_bounds, weights

    out = tmp_path / "dist.npz"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist_step_check.py")
    result = _launch(["-n", "2", "-s", "1", "--", sys.executable, script, digits, str(out)])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("of 2: stepped on 16 images") == 2
    dist = np.load(str(out))
    cfg, batch = one_batch(digits, tmp_path)
    net, trainer = gradients_after(cfg, batch, [mx.cpu(0)])
    before = weights(net)
    trainer.update(32)
    after = weights(net)
    bounds = step_bounds(cfg, batch)
    for name in after:
        np.testing.assert_array_equal(dist["before:" + name], before[name])  # same init
        bound = cfg["lr"] / 32 * bounds[name] + 6 * FLOAT32_U * np.linalg.norm(before[name])
        gap = np.linalg.norm(dist["after:" + name] - after[name])
        assert gap <= bound, describe("weights " + name, gap, bound)
        assert np.linalg.norm(after[name] - before[name]) > 10 * bound, name


@pytest.mark.slow
def test_gradient_compression_under_dist_sync(digits, tmp_path):
    """MXNet 1.9.1's dist kvstore refuses compression with pushpull (gluon.Trainer's
    way): the workers push then pull, and stay identical."""
    result = _launch(["-n", "2", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync",
                      "--gradient-compression", "2bit:0.5", "--out", str(tmp_path / "c"),
                      "--data", digits, "--batch-size", "64", "--epochs", "1"] + TRAIN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = re.findall(r"final weights sha256 ([0-9a-f]{64})", result.stdout)
    assert len(digests) == 2 and len(set(digests)) == 1


@pytest.mark.slow
def test_unequal_shards_finish(digits, tmp_path):
    # 1,438 records over 3 workers: shards of 480, 479, 479 -> the same step count
    result = _launch(["-n", "3", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync",
                      "--out", str(tmp_path / "d"), "--data", digits, "--batch-size", "48",
                      "--epochs", "1"] + TRAIN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = re.findall(r"final weights sha256 ([0-9a-f]{64})", result.stdout)
    assert len(digests) == 3 and len(set(digests)) == 1  # the workers agree exactly
    assert result.stdout.count("1 epochs, 30 iterations") == 3  # ceil(480 / 16) each
    assert "[worker 0]" in result.stdout and "[worker 2]" in result.stdout
    pids = [int(p) for p in re.findall(r"started \w+(?: \d)?, pid (\d+)", result.stdout)]
    assert len(pids) == 5 and not any(alive(p) for p in pids)
    assert os.path.isfile(tmp_path / "d" / "final.params")  # rank 0 writes


def test_one_worker_with_a_partial_last_batch(digits, tmp_path):
    """1,438 records in batches of 32: the last would hold 30 images, at which a dist
    kvstore's Trainer raises (its servers' gradient scale is fixed); the worker runs
    ceil(1438 / 32) = 45 full batches instead, wrapping around."""
    result = _launch(["-n", "1", "-s", "1", "--", "vgg", "train", "--kvstore", "dist_sync",
                      "--out", str(tmp_path / "p"), "--data", digits, "--batch-size", "32",
                      "--epochs", "1"] + TRAIN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 epochs, 45 iterations" in result.stdout


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
    assert not [name for name, pid in pids.items() if alive(pid)]


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


def _start_sleeping_job():
    """A launched job of 5 processes (scheduler, 2 servers, 2 workers) that each print a
    line and sleep; returns (launcher process, {name: pid}) once all have spoken."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vggcli", "launch", "-n", "2", "-s", "2", "--", sys.executable,
         "-c", "import time; print('up', flush=True); time.sleep(300)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids, up = {}, set()
    deadline = time.time() + 60
    while time.time() < deadline and len(up) < 5:
        line = proc.stdout.readline()
        found = re.match(r"\[launch\] started (.+), pid (\d+)", line)
        if found:
            pids[found.group(1)] = int(found.group(2))
        found = re.match(r"\[(.+)\] up", line)
        if found:
            up.add(found.group(1))
    assert len(up) == 5, (pids, up)
    return proc, pids


def _gone_within(pids, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        running = [name for name, pid in pids.items() if alive(pid)]
        if not running:
            return []
        time.sleep(0.2)
    return running


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
def test_stopping_the_launcher_stops_the_whole_job(signum):
    """SIGHUP is what a closed ssh session sends: the job must not outlive it."""
    proc, pids = _start_sleeping_job()
    proc.send_signal(signum)
    assert _gone_within(pids, 10) == []
    proc.communicate(timeout=10)
    assert proc.returncode == 1


def test_a_killed_launcher_takes_the_job_with_it():
    """SIGKILL cannot be handled: each job process has the kernel's parent-death signal."""
    proc, pids = _start_sleeping_job()
    proc.kill()
    proc.wait()
    assert _gone_within(pids, 10) == []
