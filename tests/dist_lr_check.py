"""Run under `vgg launch`: does a learning-rate change reach the servers?

With update_on_kvstore the optimizer runs on the servers; vgg train resends it
after set_learning_rate. A step at lr 0 must then leave the weights unchanged,
and a step at lr 0.5 must move them by exactly lr * gradient.
"""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

kv = mx.kv.create("dist_sync")
net = gluon.nn.Dense(1, in_units=2, use_bias=False)
net.initialize(mx.init.One())
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5}, kvstore=kv,
                        update_on_kvstore=True)
x = mx.nd.array([[1.0, 2.0]])


def step():
    with autograd.record():
        loss = net(x).sum()  # gradient = x, the same on every worker
    loss.backward()
    trainer.step(kv.num_workers)  # global batch: one row per worker
    return net.weight.data().asnumpy().copy()


moved = step()
np.testing.assert_allclose(moved, 1 - 0.5 * np.array([[1.0, 2.0]]), rtol=1e-6)
trainer.set_learning_rate(0.0)
kv.set_optimizer(trainer._optimizer)  # what vgg train does after a plateau
np.testing.assert_allclose(step(), moved, rtol=1e-6)
print("rank %d: learning-rate change reached the servers" % kv.rank, flush=True)
