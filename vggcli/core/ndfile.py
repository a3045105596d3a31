"""Checks MXNet's NDArray file format (``mx.nd.save``: ``.params``, ``optimizer.nd``)
before MXNet reads it.

Our own reader, because MXNet trusts the sizes a file declares: a damaged or
hostile header makes ``mx.nd.load`` try a huge allocation (a std::vector error,
or the process killed for memory) instead of saying the file is damaged. The walk
below reads only headers, checks every declared size against the bytes that are
really there, and never allocates from a declared size.

Layout (MXNet 1.x, src/ndarray/ndarray.cc): uint64 0x112, uint64 0, uint64 N,
N arrays, uint64 K, K names (uint64 length + bytes). An array: uint32 magic
(V2 0xF993FAC9, V3 0xF993FACA), int32 storage type (0 dense), uint32 ndim,
int64 dims, int32 device type, int32 device id, int32 dtype flag, raw data.
"""
import math
import os
import struct
import tokenize
import zipfile
import zlib

from .errors import VggError

LIST_MAGIC = 0x112
ARRAY_MAGICS = (0xF993FAC9, 0xF993FACA)
ITEM_BYTES = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 8: 2, 9: 2, 10: 4, 11: 8,
              12: 2}  # mshadow type flag -> bytes per element
MAX_NDIM = 32


class _Damaged(Exception):
    pass


class _Reader:
    def __init__(self, f, size):
        self.f, self.left = f, size

    def take(self, fmt):
        width = struct.calcsize(fmt)
        if width > self.left:
            raise _Damaged("it ends inside a header (truncated)")
        self.left -= width
        return struct.unpack(fmt, self.f.read(width))

    def skip(self, count, what):
        if count > self.left:
            raise _Damaged("%s declares %d bytes but only %d remain (truncated or damaged)"
                           % (what, count, self.left))
        self.f.seek(count, os.SEEK_CUR)
        self.left -= count


# What numpy raises on a damaged .npy or .npz (found by fuzzing, #28): its header is a
# Python literal (parsed with tokenize and ast), its archive is zipfile's and zlib's.
NUMPY_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, SyntaxError,
                     tokenize.TokenError, zipfile.BadZipFile, zlib.error,
                     NotImplementedError, OverflowError, MemoryError)


def _array(reader, index):
    magic, stype = reader.take("<Ii")
    if magic not in ARRAY_MAGICS:
        raise _Damaged("array %d has no array header (bad magic %#x)" % (index, magic))
    if stype != 0:
        raise _Damaged("array %d is sparse (storage type %d); vgg files hold dense arrays"
                       % (index, stype))
    (ndim,) = reader.take("<I")
    if ndim > MAX_NDIM:
        raise _Damaged("array %d declares %d dimensions" % (index, ndim))
    if ndim == 0:
        return
    dims = reader.take("<%dq" % ndim)
    if any(d < 0 for d in dims):
        raise _Damaged("array %d has a negative dimension %s" % (index, list(dims)))
    _, _, flag = reader.take("<iii")
    if flag not in ITEM_BYTES:
        raise _Damaged("array %d has an unknown element type %d" % (index, flag))
    reader.skip(math.prod(dims) * ITEM_BYTES[flag], "array %d of shape %s" % (index, list(dims)))


def check(path):
    """Raise a one-line VggError naming ``path`` unless it is a whole NDArray file."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            reader = _Reader(f, size)
            magic, _ = reader.take("<QQ")
            if magic != LIST_MAGIC:
                raise _Damaged("it is not an MXNet parameter file (no NDArray list header)")
            (count,) = reader.take("<Q")
            if count * 20 > reader.left:  # 20 bytes: the smallest array header
                raise _Damaged("it declares %d arrays, more than its size allows" % count)
            for index in range(count):
                _array(reader, index)
            (names,) = reader.take("<Q")
            if names not in (0, count):
                raise _Damaged("it has %d names for %d arrays" % (names, count))
            for index in range(names):
                (length,) = reader.take("<Q")
                reader.skip(length, "name %d" % index)
            if reader.left:
                raise _Damaged("%d bytes follow its last array name" % reader.left)
    except _Damaged as reason:
        raise VggError("%s is damaged: %s" % (path, reason)) from None
    except OSError as err:
        raise VggError("cannot read %s: %s" % (path, err.strerror or err)) from None


def mxnet_reason(err):
    """The meaningful line of an MXNetError (its text starts with a C++ traceback):
    the last line, without the 'Check failed: <expression>:' prefix."""
    import re
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown MXNet error"
    found = re.search(r"Check failed: .*?: (?!:)(.*)$", last)
    return (found.group(1) if found else last.split("MXNetError: ")[-1]).strip()


def load(path, what="params file"):
    """``mx.nd.load`` of a file checked first; any failure is a one-line VggError."""
    import mxnet as mx
    if not os.path.isfile(path):
        raise VggError("%s %s does not exist or is not a file" % (what, path))
    check(path)
    try:
        return mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise VggError("cannot read %s %s: %s" % (what, path, mxnet_reason(err))) from None
    except UnicodeDecodeError:  # MXNet decodes the array names as UTF-8 (fuzzing, #28)
        raise VggError("cannot read %s %s: an array name is not text (the file is damaged)"
                       % (what, path)) from None


def save(path, arrays, shown=None):
    """``mx.nd.save``; a failed write (a full disk, a read-only folder) becomes a
    one-line error naming ``shown`` (the final name of a temporary ``path``)
    instead of MXNet's C++ traceback."""
    import mxnet as mx

    from .errors import VggRuntimeError
    try:
        mx.nd.save(path, arrays)
    except mx.base.MXNetError as err:
        raise VggRuntimeError("cannot write %s: %s (a full disk, a quota or a file-size "
                              "limit?)" % (shown or path, mxnet_reason(err))) from None


def save_npz(file, **arrays):
    """``np.savez``'s layout with every entry dated 1980-01-01: the same arrays give the
    same bytes (np.savez stamps each entry with the time of writing)."""
    import numpy as np
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def load_npy(path, ndim, kinds, mmap=False):
    """A numeric .npy of ``ndim`` dimensions (no pickles), else a one-line VggError."""
    import numpy as np
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except NUMPY_READ_ERRORS as err:
        from data_tools.common import first_line
        raise VggError("%s is damaged or not a plain array file: %s" % (path, first_line(err))) \
            from None
    if array.ndim != ndim or array.dtype.kind not in kinds:
        raise VggError("%s holds a %d-D %s array; a %d-D %s array was expected"
                       % (path, array.ndim, array.dtype, ndim,
                          "float" if kinds == "f" else "integer"))
    return array
