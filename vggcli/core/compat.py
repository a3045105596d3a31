"""Workarounds for the pinned third-party stack, in one place."""
import sys

_MISSING = object()


def gluoncv_model_zoo():
    """``gluoncv.model_zoo``, importable beside PyTorch 2 (see import_gluoncv)."""
    return import_gluoncv("gluoncv.model_zoo")


def import_gluoncv(module):
    """A module of gluoncv (``gluoncv.model_zoo``, ``gluoncv.data``) beside PyTorch 2.

    NOTE: gluoncv 0.10.5's ``__init__`` checks the version of its optional PyTorch
    backend and raises RuntimeError (not ImportError) for torch >= 2, which
    makes ``import gluoncv`` fail whenever torch 2 is installed. torch is hidden
    from that check while gluoncv loads; its MXNet parts do not use it.
    """
    import importlib
    if module in sys.modules:
        return sys.modules[module]
    saved = sys.modules.get("torch", _MISSING)
    sys.modules["torch"] = None  # "import torch" now raises ImportError
    try:
        return importlib.import_module(module)
    finally:
        if saved is _MISSING:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
