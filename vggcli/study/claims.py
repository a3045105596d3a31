"""The paper's claims as paired comparisons of two sides, each side's per-seed error
(lower is better, the side the claim expects to be better first), and their
verdicts under the protocol's statistics (``judge``)."""
from .plan import scale_text
from .stats import holm, mcnemar_one_sided, paired_test

SUPERIORITY, NON_INFERIORITY = "superiority", "non-inferiority"


def per_seed(results, protocol, kind, run, index=0):
    values = []
    for seed in protocol["seeds"]:
        value = results.get((kind, run, seed))
        values.append(value[index] if isinstance(value, tuple) else value)
    return values


def _best_of(a, b):
    return [min(x, y) if x is not None and y is not None else None for x, y in zip(a, b)]


def _lowest(results, protocol, candidates):
    """Per seed, the lowest top-1 error among ``candidates`` [(kind, run)] and the
    (run, setting) of the test predictions it came from, for the per-image test; None
    where a candidate is missing. Ties go to the first (run, kind) in sorted order."""
    values, sources = [], []
    for seed in protocol["seeds"]:
        found = [(results.get((kind, run, seed)), run, kind) for kind, run in candidates]
        if any(value is None for value, _, _ in found):
            values.append(None)
            sources.append(None)
            continue
        value, run, kind = min((value[0], run, kind) for value, run, kind in found)
        values.append(value)
        sources.append((run, kind))
    return values, sources


def claim(text, paper, better, worse, runs, kind=SUPERIORITY, per_image=None, **extra):
    """``better``/``worse``: (label, per-seed values). ``per_image``: per side, per seed,
    the (run, setting) whose test predictions a per-image paired test compares."""
    return dict(claim=text, paper=paper, kind=kind, better=better, worse=worse, runs=runs,
                per_image=per_image, **extra)


def classification_claims(protocol, results):
    """Tables 3-6 and Appendix B's claims (top-1 test error %, SVM error %)."""
    def err(kind, run):
        return per_seed(results, protocol, kind, run)

    q = {name: protocol["scales"][run["scale"]]["test"] for name, run in
         protocol["runs"].items()}
    n_seeds = len(protocol["seeds"])

    def single(name):
        return "%s (Q = %d)" % (name, q[name][1]), err("single", name)

    def multi(name):
        return "%s (Q = %s)" % (name, scale_text(q[name])), err("multi", name)

    def same(run, setting):
        return [(run, setting)] * n_seeds

    def modes(name):
        better = ("%s multi-crop & dense" % name, err("both", name))
        worse_values, worse_src = _lowest(results, protocol, [("multi", name),
                                                              ("multicrop", name)])
        return claim("Dense and multi-crop are complementary: both beat the better of the "
                     "two (%s)" % name, "24.4 vs 24.6", better,
                     ("%s's better of dense and multi-crop" % name, worse_values), [name],
                     per_image=dict(better=same(name, "both"), worse=worse_src))
    fused = protocol["fusion"][:2]
    member_values, member_src = _lowest(results, protocol, [("both", n) for n in fused])
    pixels = results.get(("pixels", None, None))
    svm = [None if v is None else 100 - v for v in err("svm", None)]
    fc7 = protocol["features"]["run"]
    # (runs the claim needs, how to build it): a profile without them (the demo) skips it
    wanted = [
        (["A-S1", "A-LRN-S1"], lambda: claim(
            "LRN does not improve net A (A-LRN no better than A, Q = S)", "29.7 vs 29.6",
            single("A-S1"), single("A-LRN-S1"), ["A-S1", "A-LRN-S1"], NON_INFERIORITY)),
        (["B-S1", "A-S1"], lambda: claim(
            "Error falls with depth: B (13 layers) beats A (11)", "28.7 vs 29.6",
            single("B-S1"), single("A-S1"), ["B-S1", "A-S1"])),
        (["C-S1", "B-S1"], lambda: claim(
            "Extra non-linearity helps: C (1x1 conv) beats B", "28.1 vs 28.7",
            single("C-S1"), single("B-S1"), ["C-S1", "B-S1"])),
        (["D-S1", "B-S1"], lambda: claim(
            "Error falls with depth: D (16 layers) beats B (13)", "27.0 vs 28.7",
            single("D-S1"), single("B-S1"), ["D-S1", "B-S1"])),
        (["D-S1", "A-S1"], lambda: claim(
            "Error falls with depth: D (16 layers) beats A (11)", "27.0 vs 29.6",
            single("D-S1"), single("A-S1"), ["D-S1", "A-S1"])),
        (["D-S1", "E-S1"], lambda: claim(
            "Depth saturates: E (19 layers) is no better than D (16)", "27.3 vs 27.0",
            single("D-S1"), single("E-S1"), ["D-S1", "E-S1"], NON_INFERIORITY)),
        (["D-S1", "C-S1"], lambda: claim(
            "3x3 beats 1x1 at equal depth: D beats C (S1)", "27.0 vs 28.1",
            single("D-S1"), single("C-S1"), ["D-S1", "C-S1"])),
        (["D-J", "D-S2"], lambda: claim(
            "Scale jittering beats a fixed S in training: D-J vs D-S2 (Q = %d)" % q["D-J"][1],
            "25.6 vs 26.8", single("D-J"), single("D-S2"), ["D-J", "D-S2"])),
        (["D-J"], lambda: claim(
            "Multi-scale testing beats one scale: D-J, Q in {%s} vs %d" % (
                scale_text(q["D-J"]), q["D-J"][1]), "24.8 vs 25.6", multi("D-J"),
            single("D-J"), ["D-J"],
            per_image=dict(better=same("D-J", "multi"), worse=same("D-J", "single")))),
        (["D-S1"], lambda: claim(
            "Multi-scale testing beats one scale: D-S1, Q in {%s} vs %d" % (
                scale_text(q["D-S1"]), q["D-S1"][1]), "26.6 vs 27.0", multi("D-S1"),
            single("D-S1"), ["D-S1"],
            per_image=dict(better=same("D-S1", "multi"), worse=same("D-S1", "single")))),
    ] + [([name], lambda name=name: modes(name)) for name in protocol["multicrop"]] + [
        (fused if len(fused) == 2 else ["(two nets)"], lambda: claim(
            "Fusion (%s) beats its better member" % " & ".join(fused), "23.7 vs 24.4",
            ("fusion", err("fusion", None)), ("the better member", member_values), fused,
            per_image=dict(better=same(None, "fusion"), worse=member_src))),
        ([fc7], lambda: claim(
            "Deep features beat raw pixels for a linear SVM (test error %)",
            "(Appendix B: VOC/Caltech)", ("fc7 of %s" % fc7, svm),
            ("raw pixels", [None if pixels is None else 100 - pixels] * n_seeds), [fc7])),
    ]
    found = [build() for needs, build in wanted
             if all(name in protocol["runs"] for name in needs)]
    return found


def all_claims(protocol, results):
    found = classification_claims(protocol, results)
    if "localisation" in protocol:
        from .claims_localisation import localisation_claims
        found += localisation_claims(protocol, results)
    return found


def left_out_seeds(found, protocol, results):
    """{seed: reason} of the seeds a claim leaves out: a run behind it did not learn
    (vgg train's verdict, or a test top-1 error within the chance margin of chance)."""
    chance = 100.0 * (1 - 1.0 / 10)
    margin = protocol["statistics"]["chance_margin"]
    left_out = {}
    for seed in protocol["seeds"]:
        for name in found["runs"]:
            course = results.get(("training", name, seed))
            if course and course.get("learned") is False:
                left_out[seed] = "%s did not learn" % name
            single = results.get(("single", name, seed))
            if name in protocol["runs"] and single and single[0] >= chance - margin:
                left_out[seed] = "%s within %g points of chance" % (name, margin)
    return left_out


def judge(protocol, results, out=None):
    """Every claim with its test: the per-seed sides (excluded seeds as None), n, mean,
    t, df, p, the verdict, Holm's adjusted p, and per-image tests where defined."""
    stats = protocol["statistics"]
    judged = []
    for found in all_claims(protocol, results):
        margin = stats["margin"] if found["kind"] == NON_INFERIORITY else 0.0
        left_out = left_out_seeds(found, protocol, results)
        keep = [seed not in left_out for seed in protocol["seeds"]]
        better = [v if k else None for v, k in zip(found["better"][1], keep)]
        worse = [v if k else None for v, k in zip(found["worse"][1], keep)]
        test = paired_test(better, worse, margin, stats["alpha"])
        found.update(test, margin=margin, left_out=left_out)
        found["per_image_tests"] = per_image_tests(protocol, out, found, keep) \
            if found.get("per_image") and out else None
        judged.append(found)
    for found, adjusted in zip(judged, holm([f["p"] for f in judged])):
        found["p_holm"] = adjusted
        found["held_after_holm"] = adjusted is not None and adjusted < stats["alpha"]
    return judged


def per_image_tests(protocol, out, found, keep):
    """{seed: (b, c, p)}: each usable seed's one-sided McNemar test on the test images."""
    from .results import correct
    tests = {}
    for seed, use, better, worse in zip(protocol["seeds"], keep, found["per_image"]["better"],
                                        found["per_image"]["worse"]):
        if not use or better is None or worse is None:
            continue
        a = correct(protocol, out, seed, *better)
        b = correct(protocol, out, seed, *worse)
        if a is not None and b is not None:
            tests[seed] = mcnemar_one_sided(a, b)
    return tests
