"""Every command of ours says what it does, and every option what it is for (flask X --help)."""

from types import SimpleNamespace

import click
import pytest

from freshcom_customers.cli import register_commands


def registered() -> click.Group:
    """The commands the app factory registers, on a bare group: no app, no database."""
    root = click.Group("flask")
    register_commands(SimpleNamespace(cli=root))
    return root


def walk(group: click.Group, path: tuple[str, ...] = ()):
    """(path, command) of every command under group, groups included."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


COMMANDS = list(walk(registered()))


def test_the_walk_finds_every_group_and_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"accounts create", "accounts rotate-publishable-key", "users create-staff", "demo seed"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_every_command_and_option_has_help(path, command):
    assert (command.help or "").strip(), f"flask {' '.join(path)} has no help"
    options = [param for param in command.params if isinstance(param, click.Option)]
    missing = [param.opts[0] for param in options if not (param.help or "").strip()]
    assert not missing, f"flask {' '.join(path)}: options without help: {missing}"
