"""Every command has help with an example, and the README documents every command."""
import os

import pytest
from click.testing import CliRunner

from vggcli.cli import cli

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _commands(group=cli, prefix=()):
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        yield path
        if hasattr(command, "commands"):
            yield from _commands(command, path)


COMMANDS = list(_commands())


def test_the_expected_commands_exist():
    names = {" ".join(c) for c in COMMANDS}
    assert {"nets", "pack", "pack-imagenet", "inspect", "train", "recipe plan", "eval",
            "fuse", "features", "transfer"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_has_an_example(path):
    result = CliRunner().invoke(cli, list(path) + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "vgg " + " ".join(path) in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_readme_documents_the_command(path):
    with open(README) as f:
        text = f.read()
    assert "vgg %s" % " ".join(path) in text


def test_readme_gives_the_two_setup_commands_and_ci_runs_them():
    with open(README) as f:
        text = f.read()
    assert "make demo" in text and "make test" in text
    with open(os.path.join(os.path.dirname(README), ".ci", "run")) as f:
        ci = f.read()
    assert "make test" in ci and "make demo" in ci
