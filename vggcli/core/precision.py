"""Reduced precision (``--dtype``): bfloat16 on CPUs where it measures faster, float16
on NVIDIA GPUs.

Both go through MXNet's AMP: for training ``amp.init`` makes convolutions and
fully connected layers compute in 16 bits while the weights, their updates and
the loss stay float32 (like torch.autocast); for inference
``amp.convert_hybrid_block`` stores those layers' weights in 16 bits.

AMX needs help on Linux: MXNet 1.9.1's oneDNN (2.4.4) uses it only when
``DNNL_MAX_CPU_ISA`` allows it, and does not ask the kernel for the AMX tile
state, without which its AMX kernels die with SIGILL. ``enable_amx`` does both
when the process is configured (``vggcli.configure``, which the ``vgg`` command
calls), before MXNet (bf16 and INT8 convolutions then run
on AMX; float32 kernels are unaffected).

Whether bf16 pays is measured, not assumed from the vendor: bf16 ran slower than
float32 on Sapphire Rapids with AMX off (0.69x inference) but 1.98x faster on
AMD Zen 5 (AVX512-BF16, no AMX). ``--dtype auto`` (the default) probes once
per CPU model and caches the verdict (``prepare``).

This module imports MXNet only inside functions.
"""
import ctypes
import os
import sys

from .errors import VggError

DTYPES = ("auto", "float32", "float16", "bfloat16")
AUTO_VARIABLE = "VGG_AUTO_DTYPE"  # float32/bfloat16: what auto means, without a probe
BF16_MARGIN = 1.1  # auto takes bf16 only when it measured at least this much faster

# linux/arch/x86/include/uapi/asm/prctl.h and asm/fpu/types.h (x86-64)
_SYS_ARCH_PRCTL = 158
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU feature flags Linux reports (empty where unknown)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_description(path="/proc/cpuinfo"):
    """'<model name>, <vector/matrix extensions>' for reports."""
    model = "unknown CPU"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = cpu_flags(path)
    named = [("avx512f", "AVX-512"), ("avx512_vnni", "VNNI"), ("avx512_bf16", "AVX512-BF16"),
             ("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8")]
    extensions = [name for flag, name in named if flag in flags]
    if not extensions:
        extensions = ["AVX2 only" if "avx2" in flags else "no AVX2"]
    return "%s, %s" % (model, " ".join(extensions))


# oneDNN's instruction-set levels, lowest first (the values DNNL_MAX_CPU_ISA takes)
ISA_LEVELS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_MIC", "AVX512_MIC_4OPS",
              "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_FP16",
              "AVX512_CORE_AMX")


def isa_cap_below(level):
    """True when DNNL_MAX_CPU_ISA caps oneDNN below ``level`` (a name of ISA_LEVELS)."""
    cap = os.environ.get("DNNL_MAX_CPU_ISA", "").upper()
    return cap in ISA_LEVELS and ISA_LEVELS.index(cap) < ISA_LEVELS.index(level)


def bfloat16_isa(flags=None):
    """'amx', 'avx512_bf16' or None: the best bf16 instructions oneDNN may use here.
    For this CPU (``flags`` None) a DNNL_MAX_CPU_ISA cap counts: under
    AVX512_CORE_BF16 oneDNN has no bf16 kernels, under AVX512_CORE_AMX no AMX ones."""
    capped = flags is None
    flags = cpu_flags() if flags is None else flags
    found = None
    if {"amx_bf16", "amx_tile"} <= flags:
        found = "amx"
    elif "avx512_bf16" in flags:
        found = "avx512_bf16"
    if capped and found and isa_cap_below("AVX512_CORE_BF16"):
        return None
    if capped and found == "amx" and isa_cap_below("AVX512_CORE_AMX"):
        return "avx512_bf16"
    return found


def request_amx_permission():
    """Ask Linux (>= 5.16) to let this process use the AMX tile registers."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0


_amx = {}  # outcome of enable_amx, once per process


def enable_amx(flags=None):
    """Let oneDNN use AMX where the CPU has it and Linux grants it; True if so.

    Must run before oneDNN's first primitive (``vggcli.configure`` calls it).
    A DNNL_MAX_CPU_ISA the user set is left alone.
    """
    if "granted" not in _amx:
        flags = cpu_flags() if flags is None else flags
        _amx["granted"] = "amx_tile" in flags and request_amx_permission()
        if _amx["granted"]:
            os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX512_CORE_AMX")
    return _amx["granted"]


def check_dtype(dtype):
    if dtype not in DTYPES:
        raise VggError("--dtype must be one of %s, got %r" % (", ".join(DTYPES), dtype))
    return dtype


def prepare(dtype, flags=None, ctx=None, probe=None):
    """Choose the precision a run will use; returns (dtype, note or None).

    ``auto`` (the default) is float32 on GPUs and on CPUs without bf16
    instructions; on CPUs with AVX512-BF16 or AMX it is what a short probe
    measured faster on this CPU model (``auto_choice``: cached, so the probe runs
    once per machine). An explicit ``bfloat16`` is the user's choice and runs
    wherever the CPU has bf16 instructions; ``float16`` is returned as asked
    (``check_devices`` refuses it on CPUs).
    """
    check_dtype(dtype)
    on_gpu = ctx is not None and any(c.device_type == "gpu" for c in ctx)
    if dtype not in ("bfloat16", "auto") or (dtype == "auto" and on_gpu):
        return ("float32" if dtype == "auto" else dtype), None
    isa = bfloat16_isa(flags)
    if isa == "amx" and not enable_amx(flags):
        return "float32", ("%s: Linux refused this process the AMX tile state (kernel "
                           "older than 5.16?); running float32" % dtype)
    if isa is None:
        if dtype == "auto":
            return "float32", None
        if flags is None and bfloat16_isa(cpu_flags()):
            return "float32", ("bfloat16: DNNL_MAX_CPU_ISA=%s keeps oneDNN below "
                               "AVX512_CORE_BF16; running float32"
                               % os.environ["DNNL_MAX_CPU_ISA"])
        return "float32", "bfloat16: this CPU has neither AMX nor AVX512-BF16; running float32"
    if dtype == "bfloat16":
        return "bfloat16", None
    return auto_choice(flags, probe)


def auto_choice(flags=None, probe=None):
    """(dtype, note) for ``auto`` on a CPU with bf16 instructions: the verdict cached
    for this CPU model, else measured now by ``probe`` (default ``probe_speed``)
    and cached. $VGG_AUTO_DTYPE, when set, is the answer (no probe)."""
    forced = os.environ.get(AUTO_VARIABLE)
    if forced in ("float32", "bfloat16"):
        return forced, None
    key = cpu_key(flags)
    cache = read_cache()
    entry = cache.get(key)
    if not (isinstance(entry, dict) and isinstance(entry.get("timings"), dict)):
        timings = (probe or probe_speed)()
        entry = dict(timings=timings, dtype=choose(timings))
        cache[key] = entry
        write_cache(cache)
    timings = entry["timings"]
    try:
        ratio = timings["float32"] / timings["bfloat16"]
    except (KeyError, TypeError, ZeroDivisionError):
        return "float32", None
    used = choose(timings)
    return used, ("precision: %s (auto: bf16 measured %.2fx float32 on this CPU model; "
                  "--dtype float32 or bfloat16 overrides)" % (used, ratio))


def choose(timings):
    """bfloat16 when it ran at least BF16_MARGIN times faster than float32, else
    float32. ``timings``: seconds for the same work, {"float32": s, "bfloat16": s}."""
    f32, bf16 = timings.get("float32"), timings.get("bfloat16")
    if not all(isinstance(t, (int, float)) and t > 0 for t in (f32, bf16)):
        return "float32"
    return "bfloat16" if f32 / bf16 >= BF16_MARGIN else "float32"


def cpu_key(flags=None, path="/proc/cpuinfo"):
    """What a verdict depends on: the CPU model, its bf16 instructions and a cap on
    oneDNN's instruction set."""
    model = cpu_description(path).split(",")[0]
    return "%s | %s | DNNL_MAX_CPU_ISA=%s" % (model, bfloat16_isa(flags) or "no bf16",
                                             os.environ.get("DNNL_MAX_CPU_ISA", ""))


def cache_path():
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "vgg", "precision.json")


def read_cache():
    import json
    try:
        with open(cache_path()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}  # none yet, or damaged: measure again
    return data if isinstance(data, dict) else {}


def write_cache(cache):
    import json

    from data_tools.common import write_text_atomic
    try:
        os.makedirs(os.path.dirname(cache_path()), exist_ok=True)
        write_text_atomic(cache_path(), json.dumps(cache, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home: measure again next time


def probe_speed(repeats=5):
    """Seconds for a VGG-like convolution (64 channels, 56x56, batch 8) and fc layer
    (4096x4096, batch 16), float32 vs bfloat16 (inputs and weights cast once, as AMP
    does), the best of ``repeats`` after a warm-up: about a second in all."""
    import time

    import mxnet as mx
    from mxnet.contrib.amp.amp import bfloat16  # amp_cast knows no 'bfloat16' string
    x = mx.nd.random.uniform(shape=(8, 64, 56, 56))
    w = mx.nd.random.uniform(shape=(64, 64, 3, 3))
    v = mx.nd.random.uniform(shape=(16, 4096))
    m = mx.nd.random.uniform(shape=(4096, 4096))
    timings = {}
    for dtype in ("float32", "bfloat16"):
        args = [a if dtype == "float32" else mx.nd.amp_cast(a, dtype=bfloat16)
                for a in (x, w, v, m)]

        _probe_work(mx, args)  # warm-up: oneDNN builds its kernels
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            _probe_work(mx, args)
            best = min(best, time.perf_counter() - start)
        timings[dtype] = best
    return timings


def _probe_work(mx, args):
    mx.nd.Convolution(args[0], args[1], kernel=(3, 3), pad=(1, 1), num_filter=64,
                      no_bias=True).wait_to_read()
    mx.nd.FullyConnected(args[2], args[3], num_hidden=4096, no_bias=True).wait_to_read()


def resolve(dtype, ctx=None):
    """``prepare``, saying on stderr what runs and why; returns the dtype used."""
    used, note = prepare(dtype, ctx=ctx)
    if note:
        print("note: " + note, file=sys.stderr, flush=True)
    return used


def check_devices(dtype, ctx):
    """MXNet has float16 kernels on GPUs only and bfloat16 kernels on CPUs only."""
    kinds = {c.device_type for c in ctx}
    if dtype == "float16" and kinds != {"gpu"}:
        raise VggError("--dtype float16 needs GPUs (--devices gpu:0,...): MXNet has no "
                       "float16 convolution on the CPU; use --dtype bfloat16 there")
    if dtype == "bfloat16" and kinds != {"cpu"}:
        raise VggError("--dtype bfloat16 runs on the CPU (oneDNN); use --dtype float16 "
                       "on GPUs")


def start_mixed_precision(dtype):
    """Training: make convolutions and dense layers compute in ``dtype`` (MXNet AMP).

    Process-wide and irreversible in MXNet 1.x, and must come before the net
    is built: run one training per process when ``dtype`` is not float32.
    """
    if dtype == "float32":
        return
    from mxnet.contrib import amp
    amp.init(target_dtype=dtype)


def to_float32(array):
    """An NDArray as float32 (the 16-bit layers' outputs feed losses and soft-max)."""
    import mxnet as mx
    import numpy as np
    if array.dtype == np.float32:
        return array
    return mx.nd.amp_cast(array, dtype="float32")


class Float32Output:
    """Calls a block and returns float32 logits, whatever precision it computes in."""

    def __init__(self, block):
        self.block = block

    def __call__(self, x):
        return to_float32(self.block(x))


def convert_for_inference(block, dtype, sample, ctx):
    """A copy of ``block`` whose convolutions and dense layers run in ``dtype``, their
    weights stored in it; ``sample`` (NCHW float32) traces the graph once."""
    if dtype == "float32":
        return block
    import mxnet as mx
    from mxnet.contrib import amp

    block.hybridize(static_alloc=True)
    block(mx.nd.array(sample[:1], ctx=ctx[0])).wait_to_read()  # amp needs the traced graph
    converted = amp.convert_hybrid_block(block, target_dtype=dtype, ctx=ctx,
                                         cast_optional_params=True)
    converted.hybridize(static_alloc=True)
    return Float32Output(converted)
