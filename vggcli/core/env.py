"""Process-wide settings that must be in place before MXNet is imported (the CLI
and ``vggcli.configure`` apply them; importing vggcli changes nothing)."""
import os
import sys
import warnings


from data_tools.common import available_cores  # noqa: F401  (re-exported)


def configure_environment(threads=None):
    """Use every available core unless the user chose a thread count.

    MXNet 1.9.1 otherwise runs oneDNN/OpenMP on a single thread (measured 2.1x
    slower on 2 cores). ``threads`` (from ``vgg --threads``) wins over
    OMP_NUM_THREADS, which wins over the core count.
    """
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(available_cores()))
    from .precision import enable_amx
    enable_amx()  # bf16/INT8 on AMX: before oneDNN starts
    # NOTE: MXNet prints "Subgraph backend MKLDNN is activated" on every bind.
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
    os.environ.setdefault("MXNET_QUANTIZATION_VERBOSE", "0")  # one line per layer
    # MXNet keeps 4 CPU temp-space copies by default, each growing to the largest oneDNN
    # reorder it served (conv1's output: 196 MiB at VGG-D batch 16); CPU operators run on
    # one worker thread (MXNET_CPU_WORKER_NTHREADS=1), so one copy serves them all. VGG-D
    # training at batch 16: peak 3,484 MB instead of 4,072, steps no slower (measured).
    os.environ.setdefault("MXNET_CPU_TEMP_COPY", "1")
    if "mxnet" in sys.modules:  # too late for the variable: tell the runtime
        from mxnet.base import _LIB
        _LIB.MXSetNumOMPThreads(int(os.environ["OMP_NUM_THREADS"]))


def quiet_warnings():
    """MXNet/GluonCV emit DeprecationWarnings from numpy aliases on import: theirs are
    silenced, no one else's."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(mxnet|gluoncv)")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(mxnet|gluoncv)")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"gluoncv")
