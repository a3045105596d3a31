"""RecordIO files that MXNet reads (ImageRecordIter, MXIndexedRecordIO), written so
that a killed pack can resume.

NOTE: our own writer, because MXNet's (``mx.recordio.MXRecordIO``) truncates
the file when it opens it and cannot flush, so a resumed run could neither
append nor know how much of the file is safely on disk. The format is dmlc's
(dmlc-core ``recordio.h``): per record a magic word, a length word whose top
3 bits are a continuation flag, the payload, zero padding to 4 bytes. A payload
that contains the magic word at a 4-byte-aligned position is split there into
parts, exactly as dmlc's writer does, so readers never resynchronise inside an
image. ``tests/test_recordio.py`` checks our bytes equal MXNet's writer's.
"""
import os
import struct

from .common import VggError, read_lines

MAGIC = 0xCED7230A
# MXNet's IRHeader before each image (mx.recordio.pack): flag uint32, label float32,
# id uint64, id2 uint64; ``flag`` extra float32 labels follow when flag > 0.
IR_HEADER = struct.Struct("<IfQQ")
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LREC_MASK = (1 << 29) - 1


def _lrec(cflag, length):
    return struct.pack("<I", (cflag << 29) | length)


def encode_record(payload):
    """The bytes dmlc's RecordIOWriter::WriteRecord writes for one payload."""
    size = len(payload)
    if size >= 1 << 29:
        raise VggError("record of %d bytes is over RecordIO's 512 MiB limit" % size)
    parts, start, search = [], 0, 0
    aligned_end = size - size % 4
    while True:
        hit = payload.find(_MAGIC_BYTES, search, aligned_end)
        if hit < 0:
            break
        if hit % 4:  # only aligned occurrences are split
            search = hit + 1
            continue
        parts += [_MAGIC_BYTES, _lrec(1 if start == 0 else 2, hit - start), payload[start:hit]]
        start = search = hit + 4
    parts += [_MAGIC_BYTES, _lrec(3 if start else 0, size - start), payload[start:]]
    parts.append(b"\0" * (-size % 4))
    return b"".join(parts)


class RecordWriter:
    """Appends records to a .rec file; ``sync()`` makes everything written durable."""

    def __init__(self, path, resume_at=None):
        """Start a new file, or with ``resume_at`` truncate to that many bytes and append."""
        if not resume_at:
            self._file = open(path, "wb")
        else:
            self._file = open(path, "r+b")
            self._file.truncate(resume_at)
            self._file.seek(resume_at)
        self.path = path

    def tell(self):
        return self._file.tell()

    def write(self, payload):
        """Write one record; returns its byte offset (what .idx files store)."""
        offset = self._file.tell()
        self._file.write(encode_record(payload))
        return offset

    def sync(self):
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_record_at(handle, offset):
    """(payload, next_offset) of the record starting at ``offset`` of an open .rec file
    (a binary file object, or a descriptor read with pread: safe across threads and
    forked processes). A record split at the magic word is joined.

    Raises VggError when the bytes there are not a whole record.
    """
    if isinstance(handle, int):
        def read(count, at):
            return os.pread(handle, count, at)
    else:
        def read(count, at):
            handle.seek(at)
            return handle.read(count)
    chunks, position = [], offset
    while True:
        head = read(8, position)
        if len(head) < 8:
            raise VggError("truncated record at byte %d" % position)
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise VggError("no record starts at byte %d (bad magic number)" % position)
        cflag, length = lrec >> 29, lrec & _LREC_MASK
        data = read(length, position + 8)
        if len(data) < length:
            raise VggError("truncated record at byte %d" % position)
        position += 8 + length + (-length % 4)
        chunks.append(data)
        if cflag in (0, 3):
            return (_MAGIC_BYTES.join(chunks), position)
        if cflag not in (1, 2):
            raise VggError("bad continuation flag at byte %d" % position)


def read_index(path):
    """[(key, offset)] from a .idx file (``key<TAB>offset`` lines), in file order."""
    entries = []
    for number, line in enumerate(read_lines(path, "record index"), 1):
        fields = line.split()
        if len(fields) != 2 or not all(v.isdigit() for v in fields):
            raise VggError("%s line %d is not 'key<TAB>offset': %r"
                           % (path, number, line.strip()[:60]))
        key, offset = int(fields[0]), int(fields[1])
        if key >= 2 ** 63 or offset >= 2 ** 63:  # numpy's int64 (fuzzing, #28)
            raise VggError("%s line %d: %s is too large for a record key or offset"
                           % (path, number, max(fields, key=len)[:30]))
        entries.append((key, offset))
    return entries
