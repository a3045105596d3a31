"""The ``vgg`` command: the root group (the error boundary) and ``main``. The
commands live by paper step: ``data`` (pack, pack-imagenet, inspect), ``train``
(train, recipe, launch), ``testing`` (eval, fuse, localise, features, transfer),
``tools`` (convert, export, bench, reproduce); their shared options in ``options``.
Each command parses its options and calls one library function.

Library modules are imported inside the commands: MXNet must not be loaded
before ``--threads`` has been applied, and ``vgg --help`` stays fast.
"""
import json
import os
import sys

import click

from .. import __version__
from .. import configure
from data_tools.common import (DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, file_system_error,
                               lift_pillow_limit)

from ..core.errors import VggError
from . import data, testing, tools, train
from .options import NET
from ..nets.configs import CONFIGS


class CliError(click.ClickException):
    """A library error shown as one 'Error: ...' line with its own exit code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class VggGroup(click.Group):
    """The error boundary: whatever escapes a command is one 'Error: ' line. A bug (an
    exception we did not foresee) says so, with the traceback in a crash log;
    VGG_DEBUG=1 lets it through instead."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VggError as err:
            raise CliError(str(err), err.exit_code) from None
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort, BrokenPipeError):
            raise  # a closed pipe (vgg ... | head): click exits quietly
        except OSError as err:  # a full or read-only disk, no permission: not a bug
            known = file_system_error(err)
            if known is None:
                raise CliError(internal_error(err), 1) from None
            raise CliError(*known) from None
        except Exception as err:
            raise CliError(internal_error(err), 1) from None


def internal_error(err):
    """The one line for a bug, after writing its traceback to a crash log (or, with
    VGG_DEBUG=1, re-raising it)."""
    import traceback

    from data_tools.common import first_line
    if os.environ.get("VGG_DEBUG"):
        raise err
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    where = None
    folder = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"), "vgg", "crashes")
    try:
        import time
        os.makedirs(folder, exist_ok=True)
        where = os.path.join(folder, "%s-%d.log" % (time.strftime("%Y%m%d-%H%M%S"),
                                                     os.getpid()))
        with open(where, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write("vgg %s\n%s" % (" ".join(sys.argv[1:]), text))
    except OSError:
        where = None
    return "internal error (%s: %s): this is a bug in vgg; please report it%s " \
           "(VGG_DEBUG=1 shows the traceback)" % (
               type(err).__name__, first_line(err) or "no message",
               " with %s" % where if where else "")


@click.group(cls=VggGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vgg")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for MXNet's operators. Default: $OMP_NUM_THREADS if set, "
                   "else every core this process may use (MXNet alone would use one).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Skip (or refuse) images whose header declares more pixels than this, "
                   "before decoding. Default: %d (Pillow's decompression-bomb limit)."
                   % DEFAULT_MAX_PIXELS)
def cli(threads, max_pixels):
    """Very deep convolutional networks (Simonyan & Zisserman, ICLR 2015), one command per step.

    \b
    Example:
        vgg nets
        vgg nets --net D --width-mult 0.25 --crop-size 64 --classes 10
    """
    configure(threads)
    lift_pillow_limit()  # ours instead (check_declared_size): the command owns the process
    if max_pixels is not None:  # an environment variable: pack's workers inherit it
        os.environ[MAX_PIXELS_VARIABLE] = str(max_pixels)
    # the same limit for formats only OpenCV reads (read when it first decodes)
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = os.environ.get(MAX_PIXELS_VARIABLE,
                                                              str(DEFAULT_MAX_PIXELS))


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
    from ..nets.tables import network_tables

    selected = list(nets) or list(CONFIGS)
    tables = network_tables(selected, classes=classes, width_mult=width_mult,
                            fc_width=fc_width, crop_size=crop_size)
    if as_json:
        click.echo(json.dumps(tables["rows"], indent=2))
    else:
        click.echo(tables["markdown"])


for _module in (data, train, testing, tools):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main():
    try:
        cli(prog_name="vgg")
    except BaseException as exit_or_error:
        if os.environ.get("DMLC_ROLE") == "worker":
            # NOTE: a failed ps-lite worker would block forever at interpreter exit
            # (ps::Finalize waits for every node); leave at once so the launcher
            # sees the failure and stops the job.
            code = getattr(exit_or_error, "code", 1)
            if code not in (0, None):
                if not isinstance(exit_or_error, SystemExit):
                    import traceback
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)
        raise


if __name__ == "__main__":
    sys.exit(main())
