"""``vgg export``: a net as MXNet's symbol JSON and params (gluon.SymbolBlock.imports)
or ONNX (with its preprocessing as metadata), in its FC or dense form, written by the
output policy with a record of what vgg wrote."""
import errno
import json
import os

import numpy as np

from ..core.errors import VggError


def export_record(prefix):
    """The file beside an export that lists what vgg wrote (names and sha256): an
    existing file is replaced only if it is still exactly what vgg wrote."""
    return prefix + ".vgg-export.json"


def _recorded_files(record):
    """{file name: sha256} of a previous export's record, or None where ``record`` is
    not one."""
    from data_tools.common import read_json
    try:
        data = read_json(record, "export record")
    except VggError:
        return None
    files = data.get("files")
    return files if data.get("kind") == "export" and isinstance(files, dict) else None


def export(net, prefix, fmt="symbol", dense=False, input_size=None, inputs=(),
           overwrite=False):
    """Write ``prefix``-symbol.json/-0000.params (and ``prefix``.onnx for onnx), and
    ``prefix``.vgg-export.json, the record of them.

    ``dense`` exports the fully convolutional form for inputs of ``input_size``.
    The outputs follow the output policy (data_tools.common): an existing file is
    replaced only with ``overwrite`` and only if vgg wrote it (the record says so);
    all are written beside the targets under temporary names, then renamed.
    Returns the written paths.
    """
    import mxnet as mx

    from data_tools.common import naming, scratch_folder, write_text_atomic

    from ..training.checkpoint import sha256
    from .models import check_array_sizes, dense_form

    size, paths, record = _checked_outputs(net, prefix, fmt, dense, input_size, inputs,
                                           overwrite)
    check_array_sizes(net, size)
    block = dense_form(net) if dense else net
    block.hybridize()
    block(mx.nd.zeros((1, 3, size, size)))
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    with scratch_folder(prefix) as tmp, naming(prefix):
        staged = os.path.join(tmp, os.path.basename(prefix))
        try:
            block.export(staged)
        except mx.base.MXNetError as err:  # MXNet's C++ stream says only "incomplete"
            if "Write incomplete" not in str(err):
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), prefix) from None
        if fmt == "onnx":
            try:
                mx.onnx.export_model(staged + "-symbol.json", staged + "-0000.params",
                                     [(1, 3, size, size)], [np.float32], staged + ".onnx",
                                     dynamic=True, dynamic_input_shapes=[(None, 3, size, size)])
            except ImportError as err:
                raise VggError("ONNX export needs onnx 1.15-1.18 (pip install onnx==1.18.0): "
                               "%s" % err) from None
            _tidy_onnx(staged + ".onnx", _onnx_metadata(net, size, dense))
        files = {}
        for path in paths:
            source = os.path.join(tmp, os.path.basename(path))
            files[os.path.basename(path)] = sha256(source)
            os.replace(source, path)
    write_text_atomic(record, json.dumps(dict(kind="export", files=files), indent=1))
    return paths



def _checked_outputs(net, prefix, fmt, dense, input_size, inputs, overwrite):
    """(input size, output paths, record path), the options and every output checked by
    the output policy before any work."""
    from data_tools.common import check_output

    from ..training.checkpoint import sha256

    if fmt not in ("symbol", "onnx"):
        raise VggError("format must be symbol or onnx, got %r" % (fmt,))
    size = input_size or net.knobs["crop_size"]
    if size < net.knobs["crop_size"]:
        raise VggError("input size %d is smaller than the %d crop" % (size, net.knobs[
            "crop_size"]))
    if not dense and size != net.knobs["crop_size"]:
        raise VggError("the FC form takes %dx%d inputs only; use --dense for other sizes"
                       % (net.knobs["crop_size"], net.knobs["crop_size"]))
    paths = [prefix + "-symbol.json", prefix + "-0000.params"] + (
        [prefix + ".onnx"] if fmt == "onnx" else [])
    record = export_record(prefix)
    recorded = _recorded_files(record) or {}  # read once for every output
    for path in paths:
        check_output(path, "export", inputs=inputs, overwrite=overwrite,
                     recognise=lambda p: recorded.get(os.path.basename(p)) == sha256(p))
    check_output(record, "export", inputs=inputs, overwrite=overwrite,
                 recognise=lambda p: _recorded_files(p) is not None)
    return size, paths, record


def _onnx_metadata(net, size, dense):
    """What a user of the ONNX file needs to feed it: the preprocessing."""
    meta = getattr(net, "file_meta", {}) or {}
    values = dict(net=net.config, input_size=str(size), input_layout="NCHW",
                  channel_order="RGB", pixel_range="0-255",
                  preprocessing="subtract mean_rgb from 0-255 RGB pixels; no scaling",
                  output="class scores (logits; apply soft-max)" + (
                      ", a spatial map: average it over positions" if dense else ""))
    if meta.get("mean_rgb"):
        values["mean_rgb"] = json.dumps([float(v) for v in meta["mean_rgb"]])
    if meta.get("class_names"):
        values["class_names"] = json.dumps(list(meta["class_names"]))
    if meta.get("train_scale"):
        values["train_scale"] = str(meta["train_scale"])
    return values


def _tidy_onnx(path, metadata):
    """Weights as initializers only (MXNet's exporter also lists each one as a graph
    input, and onnxruntime warns once per weight on every load), plus metadata."""
    import onnx

    model = onnx.load(path)
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, path)
