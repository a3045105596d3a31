"""Errors the CLI turns into one-line messages instead of tracebacks (defined in
data_tools.common, which both packages share)."""
from data_tools.common import VggError, VggRuntimeError

__all__ = ["VggError", "VggRuntimeError"]
