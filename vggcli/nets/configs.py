"""The paper's Table 1 as data, and what follows from it without MXNet.

Tokens in a configuration row:
  ``64``        3x3 convolution (stride 1, pad 1) with 64 outputs, then ReLU
  ``(256, 1)``  1x1 convolution with 256 outputs, then ReLU (config C only)
  ``"LRN"``     local response normalisation (config A-LRN only)
  ``"M"``       2x2 max-pool, stride 2 (ends each of the five stages)

Layer names follow the authors' Caffe release: ``conv{stage}_{i}``, ``norm1``,
``pool{stage}``, ``fc6``, ``fc7``, ``fc8``. Every name is also a feature tap
(outputs after ReLU; ``fc8`` is the pre-soft-max score).

No MXNet import here: the CLI uses this module while parsing options.
"""
from collections import OrderedDict, namedtuple
from fnmatch import fnmatch

from ..core.errors import VggError

CONFIGS = OrderedDict([
    ("A", [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]),
    ("A-LRN", [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]),
    ("B", [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]),
    ("C", [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M",
           512, 512, (512, 1), "M", 512, 512, (512, 1), "M"]),
    ("D", [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
           512, 512, 512, "M", 512, 512, 512, "M"]),
    ("E", [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
           512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]),
])

# Familiar names (torchvision/GluonCV) resolve to the paper's letters.
ALIASES = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C",
           "vgg16": "D", "vgg19": "E"}

# Krizhevsky et al.'s LRN parameters (paper §2.1).  NOTE: convention of Caffe,
# which the authors used, and of mx.nd.LRN: the sum is scaled by alpha / size,
#   b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_c'^2) ** beta
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0

STRIDE = 32  # five 2x2 pools
FC_NAMES = ("fc6", "fc7", "fc8")

Layer = namedtuple("Layer", "name kind channels kernel size")
Layer.__doc__ = """One row of a network's layer table.

kind: conv | lrn | pool | fc;  size: spatial output size for the crop (1 for fc).
"""


def canonical_name(name):
    key = str(name).strip()
    for net in CONFIGS:
        if key.upper() == net:
            return net
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    raise VggError("unknown net %r; valid names: %s" % (name, ", ".join(list_models())))


def list_models(pattern="*"):
    """Sorted registry names (paper letters, then aliases) matching a glob."""
    names = list(CONFIGS) + sorted(ALIASES)
    return [n for n in names if fnmatch(n.lower(), pattern.lower())]


def layer_table(config, classes=1000, width_mult=1.0, fc_width=4096, crop_size=224):
    """Layers of a configuration as ``Layer`` rows, computed without MXNet.

    Used by the builder, by ``vgg nets`` and for multiply-add counts, so all
    three come from the same table.
    """
    config = canonical_name(config)
    _check_knobs(classes, width_mult, fc_width, crop_size)
    rows, stage, index, size = [], 1, 0, crop_size
    for token in CONFIGS[config]:
        if token == "M":
            size //= 2
            rows.append(Layer("pool%d" % stage, "pool", rows[-1].channels, 2, size))
            stage, index = stage + 1, 0
        elif token == "LRN":
            rows.append(Layer("norm%d" % stage, "lrn", rows[-1].channels, LRN_SIZE, size))
        else:
            width, kernel = token if isinstance(token, tuple) else (token, 3)
            index += 1
            channels = max(1, int(round(width * width_mult)))
            rows.append(Layer("conv%d_%d" % (stage, index), "conv", channels, kernel, size))
    for name, units in zip(FC_NAMES, (fc_width, fc_width, classes)):
        rows.append(Layer(name, "fc", units, None, 1))
    return rows


MAX_WIDTH_MULT = 2.0 ** 25  # 64 * 2^25 = 2^31 channels; above, widths overflow to inf


def _check_knobs(classes, width_mult, fc_width, crop_size):
    if int(classes) < 1:
        raise VggError("classes must be a positive integer, got %r" % (classes,))
    if not 0 < width_mult <= MAX_WIDTH_MULT:
        raise VggError("width multiplier must be a positive number of at most 2^25 (conv1 "
                       "would pass MXNet's 2^31 limit), got %r" % (width_mult,))
    if int(fc_width) < 1:
        raise VggError("fc width must be a positive integer, got %r" % (fc_width,))
    if crop_size < STRIDE or crop_size % STRIDE:
        raise VggError("crop size must be a positive multiple of %d (five 2x2 pools), got %r"
                       % (STRIDE, crop_size))


def multiply_adds(config, in_channels=3, **knobs):
    """Multiply-accumulate operations for one image at the crop size."""
    total, channels, fan_in = 0, in_channels, None
    for row in layer_table(config, **knobs):
        if row.kind == "conv":
            total += row.size * row.size * row.kernel * row.kernel * channels * row.channels
        elif row.kind == "fc":
            total += fan_in * row.channels
        fan_in = row.channels * row.size * row.size
        channels = row.channels
    return total


def trunk_size(rows):
    """Spatial side of pool5 for the crop size."""
    return [row for row in rows if row.kind != "fc"][-1].size
