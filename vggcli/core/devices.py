"""``--devices`` and ``--kvstore``: parsed and checked here, since MXNet accepts
nonsense silently (``mx.kv.create('typo')`` returns a local store)."""
from .errors import VggError

KVSTORES = ("local", "device", "nccl", "dist_sync", "dist_device_sync", "dist_async")


def parse_devices(text):
    """'cpu', 'cpu:0,1', 'gpu:0-3', 'gpu:0,2' -> [(kind, index)]."""
    text = str(text).strip().lower()
    kind, _, ids = text.partition(":")
    if kind not in ("cpu", "gpu"):
        raise VggError("devices must look like cpu, cpu:0,1 or gpu:0-3; got %r" % text)
    if not ids:
        return [(kind, 0)]
    indices = []
    for part in ids.split(","):
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else [int(low)]
        except ValueError:
            raise VggError("devices must look like cpu, cpu:0,1 or gpu:0-3; got %r"
                           % text) from None
        if dash and int(high) < int(low):
            raise VggError("device range %r runs backwards" % part)
        indices += list(values)
    if len(set(indices)) != len(indices):
        raise VggError("device list %r names a device twice" % text)
    return [(kind, i) for i in indices]


def contexts(devices):
    import mxnet as mx

    from data_tools.common import available_cores
    cores = available_cores()
    found = []
    for kind, index in devices:
        if kind == "gpu":
            available = mx.context.num_gpus()
            if index >= available:
                raise VggError("gpu:%d requested, but MXNet sees %d GPU(s)%s" % (
                    index, available, "" if available else
                    " (is the mxnet-cu112 build installed? make install EXTRA=cu112)"))
            found.append(mx.gpu(index))
        else:
            if index >= cores:
                raise VggError("cpu:%d requested, but this process may use %d core(s) "
                               "(cpu:0-%d)" % (index, cores, cores - 1))
            found.append(mx.cpu(index))
    return found


def default_kvstore(devices):
    """'device' (GPU-side reduction) for several GPUs, 'local' otherwise."""
    gpus = sum(1 for kind, _ in devices if kind == "gpu")
    return "device" if gpus > 1 else "local"


def check_kvstore(name):
    """A known kvstore; a ``dist_*`` one only inside a job ``vgg launch`` started (ps-lite
    would otherwise wait for a scheduler that does not exist)."""
    import os
    if name not in KVSTORES:
        raise VggError("unknown kvstore %r; valid: %s" % (name, ", ".join(KVSTORES)))
    if name.startswith("dist") and "DMLC_ROLE" not in os.environ:
        raise VggError("--kvstore %s runs under vgg launch, which starts the scheduler and "
                       "servers: vgg launch -n 2 -- vgg train --kvstore %s ..." % (name, name))
    return name
