"""``vgg bench cluster``: dist_sync training across 1, 2 and 3 hosts over ssh on links
shaped by tc (vggcli.distributed.netlab), beside ``scaling_model``'s prediction for the same
measured step time, parameter count and bandwidth."""
import os
import shutil
import subprocess
import sys
import tempfile
from statistics import median

from .common import _row
from ..core.processes import vgg_argv
from .distributed import _digits_records, _step_rates, scaling_model

# net A at 1/8 width with 1024-wide fc6/fc7: 1.3M parameters (5.3 MB a push), so a
# 1 Gbit/s link costs about as much time per step as the step's compute on one core
NET = ["--net", "A", "--width-mult", "0.125", "--fc-width", "1024", "--crop-size", "32",
       "--scale", "36", "--dtype", "float32", "--quiet"]
BATCH = 48  # splits over 1, 2 and 3 workers
COMPRESSION = "2bit:0.5"
TARGET = 0.8  # measured speed-up within 20% of the model's


def _net_params():
    from ..nets import models
    return models.count_params(models.get_model("A", classes=10, width_mult=0.125,
                                                fc_width=1024, crop_size=32))


def _run(lab, data, out, hosts, compressed, log_every):
    """images/s of every logged interval (all workers), one worker and one server per
    host, one thread each (the 2-core machine's hosts would otherwise fight for cores)."""
    hosts_file = os.path.join(lab.work, "hosts-%d" % hosts)
    with open(hosts_file, "w") as f:
        f.write("\n".join(lab.names[:hosts]) + "\n")
    argv = lab.exec_argv(lab.names[0], [
        *vgg_argv(["launch"]), "-n", str(hosts), "-s", str(hosts),
        "--launcher", "ssh", "--hosts", hosts_file, "--interface", "eth0",
        "--ssh-config", lab.ssh_config, "--", "vgg", "train", "--kvstore", "dist_sync",
        "--data", data, "--out", out, "--batch-size", str(BATCH), "--epochs", "2",
        "--log-every", str(log_every)] + NET + (
        ["--gradient-compression", COMPRESSION] if compressed else []))
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if done.returncode != 0:
        from ..core.errors import VggRuntimeError
        lines = (done.stdout + done.stderr).strip().splitlines()
        raise VggRuntimeError("bench cluster: the %d-host run failed: %s" % (
            hosts, " | ".join(lines[-6:]) if lines else "exit status %d" % done.returncode))
    return _step_rates(out, hosts)


def bench_cluster(log_every=5):
    from ..distributed import netlab
    why = netlab.unavailable()
    if why:
        print("bench: cluster skipped: %s" % why, file=sys.stderr)
        return []
    work = tempfile.mkdtemp(prefix="vgg-bench-cluster-")
    try:
        data = _digits_records(work)
        rates = {}
        with netlab.Lab(3) as lab:
            for gbit, hosts, compressed in ((1, 1, False), (1, 2, False), (1, 2, True),
                                            (1, 3, False), (10, 2, False)):
                lab.shape(gbit * 1000)
                out = os.path.join(work, "run-%d-%d-%d" % (gbit, hosts, compressed))
                rates[gbit, hosts, compressed] = _run(lab, data, out, hosts, compressed,
                                                      log_every)
        return _rows(rates, _net_params())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rows(rates, params):
    one = median(rates[1, 1, False])  # no link crossed: compute and ps-lite alone
    rows = []
    for gbit, hosts, compressed in ((1, 2, False), (1, 2, True), (10, 2, False),
                                    (1, 3, False)):
        measured = median(rates[gbit, hosts, compressed]) / one
        model = scaling_model(1.0 / one, params, machines=(hosts,), gbits=(gbit,),
                              batch=BATCH, compression=16 if compressed else 1)[hosts, gbit]
        rows.append(_row(
            "cluster: %d hosts over 1, %d Gbit/s links (tc), %s" % (
                hosts, gbit, "2-bit pushes" if compressed else "fp32 gradients"),
            measured, model, "scaling_model", TARGET, "x",
            note="speed-up in images/s, net A 1/8 width with 1024-wide fc (%.1fM parameters), "
                 "batch %d, one thread per rank; the model from 1 host's %.0f images/s%s" % (
                     params / 1e6, BATCH, one,
                     "; 3 hosts share this machine's cores" if hosts > 2 else "")))
    return rows
