"""Errors the CLI turns into one-line messages instead of tracebacks."""


class VggError(Exception):
    """Bad input from the user: a file, an option, a dataset. Exit code 2."""

    exit_code = 2


class VggRuntimeError(VggError):
    """Work that started but could not finish (diverged, killed peer...). Exit code 1."""

    exit_code = 1
