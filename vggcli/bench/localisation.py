"""Dense localisation (Table 9's protocol) batched across images, scales and shifts,
against the same engine run one part at a time (``batch_size=1``: one image, scale and
shift per forward pass, as dense localisation ran before it was batched), on the
demo's test split with the demo's nets (``make demo`` runs first where it has not)."""
import os
import shlex
import subprocess
import sys
import tempfile
import time

from .common import ROUNDS, _row
from ..core.plots import read_jsonl

DEMO = os.path.join("demo", "out")


def _demo_dense_job():
    """The options of the demo's single-scale dense localisation job, from its journal."""
    journal = os.path.join(DEMO, "jobs.jsonl")
    if not os.path.isfile(journal):
        subprocess.run([sys.executable, "-m", "vggcli.demo"], check=True,
                       stdout=subprocess.DEVNULL)
    for line in read_jsonl(journal):
        argv = shlex.split(line["command"])[1:]
        if line["status"] == "done" and argv[0] == "localise" and "dense" in argv \
                and "," not in argv[argv.index("--scales") + 1]:
            return {argv[i][2:]: argv[i + 1] for i in range(1, len(argv) - 1)
                    if argv[i].startswith("--") and not argv[i + 1].startswith("--")}
    raise RuntimeError("the demo ran no dense localisation job (%s)" % journal)


def bench_localisation(rounds=ROUNDS):
    """Each side once to warm up (the nets' first passes build oneDNN's kernels), then
    ``rounds`` rounds, the sides alternating; images/s of the whole command."""
    from ..localisation.localise import localise

    job = _demo_dense_job()
    timed, reports = {"ours": [], "peer": []}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(rounds + 1):
            for name, batch in (("ours", 32), ("peer", 1)):
                started = time.perf_counter()
                reports[name] = localise(
                    job["params"], job["data"], os.path.join(tmp, "%s-%d" % (name, run)),
                    mode="dense", scales=[int(job["scales"])], classifier=job["classifier"],
                    batch_size=batch, shifts=int(job["shifts"]), progress=False)
                if run:
                    timed[name].append(reports[name]["images"] /
                                       (time.perf_counter() - started))
    same = reports["ours"]["errors"] == reports["peer"]["errors"]
    return [_row("dense localisation, demo test split (%d images), Q=%s, %s shifts, batch 32"
                 % (reports["ours"]["images"], job["scales"], job["shifts"]),
                 timed["ours"], timed["peer"], "the same, one part per forward pass", 5.0,
                 "images/s", note="errors %s (top-1 %.3f vs %.3f)" % (
                     "equal" if same else "DIFFER", reports["ours"]["errors"]["1"],
                     reports["peer"]["errors"]["1"]))]
