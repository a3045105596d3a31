"""Reduced precision (``--dtype``): bfloat16 on CPUs with AMX, float16 on NVIDIA GPUs.

Both go through MXNet's AMP: for training ``amp.init`` makes convolutions and
fully connected layers compute in 16 bits while the weights, their updates and
the loss stay float32 (like torch.autocast); for inference
``amp.convert_hybrid_block`` stores those layers' weights in 16 bits.

AMX needs help on Linux: MXNet 1.9.1's oneDNN (2.4.4) uses it only when
``DNNL_MAX_CPU_ISA`` allows it, and does not ask the kernel for the AMX tile
state, without which its AMX kernels die with SIGILL. ``enable_amx`` does both
when the process is configured (``vggcli.configure``, which the ``vgg`` command
calls), before MXNet (bf16 and INT8 convolutions then run
on AMX; float32 kernels are unaffected). Without AMX, bf16 measured slower
than float32 (0.69x inference, 0.76x training on Sapphire Rapids with AMX
left off), so a bfloat16 run falls back to float32 with a message.

This module imports MXNet only inside functions.
"""
import ctypes
import os
import sys

from .errors import VggError

DTYPES = ("float32", "float16", "bfloat16")

# linux/arch/x86/include/uapi/asm/prctl.h and asm/fpu/types.h (x86-64)
_SYS_ARCH_PRCTL = 158
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18

_FORCE_WITHOUT_AMX = "VGG_BF16_WITHOUT_AMX"  # run bf16 on AVX512-BF16 kernels anyway


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


def bfloat16_isa(flags=None):
    """'amx', 'avx512_bf16' or None: the best bf16 instructions of this CPU."""
    flags = cpu_flags() if flags is None else flags
    if {"amx_bf16", "amx_tile"} <= flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return None


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


def prepare(dtype, flags=None):
    """Choose the precision a run will use; returns (dtype, note or None).

    ``float16`` is returned as asked
    (``check_devices`` refuses it on CPUs); ``bfloat16`` becomes ``float32``
    where this CPU has no AMX, and the note says why.
    """
    check_dtype(dtype)
    if dtype != "bfloat16":
        return dtype, None
    isa = bfloat16_isa(flags)
    forced = os.environ.get(_FORCE_WITHOUT_AMX) == "1"
    if isa == "amx":
        if enable_amx(flags):
            return "bfloat16", None
        if not forced:
            return "float32", ("bfloat16: Linux refused this process the AMX tile state "
                               "(kernel older than 5.16?); running float32")
    if isa == "avx512_bf16" and not forced:
        return "float32", ("bfloat16: this CPU has AVX512-BF16 but no AMX, where bf16 ran "
                           "slower than float32; running float32 (%s=1 forces bfloat16)"
                           % _FORCE_WITHOUT_AMX)
    if isa is None:
        return "float32", ("bfloat16: this CPU has neither AMX nor AVX512-BF16; "
                           "running float32")
    return "bfloat16", None


def resolve(dtype):
    """``prepare``, saying on stderr when the run falls back; returns the dtype used."""
    used, note = prepare(dtype)
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
