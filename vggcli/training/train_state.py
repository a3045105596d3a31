"""What a training run writes and reads besides its weights: ``config.yaml`` (and
how ``--resume`` or a recipe plus flags resolve it), ``log.jsonl``, the momentum
buffers, the running metrics, and the description stored with the weights."""
import json
import os
import sys
import time
from dataclasses import dataclass, field

from ..core.errors import VggError


def run_config(recipe, options, resume_dir=None):
    """(config, recipe meta) for ``vgg train``: a recipe (or the paper's defaults) with
    ``options`` over it, or with ``resume_dir`` the run's saved config.yaml, where
    only the settings that do not change the result (recipes.RESUMABLE) may change."""
    from .recipes import RESUMABLE, resolve, validate

    given = {k: v for k, v in options.items() if v is not None}
    if resume_dir:
        changed = sorted(set(given) - set(RESUMABLE) - {"out"})
        if recipe or changed:
            raise VggError("--resume continues %s with its saved config.yaml; only %s may be "
                           "given with it (got %s)" % (resume_dir, ", ".join(
                               "--" + k.replace("_", "-") for k in RESUMABLE),
                               ", ".join("--" + k.replace("_", "-") for k in changed)
                               or "--recipe"))
        config, meta = read_config(resume_dir)
        config.update(validate(given, where="options"))
        config["out"] = resume_dir
        return config, meta
    config, meta = resolve(recipe, given)
    if meta.get("parent") and not (config["init_from"] or config["finetune_from"]):
        raise VggError("recipe %s starts from the weights of %s: give --init-from or "
                       "--finetune-from (vgg recipe plan %s prints the chain)"
                       % (meta["recipe"], meta["parent"], meta["recipe"]))
    return config, meta


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
    from ..core.ndfile import save
    save(path, arrays)


def load_optimizer(trainer, net, path):
    from ..core.ndfile import load
    arrays = load(path, "optimizer state")
    names = _param_names(trainer, net)
    for updater, ctx in zip(trainer._updaters, trainer._contexts):
        for index, name in enumerate(names):
            key = "momentum:" + name
            if key in arrays:
                updater.states[index] = arrays[key].as_in_context(ctx)
                updater.states_synced[index] = True


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


def weights_meta(cfg, manifest):
    """What evaluation needs besides the weights: preprocessing, training scale, class names."""
    from data_tools.pack import read_synsets
    return dict(mean_rgb=list(manifest["mean_rgb"]), train_scale=cfg["scale"],
                class_names=read_synsets(cfg["data"]), task=cfg.get("task") or "classify",
                task_classes=manifest["classes"])


def progress_factory(enabled):
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
    from .recipes import FIELDS, read_mapping, validate
    path = os.path.join(out_dir, "config.yaml")
    if not os.path.isfile(path):
        raise VggError("%s not found: --resume needs a folder written by vgg train" % path)
    saved = read_mapping(path, "run configuration")
    missing = [k for k in FIELDS if k not in saved]
    if missing:  # vgg train writes every field
        raise VggError("%s lacks %s: it is damaged, or not written by this vgg train"
                       % (path, ", ".join(missing[:5])))
    meta = {k[len("recipe_"):]: v for k, v in saved.items() if k.startswith("recipe_")}
    return validate({k: v for k, v in saved.items() if k in FIELDS}, where=path), meta


def weights_digest(net):
    import hashlib
    digest = hashlib.sha256()
    for name, param in sorted(net._collect_params_with_prefix().items()):
        digest.update(name.encode())
        digest.update(param.data().asnumpy().tobytes())
    return digest.hexdigest()


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
    task: object = None  # vggcli.training.tasks: the loss and what is counted
    progress: object = None
    checkpoints: str = ""
    iteration: int = 0
    best: float = None
    rank: int = 0
    workers: int = 1
    dist: bool = False
    loss_scaling: bool = False
    start: tuple = (0, 0, None)  # epoch, batch, meter sums to continue from
    last_train_loss: float = None  # of the last epoch this process trained
    started: float = field(default_factory=time.time)

    @property
    def writer(self):
        return self.rank == 0
