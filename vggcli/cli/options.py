"""The option types and options the commands share: a library parser as a click type
(its error is click's usage error, exit 2, naming the option), nets, scales, devices,
means, --overwrite and --dtype."""
import click

from ..nets.configs import CONFIGS, canonical_name
from ..core.errors import VggError
from ..core.precision import DTYPES


class Parsed(click.ParamType):
    """A library parser as an option type: its VggError becomes click's usage error
    (exit 2, the option named), so options are checked while parsing."""

    def __init__(self, name, parse, metavar=None):
        self.name, self.parse, self.metavar = name, parse, metavar

    def get_metavar(self, param, *args, **kwargs):
        return self.metavar

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # a default already parsed
            return value
        try:
            return self.parse(value)
        except VggError as err:
            self.fail(str(err), param, ctx)


def _scales(text):
    from ..testing.evaluate import parse_scales
    return parse_scales(text)


def _devices(text):
    from ..core.devices import parse_devices
    return parse_devices(text)


def _devices_text(text):
    _devices(text)
    return text  # training configs store the checked text


def _mean(text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise VggError("must be three numbers R,G,B, got %r" % text)
    return values


NET = Parsed("net", canonical_name, metavar="[%s]" % "|".join(CONFIGS))
SCALES = Parsed("Q[,Q...]", _scales)  # '256,384,512'
DEVICES = Parsed("DEVICES", _devices)  # 'cpu', 'cpu:0,1', 'gpu:0-3' -> [(kind, index)]
DEVICES_TEXT = Parsed("DEVICES", _devices_text)
MEAN = Parsed("R,G,B", _mean)


def overwrite_option(command):
    return click.option(
        "--overwrite", is_flag=True,
        help="Replace a previous vgg output of the same kind at --out (never anything "
             "else: vgg does not change files it did not write).")(command)


def dtype_option(command):
    return click.option(
        "--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
        help="Precision of convolutions and dense layers. auto: bfloat16 where a one-time "
             "probe measured it faster on this CPU model (cached), else float32; bfloat16 "
             "on CPUs with AVX512-BF16 or AMX; float16 on GPUs.")(command)
