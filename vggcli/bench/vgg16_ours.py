"""Our net D as the PyTorch peer runs its own, in its own process.

python -m vggcli.bench.vgg16_ours TASK BATCH REPS DTYPE MICRO SETTLE: micro-batches
(training: the batch's gradient accumulated over them, as vgg train --accumulate);
settle as vgg16_torch. Prints images/s and peak RSS in MB, or "unsupported <why>" where
this CPU cannot run the dtype."""
import sys

from .steps import timed_steps


def main(argv):
    task, batch, reps, dtype = argv[0], int(argv[1]), int(argv[2]), argv[3]
    micro, settle = int(argv[4]), argv[5] == "1"
    import vggcli
    vggcli.configure()  # as the vgg command: threads, AMX, quiet logs
    from vggcli.core import precision
    used, note = precision.prepare(dtype)  # bfloat16 falls back without bf16 instructions
    if used != dtype:
        print("unsupported", note)
        return
    import mxnet as mx
    from mxnet import autograd, gluon

    from vggcli.nets import models
    precision.start_mixed_precision(dtype if task == "train" else "float32")
    net = models.get_model("D")
    if task != "train":  # as PyTorch, which allocates gradients only in backward
        net.collect_params().setattr("grad_req", "null")
    elif micro > 1:
        net.collect_params().setattr("grad_req", "add")
    net = models.initialize(net, init="xavier", seed=0)
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(-128, 127, shape=(batch, 3, 224, 224))
    if task == "train":
        trainer = gluon.Trainer(net.collect_params(), "sgd",
                                dict(learning_rate=0.01, momentum=0.9, wd=5e-4))
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        y = mx.nd.array([i % 1000 for i in range(batch)])
        part = batch // micro

        def step():
            for k in range(micro):
                with autograd.record():
                    loss = loss_fn(precision.to_float32(net(x[k * part:(k + 1) * part])),
                                   y[k * part:(k + 1) * part])
                loss.backward()
            trainer.step(batch)
            mx.nd.waitall()
            if micro > 1:
                net.collect_params().zero_grad()
    else:
        forward = precision.convert_for_inference(net, dtype, x[:1].asnumpy(), [mx.cpu()])

        def step():
            forward(x).wait_to_read()
    timed_steps(step, batch, reps, settle)


if __name__ == "__main__":
    main(sys.argv[1:])
