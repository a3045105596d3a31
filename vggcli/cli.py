"""The ``vgg`` command. Each command parses its options and calls one library function.

Library modules are imported inside the commands: MXNet must not be loaded
before ``--threads`` has been applied, and ``vgg --help`` stays fast.
"""
import json
import sys

import click

from . import __version__
from ._env import configure_environment, quiet_warnings
from .errors import VggError
from .configs import CONFIGS, canonical_name


class CliError(click.ClickException):
    """A library error shown as one 'Error: ...' line with its own exit code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class VggGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VggError as err:
            raise CliError(str(err), err.exit_code) from None


class NetType(click.ParamType):
    """A registry name (case-insensitive); the error lists the valid names."""

    name = "net"

    def get_metavar(self, param, *args, **kwargs):
        return "[%s]" % "|".join(CONFIGS)

    def convert(self, value, param, ctx):
        try:
            return canonical_name(value)
        except VggError as err:
            self.fail(str(err), param, ctx)


NET = NetType()


@click.group(cls=VggGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vgg")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for MXNet's operators. Default: $OMP_NUM_THREADS if set, "
                   "else every core this process may use (MXNet alone would use one).")
def cli(threads):
    """Very deep convolutional networks (Simonyan & Zisserman, ICLR 2015), one command per step.

    \b
    Example:
        vgg nets
        vgg nets --net D --width-mult 0.25 --crop-size 64 --classes 10
    """
    configure_environment(threads)
    quiet_warnings()


@cli.command()
@click.option("--net", "nets", type=NET, multiple=True,
              help="Only these configurations (repeatable). Default: all six.")
@click.option("--classes", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Outputs of fc8.")
@click.option("--width-mult", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Multiplier on every convolution's width.")
@click.option("--fc-width", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Width of fc6 and fc7.")
@click.option("--crop-size", type=click.IntRange(min=32), default=224, show_default=True,
              help="Input crop side (a multiple of 32).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def nets(nets, classes, width_mult, fc_width, crop_size, as_json):
    """Print the paper's Table 1 (layers) and Table 2 (parameters) from the code's own table.

    Parameter counts come from the built networks' parameter shapes (no
    weights are allocated); multiply-adds are per image at the crop size.

    \b
    Example:
        vgg nets --net D --net E
    """
    from .tables import network_tables

    selected = list(nets) or list(CONFIGS)
    tables = network_tables(selected, classes=classes, width_mult=width_mult,
                            fc_width=fc_width, crop_size=crop_size)
    if as_json:
        click.echo(json.dumps(tables["rows"], indent=2))
    else:
        click.echo(tables["markdown"])


def main():
    cli(prog_name="vgg")


if __name__ == "__main__":
    sys.exit(main())
