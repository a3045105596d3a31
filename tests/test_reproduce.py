"""vgg reproduce: the protocol, the verdict rule, and a whole (tiny) study that is
interrupted, resumed and re-reported."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vggcli import reproduce
from vggcli.errors import VggError


def test_the_protocol_keeps_the_papers_scale_ratios_and_names_every_claims_run():
    """S1 is the paper's 256 relative to its 224 crop, to a pixel of ours; S2 and the
    jitter range keep the paper's ratios to it exactly (384 / 256, [256, 512] / 256);
    every run a claim compares is trained."""
    protocol = reproduce.load_protocol()
    crop = protocol["model"]["crop_size"]
    scales = protocol["scales"]
    s1 = int(scales["S1"]["train"])
    assert abs(s1 - 256 / 224 * crop) <= 1
    assert int(scales["S2"]["train"]) * 256 == s1 * 384
    low, high = (int(v) for v in scales["J"]["train"].split(":"))
    assert (low, high) == (s1, 2 * s1)
    for scale in scales.values():  # Q: S - 12.5%, S, S + 12.5% (256 +- 32); jittered: ends
        lo, mid, hi = scale["test"]
        if ":" in scale["train"]:
            assert (lo, hi) == (low, high) and mid == (low + high) // 2
        else:
            s = int(scale["train"])
            assert mid == s and abs(lo - s * 7 / 8) <= 1 and abs(hi - s * 9 / 8) <= 1
            assert lo >= crop
    assert len(protocol["seeds"]) >= 3
    runs = protocol["runs"]
    assert {r["net"] for r in runs.values()} == {"A", "A-LRN", "B", "C", "D", "E"}
    for run in runs.values():  # the paper's initialisation chain (§3.1)
        if run["net"] in ("A", "A-LRN"):
            assert "parent" not in run
        elif run["scale"] == "S1":
            assert run["parent"] == "A-S1"
        else:
            parent = runs[run["parent"]]
            assert parent["net"] == run["net"] and run["lr"] == 0.001
            assert parent["scale"] == {"S2": "S1", "J": "S2"}[run["scale"]]
    results = {}  # every claim finds its numbers when all runs are there
    for kind in ("single", "multi", "multicrop", "both"):
        for name in runs:
            for seed in protocol["seeds"]:
                results[kind, name, seed] = (50.0 + seed, 10.0)
    for seed in protocol["seeds"]:
        results["fusion", None, seed] = (40.0, 9.0)
        results["svm", None, seed] = 80.0
        loc = protocol["localisation"]
        for name in loc["table8"]:
            results["center", name, seed] = (40.0, 80.0, 85.0)
        for row in list(loc["table9"]) + ["fusion"]:
            results["dense5", row, seed] = (30.0 + seed, 70.0, 75.0)
    results["pixels", None, None] = 30.0
    found = reproduce.claims(protocol, results)
    assert len(found) == 13 + 8  # Tables 3-6 and Appendix B; Appendix A
    assert all(None not in claim["diffs"] for claim in found)
    assert all(claim["sides"] is None or len(claim["sides"]) == 2 for claim in found)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("seeds"), "seeds is missing"),
    (lambda p: p.update(seeds=[0, 0, 1]), "seeds repeat"),
    (lambda p: p["runs"]["B-S1"].update(net="F"), "run B-S1"),
    (lambda p: p["runs"]["B-S1"].update(parent="nowhere"), "parent nowhere is not a run"),
    (lambda p: p["runs"]["A-S1"].update(parent="B-S1"), "comes before its parent"),
    (lambda p: p["runs"]["A-S1"].update(epochs=0), "epochs must be a positive integer"),
    (lambda p: p["scales"]["S1"].update(test=[36]), "three test scales"),
    (lambda p: p.update(fusion=["D-J", "Z"]), "fusion names a run"),
    (lambda p: p["localisation"]["runs"]["PCR-fc"].update(task="box"), "needs task scr or pcr"),
    (lambda p: p["localisation"]["runs"]["PCR-fc"].update(parent="D-J"),
     "parent must be a run at a fixed scale"),
    (lambda p: p["localisation"].update(fusion=["S1/36"]), "fusion must name two"),
])
def test_a_faulty_protocol_is_refused_naming_the_file_and_the_fault(tmp_path, change,
                                                                      message):
    import yaml
    protocol = yaml.safe_load(open(reproduce.protocol_path()))
    change(protocol)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    with pytest.raises(VggError, match=message) as caught:
        reproduce.load_protocol(str(path))
    assert str(path) in str(caught.value)


def test_the_verdict_rule_is_the_stated_one():
    """Against the formula: mean of the paired differences over its standard error
    sd / sqrt(n), with k = 2."""
    mean, se, outcome = reproduce.verdict([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and se == pytest.approx(1 / math.sqrt(3))
    assert outcome == "held"  # 2 > 2 * 0.577
    assert reproduce.verdict([1.0, -1.0, 0.5])[2] == "inconclusive"
    assert reproduce.verdict([-3.0, -2.0, -4.0])[2] == "not held"
    assert reproduce.verdict([0.3, 0.35, 0.4], k=2)[2] == "held"  # small, but consistent
    assert reproduce.verdict([0.3, 0.35, 0.4], k=20)[2] == "inconclusive"
    # a "does not help" claim holds unless it is over k standard errors against
    assert reproduce.verdict([1.0, -1.0, 0.5], null=True)[2] == "held"
    assert reproduce.verdict([-3.0, -2.0, -4.0], null=True)[2] == "not held"
    assert reproduce.verdict([5.0])[2] == "inconclusive (under 2 seeds)"
    assert reproduce.verdict([5.0, None, 6.0, 7.0])[0] == pytest.approx(6.0)
    # nets within 5 points of chance (90%) learned nothing: no verdict either way
    learned, chance = [40.0, 42.0, 41.0], [86.0, 88.0, 89.0]
    assert reproduce.verdict([3.0, 4.0, 5.0], compared=[learned, chance])[2] == \
        "inconclusive (at chance)"
    assert reproduce.verdict([3.0, 4.0, 5.0], compared=[learned, learned])[2] == "held"


@pytest.fixture(scope="module")
def tiny_protocol(tmp_path_factory):
    """The real protocol with every run cut to one epoch, 10 scans per class placed
    once, and two seeds: the whole study in about a minute and a half on 2 cores."""
    import yaml
    protocol = yaml.safe_load(open(reproduce.protocol_path()))
    protocol["dataset"].update(per_scan=1, limit=10)
    protocol["seeds"] = [0, 1]
    for run in protocol["runs"].values():
        run["epochs"] = 1
    protocol["localisation"]["epochs"] = 1
    path = tmp_path_factory.mktemp("protocol") / "tiny.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    return str(path)


def _study(protocol, out, report, *extra):
    return subprocess.Popen([sys.executable, "-m", "vggcli", "reproduce", "--protocol",
                             protocol, "--out", out, "--report", report, "--jobs", "2"]
                            + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def test_a_study_stopped_midway_resumes_and_reports_every_claim(tiny_protocol, tmp_path):
    out, report = str(tmp_path / "study"), str(tmp_path / "REPORT.md")
    first = _study(tiny_protocol, out, report)
    journal = os.path.join(out, "jobs.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None:
        if os.path.isfile(journal) and len(open(journal).read().splitlines()) >= 3:
            break
        time.sleep(0.5)
    children = _children_of(first.pid)
    assert children, "no job was running when the study was stopped"
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 128 + signal.SIGTERM, output[-2000:]
    assert "Traceback" not in output
    assert not [pid for pid in children if os.path.exists("/proc/%d" % pid)
                and open("/proc/%d/stat" % pid).read().split()[2] != "Z"]
    assert not os.path.exists(report)
    kept = len(open(journal).read().splitlines())

    copy = tmp_path / "docs" / "new" / "reproduction.md"  # folders made as needed
    second = _study(tiny_protocol, out, report, "--copy-to", str(copy))
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0, output[-3000:]
    assert copy.read_text() == open(report).read()
    lines = [json.loads(line) for line in open(journal)]
    assert all(line["status"] == "done" for line in lines)
    names = [line["job"] for line in lines]
    assert len(names) == len(set(names)), "a finished job ran again"
    assert len(names) == len(reproduce.plan_jobs(reproduce.load_protocol(tiny_protocol), out))
    assert kept < len(names)
    text = open(report).read()
    findings = text.split("## Findings")[1].split("## Table 3")[0]
    rows = [r for r in findings.splitlines() if r.startswith("| ") and "verdict" not in r]
    assert len(rows) == 13 + 8
    assert all(r.rstrip(" |").endswith(("**held**", "**not held**", "**inconclusive**",
                                        "**inconclusive (at chance)**")) for r in rows)
    for table in ("Table 3", "Table 4", "Table 5", "Table 6", "Appendix B", "Table 8",
                  "Table 9"):
        assert "## %s shape" % table in text

    # the report's numbers are the eval outputs' (an independent reading of report.json)
    evaluated = json.load(open(os.path.join(out, "eval", "s0", "A-S1", "report.json")))
    single = [r for r in evaluated["rows"] if r["scales"] == [36] and r["mode"] == "dense"]
    results = reproduce.collect(reproduce.load_protocol(tiny_protocol), out)
    assert results["single", "A-S1", 0][0] == pytest.approx(100 * single[0]["top1_error"])
    pixels = json.load(open(os.path.join(out, "transfer", "pixels", "report.json")))
    assert results["pixels", None, None] == pytest.approx(100 * pixels["value"])
    located = json.load(open(os.path.join(out, "localise", "s1", "fusion", "report.json")))
    assert results["dense5", "fusion", 1][0] == pytest.approx(100 * located["errors"]["5"])

    # run again: nothing to do, the same numbers
    third = _study(tiny_protocol, out, report)
    output = third.communicate(timeout=300)[0]
    assert third.returncode == 0 and len(open(journal).read().splitlines()) == len(names)
    assert open(report).read().split("## Findings")[1] == text.split("## Findings")[1]


def test_a_study_never_uses_a_folder_it_did_not_write_or_another_protocols(tiny_protocol,
                                                                          tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done = subprocess.run([sys.executable, "-m", "vggcli", "reproduce", "--protocol",
                           tiny_protocol, "--out", str(foreign), "--report",
                           str(tmp_path / "R.md")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "did not write" in done.stderr
    assert os.listdir(str(foreign)) == ["notes.txt"]
    other = tmp_path / "other.yaml"
    other.write_text(open(tiny_protocol).read().replace("limit: 10", "limit: 11"))
    study = tmp_path / "study"
    reproduce.prepare(reproduce.load_protocol(tiny_protocol), str(study), progress=lambda m: 0)
    with pytest.raises(VggError, match="another protocol"):
        reproduce.prepare(reproduce.load_protocol(str(other)), str(study))


def test_the_pixel_baseline_is_a_features_file_transfer_reads(tiny_protocol, tmp_path):
    """Rows are the records' images at side x side, centred and L2-normalised (checked
    against OpenCV on the decoded records), with the records' labels."""
    import cv2

    from vggcli.data import RecordImages
    from vggcli.features import load_features
    out = str(tmp_path / "study")
    protocol = reproduce.load_protocol(tiny_protocol)
    reproduce.prepare(protocol, out, progress=lambda m: 0)
    path = os.path.join(out, "features", "pixels-val.npz")
    features, labels, ids, info = load_features(path)
    images = RecordImages(os.path.join(out, "data", "val.rec"))
    side = protocol["pixels_side"]
    assert features.shape == (len(images), side * side * 3) and info["layer"] == "pixels"
    image, label = images.image(3)
    row = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).ravel().astype(float)
    row -= row.mean()
    np.testing.assert_allclose(features[3], row / np.linalg.norm(row), atol=1e-6)
    assert labels[3] == label and np.allclose(np.linalg.norm(features, axis=1), 1)
