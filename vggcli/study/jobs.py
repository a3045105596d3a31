"""Every job of a study, in the order the runner starts them as their dependencies
finish: training runs (children after their parents), tests, fusions, features and
the SVMs, localisation, and the raw-pixel baseline."""
import os

from .plan import Job, eval_jobs, paths, run_folder, train_job, transfer_jobs
from .plan_localisation import localisation_jobs


def plan_jobs(protocol, out):
    """Every job of the study, parents before children (the order they are started in:
    the pixel baseline first, then seeds interleaved, so the cores share the long
    chains)."""
    jobs = []
    for name, run in protocol["runs"].items():
        for seed in protocol["seeds"]:
            extra, deps = [], []
            if run.get("parent"):
                parent = protocol["runs"][run["parent"]]
                flag = "--finetune-from" if parent["net"] == run["net"] else "--init-from"
                extra = [flag, os.path.join(run_folder(out, seed, run["parent"]),
                                            "best.params")]
                deps.append("train s%d/%s" % (seed, run["parent"]))
            jobs.append(train_job(protocol, out, seed, name, run["net"], run["scale"], run,
                                  extra, deps))
    jobs += eval_jobs(protocol, out) + transfer_jobs(protocol, out)
    if "localisation" in protocol:
        jobs += localisation_jobs(protocol, out)
    where = paths(out)
    pixels = os.path.join(where["features"], "pixels-%s.npz")
    folder = os.path.join(where["transfer"], "pixels")
    jobs.insert(0, Job("transfer pixels", ["transfer", "--train", pixels % "train", "--test",
                                           pixels % "test", "--out", folder], [],
                       os.path.join(folder, "report.json")))
    return jobs
