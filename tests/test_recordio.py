"""Our resumable RecordIO writer against MXNet's own writer and readers."""
import struct

import numpy as np
import pytest

import mxnet as mx

from data_tools.recordio import MAGIC, RecordWriter, encode_record, read_record_at
from vggcli.core.errors import VggError

MAGIC_BYTES = struct.pack("<I", MAGIC)


def _payloads():
    rng = np.random.RandomState(0)
    payloads = [b"", b"a", b"abcd", bytes(rng.randint(0, 256, 1001).astype(np.uint8))]
    # the magic word inside a payload, aligned (dmlc splits the record there) and not
    payloads.append(b"1234" + MAGIC_BYTES + b"tail")
    payloads.append(MAGIC_BYTES + b"xy" + MAGIC_BYTES + MAGIC_BYTES + b"z" * 7)
    payloads.append(b"12" + MAGIC_BYTES + b"34")
    payloads.append(MAGIC_BYTES)
    payloads.append(b"q" * 8 + MAGIC_BYTES)
    return payloads


def test_bytes_equal_mxnets_writer(tmp_path):
    ours, theirs = tmp_path / "ours.rec", tmp_path / "theirs.rec"
    with RecordWriter(str(ours)) as writer:
        offsets = [writer.write(p) for p in _payloads()]
    mx_writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / "theirs.idx"), str(theirs), "w")
    for key, payload in enumerate(_payloads()):
        mx_writer.write_idx(key, payload)
    mx_writer.close()
    assert ours.read_bytes() == theirs.read_bytes()
    mx_offsets = [int(line.split()[1]) for line in
                  (tmp_path / "theirs.idx").read_text().splitlines()]
    assert offsets == mx_offsets


def test_mxnet_reads_our_records_and_we_read_theirs(tmp_path):
    path = tmp_path / "r.rec"
    with RecordWriter(str(path)) as writer:
        for payload in _payloads():
            writer.write(payload)
    reader = mx.recordio.MXRecordIO(str(path), "r")
    assert [reader.read() for _ in _payloads()] == _payloads()
    assert reader.read() is None
    with open(path, "rb") as handle:
        offset, found = 0, []
        for _ in _payloads():
            payload, offset = read_record_at(handle, offset)
            found.append(payload)
    assert found == _payloads() and offset == path.stat().st_size


def test_append_after_truncation_resumes_a_file(tmp_path):
    whole, resumed = tmp_path / "whole.rec", tmp_path / "resumed.rec"
    with RecordWriter(str(whole)) as writer:
        for payload in _payloads():
            writer.write(payload)
    with RecordWriter(str(resumed)) as writer:
        for payload in _payloads()[:5]:
            writer.write(payload)
        good = writer.tell()
        writer.write(b"garbage that a crash left behind")
    with RecordWriter(str(resumed), resume_at=good) as writer:
        for payload in _payloads()[5:]:
            writer.write(payload)
    assert resumed.read_bytes() == whole.read_bytes()


def test_damaged_bytes_are_reported(tmp_path):
    path = tmp_path / "t.rec"
    path.write_bytes(encode_record(b"x" * 100)[:50])
    with open(path, "rb") as handle, pytest.raises(VggError, match="truncated record at byte 0"):
        read_record_at(handle, 0)
    path.write_bytes(b"\0" * 16)
    with open(path, "rb") as handle, pytest.raises(VggError, match="bad magic"):
        read_record_at(handle, 0)
