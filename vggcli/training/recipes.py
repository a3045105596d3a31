"""Training configuration: defaults = the paper (§3.1), recipes (one YAML file per
Table 3 row, in ``recipes/``) override them, command-line flags override both.
Unknown keys and bad values are errors; the resolved configuration is saved
next to the checkpoints as ``config.yaml``.
"""
import math
import os
import sys

from ..nets.configs import canonical_name
from ..core.devices import KVSTORES
from ..core.errors import VggError
from ..core.precision import DTYPES

# key: (default, type, help). Units in the help text.
FIELDS = {
    "net": ("A", str, "configuration: A, A-LRN, B, C, D, E"),
    "task": ("classify", str, "classify (soft-max over the classes), or localisation "
                              "(Appendix A, records with boxes): scr (fc8 regresses one "
                              "box) or pcr (a box per class)"),
    "train_layers": ("all", str, "layers that learn: all, or fc (fc6-fc8 only: Table 8's "
                                 "'FC layers' fine-tuning)"),
    "data": (None, str, "folder written by vgg pack / pack-imagenet"),
    "out": (None, str, "run folder: config.yaml, log.jsonl, checkpoints/, *.params"),
    "scale": ("256", str, "training scale S: fixed '256' or jittered '256:512'"),
    "val_scale": (None, int, "Q of the single centre-crop validation (default S, or the "
                             "middle of a jittered range)"),
    "crop_size": (224, int, "training crop side, pixels"),
    "batch_size": (256, int, "global mini-batch, images (split across devices)"),
    "accumulate": (1, int, "micro-batches per step: the batch's gradient summed over N "
                           "passes of batch/N images (memory of batch/N; the same update up "
                           "to summation order and dropout masks)"),
    "lr": (0.01, float, "initial learning rate"),
    "momentum": (0.9, float, "SGD momentum"),
    "wd": (0.0005, float, "weight decay (L2), on every parameter"),
    "dropout": (0.5, float, "dropout after fc6 and fc7"),
    "epochs": (74, int, "most epochs (the paper stopped after 74)"),
    "warmup": (0, int, "epochs of linear lr warm-up, from lr/iterations to lr, step by step"),
    "lr_steps": (None, str, "a fixed schedule instead of plateaus: epochs after which "
                            "lr /= 10, e.g. '20,27' (training then runs all --epochs)"),
    "patience": (2, int, "epochs without val improvement before lr /= 10"),
    "max_reductions": (3, int, "lr divisions before the last plateau ends training"),
    "init": ("he", str, "random init: he (He/MSRA, the default: with --input-std auto it "
                        "trains net E from scratch, where Glorot kept it at chance for up "
                        "to 30 epochs), xavier (Glorot, which the paper notes trains deep "
                        "nets without pre-training) or normal (std init_std, the paper's "
                        "with net A's layers copied in)"),
    "init_std": (0.01, float, "standard deviation of the normal init"),
    "input_std": ("auto", str, "conv1_1 initialised and trained as if the mean-subtracted "
                               "pixels were divided by this (its weights saved for raw "
                               "pixels); auto: 57.6, ImageNet's pixel std, with --init he, "
                               "else 1 (the paper's raw pixels)"),
    "init_from": (None, str, "net A params: copy conv1_1, conv2_1, conv3_1, conv3_2, fc6-fc8"),
    "finetune_from": (None, str, "params of the same net to start from (e.g. S=256 -> 384)"),
    "width_mult": (1.0, float, "multiplier on conv widths (small-scale runs)"),
    "fc_width": (4096, int, "width of fc6/fc7"),
    "devices": ("cpu", str, "cpu, cpu:0,1, gpu:0-3"),
    "dtype": ("auto", str, "compute precision: auto (bfloat16 where measured faster on this "
                           "CPU model, else float32), float32, bfloat16 (CPUs with "
                           "AVX512-BF16 or AMX) or float16 (GPUs); weights stay float32"),
    "kvstore": (None, str, "local, device, nccl, dist_sync, dist_device_sync (default: "
                           "device for several GPUs, else local)"),
    "gradient_compression": (None, str, "MXNet's 2-bit gradient compression with error "
                                        "feedback, '2bit:THRESHOLD' (e.g. 2bit:0.5; device "
                                        "and dist kvstores): 1/16 of the pushed bytes"),
    "workers": (None, int, "data-loading threads (default: every core)"),
    "seed": (0, int, "seed of init, shuffling, augmentation and dropout"),
    "checkpoint_every": (0, int, "also checkpoint every N iterations (0: per epoch only)"),
    "keep": (3, int, "checkpoints kept"),
    "log_every": (20, int, "iterations between log.jsonl lines"),
    "pca_std": (0.1, float, "std of the PCA colour shift (0 turns it off)"),
}
# Settings with a fixed set of values (the CLI offers them as choices).
CHOICES = {"init": ("normal", "xavier", "he"), "dtype": DTYPES, "kvstore": KVSTORES,
           "task": ("classify", "scr", "pcr"), "train_layers": ("all", "fc")}
# Recipe-only descriptive keys (not training settings).
META_FIELDS = ("description", "parent", "paper_top1_top5_err", "paper_localisation_err")
RESUMABLE = ("devices", "dtype", "kvstore", "workers", "epochs", "checkpoint_every", "keep",
             "log_every", "accumulate", "gradient_compression")


def defaults():
    return {key: spec[0] for key, spec in FIELDS.items()}


def _coerce(key, value, where):
    if value is None:
        return None
    kind = FIELDS[key][1]
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise VggError("%s: %s must be %s, got %r" % (where, key, kind.__name__, value)) from None


def validate(config, where="config"):
    """Check keys and values; returns a new dict with values coerced to their types."""
    unknown = sorted(set(config) - set(FIELDS) - set(META_FIELDS))
    if unknown:
        raise VggError("%s: unknown key%s %s; valid keys: %s" % (
            where, "s" if len(unknown) > 1 else "", ", ".join(unknown),
            ", ".join(sorted(FIELDS) + list(META_FIELDS))))
    out = {k: (_coerce(k, v, where) if k in FIELDS else v) for k, v in config.items()}
    if "net" in out and out["net"] is not None:
        out["net"] = canonical_name(out["net"])
    for key in ("crop_size", "batch_size", "epochs", "keep", "log_every", "fc_width",
                "accumulate"):
        if key in out and out[key] is not None and out[key] < 1:
            raise VggError("%s: %s must be >= 1, got %r" % (where, key, out[key]))
    for key, value in out.items():
        if key in FIELDS and FIELDS[key][1] is float and value is not None \
                and not math.isfinite(value):
            raise VggError("%s: %s must be a finite number, got %r" % (where, key, value))
    for key in ("lr", "width_mult", "init_std"):
        if key in out and out[key] is not None and not out[key] > 0:
            raise VggError("%s: %s must be > 0, got %r" % (where, key, out[key]))
    for key in ("momentum", "dropout"):
        if key in out and out[key] is not None and not 0 <= out[key] < 1:
            raise VggError("%s: %s must be in [0, 1), got %r" % (where, key, out[key]))
    if out.get("input_std") not in (None, "auto"):
        try:
            std = float(out["input_std"])
        except ValueError:
            std = math.nan
        if not (math.isfinite(std) and std > 0):
            raise VggError("%s: input_std must be auto or a number > 0, got %r"
                           % (where, out["input_std"]))
    if out.get("lr_steps") is not None:
        parse_lr_steps(out["lr_steps"], where)
    for key in ("wd", "warmup", "patience", "max_reductions", "checkpoint_every", "pca_std", "seed",
                "workers", "val_scale"):
        if key in out and out[key] is not None and out[key] < 0:
            raise VggError("%s: %s must be >= 0, got %r" % (where, key, out[key]))
    for key, allowed in CHOICES.items():
        if out.get(key) not in (None,) + tuple(allowed):
            raise VggError("%s: %s must be one of %s, got %r" % (where, key, ", ".join(allowed),
                                                                 out[key]))
    if out.get("gradient_compression") is not None:
        parse_compression(out["gradient_compression"], where)
    if out.get("devices") is not None:
        from ..core.devices import parse_devices
        parse_devices(out["devices"])
    if "scale" in out and out["scale"] is not None:
        from .data import Scale
        out["scale"] = str(Scale.parse(out["scale"]))
    return out


def parse_lr_steps(text, where="--lr-steps"):
    """'20,27' -> [20, 27]: increasing epochs >= 1 after which the lr is divided by 10."""
    try:
        steps = [int(part) for part in str(text).split(",")]
    except ValueError:
        steps = []
    if not steps or any(s < 1 for s in steps) or steps != sorted(set(steps)):
        raise VggError("%s: lr_steps must be increasing epochs >= 1 separated by commas "
                       "(e.g. 20,27), got %r" % (where, text))
    return steps


def parse_compression(text, where="--gradient-compression"):
    """'2bit:THRESHOLD' -> MXNet's compression params {'type': '2bit', 'threshold': t}."""
    kind, _, threshold = str(text).partition(":")
    try:
        value = float(threshold)
    except ValueError:
        value = float("nan")
    if kind != "2bit" or not (math.isfinite(value) and value > 0):
        raise VggError("%s: gradient_compression must be 2bit:THRESHOLD with a threshold > 0 "
                       "(e.g. 2bit:0.5), got %r" % (where, text))
    return {"type": "2bit", "threshold": value}


def recipes_dir():
    """``recipes/`` of a source checkout, else the copy installed beside the package."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # vggcli/
    for candidate in (os.path.join(os.path.dirname(here), "recipes"),
                      os.path.join(sys.prefix, "share", "vgg", "recipes")):
        if os.path.isdir(candidate):
            return candidate
    raise VggError("recipes folder not found beside %s" % here)


def recipe_path(name_or_path):
    if os.path.isfile(name_or_path):
        return name_or_path
    path = os.path.join(recipes_dir(), name_or_path + ".yaml")
    if not os.path.isfile(path):
        raise VggError("no recipe %r; available: %s" % (name_or_path, ", ".join(list_recipes())))
    return path


def list_recipes():
    return sorted(n[:-5] for n in os.listdir(recipes_dir()) if n.endswith(".yaml"))


def load_recipe(name_or_path):
    """A recipe's validated keys (settings and descriptive keys)."""
    path = recipe_path(name_or_path)
    return validate(read_mapping(path, "recipe"), where="recipe %s" % path)


def read_mapping(path, what):
    """A YAML mapping, read with the safe loader (a Python tag is refused, never run)."""
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (yaml.YAMLError, ValueError, OSError) as err:
        text = str(err).strip()
        raise VggError("%s %s is not valid YAML: %s" % (
            what, path, " ".join(text.split())[:160] if text else type(err).__name__)) \
            from None
    if not isinstance(data, dict):
        raise VggError("%s %s must be a mapping of keys to values" % (what, path))
    return data


def resolve(recipe=None, overrides=None):
    """defaults <- recipe <- overrides (flags the user gave). Returns (config, meta)."""
    config = defaults()
    meta = {}
    if recipe:
        loaded = load_recipe(recipe)
        meta = {k: loaded.pop(k) for k in META_FIELDS if k in loaded}
        meta["recipe"] = os.path.splitext(os.path.basename(recipe_path(recipe)))[0]
        config.update(loaded)
    config.update(validate(overrides or {}, where="options"))
    return config, meta


def chain(name):
    """Recipe names from the first ancestor to ``name`` (following ``parent``)."""
    names = [name]
    seen = {name}
    while True:
        parent = load_recipe(names[0]).get("parent")
        if not parent:
            return names
        if parent in seen:
            raise VggError("recipe %s: parent chain loops through %s" % (name, parent))
        seen.add(parent)
        names.insert(0, parent)


def plan_commands(name, data="DATA", runs="runs", devices=None, dtype=None):
    """The exact ``vgg train`` commands that produce recipe ``name`` from scratch."""
    commands = []
    for recipe in chain(name):
        loaded = load_recipe(recipe)
        cmd = "vgg train --recipe %s --data %s --out %s/%s" % (recipe, data, runs, recipe)
        parent = loaded.get("parent")
        if parent:
            same_net = load_recipe(parent)["net"] == loaded["net"]
            flag = "--finetune-from" if same_net else "--init-from"
            cmd += " %s %s/%s/best.params" % (flag, runs, parent)
        if devices:
            cmd += " --devices %s" % devices
        if dtype and dtype != "auto":
            cmd += " --dtype %s" % dtype
        commands.append((recipe, loaded.get("description", ""), cmd))
    return commands
