"""Tolerances for numerics tests, derived rather than fitted to one CPU.

Two float32 computations of the same quantity differ only in rounding, and the
rounding depends on the kernels oneDNN picks for the CPU (AVX2, AVX-512, AMX
block and order their reductions differently). The bounds below come from the
standard error analysis of floating-point summation (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., §4.2): a sum of n terms computed
in any order has error at most gamma(n) * sum(|terms|), with
gamma(n) = n u / (1 - n u) and u the unit roundoff. Two orders of the same sum
therefore differ by at most 2 gamma(n) * sum(|terms|). This worst case grows
linearly in n; real rounding errors grow like sqrt(n), so these bounds hold on
any kernel and still fail by orders of magnitude on a real bug (a dropped
device, a wrong scale, a missing flip).

Binomial bounds are for agreement rates measured on a finite number of images.
"""
import numpy as np

FLOAT32_U = 2.0 ** -24  # unit roundoff of float32 (24-bit significand)
BFLOAT16_U = 2.0 ** -8  # unit roundoff of bfloat16 (8-bit significand)


def gamma(n, u=FLOAT32_U):
    """Higham's gamma_n: the relative error bound of a sum of ``n`` terms."""
    if n * u >= 1:
        raise ValueError("gamma(%d) is undefined at u=%g" % (n, u))
    return n * u / (1 - n * u)


def reorder_bound(n, u=FLOAT32_U):
    """Largest difference between two summation orders of ``n`` terms, as a multiple of
    the sum of the terms' absolute values."""
    return 2 * gamma(n, u)


def conv_reduction(channels, kernel=3):
    """Terms summed for one output of a convolution (or of fc6 as a convolution)."""
    return channels * kernel * kernel


def network_reduction(net):
    """The longest reduction a forward pass of a VGG net performs: the widest layer
    input (fc6: last conv width x 7 x 7 in the FC form, or any conv's C_in x 3 x 3)."""
    longest = 0
    for param in net.collect_params().values():
        shape = param.shape
        if param.name.endswith("weight") and len(shape) >= 2:
            longest = max(longest, int(np.prod(shape[1:])))
    return longest


def forward_bound(net, layers=None):
    """Relative bound for two float32 evaluations of the same net that differ in
    summation order: each layer adds at most reorder_bound(n) of the absolute terms
    of its longest reduction; ``layers`` of them compound (first order)."""
    if layers is None:
        layers = sum(1 for p in net.collect_params().values() if p.name.endswith("weight"))
    return layers * reorder_bound(network_reduction(net))


def max_disagreements(images, rate, confidence=0.999):
    """The most disagreements a process whose true disagreement rate is ``rate`` shows
    on ``images`` images, except with probability 1 - ``confidence`` (binomial
    quantile). A test that fails above it rejects ``rate`` at that confidence."""
    from scipy.stats import binom
    return int(binom.ppf(confidence, images, rate))


def describe(name, measured, bound):
    return "%s: measured %.3g, bound %.3g (see tests/numerics.py)" % (name, measured, bound)


def output_bound(net, expected):
    """Componentwise bound on how far two float32 evaluations of ``net`` that differ
    only in kernels (summation order) can be apart, for outputs ``expected``.

    Per layer, a reduction of n terms reordered differs by at most 2 gamma(n) of the
    sum of its terms' absolute values. For terms of mixed sign that sum is about
    sqrt(n) times the RMS of the result, and rounding errors of independent sign
    grow like sqrt(n) rather than n (Higham & Mary, SIAM J. Sci. Comput. 2019), so
    2 gamma(n) times the output's RMS bounds one layer's reordering error. Layers
    scaled to keep the signal's size (Xavier or the paper's init, trained nets)
    pass an earlier layer's relative error on with a gain near 1, so the layers'
    bounds add: forward_bound(net) * RMS(expected). (Bounding each layer by its
    absolute-value network instead gives 1e21 x the output on a 16-layer net:
    true, and useless as a test.)
    """
    expected = np.asarray(expected, dtype=np.float64)
    return forward_bound(net) * np.sqrt(np.mean(expected ** 2))


def posterior_bound(net, logits, posteriors):
    """Soft-max moves each probability by at most 2 p_i max|dz| for logit changes dz
    (its Jacobian is diag(p) - p p^T), so the logits' bound carries over."""
    return 2 * np.asarray(posteriors) * np.max(output_bound(net, logits))


def assert_float32_close(actual, expected, bound, what="outputs"):
    """|actual - expected| <= bound componentwise, the worst excess reported."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), expected.shape)
    gap = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(gap - bound), gap.shape)
    assert np.all(gap <= bound), describe("%s at %s" % (what, worst), gap[worst], bound[worst])
    return float(np.max(gap / np.maximum(bound, 1e-300)))
