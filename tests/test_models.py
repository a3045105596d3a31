"""The networks of Table 1: shapes, parameter counts, dense form, LRN, init, files."""
import numpy as np
import pytest

import mxnet as mx
from mxnet.gluon import nn

from vggcli.nets import models
from vggcli.nets import params as paramfile
from vggcli.core.errors import VggError

from .numerics import assert_float32_close, output_bound

SMALL = dict(classes=10, width_mult=0.125, fc_width=32, crop_size=64)

# Table 2 of ../shared/SPEC.md (exact counts with biases, 1000 classes).
PAPER_PARAMS = {"A": 132_863_336, "A-LRN": 132_863_336, "B": 133_047_848,
                "C": 133_638_952, "D": 138_357_544, "E": 143_667_240}


@pytest.mark.parametrize("config", list(PAPER_PARAMS))
def test_exact_parameter_counts(config):
    assert models.count_params(models.get_model(config)) == PAPER_PARAMS[config]


def _convs(net):
    return [(name, blk) for name, blk in net.features._children.items()
            if isinstance(blk, nn.Conv2D)]


def test_lrn_only_in_a_lrn_after_first_conv():
    for config in models.CONFIGS:
        net = models.get_model(config)
        lrn = [name for name, blk in net.features._children.items()
               if isinstance(blk, models.LRN)]
        assert lrn == (["norm1"] if config == "A-LRN" else [])
        if lrn:
            names = list(net.features._children)
            assert names[names.index("norm1") - 1] == "conv1_1"


def test_one_by_one_convs_only_in_c_last_of_stages_3_to_5():
    for config in models.CONFIGS:
        net = models.get_model(config)
        ones = [name for name, blk in _convs(net) if blk._kwargs["kernel"] == (1, 1)]
        if config == "C":
            assert ones == ["conv3_3", "conv4_3", "conv5_3"]
            # last conv of its stage: the next layer is the stage's pool
            names = list(net.features._children)
            assert [names[names.index(n) + 1] for n in ones] == ["pool3", "pool4", "pool5"]
        else:
            assert ones == []


def test_weight_layer_counts_match_table_1():
    expected = {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}
    for config, count in expected.items():
        net = models.get_model(config)
        assert len(_convs(net)) + 3 == count


def test_multiply_adds_of_d_against_hand_formula():
    # VGG-16: per stage (input channels, output channels, side), all 3x3
    layers = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112),
              (128, 256, 56), (256, 256, 56), (256, 256, 56),
              (256, 512, 28), (512, 512, 28), (512, 512, 28),
              (512, 512, 14), (512, 512, 14), (512, 512, 14)]
    convs = sum(9 * cin * cout * side * side for cin, cout, side in layers)
    fcs = 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000
    assert models.multiply_adds("D") == convs + fcs
    assert abs(2 * (convs + fcs) / 1e9 - 30.9) < 0.1  # "30.9 GFLOP per 224 image"


@pytest.mark.numerics
@pytest.mark.parametrize("config", list(models.CONFIGS))
def test_hybridized_equals_imperative(config, photo_batch):
    """The two run other kernels (oneDNN fuses conv + ReLU in the graph): equal within
    numerics.output_bound, the summation-order bound of the net."""
    net = models.initialize(models.get_model(config, **SMALL), seed=0)
    x = mx.nd.array(photo_batch)
    imperative = net(x).asnumpy()
    assert imperative.shape == (4, 10)
    net.hybridize(static_alloc=True, static_shape=True)
    assert_float32_close(net(x).asnumpy(), imperative, output_bound(net, imperative))


@pytest.mark.parametrize("width_mult,crop,classes", [(0.0625, 32, 3), (0.25, 96, 7),
                                                     (0.5, 64, 1000)])
def test_output_shapes_for_small_widths_and_crops(width_mult, crop, classes):
    net = models.initialize(models.get_model("B", classes=classes, width_mult=width_mult,
                                             fc_width=16, crop_size=crop))
    out = net(mx.nd.zeros((2, 3, crop, crop)))
    assert out.shape == (2, classes)
    assert net.forward_features(mx.nd.zeros((2, 3, crop, crop))).shape == \
        (2, max(1, round(512 * width_mult)), crop // 32, crop // 32)


def test_wrong_input_size_for_fc_form_is_an_error():
    net = models.initialize(models.get_model("A", **SMALL))
    with pytest.raises(mx.base.MXNetError):
        net(mx.nd.zeros((1, 3, 96, 96)))


@pytest.mark.numerics
def test_dense_form_equals_fc_form_at_crop_size(photos):
    """fc6 as a 7x7 convolution sums the same C x 49 products as the dense layer, in
    another order: equal within numerics.output_bound."""
    import cv2
    net = models.initialize(models.get_model("D", classes=20, width_mult=0.25, fc_width=64),
                            seed=1)
    image = cv2.resize(photos["astronaut"], (224, 224)).astype(np.float32) - 120
    x = mx.nd.array(image.transpose(2, 0, 1)[None])
    fc = net(x).asnumpy()
    dense = models.dense_form(net)
    dense.hybridize()
    scores = dense(x).asnumpy()
    assert scores.shape == (1, 20, 1, 1)
    assert_float32_close(scores.reshape(1, 20), fc, output_bound(net, fc))


@pytest.mark.parametrize("side,expected", [(224, 1), (256, 2), (384, 6), (512, 10)])
def test_dense_score_map_size(side, expected):
    assert models.dense_output_size(side) == side // 32 - 6 == expected
    net = models.initialize(models.get_model("A", classes=5, width_mult=0.0625, fc_width=8))
    out = models.dense_form(net)(mx.nd.zeros((1, 3, side, side)))
    assert out.shape == (1, 5, expected, expected)


@pytest.mark.numerics
def test_dense_form_shares_weights_and_sees_updates():
    net = models.initialize(models.get_model("A", **SMALL))
    dense = models.dense_form(net)
    x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
    net.fc8.bias.set_data(net.fc8.bias.data() + 1.0)
    fc = net(x).asnumpy()  # within the summation-order bound (numerics.output_bound)
    assert_float32_close(dense(x).asnumpy().reshape(1, -1), fc, output_bound(net, fc))
    shared = {id(p) for p in dense.collect_params().values()}
    assert {id(p) for p in net.collect_params().values()} == shared


def test_dense_taps_have_named_layers_and_shapes():
    net = models.initialize(models.get_model("D", **SMALL))
    x = mx.nd.zeros((1, 3, 128, 96))
    assert models.dense_form(net, "pool5")(x).shape == (1, 64, 4, 3)
    assert models.dense_form(net, "conv3_3")(x).shape == (1, 32, 32, 24)
    assert models.dense_form(net, "fc7")(x).shape == (1, 32, 3, 2)
    with pytest.raises(VggError, match="valid layers: conv1_1, conv1_2, pool1"):
        models.dense_form(net, "fc9")


@pytest.mark.numerics
def test_fc7_tap_equals_forward_head_pre_logits(photo_batch):
    """Within numerics.output_bound (the dense tap sums fc6 in another order)."""
    net = models.initialize(models.get_model("C", **SMALL), seed=3)
    x = mx.nd.array(photo_batch)
    pre = net.forward_head(net.forward_features(x), pre_logits=True).asnumpy()
    tap = models.dense_form(net, "fc7")(x).asnumpy().reshape(pre.shape)
    assert_float32_close(tap, pre, output_bound(net, pre))


@pytest.mark.numerics
def test_lrn_matches_caffe_formula():
    """rtol 1e-5 is above the formula's float32 error: a sum of n = 5 squares (gamma_5),
    a power and a division (a few ulp each), about (n + 8) u = 8e-7."""
    rng = np.random.RandomState(0)
    x = rng.uniform(-20, 20, size=(2, 9, 3, 4)).astype(np.float32)
    out = models.LRN()(mx.nd.array(x)).asnumpy()
    n, alpha, beta, k = 5, 1e-4, 0.75, 2.0
    ref = np.empty_like(x)
    for c in range(9):
        window = x[:, max(0, c - n // 2):min(9, c + n // 2 + 1)]
        ref[:, c] = x[:, c] / (k + alpha / n * (window ** 2).sum(axis=1)) ** beta
    np.testing.assert_allclose(out, ref, rtol=1e-5)


def _check_gaussian_weights_and_zero_biases(net, expected):
    """Each layer's weights zero-mean with the expected std, within 4 standard errors
    of the estimates; every bias zero."""
    for layer, std in expected.items():
        block = net.features._children[layer] if layer.startswith("conv") else \
            getattr(net, layer)
        w = block.weight.data().asnumpy()
        sigmas = 4 / np.sqrt(w.size)
        assert abs(w.mean()) < sigmas * std and abs(w.std() - std) < sigmas * std, layer
    for name, param in net.collect_params().items():
        if name.endswith("bias"):
            assert not param.data().asnumpy().any(), name


def test_normal_init_std_and_zero_biases():
    net = models.initialize(models.get_model("A", classes=10, width_mult=0.5, fc_width=512),
                            init="normal", seed=0)
    # std 0.01 at the paper's size, scaled by sqrt(paper fan-in / fan-in)
    expected = {"conv1_1": 0.01,                                  # 27 inputs either way
                "conv2_1": 0.01 * np.sqrt(576 / 288),             # 64*9 vs 32*9
                "fc6": 0.01 * np.sqrt(25088 / (256 * 7 * 7)),
                "fc7": 0.01 * np.sqrt(4096 / 512)}
    _check_gaussian_weights_and_zero_biases(net, expected)


def test_xavier_init_is_glorot_uniform():
    net = models.initialize(models.get_model("A", classes=10, width_mult=0.5, fc_width=512),
                            init="xavier", seed=0)
    w = net.fc7.weight.data().asnumpy()
    bound = np.sqrt(6.0 / (512 + 512))
    assert np.abs(w).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    conv = net.features._children["conv2_1"].weight.data().asnumpy()  # fan_in 32*9, fan_out 64*9
    bound = np.sqrt(6.0 / (32 * 9 + 64 * 9))
    assert np.abs(conv).max() <= bound and np.abs(conv).max() > 0.9 * bound


def test_unknown_init_and_model_errors():
    with pytest.raises(VggError, match="valid: normal, xavier"):
        models.initialize(models.get_model("A", **SMALL), init="orthogonal")
    with pytest.raises(VggError, match="valid names: A, A-LRN, B, C, D, E"):
        models.get_model("F")
    assert models.get_model("vgg16").config == "D"
    assert models.list_models("vgg1*") == ["vgg11", "vgg11_lrn", "vgg13", "vgg16", "vgg16_c",
                                           "vgg19"]


def test_params_round_trip(tmp_path, photo_batch):
    net = models.initialize(models.get_model("E", **SMALL), seed=4)
    x = mx.nd.array(photo_batch)
    path = str(tmp_path / "e.params")
    paramfile.save_params(net, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.params"]  # no temp file left
    loaded = paramfile.load_model(path)
    assert loaded.config == "E" and loaded.knobs == net.knobs
    np.testing.assert_array_equal(loaded(x).asnumpy(), net(x).asnumpy())
    other = models.get_model("E", **SMALL)
    paramfile.load_params(other, path)
    np.testing.assert_array_equal(other(x).asnumpy(), net(x).asnumpy())
    # inference loads carry no gradient buffers (VGG-16: 528 MB saved), nor does the
    # dense head's frozen copy; training loads do
    params = list(loaded.collect_params().values())
    params += list(models.dense_form(loaded, frozen=True).collect_params().values())
    assert {p.grad_req for p in params} == {"null"}
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        params[0].grad()
    trainable = paramfile.load_model(path, for_training=True)
    assert {p.grad_req for p in trainable.collect_params().values()} == {"write"}
    first = trainable.features._children["conv1_1"].weight
    assert first.grad().shape == first.shape


def test_loading_another_config_names_both(tmp_path):
    path = str(tmp_path / "a.params")
    paramfile.save_params(models.initialize(models.get_model("A", **SMALL)), path)
    with pytest.raises(VggError, match=r"holds net A \(.*\), but the net asked for is net D"):
        paramfile.load_params(models.get_model("D", **SMALL), path)
    wider = dict(SMALL, width_mult=0.25)
    with pytest.raises(VggError, match="width_mult=0.125.*width_mult=0.25"):
        paramfile.load_params(models.get_model("A", **wider), path)


def test_plain_gluon_file_of_other_shape_is_refused(tmp_path):
    path = str(tmp_path / "plain.params")
    models.initialize(models.get_model("A", **SMALL)).save_parameters(path)
    net = models.get_model("A", **dict(SMALL, classes=11))
    with pytest.raises(VggError, match="fc8.weight has shape"):
        paramfile.load_params(net, path)


def test_damaged_params_file_is_a_clean_error(tmp_path):
    path = tmp_path / "t.params"
    paramfile.save_params(models.initialize(models.get_model("A", **SMALL)), str(path))
    whole = path.read_bytes()
    path.write_bytes(whole[:1000])
    with pytest.raises(VggError, match=r"t.params is damaged: array \d+ of shape .* \(truncated"):
        paramfile.read_params(str(path))
    with pytest.raises(VggError, match="does not exist"):
        paramfile.read_params(str(tmp_path / "missing.params"))
    # a header that declares 2^40 floats is refused from its size, before MXNet allocates
    import struct
    first_dims = 8 + 8 + 8 + 4 + 4 + 4  # list header, count, array magic, stype, ndim
    huge = whole[:first_dims] + struct.pack("<q", 1 << 40) + whole[first_dims + 8:]
    path.write_bytes(huge)
    with pytest.raises(VggError, match=r"declares 4398046511104 bytes|declares \d+ bytes"):
        paramfile.read_params(str(path))
    path.write_bytes(b"\x12\x01" + b"\x00" * 14 + b"\xff" * 8)
    with pytest.raises(VggError, match="more than its size allows"):
        paramfile.read_params(str(path))


@pytest.mark.numerics
def test_frozen_dense_form_equals_the_shared_one_and_keeps_its_copy():
    """The frozen copy runs other kernels: equal within numerics.output_bound."""
    net = models.initialize(models.get_model("C", **SMALL), seed=7)
    x = mx.nd.random.uniform(-50, 50, shape=(2, 3, 96, 128))
    shared, frozen = models.dense_form(net), models.dense_form(net, frozen=True)
    frozen.hybridize(static_alloc=True)
    expected = shared(x).asnumpy()
    assert_float32_close(frozen(x).asnumpy(), expected, output_bound(net, expected))
    assert frozen.fc6_weight.shape == (32, 64, 2, 2)
    net.fc8.bias.set_data(net.fc8.bias.data() + 1)  # a copy: later updates are not seen
    assert not np.allclose(frozen(x).asnumpy(), shared(x).asnumpy())


def test_he_init_is_msra_gaussian_with_the_first_layer_scaled_to_the_pixels():
    """He et al. 2015: N(0, 2 / fan-in); conv1_1 also divided by PIXEL_STD, so mean-
    subtracted pixels of that spread enter the second layer at unit scale."""
    net = models.initialize(models.get_model("A", classes=10, width_mult=0.5, fc_width=512),
                            init="he", seed=0)
    expected = {"conv1_1": np.sqrt(2 / 27) / models.PIXEL_STD,
                "conv2_1": np.sqrt(2 / (32 * 9)), "fc7": np.sqrt(2 / 512)}
    _check_gaussian_weights_and_zero_biases(net, expected)
