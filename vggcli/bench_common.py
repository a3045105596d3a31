"""What every benchmark shares: medians of timed repetitions, the two sides
alternated, GluonCV's VGG-16 as a same-kernel peer, and the result row."""
import time
from statistics import median

OUT_DIR = "bench"


def _median_rate(fn, images, repeats):
    fn()  # warm-up: graph build and oneDNN layout conversion
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - start))
    return median(rates)


def _interleave(sides, rounds, once=()):
    """Each side's results over ``rounds``, the sides alternated; sides in ``once`` (slow
    to start, like torch.compile) run in the first round only."""
    runs = {name: [] for name in sides}
    for round_index in range(rounds):
        for name, fn in sides.items():
            if round_index == 0 or name not in once:
                runs[name].append(fn())
    return runs


def _gluoncv_pair():
    """Our net D and GluonCV's model-zoo vgg16, both Xavier-initialised and hybridized as
    we run ours."""
    import mxnet as mx
    from ._compat import gluoncv_model_zoo

    from vggcli import models

    ours = models.initialize(models.get_model("D"), init="xavier", seed=0)
    ours.hybridize(static_alloc=True, static_shape=True)
    peer = gluoncv_model_zoo().get_model("vgg16", pretrained=False)
    peer.initialize(mx.init.Xavier())
    peer.hybridize(static_alloc=True, static_shape=True)
    return ours, peer


def _row(figure, ours, peer, peer_name, target, unit, higher_is_better=True, note=""):
    ratio = ours / peer if higher_is_better else peer / ours
    return dict(figure=figure, ours=ours, peer=peer, peer_name=peer_name, ratio=ratio,
                target=target, unit=unit, passed=ratio >= target, note=note)
