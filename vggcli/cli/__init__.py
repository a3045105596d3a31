"""The `vgg` command (click): the root group and error boundary (root), the options the
commands share (options), and the commands by the paper's steps: data (pack,
pack-imagenet, inspect), train (train, recipe, launch), testing (eval, fuse, localise,
features, transfer), tools (convert, export, bench, reproduce)."""
from .root import cli, main  # noqa: F401
