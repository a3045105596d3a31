"""``vgg launch``: run a command on MXNet's distributed KVStore (ps-lite ``dist_sync``).

The job is MXNet's own: one scheduler, S servers and W workers, all running the
same command, their roles given by dmlc-core's tracker environment
(``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``/``PORT``, ``DMLC_NUM_WORKER``/``SERVER``);
``import mxnet`` turns the scheduler and server processes into ps-lite nodes.

NOTE: the processes are started here rather than through
``mxnet/tools/launch.py``, which crashes on Python 3.11 (``Thread.isAlive``),
keeps no handle on its processes and so can neither stop a job when one rank
dies nor leave no orphans. What is ours is only that supervision: every rank's
output streamed with a ``[worker 0]`` prefix, and a watchdog that stops every
process of the job when one fails (a dead worker otherwise leaves its peers,
the servers and the scheduler blocked forever, silently).

Local mode binds every ps-lite node to 127.0.0.1: nothing listens on a public
interface (servers unpickle what workers send them). ssh mode (``launch_ssh``) runs
the scheduler here and each server and worker on a host over ssh, under
``rank_guard``, after checking every host.
"""
import collections
import functools
import os
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time

from ..core.errors import VggError, VggRuntimeError
from ..core.processes import catch_stop_signals, die_with_parent, vgg_argv

LOOPBACK = "127.0.0.1"


def free_port(host=LOOPBACK):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_hosts(path):
    if not os.path.isfile(path):
        raise VggError("host file %s does not exist" % path)
    with open(path) as f:
        hosts = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    if not hosts:
        raise VggError("host file %s lists no hosts" % path)
    return hosts


class Job:
    """The processes of one distributed job, supervised."""

    def __init__(self, command, workers, servers, launcher="local", hosts=None,
                 scheduler_host=LOOPBACK, interface=None, env=None, out=sys.stdout,
                 ssh_config=None):
        if workers < 1 or servers < 1:
            raise VggError("need at least one worker and one server")
        if launcher == "ssh" and not hosts:
            raise VggError("--launcher ssh needs --hosts FILE")
        self.command, self.out = list(command), out
        self.port = free_port(scheduler_host if launcher == "local" else "")
        self.base_env = dict(os.environ, **(env or {}))
        self.base_env.update(DMLC_PS_ROOT_URI=scheduler_host, DMLC_PS_ROOT_PORT=str(self.port),
                             DMLC_NUM_WORKER=str(workers), DMLC_NUM_SERVER=str(servers),
                             PYTHONUNBUFFERED="1")
        if launcher == "local":
            self.base_env.update(DMLC_NODE_HOST=LOOPBACK, DMLC_INTERFACE="lo")
        # one machine shared by every process: split its cores instead of
        # oversubscribing them (unless the user chose a thread count)
        self.threads = {}
        if launcher == "local" and "OMP_NUM_THREADS" not in os.environ:
            from ..core.env import available_cores
            self.threads = dict(worker=str(max(1, available_cores() // workers)),
                                server="1", scheduler="1")
        if launcher == "ssh" and interface:
            self.base_env["DMLC_INTERFACE"] = interface
        self.launcher, self.hosts, self.ssh_config = launcher, hosts or [], ssh_config
        # every process of the job carries it (the cluster test finds them by it)
        self.base_env.setdefault("VGG_JOB_ID", "%d-%d" % (os.getpid(), time.time_ns()))
        self.where = {}  # name -> host, for the ranks started over ssh
        self.tails = {}  # name -> its last lines, to explain an ssh failure
        self.stopped = threading.Event()  # the job is over: the heartbeat ends
        self.roles = [("scheduler", 0)] + [("server", i) for i in range(servers)] + \
            [("worker", i) for i in range(workers)]
        self.procs, self.failure, self.lock = {}, None, threading.Lock()
        self.spoken = set()  # processes that have printed a line (they are up)

    def _popen(self, name, role, index):
        env = dict(self.base_env, DMLC_ROLE=role)
        if role in self.threads:
            env["OMP_NUM_THREADS"] = self.threads[role]
        stdin = None
        if self.launcher == "ssh" and role != "scheduler":
            from .launch_ssh import remote_command, ssh_argv
            host = self.where[name] = self.hosts[index % len(self.hosts)]
            exports = {k: v for k, v in env.items() if k.startswith("DMLC_") or k in (
                "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "VGG_JOB_ID")}
            argv = ssh_argv(host, remote_command(self.command, exports), self.ssh_config)
            stdin = subprocess.PIPE  # the heartbeat the remote rank_guard waits for
        else:
            argv = self.command
        return subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=functools.partial(die_with_parent, os.getpid()))

    def _stream(self, name, proc):
        tail = self.tails.setdefault(name, collections.deque(maxlen=20))
        for line in iter(proc.stdout.readline, b""):
            self.spoken.add(name)
            text = line.decode(errors="replace")
            tail.append(text.rstrip("\n"))
            self.out.write("[%s] %s" % (name, text))
            self.out.flush()

    def _heartbeat(self):
        from .rank_guard import HEARTBEAT_S
        while not self.stopped.wait(HEARTBEAT_S):
            for name in self.where:
                proc = self.procs.get(name)
                try:
                    proc.stdin.write(b".")
                    proc.stdin.flush()
                except (AttributeError, OSError, ValueError):
                    pass  # ended: the supervising loop sees it

    def _fail(self, name, code, reason=None):
        with self.lock:
            if self.failure is None:
                self.failure = "%s %s%s" % (
                    name, "exited with status %s" % code if code != "none" else "failed",
                    " (%s)" % reason if reason else "")

    def _ended(self, name, code):
        """A process ended with a non-zero status: why, as the failure."""
        if name in self.where:
            from .launch_ssh import explain
            where = "%s (on %s)" % (name, self.where[name])
            why = explain(self.where[name], code, list(self.tails.get(name, ())))
            if why:
                return self._fail(where, "none", why)
            if 128 < code < 255:  # rank_guard's status for a rank killed by a signal
                return self._fail(where, code, "killed by signal %d" % (code - 128))
            return self._fail(where, code)
        self._fail(name, code, "killed by signal %d" % -code if code < 0 else None)

    def _what_was_stopped(self):
        if self.launcher != "ssh":
            return "every other process of the job was stopped"
        here = [n for n in self.procs if n not in self.where]
        remote = ["%s (%s)" % (n, h) for n, h in self.where.items()]
        return ("stopped here: %s; over ssh: %s, each of which stops within %d s of losing "
                "its launcher's connection or heartbeat" % (", ".join(here), ", ".join(remote),
                                                            _answer_s()))

    def stop(self, grace=5.0):
        """SIGTERM every process group of the job, SIGKILL what is left after ``grace``."""
        self._signal_groups(signal.SIGTERM)
        deadline = time.time() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        self._signal_groups(signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait()

    def _signal_groups(self, sig):
        """``sig`` to the process group of each of the job's processes still running."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def _start_all(self, streams):
        """Every process, a thread streaming each one's output (into ``streams``), and
        (ssh) the heartbeat, which runs until ``self.stopped`` is set."""
        if self.launcher == "ssh":
            threading.Thread(target=self._heartbeat, daemon=True).start()
        for role, index in self.roles:
            name = role if role == "scheduler" else "%s %d" % (role, index)
            proc = self._popen(name, role, index)
            self.procs[name] = proc
            self.out.write("[launch] started %s%s, pid %d\n" % (
                name, " on %s (ssh)" % self.where[name] if name in self.where else "",
                proc.pid))
            thread = threading.Thread(target=self._stream, args=(name, proc), daemon=True)
            thread.start()
            streams.append(thread)

    def run(self, start_timeout=300.0, finish_timeout=60.0):
        """Start everything, supervise, tear down; returns 0 or raises VggRuntimeError.

        A worker that has printed nothing ``start_timeout`` seconds after the start
        is taken as unable to reach the scheduler (ps-lite would wait forever).
        """
        streams = []
        # the launcher itself being stopped; SIGHUP too: a closed ssh session must not
        # leave the job running
        stopping, restore_signals = catch_stop_signals()
        try:
            self._start_all(streams)
            workers = {n: p for n, p in self.procs.items() if n.startswith("worker")}
            workers_done_at, started = None, time.time()
            while True:
                if stopping:
                    raise KeyboardInterrupt
                for name, proc in self.procs.items():
                    code = proc.poll()
                    if code not in (None, 0):
                        self._ended(name, code)
                silent = [n for n, p in workers.items()
                          if n not in self.spoken and p.poll() is None]
                if silent and time.time() - started > start_timeout:
                    self._fail(silent[0], "none", "no output %.0f s after start: it cannot "
                               "reach the scheduler at %s:%d?" % (
                                   start_timeout, self.base_env["DMLC_PS_ROOT_URI"], self.port))
                if self.failure:
                    break
                if all(p.poll() == 0 for p in workers.values()):
                    if workers_done_at is None:
                        workers_done_at = time.time()
                    if all(p.poll() == 0 for p in self.procs.values()):
                        break
                    if time.time() - workers_done_at > finish_timeout:
                        break  # workers finished; servers/scheduler are stopped below
                time.sleep(0.2)
        except KeyboardInterrupt:
            self._fail("launcher", "interrupted")
        finally:
            self.stop()
            restore_signals()
            self.stopped.set()
            for thread in streams:
                thread.join(timeout=2)
        if self.failure:
            raise VggRuntimeError("distributed job failed: %s; %s"
                                  % (self.failure, self._what_was_stopped()))
        return 0


def _answer_s():
    from .launch_ssh import ANSWER_S
    return ANSWER_S


def launch(command, workers, servers=None, launcher="local", hosts_file=None, interface=None,
           out=sys.stdout, start_timeout=300.0, ssh_config=None, check=True):
    """Run ``command`` as a ps-lite job; the command must use a ``dist_*`` kvstore.
    With ``launcher="ssh"`` every host is checked first (``launch_ssh.check_hosts``)."""
    if not command:
        raise VggError("give the command to run after --, e.g. vgg launch -n 2 -- vgg train "
                       "--kvstore dist_sync ...")
    if command[0] == "vgg":  # the same interpreter and package as this launcher
        command = vgg_argv(command[1:])
    if launcher not in ("local", "ssh"):
        raise VggError("launcher must be local or ssh, got %r" % launcher)
    if launcher == "local" and shutil.which(command[0]) is None:
        raise VggError("program %s not found (or not executable): nothing to launch"
                       % command[0])
    if ssh_config and not os.path.isfile(ssh_config):
        raise VggError("--ssh-config %s is not a file" % ssh_config)
    hosts = read_hosts(hosts_file) if hosts_file else None
    scheduler_host = LOOPBACK
    if launcher == "ssh" and hosts:
        from .launch_ssh import check_hosts, scheduler_address
        scheduler_host, why = scheduler_address(interface, hosts, ssh_config)
        if check:
            check_hosts(hosts, command, ssh_config, out=out)
    job = Job(command, workers, servers or workers, launcher=launcher, hosts=hosts,
              scheduler_host=scheduler_host, interface=interface, out=out, ssh_config=ssh_config)
    if launcher == "ssh" and hosts:
        out.write("[launch] scheduler at %s:%d (from %s)\n" % (scheduler_host, job.port, why))
    return job.run(start_timeout=start_timeout)
