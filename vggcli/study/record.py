"""``reproduction.json``: every run's per-seed numbers and every claim's two sides,
statistic, p and verdict, so that anyone can recompute each verdict with scipy from
this file alone (tests/test_study.py does)."""
import json
import platform
import subprocess
import time

from .plan import scale_text

RULE = ("d = worse - better per seed, over seeds not left out; t = (mean d + margin) / "
        "(sd d / sqrt n); p = P(T_{n-1} >= t) (scipy.stats.t.sf); held if p < alpha, not "
        "held if p > 1 - alpha, else inconclusive; not judged if n < 2; margin 0 for "
        "superiority; p_holm: Holm's step-down adjustment over the claims with a p")


CODE = ("vggcli", "data_tools", "recipes", "setup.py", "constraints.txt")


def provenance():
    """The commit (with '-dirty' when the code that ran differs from it: the package,
    the recipes, the pins), package versions, CPU."""
    import os
    import mxnet
    import numpy
    import scipy

    from data_tools.common import available_cores

    from ..core.precision import cpu_description

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def git(*args):
        try:
            return subprocess.run(["git"] + list(args), capture_output=True, text=True,
                                  timeout=10, cwd=root).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD") or "unknown"
    if commit != "unknown" and git("status", "--porcelain", "--untracked-files=no", "--",
                                   *CODE):
        commit += "-dirty"
    return dict(commit=commit, generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                versions=dict(python=platform.python_version(), mxnet=mxnet.__version__,
                              numpy=numpy.__version__, scipy=scipy.__version__),
                machine="%s, %d cores" % (cpu_description(), available_cores()))


def _test_settings(protocol, name, results, seed):
    tests = protocol["scales"][protocol["runs"][name]["scale"]]["test"]
    settings = {}
    for kind, label in (("single", "dense Q=%d" % tests[1]),
                        ("multi", "dense Q=%s" % scale_text(tests)),
                        ("multicrop", "multi-crop Q=%s" % scale_text(tests)),
                        ("both", "dense & multi-crop Q=%s" % scale_text(tests))):
        value = results.get((kind, name, seed))
        if value is not None:
            settings[label] = dict(top1_error=round(value[0], 4), top5_error=round(value[1], 4))
    return settings


def _run_rows(protocol, results):
    rows = []
    trained = [(name, run["net"], protocol["scales"][run["scale"]]["train"], True)
               for name, run in protocol["runs"].items()]
    for name, run in protocol.get("localisation", {}).get("runs", {}).items():
        parent = protocol["runs"][run["parent"]]
        trained.append(("loc-" + name, parent["net"],
                        protocol["scales"][parent["scale"]]["train"], False))
    for name, net, scale, classifier in trained:
        for seed in protocol["seeds"]:
            course = results.get(("training", name, seed)) or {}
            rows.append(dict(run=name, net=net, train_scale=str(scale), seed=seed,
                             epochs=course.get("epochs"), lr_divisions=course.get("reductions"),
                             final_train_loss=course.get("final_loss"),
                             learned=course.get("learned"),
                             test=_test_settings(protocol, name, results, seed)
                             if classifier else {}))
    return rows


def _side(label, values, seeds):
    return dict(label=label, values={str(s): v for s, v in zip(seeds, values)})


def build(protocol, results, judged, info):
    seeds = protocol["seeds"]
    claims = []
    for found in judged:
        claims.append(dict(
            claim=found["claim"], kind=found["kind"], margin=found["margin"],
            paper=found["paper"], sides=[_side(*found["better"], seeds),
                                         _side(*found["worse"], seeds)],
            left_out={str(s): why for s, why in found["left_out"].items()},
            n=found["n"], mean=found["mean"], t=found["t"], df=found["df"], p=found["p"],
            p_holm=found["p_holm"], verdict=found["verdict"],
            per_image=None if found.get("per_image_tests") is None else {
                str(s): dict(better_only=b, worse_only=c, p=p)
                for s, (b, c, p) in found["per_image_tests"].items()}))
    svm_pixels = results.get(("pixels", None, None))
    return dict(info, seeds=seeds, statistics=dict(protocol["statistics"], rule=RULE),
                runs=_run_rows(protocol, results),
                pixels_svm_accuracy=svm_pixels, claims=claims)


def write(path, record):
    from data_tools.common import write_text_atomic
    write_text_atomic(path, json.dumps(record, indent=1, allow_nan=False,
                                       default=_plain) + "\n")


def _plain(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError("not JSON: %r" % (value,))
