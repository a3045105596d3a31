"""``make demo``: the toolkit end to end on real images shipped by scikit-image.

So far: Table 1/2 from the code, then every configuration run on a real photo
in FC form and in dense form (which must agree at 224x224 and give a score
map at 384x384).
"""
import sys
import time

import numpy as np


def main(out=sys.stdout):
    import vggcli  # noqa: F401  (thread settings before MXNet loads)
    from vggcli._env import quiet_warnings
    quiet_warnings()
    import cv2
    import mxnet as mx
    from skimage import data

    from vggcli import models
    from vggcli.tables import network_tables

    print(network_tables(list(models.CONFIGS))["markdown"], file=out)
    photo = data.astronaut()

    def tensor(side):
        image = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        return mx.nd.array((image - image.reshape(-1, 3).mean(0)).transpose(2, 0, 1)[None])

    x224, x384 = tensor(224), tensor(384)
    print("\nForward pass of each net (random Xavier weights) on skimage's astronaut photo:",
          file=out)
    for config in models.CONFIGS:
        net = models.initialize(models.get_model(config), seed=0)
        net.hybridize(static_alloc=True)
        start = time.time()
        scores = net(x224).asnumpy()
        seconds = time.time() - start
        dense = models.dense_form(net)
        dense.hybridize()
        dense_scores = dense(x224).asnumpy().reshape(scores.shape)
        score_map = dense(x384).shape
        gap = float(np.abs(dense_scores - scores).max() / np.abs(scores).max())
        print("  %-5s fc8 %s in %.2fs; dense at 224 differs by %.1e (relative); "
              "dense score map at 384: %s" % (config, scores.shape, seconds, gap, score_map),
              file=out)
        if gap > 1e-4:
            raise SystemExit("dense and FC forms disagree for net %s" % config)


if __name__ == "__main__":
    main()
