"""vgg launch --launcher ssh across three hosts: network namespaces on a bridge, an
sshd in each (vggcli.distributed.netlab). Run by ``make test-cluster`` (VGG_CLUSTER=1), as root;
elsewhere each test says why it skipped."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from vggcli.nets import models
from vggcli.distributed import netlab
from vggcli.distributed.launch_ssh import ANSWER_S

pytestmark = pytest.mark.skipif(os.environ.get("VGG_CLUSTER") != "1",
                                reason="the cluster tests run under make test-cluster")
HOSTS = ["h1", "h2", "h3"]
NET = dict(width_mult=0.0625, fc_width=32, crop_size=32)
TRAIN = ["--net", "A", "--width-mult", "0.0625", "--fc-width", "32", "--crop-size", "32",
         "--scale", "36", "--dtype", "float32", "--quiet"]
# a stopped job's processes are gone by then: the launcher's own stop (5 s grace) plus
# rank_guard's (3 s), or ANSWER_S for a rank whose host was cut off, with 10 s to spare
GONE_S = ANSWER_S + 3 + 10


@pytest.fixture(scope="module")
def lab():
    why = netlab.unavailable()
    if why:
        pytest.skip("cluster lab: " + why)
    with netlab.Lab(len(HOSTS)) as built:
        with open(os.path.join(built.work, "hosts"), "w") as f:
            f.write("\n".join(HOSTS) + "\n")
        yield built


def _launch(lab, job_id, data, out, workers=3, epochs=1):
    argv = lab.exec_argv("h1", [
        sys.executable, "-m", "vggcli", "launch", "-n", str(workers), "-s", "1",
        "--launcher", "ssh", "--hosts", os.path.join(lab.work, "hosts"), "--interface", "eth0",
        "--ssh-config", lab.ssh_config, "--start-timeout", "120", "--", "vgg", "train",
        "--kvstore", "dist_sync", "--data", data, "--out", out, "--batch-size", "48",
        "--epochs", str(epochs)] + TRAIN)
    return subprocess.Popen(argv, env=dict(os.environ, VGG_JOB_ID=job_id),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _gone(lab, job_id, seconds):
    """The job's processes still alive after ``seconds`` (on any host), or {}."""
    deadline = time.time() + seconds
    while True:
        left = lab.processes(job_id)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.3)


def _wait_for_training(lab, proc, job_id, host):
    """Once every worker trains: the pid of the training process on ``host``."""
    deadline = time.time() + 150
    while time.time() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if "training net A" in line:
            found = [pid for pid, (where, role, cmd) in lab.processes(job_id).items()
                     if where == host and role == "worker" and "rank_guard" not in cmd
                     and "vggcli train" in cmd]
            if found:
                time.sleep(2.0)  # mid-run: a few steps taken
                return found[0]
    raise AssertionError("no worker started training on %s" % host)


def _one_error_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def test_training_across_three_hosts(lab, digits, tmp_path):
    """Each host runs the rank the host file gives it, the three workers end with the
    same weights, and the gradients cross the bridge: each step, the two workers on
    h2 and h3 push a gradient and pull the weights (float32, one value per parameter)
    through it, a lower bound on the bridge's bytes."""
    job = "train-%d" % os.getpid()
    before = lab.bridge_bytes()
    proc = _launch(lab, job, digits, str(tmp_path / "run"))
    placed = {}
    while proc.poll() is None:
        for pid, (host, role, cmd) in lab.processes(job).items():
            if "vggcli train" in cmd and "rank_guard" not in cmd:
                placed[pid] = (host, role)
        time.sleep(0.3)
    out, err = proc.communicate()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "[launch] scheduler at %s:" % lab.address("h1") in out
    assert "[launch] 3 hosts checked" in out
    digests = re.findall(r"final weights sha256 ([0-9a-f]{64})", out)
    assert len(digests) == 3 and len(set(digests)) == 1
    roles = sorted(placed.values(), key=lambda hr: (hr[0], hr[1]))
    # server 0 and worker 0 on hosts[0], worker i on hosts[i]; the scheduler here
    assert roles == [("h1", "scheduler"), ("h1", "server"), ("h1", "worker"),
                     ("h2", "worker"), ("h3", "worker")], roles
    steps = int(re.search(r"1 epochs, (\d+) iterations", out).group(1))
    params = models.count_params(models.get_model("A", classes=10, **NET))
    assert lab.bridge_bytes() - before >= 2 * 2 * 4 * params * steps
    assert not _gone(lab, job, GONE_S)


def test_killed_worker_ends_the_job(lab, digits, tmp_path):
    job = "kill-%d" % os.getpid()
    proc = _launch(lab, job, digits, str(tmp_path / "run"), epochs=50)
    victim = _wait_for_training(lab, proc, job, "h3")
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    _, err = proc.communicate(timeout=120)
    assert time.time() - killed < 60 and proc.returncode == 1
    line = _one_error_line(err)
    assert "worker 2 (on h3) exited with status 137 (killed by signal 9)" in line, line
    assert not _gone(lab, job, GONE_S)


def test_host_that_stops_answering_ends_the_job(lab, digits, tmp_path):
    """The link of h3 taken down: ssh's keepalives give up after ANSWER_S seconds,
    the job ends naming h3, and h3's ranks, which hear no heartbeat, stop by then too."""
    job = "link-%d" % os.getpid()
    proc = _launch(lab, job, digits, str(tmp_path / "run"), epochs=50)
    _wait_for_training(lab, proc, job, "h3")
    lab.set_link("h3", up=False)
    try:
        cut = time.time()
        _, err = proc.communicate(timeout=ANSWER_S + 60)
        assert time.time() - cut < ANSWER_S + 30 and proc.returncode == 1
        line = _one_error_line(err)
        assert "host h3 stopped answering (no reply to ssh keepalives for %d s)" % ANSWER_S \
            in line, line
        assert not _gone(lab, job, GONE_S)
    finally:
        lab.set_link("h3", up=True)


def test_killed_launcher_leaves_nothing(lab, digits, tmp_path):
    job = "launcher-%d" % os.getpid()
    proc = _launch(lab, job, digits, str(tmp_path / "run"), epochs=50)
    _wait_for_training(lab, proc, job, "h3")
    proc.kill()
    proc.communicate()
    assert not _gone(lab, job, GONE_S)


def test_changed_host_key_is_refused(lab, digits, tmp_path):
    job = "key-%d" % os.getpid()
    lab.rekey("h2")
    proc = _launch(lab, job, digits, str(tmp_path / "run"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    line = _one_error_line(err)
    assert "host h2: its ssh host key is not the one known_hosts holds" in line, line
    assert "nothing was started" in line
    assert not os.path.exists(tmp_path / "run")
    assert not _gone(lab, job, 5)
