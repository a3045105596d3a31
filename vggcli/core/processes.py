"""Child processes of ours: the stop signals a supervisor acts on, the parent-death
signal that takes a child with its parent (even killed by SIGKILL), and the command
line that runs ``vgg`` again with this interpreter. Shared by ``launch``, its ranks'
guard, the study's runner and the benches."""
import os
import signal
import sys

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


def vgg_argv(argv):
    """The command line that runs ``vgg ARGV`` with this Python and this vgg."""
    return [sys.executable, "-m", "vggcli"] + list(argv)
