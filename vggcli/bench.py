"""``make bench``: figures as ratios against a named peer, measured in the same run."""
import json
import os
import sys
import time


def _median_rate(fn, images, repeats):
    fn()  # warm-up: graph build and oneDNN layout conversion
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - start))
    rates.sort()
    return rates[len(rates) // 2]


def bench_inference(batch=4, repeats=5):
    """VGG-D fp32 inference, ours vs GluonCV's model-zoo vgg16 (same weights shapes)."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model as gcv_get_model

    from vggcli import models

    x = mx.nd.random.uniform(shape=(batch, 3, 224, 224))
    ours = models.initialize(models.get_model("D"), seed=0)
    ours.hybridize(static_alloc=True, static_shape=True)
    peer = gcv_get_model("vgg16", pretrained=False)
    peer.initialize(mx.init.Xavier())
    peer.hybridize(static_alloc=True, static_shape=True)
    results = {}
    for name, net in (("ours", ours), ("gluoncv", peer)):
        results[name] = _median_rate(lambda n=net: n(x).wait_to_read(), batch, repeats)
    return dict(figure="VGG-D fp32 inference, 224, batch %d (images/s)" % batch,
                ours=results["ours"], peer=results["gluoncv"], peer_name="GluonCV vgg16",
                ratio=results["ours"] / results["gluoncv"], target=1.0)


def main():
    import vggcli  # noqa: F401
    from vggcli._env import quiet_warnings
    from vggcli.tables import markdown_table
    quiet_warnings()
    rows = [bench_inference()]
    os.makedirs("bench", exist_ok=True)
    with open("bench/results.json", "w") as f:
        json.dump(rows, f, indent=2)
    table = markdown_table(["figure", "ours", "peer", "ratio", "target", "pass"],
                           [[r["figure"], "%.2f" % r["ours"], "%.2f (%s)" % (r["peer"],
                            r["peer_name"]), "%.2fx" % r["ratio"], ">= %.1fx" % r["target"],
                             "yes" if r["ratio"] >= r["target"] else "no"] for r in rows])
    with open("bench/results.md", "w") as f:
        f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
