"""Checkpoints that survive a crash and are safe to load.

A checkpoint is a folder ``checkpoints/epoch-EEEE-batch-BBBBBB/`` holding
``weights.params`` (with the net's description), ``optimizer.nd`` (momentum
buffers, ``mx.nd.save``), ``state.json`` (epoch, batch, schedule, counters)
and ``checksums.json`` (sha256 and size of the three). It is written under a
temporary name and renamed when complete.

NOTE: no pickle anywhere: ``gluon.Trainer.save_states`` pickles, so a crafted
``.states`` file would run code when loaded. And every file's checksum is
verified before MXNet reads it, since a damaged ``.params`` can make MXNet try
a ~23 GB allocation and get the process killed.
"""
import hashlib
import json
import os
import shutil

from data_tools.common import finite_number, naming, read_json

from ..core.errors import VggError

FILES = ("weights.params", "optimizer.nd", "state.json")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_name(epoch, batch):
    return "epoch-%04d-batch-%06d" % (epoch, batch)


def save(root, epoch, batch, write_weights, write_optimizer, state, keep=3):
    """Write a checkpoint atomically; ``write_*`` are callables taking a path."""
    os.makedirs(root, exist_ok=True)
    name = checkpoint_name(epoch, batch)
    # its own protocol, not data_tools.common.atomic_output: every file is fsynced and
    # checksummed before the folder is renamed, and old checkpoints are pruned after
    tmp = os.path.join(root, ".tmp-%s-%d" % (name, os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    final = os.path.join(root, name)
    try:
        with naming(final):
            _write(tmp, write_weights, write_optimizer, state)
    except BaseException:  # a full disk, a signal: no half-written checkpoint stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)
    return final


def _write(tmp, write_weights, write_optimizer, state):
    os.makedirs(tmp)
    write_weights(os.path.join(tmp, "weights.params"))
    write_optimizer(os.path.join(tmp, "optimizer.nd"))
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump(state, f, indent=1)
    sums = {}
    for file in FILES:
        path = os.path.join(tmp, file)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        sums[file] = dict(sha256=sha256(path), bytes=os.path.getsize(path))
    with open(os.path.join(tmp, "checksums.json"), "w") as f:
        json.dump(sums, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def list_checkpoints(root):
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if n.startswith("epoch-")
                  and os.path.isdir(os.path.join(root, n)))


def verify(folder):
    """Check sizes and sha256 of a checkpoint's files; one-line VggError if not whole."""
    sums_path = os.path.join(folder, "checksums.json")
    try:
        with open(sums_path) as f:
            sums = json.load(f)
    except (OSError, ValueError) as err:
        raise VggError("checkpoint %s has no readable checksums.json (%s)" % (folder, err)) \
            from None
    for file in FILES:
        path = os.path.join(folder, file)
        entry = sums.get(file) if isinstance(sums, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("bytes"), int) and
                isinstance(entry.get("sha256"), str)):
            raise VggError("checkpoint %s: checksums.json has no size and sha256 of %s (it is "
                           "damaged)" % (folder, file))
        if not os.path.isfile(path):
            raise VggError("checkpoint %s is missing %s" % (folder, file))
        size = os.path.getsize(path)
        if size != entry["bytes"]:
            raise VggError("checkpoint file %s is damaged: %d bytes, %d expected"
                           % (path, size, entry["bytes"]))
        if sha256(path) != entry["sha256"]:
            raise VggError("checkpoint file %s is damaged: its sha256 does not match "
                           "checksums.json" % path)
    return _checked_state(os.path.join(folder, "state.json"))


NUMBER = (int, float)
STATE_TYPES = dict(epoch=int, batch=int, iteration=int, num_update=int, schedule=dict)
SCHEDULE_TYPES = dict(lr=NUMBER, bad_epochs=int, reductions=int, finished=bool, factor=NUMBER,
                      patience=int, max_reductions=int, min_delta=NUMBER)
# a fixed schedule's state (--lr-steps: schedule.StepSchedule)
STEP_SCHEDULE_TYPES = dict(lr=NUMBER, epochs=int, reductions=int, finished=bool,
                           factor=NUMBER, steps=list)


def _checked_state(path):
    """state.json with every field training reads, of the right type (its checksum
    only proves it is the file that was written, not that the writer was vgg)."""
    state = read_json(path, "checkpoint state", STATE_TYPES)
    schedule = state["schedule"]
    types = STEP_SCHEDULE_TYPES if isinstance(schedule, dict) and "steps" in schedule \
        else SCHEDULE_TYPES
    wrong = [k for k, kind in STATE_TYPES.items() if not isinstance(state[k], kind)] + \
        ["schedule." + k for k, kind in types.items()
         if not isinstance(schedule, dict) or not isinstance(schedule.get(k), kind)] + \
        _wrong_optional(state, schedule)
    if wrong or any(state[k] < 0 for k in ("epoch", "batch", "iteration", "num_update")):
        raise VggError("checkpoint state %s is damaged: %s" % (
            path, "wrong or missing " + ", ".join(wrong) if wrong else "a negative counter"))
    return state


def _wrong_optional(state, schedule):
    """The fields a resume reads where present: the epoch's running sums (``meter``),
    the log's length, the best error so far; their names where of the wrong kind."""
    wrong = []
    meter = state.get("meter")
    if meter is not None and not (isinstance(meter, dict) and all(
            finite_number(meter.get(k)) for k in ("loss", "top1", "top5")) and
            isinstance(meter.get("images"), int) and meter["images"] >= 0):
        wrong.append("meter")
    if not isinstance(state.get("log_bytes", 0), int) or state.get("log_bytes", 0) < 0:
        wrong.append("log_bytes")
    if state.get("best_val_top1_err") is not None and not finite_number(state["best_val_top1_err"]):
        wrong.append("best_val_top1_err")
    if isinstance(schedule, dict) and ("best" not in schedule or (
            schedule["best"] is not None and not finite_number(schedule["best"]))):
        wrong.append("schedule.best")
    return wrong


def latest(root):
    """(folder, state) of the newest checkpoint, verified; None if there is none."""
    names = list_checkpoints(root)
    if not names:
        return None
    folder = os.path.join(root, names[-1])
    return folder, verify(folder)
