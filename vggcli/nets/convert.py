"""``vgg convert``: weights in from GluonCV, torchvision and the authors' Caffe
release (``vgg export``, symbol JSON and ONNX out, is ``nets.export``).

Preprocessing differences are folded into the first convolution, so every
converted file works with our own pipeline (RGB, 0-255, mean subtracted):
- torchvision divides by 255 and by a per-channel std: conv1_1's weights are
  divided by 255 * std, and the mean becomes 255 * mean;
- Caffe reads BGR: conv1_1's input channels are reversed and so is the mean.
Zero padding stays equivalent (a zero in our input space is the mean pixel,
as it is in the source's). The source's own preprocessing is recorded in the
file's description as ``source_preprocessing``.
"""
import math
import os

import numpy as np

from ..core.errors import VggError

TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
SOURCES = ("gluoncv", "torchvision", "caffe")


def _ordered_layers(arrays, where):
    """(conv [(weight, bias)], fc [(weight, bias)]) in network order from a flat dict
    whose keys end in .weight/.bias and contain a layer index."""
    import re

    def order(key):  # natural order: conv10 after conv9 (old GluonCV names), 10 after 9
        return [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", key)]

    weights = sorted((k for k in arrays if k.endswith("weight")), key=order)
    convs, fcs = [], []
    for key in weights:
        bias = key[:-len("weight")] + "bias"
        if bias not in arrays:
            raise VggError("%s: %s has no matching bias" % (where, key))
        pair = (np.asarray(arrays[key], dtype=np.float32), np.asarray(arrays[bias],
                                                                     dtype=np.float32))
        if pair[0].ndim == 4:
            convs.append(pair)
        elif pair[0].ndim == 2:
            fcs.append(pair)
        else:
            raise VggError("%s: %s has %d dimensions; a VGG has only conv and fc layers"
                           % (where, key, pair[0].ndim))
    return convs, fcs


def _check_shapes(net, convs, fcs, where):
    """Ordered conv/fc tensors against ``net``'s layers, before any weight of ``net``
    is allocated; a mismatch names what differs."""
    layers = _layer_params(net)
    if len(convs) != len(layers) - 3 or len(fcs) != 3:
        raise VggError("%s has %d conv and %d fc layers; net %s has %d and 3 (is it another "
                       "configuration?)" % (where, len(convs), len(fcs), net.config,
                                            len(layers) - 3))
    for ((name, *ours), theirs) in zip(layers, convs + fcs):
        for kind, param, value in zip(("weight", "bias"), ours, theirs):
            if tuple(value.shape) != tuple(param.shape):
                raise VggError("%s: %s.%s is %s there, net %s needs %s" % (
                    where, name, kind, tuple(value.shape), net.config, tuple(param.shape)))


def _assign(net, convs, fcs):
    """Put ordered conv/fc tensors (checked by _check_shapes) into ``net``."""
    import mxnet as mx

    for ((_, *ours), theirs) in zip(_layer_params(net), convs + fcs):
        for param, value in zip(ours, theirs):
            param.set_data(mx.nd.array(value))


def _layer_params(net):
    """[(layer name, weight Parameter, bias Parameter)] of ``net``'s conv layers, then
    fc6, fc7, fc8: the order readers return a source's tensors in."""
    params = net._collect_params_with_prefix()
    names = ["features.%s" % row.name for row in net.layers if row.kind == "conv"] + \
        ["fc6", "fc7", "fc8"]
    return [(name, params[name + ".weight"], params[name + ".bias"]) for name in names]


def _classes_of(fcs, where):
    if len(fcs) != 3:
        raise VggError("%s has %d fc layers; a VGG has 3" % (where, len(fcs)))
    return fcs[-1][0].shape[0]


def read_gluoncv(path):
    """GluonCV model-zoo params (features.N.weight ..., output.weight)."""
    from ..core.ndfile import load
    arrays = load(path, "GluonCV params")
    if not isinstance(arrays, dict):
        raise VggError("%s is not a GluonCV parameter file" % path)
    if any("batchnorm" in k or "running_mean" in k for k in arrays):
        raise VggError("%s is a VGG with batch-norm (vgg*_bn); the paper's nets have none"
                       % path)
    arrays = {k: v.asnumpy() for k, v in arrays.items()}
    # GluonCV keeps fc6/fc7 in 'features' after the convs and fc8 as 'output'
    renamed = {("zzz_" + k if k.startswith("output") else k): v for k, v in arrays.items()}
    convs, fcs = _ordered_layers(renamed, path)
    return convs, fcs, dict(channel_order="RGB", scale=1.0 / 255,
                            mean=list(TORCHVISION_MEAN), std=list(TORCHVISION_STD))


def _torch_reason(err):
    """torch.load's failure in a few words. Its text also advises retrying with
    weights_only=False: that would run code from the file, so it is never repeated."""
    import re
    text = " ".join(str(err).split())
    found = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    if found:
        return "torch's weights-only reader refused it (%s)" % found.group(1).strip()
    sentences = [p for p in re.split(r"(?<=\.) ", text) if "weights_only" not in p]
    return (" ".join(sentences) or type(err).__name__)[:200]


def read_torchvision(path):
    """A torchvision state dict (.pth), loaded with torch's weights_only reader:
    pickled code is refused, never run."""
    try:
        import torch
    except ImportError:
        raise VggError("reading %s needs PyTorch: pip install torch (CPU build is enough)"
                       % path) from None
    if not os.path.isfile(path):
        raise VggError("file %s does not exist" % path)
    import warnings
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise VggError("cannot read %s as a state dict of tensors: %s; vgg reads weights "
                       "only and never runs code from a file" % (path, _torch_reason(err))) \
            from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                         dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "numpy") for v in state.values()):
        raise VggError("%s is not a state dict of tensors" % path)
    odd = [k for k in state if not isinstance(k, str)]
    if odd:
        raise VggError("%s is not a torchvision state dict: it has keys that are not names "
                       "(%r)" % (path, odd[0]))
    others = sorted({k.split(".")[0] for k in state} - {"features", "classifier"})
    if others:
        kind = " (a ResNet?)" if any(k.startswith("layer1.") for k in state) else ""
        raise VggError("%s is not a torchvision VGG%s: it has layers named %s; a VGG has "
                       "only features.* and classifier.*" % (path, kind, ", ".join(others[:4])))
    if any("running_mean" in k for k in state):
        raise VggError("%s is a VGG with batch-norm (vgg*_bn); the paper's nets have none"
                       % path)
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    convs, fcs = _ordered_layers(arrays, path)
    return convs, fcs, dict(channel_order="RGB", scale=1.0 / 255,
                            mean=list(TORCHVISION_MEAN), std=list(TORCHVISION_STD))


# --- Caffe ---------------------------------------------------------------------

def caffe_messages():
    """Message classes for the part of caffe.proto a .caffemodel's weights need.

    NOTE: built from a descriptor here, since compiling caffe.proto needs protoc;
    field numbers are those of Caffe's caffe.proto (the copy in the mxnet wheel,
    mxnet/tools/caffe_converter/caffe.proto; a test checks them). Unknown fields
    (everything else in a real model) are skipped by protobuf.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool
    try:
        from google.protobuf import message_factory
        get_class = message_factory.GetMessageClass
    except (ImportError, AttributeError):  # protobuf < 4.21
        from google.protobuf import reflection  # noqa: F401
        get_class = None

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="vgg_caffe_subset.proto",
                                              package="vggcaffe", syntax="proto2")

    def message(name, fields):
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name, packed in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = ".vggcaffe." + type_name
            if packed:
                field.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("BlobShape", [("dim", 1, F.TYPE_INT64, rep, None, True)])
    message("BlobProto", [("num", 1, F.TYPE_INT32, opt, None, False),
                          ("channels", 2, F.TYPE_INT32, opt, None, False),
                          ("height", 3, F.TYPE_INT32, opt, None, False),
                          ("width", 4, F.TYPE_INT32, opt, None, False),
                          ("data", 5, F.TYPE_FLOAT, rep, None, True),
                          ("shape", 7, F.TYPE_MESSAGE, opt, "BlobShape", False)])
    message("LayerParameter", [("name", 1, F.TYPE_STRING, opt, None, False),
                               ("type", 2, F.TYPE_STRING, opt, None, False),
                               ("blobs", 7, F.TYPE_MESSAGE, rep, "BlobProto", False)])
    message("V1LayerParameter", [("name", 4, F.TYPE_STRING, opt, None, False),
                                 ("type", 5, F.TYPE_INT32, opt, None, False),
                                 ("blobs", 6, F.TYPE_MESSAGE, rep, "BlobProto", False)])
    message("NetParameter", [("name", 1, F.TYPE_STRING, opt, None, False),
                             ("layers", 2, F.TYPE_MESSAGE, rep, "V1LayerParameter", False),
                             ("layer", 100, F.TYPE_MESSAGE, rep, "LayerParameter", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = ("BlobShape", "BlobProto", "LayerParameter", "V1LayerParameter", "NetParameter")
    if get_class is not None:
        return {n: get_class(pool.FindMessageTypeByName("vggcaffe." + n)) for n in names}
    from google.protobuf import reflection
    return {n: reflection.message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("vggcaffe." + n)) for n in names}


def _blob_array(blob, where):
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:  # legacy 4-D num/channels/height/width
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if any(d < 0 for d in shape):
        raise VggError("%s: a blob has a negative dimension %s" % (where, list(shape)))
    count = math.prod(int(d) for d in shape)  # Python ints: no overflow
    data = np.asarray(blob.data, dtype=np.float32)
    if count != data.size:
        raise VggError("%s: blob of shape %s holds %d values" % (where, shape, data.size))
    return data.reshape(shape)


def read_caffe(path):
    """The authors' VGG_ILSVRC_16/19_layers.caffemodel (V1 'layers' or current 'layer')."""
    from google.protobuf.message import DecodeError

    if not os.path.isfile(path):
        raise VggError("file %s does not exist" % path)
    net = caffe_messages()["NetParameter"]()
    with open(path, "rb") as f:
        raw = f.read()
    try:
        net.ParseFromString(raw)
    except DecodeError as err:
        raise VggError("%s is not a Caffe model (protobuf: %s)" % (path, err)) from None
    layers = list(net.layer) or list(net.layers)
    convs, fcs = [], []
    for layer in layers:
        if len(layer.blobs) == 0:
            continue
        if len(layer.blobs) != 2:
            raise VggError("%s: layer %r has %d blobs; expected weight and bias"
                           % (path, layer.name, len(layer.blobs)))
        weight = _blob_array(layer.blobs[0], path)
        bias = _blob_array(layer.blobs[1], path).reshape(-1)
        name = layer.name  # protobuf hands back bytes for a name that is not UTF-8
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        if name.startswith("conv"):
            convs.append((weight.reshape(weight.shape[-4:]), bias))
        elif name.startswith("fc"):
            fcs.append((weight.reshape(weight.shape[-2:]), bias))
        else:
            raise VggError("%s: unexpected layer with weights: %r" % (path, name))
    if not convs and not fcs:
        raise VggError("%s holds no layers with weights (is it a .prototxt?)" % path)
    return convs, fcs, dict(channel_order="BGR", scale=1.0, mean=list(CAFFE_MEAN_BGR),
                            std=[1.0, 1.0, 1.0])


def fold_preprocessing(convs, source):
    """Rewrite conv1_1 so our input (RGB, 0-255, minus mean_rgb) gives the source's
    output; returns the mean RGB to store."""
    weight, bias = convs[0]
    mean = np.asarray(source["mean"], dtype=np.float64)
    std = np.asarray(source["std"], dtype=np.float64)
    if source["channel_order"] == "BGR":
        weight, mean, std = weight[:, ::-1], mean[::-1], std[::-1]
    scale = source["scale"]
    weight = weight / (std / scale).reshape(1, 3, 1, 1)
    convs[0] = (np.ascontiguousarray(weight, dtype=np.float32), bias)
    return list(mean / scale)


READERS = {"gluoncv": read_gluoncv, "torchvision": read_torchvision, "caffe": read_caffe}


def is_vgg_params(path):
    """Whether ``path`` is a parameter file vgg wrote (it carries a net description)."""
    from .params import read_params
    try:
        return bool(read_params(path)[1])
    except VggError:
        return False


def convert(source, path, net_name, out, overwrite=False, **knobs):
    """Convert ``path`` (from ``source``) into our parameter file ``out``.

    ``knobs`` (width_mult, fc_width, crop_size) describe a scaled-down source;
    ``out`` follows the output policy (``overwrite`` replaces a vgg params file).
    """
    from data_tools.common import check_output

    from .models import get_model
    from .params import save_params

    check_output(out, "params", inputs=[path], overwrite=overwrite, recognise=is_vgg_params)
    if source not in READERS:
        raise VggError("source must be one of %s, got %r" % (", ".join(SOURCES), source))
    convs, fcs, preprocessing = READERS[source](path)
    net = get_model(net_name, classes=_classes_of(fcs, path), **knobs)
    _check_shapes(net, convs, fcs, path)
    net.initialize()
    mean_rgb = fold_preprocessing(convs, preprocessing)
    _assign(net, convs, fcs)
    save_params(net, out, dict(mean_rgb=mean_rgb, train_scale=None, class_names=[],
                               source=source, source_file=os.path.basename(path),
                               source_preprocessing=preprocessing))
    return net
