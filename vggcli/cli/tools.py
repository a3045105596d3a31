"""``vgg convert``, ``vgg export`` and ``vgg bench``: weights in and out, benchmarks."""
import os

import click

from .options import NET, overwrite_option
from ..core.errors import VggError

@click.command()
@click.option("--from", "source", required=True,
              type=click.Choice(["gluoncv", "torchvision", "caffe"]),
              help="Where the weights come from.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--net", "net_name", type=NET, required=True, help="Configuration they hold.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Our parameter file (with its preprocessing).")
@overwrite_option
def convert(source, path, net_name, out, overwrite):
    """Import weights: GluonCV .params, torchvision .pth, the authors' .caffemodel.

    The source's preprocessing (torchvision's /255 and std, Caffe's BGR order)
    is folded into conv1_1 and the mean is stored in the file, so vgg eval and
    vgg features use it as it is. torchvision files are read with torch's
    weights-only loader (pickled code is refused); Caffe files need no Caffe.

    \b
    Example:
        vgg convert --from torchvision vgg16-397923af.pth --net D --out D.params
        vgg convert --from caffe VGG_ILSVRC_19_layers.caffemodel --net E --out E.params
    """
    from ..nets.convert import convert as run_convert

    net = run_convert(source, path, net_name, out, overwrite=overwrite)
    click.echo("net %s (%d classes) from %s %s -> %s" % (net.config, net.knobs["classes"],
                                                         source, path, out))


@click.command()
@click.option("--net", "net_name", type=NET, default=None, help="Configuration (checked).")
@click.option("--params", required=True, type=click.Path(dir_okay=False), help="Weights.")
@click.option("--format", "fmt", type=click.Choice(["symbol", "onnx"]), default="symbol",
              show_default=True, help="MXNet symbol JSON + params, or also ONNX.")
@click.option("--dense", is_flag=True, help="Export the fully convolutional form.")
@click.option("--input-size", type=click.IntRange(min=32), default=None,
              help="Input side for --dense (default: the crop size).")
@click.option("--out", "prefix", required=True,
              help="Output prefix: PREFIX-symbol.json, PREFIX-0000.params, PREFIX.onnx and "
                   "PREFIX.vgg-export.json (the record of what vgg wrote).")
@overwrite_option
def export(net_name, params, fmt, dense, input_size, prefix, overwrite):
    """Export a net for other tools: MXNet symbol (gluon.SymbolBlock.imports) or ONNX.

    \b
    Example:
        vgg export --params D.params --format onnx --out export/vgg16
        vgg export --params D.params --dense --input-size 384 --out export/vgg16-dense
    """
    from ..nets.export import export as run_export
    from ..testing.inference import load_for_inference

    net = load_for_inference(params, net_name, need_mean=False).net
    for path in run_export(net, prefix, fmt=fmt, dense=dense, input_size=input_size,
                           inputs=[params], overwrite=overwrite):
        click.echo(path)


@click.command()
@click.argument("names", nargs=-1)
def bench(names):
    """Run benchmarks (by default all but 'training', 'compression' and 'cluster', as
    make bench); each figure is a ratio against a named peer measured in the same run.
    Writes bench/results.json and bench/results.md.

    NAMES: inference, int8, torch, torch-training, threads, bfloat16, gflops, training,
    pipeline, packing, dense, distributed, compression, scaling, cluster (as root: three
    hosts in network namespaces, links shaped with tc).

    \b
    Example:
        vgg bench packing dense
    """
    from ..bench.suite import BENCHES, main as run_bench

    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise VggError("unknown benchmark %s; valid: %s" % (", ".join(unknown),
                                                            ", ".join(BENCHES)))
    run_bench(list(names))


@click.command()
@click.option("--protocol", type=click.Path(dir_okay=False), default=None,
              help="The study (default: recipes/reproduce/protocol.yaml).")
@click.option("--out", default=os.path.join("reproduce", "out"), show_default=True,
              type=click.Path(file_okay=False),
              help="Working folder: dataset, records, runs, evals, logs, jobs.jsonl. A "
                   "killed study resumes from it.")
@click.option("--report", default=os.path.join("reproduce", "REPORT.md"), show_default=True,
              type=click.Path(dir_okay=False), help="The Markdown report.")
@click.option("--copy-to", type=click.Path(dir_okay=False), default=None,
              help="Also write the report here (e.g. docs/reproduction.md), and its "
                   "reproduction.json beside it.")
@click.option("--jobs", "slots", type=click.IntRange(min=1), default=None,
              help="Commands run at once, one thread each (default: every core).")
def reproduce(protocol, out, report, copy_to, slots):
    """The paper's findings at small scale, with seeds, judged by stated tests.

    Trains Table 3's nets (A ... E at a fixed scale, all with the same schedule;
    D at a second scale and jittered from the same parent) for every seed of the
    protocol, tests them on a held-out test split as Tables 3-6 do, fuses the
    best two, compares fc7 features with raw pixels under a linear SVM, trains
    and tests localisation nets from net D (Appendix A, Tables 8-9), and writes a
    report and reproduction.json whose findings say per claim: the paired
    one-sided t-test (or non-inferiority test), p, Holm's p and the verdict.
    Exit status 1 when a job failed (the report says which).

    \b
    Example:
        vgg reproduce --copy-to docs/reproduction.md
    """
    from ..study import load_protocol, reproduce as run_study

    _, counts = run_study(out, report, protocol=load_protocol(protocol), slots=slots,
                          docs_copy=copy_to)
    click.echo("report: %s" % report)
    if counts.get("failed") or counts.get("skipped"):
        raise SystemExit(1)


COMMANDS = [convert, export, bench, reproduce]
