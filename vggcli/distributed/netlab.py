"""Several hosts on one machine, for ``make test-cluster`` and ``vgg bench cluster``.

Each host is a Linux network namespace with one interface (``eth0``, 10.77.0.1N/24)
on a bridge that lives in a namespace of its own, and an sshd that listens only
there with a temporary host key. Nothing is routed out: traffic stays inside the
namespaces made here. The ssh client side is a temporary key, known_hosts and
ssh_config (used through ``vgg launch --ssh-config``): nothing in ``~/.ssh`` is read
or written. The file system is the machine's, shared by every "host", as a
cluster's shared storage would be. Needs root, ``ip`` and an sshd (installed with
apt-get when missing).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

PREFIX = "vggc"
SUBNET = "10.77.0"
SSHD = "/usr/sbin/sshd"


def _run(argv, check=True, **kw):
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and done.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), (done.stderr or done.stdout).strip()))
    return done


def ensure_sshd():
    """None when an sshd is there (installed now if missing), else why not."""
    if os.path.exists(SSHD):
        return None
    if not shutil.which("apt-get"):
        return "no sshd at %s and no apt-get to install openssh-server" % SSHD
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = _run(["apt-get", "install", "-y", "-q", "openssh-server"], check=False, env=env)
    if done.returncode != 0:
        _run(["apt-get", "update", "-q"], check=False, env=env)
        done = _run(["apt-get", "install", "-y", "-q", "openssh-server"], check=False, env=env)
    return None if os.path.exists(SSHD) else "apt-get could not install openssh-server"


def unavailable():
    """Why a lab cannot be built here (a sentence), or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return "needs %s" % tool
    probe = "%sprobe%d" % (PREFIX, os.getpid())
    done = _run(["ip", "netns", "add", probe], check=False)
    if done.returncode != 0:
        return "cannot create a network namespace: %s" % done.stderr.strip()
    _run(["ip", "netns", "del", probe], check=False)
    return ensure_sshd()


def namespace_inode(name):
    return os.stat("/run/netns/%s" % name).st_ino


def _kill_namespace(name):
    pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _run(["ip", "netns", "del", name], check=False)


def remove_stale():
    """Namespaces of labs whose process is gone (a killed test run)."""
    for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        owner = name[len(PREFIX):].split("-")[0]
        if name.startswith(PREFIX) and owner.isdigit() and not os.path.exists(
                "/proc/%s" % owner):
            _kill_namespace(name)


class Lab:
    """``hosts`` hosts named h1..hN; use as a context manager (``down`` on exit)."""

    def __init__(self, hosts=3):
        self.names = ["h%d" % i for i in range(1, hosts + 1)]
        self.tag = "%s%d" % (PREFIX, os.getpid())
        self.bridge_ns = self.tag + "-net"
        self.work = tempfile.mkdtemp(prefix="vgg-netlab-")
        self.ssh_config = os.path.join(self.work, "ssh_config")
        self.known_hosts = os.path.join(self.work, "known_hosts")

    def namespace(self, host):
        return "%s-%s" % (self.tag, host)

    def address(self, host):
        return "%s.%d" % (SUBNET, 10 + self.names.index(host) + 1)

    def port(self, host):
        return "p%d" % (self.names.index(host) + 1)

    def exec_argv(self, host, argv):
        return ["ip", "netns", "exec", self.namespace(host)] + list(argv)

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        remove_stale()
        ns = self.bridge_ns
        _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", ns, "link", "set", "br0", "up"])
        for host in self.names:
            hns, port = self.namespace(host), self.port(host)
            _run(["ip", "netns", "add", hns])
            _run(["ip", "-n", hns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                  "netns", hns])
            _run(["ip", "-n", ns, "link", "set", port, "master", "br0", "up"])
            _run(["ip", "-n", hns, "addr", "add", self.address(host) + "/24", "dev", "eth0"])
            _run(["ip", "-n", hns, "link", "set", "eth0", "up"])
        self._keys()
        for host in self.names:
            self._start_sshd(host)
        self._wait_for_ssh()

    def _keys(self):
        key = os.path.join(self.work, "client_key")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        shutil.copy(key + ".pub", os.path.join(self.work, "authorized_keys"))
        lines = []
        for host in self.names:
            os.makedirs(os.path.join(self.work, host))
            lines.append("%s,%s %s" % (host, self.address(host), self._new_host_key(host)))
        with open(self.known_hosts, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(self.ssh_config, "w") as f:
            for host in self.names:
                f.write("Host %s\n  HostName %s\n" % (host, self.address(host)))
            f.write("Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n"
                    "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"
                    "  StrictHostKeyChecking yes\n  LogLevel ERROR\n" % (key, self.known_hosts))

    def _new_host_key(self, host):
        path = os.path.join(self.work, host, "host_key")
        for old in (path, path + ".pub"):
            if os.path.exists(old):
                os.remove(old)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path])
        with open(path + ".pub") as f:
            return " ".join(f.read().split()[:2])

    def _start_sshd(self, host):
        folder = os.path.join(self.work, host)
        config = os.path.join(folder, "sshd_config")
        with open(config, "w") as f:
            f.write("ListenAddress %s\nPort 22\nHostKey %s\nPidFile %s\n"
                    "AuthorizedKeysFile %s\nPermitRootLogin prohibit-password\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                    "StrictModes no\nMaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n" % (
                        self.address(host), os.path.join(folder, "host_key"),
                        os.path.join(folder, "sshd.pid"),
                        os.path.join(self.work, "authorized_keys")))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder
        _run(self.exec_argv(host, [SSHD, "-f", config, "-E", os.path.join(folder, "sshd.log")]))

    def _stop_sshd(self, host):
        pid_file = os.path.join(self.work, host, "sshd.pid")
        try:
            with open(pid_file) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        for _ in range(50):
            if not os.path.exists(pid_file):
                return
            time.sleep(0.1)

    def _wait_for_ssh(self, timeout=30):
        deadline = time.time() + timeout
        for host in self.names:
            while True:
                done = _run(self.exec_argv(self.names[0], [
                    "ssh", "-F", self.ssh_config, "-o", "BatchMode=yes", host, "true"]),
                    check=False)
                if done.returncode == 0:
                    break
                if time.time() > deadline:
                    raise RuntimeError("sshd on %s did not answer: %s" % (
                        host, done.stderr.strip()))
                time.sleep(0.3)

    def rekey(self, host):
        """A new host key for ``host`` (known_hosts keeps the old one): a changed host."""
        self._stop_sshd(host)
        self._new_host_key(host)
        self._start_sshd(host)

    def set_link(self, host, up):
        _run(["ip", "-n", self.bridge_ns, "link", "set", self.port(host),
              "up" if up else "down"])

    def shape(self, mbit):
        """Every host's link limited to ``mbit`` Mbit/s each way (tc tbf on both ends)."""
        for host in self.names:
            for ns, dev in ((self.bridge_ns, self.port(host)), (self.namespace(host), "eth0")):
                _run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root",
                      "tbf", "rate", "%dmbit" % mbit, "burst", "%dkb" % max(32, mbit // 8),
                      "latency", "20ms"])

    def bridge_bytes(self):
        """Bytes the bridge's ports have carried (received plus sent), all hosts."""
        shown = json.loads(_run(["ip", "-n", self.bridge_ns, "-s", "-j", "link", "show"]).stdout)
        return sum(link["stats64"]["rx"]["bytes"] + link["stats64"]["tx"]["bytes"]
                   for link in shown if link.get("ifname", "").startswith("p"))

    def processes(self, job_id):
        """{pid: (host or None, DMLC_ROLE, command line)} of the processes of a job, found
        by the VGG_JOB_ID every one of them carries."""
        hosts = {namespace_inode(self.namespace(h)): h for h in self.names}
        found = {}
        wanted = ("VGG_JOB_ID=%s" % job_id).encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
                if wanted not in env:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                inode = os.stat("/proc/%s/ns/net" % pid).st_ino
            except OSError:
                continue
            role = next((e.split(b"=", 1)[1].decode() for e in env
                         if e.startswith(b"DMLC_ROLE=")), None)
            found[int(pid)] = (hosts.get(inode), role, cmdline)
        return found

    def down(self):
        for host in self.names:
            self._stop_sshd(host)
        for host in self.names:
            _kill_namespace(self.namespace(host))
        _kill_namespace(self.bridge_ns)
        shutil.rmtree(self.work, ignore_errors=True)
