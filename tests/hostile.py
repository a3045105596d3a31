"""Helpers of the hostile-input tests: run a command, assert it failed the way a user
should see (one 'Error: ' line, no traceback, no signal death, no hang) and that
every file in the folders involved is unchanged."""
import hashlib
import os
import subprocess
import sys

from click.testing import CliRunner

from vggcli.cli import cli


def snapshot(*folders):
    """{path: sha256} of every regular file below ``folders`` (FIFOs are not read)."""
    import stat
    sums = {}
    for folder in folders:
        for root, _, files in os.walk(os.fsencode(str(folder))):
            for name in files:
                path = os.path.join(root, name)
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    sums[path] = "special"
                    continue
                with open(path, "rb") as f:
                    sums[path] = hashlib.sha256(f.read()).hexdigest()
    return sums


def _one_error(output, code, returncode, expect):
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert returncode == code, output[-3000:]
    assert len(errors) == 1 and expect in errors[0], output[-3000:]
    assert "Traceback" not in output
    return errors[0]


def refused(args, *folders, expect, code=2):
    """Run ``vgg args`` in this process; assert exit ``code``, exactly one 'Error: ' line
    holding ``expect``, no traceback, and every file in ``folders`` unchanged."""
    before = snapshot(*folders)
    result = CliRunner().invoke(cli, [str(a) for a in args])
    message = _one_error(result.output, code, result.exit_code, expect)
    assert snapshot(*folders) == before
    return message


def refused_in_subprocess(args, *folders, expect, code=2, preexec_fn=None, timeout=300):
    """``refused`` for a separate process (for a resource limit, a signal, a name that
    is not UTF-8): a signal death shows as a negative exit status and fails here."""
    before = snapshot(*folders)
    done = subprocess.run([sys.executable, "-m", "vggcli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec_fn)
    message = _one_error(done.stdout + done.stderr, code, done.returncode, expect)
    assert snapshot(*folders) == before
    return message


def eval_output(params, digits, out, limit):
    """``out``, written by ``vgg eval`` on the first ``limit`` digits val images: an
    eval folder for the tests to refuse to overwrite, fuse or damage."""
    result = CliRunner().invoke(cli, ["eval", "--params", params, "--data",
                                      os.path.join(digits, "val.rec"), "--limit", str(limit),
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def file_size_limit(limit):
    """A preexec_fn: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored), as
    they would on a full disk. NOTE: a full file system cannot be mounted without root
    in CI; RLIMIT_FSIZE makes the kernel fail the same write() calls, with EFBIG for
    ENOSPC, and posix_fallocate fails the same way."""
    def apply():
        import resource
        import signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return apply


# --- processes: what a killed or stopped command leaves running ---

def alive(pid):
    """Whether process ``pid`` runs (a zombie has ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid):
    """Every process below ``pid`` (children, their children, ...)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found
