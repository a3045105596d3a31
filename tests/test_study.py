"""vgg reproduce (vggcli.study): the protocol, the statistics against scipy's own
tests, and a whole (tiny) study that is interrupted, resumed, re-reported, and whose
reproduction.json lets every verdict be recomputed."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vggcli import study
from vggcli.core.errors import VggError
from vggcli.study import prepare as study_prepare, results as study_results
from vggcli.study import jobs as study_jobs, stats, verdicts as study_verdicts

from .hostile import descendants


def test_the_protocol_keeps_the_papers_scale_ratios_and_trains_compared_nets_alike():
    """S1 is the paper's 256 relative to its 224 crop, to a pixel of ours; S2 and the
    jitter range keep the paper's ratios to it exactly (384 / 256, [256, 512] / 256);
    Table 3's nets train from scratch with one schedule; the fine-tuned runs compared
    (jittered vs a second fixed scale) share parent and schedule; at least 5 seeds."""
    protocol = study.load_protocol()
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
    assert len(protocol["seeds"]) >= 5
    runs = protocol["runs"]
    assert {r["net"] for r in runs.values()} == {"A", "A-LRN", "B", "C", "D", "E"}
    first = [r for r in runs.values() if r["scale"] == "S1"]
    assert all("parent" not in r for r in first)
    assert len({(r["lr"], r["epochs"], tuple(r["steps"])) for r in first}) == 1
    schedule = {name: (r["parent"], r["lr"], r["epochs"], tuple(r["steps"]))
                for name, r in runs.items() if r.get("parent")}
    assert schedule["D-J"] == schedule["D-S2"]
    assert protocol["statistics"]["alpha"] == 0.05


def _complete_results(protocol):
    results = {}
    for kind in ("single", "multi", "multicrop", "both"):
        for name in protocol["runs"]:
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
    return results


def test_every_claim_of_the_issue_is_tested_and_finds_its_numbers():
    protocol = study.load_protocol()
    found = study_verdicts.all_claims(protocol, _complete_results(protocol))
    texts = " | ".join(c["claim"] for c in found)
    for needle in ("LRN", "B (13 layers) beats A", "D (16 layers) beats B", "C (1x1 conv) "
                   "beats B", "E (19 layers) is no better", "D beats C", "jittering",
                   "Multi-scale", "Dense and multi-crop", "Fusion", "raw pixels", "PCR beats SCR",
                   "all layers", "fixed box", "S2 beats S1", "several test scales"):
        assert needle in texts, needle
    assert len(found) == 14 + 8
    for claim in found:
        assert None not in claim["better"][1] and None not in claim["worse"][1], claim["claim"]
    kinds = {c["claim"].split(":")[0]: c["kind"] for c in found}
    assert kinds["Depth saturates"] == kinds["LRN does not improve net A (A-LRN no better than " \
                                             "A, Q = S)"] == "non-inferiority"


def test_the_paired_test_is_scipys_one_sided_t_test():
    """Superiority: scipy's paired t-test (alternative 'greater') on worse vs better;
    non-inferiority: its one-sample test of d + margin > 0; the verdict by p."""
    from scipy import stats as sp
    better = [20.0, 22.5, 19.0, 25.0, 21.0]
    worse = [23.0, 22.0, 24.5, 27.5, 22.0]
    found = stats.paired_test(better, worse)
    reference = sp.ttest_rel(worse, better, alternative="greater")
    assert found["t"] == pytest.approx(reference.statistic)
    assert found["p"] == pytest.approx(reference.pvalue)
    assert found["df"] == 4 and found["verdict"] == ("held" if reference.pvalue < 0.05
                                                     else "inconclusive")
    noninf = stats.paired_test(better, worse, margin=2.0)
    d = np.subtract(worse, better) + 2.0
    assert noninf["p"] == pytest.approx(sp.ttest_1samp(d, 0, alternative="greater").pvalue)
    # the one-sided 95% interval inside the margin <=> held
    low = np.mean(d - 2.0) - sp.t.ppf(0.95, 4) * np.std(d, ddof=1) / math.sqrt(5)
    assert (low > -2.0) == (noninf["verdict"] == "held")
    assert stats.paired_test(worse, better)["verdict"] in ("not held", "inconclusive")
    assert stats.paired_test([1.0, 2, 3, 4, 5], [9.0, 9, 9, 9, 9.5])["verdict"] == "held"
    assert stats.paired_test([9.0, 9, 9, 9, 9.5], [1.0, 2, 3, 4, 5])["verdict"] == "not held"
    assert stats.paired_test([1.0, None], [2.0, 3.0])["verdict"] == "not judged"
    tie = stats.paired_test([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert tie["t"] is None and tie["p"] == 0.0 and tie["verdict"] == "held"


def test_holm_adjustment_and_mcnemar_against_their_definitions():
    """Holm (1979): sorted p_(i) times (m - i + 1), made monotone, capped at 1; McNemar's
    exact one-sided test is a binomial test on the discordant pairs (scipy.binomtest)."""
    from scipy import stats as sp
    assert stats.holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx(
        [0.03, 0.06, 0.06, 0.02, None])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.8, rng.random(500) < 0.75
    only_a, only_b, p = stats.mcnemar_one_sided(a, b)
    assert (only_a, only_b) == (int(np.sum(a & ~b)), int(np.sum(b & ~a)))
    assert p == pytest.approx(sp.binomtest(only_a, only_a + only_b, 0.5,
                                           alternative="greater").pvalue)


def test_a_seed_whose_run_did_not_learn_is_left_out_of_the_claims_behind_it():
    protocol = study.load_protocol()
    results = _complete_results(protocol)
    results["training", "B-S1", 1] = dict(learned=False)
    results["single", "A-S1", 2] = (85.0, 50.0)  # within 10 points of 90% chance
    found = {c["claim"]: c for c in study_verdicts.judge(protocol, results)}
    b_vs_a = found["Error falls with depth: B (13 layers) beats A (11)"]
    assert set(b_vs_a["left_out"]) == {1, 2} and b_vs_a["n"] == 3
    assert found["3x3 beats 1x1 at equal depth: D beats C (S1)"]["left_out"] == {}


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
    (lambda p: p["runs"]["A-S1"].update(steps=[20, 40]), "steps must be increasing"),
    (lambda p: p["statistics"].update(alpha=0.7), "statistics.alpha"),
    (lambda p: p.pop("statistics"), "statistics is missing"),
])
def test_a_faulty_protocol_is_refused_naming_the_file_and_the_fault(tmp_path, change,
                                                                      message):
    import yaml
    protocol = yaml.safe_load(open(study.protocol_path()))
    change(protocol)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    with pytest.raises(VggError, match=message) as caught:
        study.load_protocol(str(path))
    assert str(path) in str(caught.value)


@pytest.fixture(scope="module")
def tiny_protocol(tmp_path_factory):
    """The real protocol with every run cut to two epochs (lr / 10 after the first), 10
    scans per class placed once (test scans twice), and two seeds: the whole study in
    about two minutes on 2 cores."""
    import yaml
    protocol = yaml.safe_load(open(study.protocol_path()))
    protocol["dataset"].update(per_scan=1, limit=10, test_per_scan=2)
    protocol["seeds"] = [0, 1]
    for run in list(protocol["runs"].values()) + [protocol["localisation"]]:
        run.update(epochs=2, steps=[1])
    path = tmp_path_factory.mktemp("protocol") / "tiny.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False))
    return str(path)


def _study(protocol, out, report, *extra):
    return subprocess.Popen([sys.executable, "-m", "vggcli", "reproduce", "--protocol",
                             protocol, "--out", out, "--report", report, "--jobs", "2"]
                            + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_a_study_stopped_midway_resumes_and_reports_every_claim(tiny_protocol, tmp_path):
    out, report = str(tmp_path / "study"), str(tmp_path / "REPORT.md")
    first = _study(tiny_protocol, out, report)
    journal = os.path.join(out, "jobs.jsonl")
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None:
        if os.path.isfile(journal) and len(open(journal).read().splitlines()) >= 3:
            break
        time.sleep(0.5)
    children = descendants(first.pid)
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
    assert len(names) == len(study_jobs.plan_jobs(study.load_protocol(tiny_protocol), out))
    assert kept < len(names)
    text = open(report).read()
    findings = text.split("## Findings")[1].split("## Table 3")[0]
    rows = [r for r in findings.splitlines() if r.startswith("| ") and "verdict" not in r]
    assert len(rows) == 14 + 8
    assert all(r.rstrip(" |").endswith(("**held**", "**not held**", "**inconclusive**",
                                        "**not judged**")) for r in rows)
    assert "MXNet 1.9.1" in text and "at commit `" in text
    for table in ("Table 3", "Table 4", "Table 5", "Table 6", "Appendix B", "Table 8",
                  "Table 9"):
        assert "## %s shape" % table in text

    # the report's numbers are the eval outputs' (an independent reading of report.json)
    evaluated = json.load(open(os.path.join(out, "eval", "s0", "A-S1", "report.json")))
    assert evaluated["data"].endswith("test.rec")
    single = [r for r in evaluated["rows"] if r["scales"] == [36] and r["mode"] == "dense"]
    results = study_results.collect(study.load_protocol(tiny_protocol), out)
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
    record = json.load(open(str(copy)[:-3] + ".json"))
    assert record == json.load(open(report[:-3] + ".json"))
    assert len(record["claims"]) == 22 and len(record["runs"]) == 2 * (9 + 4)
    recompute_verdicts(record)


def recompute_verdicts(record):
    """Every verdict of a reproduction.json, recomputed with scipy from the file alone:
    the sides' values of the seeds not left out, t = (mean d + margin) / se, p from
    scipy.stats.t, the verdict by alpha, Holm's adjustment over the claims."""
    from scipy import stats as sp
    alpha = record["statistics"]["alpha"]
    p_values = []
    for claim in record["claims"]:
        better, worse = (side["values"] for side in claim["sides"])
        seeds = [s for s in better if s not in claim["left_out"]
                 and better[s] is not None and worse.get(s) is not None]
        d = np.array([worse[s] - better[s] for s in seeds])
        assert claim["n"] == len(seeds)
        if len(seeds) < 2:
            assert claim["verdict"] == "not judged" and claim["p"] is None
            p_values.append(None)
            continue
        se = d.std(ddof=1) / math.sqrt(len(d))
        if se == 0:
            p = 0.0 if d.mean() + claim["margin"] > 0 else 1.0 if d.mean() + claim[
                "margin"] < 0 else 0.5
        else:
            t = (d.mean() + claim["margin"]) / se
            assert claim["t"] == pytest.approx(t) and claim["df"] == len(d) - 1
            p = sp.t.sf(t, len(d) - 1)
        assert claim["p"] == pytest.approx(p, abs=1e-12)
        assert claim["verdict"] == ("held" if p < alpha else "not held" if p > 1 - alpha
                                    else "inconclusive"), claim["claim"]
        p_values.append(p)
    order = sorted(range(len(p_values)), key=lambda i: (p_values[i] is None, p_values[i] or 0))
    m, running = sum(p is not None for p in p_values), 0.0
    for rank, i in enumerate(order[:m]):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        assert record["claims"][i]["p_holm"] == pytest.approx(running)


def test_the_committed_reproduction_json_gives_every_verdict_it_states():
    """docs/reproduction.json, as `make reproduce` wrote it: each claim's verdict follows
    from its per-seed numbers; it holds every run, with the fields the issue lists."""
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "reproduction.json")
    record = json.load(open(path))
    protocol = study.load_protocol()
    assert record["seeds"] == protocol["seeds"]
    for run in record["runs"]:
        assert {"run", "net", "train_scale", "seed", "epochs", "lr_divisions",
                "final_train_loss", "test"} <= set(run)
    assert len(record["runs"]) == len(protocol["seeds"]) * (
        len(protocol["runs"]) + len(protocol["localisation"]["runs"]))
    for claim in record["claims"]:
        assert claim["kind"] in ("superiority", "non-inferiority")
        assert set(claim["sides"][0]["values"]) == {str(s) for s in record["seeds"]}
    recompute_verdicts(record)


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
    folder = tmp_path / "study"
    study_prepare.prepare(study.load_protocol(tiny_protocol), str(folder), progress=lambda m: 0)
    with pytest.raises(VggError, match="another protocol"):
        study_prepare.prepare(study.load_protocol(str(other)), str(folder))


def test_the_pixel_baseline_is_a_features_file_transfer_reads(tiny_protocol, tmp_path):
    """Rows are the records' images at side x side, centred and L2-normalised (checked
    against OpenCV on the decoded records), with the records' labels."""
    import cv2

    from vggcli.training.data import RecordImages
    from vggcli.testing.features import load_features
    out = str(tmp_path / "study")
    protocol = study.load_protocol(tiny_protocol)
    study_prepare.prepare(protocol, out, progress=lambda m: 0)
    path = os.path.join(out, "features", "pixels-test.npz")
    features, labels, ids, info = load_features(path)
    images = RecordImages(os.path.join(out, "data", "test.rec"))
    side = protocol["pixels_side"]
    assert features.shape == (len(images), side * side * 3) and info["layer"] == "pixels"
    image, label = images.image(3)
    row = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).ravel().astype(float)
    row -= row.mean()
    np.testing.assert_allclose(features[3], row / np.linalg.norm(row), atol=1e-6)
    assert labels[3] == label and np.allclose(np.linalg.norm(features, axis=1), 1)
