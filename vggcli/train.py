"""``vgg train``: the paper's training procedure (§3.1, §3.3).

Mini-batch SGD with momentum on soft-max cross-entropy; the global batch is
split across devices and the gradients summed through a KVStore, so several
devices compute exactly what one would on the whole batch. The learning rate
is divided by 10 when validation accuracy plateaus. Checkpoints (atomic,
checksummed, pickle-free) let a killed run resume where it stopped.

Structure (after torchvision's reference script): ``load_data``,
``build_net``, ``train_one_epoch``, ``evaluate``, ``train``.
"""
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import checkpoint
from .errors import VggError, VggRuntimeError

# Layers of net A copied into a deeper net by --init-from (paper §3.1: "the first
# four convolutional layers and the last three fully-connected layers").
A_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8")


# --- pieces ---------------------------------------------------------------------

def load_data(cfg, manifest, part=0, parts=1):
    """(train loader, val loader, their batch samplers) for a resolved config."""
    from .data import (CenterTransform, EpochBatches, EpochDataset, RecordImages, Scale,
                       TrainTransform, make_loader)
    from ._env import available_cores

    scale = Scale.parse(cfg["scale"])
    val_scale = cfg["val_scale"] or scale.test_scale
    data = cfg["data"]
    train_images = RecordImages(os.path.join(data, "train.rec"), part=part, parts=parts)
    val_path = os.path.join(data, "val.rec")
    if not os.path.isfile(val_path):
        raise VggError("%s not found: training needs a val split for its schedule" % val_path)
    val_images = RecordImages(val_path)
    workers = cfg["workers"] if cfg["workers"] is not None else available_cores()
    mean = manifest["mean_rgb"]
    train_set = EpochDataset(train_images, TrainTransform(scale, cfg["crop_size"], mean,
                                                          cfg["seed"], pca_std=cfg["pca_std"]))
    val_set = EpochDataset(val_images, CenterTransform(val_scale, cfg["crop_size"], mean))
    steps = None
    if parts > 1:  # every worker runs the same number of steps (MXNet #7888, #9611)
        steps = math.ceil(math.ceil(train_images.total / parts) / cfg["batch_size"])
    train_batches = EpochBatches(len(train_images), cfg["batch_size"], cfg["seed"],
                                 steps=steps)
    val_batches = EpochBatches(len(val_images), cfg["batch_size"], cfg["seed"], shuffle=False)
    return (make_loader(train_set, train_batches, workers),
            make_loader(val_set, val_batches, workers), train_batches, val_batches)


def build_net(cfg, classes):
    from .models import get_model
    return get_model(cfg["net"], classes=classes, width_mult=cfg["width_mult"],
                     fc_width=cfg["fc_width"], dropout=cfg["dropout"],
                     crop_size=cfg["crop_size"])


def init_from_a(net, path, ctx):
    """Copy net A's conv1_1, conv2_1, conv3_1, conv3_2, fc6, fc7, fc8 into ``net``."""
    from .models import describe_meta, read_params

    arrays, meta = read_params(path)
    if meta and meta.get("net") not in ("A", "A-LRN"):
        raise VggError("--init-from %s holds %s; the paper initialises from net A"
                       % (path, describe_meta(meta)))
    params = net._collect_params_with_prefix()
    copied = []
    for layer in A_LAYERS:
        prefix = ("features.%s" % layer) if layer.startswith("conv") else layer
        for kind in ("weight", "bias"):
            key = "%s.%s" % (prefix, kind)
            if key not in arrays:
                raise VggError("--init-from %s has no %s" % (path, key))
            if tuple(arrays[key].shape) != tuple(params[key].shape):
                raise VggError("--init-from %s: %s is %s there but %s in net %s (different "
                               "width, classes or crop size?)" % (
                                   path, key, tuple(arrays[key].shape),
                                   tuple(params[key].shape), net.config))
            params[key].set_data(arrays[key].as_in_context(ctx[0]))
            copied.append(key)
    return copied


def _param_names(trainer, net):
    by_id = {id(p): name for name, p in net._collect_params_with_prefix().items()}
    return [by_id[id(p)] for p in trainer._params]


def save_optimizer(trainer, net, path):
    """Momentum buffers by parameter name, with mx.nd.save (no pickle)."""
    import mxnet as mx
    states = trainer._updaters[0].states
    arrays = {}
    for index, name in enumerate(_param_names(trainer, net)):
        state = states.get(index)
        if state is not None:
            arrays["momentum:" + name] = state.as_in_context(mx.cpu())
    mx.nd.save(path, arrays)


def load_optimizer(trainer, net, path):
    import mxnet as mx
    arrays = mx.nd.load(path)
    names = _param_names(trainer, net)
    for updater, ctx in zip(trainer._updaters, trainer._contexts):
        for index, name in enumerate(names):
            key = "momentum:" + name
            if key in arrays:
                updater.states[index] = arrays[key].as_in_context(ctx)
                updater.states_synced[index] = True


def _dropout_seed(seed, epoch, batch):
    return int(np.random.SeedSequence([seed, epoch, batch, 11]).generate_state(1)[0] % (2**31))


class Meter:
    """Running sums for loss and top-1/top-5 errors."""

    def __init__(self, state=None):
        self.sums = dict(state or dict(loss=0.0, top1=0.0, top5=0.0, images=0))

    def update(self, loss_sum, correct1, correct5, images):
        s = self.sums  # plain floats: they go to JSON (numpy 2 keeps float32 scalars)
        s["loss"] += float(loss_sum)
        s["top1"] += float(correct1)
        s["top5"] += float(correct5)
        s["images"] += int(images)

    def result(self):
        n = max(self.sums["images"], 1)
        return dict(loss=self.sums["loss"] / n, top1_err=1 - self.sums["top1"] / n,
                    top5_err=1 - self.sums["top5"] / n)


def _forward_counts(outputs, labels, loss_fn):
    """(loss sum, top-1 correct, top-5 correct) over devices, as NDArrays."""
    import mxnet as mx
    results = []
    for out, label in zip(outputs, labels):
        k = min(5, out.shape[1])
        top = mx.nd.topk(out, k=k, axis=1, ret_typ="indices")
        hits = top == label.reshape((-1, 1))
        results.append((loss_fn(out, label).sum(), hits[:, 0].sum(), hits.sum()))
    return results


def make_trainer(net, lr, cfg, kvstore, dist=False):
    """SGD with momentum and weight decay (§3.1). With a ``dist_*`` kvstore the update
    runs on the servers (``update_on_kvstore``), elsewhere on the devices."""
    from mxnet import gluon
    return gluon.Trainer(net.collect_params(), "sgd",
                         dict(learning_rate=lr, momentum=cfg["momentum"], wd=cfg["wd"]),
                         kvstore=kvstore, update_on_kvstore=True if dist else False)


def compute_gradients(net, batch, ctx, loss_fn, trainer=None, loss_scaling=False):
    """Forward and backward of one (crops, offsets, labels) batch split over ``ctx``.

    Each device's parameter gradients then hold the sum over its part of the batch;
    ``trainer.step`` (or ``allreduce_grads``) sums them through the KVStore.
    Returns the per-device (outputs, labels, losses).
    """
    from mxnet import autograd, gluon
    from mxnet.contrib import amp

    from .data import to_network_input
    from .precision import to_float32

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


def evaluate(net, loader, ctx):
    """Single-crop validation: dict(loss, top1_err, top5_err)."""
    import mxnet as mx
    from mxnet import gluon

    from .data import to_network_input
    from .precision import to_float32

    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    meter = Meter()
    for crops, offsets, labels in loader:
        parts = [gluon.utils.split_and_load(a, ctx, even_split=False)
                 for a in (crops, offsets, labels)]
        outputs = [to_float32(net(to_network_input(c, o))) for c, o in zip(parts[0], parts[1])]
        for (loss_sum, c1, c5), label in zip(_forward_counts(outputs, parts[2], loss_fn),
                                             parts[2]):
            meter.update(loss_sum.asscalar(), c1.asscalar(), c5.asscalar(), label.shape[0])
    mx.nd.waitall()
    return meter.result()


class Log:
    """JSON lines (one object per line) that tools can read; truncated on resume to
    what the resumed checkpoint had seen."""

    def __init__(self, path, resume_bytes=None):
        self.path = path
        if resume_bytes is not None and path != os.devnull and os.path.exists(path):
            with open(path, "r+") as f:
                f.truncate(resume_bytes)
        self.file = open(path, "a")

    def write(self, **record):
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()


@dataclass
class Run:
    """The state of one training run, shared by the loop's pieces."""

    cfg: dict  # resolved config; batch_size is this worker's share of the global batch
    net: object
    trainer: object
    ctx: list
    train_loader: object
    train_batches: object
    val_loader: object
    log: object
    schedule: object
    kvstore: object
    weights_meta: dict
    loss_fn: object = None
    progress: object = None
    checkpoints: str = ""
    iteration: int = 0
    best: float = None
    rank: int = 0
    workers: int = 1
    dist: bool = False
    loss_scaling: bool = False
    start: tuple = (0, 0, None)  # epoch, batch, meter sums to continue from
    started: float = field(default_factory=time.time)

    @property
    def writer(self):
        return self.rank == 0


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
    try:
        for batch, (crops, offsets, labels) in enumerate(run.train_loader, start_batch):
            outputs, label_parts, losses = compute_gradients(
                net, (crops, offsets, labels), ctx, run.loss_fn, trainer,
                loss_scaling=run.loss_scaling)
            trainer.step(labels.shape[0] * run.workers)  # the global batch
            counts = _forward_counts(outputs, label_parts, run.loss_fn)
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
    from .models import save_params
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


def weights_meta(cfg, manifest):
    """What evaluation needs besides the weights: preprocessing, training scale, class names."""
    names = []
    synsets = os.path.join(cfg["data"], "synsets.txt")
    if os.path.isfile(synsets):
        with open(synsets) as f:
            names = [line.strip() for line in f if line.strip()]
    return dict(mean_rgb=list(manifest["mean_rgb"]), train_scale=cfg["scale"],
                class_names=names)


def _progress_factory(enabled):
    from tqdm import tqdm

    def make(total, initial, desc):
        return tqdm(total=total, initial=initial, desc=desc, unit="img", file=sys.stderr,
                    disable=not enabled, dynamic_ncols=True, leave=False)
    return make


def write_config(cfg, meta, path):
    import yaml
    text = yaml.safe_dump(dict(cfg, **{"recipe_" + k: v for k, v in meta.items()}),
                          sort_keys=False)
    from data_tools.common import write_text_atomic
    write_text_atomic(path, text)


def read_config(out_dir):
    import yaml

    from .recipes import FIELDS, validate
    path = os.path.join(out_dir, "config.yaml")
    if not os.path.isfile(path):
        raise VggError("%s not found: --resume needs a folder written by vgg train" % path)
    with open(path) as f:
        saved = yaml.safe_load(f) or {}
    meta = {k[len("recipe_"):]: v for k, v in saved.items() if k.startswith("recipe_")}
    return validate({k: v for k, v in saved.items() if k in FIELDS}, where=path), meta


def _weights_digest(net):
    import hashlib
    digest = hashlib.sha256()
    for name, param in sorted(net._collect_params_with_prefix().items()):
        digest.update(name.encode())
        digest.update(param.data().asnumpy().tobytes())
    return digest.hexdigest()


def _distribution(cfg):
    """(kvstore name, kvstore or its name, rank, workers) for the config's kvstore."""
    import mxnet as mx

    from .devices import check_kvstore, default_kvstore, parse_devices

    kv_name = check_kvstore(cfg["kvstore"] or default_kvstore(parse_devices(cfg["devices"])))
    if not kv_name.startswith("dist"):
        return kv_name, kv_name, 0, 1
    kvstore = mx.kv.create(kv_name)
    return kv_name, kvstore, kvstore.rank, kvstore.num_workers


def _start_net(cfg, classes, ctx, found):
    """The net, initialised as configured or loaded from the checkpoint ``found``."""
    from .models import initialize, load_params

    net = build_net(cfg, classes)
    if found:
        load_params(net, os.path.join(found[0], "weights.params"), ctx=ctx)
    else:
        initialize(net, init=cfg["init"], std=cfg["init_std"], ctx=ctx, seed=cfg["seed"])
        if cfg["init_from"]:
            init_from_a(net, cfg["init_from"], ctx)
        if cfg["finetune_from"]:
            load_params(net, cfg["finetune_from"], ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def setup(cfg, meta=None, resume=False, progress=True):
    """Everything a run needs, checked before any work: devices, kvstore, precision,
    data, net, optimizer, log; with ``resume``, restored from the newest checkpoint."""
    from mxnet import gluon
    from mxnet.contrib import amp

    from . import precision
    from .data import read_manifest
    from .devices import contexts, parse_devices
    from .schedule import PlateauSchedule

    for key in ("data", "out"):
        if not cfg.get(key):
            raise VggError("--%s is required" % key)
    dtype = precision.resolve(cfg.get("dtype") or "float32")
    kv_name, kvstore, rank, workers = _distribution(cfg)
    dist = kv_name.startswith("dist")
    if cfg["batch_size"] % workers:
        raise VggError("batch size %d does not split evenly over %d workers"
                       % (cfg["batch_size"], workers))
    local = dict(cfg, batch_size=cfg["batch_size"] // workers)
    out, ckpt_root = cfg["out"], os.path.join(cfg["out"], "checkpoints")
    found = checkpoint.latest(ckpt_root) if resume else None
    if not resume and rank == 0 and checkpoint.list_checkpoints(ckpt_root):
        raise VggError("%s already holds a run (checkpoints/); continue it with --resume %s "
                       "or choose another --out" % (out, out))
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        write_config(cfg, meta or {}, os.path.join(out, "config.yaml"))
    manifest = read_manifest(cfg["data"])
    ctx = contexts(parse_devices(cfg["devices"]))
    if local["batch_size"] < len(ctx):
        raise VggError("batch size %d is smaller than the %d devices"
                       % (local["batch_size"], len(ctx)))
    precision.check_devices(dtype, ctx)
    if dtype == "float16" and dist:
        raise VggError("--dtype float16 with a dist kvstore: AMP's loss scaling needs the "
                       "update on the workers, which dist_sync does not do here")
    precision.start_mixed_precision(dtype)  # before the net is built
    schedule = PlateauSchedule(cfg["lr"], patience=cfg["patience"],
                               max_reductions=cfg["max_reductions"])
    if found:
        schedule.load_state_dict(found[1]["schedule"])
    net = _start_net(cfg, manifest["classes"], ctx, found)
    trainer = make_trainer(net, schedule.lr, cfg, kvstore, dist=dist)
    if dtype == "float16":
        amp.init_trainer(trainer)
    if found and not dist:  # distributed: the servers hold the momentum
        load_optimizer(trainer, net, os.path.join(found[0], "optimizer.nd"))
        trainer._optimizer.num_update = found[1]["num_update"]
    train_loader, val_loader, train_batches, _ = load_data(local, manifest, part=rank,
                                                           parts=workers)
    state = found[1] if found else {}
    log = Log(os.path.join(out, "log.jsonl") if rank == 0 else os.devnull,
              resume_bytes=state.get("log_bytes", 0) if rank == 0 else 0)
    run = Run(cfg=local, net=net, trainer=trainer, ctx=ctx, train_loader=train_loader,
              train_batches=train_batches, val_loader=val_loader, log=log, schedule=schedule,
              kvstore=kvstore, weights_meta=weights_meta(cfg, manifest),
              loss_fn=gluon.loss.SoftmaxCrossEntropyLoss(), checkpoints=ckpt_root,
              progress=_progress_factory(progress and rank == 0),
              iteration=state.get("iteration", 0), best=state.get("best_val_top1_err"),
              rank=rank, workers=workers, dist=dist, loss_scaling=dtype == "float16",
              start=(state.get("epoch", 0), state.get("batch", 0), state.get("meter")))
    if not found:
        log.write(event="start", time=time.time(), kvstore=kv_name, dtype=dtype,
                  devices=[str(c) for c in ctx], train_images=len(train_batches.order(0)),
                  workers=workers, config=cfg)
    print("%s net %s on %s (kvstore %s%s%s): %d training / %d val images, batch %d, lr %g%s" % (
        "resuming" if found else "training", cfg["net"], ", ".join(str(c) for c in ctx),
        kv_name, ", worker %d of %d" % (rank, workers) if dist else "",
        ", " + dtype if dtype != "float32" else "", train_batches.size,
        len(val_loader._dataset), cfg["batch_size"], schedule.lr,
        ", from epoch %d batch %d" % (run.start[0] + 1, run.start[1]) if found else ""),
        flush=True)
    return run


def run_epochs(run, epochs):
    """Train epoch by epoch until ``epochs`` or the schedule's end; validate, keep the
    best weights and checkpoint after each. Returns the number of epochs done."""
    from .models import save_params

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
        val_metrics = evaluate(run.net, run.val_loader, run.ctx)
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
        save_checkpoint(run, epoch, 0)
        print("epoch %d: train loss %.4f, top-1/top-5 err %.2f%%/%.2f%%; val %.2f%%/%.2f%%;"
              " lr %g -> %s (%.0fs)" % (
                  epoch, train_metrics["loss"], 100 * train_metrics["top1_err"],
                  100 * train_metrics["top5_err"], 100 * val_metrics["top1_err"],
                  100 * val_metrics["top5_err"], lr, event, seconds), flush=True)
    return epoch


def plot_curves(run):
    """curves.png from log.jsonl (rank 0), also after a failed run."""
    if not run.writer:
        return
    out = run.cfg["out"]
    try:
        from .plots import plot_training_curves
        plot_training_curves(os.path.join(out, "log.jsonl"), os.path.join(out, "curves.png"))
    except Exception as err:  # a plot must never cost a training run
        print("warning: no training-curve plot: %s" % err, file=sys.stderr)


def finish(run):
    """Final weights (rank 0); every worker's weights digest when distributed."""
    import mxnet as mx

    from .models import save_params

    if run.writer:
        save_params(run.net, os.path.join(run.cfg["out"], "final.params"), run.weights_meta)
    mx.nd.waitall()
    if run.dist:  # lets the launcher's user (and the tests) see that workers agree
        print("worker %d final weights sha256 %s" % (run.rank, _weights_digest(run.net)),
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
    run = setup(cfg, meta, resume=resume, progress=progress)
    try:
        epochs = run_epochs(run, cfg["epochs"])
    finally:
        run.log.close()
        plot_curves(run)
    finish(run)
    return dict(epochs=epochs, iterations=run.iteration, best_val_top1_err=run.best,
                seconds=time.time() - run.started, out=cfg["out"],
                finished=run.schedule.finished, rank=run.rank, workers=run.workers)
