"""The ssh side of ``vgg launch --launcher ssh``: where the scheduler is reached, how
each remote rank is started and guarded, what ssh's failures mean, and the checks
every host passes before a long run.

The user's ssh configuration and known_hosts decide who is trusted: nothing here
overrides host-key checking (ps-lite servers unpickle what workers send them, so a
host posing as another would run code), and BatchMode turns every question ssh
would ask into a failure this module names.
"""
import fcntl
import json
import os
import shlex
import socket
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from ..core.errors import VggError

KEEPALIVE_S, KEEPALIVE_COUNT = 5, 3
# a host silent this long ends the job (ssh's keepalives), and its ranks stop
# themselves after as long without the launcher's heartbeat (rank_guard)
ANSWER_S = KEEPALIVE_S * KEEPALIVE_COUNT
# LogLevel INFO: ssh says "Timeout, server ... not responding" at INFO only, and a
# quieter user config would leave a cut-off host's failure unexplained
SSH_OPTIONS = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=INFO",
               "-o", "ServerAliveInterval=%d" % KEEPALIVE_S,
               "-o", "ServerAliveCountMax=%d" % KEEPALIVE_COUNT]
CHECK_TIMEOUT_S = 120


def ssh_argv(host, remote, ssh_config=None):
    return ["ssh"] + (["-F", ssh_config] if ssh_config else []) + SSH_OPTIONS + [host, remote]


def interface_address(interface):
    """The IPv4 address of a network interface of this machine (SIOCGIFADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                 struct.pack("256s", interface.encode()[:15]))
        except OSError:
            names = ", ".join(name for _, name in socket.if_nameindex())
            raise VggError("--interface %s: this machine has no such interface with an "
                           "IPv4 address (it has: %s)" % (interface, names)) from None
    return socket.inet_ntoa(packed[20:24])


def ssh_hostname(host, ssh_config=None):
    """The address ssh connects to for ``host`` (its config's HostName), without
    connecting."""
    argv = ["ssh"] + (["-F", ssh_config] if ssh_config else []) + ["-G", host]
    try:
        shown = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return host
    for line in shown.splitlines():
        if line.startswith("hostname "):
            return line.split(None, 1)[1].strip()
    return host


def route_address(host, ssh_config=None):
    """This machine's address on the route to ``host`` (a UDP connect sends nothing)."""
    name = ssh_hostname(host, ssh_config)
    try:
        target = socket.getaddrinfo(name, 22, socket.AF_INET)[0][4][0]
    except (socket.gaierror, IndexError):
        raise VggError("host %s: cannot resolve %s to an IPv4 address; give --interface"
                       % (host, name)) from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((target, 22))
        return sock.getsockname()[0]


def scheduler_address(interface, hosts, ssh_config=None):
    """(address, why): the IPv4 address remote ranks reach the scheduler at, from
    ``--interface`` or from the route to the first host that is not this machine.
    NOTE: not gethostbyname(gethostname()), which is 127.0.1.1 on stock Debian/Ubuntu."""
    if interface:
        return interface_address(interface), "--interface %s" % interface
    for host in hosts:
        address = route_address(host, ssh_config)
        if not address.startswith("127."):
            return address, "the route to %s" % host
    return "127.0.0.1", "every host is this machine"


def remote_command(command, env, cwd=None):
    """The shell line ssh runs on a host: the same folder (shared storage), the job's
    environment, and the rank under rank_guard (see there)."""
    exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
    guarded = [sys.executable, "-m", "vggcli.distributed.rank_guard", "--timeout",
               str(ANSWER_S), "--"]
    return "cd %s && exec env %s %s" % (shlex.quote(cwd or os.getcwd()), exports,
                                        " ".join(shlex.quote(c) for c in guarded + command))


def explain(host, code, lines):
    """One phrase for an ssh failure (exit 255) from what ssh printed; None if not ssh's."""
    text = "\n".join(lines)
    if code == 127:
        return ("the command was not found on host %s: the project and its Python must be "
                "at the same path on every host (shared storage)" % host)
    if code != 255:
        return None
    known = [
        ("REMOTE HOST IDENTIFICATION HAS CHANGED",
         "host %s: its ssh host key is not the one known_hosts holds (reinstalled, or a "
         "host posing as it); check it, then update known_hosts (ssh-keygen -R)"),
        ("Host key verification failed",
         "host %s is not in known_hosts, and ssh does not ask (BatchMode): connect once "
         "by hand or add its key (ssh-keyscan) after checking it"),
        ("Permission denied", "host %s refused the login: no key it accepts (ssh runs in "
                              "BatchMode: no password prompts)"),
        ("Could not resolve hostname", "host %s: ssh cannot resolve its name"),
        ("not responding", "host %%s stopped answering (no reply to ssh keepalives for %d s)"
         % ANSWER_S),
        ("timed out", "host %s cannot be reached (ssh connection timed out)"),
        ("No route to host", "host %s cannot be reached (no route)"),
        ("Connection refused", "host %s refused ssh connections (no sshd listening?)"),
        ("closed by remote host", "host %s closed the ssh connection"),
    ]
    for needle, message in known:
        if needle in text:
            return message % host
    return None


def data_option(command):
    """The ``--data`` folder of a ``vgg train`` command, if it has one."""
    for i, arg in enumerate(command):
        if arg == "--data" and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith("--data="):
            return arg.split("=", 1)[1]
    return None


def _check_host(host, data, ssh_config):
    argv = [sys.executable, "-m", "vggcli.distributed.host_check"] + (
        ["--data", data] if data else [])
    remote = "cd %s && %s" % (shlex.quote(os.getcwd()), " ".join(shlex.quote(a) for a in argv))
    try:
        done = subprocess.run(ssh_argv(host, remote, ssh_config), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return host, None, "host %s did not answer the check in %d s" % (host, CHECK_TIMEOUT_S)
    if done.returncode != 0:
        lines = (done.stderr + done.stdout).strip().splitlines()
        why = explain(host, done.returncode, lines) or "host %s: the check failed (%s)" % (
            host, lines[-1] if lines else "exit status %d" % done.returncode)
        return host, None, why
    try:
        return host, json.loads(done.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return host, None, "host %s: the check printed no answer" % host


def check_hosts(hosts, command, ssh_config=None, out=sys.stdout):
    """Before any rank starts: every host answers over ssh (known host key, key login)
    and runs the same vgg and Python and sees the same data as this machine; else a
    VggError naming the first host that does not."""
    from .host_check import differences, fingerprint

    data = data_option(command)
    here = fingerprint(data)
    if data and "error" in here["data"]:
        raise VggError("--data: cannot read it here: %s" % here["data"]["error"])
    unique = list(dict.fromkeys(hosts))
    with ThreadPoolExecutor(max_workers=min(16, len(unique))) as pool:
        answers = list(pool.map(lambda h: _check_host(h, data, ssh_config), unique))
    for host, there, failure in answers:
        if failure:
            raise VggError(failure + "; nothing was started")
        differ = differences(here, there)
        if differ:
            raise VggError("host %s differs from this machine: %s; every host must run the "
                           "same toolkit and see the same data (shared storage); nothing was "
                           "started" % (host, "; ".join(differ)))
    out.write("[launch] %d host%s checked: vgg %s, Python %s%s\n" % (
        len(unique), "s" if len(unique) > 1 else "", here["version"], here["python"],
        ", the same %s" % data if data else ""))
