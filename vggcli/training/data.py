"""The paper's training and validation input (§3.1), from packed RecordIO.

Training, per image: isotropic rescale so the shorter side is S (fixed, or
drawn uniformly from [Smin, Smax] per image: "scale jittering"), one random
crop of the crop size, a random horizontal flip, and Krizhevsky's PCA colour
shift; the training-set mean RGB is subtracted.

Randomness is a pure function of (seed, epoch, image index): the same epoch
gives the same crops whatever the number of workers or devices, and a resumed
run sees exactly the images and augmentations an uninterrupted one would.

Workers return uint8 crops plus a per-image RGB offset (colour shift minus
mean), so a batch crosses processes at a quarter of the float32 size and the
float conversion happens on the training device.
"""
import os

import numpy as np

from data_tools.recordio import IR_HEADER, read_record_at

from ..core.errors import VggError

# Krizhevsky et al.'s PCA of ImageNet RGB pixels (0-255 scale), as used by
# fb.resnet.torch and GluonCV; columns of EIGVEC are the eigenvectors (R, G, B).
EIGVAL = np.array([55.46, 4.794, 1.148])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]])
PCA_STD = 0.1



MAX_SCALE = 4096  # S or Q above this rescales a 4:3 image past 22 M pixels per copy
MAX_RESCALED_SIDE = 2 * MAX_SCALE  # no rescaled image is longer (extreme aspect ratios)


class Scale:
    """Training scale S: fixed (``256``) or jittered (``256:512``)."""

    def __init__(self, low, high=None):
        self.low, self.high = int(low), int(high if high is not None else low)
        if self.low < 1 or self.high < self.low or self.high > MAX_SCALE:
            raise VggError("scale must be S or Smin:Smax with 0 < Smin <= Smax <= %d, got %s"
                           % (MAX_SCALE, self))

    @classmethod
    def parse(cls, text):
        parts = str(text).split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise VggError("scale must be S or Smin:Smax (integers), got %r" % (text,)) from None
        if len(values) not in (1, 2):
            raise VggError("scale must be S or Smin:Smax, got %r" % (text,))
        return cls(*values)

    @property
    def jittered(self):
        return self.high != self.low

    @property
    def test_scale(self):
        """Q for single-scale validation: S, or (Smin + Smax) / 2 for jittered S (§3.2)."""
        return (self.low + self.high) // 2

    def draw(self, rng):
        return self.low if not self.jittered else int(rng.integers(self.low, self.high + 1))

    def __str__(self):
        return str(self.low) if not self.jittered else "%d:%d" % (self.low, self.high)


def check_rescalable(image, side):
    """Refuse an image whose rescale to shorter side ``side`` would be longer than
    MAX_RESCALED_SIDE (an extreme aspect ratio: 16x12000 at 256 is 256x192000)."""
    h, w = image.shape[:2]
    longer = int(round(max(h, w) * side / max(1, min(h, w))))
    if longer > MAX_RESCALED_SIDE:
        raise VggError("its %dx%d pixels rescaled to %d would be %d long, over the %d-pixel "
                       "limit (extreme aspect ratio)" % (w, h, side, longer,
                                                         MAX_RESCALED_SIDE))


def rescale_shorter_side(image, side):
    """Isotropic rescale so that min(height, width) == side."""
    import cv2
    h, w = image.shape[:2]
    if min(h, w) == side:
        return image
    if h <= w:
        size = (max(side, int(round(w * side / h))), side)
    else:
        size = (side, max(side, int(round(h * side / w))))
    check_rescalable(image, side)
    shrinking = size[0] < w
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking
                      else cv2.INTER_LINEAR)


def random_crop_box(height, width, crop, rng):
    """(top, left) of a crop drawn uniformly inside the image."""
    if height < crop or width < crop:
        raise VggError("image of %dx%d is smaller than the %d crop" % (height, width, crop))
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


def center_crop_box(height, width, crop):
    if height < crop or width < crop:
        raise VggError("image of %dx%d is smaller than the %d crop" % (height, width, crop))
    return (height - crop) // 2, (width - crop) // 2


def pca_shift(rng, std=PCA_STD):
    """Krizhevsky's colour shift: EIGVEC @ (alpha * EIGVAL), alpha ~ N(0, std) per image."""
    alpha = rng.normal(0.0, std, size=3)
    return EIGVEC.dot(alpha * EIGVAL)


def image_rng(seed, epoch, index):
    """The random stream of one image in one epoch (independent of workers/devices): a
    numpy Generator (PCG64), whose seeding costs 1/5 of a RandomState's per image."""
    return np.random.default_rng([seed, epoch, index])


def read_manifest(data_dir):
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        raise VggError("%s not found: --data must be a folder written by vgg pack or "
                       "vgg pack-imagenet" % path)
    from data_tools.common import read_json
    manifest = read_json(path, "pack manifest")
    if "mean_rgb" not in manifest:
        raise VggError("%s has no training mean RGB (was a train split packed?)" % path)
    mean = manifest["mean_rgb"]
    if not (isinstance(mean, list) and len(mean) == 3 and all(
            isinstance(v, (int, float)) and 0 <= v <= 255 for v in mean)):
        raise VggError("%s is damaged: mean_rgb must be three numbers in [0, 255], got %r"
                       % (path, mean))
    return manifest


def check_record_files(rec_path, idx_path=None):
    """Refuse a .rec whose .idx points past its end (a truncated copy), before any reader
    sees it: MXNet's ImageRecordIter aborts the whole process on such a file."""
    idx_path = idx_path or os.path.splitext(rec_path)[0] + ".idx"
    for path in (rec_path, idx_path):
        if not os.path.isfile(path):
            raise VggError("record file %s does not exist" % path)
    size = os.path.getsize(rec_path)
    from data_tools.recordio import read_index
    entries = read_index(idx_path)  # [(key, offset)]
    if not entries:
        raise VggError("%s is empty" % idx_path)
    last = max(offset for _, offset in entries)
    if last + 8 > size:
        raise VggError("%s is truncated: its index points to byte %d, the file has %d"
                       % (rec_path, last, size))
    return entries


class RecordImages:
    """Decoded images and labels of an indexed .rec, by position (0..N-1).

    Opens the file lazily in each process (safe with forked DataLoader workers).
    """

    def __init__(self, rec_path, part=0, parts=1, index_path=None):
        """``index_path``: another .idx over the same records (``train.box.idx``: the
        records that have boxes)."""
        self.rec_path = rec_path
        self.idx_path = index_path or os.path.splitext(rec_path)[0] + ".idx"
        entries = check_record_files(rec_path, self.idx_path)
        # a worker's shard: every parts-th record (issue: multi-machine training)
        self.keys = np.array([key for key, _ in entries[part::parts]], dtype=np.int64)
        self.offsets = np.array([offset for _, offset in entries[part::parts]], dtype=np.int64)
        self.total = len(entries)
        self._handle, self._pid = None, None

    def __len__(self):
        return len(self.offsets)

    def raw(self, position):
        """Payload of a record (read with pread: safe across threads and forked
        processes, each of which opens the file once)."""
        if self._pid != os.getpid():
            self._handle, self._pid = os.open(self.rec_path, os.O_RDONLY), os.getpid()
        try:
            return read_record_at(self._handle, int(self.offsets[position]))[0]
        except VggError as err:
            raise VggError("%s: record %d: %s" % (self.rec_path, position, err)) from None

    def image(self, position):
        """(RGB uint8 image, label)."""
        return self.record(position)[:2]

    def record(self, position):
        """(RGB uint8 image, label, extra labels: a float32 array, empty without boxes)."""
        from ..core.images import decode_bytes
        payload = self.raw(position)
        label, extra = self._header(payload, position)
        try:
            image = decode_bytes(payload, IR_HEADER.size + 4 * len(extra))
        except VggError as err:
            raise VggError("%s: record %d: %s" % (self.rec_path, position, err)) from None
        return image, label, extra

    def labels(self, position):
        """(label, extra labels) of a record, without decoding its image."""
        return self._header(self.raw(position), position)

    def _header(self, payload, position):
        if len(payload) < IR_HEADER.size:
            raise VggError("%s: record %d is shorter than its header" % (self.rec_path,
                                                                         position))
        flag, label, _, _ = IR_HEADER.unpack_from(payload)
        start = IR_HEADER.size + 4 * flag
        if not np.isfinite(label) or label != int(label) or label < 0 or \
                start > len(payload):
            raise VggError("%s: record %d has a damaged header (label %r, %d extra labels "
                           "in %d bytes)" % (self.rec_path, position, label, flag,
                                             len(payload)))
        return int(label), np.frombuffer(payload, "<f4", flag, IR_HEADER.size)


# --- boxes (Appendix A): the ground truth follows the rescale, the crop and the flip ---

def record_boxes(extra, label, height, width):
    """[x0, y0, x1, y1] rows, continuous pixel edges on the (rescaled) height x width
    image, of the record's ground-truth boxes of class ``label`` (all of them if none
    has that class); an empty array for a record without boxes. A stored corner is
    an inclusive pixel of the original image, so a box reaches one original pixel
    past its last corner."""
    from data_tools.boxes import parse_label
    if not len(extra):
        return np.zeros((0, 4))
    try:
        objects, source = parse_label(extra)
    except VggError:
        return np.zeros((0, 4))
    source_w, source_h = source or (width, height)
    chosen = objects[objects[:, 0] == label] if np.any(objects[:, 0] == label) else objects
    return np.stack([chosen[:, 1] * width, chosen[:, 2] * height,
                     (chosen[:, 3] + 1 / source_w) * width,
                     (chosen[:, 4] + 1 / source_h) * height], axis=1)


def crop_target(boxes, top, left, crop, flipped):
    """The regression target of a crop: (centre x, centre y, width, height) of the
    ground-truth box with the largest part inside the crop, in the crop's
    coordinates in units of its side (0..1 inside the crop; a box that reaches past
    the crop is not cut: the net learns the whole object's box, which the test maps
    back to the image), mirrored when the crop is; and 1.0, or 0.0 when no box
    shows in the crop (the sample then adds no loss)."""
    if not len(boxes):
        return np.zeros(4), 0.0
    shifted = boxes - [left, top, left, top]
    inside = np.clip(shifted, 0, crop)
    areas = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    best = int(np.argmax(areas))
    if areas[best] <= 0:
        return np.zeros(4), 0.0
    from ..localisation.scoring import box_to_center
    x0, y0, x1, y1 = shifted[best]
    if flipped:
        x0, x1 = crop - x1, crop - x0
    return box_to_center([x0, y0, x1, y1]) / crop, 1.0


def box_target(label, target, valid):
    """One sample's label row for localisation: [class, cx, cy, w, h, valid]."""
    return np.concatenate([[label], target, [valid]]).astype(np.float32)


class TrainTransform:
    """Paper §3.1 augmentation; ``__call__(images, epoch, position)``. With ``boxes``
    (localisation, Appendix A) the label is the crop's box target (``box_target``),
    which follows the rescale, the crop and the flip."""

    def __init__(self, scale, crop, mean_rgb, seed, flip=True, pca_std=PCA_STD, boxes=False):
        self.scale, self.crop, self.seed = scale, crop, seed
        self.mean = np.asarray(mean_rgb, dtype=np.float32)
        self.flip, self.pca_std, self.boxes = flip, pca_std, boxes
        if scale.low < crop:
            raise VggError("training scale %s is smaller than the %d crop" % (scale, crop))

    def __call__(self, images, epoch, position):
        rng = image_rng(self.seed, epoch, position)
        image, label, extra = images.record(position)
        image = rescale_shorter_side(image, self.scale.draw(rng))
        top, left = random_crop_box(image.shape[0], image.shape[1], self.crop, rng)
        crop = image[top:top + self.crop, left:left + self.crop]
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            crop = crop[:, ::-1]
        shift = pca_shift(rng, self.pca_std) if self.pca_std else np.zeros(3)
        if self.boxes:
            boxes = record_boxes(extra, label, image.shape[0], image.shape[1])
            label = box_target(label, *crop_target(boxes, top, left, self.crop, flipped))
        return np.ascontiguousarray(crop), (shift - self.mean).astype(np.float32), label


class CenterTransform:
    """Validation: rescale to Q, centre crop (single-crop error drives the schedule)."""

    def __init__(self, test_scale, crop, mean_rgb, boxes=False):
        self.test_scale, self.crop, self.boxes = test_scale, crop, boxes
        self.offset = -np.asarray(mean_rgb, dtype=np.float32)
        if test_scale < crop:
            raise VggError("test scale %d is smaller than the %d crop" % (test_scale, crop))

    def __call__(self, images, epoch, position):
        image, label, extra = images.record(position)
        image = rescale_shorter_side(image, self.test_scale)
        top, left = center_crop_box(image.shape[0], image.shape[1], self.crop)
        if self.boxes:
            boxes = record_boxes(extra, label, image.shape[0], image.shape[1])
            label = box_target(label, *crop_target(boxes, top, left, self.crop, False))
        return np.ascontiguousarray(image[top:top + self.crop, left:left + self.crop]), \
            self.offset, label


class EpochDataset:
    """Gluon dataset whose keys encode (epoch, position), so forked workers need no
    shared state to know the epoch: key = epoch * len + position."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        epoch, position = divmod(int(key), len(self.images))
        return self.transform(self.images, epoch, position)


class EpochBatches:
    """Batch sampler: the epoch's permutation (a function of seed and epoch) cut into
    batches; ``start_batch`` skips batches already trained on (resume)."""

    def __init__(self, size, batch_size, seed, shuffle=True, steps=None):
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.epoch, self.start_batch = 0, 0
        self.steps = steps  # fixed number of batches (equal across distributed workers)

    def __len__(self):
        return self.steps if self.steps is not None else -(-self.size // self.batch_size)

    def order(self, epoch):
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.RandomState(
            np.random.SeedSequence([self.seed, epoch, 7]).generate_state(1)).permutation(
            self.size)

    def __iter__(self):
        order = self.order(self.epoch)
        if self.steps is not None:  # wrap around to reach a fixed step count
            needed = self.steps * self.batch_size
            order = np.resize(order, max(needed, 1))[:needed] if needed > len(order) else order
        keys = self.epoch * self.size + order
        for batch in range(self.start_batch, len(self)):
            chunk = keys[batch * self.batch_size:(batch + 1) * self.batch_size]
            if len(chunk):
                yield chunk.tolist()


def batchify(samples):
    """(uint8 NHWC crops, float32 N x 3 offsets, float32 labels) as NDArrays."""
    import mxnet as mx
    crops = np.stack([s[0] for s in samples])
    offsets = np.stack([s[1] for s in samples])
    labels = np.array([s[2] for s in samples], dtype=np.float32)  # N, or N x 6 (boxes)
    return mx.nd.array(crops, dtype=np.uint8), mx.nd.array(offsets), mx.nd.array(labels)


def to_network_input(crops, offsets):
    """On the device: uint8 NHWC + per-image RGB offset -> float32 NCHW."""
    x = crops.astype("float32").transpose((0, 3, 1, 2))
    return x + offsets.reshape((0, 3, 1, 1))


def make_loader(dataset, batches, workers):
    from mxnet.gluon.data import DataLoader
    return DataLoader(dataset, batch_sampler=batches, batchify_fn=batchify,
                      num_workers=workers, thread_pool=True if workers else False,
                      prefetch=2 * workers if workers else None)
