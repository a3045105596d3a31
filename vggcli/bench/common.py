"""What every benchmark shares: timed rounds after a warm-up, the two sides
alternated, GluonCV's VGG-16 as a same-kernel peer, and the result row, which
shows the median of at least ROUNDS timings with their minimum and maximum."""
import contextlib
import os
import sys
import time
from statistics import median

OUT_DIR = "bench"
ROUNDS = 5  # timed rounds per figure, at least (after warm-up)


def _timed_rates(fn, images, repeats=ROUNDS, warm_up=True):
    """``images``/s of each of ``repeats`` timed calls of ``fn`` (after one untimed
    call: graph build, oneDNN layout conversion)."""
    if warm_up:
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - start))
    return rates


def _interleave(sides, rounds, once=()):
    """Each side's results over ``rounds``, the sides alternated (a side may return one
    number or a list of them; lists are joined); sides in ``once`` (slow to start, like
    torch.compile) run in the first round only."""
    runs = {name: [] for name in sides}
    for round_index in range(rounds):
        for name, fn in sides.items():
            if round_index == 0 or name not in once:
                result = fn()
                runs[name] += result if isinstance(result, list) else [result]
    return runs


@contextlib.contextmanager
def native_logs_silenced():
    """File descriptor 2 to /dev/null: MXNet's C++ parts (ImageRecordIter's "ImageRecordIOParser2"
    lines) write to std::cerr, which Python's own stderr redirection cannot reach."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _gluoncv_pair():
    """Our net D and GluonCV's model-zoo vgg16, both Xavier-initialised and hybridized as
    we run ours."""
    import mxnet as mx
    from ..core.compat import gluoncv_model_zoo

    from vggcli.nets import models

    ours = models.initialize(models.get_model("D"), init="xavier", seed=0)
    ours.hybridize(static_alloc=True, static_shape=True)
    peer = gluoncv_model_zoo().get_model("vgg16", pretrained=False)
    peer.initialize(mx.init.Xavier())
    peer.hybridize(static_alloc=True, static_shape=True)
    return ours, peer


def _summary(value):
    """(median, [min, max], sample count) of a list of timings, or (value, None, 1)."""
    if isinstance(value, (list, tuple)):
        return median(value), [min(value), max(value)], len(value)
    return value, None, 1


def _row(figure, ours, peer, peer_name, target, unit, higher_is_better=True, note=""):
    """A result row; ``ours`` and ``peer`` are numbers or lists of timed samples (then
    their median is the figure and min-max is shown)."""
    ours, ours_range, ours_n = _summary(ours)
    peer, peer_range, peer_n = _summary(peer)
    ratio = ours / peer if higher_is_better else peer / ours
    return dict(figure=figure, ours=ours, peer=peer, peer_name=peer_name, ratio=ratio,
                target=target, unit=unit, passed=ratio >= target, note=note,
                ours_range=ours_range, peer_range=peer_range, samples=[ours_n, peer_n])
