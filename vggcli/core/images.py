"""Image decoding for every test-time reader: the bytes of a file or a record to an
RGB array, with the size the header declares checked against the pixel limit before
anything is decoded."""
import os

import numpy as np

from .errors import VggError


def decode(path):
    """An RGB uint8 image, or VggError saying why not (not a regular file, unreadable,
    not an image). The bytes are read by Python, so any file name works (OpenCV's own
    reader crashed on names that are not UTF-8) and a FIFO is never opened."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise VggError("not a regular file")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise VggError("cannot read: %s" % err.strerror) from None
    return decode_bytes(data)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C4, C8 and CC are other segments)
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_size(view):
    """(width, height) a PNG or JPEG header declares, or None for another format or a
    header we cannot follow. Our own few lines because Pillow's header parse costs
    more than OpenCV's whole decode of a small image (a training-throughput cost)."""
    if len(view) >= 24 and bytes(view[:8]) == PNG_SIGNATURE and bytes(view[12:16]) == b"IHDR":
        return int.from_bytes(view[16:20], "big"), int.from_bytes(view[20:24], "big")
    if len(view) < 4 or view[0] != 0xFF or view[1] != 0xD8:
        return None
    pos = 2
    while pos + 4 <= len(view):
        if view[pos] != 0xFF:
            return None
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or scan data before any frame header
            return None
        length = int.from_bytes(view[pos + 2:pos + 4], "big")
        if marker in JPEG_FRAMES:
            if pos + 9 > len(view):
                return None
            return (int.from_bytes(view[pos + 7:pos + 9], "big"),
                    int.from_bytes(view[pos + 5:pos + 7], "big"))
        if length < 2:
            return None
        pos += 2 + length
    return None


def decode_bytes(data, offset=0):
    """An RGB uint8 image from encoded bytes, or VggError: the size its header declares
    is checked against the pixel limit before anything is decoded (an image bomb
    would make OpenCV allocate gigabytes)."""
    import io

    import cv2
    from PIL import Image

    from data_tools.common import check_declared_size
    size = declared_size(memoryview(data)[offset:])
    if size is None:  # not PNG or JPEG: Pillow reads the header
        try:
            with Image.open(io.BytesIO(memoryview(data)[offset:])) as header:
                size = header.size
        except Image.DecompressionBombError:  # Pillow's limit (the vgg command lifts it)
            raise VggError("cannot decode: it declares more pixels than Pillow's limit "
                           "(Image.MAX_IMAGE_PIXELS)") from None
        except Exception:  # a format Pillow does not know: OpenCV's own limit still applies
            size = (0, 0)
    width, height = size
    check_declared_size(width, height)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8, offset=offset), cv2.IMREAD_COLOR)
    except cv2.error as err:
        reason = "it declares more pixels than the limit (vgg --max-pixels)" if \
            "MAX_IMAGE_PIXELS" in str(err) else str(err).strip().splitlines()[-1]
        raise VggError("cannot decode: %s" % reason) from None
    if image is None:
        raise VggError("cannot decode")
    return image[:, :, ::-1]
