"""The study's protocol file: read, validated, every fault a one-line VggError."""
import os

from ..core.errors import VggError

REQUIRED = ("dataset", "seeds", "model", "training", "scales", "runs", "multicrop", "fusion",
            "features", "pixels_side", "statistics")


def protocol_path(name="protocol.yaml"):
    from ..training.recipes import recipes_dir
    return os.path.join(recipes_dir(), "reproduce", name)


def load_protocol(path=None):
    """The validated protocol (a dict); VggError naming the file and the fault."""
    from ..training.recipes import read_mapping

    path = path or protocol_path()
    protocol = read_mapping(path, "protocol")

    def fail(message):
        raise VggError("protocol %s: %s" % (path, message))
    for key in REQUIRED:
        if key not in protocol:
            fail("%s is missing" % key)
    _check_seeds(protocol["seeds"], fail)
    _check_runs(protocol, fail)
    for key in ("multicrop", "fusion"):
        if not all(name in protocol["runs"] for name in protocol[key]):
            fail("%s names a run that is not in runs" % key)
    if protocol["features"].get("run") not in protocol["runs"]:
        fail("features.run must be a run")
    _check_statistics(protocol["statistics"], fail)
    if "localisation" in protocol:
        _check_localisation(protocol, fail)
    with open(path, "rb") as f:
        protocol["_text"] = f.read().decode("utf-8")
    return protocol


def _check_seeds(seeds, fail):
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0
                                                      for s in seeds)):
        fail("seeds must be a list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        fail("seeds repeat")


def _check_runs(protocol, fail):
    from ..nets.configs import canonical_name
    scales, runs = protocol["scales"], protocol["runs"]
    for name, scale in scales.items():
        if not (isinstance(scale, dict) and "train" in scale and isinstance(
                scale.get("test"), list) and len(scale["test"]) == 3):
            fail("scale %s needs train and three test scales" % name)
    for name, run in runs.items():
        if not isinstance(run, dict) or run.get("scale") not in scales:
            fail("run %s: scale must be one of %s" % (name, ", ".join(scales)))
        try:
            run["net"] = canonical_name(str(run.get("net")))
        except VggError as err:
            fail("run %s: %s" % (name, err))
        if run.get("parent") is not None and run["parent"] not in runs:
            fail("run %s: parent %s is not a run" % (name, run["parent"]))
        _check_schedule(run, "run %s" % name, fail)
    order = list(runs)
    for name, run in runs.items():
        if run.get("parent") and order.index(run["parent"]) > order.index(name):
            fail("run %s comes before its parent %s" % (name, run["parent"]))


def _check_schedule(run, what, fail):
    epochs = run.get("epochs")
    if not (isinstance(epochs, int) and epochs > 0):
        fail("%s: epochs must be a positive integer" % what)
    steps = run.get("steps", [])
    if not (isinstance(steps, list) and all(isinstance(s, int) and 0 < s < epochs
                                            for s in steps) and steps == sorted(set(steps))):
        fail("%s: steps must be increasing epochs between 1 and epochs - 1" % what)


def _check_statistics(stats, fail):
    if not isinstance(stats, dict):
        fail("statistics must be a mapping")
    for key, low, high in (("alpha", 0, 0.5), ("margin", 0, 100), ("chance_margin", 0, 100)):
        value = stats.get(key)
        if not (isinstance(value, (int, float)) and low < value < high):
            fail("statistics.%s must be a number in (%g, %g)" % (key, low, high))


def _check_localisation(protocol, fail):
    loc = protocol["localisation"]
    for key in ("lr", "epochs", "shifts", "runs", "table8", "table9", "fusion"):
        if key not in loc:
            fail("localisation.%s is missing" % key)
    _check_schedule(loc, "localisation", fail)
    for name, run in loc["runs"].items():
        if not isinstance(run, dict) or run.get("task") not in ("scr", "pcr") or \
                run.get("layers") not in ("fc", "all"):
            fail("localisation run %s needs task scr or pcr and layers fc or all" % name)
        parent = protocol["runs"].get(run.get("parent"))
        if parent is None or ":" in str(protocol["scales"][parent["scale"]]["train"]):
            fail("localisation run %s: parent must be a run at a fixed scale (§A.1)" % name)
    if not 1 <= len(loc["table8"]) <= 3 or not all(n in loc["runs"] for n in loc["table8"]):
        fail("localisation.table8 must name one to three localisation runs")
    if not 1 <= len(loc["table9"]) <= 3 or not all(
            isinstance(row, dict) and row.get("run") in loc["runs"] and isinstance(
                row.get("scales"), list) and row["scales"] for row in loc["table9"].values()):
        fail("localisation.table9 must have one to three rows, each a run and test scales")
    if len(loc["fusion"]) not in (0, 2) or not all(n in loc["table9"] for n in loc["fusion"]):
        fail("localisation.fusion must name two table9 rows, or none")
