"""The inference engine shared by ``vgg eval``, ``vgg features`` and image-folder
prediction (paper §3.2 testing, Appendix B descriptors).

- ``load_for_inference``: a net from its params file, with what the file says
  about preprocessing (mean RGB), class names and the default test scale;
- ``check_scales``: the one check that test scales fit the net, before any work;
- ``fast_path_inputs`` / ``fast_copy``: the precision (float32, bfloat16,
  float16, INT8), its calibration crops and the held-out crops its fidelity
  to float32 is measured on;
- ``RecordSource`` / ``FolderSource``: where images come from, decoded to RGB;
  ``rescaled`` and ``by_shape``: isotropic rescaling and same-shape batches;
- ``DenseForward``: batched forward passes split over the devices, the dense
  form's output pooled over positions and averaged with the flipped image's.
"""
import os

import numpy as np

from data_tools.common import printable  # noqa: F401  (re-exported)

from ..core.errors import VggError
from ..core.images import decode
from ..core.precision import resolve


# --- the net --------------------------------------------------------------------------

class InferenceNet:
    """A net ready for inference and what its params file says about using it."""

    def __init__(self, net, ctx, mean_rgb, class_names, train_scale):
        self.net, self.ctx, self.mean_rgb = net, ctx, mean_rgb
        self.class_names, self.train_scale = class_names, train_scale

    def default_scales(self, path):
        """[Q]: the training scale S, or (Smin + Smax) / 2 for jittered S (§3.2)."""
        from ..training.data import Scale
        if not self.train_scale:
            raise VggError("params file %s does not record its training scale: give --scales"
                           % path)
        return [Scale.parse(self.train_scale).test_scale]


def load_for_inference(path, net_name=None, devices=(("cpu", 0),), mean_rgb=None,
                       need_mean=True):
    """The net a params file holds (``net_name`` must agree with its description; a
    file without one needs it), on ``devices``, without gradient buffers.
    ``mean_rgb`` overrides the file's mean; without either, ``need_mean`` refuses."""
    from ..core.devices import contexts
    from ..nets.models import get_model
    from ..nets.params import load_model, load_params, read_params

    ctx = contexts(list(devices))
    arrays, meta = read_params(path)
    if meta:
        net = load_model(path, ctx=ctx)
        if net_name and net_name != net.config:
            raise VggError("params file %s holds net %s, but --net is %s"
                           % (path, net.config, net_name))
    else:
        if not net_name:
            raise VggError("params file %s does not say which net it holds: give --net"
                           % path)
        classes = arrays["fc8.weight"].shape[0] if "fc8.weight" in arrays else 1000
        net = get_model(net_name, classes=classes)
        net.collect_params().setattr("grad_req", "null")  # inference: no gradient buffers
        load_params(net, path, ctx=ctx)
        net.file_meta = {}
    meta = net.file_meta
    mean_rgb = mean_rgb or meta.get("mean_rgb")
    if mean_rgb is None and need_mean:
        raise VggError("params file %s has no mean RGB: give --mean R,G,B (or convert it "
                       "with vgg convert)" % path)
    return InferenceNet(net, ctx, mean_rgb and list(mean_rgb), meta.get("class_names") or [],
                        meta.get("train_scale"))


def check_scales(scales, crop):
    """Dense and multi-crop testing need the image's shorter side Q >= the crop."""
    small = sorted({q for q in scales if q < crop})
    if small:
        raise VggError("scale%s %s smaller than the %d crop: dense and multi-crop testing "
                       "need Q >= %d" % ("s" if len(small) > 1 else "",
                                         ",".join(map(str, small)), crop, crop))


# --- precision ------------------------------------------------------------------------

def fast_path_inputs(source, crop, scale, mean_rgb, int8_images=0, dtype="float32", ctx=None):
    """(dtype to run, INT8 calibration crops or None, fidelity crops or None).

    ``dtype`` is what was asked for (bfloat16 may fall back to float32, with a note);
    INT8 is calibrated on the first ``int8_images`` readable images and every fast
    path is checked against float32 on the images after them (fast.py)."""
    from .fast import calibration_batch, fidelity_batch

    if int8_images and dtype not in ("float32", "auto"):
        raise VggError("choose one of --int8 and --dtype %s" % dtype)
    dtype = "float32" if int8_images else resolve(dtype, ctx)
    calibration = check = None
    if int8_images:
        calibration = calibration_batch(source.image, int8_images, len(source), crop, scale,
                                        mean_rgb)
    if int8_images or dtype != "float32":
        check = fidelity_batch(source.image, len(source), crop, scale, mean_rgb,
                               after=int8_images)
    return dtype, calibration, check


def fast_copy(block, crop, ctx, calibration=None, dtype="float32"):
    """``block`` itself for float32, else an INT8 (``calibration`` given) or 16-bit copy."""
    if calibration is not None:
        from .fast import quantize
        return quantize(block, calibration, ctx)
    if dtype == "float32":
        return block
    from ..core.precision import check_devices, convert_for_inference
    check_devices(dtype, ctx)
    return convert_for_inference(block, dtype, np.zeros((1, 3, crop, crop), np.float32), ctx)


def precision_label(int8_images, dtype):
    return "int8 (calibrated on %d images)" % int8_images if int8_images else dtype


# --- images ---------------------------------------------------------------------------

def reserved_memmap(path, shape, shown, dtype=np.float32):
    """A new .npy memmap of ``shape`` whose blocks are reserved on disk first: a memmap
    over a sparse file turns a full disk into SIGBUS when a page is first written;
    reserving makes it an ENOSPC error here, before any work. Errors name ``shown``
    (the output this temporary file is for)."""
    try:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    except OSError as err:
        raise OSError(err.errno, os.strerror(err.errno), shown) from None
    return array


def list_images(folder):
    """(paths, labels or None, class names): a flat folder, or one sub-folder per class
    (label = the sorted folder's index)."""
    from data_tools.sources import IMAGE_EXTENSIONS

    if not os.path.isdir(folder):
        raise VggError("image folder %s does not exist" % folder)
    subdirs = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    paths, labels = [], []
    if subdirs:
        for label, name in enumerate(subdirs):
            for root, dirs, files in os.walk(os.path.join(folder, name)):
                dirs.sort()
                found = [os.path.join(root, f) for f in sorted(files)
                         if f.lower().endswith(IMAGE_EXTENSIONS)]
                paths += found
                labels += [label] * len(found)
    else:
        paths = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                       if n.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise VggError("no images in %s" % folder)
    return paths, (labels if subdirs else None), subdirs


class FolderSource:
    """Images of a folder: ``image(position)`` -> (RGB image, label or -1)."""

    def __init__(self, folder):
        self.paths, self.labels, self.class_names = list_images(folder)
        self.ids = [printable(os.path.relpath(p, folder)).replace(os.sep, "/")
                    for p in self.paths]
        self.labelled = self.labels is not None

    def __len__(self):
        return len(self.paths)

    def image(self, position):
        return decode(self.paths[position]), (self.labels[position] if self.labelled else -1)


def record_ids(rec_path, count):
    """Image ids of a .rec from its .lst (vgg pack writes one), else record numbers."""
    from data_tools.common import read_lines

    lst = os.path.splitext(rec_path)[0] + ".lst"
    if os.path.isfile(lst):
        ids = []
        for number, line in enumerate(read_lines(lst, "image list"), 1):
            fields = line.split("\t", 2)
            if len(fields) != 3:
                raise VggError("%s line %d is not 'index<TAB>label<TAB>id': %r"
                               % (lst, number, line[:60]))
            ids.append(fields[2])
        if len(ids) == count:
            return ids
    return [str(i) for i in range(count)]


class RecordSource:
    """Labelled images of a .rec: ``image(position)`` -> (RGB image, label)."""

    def __init__(self, rec):
        from ..training.data import RecordImages
        self.records = RecordImages(rec)
        self.ids = record_ids(rec, len(self.records))
        self.labelled, self.class_names = True, []

    def __len__(self):
        return len(self.records)

    def image(self, position):
        return self.records.image(position)


def rescaled(images, scale, pool):
    """Each image rescaled isotropically to shorter side ``scale`` (in ``pool``)."""
    from ..training.data import rescale_shorter_side
    return list(pool.map(lambda image: rescale_shorter_side(image, scale), images))


def by_shape(images):
    """Index lists of same-shape images: each one can be a single batch."""
    groups = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    return list(groups.values())


# --- forward passes -------------------------------------------------------------------

class DenseForward:
    """Forward passes of HxWx3 images (mean subtracted, split over the devices)."""

    def __init__(self, mean_rgb, ctx, batch_size=32, flip=True):
        self.mean = np.asarray(mean_rgb, dtype=np.float32).reshape(1, 1, 1, 3)
        self.ctx, self.batch_size, self.flip = ctx, batch_size, flip

    def run(self, block, batch, pool=False):
        """The block's output for an NHWC batch; ``pool``: averaged over positions."""
        import mxnet as mx
        from mxnet import gluon
        x = mx.nd.array((batch.astype(np.float32) - self.mean).transpose(0, 3, 1, 2))
        parts = gluon.utils.split_and_load(x, self.ctx, even_split=False)
        outputs = [block(p) for p in parts]
        if pool:
            outputs = [out.mean(axis=(2, 3)) for out in outputs]
        return np.concatenate([out.asnumpy() for out in outputs])

    def pooled(self, block, images, per_image=None):
        """Same-shape images -> (N, channels): the dense block's output averaged over
        positions, ``per_image`` applied (e.g. soft-max), then averaged with the
        flipped image's."""
        images = np.stack(images)
        batch = np.concatenate([images, images[:, :, ::-1]]) if self.flip else images
        rows = [self.run(block, batch[s:s + self.batch_size], pool=True)
                for s in range(0, len(batch), self.batch_size)]
        rows = np.concatenate(rows)
        if per_image is not None:
            rows = per_image(rows)
        if self.flip:
            return (rows[:len(images)] + rows[len(images):]) / 2
        return rows
