"""Random-kill tests: pack, train, eval, features, localise and reproduce, each killed
with SIGKILL at seeded random moments and run again as its own error message tells a
user to (the same command, or with ``--resume`` where it asks for it).

The properties, for every kill:
- a killed run leaves nothing complete-looking under the output's name (manifest.json,
  final.params, the eval or localise folder, the .npz, the study's report) unless it
  is complete: equal to the uninterrupted run's;
- no process it started outlives it (children end with their parent);
- the rerun succeeds, leaves no temporary behind, and its outputs equal an
  uninterrupted run's: bit for bit, except the wall-clock fields of the JSON logs and
  reports (times, rates), which no two runs share.

Kill points: ``VGG_KILLS`` per command (default 3), the i-th at
``start-up + random.Random("<command>-<i>").uniform(0.05, 0.95) * (T - start-up)``,
where T is the uninterrupted run's wall time and start-up the time Python takes to
import the command and what it loads first (MXNet; OpenCV for pack): the kills land
in the command's work, not in its imports. Every run goes to the same path as the
uninterrupted one (moved aside first), so paths inside reports agree. At least one
kill per command must find the command still running."""
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from .hostile import alive, descendants

KILLS = int(os.environ.get("VGG_KILLS", "3"))
# wall-clock fields: the only parts of an output two runs of the same work may differ in
VOLATILE = {"time", "seconds", "images_per_second", "descriptors_per_second", "elapsed",
            "elapsed_s", "wall_s", "started", "finished", "duration", "eta"}


def vgg(args, timeout=600):
    return subprocess.run([sys.executable, "-m", "vggcli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


@functools.lru_cache(maxsize=None)
def start_up(imports):
    """Seconds for Python to import vgg's commands and ``imports`` (the least of three)."""
    times = []
    for _ in range(3):
        begun = time.monotonic()
        subprocess.run([sys.executable, "-c", "import vggcli.cli, " + imports], check=True)
        times.append(time.monotonic() - begun)
    return min(times)


def kill_at(args, delay):
    """Run ``vgg args`` and SIGKILL it ``delay`` s after its start: True when it was
    killed (False: it had finished). Asserts that its processes end with it."""
    proc = subprocess.Popen([sys.executable, "-m", "vggcli"] + [str(a) for a in args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start, children = time.monotonic(), set()
    while time.monotonic() - start < delay and proc.poll() is None:
        children |= descendants(proc.pid)
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    children |= descendants(proc.pid)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "processes outlived their parent"
    return True


def _strip(value, volatile):
    if isinstance(value, dict):
        return {k: _strip(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_strip(v, volatile) for v in value]
    return value


def contents(path, volatile=VOLATILE):
    """{relative name: content} of an output file or folder; JSON, JSON lines and the
    features file's info record parsed, with their wall-clock fields left out."""
    files = [(os.path.basename(path), path)] if os.path.isfile(path) else [
        (os.path.relpath(os.path.join(d, n), path), os.path.join(d, n))
        for d, _, names in os.walk(path) for n in names]
    out = {}
    for name, full in sorted(files):
        with open(full, "rb") as f:
            data = f.read()
        if name.endswith(".json"):
            data = _strip(json.loads(data), volatile)
        elif name.endswith(".jsonl"):
            data = [_strip(json.loads(line), volatile) for line in data.splitlines()]
        elif name.endswith(".npz") and "info.npy" in zipfile.ZipFile(full).namelist():
            with np.load(full) as arrays:  # vgg features: its info record holds a rate
                data = {k: _strip(json.loads(str(arrays[k])), volatile) if k == "info" else
                        arrays[k].tobytes() for k in arrays.files}
        out[name] = data
    return out


def temporaries(path):
    """Temporaries of ours left beside or inside ``path`` (data_tools.common's names)."""
    head = os.path.dirname(os.path.abspath(path))
    found = [n for n in os.listdir(head) if ".tmp-" in n]
    if os.path.isdir(path):
        found += [n for _, _, names in os.walk(path) for n in names if ".tmp-" in n]
    return found


def killed_runs_agree(name, args, out, complete, resume=None, compare=None, imports="mxnet",
                      volatile=VOLATILE):
    """The test's body for one command (module docstring). ``out``: the output path
    given in ``args``; ``complete``: the path whose existence means a finished run;
    ``resume``: the rerun a refusal that asks for --resume leads to; ``compare``: the
    outputs to compare (default: all of ``out``); ``imports``: what the command loads
    before its work; ``volatile``: the JSON fields left out of the comparison."""
    compare = compare or [out]
    startup = start_up(imports)
    begun = time.monotonic()
    done = vgg(args)
    took = time.monotonic() - begun
    assert done.returncode == 0, done.stderr[-3000:]
    reference = {str(p): contents(p, volatile) for p in compare}
    written = sorted({str(p) for p in [out, complete] + compare})
    for path in written:
        if os.path.exists(path):
            os.rename(path, path + ".reference")
    landed = 0
    for i in range(KILLS):
        delay = startup + (took - startup) * random.Random("%s-%d" % (name, i)).uniform(
            0.05, 0.95)
        killed = kill_at(args, delay)
        landed += killed
        rerun = not os.path.exists(complete)
        if rerun:
            again = vgg(args)
            if again.returncode == 2 and "--resume" in again.stderr and resume:
                again = vgg(resume)
            assert again.returncode == 0, (delay, again.stderr[-3000:])
        # else it was killed after its last write (or finished): it must be whole
        for path in compare:
            assert contents(path, volatile) == reference[str(path)], \
                "%s killed at %.1f s: %s differs" % (name, delay, path)
        # a killed run's temporaries go with the next run of the same output
        assert not (rerun and temporaries(out)), temporaries(out)
        for path in written:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    assert landed, "%s finished before each of its kills (took %.1f s)" % (name, took)


@pytest.fixture(scope="module")
def big_digits(tmp_path_factory):
    """The digits at 192x192 (41 MB of PNGs): a pack that runs for seconds."""
    from data_tools.digits import write_digits
    root = tmp_path_factory.mktemp("digits192") / "raw"
    write_digits(str(root), side=192)
    return root


@pytest.mark.slow
def test_pack(big_digits, tmp_path):
    out = tmp_path / "packed"
    args = ["--threads", "1", "pack", big_digits, "--out", out, "--val-ratio", "0.5",
            "--workers", "1", "--checkpoint-every", "50", "--quiet"]
    killed_runs_agree("pack", args, out, out / "manifest.json", resume=args + ["--resume"],
                      imports="cv2, data_tools.pack")


@pytest.mark.slow
def test_train(digits, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--net", "A", "--data", digits, "--width-mult", "0.125", "--fc-width",
            "64", "--crop-size", "32", "--scale", "36", "--batch-size", "32", "--epochs", "3",
            "--init", "xavier", "--checkpoint-every", "8", "--quiet", "--out", out]
    # the weights and each epoch's numbers; iteration lines of a resumed run repeat the
    # killed run's last ones, by design (the log says where it resumed)
    killed_runs_agree("train", args, out, out / "final.params",
                      resume=["train", "--resume", out, "--quiet"],
                      compare=[out / "final.params", out / "best.params"])


@pytest.mark.slow
def test_eval(params, digits, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "--params", params, "--data", os.path.join(digits, "val.rec"), "--out",
            out, "--scales", "36,44", "--mode", "both", "--dtype", "float32", "--quiet"]
    killed_runs_agree("eval", args, out, out)


@pytest.mark.slow
def test_features(params, digits, tmp_path):
    out = tmp_path / "val.npz"
    args = ["features", "--params", params, "--data", os.path.join(digits, "train.rec"),
            "--scales", "36,44", "--dtype", "float32", "--quiet", "--out", out]
    killed_runs_agree("features", args, out, out)


@pytest.mark.slow
def test_localise(trained, marked, tmp_path):
    out = tmp_path / "loc"
    args = ["localise", "--params", trained / "pcr" / "best.params", "--classifier",
            trained / "cls" / "best.params", "--data", os.path.join(marked[0], "val.rec"),
            "--mode", "dense", "--scales", "40,48,56", "--shifts", "4", "--quiet", "--out", out]
    killed_runs_agree("localise", args, out, out)


@pytest.fixture(scope="module")
def micro_protocol(tmp_path_factory):
    """The real protocol cut to one seed, one epoch per run and 6 scans per class placed
    once: the whole study (34 jobs) in about 30 s on 2 cores."""
    import yaml

    from vggcli import study
    protocol = yaml.safe_load(open(study.protocol_path()))
    protocol["dataset"].update(per_scan=1, limit=6, test_per_scan=1)
    protocol["seeds"] = [0]
    for run in list(protocol["runs"].values()) + [protocol["localisation"]]:
        run.update(epochs=1, steps=[])
    path = tmp_path_factory.mktemp("protocol") / "micro.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    return str(path)


@pytest.mark.slow
def test_reproduce(micro_protocol, tmp_path):
    """Killed, the study's parent takes its running jobs with it; rerun, it resumes
    (finished jobs kept, a killed training from its checkpoint) to the same findings.
    reproduction.json also says when it was generated and in how many invocations the
    study ran: bookkeeping, left out of the comparison like the times."""
    out, report = tmp_path / "study", tmp_path / "REPORT.md"
    args = ["reproduce", "--protocol", micro_protocol, "--out", out, "--report", report,
            "--jobs", "2"]
    killed_runs_agree("reproduce", args, out, report, compare=[tmp_path / "REPORT.json"],
                      volatile=VOLATILE | {"generated", "invocations"})
