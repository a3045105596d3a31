"""Every claim judged under the protocol's statistics: the seeds a claim leaves out
(a run behind it did not learn), the paired test per claim, Holm's adjustment over all
of them, and per-image McNemar tests where a claim defines them."""
from .claims import NON_INFERIORITY, classification_claims
from .claims_localisation import localisation_claims
from .stats import holm, mcnemar_one_sided, paired_test


def all_claims(protocol, results):
    found = classification_claims(protocol, results)
    if "localisation" in protocol:
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
