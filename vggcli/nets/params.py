"""Our parameter files: ``mx.nd.save``'s format with the net's description (config,
knobs, mean RGB, training scale, class names, task) stored as one more array, so a
file says which net it holds and how to feed it; written atomically, read with every
declared size checked (``ndfile``) and the description validated."""
import json

import mxnet as mx

from data_tools.common import atomic_output

from ..core import ndfile
from ..core.errors import VggError
from .configs import CONFIGS
from .models import get_model


META_KEY = "__vgg_meta__"


def _param_arrays(net):
    return {name: param._reduce() for name, param in net._collect_params_with_prefix().items()}


def save_params(net, path, extra_meta=None):
    """Save weights with the net's description, atomically (temp name, then rename)."""
    meta = dict(net.describe(), **(extra_meta or {}))
    arrays = _param_arrays(net)
    arrays[META_KEY] = mx.nd.array(bytearray(json.dumps(meta, sort_keys=True).encode()),
                                   dtype="uint8")
    with atomic_output(path) as tmp:
        ndfile.save(tmp, arrays, shown=path)
    return path


def read_params(path):
    """(arrays, meta) from a parameter file; meta is {} for plain Gluon files."""
    arrays = ndfile.load(path)
    if not isinstance(arrays, dict):
        raise VggError("params file %s holds an unnamed array list, not a parameter dict"
                       % path)
    meta = {}
    if META_KEY in arrays:
        try:
            meta = json.loads(bytes(arrays.pop(META_KEY).asnumpy().tobytes()).decode())
        except ValueError:
            raise VggError("params file %s has a damaged description block" % path) from None
        _check_meta(meta, path)
    return arrays, meta


def _check_meta(meta, path):
    """The description block's fields have the types the readers use (a hand-made or
    damaged file would otherwise fail deep inside with a TypeError)."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    checks = dict(net=lambda v: isinstance(v, str) and v in CONFIGS,
                  classes=lambda v: isinstance(v, int) and v >= 1,
                  width_mult=lambda v: number(v) and v > 0,
                  fc_width=lambda v: isinstance(v, int) and v >= 1,
                  crop_size=lambda v: isinstance(v, int) and v >= 32,
                  mean_rgb=lambda v: v is None or (isinstance(v, list) and len(v) == 3
                                                   and all(number(x) for x in v)),
                  class_names=lambda v: v is None or (isinstance(v, list) and all(
                      isinstance(x, str) for x in v)))
    if not isinstance(meta, dict):
        raise VggError("params file %s has a description that is not a JSON object" % path)
    wrong = [key for key, ok in checks.items() if key in meta and not ok(meta[key])]
    if wrong:
        raise VggError("params file %s has a damaged description: %s %r" % (
            path, wrong[0], meta[wrong[0]]))


def describe_meta(meta):
    knobs = ", ".join("%s=%s" % (k, meta[k]) for k in sorted(meta) if k != "net")
    return "net %s (%s)" % (meta.get("net", "?"), knobs)


def load_params(net, path, ctx=None):
    """Load a file written by ``save_params`` into ``net``, refusing another config."""
    arrays, meta = read_params(path)
    _set_params(net, path, arrays, meta, ctx)
    return meta


def _set_params(net, path, arrays, meta, ctx):
    wanted = net.describe()
    differs = [k for k in wanted if k in meta and meta[k] != wanted[k]]
    if differs:
        raise VggError("params file %s holds %s, but the net asked for is %s"
                       % (path, describe_meta(meta), describe_meta(wanted)))
    params = net._collect_params_with_prefix()
    missing = sorted(set(params) - set(arrays))
    unexpected = sorted(set(arrays) - set(params))
    if missing or unexpected:
        raise VggError("params file %s does not match net %s: missing %s; unexpected %s"
                       % (path, net.config, ", ".join(missing[:4]) or "none",
                          ", ".join(unexpected[:4]) or "none"))
    for name, param in params.items():
        if tuple(arrays[name].shape) != tuple(param.shape):
            raise VggError("params file %s: %s has shape %s, net %s needs %s"
                           % (path, name, arrays[name].shape, net.config, param.shape))
    for name, param in params.items():
        param._load_init(arrays[name], ctx or mx.cpu(), cast_dtype=True)


def load_model(path, ctx=None, for_training=False, **overrides):
    """Build the net described inside a params file and load its weights.

    ``overrides`` change knobs that do not alter shapes (e.g. ``dropout``).
    Unless ``for_training``, the parameters get no gradient buffers (for VGG-16
    they would double the memory: 528 MB).
    """
    arrays, meta = read_params(path)
    if not meta:
        raise VggError("params file %s has no description; build the net with get_model() "
                       "and use load_params()" % path)
    knobs = {k: meta[k] for k in ("classes", "width_mult", "fc_width", "crop_size") if k in meta}
    net = get_model(meta["net"], **dict(knobs, **overrides))
    if not for_training:
        net.collect_params().setattr("grad_req", "null")
    _set_params(net, path, arrays, meta, ctx)
    net.file_meta = meta  # preprocessing, training scale, class names (if saved)
    return net
