"""Run under `vgg launch -n 2`: one dist_sync SGD step, each worker on its half of a batch.

Usage: dist_step_check.py DIGITS_DIR OUT.npz. Every worker builds the same small net
(the seed of tests/test_train.py's STEP config) and reads the same first training
batch; worker r takes its r-th half, computes its gradient with vgg train's
``compute_gradients`` and steps the trainer ``make_trainer`` builds for a dist
kvstore (update on the servers, global batch size). Rank 0 saves the weights
before and after the step; tests/test_launch.py compares them with one process
that steps on the whole batch.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vggcli  # noqa: I001

vggcli.configure()  # before MXNet, as the vgg command does

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import gluon  # noqa: E402

from tests.test_train import STEP, one_batch  # noqa: E402
from vggcli.nets import models  # noqa: E402
from vggcli.training.train import compute_gradients  # noqa: E402
from vggcli.training.train_setup import build_net, make_trainer  # noqa: E402

digits, out = sys.argv[1], sys.argv[2]
kv = mx.kv.create("dist_sync")
cfg, batch = one_batch(digits, "/nonexistent-out")
half = batch[2].shape[0] // kv.num_workers
mine = [a[kv.rank * half:(kv.rank + 1) * half] for a in batch]
net = models.initialize(build_net(cfg, 10), init=cfg["init"], ctx=[mx.cpu()], seed=cfg["seed"])
net.hybridize(static_alloc=True, static_shape=True)
trainer = make_trainer(net, cfg["lr"], cfg, kv, dist=True)
before = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
compute_gradients(net, mine, [mx.cpu()], gluon.loss.SoftmaxCrossEntropyLoss())
trainer.step(half * kv.num_workers)
after = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
if kv.rank == 0:
    np.savez(out, **{"before:" + k: v for k, v in before.items()},
             **{"after:" + k: v for k, v in after.items()})
print("rank %d of %d: stepped on %d images" % (kv.rank, kv.num_workers, half), flush=True)
assert STEP["dropout"] == 0.0
