"""Appendix A's jobs: localisation nets trained from the classification nets, tested
with the central crop (Table 8) and densely (Table 9), two dense outputs fused."""
import os

from .plan import (Job, paths, run_folder, scale_text, slug_free as slug, test_records,
                   train_job)


def localisation_jobs(protocol, out):
    where = paths(out)
    loc, scales = protocol["localisation"], protocol["scales"]
    test = test_records(out)
    jobs = []
    for seed in protocol["seeds"]:
        tests = os.path.join(where["localise"], "s%d" % seed)
        for name, run in loc["runs"].items():
            parent = protocol["runs"][run["parent"]]
            jobs.append(train_job(
                protocol, out, seed, "loc-" + name, parent["net"], parent["scale"], loc,
                ["--task", run["task"], "--train-layers", run["layers"], "--finetune-from",
                 os.path.join(run_folder(out, seed, run["parent"]), "best.params")],
                ["train s%d/%s" % (seed, run["parent"])]))
        for name in loc["table8"]:
            parent = protocol["runs"][loc["runs"][name]["parent"]]
            folder = os.path.join(tests, "center-" + name)
            jobs.append(Job("localise s%d/center-%s" % (seed, name), [
                "localise", "--params", os.path.join(run_folder(out, seed, "loc-" + name),
                                                     "best.params"),
                "--data", test, "--mode", "center", "--scales",
                str(scales[parent["scale"]]["train"]), "--out", folder, "--quiet"],
                ["train s%d/loc-%s" % (seed, name)], os.path.join(folder, "report.json")))
        for row, spec in loc["table9"].items():
            run = loc["runs"][spec["run"]]
            folder = os.path.join(tests, "dense-" + slug(row))
            jobs.append(Job("localise s%d/dense-%s" % (seed, slug(row)), [
                "localise", "--params", os.path.join(run_folder(out, seed, "loc-" + spec["run"]),
                                                     "best.params"),
                "--classifier", os.path.join(run_folder(out, seed, run["parent"]), "best.params"),
                "--data", test, "--mode", "dense", "--scales", scale_text(spec["scales"]),
                "--shifts", str(loc["shifts"]), "--out", folder, "--quiet"],
                ["train s%d/loc-%s" % (seed, spec["run"])], os.path.join(folder, "report.json")))
        if not loc["fusion"]:
            continue
        members = [os.path.join(tests, "dense-" + slug(row)) for row in loc["fusion"]]
        folder = os.path.join(tests, "fusion")
        jobs.append(Job("localise s%d/fusion" % seed, ["fuse"] + members + ["--out", folder],
                        ["localise s%d/dense-%s" % (seed, slug(row)) for row in loc["fusion"]],
                        os.path.join(folder, "report.json")))
    return jobs
