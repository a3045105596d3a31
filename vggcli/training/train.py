"""``vgg train``: the paper's training procedure (§3.1, §3.3).

Mini-batch SGD with momentum on soft-max cross-entropy; the global batch is
split across devices and the gradients summed through a KVStore, so several
devices compute exactly what one would on the whole batch. The learning rate
is divided by 10 when validation accuracy plateaus. Checkpoints (atomic,
checksummed, pickle-free) let a killed run resume where it stopped.

Structure (after torchvision's reference script): ``train_setup.setup``
(data, net, optimizer, devices), then here ``train_one_epoch`` (built on
``compute_gradients``), ``evaluate``, ``run_epochs`` and ``train``;
``train_state`` holds what a run writes (config, log, momentum, metrics).
"""
import math
import os
import sys
import time

import numpy as np

from data_tools.common import naming

from . import checkpoint
from ..core.errors import VggRuntimeError
from .train_setup import setup
from .train_state import Meter, save_optimizer, weights_digest


# --- pieces ---------------------------------------------------------------------

def _dropout_seed(seed, epoch, batch):
    return int(np.random.SeedSequence([seed, epoch, batch, 11]).generate_state(1)[0] % (2**31))


def _forward_counts(outputs, labels, task):
    """(loss sum, top-1 correct, top-5 correct) per device, as NDArrays
    (localisation: the crops localised correctly, twice; vggcli.training.tasks)."""
    return [task.counts(out, label) for out, label in zip(outputs, labels)]


def compute_gradients(net, batch, ctx, loss_fn, trainer=None, loss_scaling=False):
    """Forward and backward of one (crops, offsets, labels) batch split over ``ctx``.

    Each device's parameter gradients then hold the sum over its part of the batch;
    ``trainer.step`` (or ``allreduce_grads``) sums them through the KVStore.
    Returns the per-device (outputs, labels, losses).
    """
    from mxnet import autograd, gluon
    from mxnet.contrib import amp

    from .data import to_network_input
    from ..core.precision import to_float32

    crops, offsets, labels = [gluon.utils.split_and_load(a, ctx, even_split=False)
                              for a in batch]
    with autograd.record():
        outputs = [to_float32(net(to_network_input(c, o))) for c, o in zip(crops, offsets)]
        losses = [loss_fn(out, lab) for out, lab in zip(outputs, labels)]
        if loss_scaling:  # float16: AMP's dynamic loss scale
            with amp.scale_loss(losses, trainer) as scaled:
                autograd.backward(scaled)
    if not loss_scaling:
        autograd.backward(losses)
    return outputs, labels, losses


def accumulate_gradients(net, batch, ctx, loss_fn, micro_batches=1, trainer=None,
                         loss_scaling=False):
    """``compute_gradients`` of ``batch`` in ``micro_batches`` consecutive parts (the
    net's grad_req is 'add', so each device ends up with the sum over its images of
    the whole batch, as one pass would give, with the activations of one part in
    memory). Returns the parts' (outputs, labels, losses), concatenated."""
    if micro_batches == 1:
        return compute_gradients(net, batch, ctx, loss_fn, trainer, loss_scaling)
    size = batch[2].shape[0]
    bounds = [size * i // micro_batches for i in range(micro_batches + 1)]
    outputs, labels, losses = [], [], []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        part = compute_gradients(net, [a[start:stop] for a in batch], ctx, loss_fn, trainer,
                                 loss_scaling)
        outputs += part[0]
        labels += part[1]
        losses += part[2]
    return outputs, labels, losses


def evaluate(net, loader, ctx, task=None):
    """Single-crop validation: dict(loss, top1_err, top5_err)."""
    import mxnet as mx
    from mxnet import gluon

    from .data import to_network_input
    from ..core.precision import to_float32
    from .tasks import Classification

    task = task or Classification()
    meter = Meter()
    for crops, offsets, labels in loader:
        parts = [gluon.utils.split_and_load(a, ctx, even_split=False)
                 for a in (crops, offsets, labels)]
        outputs = [to_float32(net(to_network_input(c, o))) for c, o in zip(parts[0], parts[1])]
        for (loss_sum, c1, c5), label in zip(_forward_counts(outputs, parts[2], task),
                                             parts[2]):
            meter.update(loss_sum.asscalar(), c1.asscalar(), c5.asscalar(), label.shape[0])
    mx.nd.waitall()
    return meter.result()


# --- the loop -------------------------------------------------------------------

def train_one_epoch(run, epoch, start_batch, meter_state=None):
    """Train one epoch from ``start_batch``; returns the epoch's training metrics."""
    import mxnet as mx

    cfg, net, trainer, ctx = run.cfg, run.net, run.trainer, run.ctx
    batches = run.train_batches
    batches.epoch, batches.start_batch = epoch, start_batch
    meter = Meter(meter_state)
    interval = Meter()
    every = cfg["checkpoint_every"]
    seed = cfg["seed"] + 1000003 * run.rank  # workers draw different dropout masks
    mx.random.seed(_dropout_seed(seed, epoch, start_batch), ctx="all")
    bar = run.progress(len(batches) * cfg["batch_size"], start_batch * cfg["batch_size"],
                          "epoch %d/%d" % (epoch + 1, cfg["epochs"]))
    tick, batch = time.time(), start_batch
    warmup_steps = cfg.get("warmup", 0) * len(batches)
    try:
        for batch, (crops, offsets, labels) in enumerate(run.train_loader, start_batch):
            step = epoch * len(batches) + batch
            if step < warmup_steps:  # Goyal et al. 2017: linear, from lr/steps to lr
                # (its last step sets the schedule's rate itself)
                trainer.set_learning_rate(run.schedule.lr * (step + 1) / warmup_steps)
            outputs, label_parts, losses = accumulate_gradients(
                net, (crops, offsets, labels), ctx, run.task.loss_fn, cfg["accumulate"], trainer,
                loss_scaling=run.loss_scaling)
            trainer.step(labels.shape[0] * run.workers)  # the global batch
            if cfg["accumulate"] > 1:
                net.collect_params().zero_grad()
            counts = _forward_counts(outputs, label_parts, run.task)
            loss_sum = sum(loss.sum().asscalar() for loss in losses)
            if not math.isfinite(loss_sum):
                raise VggRuntimeError(
                    "loss became %s at epoch %d, batch %d (lr %g); the last good checkpoint "
                    "is kept in %s; lower --lr or check the data" % (
                        loss_sum, epoch + 1, batch, trainer.learning_rate,
                        run.checkpoints))
            c1 = sum(c[1].asscalar() for c in counts)
            c5 = sum(c[2].asscalar() for c in counts)
            n = labels.shape[0]
            meter.update(loss_sum, c1, c5, n)
            interval.update(loss_sum, c1, c5, n)
            run.iteration += 1
            bar.update(n)
            bar.set_postfix(loss="%.4f" % (loss_sum / n), lr="%g" % trainer.learning_rate)
            if run.iteration % cfg["log_every"] == 0:
                seconds = time.time() - tick
                run.log.write(event="iter", epoch=epoch + 1, batch=batch + 1,
                                 iteration=run.iteration, lr=trainer.learning_rate,
                                 images_per_second=interval.sums["images"] / max(seconds, 1e-9),
                                 time=time.time(), **interval.result())
                interval, tick = Meter(), time.time()
            if every and run.iteration % every == 0 and batch + 1 < len(batches):
                save_checkpoint(run, epoch, batch + 1, meter.sums)
                mx.random.seed(_dropout_seed(seed, epoch, batch + 1), ctx="all")
    finally:
        bar.close()
    return meter.result()


def save_checkpoint(run, epoch, batch, meter_sums=None):
    from ..nets.params import save_params
    if not run.writer:
        return None
    state = dict(epoch=epoch, batch=batch, iteration=run.iteration,
                 schedule=run.schedule.state_dict(), meter=meter_sums,
                 log_bytes=run.log.tell(), best_val_top1_err=run.best,
                 num_update=run.trainer._optimizer.num_update)
    return checkpoint.save(run.checkpoints, epoch, batch,
                           lambda path: save_params(run.net, path, run.weights_meta),
                           lambda path: save_optimizer(run.trainer, run.net, path),
                           state, keep=run.cfg["keep"])


def run_epochs(run, epochs):
    """Train epoch by epoch until ``epochs`` or the schedule's end; validate, keep the
    best weights and checkpoint after each. Returns the number of epochs done."""
    from ..nets.params import save_params

    epoch, batch, meter_state = run.start
    while epoch < epochs and not run.schedule.finished:
        epoch_start = time.time()
        lr = run.schedule.lr
        if lr != run.trainer.learning_rate:
            run.trainer.set_learning_rate(lr)
            if run.dist:  # the servers run the optimizer: send them the new rate
                run.kvstore.set_optimizer(run.trainer._optimizer)
        train_metrics = train_one_epoch(run, epoch, batch, meter_state)
        # every worker validates on the whole val set: the same numbers everywhere,
        # so all workers take the same schedule decisions and stop together
        val_metrics = evaluate(run.net, run.val_loader, run.ctx, run.task)
        event = run.schedule.step(1 - val_metrics["top1_err"])
        if run.best is None or val_metrics["top1_err"] < run.best:
            run.best = val_metrics["top1_err"]
            if run.writer:
                save_params(run.net, os.path.join(run.cfg["out"], "best.params"),
                            run.weights_meta)
        seconds = time.time() - epoch_start
        run.log.write(event="epoch", epoch=epoch + 1, iteration=run.iteration, lr=lr,
                      schedule=event, seconds=seconds, time=time.time(),
                      **{"train_" + k: v for k, v in train_metrics.items()},
                      **{"val_" + k: v for k, v in val_metrics.items()})
        epoch, batch, meter_state = epoch + 1, 0, None
        run.last_train_loss = train_metrics["loss"]
        save_checkpoint(run, epoch, 0)
        if run.task.name == "classify":
            print("epoch %d: train loss %.4f, top-1/top-5 err %.2f%%/%.2f%%; val %.2f%%/%.2f%%;"
                  " lr %g -> %s (%.0fs)" % (
                      epoch, train_metrics["loss"], 100 * train_metrics["top1_err"],
                      100 * train_metrics["top5_err"], 100 * val_metrics["top1_err"],
                      100 * val_metrics["top5_err"], lr, event, seconds), flush=True)
        else:
            print("epoch %d: train loss %.4f, localisation err %.2f%%; val %.2f%%; lr %g -> %s "
                  "(%.0fs)" % (epoch, train_metrics["loss"], 100 * train_metrics["top1_err"],
                               100 * val_metrics["top1_err"], lr, event, seconds), flush=True)
    return epoch


# A classifier whose last training loss is above this fraction of chance's (ln of the
# class count, a uniform guess) has not learned: it is reported, not compared.
LEARNED_LOSS_FRACTION = 0.9


def _last_loss(out):
    """The last epoch's training loss in ``out``/log.jsonl (a resumed run's epochs ran
    in an earlier process)."""
    from ..core.plots import read_jsonl
    epochs = read_jsonl(os.path.join(out, "log.jsonl"), "epoch")
    return epochs[-1]["train_loss"] if epochs else None


def learning_verdict(final_loss, classes):
    """(learned, sentence) for a classifier's final training loss."""
    chance = math.log(classes)
    if final_loss is None:
        return None, "no epoch ran"
    if final_loss > LEARNED_LOSS_FRACTION * chance:
        return False, ("did not learn: final training loss %.3f is within %d%% of chance's "
                       "%.3f (ln %d)" % (final_loss, round(100 * (1 - LEARNED_LOSS_FRACTION)),
                                         chance, classes))
    return True, "learned: final training loss %.3f against chance's %.3f (ln %d)" % (
        final_loss, chance, classes)


def plot_curves(run):
    """curves.png from log.jsonl (rank 0), also after a failed run."""
    if not run.writer:
        return
    out = run.cfg["out"]
    try:
        from ..core.plots import plot_training_curves
        plot_training_curves(os.path.join(out, "log.jsonl"), os.path.join(out, "curves.png"))
    except Exception as err:  # a plot must never cost a training run
        print("warning: no training-curve plot: %s" % err, file=sys.stderr)


def finish(run):
    """Final weights (rank 0); every worker's weights digest when distributed."""
    import mxnet as mx

    from ..nets.params import save_params

    if run.writer:
        save_params(run.net, os.path.join(run.cfg["out"], "final.params"), run.weights_meta)
    mx.nd.waitall()
    if run.dist:  # lets the launcher's user (and the tests) see that workers agree
        print("worker %d final weights sha256 %s" % (run.rank, weights_digest(run.net)),
              flush=True)


def train(cfg, meta=None, resume=False, progress=True):
    """Run (or resume) training as configured; returns a summary dict.

    ``cfg``: a resolved configuration (``recipes.resolve``). With ``resume`` the
    newest verified checkpoint in ``cfg['out']`` is continued.

    With a ``dist_*`` kvstore (started by ``vgg launch``) each worker reads its
    own shard of the records (every W-th record), all workers run the same
    number of steps per epoch, ``batch_size`` stays the global batch (each
    worker takes batch_size / W) and only rank 0 writes files. The optimizer
    then runs on the servers (``update_on_kvstore``: measured as the only
    setting that kept workers identical), so a learning-rate change is sent to
    them with the optimizer, which restarts the momentum buffers there; for the
    same reason a distributed resume restores weights and schedule, not momentum.
    """
    with naming(cfg["out"]):  # a failed write without a file name names the run folder
        run = setup(cfg, meta, resume=resume, progress=progress)
        learned = None
        try:
            epochs = run_epochs(run, cfg["epochs"])
            if run.task.name == "classify":
                last = run.last_train_loss
                learned, sentence = learning_verdict(
                    _last_loss(cfg["out"]) if last is None else last, run.task.classes)
                run.log.write(event="summary", epochs=epochs, learned=learned,
                              verdict=sentence, time=time.time())
                if learned is False and run.writer:
                    print("warning: %s" % sentence, file=sys.stderr, flush=True)
        finally:
            run.log.close()
            plot_curves(run)
        finish(run)
    return dict(epochs=epochs, iterations=run.iteration, best_val_top1_err=run.best,
                learned=learned,
                seconds=time.time() - run.started, out=cfg["out"],
                finished=run.schedule.finished, rank=run.rank, workers=run.workers)
