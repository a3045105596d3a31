"""The paper's classification claims as paired comparisons of two sides, each side's
per-seed error (lower is better, the side the claim expects to be better first); the
verdicts are ``verdicts.judge``'s."""
import functools

from .plan import scale_text

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


# Table 3 and 4's single-scale comparisons: (better run, worse run, the claim, the
# paper's top-1 errors, kind); {q} is the middle test scale of the better run.
SINGLE_SCALE_CLAIMS = [
    ("A-S1", "A-LRN-S1", "LRN does not improve net A (A-LRN no better than A, Q = S)",
     "29.7 vs 29.6", NON_INFERIORITY),
    ("B-S1", "A-S1", "Error falls with depth: B (13 layers) beats A (11)", "28.7 vs 29.6",
     SUPERIORITY),
    ("C-S1", "B-S1", "Extra non-linearity helps: C (1x1 conv) beats B", "28.1 vs 28.7",
     SUPERIORITY),
    ("D-S1", "B-S1", "Error falls with depth: D (16 layers) beats B (13)", "27.0 vs 28.7",
     SUPERIORITY),
    ("D-S1", "A-S1", "Error falls with depth: D (16 layers) beats A (11)", "27.0 vs 29.6",
     SUPERIORITY),
    ("D-S1", "E-S1", "Depth saturates: E (19 layers) is no better than D (16)", "27.3 vs 27.0",
     NON_INFERIORITY),
    ("D-S1", "C-S1", "3x3 beats 1x1 at equal depth: D beats C (S1)", "27.0 vs 28.1",
     SUPERIORITY),
    ("D-J", "D-S2", "Scale jittering beats a fixed S in training: D-J vs D-S2 (Q = {q})",
     "25.6 vs 26.8", SUPERIORITY),
]
# Table 4: (run, the paper's multi-scale vs single-scale top-1 errors)
MULTI_SCALE_CLAIMS = [("D-J", "24.8 vs 25.6"), ("D-S1", "26.6 vs 27.0")]


class _Sides:
    """A protocol's results as the claims' sides: per-seed top-1 test errors (%)."""

    def __init__(self, protocol, results):
        self.protocol, self.results = protocol, results
        self.q = {name: protocol["scales"][run["scale"]]["test"] for name, run in
                  protocol["runs"].items()}
        self.n_seeds = len(protocol["seeds"])

    def err(self, kind, run):
        return per_seed(self.results, self.protocol, kind, run)

    def single(self, name):
        return "%s (Q = %d)" % (name, self.q[name][1]), self.err("single", name)

    def multi(self, name):
        return "%s (Q = %s)" % (name, scale_text(self.q[name])), self.err("multi", name)

    def same(self, run, setting):
        return [(run, setting)] * self.n_seeds

    def lowest(self, candidates):
        return _lowest(self.results, self.protocol, candidates)


def _single_scale(sides, better, worse, text, paper, kind):
    return claim(text.format(q=sides.q[better][1]), paper, sides.single(better),
                 sides.single(worse), [better, worse], kind)


def _multi_scale(sides, name, paper):
    return claim("Multi-scale testing beats one scale: %s, Q in {%s} vs %d" % (
        name, scale_text(sides.q[name]), sides.q[name][1]), paper, sides.multi(name),
        sides.single(name), [name],
        per_image=dict(better=sides.same(name, "multi"), worse=sides.same(name, "single")))


def _dense_and_multicrop(sides, name):
    worse_values, worse_src = sides.lowest([("multi", name), ("multicrop", name)])
    return claim("Dense and multi-crop are complementary: both beat the better of the "
                 "two (%s)" % name, "24.4 vs 24.6",
                 ("%s multi-crop & dense" % name, sides.err("both", name)),
                 ("%s's better of dense and multi-crop" % name, worse_values), [name],
                 per_image=dict(better=sides.same(name, "both"), worse=worse_src))


def _fusion(sides, fused):
    member_values, member_src = sides.lowest([("both", n) for n in fused])
    return claim("Fusion (%s) beats its better member" % " & ".join(fused), "23.7 vs 24.4",
                 ("fusion", sides.err("fusion", None)), ("the better member", member_values),
                 fused, per_image=dict(better=sides.same(None, "fusion"), worse=member_src))


def _features(sides, fc7):
    pixels = sides.results.get(("pixels", None, None))
    svm = [None if v is None else 100 - v for v in sides.err("svm", None)]
    return claim("Deep features beat raw pixels for a linear SVM (test error %)",
                 "(Appendix B: VOC/Caltech)", ("fc7 of %s" % fc7, svm),
                 ("raw pixels", [None if pixels is None else 100 - pixels] * sides.n_seeds),
                 [fc7])


def classification_claims(protocol, results):
    """Tables 3-6 and Appendix B's claims (top-1 test error %, SVM error %), in the
    report's order; a claim whose runs the protocol lacks (the demo's) is left out."""
    sides = _Sides(protocol, results)
    fused = protocol["fusion"][:2]
    fc7 = protocol["features"]["run"]
    wanted = [([better, worse], functools.partial(_single_scale, sides, better, worse, *rest))
              for better, worse, *rest in SINGLE_SCALE_CLAIMS]
    wanted += [([name], functools.partial(_multi_scale, sides, name, paper))
               for name, paper in MULTI_SCALE_CLAIMS]
    wanted += [([name], functools.partial(_dense_and_multicrop, sides, name))
               for name in protocol["multicrop"]]
    wanted += [(fused if len(fused) == 2 else ["(two nets)"],
                functools.partial(_fusion, sides, fused)),
               ([fc7], functools.partial(_features, sides, fc7))]
    return [build() for needs, build in wanted
            if all(name in protocol["runs"] for name in needs)]
