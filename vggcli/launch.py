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
interface (servers unpickle what workers send them).
"""
import functools
import os
import shlex
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time

from .errors import VggError, VggRuntimeError

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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def catch_stop_signals():
    """(the STOP_SIGNALS received from now on, a function that puts the previous handlers
    back). NOTE: a flag the supervising loop acts on, not an exception from the handler:
    one raised there is lost when the signal lands inside a finaliser (Popen.__del__:
    "Exception ignored"), and the job ran on."""
    received = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in STOP_SIGNALS}

    def restore():
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received, restore


def die_with_parent(launcher_pid):
    """In each job process before it runs: the kernel kills it if the launcher dies,
    even by SIGKILL, which no handler of the launcher's can see (Linux's parent-death
    signal; elsewhere the launcher's own handlers are all there is)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != launcher_pid:  # it died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):
        pass


class Job:
    """The processes of one distributed job, supervised."""

    def __init__(self, command, workers, servers, launcher="local", hosts=None,
                 scheduler_host=LOOPBACK, interface=None, env=None, out=sys.stdout):
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
            from ._env import available_cores
            self.threads = dict(worker=str(max(1, available_cores() // workers)),
                                server="1", scheduler="1")
        elif interface:
            self.base_env["DMLC_INTERFACE"] = interface
        self.launcher, self.hosts = launcher, hosts or []
        self.roles = [("scheduler", 0)] + [("server", i) for i in range(servers)] + \
            [("worker", i) for i in range(workers)]
        self.procs, self.failure, self.lock = {}, None, threading.Lock()
        self.spoken = set()  # processes that have printed a line (they are up)

    def _popen(self, role, index):
        env = dict(self.base_env, DMLC_ROLE=role)
        if role in self.threads:
            env["OMP_NUM_THREADS"] = self.threads[role]
        if self.launcher == "ssh" and role != "scheduler":
            host = self.hosts[index % len(self.hosts)]
            exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in env.items()
                               if k.startswith("DMLC_") or k in ("PYTHONUNBUFFERED",
                                                                 "OMP_NUM_THREADS"))
            remote = "cd %s && env %s %s" % (shlex.quote(os.getcwd()), exports,
                                             " ".join(shlex.quote(c) for c in self.command))
            argv = ["ssh", "-o", "StrictHostKeyChecking=no", host, remote]
        else:
            argv = self.command
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=functools.partial(die_with_parent, os.getpid()))

    def _stream(self, name, proc):
        for line in iter(proc.stdout.readline, b""):
            self.spoken.add(name)
            self.out.write("[%s] %s" % (name, line.decode(errors="replace")))
            self.out.flush()

    def _fail(self, name, code, reason=None):
        with self.lock:
            if self.failure is None:
                self.failure = "%s %s%s" % (
                    name, "exited with status %s" % code if code != "none" else "failed",
                    " (%s)" % reason if reason else "")

    def stop(self, grace=5.0):
        """SIGTERM every process group of the job, SIGKILL what is left after ``grace``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()

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
            for role, index in self.roles:
                name = role if role == "scheduler" else "%s %d" % (role, index)
                proc = self._popen(role, index)
                self.procs[name] = proc
                self.out.write("[launch] started %s, pid %d\n" % (name, proc.pid))
                thread = threading.Thread(target=self._stream, args=(name, proc), daemon=True)
                thread.start()
                streams.append(thread)
            workers = {n: p for n, p in self.procs.items() if n.startswith("worker")}
            workers_done_at, started = None, time.time()
            while True:
                if stopping:
                    raise KeyboardInterrupt
                for name, proc in self.procs.items():
                    code = proc.poll()
                    if code not in (None, 0):
                        reason = "killed by signal %d" % -code if code < 0 else None
                        self._fail(name, code, reason)
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
            for thread in streams:
                thread.join(timeout=2)
        if self.failure:
            raise VggRuntimeError("distributed job failed: %s; every other process of the "
                                  "job was stopped" % self.failure)
        return 0


def launch(command, workers, servers=None, launcher="local", hosts_file=None, interface=None,
           out=sys.stdout, start_timeout=300.0):
    """Run ``command`` as a ps-lite job; the command must use a ``dist_*`` kvstore."""
    if not command:
        raise VggError("give the command to run after --, e.g. vgg launch -n 2 -- vgg train "
                       "--kvstore dist_sync ...")
    if command[0] == "vgg":  # the same interpreter and package as this launcher
        command = [sys.executable, "-m", "vggcli"] + list(command[1:])
    if launcher not in ("local", "ssh"):
        raise VggError("launcher must be local or ssh, got %r" % launcher)
    if launcher == "local" and shutil.which(command[0]) is None:
        raise VggError("program %s not found (or not executable): nothing to launch"
                       % command[0])
    hosts = read_hosts(hosts_file) if hosts_file else None
    scheduler_host = LOOPBACK if launcher == "local" else socket.gethostbyname(
        socket.gethostname())
    job = Job(command, workers, servers or workers, launcher=launcher, hosts=hosts,
              scheduler_host=scheduler_host, interface=interface, out=out)
    return job.run(start_timeout=start_timeout)
