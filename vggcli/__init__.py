"""vgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) as a command-line toolkit.

Importing this package changes nothing in the process. MXNet is imported by the
modules that need it (``vggcli.nets.models``, ...). The ``vgg`` command configures
the process itself; a Python caller who wants the same settings calls
``vggcli.configure()`` before the first MXNet import:

    import vggcli
    vggcli.configure(threads=None)   # every core, AMX where Linux allows it
    from vggcli.nets import models
"""

__version__ = "0.1.0"


def configure(threads=None):
    """Thread count (``threads``, else $OMP_NUM_THREADS, else every available core),
    AMX permission for bf16/INT8 where the CPU has it, quiet MXNet logs and warnings.
    Call before MXNet is imported; later it sets the thread count through MXNet."""
    from .core.env import configure_environment, quiet_warnings
    configure_environment(threads)
    quiet_warnings()
