"""vgg convert (GluonCV, torchvision, Caffe) and vgg export (symbol, ONNX)."""
import contextlib
import json
import os
import pickle
import re
import tempfile

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import mxnet as mx

from vggcli.nets import convert as conv
from vggcli.nets import models
from vggcli.nets import params as paramfile
from vggcli.cli import cli

from .numerics import assert_float32_close, output_bound

torch = pytest.importorskip("torch")


@contextlib.contextmanager
def _captured_stderr():
    """What native code writes to file descriptor 2 (onnxruntime logs there)."""
    saved, captured = os.dup(2), {}
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            captured["text"] = log.read()


def _photo_batch(photos, size=224):
    return np.stack([cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA)
                     for p in list(photos.values())[:3]]).astype(np.float32)


def _ours(net, images):
    mean = np.asarray(net.file_meta["mean_rgb"], np.float32)
    return net(mx.nd.array((images - mean).transpose(0, 3, 1, 2))).asnumpy()


def _torch_vgg16():
    nn = torch.nn
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
           512, 512, 512, "M"]
    layers, channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(True)]
            channels = v

    class VGG(nn.Module):  # torchvision's layout: features.N, avgpool, classifier.0/3/6
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 4096),
                nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    torch.manual_seed(0)
    return VGG().eval()


@pytest.mark.numerics
def test_torchvision_vgg16_outputs_match(photos, tmp_path):
    """Outputs within numerics.output_bound: other kernels sum in another order, and
    the preprocessing folded into conv1_1 rounds each of its weights once more (one u
    per product, inside the per-layer bound)."""
    model = _torch_vgg16()
    path = str(tmp_path / "vgg16.pth")
    torch.save(model.state_dict(), path)
    images = _photo_batch(photos)
    normalised = (images / 255 - np.array(conv.TORCHVISION_MEAN)) / np.array(conv.TORCHVISION_STD)
    with torch.no_grad():
        expected = model(torch.tensor(normalised.transpose(0, 3, 1, 2), dtype=torch.float32))
    result = CliRunner().invoke(cli, ["convert", "--from", "torchvision", path, "--net", "D",
                                      "--out", str(tmp_path / "D.params")])
    assert result.exit_code == 0, result.output
    net = paramfile.load_model(str(tmp_path / "D.params"))
    got = _ours(net, images)
    expected = expected.numpy()
    assert_float32_close(got, expected, output_bound(net, expected))
    assert net.file_meta["source_preprocessing"]["std"] == list(conv.TORCHVISION_STD)
    # a state dict of another architecture (VGG-16 weights, told it is E)
    result = CliRunner().invoke(cli, ["convert", "--from", "torchvision", path, "--net", "E",
                                      "--out", str(tmp_path / "E.params")])
    assert result.exit_code == 2
    assert "has 13 conv and 3 fc layers; net E has 16 and 3" in result.output


@pytest.mark.numerics
def test_gluoncv_vgg16_outputs_match(photos, tmp_path):
    """Outputs within numerics.output_bound: other kernels sum in another order, and
    the preprocessing folded into conv1_1 rounds each of its weights once more (one u
    per product, inside the per-layer bound)."""
    from vggcli.core.compat import gluoncv_model_zoo
    gcv_get_model = gluoncv_model_zoo().get_model
    peer = gcv_get_model("vgg16", pretrained=False)
    peer.initialize(mx.init.Xavier(), force_reinit=True)
    images = _photo_batch(photos)
    normalised = (images / 255 - np.array(conv.TORCHVISION_MEAN)) / np.array(conv.TORCHVISION_STD)
    expected = peer(mx.nd.array(normalised.transpose(0, 3, 1, 2))).asnumpy()
    path = str(tmp_path / "vgg16-gluoncv.params")
    peer.save_parameters(path)
    net = conv.convert("gluoncv", path, "D", str(tmp_path / "D.params"))
    net.file_meta = paramfile.read_params(str(tmp_path / "D.params"))[1]
    got = _ours(net, images)
    assert_float32_close(got, expected, output_bound(net, expected))


def test_caffe_fields_match_the_caffe_proto_in_the_mxnet_wheel():
    proto = os.path.join(os.path.dirname(mx.__file__), "tools", "caffe_converter",
                         "caffe.proto")
    text = open(proto).read()
    messages = conv.caffe_messages()
    for name, cls in messages.items():
        body = re.search(r"message %s \{(.*?)\n\}" % name.replace("NetParameter",
                                                                     "NetParameter"),
                         text, re.S).group(1)
        for field in cls.DESCRIPTOR.fields:
            assert re.search(r"\b%s = %d\b" % (field.name, field.number), body), \
                (name, field.name)


SMALL = dict(width_mult=0.125, fc_width=64, crop_size=32)


def _write_caffemodel(path, tensors, v1):
    messages = conv.caffe_messages()
    net = messages["NetParameter"](name="VGG_ILSVRC_11_layers")
    for name, (weight, bias) in tensors.items():
        layer = net.layers.add() if v1 else net.layer.add()
        layer.name = name
        if v1:
            layer.type = 4 if name.startswith("conv") else 14
        else:
            layer.type = "Convolution" if name.startswith("conv") else "InnerProduct"
        for array in (weight, bias):
            blob = layer.blobs.add()
            if v1:  # legacy 4-D num/channels/height/width
                shape = (1,) * (4 - array.ndim) + array.shape
                blob.num, blob.channels, blob.height, blob.width = shape
            else:
                blob.shape.dim.extend(array.shape)
            blob.data.extend(array.ravel().tolist())
        if not v1 and name.startswith("conv"):  # a weightless layer in between
            relu = net.layer.add()
            relu.name, relu.type = "relu" + name[4:], "ReLU"
    with open(path, "wb") as f:
        f.write(net.SerializeToString())


@pytest.mark.numerics
@pytest.mark.parametrize("v1", [True, False], ids=["V1-layers", "layer"])
def test_caffe_model_converts_with_bgr_handled(photos, tmp_path, v1):
    """Outputs within numerics.output_bound: other kernels sum in another order, and
    the preprocessing folded into conv1_1 rounds each of its weights once more (one u
    per product, inside the per-layer bound)."""
    reference = models.initialize(models.get_model("A", classes=9, **SMALL), seed=8)
    tensors = {}
    for name, param in reference._collect_params_with_prefix().items():
        layer = name.split(".")[-2]
        tensors.setdefault(layer, [None, None])[0 if name.endswith("weight") else 1] = \
            param.data().asnumpy()
    path = str(tmp_path / "model.caffemodel")
    _write_caffemodel(path, {k: tuple(v) for k, v in tensors.items()}, v1)
    net = conv.convert("caffe", path, "A", str(tmp_path / "A.params"), **SMALL)
    for name, param in net._collect_params_with_prefix().items():
        layer = name.split(".")[-2]
        expected = tensors[layer][0 if name.endswith("weight") else 1]
        if name == "features.conv1_1.weight":
            expected = expected[:, ::-1]  # Caffe's BGR input channels, reversed to RGB
        np.testing.assert_array_equal(param.data().asnumpy(), expected)
    # Caffe's net on BGR input minus the BGR mean == ours on RGB input minus the RGB mean
    images = _photo_batch(photos, 32)
    bgr = images[..., ::-1] - np.array(conv.CAFFE_MEAN_BGR, np.float32)
    expected = reference(mx.nd.array(bgr.transpose(0, 3, 1, 2))).asnumpy()
    net.file_meta = paramfile.read_params(str(tmp_path / "A.params"))[1]
    assert_float32_close(_ours(net, images), expected, output_bound(net, expected))


def test_bad_files_are_clear_errors_and_run_nothing(tmp_path):
    runner = CliRunner()
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "small.pth"
    torch.save(model.state_dict(), str(path))
    result = runner.invoke(cli, ["convert", "--from", "torchvision", str(path), "--net", "D",
                                 "--out", str(tmp_path / "o.params")])
    assert result.exit_code == 2 and "small.pth is not a torchvision VGG" in result.output
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:100])
    result = runner.invoke(cli, ["convert", "--from", "torchvision", str(truncated), "--net",
                                 "D", "--out", str(tmp_path / "o.params")])
    assert result.exit_code == 2 and "cannot read" in result.output
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s" % marker,))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"features.0.weight": Evil()}, f)
    result = runner.invoke(cli, ["convert", "--from", "torchvision", str(evil), "--net", "D",
                                 "--out", str(tmp_path / "o.params")])
    assert result.exit_code == 2 and "cannot read" in result.output
    assert not marker.exists()
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff\xff\xff\xff garbage")
    result = runner.invoke(cli, ["convert", "--from", "caffe", str(junk), "--net", "D",
                                 "--out", str(tmp_path / "o.params")])
    assert result.exit_code == 2 and "junk.caffemodel" in result.output


@pytest.mark.numerics
@pytest.mark.parametrize("dense,size", [(False, 64), (True, 96)])
def test_symbol_and_onnx_exports_reproduce_outputs(photos, tmp_path, dense, size):
    """Outputs within numerics.output_bound: other kernels sum in another order, and
    the preprocessing folded into conv1_1 rounds each of its weights once more (one u
    per product, inside the per-layer bound)."""
    ort = pytest.importorskip("onnxruntime")
    net = models.initialize(models.get_model("B", classes=5, width_mult=0.125, fc_width=32,
                                             crop_size=64), seed=9)
    path = str(tmp_path / "B.params")
    paramfile.save_params(net, path, dict(mean_rgb=[120.0, 115.0, 100.0]))
    args = ["export", "--params", path, "--format", "onnx", "--out", str(tmp_path / "b")]
    if dense:
        args += ["--dense", "--input-size", str(size)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    x = (_photo_batch(photos, size) - 110).transpose(0, 3, 1, 2)
    expected = (models.dense_form(net) if dense else net)(mx.nd.array(x)).asnumpy()
    block = mx.gluon.SymbolBlock.imports(str(tmp_path / "b-symbol.json"), ["data"],
                                         str(tmp_path / "b-0000.params"))
    bound = output_bound(net, expected)
    assert_float32_close(block(mx.nd.array(x)).asnumpy(), expected, bound, "symbol")
    options = ort.SessionOptions()
    options.log_severity_level = 2  # warnings and above, printed to stderr
    with _captured_stderr() as captured:
        session = ort.InferenceSession(str(tmp_path / "b.onnx"), options)
    assert "W:onnxruntime" not in captured["text"], captured["text"][-2000:]
    assert [i.name for i in session.get_inputs()] == ["data"]  # weights are not inputs
    got = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    assert_float32_close(got, expected, bound, "onnxruntime")
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["mean_rgb"]) == [120.0, 115.0, 100.0]
    assert meta["input_size"] == str(size) and meta["channel_order"] == "RGB"
    assert meta["input_layout"] == "NCHW" and meta["net"] == "B"
