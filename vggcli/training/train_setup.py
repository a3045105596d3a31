"""Setting up a training run (§3.1): data, the net and its initialisation (the paper's
random init, or net A's layers copied into a deeper net), the optimizer, the
devices and the distributed KVStore; ``setup`` checks everything before any work
and returns the ``Run`` that ``vggcli.training.train`` loops over."""
import math
import os
import time

from data_tools.common import check_output, mark_output, output_kind

from . import checkpoint
from ..core.errors import VggError
from .train_state import Log, Run, load_optimizer, progress_factory, weights_meta, write_config

# Layers of net A copied into a deeper net by --init-from (paper §3.1: "the first
# four convolutional layers and the last three fully-connected layers").
A_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8")


def load_data(cfg, manifest, part=0, parts=1, full_batches=False):
    """(train loader, val loader, their batch samplers) for a resolved config."""
    from .data import (CenterTransform, EpochBatches, EpochDataset, RecordImages, Scale,
                       TrainTransform, make_loader)
    from ..core.env import available_cores

    scale = Scale.parse(cfg["scale"])
    val_scale = cfg["val_scale"] or scale.test_scale
    data = cfg["data"]
    boxes = (cfg.get("task") or "classify") != "classify"
    val_path = os.path.join(data, "val.rec")
    if not os.path.isfile(val_path):
        raise VggError("%s not found: training needs a val split for its schedule" % val_path)
    index = {}
    for split in ("train", "val") if boxes else ():
        index[split] = os.path.join(data, "%s.box.idx" % split)
        if not os.path.isfile(index[split]):
            raise VggError("%s not found: --task %s trains on records with boxes; pack the "
                           "data with boxes (vgg pack --boxes, vgg pack-imagenet "
                           "--train-boxes/--val-boxes)" % (index[split], cfg["task"]))
    train_images = RecordImages(os.path.join(data, "train.rec"), part=part, parts=parts,
                                index_path=index.get("train"))
    val_images = RecordImages(val_path, index_path=index.get("val"))
    workers = cfg["workers"] if cfg["workers"] is not None else available_cores()
    mean = manifest["mean_rgb"]
    train_set = EpochDataset(train_images, TrainTransform(scale, cfg["crop_size"], mean,
                                                          cfg["seed"], pca_std=cfg["pca_std"],
                                                          boxes=boxes))
    val_set = EpochDataset(val_images, CenterTransform(val_scale, cfg["crop_size"], mean,
                                                       boxes=boxes))
    steps = None
    # every worker runs the same number of steps (MXNet #7888, #9611), of full batches:
    # a dist kvstore's Trainer raises at a smaller last batch (its servers' gradient
    # scale is fixed), even with one worker
    if parts > 1 or full_batches:
        steps = math.ceil(math.ceil(train_images.total / parts) / cfg["batch_size"])
    train_batches = EpochBatches(len(train_images), cfg["batch_size"], cfg["seed"],
                                 steps=steps)
    val_batches = EpochBatches(len(val_images), cfg["batch_size"], cfg["seed"], shuffle=False)
    return (make_loader(train_set, train_batches, workers),
            make_loader(val_set, val_batches, workers), train_batches, val_batches)


def build_net(cfg, classes):
    """The net of the config; fc8 has ``classes`` units, or a box's 4 (SCR) or a box
    per class (PCR) for localisation."""
    from ..nets.models import get_model
    from .tasks import net_outputs
    outputs = net_outputs(cfg.get("task") or "classify", classes)
    return get_model(cfg["net"], classes=outputs, width_mult=cfg["width_mult"],
                     fc_width=cfg["fc_width"], dropout=cfg["dropout"],
                     crop_size=cfg["crop_size"])


def _copy_params(net, arrays, keys, option, path, ctx, may_differ=False):
    """Copy ``keys`` of a params file's ``arrays`` into ``net``: a missing key or
    another shape is refused, except that with ``may_differ`` fc8 of another shape
    (a classifier's, for a localisation net) is left as it is. Returns the keys
    copied."""
    params = net._collect_params_with_prefix()
    copied = []
    for key in keys:
        if key not in arrays:
            raise VggError("%s %s has no %s" % (option, path, key))
        if tuple(arrays[key].shape) != tuple(params[key].shape):
            if may_differ and key.startswith("fc8."):
                continue
            raise VggError("%s %s: %s is %s there but %s in net %s (different width, classes "
                           "or crop size?)" % (option, path, key, tuple(arrays[key].shape),
                                               tuple(params[key].shape), net.config))
        params[key].set_data(arrays[key].as_in_context(ctx[0]))
        copied.append(key)
    return copied


def init_from_a(net, path, ctx):
    """Copy net A's conv1_1, conv2_1, conv3_1, conv3_2, fc6, fc7, fc8 into ``net``."""
    from ..nets.params import describe_meta, read_params

    arrays, meta = read_params(path)
    if meta and meta.get("net") not in ("A", "A-LRN"):
        raise VggError("--init-from %s holds %s; the paper initialises from net A"
                       % (path, describe_meta(meta)))
    keys = ["%s.%s" % (("features.%s" % layer) if layer.startswith("conv") else layer, kind)
            for layer in A_LAYERS for kind in ("weight", "bias")]
    return _copy_params(net, arrays, keys, "--init-from", path, ctx)


def init_from_classifier(net, path, ctx):
    """Localisation (Appendix A): every layer from a trained net of the same
    configuration, the last one (fc8, another shape) left random; from a
    localisation net of the same kind, every layer."""
    from ..nets.params import describe_meta, read_params

    arrays, meta = read_params(path)
    wanted = net.describe()
    differs = [k for k in ("net", "width_mult", "fc_width", "crop_size")
               if k in meta and meta[k] != wanted[k]]
    if differs:
        raise VggError("--finetune-from %s holds %s, but this run trains %s"
                       % (path, describe_meta(meta), describe_meta(wanted)))
    return _copy_params(net, arrays, list(net._collect_params_with_prefix()),
                        "--finetune-from", path, ctx, may_differ=True)


def _push_then_pull_trainer():
    from mxnet import gluon

    class PushThenPull(gluon.Trainer):
        """NOTE: ours because MXNet 1.9.1's dist kvstore refuses gradient compression
        with pushpull ("Compression not supported with PushPull"), which gluon.Trainer
        always uses for dense gradients; a push then a pull is the same exchange."""

        def _allreduce_grads(self):
            if not self._kvstore:
                return
            for i, param in enumerate(self._params):
                if param.grad_req != "null":
                    self._kvstore.push(i, param.list_grad(), priority=-i)
                    self._kvstore.pull(i, param.list_data() if self._update_on_kvstore
                                       else param.list_grad(), priority=-i)
    return PushThenPull


def make_trainer(net, lr, cfg, kvstore, dist=False):
    """SGD with momentum and weight decay (§3.1). With a ``dist_*`` kvstore the update
    runs on the servers (``update_on_kvstore``), elsewhere on the devices."""
    from mxnet import gluon

    from .recipes import parse_compression
    compression = cfg.get("gradient_compression")
    kind = _push_then_pull_trainer() if compression and dist else gluon.Trainer
    trainer = kind(net.collect_params(), "sgd",
                   dict(learning_rate=lr, momentum=cfg["momentum"], wd=cfg["wd"]),
                   kvstore=kvstore, update_on_kvstore=True if dist else False,
                   compression_params=parse_compression(compression) if compression else None)
    _train_conv1_in_input_units(trainer, net, cfg)
    return trainer


def _train_conv1_in_input_units(trainer, net, cfg):
    """SGD on conv1_1 as if the pixels were divided by ``input_std`` s (GluonCV's and
    torchvision's normalised inputs), its weights kept for raw pixels (the paper's,
    which every reader of our parameter files expects). NOTE: ours, as MXNet has no
    such option: with w = w'/s, SGD on w' is SGD on w with lr / s^2 and weight decay
    x s^2 (the decay's step, lr x wd x w, is then unchanged); momentum is linear, so
    the runs match step for step. Measured: He-initialised net E at 1/4 width left
    chance by epoch 5 in the seeds where raw pixels kept it there for 20-30 epochs
    (README, "Training deep nets on a small budget")."""
    from ..nets.models import input_std_for

    scale = input_std_for(cfg.get("init"), cfg.get("input_std"))
    if scale == 1.0:
        return
    param = net._collect_params_with_prefix()["features.conv1_1.weight"]
    index = trainer._params.index(param)  # the optimizer's index of it
    param.lr_mult, param.wd_mult = scale ** -2, scale ** 2
    # the optimizer's own tables too: a dist kvstore pickles it to the servers without
    # the parameters (Optimizer.__getstate__ drops param_dict), and reads these there
    trainer._optimizer.lr_mult[index] = param.lr_mult
    trainer._optimizer.wd_mult[index] = param.wd_mult


def _distribution(cfg):
    """(kvstore name, kvstore or its name, rank, workers) for the config's kvstore."""
    import mxnet as mx

    from ..core.devices import check_kvstore, default_kvstore, parse_devices

    kv_name = check_kvstore(cfg["kvstore"] or default_kvstore(parse_devices(cfg["devices"])))
    if not kv_name.startswith("dist"):
        return kv_name, kv_name, 0, 1
    kvstore = mx.kv.create(kv_name)
    return kv_name, kvstore, kvstore.rank, kvstore.num_workers


def _start_net(cfg, classes, ctx, found):
    """The net, initialised as configured or loaded from the checkpoint ``found``."""
    from ..nets.models import initialize
    from ..nets.params import load_params

    net = build_net(cfg, classes)
    if found:
        load_params(net, os.path.join(found[0], "weights.params"), ctx=ctx)
    else:
        initialize(net, init=cfg["init"], std=cfg["init_std"], ctx=ctx, seed=cfg["seed"],
                   input_std=cfg.get("input_std"))
        if cfg["init_from"]:
            init_from_a(net, cfg["init_from"], ctx)
        if cfg["finetune_from"] and (cfg.get("task") or "classify") != "classify":
            init_from_classifier(net, cfg["finetune_from"], ctx)
        elif cfg["finetune_from"]:
            load_params(net, cfg["finetune_from"], ctx=ctx)
    if cfg.get("train_layers") == "fc":  # Table 8: only fc6-fc8 are fine-tuned
        for name, param in net._collect_params_with_prefix().items():
            if not name.startswith("fc"):
                param.grad_req = "null"
    if cfg["accumulate"] > 1:  # gradients add up over the micro-batches of a step
        for param in net.collect_params().values():
            if param.grad_req != "null":
                param.grad_req = "add"
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def _announce(run, cfg, kv_name, dtype, resumed):
    """The log's start line (a new run) and one line for the user."""
    if not resumed:
        run.log.write(event="start", time=time.time(), kvstore=kv_name, dtype=dtype,
                      devices=[str(c) for c in run.ctx],
                      train_images=len(run.train_batches.order(0)), workers=run.workers,
                      config=cfg)
    print("%s net %s on %s (kvstore %s%s%s): %d training / %d val images, batch %d, lr %g%s" % (
        "resuming" if resumed else "training", cfg["net"], ", ".join(str(c) for c in run.ctx),
        kv_name, ", worker %d of %d" % (run.rank, run.workers) if run.dist else "",
        ", " + dtype if dtype != "float32" else "", run.train_batches.size,
        len(run.val_loader._dataset), cfg["batch_size"], run.schedule.lr,
        ", from epoch %d batch %d" % (run.start[0] + 1, run.start[1]) if resumed else ""),
        flush=True)


def _prepare_out(cfg, meta, resume, rank, ckpt_root):
    """The run folder (rank 0 writes it): the newest checkpoint when resuming, else a
    new folder by the output policy (empty, or a run folder never checkpointed)."""
    out = cfg["out"]
    found = checkpoint.latest(ckpt_root) if resume else None
    if rank != 0:
        return found
    if not resume:
        if checkpoint.list_checkpoints(ckpt_root):
            raise VggError("%s already holds a run (checkpoints/); continue it with --resume "
                           "%s or choose another --out" % (out, out))
        check_output(out, "train", inputs=[cfg["data"], cfg["init_from"],
                                           cfg["finetune_from"]], overwrite=True)
    os.makedirs(out, exist_ok=True)
    if output_kind(out) is None:
        mark_output(out, "train")
    write_config(cfg, meta or {}, os.path.join(out, "config.yaml"))
    return found


def _check_settings(cfg, local, ctx, dtype, kv_name, workers):
    """The combinations of batch, devices, kvstore, accumulation, precision and warm-up
    a run cannot have, refused before any work (``local``: this worker's config)."""
    from ..core import precision

    dist = kv_name.startswith("dist")
    if local["batch_size"] < len(ctx):
        raise VggError("batch size %d is smaller than the %d devices"
                       % (local["batch_size"], len(ctx)))
    if cfg.get("gradient_compression") and (kv_name == "local" or (
            not dist and len(ctx) < 2)):
        raise VggError("--gradient-compression compresses what devices or workers send: it "
                       "needs --kvstore device with several devices, or a dist kvstore under "
                       "vgg launch (this run uses kvstore %s on %d device%s)"
                       % (kv_name, len(ctx), "s" if len(ctx) > 1 else ""))
    micro = local["batch_size"] // cfg["accumulate"]
    if local["batch_size"] % cfg["accumulate"] or micro < len(ctx):
        raise VggError("--accumulate %d must divide the batch of %d images%s into micro-batches "
                       "of at least one image per device (%d)" % (
                           cfg["accumulate"], local["batch_size"],
                           " per worker" if workers > 1 else "", len(ctx)))
    if cfg["accumulate"] > 1 and dtype == "float16":
        raise VggError("--accumulate with --dtype float16: AMP's loss scaling is per step; "
                       "use float32 or bfloat16")
    precision.check_devices(dtype, ctx)
    if cfg.get("warmup") and dist:
        raise VggError("--warmup with a dist kvstore: the servers hold the learning rate and "
                       "are sent it once an epoch, not every step; use --warmup 0")
    if dtype == "float16" and dist:
        raise VggError("--dtype float16 with a dist kvstore: AMP's loss scaling needs the "
                       "update on the workers, which dist_sync does not do here")


def setup(cfg, meta=None, resume=False, progress=True):
    """Everything a run needs, checked before any work: devices, kvstore, precision,
    data, net, optimizer, log; with ``resume``, restored from the newest checkpoint."""
    from mxnet.contrib import amp

    from ..core import precision
    from .data import read_manifest
    from ..core.devices import contexts, parse_devices
    from .schedule import make_schedule
    from .tasks import make_task

    for key in ("data", "out"):
        if not cfg.get(key):
            raise VggError("--%s is required" % key)
    ctx = contexts(parse_devices(cfg["devices"]))
    dtype = precision.resolve(cfg.get("dtype") or "auto", ctx)
    kv_name, kvstore, rank, workers = _distribution(cfg)
    dist = kv_name.startswith("dist")
    if cfg["batch_size"] % workers:
        raise VggError("batch size %d does not split evenly over %d workers"
                       % (cfg["batch_size"], workers))
    local = dict(cfg, batch_size=cfg["batch_size"] // workers)
    out, ckpt_root = cfg["out"], os.path.join(cfg["out"], "checkpoints")
    manifest = read_manifest(cfg["data"])
    _check_settings(cfg, local, ctx, dtype, kv_name, workers)
    build_net(cfg, manifest["classes"])  # knobs MXNet cannot hold are refused here
    found = _prepare_out(cfg, meta, resume, rank, ckpt_root)  # written once all is checked
    precision.start_mixed_precision(dtype)  # before the net is built
    schedule = make_schedule(cfg)
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
                                                           parts=workers, full_batches=dist)
    state = found[1] if found else {}
    log = Log(os.path.join(out, "log.jsonl") if rank == 0 else os.devnull,
              resume_bytes=state.get("log_bytes", 0) if rank == 0 else 0)
    run = Run(cfg=local, net=net, trainer=trainer, ctx=ctx, train_loader=train_loader,
              train_batches=train_batches, val_loader=val_loader, log=log, schedule=schedule,
              kvstore=kvstore, weights_meta=weights_meta(cfg, manifest),
              task=make_task(cfg.get("task") or "classify", manifest["classes"]),
              checkpoints=ckpt_root,
              progress=progress_factory(progress and rank == 0),
              iteration=state.get("iteration", 0), best=state.get("best_val_top1_err"),
              rank=rank, workers=workers, dist=dist, loss_scaling=dtype == "float16",
              start=(state.get("epoch", 0), state.get("batch", 0), state.get("meter")))
    _announce(run, cfg, kv_name, dtype, resumed=bool(found))
    return run
