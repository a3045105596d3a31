"""The ssh launcher's parts that need no second host: the scheduler's address, what
ssh's failures mean, the checks before a run, and rank_guard (tests/test_cluster.py
runs the whole across three hosts)."""
import json
import os
import subprocess
import sys
import time

import pytest

from vggcli.distributed import host_check, launch_ssh
from vggcli.core.errors import VggError

from .hostile import alive


def test_scheduler_address_from_the_interface_or_the_route():
    assert launch_ssh.interface_address("lo") == "127.0.0.1"
    assert launch_ssh.scheduler_address("lo", ["h"]) == ("127.0.0.1", "--interface lo")
    # every host reached over loopback is this machine
    assert launch_ssh.scheduler_address(None, ["127.0.0.1"]) == (
        "127.0.0.1", "every host is this machine")
    with pytest.raises(VggError, match=r"--interface nosuch0: this machine has no such "
                                       r"interface with an IPv4 address \(it has: .*lo"):
        launch_ssh.interface_address("nosuch0")
    with pytest.raises(VggError, match="host no-such-host.invalid: cannot resolve"):
        launch_ssh.scheduler_address(None, ["no-such-host.invalid"])


def test_host_key_checking_is_left_to_the_user():
    """No option that weakens host-key checking: the user's config and known_hosts
    decide; BatchMode turns a question into a failure."""
    argv = launch_ssh.ssh_argv("h2", "true", ssh_config="cfg")
    assert argv[:3] == ["ssh", "-F", "cfg"] and argv[-2:] == ["h2", "true"]
    assert "BatchMode=yes" in argv
    assert not any("StrictHostKeyChecking" in a or "UserKnownHostsFile" in a for a in argv)


# what OpenSSH 9 prints in each case (its messages, verbatim)
SSH_SAYS = {
    "changed": ["@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
                "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
                "Host key verification failed."],
    "unknown": ["No ED25519 host key is known for h2 and you have requested strict "
                "checking.", "Host key verification failed."],
    "denied": ["root@10.0.0.2: Permission denied (publickey)."],
    "silent": ["Timeout, server 10.0.0.2 not responding."],
    "refused": ["ssh: connect to host 10.0.0.2 port 22: Connection refused"],
}


def test_ssh_failures_are_named():
    def why(case, code=255):
        return launch_ssh.explain("h2", code, SSH_SAYS[case])
    assert why("changed").startswith("host h2: its ssh host key is not the one known_hosts")
    assert why("unknown").startswith("host h2 is not in known_hosts, and ssh does not ask")
    assert why("denied").startswith("host h2 refused the login")
    assert why("silent") == "host h2 stopped answering (no reply to ssh keepalives for " \
                            "%d s)" % launch_ssh.ANSWER_S
    assert why("refused").startswith("host h2 refused ssh connections")
    assert launch_ssh.explain("h2", 127, []).startswith("the command was not found on host h2")
    # a rank's own failure is not ssh's
    assert launch_ssh.explain("h2", 1, SSH_SAYS["denied"]) is None
    assert launch_ssh.explain("h2", 255, ["Traceback (most recent call last):"]) is None


def test_data_option_and_remote_command():
    assert launch_ssh.data_option(["vgg", "train", "--data", "/d", "--out", "o"]) == "/d"
    assert launch_ssh.data_option(["vgg", "train", "--data=/d e"]) == "/d e"
    assert launch_ssh.data_option(["vgg", "train", "--resume", "o"]) is None
    line = launch_ssh.remote_command(["python", "-c", "print('a b')"],
                                     {"DMLC_ROLE": "worker", "X": "it's"}, cwd="/a b")
    assert line.startswith("cd '/a b' && exec env DMLC_ROLE=worker X='it'\"'\"'s' ")
    assert "-m vggcli.distributed.rank_guard --timeout %d -- python -c 'print('\"'\"'a b'\"'\"')'" \
        % launch_ssh.ANSWER_S in line


def _packed(folder, idx=b"0\t0\n", rec=b"x" * 10):
    os.makedirs(folder, exist_ok=True)
    for name, data in (("train.idx", idx), ("train.rec", rec), ("manifest.json", b"{}")):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return str(folder)


def test_hosts_must_see_the_same_data_and_toolkit(tmp_path):
    here = host_check.fingerprint(_packed(tmp_path / "a"))
    assert here["data"]["train.idx"][0] == 4 and here["data"]["train.rec"] == [10, None]
    same = host_check.fingerprint(_packed(tmp_path / "b"))
    assert host_check.differences(here, same) == []
    other = host_check.fingerprint(_packed(tmp_path / "c", idx=b"1\t0\n"))
    assert host_check.differences(here, other) == ["train.idx differs (sha256)"]
    shorter = host_check.fingerprint(_packed(tmp_path / "d", rec=b"x" * 9))
    assert host_check.differences(here, shorter) == ["train.rec is 9 bytes there, 10 here"]
    older = dict(same, version="0.0.1")
    assert host_check.differences(here, older)[0].startswith("vgg 0.0.1 there, ")
    missing = host_check.fingerprint(str(tmp_path / "nowhere"))
    assert host_check.differences(here, missing)[0].startswith("cannot read the data: ")
    printed = subprocess.run([sys.executable, "-m", "vggcli.distributed.host_check", "--data",
                              str(tmp_path / "a")], capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout) == here


def _guarded(seconds, timeout=2.0):
    return subprocess.Popen(
        [sys.executable, "-m", "vggcli.distributed.rank_guard", "--timeout", str(timeout), "--",
         sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); "
                               "time.sleep(%s)" % seconds],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_rank_guard_passes_the_rank_status_through():
    def status(code):
        guard = subprocess.Popen([sys.executable, "-m", "vggcli.distributed.rank_guard", "--",
                                  sys.executable, "-c", code], stdin=subprocess.PIPE)
        try:  # stdin held open, as a live launcher's ssh does
            return guard.wait(60)
        finally:
            guard.stdin.close()
    assert status("raise SystemExit(3)") == 3
    assert status("import os, signal; os.kill(os.getpid(), signal.SIGKILL)") == 128 + 9


def test_rank_guard_stops_the_rank_when_its_launcher_is_gone():
    """End of file on stdin (the ssh connection closed): the rank stops at once."""
    guard = _guarded(300)
    rank = int(guard.stdout.readline())
    guard.stdin.close()
    assert guard.wait(30) == 255
    assert "its launcher closed the connection" in guard.stderr.read()
    assert not alive(rank)


def test_rank_guard_stops_a_rank_that_hears_no_heartbeat():
    """A cut link (no end of file, no bytes): the rank stops after --timeout seconds,
    while heartbeats keep it running."""
    guard = _guarded(300, timeout=2.0)
    rank = int(guard.stdout.readline())
    for _ in range(4):  # 4 s of heartbeats: still running
        guard.stdin.write(".")
        guard.stdin.flush()
        last_beat = time.time()
        time.sleep(1.0)
    assert guard.poll() is None and alive(rank)
    assert guard.wait(30) == 255
    assert 1.8 < time.time() - last_beat < 15
    assert "no heartbeat from its launcher for" in guard.stderr.read()
    assert not alive(rank)
