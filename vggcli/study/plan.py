"""Every ``vgg`` command of a study as a Job, with the jobs it needs first."""
import os


class Job:
    """One ``vgg`` command (``argv``), runnable once the jobs named in ``deps`` are done;
    ``done_file`` exists once it has finished (outputs are written atomically)."""

    def __init__(self, name, argv, deps, done_file, resume_argv=None, resumable=None,
                 cost=1):
        self.name, self.argv, self.deps, self.done_file = name, argv, deps, done_file
        self.cost = cost  # for the time estimate: epochs (training) or 1
        self.resume_argv, self.resumable = resume_argv, resumable
        self.status, self.seconds, self.used = "pending", 0.0, argv

    def is_done(self):
        return os.path.isfile(self.done_file)

    def command(self):
        """argv for this attempt: resume a run whose checkpoints an earlier attempt left."""
        if self.resume_argv and self.resumable and os.path.isdir(self.resumable) and \
                os.listdir(self.resumable):
            return self.resume_argv
        return self.argv


def slug_free(text):
    """A folder name for a table 9 row name such as 'S2/50,54'."""
    return text.replace("/", "-").replace("{", "").replace("}", "").replace(",", "+")


def scale_text(values):
    return ",".join(str(v) for v in values)


def paths(out):
    return dict(raw=os.path.join(out, "scaled-digits"), data=os.path.join(out, "data"),
                runs=os.path.join(out, "runs"), eval=os.path.join(out, "eval"),
                localise=os.path.join(out, "localise"),
                fuse=os.path.join(out, "fuse"), features=os.path.join(out, "features"),
                transfer=os.path.join(out, "transfer"), logs=os.path.join(out, "logs"))


def test_records(out):
    """The split the study reports on: test.rec (val.rec picks checkpoints and lr)."""
    return os.path.join(paths(out)["data"], "test.rec")


def train_flags(protocol):
    """The ``vgg train`` flags every run of the protocol shares (model and training)."""
    model, training = protocol["model"], protocol["training"]
    flags = ["--crop-size", str(model["crop_size"]), "--width-mult", str(model["width_mult"]),
             "--fc-width", str(model["fc_width"])]
    for key in ("batch_size", "init", "input_std", "dropout", "warmup", "wd", "dtype"):
        if key in training:
            flags += ["--" + key.replace("_", "-"), str(training[key])]
    return flags


def schedule_flags(run):
    """A fixed schedule: ``epochs``, lr divided by 10 after each of ``steps``."""
    flags = ["--epochs", str(run["epochs"])]
    if run.get("steps"):
        flags += ["--lr-steps", scale_text(run["steps"])]
    else:  # no division: a constant rate for the whole run
        flags += ["--lr-steps", str(run["epochs"] + 1)]
    return flags


def run_folder(out, seed, name):
    return os.path.join(paths(out)["runs"], "s%d" % seed, name)


def train_job(protocol, out, seed, name, net, scale, run, extra, deps):
    """The job of one ``vgg train`` run of the study (``extra``: its own flags), resumed
    from its checkpoints when an earlier attempt left some."""
    folder = run_folder(out, seed, name)
    argv = ["train", "--net", net, "--data", paths(out)["data"], "--out", folder,
            "--scale", str(protocol["scales"][scale]["train"]), "--lr", str(run["lr"]),
            "--seed", str(seed), "--workers", "0", "--keep", "1", "--quiet"] + \
        schedule_flags(run) + train_flags(protocol) + extra
    return Job("train s%d/%s" % (seed, name), argv, deps, os.path.join(folder, "final.params"),
               resume_argv=["train", "--resume", folder, "--quiet"],
               resumable=os.path.join(folder, "checkpoints"), cost=run["epochs"])


def eval_jobs(protocol, out):
    """Each run tested on the test split at its three scales (dense, or dense and
    multi-crop for the runs Table 5 names), then each seed's fusion."""
    where, scales, jobs = paths(out), protocol["scales"], []
    for name, run in protocol["runs"].items():
        for seed in protocol["seeds"]:
            folder = os.path.join(where["eval"], "s%d" % seed, name)
            mode = "both" if name in protocol["multicrop"] else "dense"
            jobs.append(Job("eval s%d/%s" % (seed, name), [
                "eval", "--params", os.path.join(run_folder(out, seed, name), "best.params"),
                "--data", test_records(out), "--scales",
                scale_text(scales[run["scale"]]["test"]), "--mode", mode, "--out", folder,
                "--quiet"], ["train s%d/%s" % (seed, name)], os.path.join(folder, "report.json")))
    for seed in protocol["seeds"]:
        folder = os.path.join(where["fuse"], "s%d" % seed)
        members = [os.path.join(where["eval"], "s%d" % seed, n) for n in protocol["fusion"]]
        jobs.append(Job("fuse s%d" % seed, ["fuse"] + members + ["--out", folder],
                        ["eval s%d/%s" % (seed, n) for n in protocol["fusion"]],
                        os.path.join(folder, "report.json")))
    return jobs


def transfer_jobs(protocol, out):
    """Appendix B: fc7 features of train and test, a linear SVM trained on the first."""
    where, feats, jobs = paths(out), protocol["features"], []
    for seed in protocol["seeds"]:
        params = os.path.join(run_folder(out, seed, feats["run"]), "best.params")
        files = {}
        for split in ("train", "test"):
            files[split] = os.path.join(where["features"], "s%d-%s.npz" % (seed, split))
            jobs.append(Job("features s%d/%s" % (seed, split), [
                "features", "--params", params, "--layer", feats.get("layer", "fc7"),
                "--scales", scale_text(feats["scales"]), "--data",
                os.path.join(where["data"], split + ".rec"), "--out", files[split],
                "--quiet"], ["train s%d/%s" % (seed, feats["run"])], files[split]))
        folder = os.path.join(where["transfer"], "s%d" % seed)
        jobs.append(Job("transfer s%d" % seed, [
            "transfer", "--train", files["train"], "--test", files["test"], "--out", folder],
            ["features s%d/train" % seed, "features s%d/test" % seed],
            os.path.join(folder, "report.json")))
    return jobs
