"""What data_tools and vggcli share, with no dependency beyond the standard library:
the error types the CLI turns into one-line messages, the core count, and the
output policy every command that writes follows:

- an output folder is created if missing; one that exists is used only when it
  is empty or holds a previous vgg output of the same kind (a marker file says
  so), and then only with ``--overwrite`` (or ``--resume`` where that exists);
  an output file likewise only replaces a file vgg wrote as the same kind;
- an output never overlaps an input (equal to, inside, or containing it);
- everything is written under a temporary name beside the target and renamed
  when complete; on any error the temporary is removed.
"""
import contextlib
import errno
import json
import math
import os
import shutil
import tarfile
import zlib

MARKER = ".vgg-output.json"  # in every output folder: {"kind": ...}


class VggError(Exception):
    """Bad input from the user: a file, an option, a dataset. Exit code 2."""

    exit_code = 2


class VggRuntimeError(VggError):
    """Work that started but could not finish (diverged, killed peer...). Exit code 1."""

    exit_code = 1


# file-system errors that are the disk's or the path's, not a bug: one line, no traceback
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def file_system_error(err):
    """The one-line message and exit code for an OSError of the disk or the path
    (full, read-only, no permission, I/O error), else None (a bug: let it show)."""
    where = printable(err.filename) if getattr(err, "filename", None) is not None else \
        "a file"
    if isinstance(err, OSError) and err.errno == errno.EEXIST:  # a file where a folder goes
        return "cannot create the folder %s: a file of that name is in the way" % where, 2
    if isinstance(err, OSError) and err.errno == errno.ENOTDIR:
        return "cannot use %s: a part of the path is a file, not a folder" % where, 2
    if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
        return "cannot use %s: the name is too long for the file system" % where, 2
    if not isinstance(err, OSError) or err.errno not in NO_SPACE + NOT_WRITABLE + (errno.EIO,):
        return None
    what = os.strerror(err.errno)
    if err.errno in NO_SPACE:
        return "cannot write %s: %s (%s); nothing complete-looking was left" % (
            where, what, errno.errorcode[err.errno]), 1
    if err.errno == errno.EIO:
        return "input/output error on %s: the disk or file system is failing" % where, 1
    return "cannot write %s: %s" % (where, what), 2


def printable(path):
    """A path as text that can always be printed and stored: Linux names are bytes, and
    those that are not UTF-8 keep their odd bytes as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@contextlib.contextmanager
def naming(path):
    """Give an OSError raised inside without a file name (a failed flush or write)
    the name ``path``, so its message says where."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = path
        raise


# Pillow's decompression-bomb limit: images that declare more pixels are skipped
DEFAULT_MAX_PIXELS = 178956970
MAX_PIXELS_VARIABLE = "VGG_MAX_PIXELS"  # set by ``vgg --max-pixels``; pack workers inherit it


def max_pixels():
    try:
        return max(1, int(os.environ.get(MAX_PIXELS_VARIABLE, DEFAULT_MAX_PIXELS)))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def check_declared_size(width, height):
    """Refuse (with the reason) an image whose header declares more than the limit."""
    limit = max_pixels()
    if width * height > limit:
        raise VggError("declares %dx%d = %d pixels, over the limit of %d (vgg --max-pixels)"
                       % (width, height, width * height, limit))


def lift_pillow_limit():
    """Pillow's decompression-bomb limit off, in a process vgg owns (the command, pack's
    workers): our own limit (check_declared_size, vgg --max-pixels) applies instead. A
    library call leaves Pillow's limit as it is; there an image over it is refused too."""
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None


def available_cores():
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _within(inner, outer):
    return inner != outer and os.path.commonpath([inner, outer]) == outer


def check_overlap(path, inputs, option="--out"):
    """Refuse an output equal to, inside, or containing any of ``inputs``."""
    real = os.path.realpath(path)
    for given in inputs:
        if not given:
            continue
        other = os.path.realpath(given)
        if real == other or _within(real, other) or _within(other, real):
            raise VggError("%s %s overlaps the input %s: write the output elsewhere"
                           % (option, path, given))


def output_kind(folder):
    """The kind of vgg output ``folder`` holds (its marker), else None."""
    try:
        with open(os.path.join(folder, MARKER)) as f:
            kind = json.load(f).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def check_output(path, kind, inputs=(), overwrite=False, recognise=None, option="--out"):
    """The output policy, applied before any work (see the module docstring).

    ``path`` is a folder, or a file when ``recognise`` is given: a callable that
    says whether an existing file is a vgg output of this kind."""
    check_overlap(path, inputs, option)
    if not os.path.lexists(path):
        return
    if recognise is not None:
        if os.path.isdir(path) or not os.path.isfile(path):
            raise VggError("%s %s exists and is not a file" % (option, path))
        if not recognise(path):
            raise VggError("%s %s exists and is not a vgg %s output: vgg never replaces a "
                           "file it did not write; choose another %s" % (option, path, kind,
                                                                          option))
    else:
        if not os.path.isdir(path) or os.path.islink(path):
            raise VggError("%s %s exists and is not a folder" % (option, path))
        if not os.listdir(path):
            return
        found = output_kind(path)
        if found != kind:
            what = "a vgg %s output" % found if found else "files vgg did not write"
            raise VggError("%s %s holds %s: vgg never changes them; choose another %s"
                           % (option, path, what, option))
    if not overwrite:
        raise VggError("%s %s holds a previous vgg %s output: give --overwrite to replace it"
                       % (option, path, kind))


def mark_output(folder, kind):
    with open(os.path.join(folder, MARKER), "w") as f:
        json.dump({"kind": kind}, f)


def temporary_name(path):
    """The temporary name beside ``path`` that an atomic write uses (one convention)."""
    head, tail = os.path.split(os.path.abspath(path))
    return os.path.join(head, ".%s.tmp-%d" % (tail, os.getpid()))


def remove_stale_temporaries(path):
    """Temporaries beside ``path`` left by a killed run (its process is gone)."""
    import glob
    import re
    head, tail = os.path.split(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(head), ".%s.tmp-*" % glob.escape(tail))):
        found = re.match(r"\.tmp-(\d+)", stale[len(os.path.join(head, "." + tail)):])
        if not found or int(found.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            _remove(stale)
        except PermissionError:  # alive, another user's
            pass


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_output(path, folder=False, kind=None):
    """Yield a temporary path beside ``path`` (an empty folder when ``folder``, marked
    as a vgg output of ``kind``); when the block completes it replaces ``path``, on
    any error it is removed, so a reader never sees a partial output under the final
    name. A folder is replaced only when it is empty or marked with the same kind
    (``check_output`` has decided, before the work, that it may be)."""
    if folder and os.path.isdir(path) and os.listdir(path) and output_kind(path) != kind:
        raise VggError("%s holds files vgg did not write as a %s output: not replaced"
                       % (path, kind))
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    _remove(tmp)
    if folder:
        os.makedirs(tmp)
        if kind:
            mark_output(tmp, kind)
    try:
        with naming(path):
            yield tmp
        if folder and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)  # empty or our own output (checked above)
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


# --- reading files that may be damaged or hostile: one-line errors naming the file ---

def read_json(path, what, required=()):
    """A JSON object from ``path`` that has the ``required`` keys, else VggError."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise VggError("%s %s does not exist" % (what, printable(path))) from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise VggError("%s %s is damaged: %s" % (what, printable(path), first_line(err))) \
            from None
    if not isinstance(data, dict):
        raise VggError("%s %s is damaged: a JSON object expected, found %s"
                       % (what, printable(path), type(data).__name__))
    missing = [key for key in required if key not in data]
    if missing:
        raise VggError("%s %s is damaged or from another version: no %s"
                       % (what, printable(path), ", ".join(missing)))
    return data


def read_lines(path, what):
    """The lines of a UTF-8 text file, else VggError (binary garbage, unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, ValueError) as err:
        raise VggError("%s %s is not readable text: %s" % (what, printable(path),
                                                          first_line(err))) from None


def finite_number(value):
    """A real, finite int or float (not a bool): what a number read from JSON must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def first_line(err):
    """An exception's first line of text (its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# what reading a tar (gzip-compressed or not) raises for a damaged one
TAR_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def tar_reason(err):
    """tarfile's error in one line: opening with compression detection (mode "r:*")
    lists, on lines of their own, why each method it tried failed."""
    lines = str(err).strip().splitlines()
    methods = [line[len("- method "):] for line in lines[1:] if line.startswith("- method ")]
    if not methods:
        return first_line(err)
    return "neither compressed nor a plain tar (%s)" % "; ".join(methods)
