"""The study's statistics, fixed in the protocol before the run (scipy.stats).

A claim compares two sides by their per-seed errors (lower is better), the side the
claim expects to be better first; d = worse - better per seed (positive: the claim's
way), over the seeds where both sides learned.

- superiority ("X beats Y"): a paired one-sided t-test of mean d > 0 with n - 1
  degrees of freedom;
- non-inferiority ("X is no better than Y", i.e. Y is not worse than X by more
  than the margin m): a paired one-sided t-test of mean d > -m, held exactly when
  the one-sided 95% interval of mean d lies above -m.

Both are t = (mean d + m) / (sd d / sqrt n), p = P(T_{n-1} >= t), with m = 0 for
superiority. Verdicts: **held** when p < alpha; **not held** when the opposite
one-sided test is significant (p > 1 - alpha: the data go the other way);
**inconclusive** otherwise; **not judged** with fewer than 2 usable seeds. Holm's
step-down adjustment over all claims is reported beside each verdict.
"""
import math

import numpy as np


def paired_test(better, worse, margin=0.0, alpha=0.05):
    """better, worse: per-seed values (None where missing or excluded). Returns a dict
    with n, mean, sd, se, t, df, p and verdict."""
    from scipy import stats
    pairs = [(b, w) for b, w in zip(better, worse) if b is not None and w is not None]
    n = len(pairs)
    found = dict(n=n, mean=None, sd=None, se=None, t=None, df=n - 1 if n else None, p=None)
    if n < 2:
        return dict(found, verdict="not judged")
    d = np.array([w - b for b, w in pairs], dtype=np.float64)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0:  # every seed the same difference: t is undefined, the sign decides
        t, p = None, 0.0 if mean + margin > 0 else 1.0 if mean + margin < 0 else 0.5
    else:
        t = (mean + margin) / se
        p = float(stats.t.sf(t, n - 1))
    verdict = "held" if p < alpha else "not held" if p > 1 - alpha else "inconclusive"
    return dict(found, mean=mean, sd=sd, se=se, t=t, p=p, verdict=verdict)


def holm(p_values):
    """Holm's step-down adjusted p values (None stays None), in the given order."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def mcnemar_one_sided(better_correct, worse_correct):
    """Per-image paired test within one seed: exact one-sided McNemar (a binomial test
    on the discordant images). Returns (images the better side alone gets right,
    images the worse side alone gets right, p of so many or more going the claim's
    way under no difference)."""
    from scipy import stats
    better_correct = np.asarray(better_correct, bool)
    worse_correct = np.asarray(worse_correct, bool)
    b = int(np.sum(better_correct & ~worse_correct))
    c = int(np.sum(worse_correct & ~better_correct))
    p = float(stats.binom.sf(b - 1, b + c, 0.5)) if b + c else 1.0
    return b, c, p


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), sd, len(values)
