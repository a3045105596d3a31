"""The six networks of the paper's Table 1 as Gluon HybridBlocks, built by one builder
from the table in ``vggcli.nets.configs``; their dense (fully convolutional) form;
initialisation; parameter files that know which net they belong to.
"""

import mxnet as mx
from mxnet.gluon import HybridBlock, nn


from .configs import (CONFIGS, FC_NAMES, LRN_ALPHA, LRN_BETA, LRN_K, LRN_SIZE, STRIDE,
                      trunk_size, canonical_name, layer_table, list_models, multiply_adds)
from ..core.errors import VggError

__all__ = ["CONFIGS", "VGG", "DenseVGG", "dense_form", "get_model", "list_models",
           "initialize", "count_params", "multiply_adds", "layer_table", "dense_output_size"]


class LRN(HybridBlock):
    """Cross-channel LRN (Gluon has no block for it); Caffe's convention, see LRN_ALPHA."""

    def __init__(self, size=LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K, **kwargs):
        super().__init__(**kwargs)
        self._args = dict(nsize=size, alpha=alpha, beta=beta, knorm=k)

    def hybrid_forward(self, F, x):
        return F.LRN(x, **self._args)


class VGG(HybridBlock):
    """A VGG network (FC form): ``features`` (the trunk, to pool5) and the head fc6-fc8.

    Parameters
    ----------
    config : str           'A', 'A-LRN', 'B', 'C', 'D', 'E' (or an alias such as 'vgg16')
    classes : int          outputs of fc8 (1000 for ILSVRC)
    width_mult : float     multiplier on every conv width (1.0 = the paper)
    fc_width : int         width of fc6 and fc7 (4096 in the paper)
    dropout : float        dropout after fc6 and fc7 in training (0.5)
    crop_size : int        training crop (224); fc6's fan-in follows from it
    """

    def __init__(self, config="D", classes=1000, width_mult=1.0, fc_width=4096, dropout=0.5,
                 crop_size=224, **kwargs):
        super().__init__(**kwargs)
        self.config = canonical_name(config)
        self.knobs = dict(classes=int(classes), width_mult=float(width_mult),
                          fc_width=int(fc_width), crop_size=int(crop_size))
        self.dropout = float(dropout)
        self.layers = layer_table(self.config, **self.knobs)
        widest = max(self.layers, key=lambda row: row.channels)
        if widest.channels > MAX_ELEMENTS:  # MXNet would fail building the layer (int32)
            raise VggError("net %s with these knobs has %s of %d channels, over MXNet's 2^31 "
                           "limit (lower --classes, --fc-width or --width-mult)"
                           % (self.config, widest.name, widest.channels))
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            channels = 3
            for row in self.layers:
                if row.kind == "conv":
                    block = nn.Conv2D(row.channels, row.kernel, padding=row.kernel // 2,
                                      in_channels=channels, activation="relu",
                                      prefix=row.name + "_")
                elif row.kind == "lrn":
                    block = LRN(prefix=row.name + "_")
                elif row.kind == "pool":
                    block = nn.MaxPool2D(pool_size=2, strides=2, prefix=row.name + "_")
                else:
                    continue
                # Named children give readable keys: features.conv1_1.weight
                self.features.register_child(block, row.name)
                channels = row.channels
            pool_size = trunk_size(self.layers)
            fan_in = channels * pool_size * pool_size
            for name, row in zip(FC_NAMES, self.layers[-3:]):
                act = None if name == "fc8" else "relu"
                setattr(self, name, nn.Dense(row.channels, activation=act, in_units=fan_in,
                                             prefix=name + "_"))
                fan_in = row.channels
            self.drop6 = nn.Dropout(self.dropout)
            self.drop7 = nn.Dropout(self.dropout)

    @property
    def layer_names(self):
        return [row.name for row in self.layers]

    @property
    def feature_info(self):
        """[(name, channels, stride)] for every tap, in order (timm-style)."""
        info, stride = [], 1
        for row in self.layers:
            if row.kind == "pool":
                stride *= 2
            info.append((row.name, row.channels, stride if row.kind != "fc" else None))
        return info

    def forward_features(self, x):
        """The trunk: image -> pool5."""
        return self.features(x)

    def forward_head(self, x, pre_logits=False):
        """pool5 -> fc8 scores (or the fc7 descriptor when ``pre_logits``)."""
        x = self.drop6(self.fc6(x))
        x = self.drop7(self.fc7(x))
        return x if pre_logits else self.fc8(x)

    def hybrid_forward(self, F, x):
        return self.forward_head(self.forward_features(x))

    def describe(self):
        """The knobs that decide parameter shapes, for checks on loading."""
        return dict(net=self.config, **self.knobs)


class DenseVGG(HybridBlock):
    """The fully convolutional form of a VGG (paper §3.2), sharing its parameters.

    fc6 runs as a (crop/32)x(crop/32) convolution, fc7 and fc8 as 1x1
    convolutions. The convolution kernels are reshapes of the Dense weights
    inside the graph, so there is one copy of the weights and training updates
    are seen at once. On an input of the crop size the output is 1x1 and equals
    the FC form; on a larger input it is a score map.

    ``upto`` stops at any tap (``pool5``, ``fc7``, ``conv5_3``...), for feature
    extraction; outputs are post-ReLU, ``fc8`` is pre-soft-max.

    ``frozen=True`` (inference) instead gives the head its own conv-shaped copy
    of the FC weights, taken now. NOTE: measured 2x faster for VGG-D at Q=384,
    because oneDNN reorders a weight that is the output of an operator (the
    reshape) on every call, 400 MB for fc6, but reorders a parameter once.
    """

    def __init__(self, net, upto="fc8", frozen=False, **kwargs):
        super().__init__(**kwargs)
        if upto not in net.layer_names:
            raise VggError("unknown layer %r for net %s; valid layers: %s"
                           % (upto, net.config, ", ".join(net.layer_names)))
        self._fc_kernel = net.knobs["crop_size"] // STRIDE
        self._frozen = frozen
        trunk_names = [row.name for row in net.layers if row.kind != "fc"]
        stop = trunk_names.index(upto) + 1 if upto in trunk_names else len(trunk_names)
        self._fc_layers = []
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            for name in trunk_names[:stop]:
                self.body.register_child(net.features._children[name], name)
            if upto in FC_NAMES:
                kernel = self._fc_kernel
                for name in FC_NAMES[:FC_NAMES.index(upto) + 1]:
                    dense = getattr(net, name)
                    if frozen:
                        shape = (dense._units, dense.weight.shape[1] // (kernel * kernel),
                                 kernel, kernel)
                        # no gradient buffers: a frozen copy is never trained
                        weight = self.params.get(name + "_conv_weight", shape=shape,
                                                 grad_req="null")
                        bias = self.params.get(name + "_conv_bias", shape=dense.bias.shape,
                                               grad_req="null")
                        for param, source in ((weight, dense.weight), (bias, dense.bias)):
                            param._load_init(source.data().reshape(param.shape),
                                             source.list_ctx())
                        setattr(self, name + "_weight", weight)
                        setattr(self, name + "_bias", bias)
                    else:
                        setattr(self, name + "_weight", dense.weight)
                        setattr(self, name + "_bias", dense.bias)
                        self.params.update(dense.params)  # so hybridize() finds them
                    self._fc_layers.append((name, dense._units))
                    kernel = 1

    def hybrid_forward(self, F, x, **params):
        x = self.body(x)
        kernel = self._fc_kernel
        for name, units in self._fc_layers:
            weight = params[name + "_weight"]
            if not self._frozen:
                weight = F.reshape(weight, shape=(units, -1, kernel, kernel))
            x = F.Convolution(x, weight, params[name + "_bias"], kernel=(kernel, kernel),
                              num_filter=units)
            if name != "fc8":
                x = F.relu(x)
            kernel = 1
        return x


def dense_form(net, upto="fc8", frozen=False):
    """The fully convolutional net sharing ``net``'s weights (see DenseVGG)."""
    return DenseVGG(net, upto=upto, frozen=frozen)


def dense_output_size(input_size, crop_size=224):
    """Side of the dense score map for an input side (paper §3.2): floor(Q/32) - crop/32 + 1."""
    return input_size // STRIDE - crop_size // STRIDE + 1


def get_model(name, **kwargs):
    """Build a registered net: ``get_model('D', classes=10, width_mult=0.125)``."""
    net = VGG(canonical_name(name), **kwargs)
    check_array_sizes(net)
    return net


MAX_ELEMENTS = 2 ** 31 - 1  # MXNet 1.x (no large-tensor build) indexes arrays with int32


def check_array_sizes(net, input_size=None):
    """Refuse knobs that make a weight array, or the first activation of one image at
    ``input_size``, too large for MXNet (it would fail with a C++ traceback)."""
    import math
    for name, param in net._collect_params_with_prefix().items():
        count = math.prod(int(d) for d in param.shape)
        if count > MAX_ELEMENTS:
            raise VggError("net %s with these knobs has %s of %d elements, over MXNet's "
                           "2^31 limit per array (lower --fc-width or --width-mult)"
                           % (net.config, name, count))
    side = input_size or net.knobs["crop_size"]
    first = net.layers[0].channels
    if first * side * side > MAX_ELEMENTS:
        raise VggError("a %dx%d input gives conv1 an output of %d elements, over MXNet's 2^31 "
                       "limit per array" % (side, side, first * side * side))


# ImageNet's pixel standard deviation (torchvision's normalisation std x 255, averaged
# over R, G, B): the scale of the mean-subtracted pixels the net sees.
PIXEL_STD = 57.6


def input_std_for(init, input_std="auto"):
    """The pixel scale conv1_1 is initialised and trained in (``--input-std``): a number,
    or ``auto``: PIXEL_STD for ``he`` (He et al. assume unit-variance inputs, as
    GluonCV's and torchvision's normalised ones are), 1 for ``normal`` and ``xavier``,
    whose scale was set for the paper's mean-subtracted pixels."""
    if input_std in (None, "auto"):
        return PIXEL_STD if init == "he" else 1.0
    return float(input_std)


def initialize(net, init="he", std=0.01, ctx=None, seed=None, input_std="auto"):
    """Initialise weights; biases are zero in every scheme (paper §3.1).

    ``normal``: zero-mean Gaussian with standard deviation ``std`` = 0.01 at the
    paper's size. NOTE: the paper's text says "variance 10^-2", but the
    authors' Caffe-era tools (Caffe's gaussian filler, MatConvNet) used a
    standard deviation of 0.01; std 0.1 makes an 11-layer ReLU net's
    activations grow about 3x per layer. A scaled-down net (width multiplier,
    FC width, crop size) has smaller fan-ins, so each layer's std is scaled by
    sqrt(fan-in at the paper's size / fan-in): activations then shrink from
    layer to layer exactly as in the paper's net, and at the paper's size the
    std is 0.01 everywhere. (A plain 0.01 leaves a 1/4-width net A with
    logits ~1e-7 that never train.)
    ``xavier``: Glorot uniform (fan average), which the paper notes works
    without pre-training.
    ``he``: He et al. 2015 (MSRA): Gaussian with variance 2 / fan-in, which keeps
    the activations' scale through ReLU layers (Glorot halves it at each one).

    ``input_std``: conv1_1 is drawn for pixels divided by it, i.e. its weights are
    divided by it (see ``input_std_for``: PIXEL_STD for ``he``, whose logits then start
    at unit scale -- without it the first loss was 7.3 and a 1/8-width net D died
    within an epoch -- and 1 for the schemes that were set for raw pixels).
    """
    if seed is not None:
        mx.random.seed(seed)
    ctx = ctx or mx.cpu()
    if init == "xavier":
        net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3),
                       ctx=ctx, force_reinit=True)
    elif init == "he":
        net.initialize(mx.init.MSRAPrelu(factor_type="in", slope=0.0), ctx=ctx,
                       force_reinit=True)
    elif init == "normal":
        _initialize_normal(net, std, ctx)
    else:
        raise VggError("unknown init %r; valid: normal, xavier, he" % (init,))
    scale = input_std_for(init, input_std)
    if scale != 1.0:  # drawn for pixels / scale: the same function on raw pixels
        first = net._collect_params_with_prefix()["features.conv1_1.weight"]
        first.set_data(first.data() / scale)
    return net


def _initialize_normal(net, std, ctx):
    net.initialize(mx.init.Zero(), ctx=ctx, force_reinit=True)
    paper_fan_in = _fan_ins(layer_table(net.config))
    fan_in = _fan_ins(net.layers)
    for name, param in net._collect_params_with_prefix().items():
        layer = name.split(".")[-2]
        if name.endswith("weight"):
            scaled = std * (paper_fan_in[layer] / fan_in[layer]) ** 0.5
            param.initialize(mx.init.Normal(scaled), ctx=ctx, force_reinit=True)


def _fan_ins(rows):
    """{layer name: inputs per output unit} for conv and fc layers."""
    fan_in, channels, size = {}, 3, None
    for row in rows:
        if row.kind == "conv":
            fan_in[row.name] = channels * row.kernel * row.kernel
        elif row.kind == "fc":
            fan_in[row.name] = channels * (size * size if size else 1)
            size = None
        if row.kind != "fc":
            size = row.size
        channels = row.channels
    return fan_in


def count_params(net):
    """Number of parameters, from shapes alone (no weights need to exist)."""
    total = 0
    for param in net.collect_params().values():
        count = 1
        for dim in param.shape:
            count *= dim
        total += count
    return total
