"""What data_tools and vggcli share, with no dependency beyond the standard library:
the error types the CLI turns into one-line messages, the core count, and the one
way every output file is written (a temporary name beside it, renamed when
complete)."""
import contextlib
import os
import shutil


class VggError(Exception):
    """Bad input from the user: a file, an option, a dataset. Exit code 2."""

    exit_code = 2


class VggRuntimeError(VggError):
    """Work that started but could not finish (diverged, killed peer...). Exit code 1."""

    exit_code = 1


def available_cores():
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def temporary_name(path):
    """The temporary name beside ``path`` that an atomic write uses (one convention)."""
    head, tail = os.path.split(os.path.abspath(path))
    return os.path.join(head, ".%s.tmp-%d" % (tail, os.getpid()))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_output(path, folder=False):
    """Yield a temporary path beside ``path`` (an empty folder when ``folder``); when
    the block completes it replaces ``path``, on any error it is removed, so a reader
    never sees a partial output under the final name."""
    tmp = temporary_name(path)
    _remove(tmp)
    if folder:
        os.makedirs(tmp)
    try:
        yield tmp
        if folder and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)  # os.replace cannot replace a non-empty folder
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def scratch_folder(beside):
    """A temporary folder beside ``beside`` for intermediate files, always removed."""
    tmp = temporary_name(beside) + ".scratch"
    _remove(tmp)
    os.makedirs(tmp)
    try:
        yield tmp
    finally:
        _remove(tmp)


def write_text_atomic(path, text):
    """``text`` into ``path`` through atomic_output, on disk before the rename."""
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
