"""vgg: the VGG paper (Simonyan & Zisserman, ICLR 2015) as a command-line toolkit.

Importing this package is cheap: MXNet is imported by the modules that need it
(``vggcli.models``, ...), so thread settings chosen on the command line still
reach MXNet's OpenMP runtime.
"""
from ._env import configure_environment

__version__ = "0.1.0"

configure_environment()
