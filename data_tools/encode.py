"""Per-image work of a pack, run in worker processes (no MXNet import here).

Decoding goes through Pillow, which reads CMYK/greyscale JPEGs, PNGs named
.JPEG and the like, and refuses truncated files (OpenCV silently returns a
half-grey image for them). Big JPEGs are decoded at a reduced DCT scale
(``draft``) when the stored size allows it: most of the speed over im2rec.
"""
import io
import os
import stat

import numpy as np

from .common import first_line

_settings = {}
_handles = {}


class BadImage(Exception):
    pass


def init_worker(max_short_side, quality):
    """Pool initializer: settings, and one thread per worker (the pool is the parallelism)."""
    import cv2

    from .common import lift_pillow_limit
    cv2.setNumThreads(1)
    lift_pillow_limit()
    _settings.update(max_short_side=max_short_side, quality=quality)


def read_bytes(kind, container, offset, size):
    if kind == "file":
        # non-blocking: opening a FIFO must not wait for a writer; only regular files
        fd = os.open(container, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadImage("not a regular file (a FIFO, socket or device)")
            return f.read()
    handle = _handles.get(container)
    if handle is None:
        handle = _handles[container] = os.open(container, os.O_RDONLY)
    data = os.pread(handle, size, offset)
    if len(data) != size:
        raise BadImage("tar ends inside this member")
    return data


def target_size(width, height, max_short_side):
    """(width, height) after scaling the shorter side down to ``max_short_side``.

    Never upscales; ``max_short_side`` 0 keeps the size.
    """
    short = min(width, height)
    if not max_short_side or short <= max_short_side:
        return width, height
    scale = max_short_side / short
    if width <= height:
        return max_short_side, max(1, int(round(height * scale)))
    return max(1, int(round(width * scale))), max_short_side


def process_image(data, max_short_side, quality):
    """(payload JPEG bytes, (height, width), per-channel pixel sums, the source's
    (width, height)) or BadImage."""
    import cv2
    from PIL import Image

    from .common import VggError, check_declared_size
    if not data:
        raise BadImage("zero-byte file")
    try:
        image = Image.open(io.BytesIO(data))
        check_declared_size(*image.size)
        source_format, source_mode, source_size = image.format, image.mode, image.size
        width, height = target_size(image.width, image.height, max_short_side)
        if source_format == "JPEG" and (width, height) != image.size:
            # decode at 1/2, 1/4 or 1/8 scale if the result stays >= the target
            image.draft("RGB", (width, height))
        image = image.convert("RGB")  # decodes the whole file: raises if truncated
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, VggError) as err:
        raise BadImage(first_line(err)) from None
    pixels = np.asarray(image)
    if (pixels.shape[1], pixels.shape[0]) != (width, height):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    elif source_format == "JPEG" and source_mode == "RGB":
        # an RGB JPEG that needs no resize is stored untouched (no re-encoding loss)
        return data, pixels.shape[:2], pixels.reshape(-1, 3).sum(axis=0, dtype=np.uint64), \
            source_size
    try:
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(pixels[:, :, ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    except cv2.error as err:  # e.g. a side over JPEG's 65,500 pixels
        raise BadImage("cannot be stored as JPEG: %s" % _cv2_reason(err)) from None
    if not ok:
        raise BadImage("JPEG encoding failed")
    return encoded.tobytes(), pixels.shape[:2], \
        pixels.reshape(-1, 3).sum(axis=0, dtype=np.uint64), source_size


def _cv2_reason(err):
    """OpenCV's own sentence out of its multi-line error text."""
    text = str(err)
    found = first_line(text.split(") ")[-1] if ") " in text else text)
    return found.split(" in function ")[0].strip() or "OpenCV error"


def box_label(boxes, width, height):
    """(GluonCV detection label or None, clipped count, dropped count) for an image's
    boxes, cleaned against its decoded size (not a size an XML file declares)."""
    from .boxes import clean_boxes, detection_label
    kept, clipped, dropped = clean_boxes(boxes or [], width, height)
    return (detection_label(kept, width, height) if kept else None), clipped, dropped


def encode_task(task):
    """Worker entry: task = (position, label, kind, container, offset, size, ident, boxes);
    returns (position, label, ident, payload or None, reason, shape, sums, box label
    or None, (clipped, dropped))."""
    position, label, kind, container, offset, size, ident, boxes = task
    try:
        data = read_bytes(kind, container, offset, size)
        payload, shape, sums, (width, height) = process_image(
            data, _settings["max_short_side"], _settings["quality"])
    except BadImage as err:
        return position, label, ident, None, str(err), None, None, None, (0, 0)
    except OSError as err:  # unreadable source file
        return (position, label, ident, None, "cannot read: %s" % first_line(err), None, None,
                None, (0, 0))
    extra, clipped, dropped = box_label(boxes, width, height) if boxes else (None, 0, 0)
    return position, label, ident, payload, None, shape, sums, extra, (clipped, dropped)
