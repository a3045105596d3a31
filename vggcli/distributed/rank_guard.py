"""``python -m vggcli.distributed.rank_guard --timeout T -- COMMAND``: a remote rank of ``vgg launch
--launcher ssh``, ended when its launcher is gone.

NOTE: ours, as neither ssh nor ps-lite does it. ssh without a terminal does not
signal the remote command when the connection closes, and ps-lite's nodes wait for
their peers forever, so a stopped or killed launcher (or a cut link) left ranks
running on every other host. The launcher writes a heartbeat byte to this
process's stdin (the ssh channel) every ``HEARTBEAT_S`` seconds; at end of file (the
ssh client is gone: the launcher stopped or was killed) or after ``--timeout``
seconds without a byte (the link is down, which TCP may not notice for hours) the
rank's process group gets SIGTERM, then SIGKILL after a grace period.
"""
import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
import time

HEARTBEAT_S = 2.0
GRACE_S = 3.0


def _watch_stdin(beats, closed):
    """Each byte read is a heartbeat; end of file (or an error) closes."""
    while True:
        try:
            data = os.read(0, 64)
        except OSError:
            data = b""
        if not data:
            closed.set()
            return
        beats[0] = time.monotonic()


def _stop(child):
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def guard(command, timeout, out=sys.stderr):
    """Run ``command`` in its own process group until it exits (its status is ours) or
    the launcher is gone (then 255 - the status ssh itself uses for its failures)."""
    from ..core.processes import die_with_parent  # the rank dies with this guard, even by SIGKILL
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=functools.partial(die_with_parent, os.getpid()))
    beats, closed = [time.monotonic()], threading.Event()
    threading.Thread(target=_watch_stdin, args=(beats, closed), daemon=True).start()
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    while child.poll() is None:
        silent = time.monotonic() - beats[0]
        if closed.is_set() or silent > timeout or stopping:
            why = ("stopped by signal %d" % stopping[0] if stopping else
                   "its launcher closed the connection" if closed.is_set() else
                   "no heartbeat from its launcher for %.0f s" % silent)
            out.write("rank_guard: stopping the rank (pid %d): %s\n" % (child.pid, why))
            out.flush()
            _stop(child)
            return 255
        time.sleep(0.2)
    code = child.returncode
    return 128 - code if code < 0 else code


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vggcli.distributed.rank_guard")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    return guard(command, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
