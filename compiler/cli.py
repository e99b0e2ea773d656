"""The `symgrad` command: argument parsing and dispatch to subcommands.

Each subcommand is one `Command` in `COMMANDS`: its name, a line of help, a function that adds its
arguments to its own parser, and a function that runs it and returns the exit status: `symgrad
demo`, `export`, `explain` and `cache`. A command imports what it needs when it runs, so
`symgrad --version` and `symgrad --help` stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from compiler import cache_command, demo, explain_command, export_command
from runtime import __version__

PROG = "symgrad"


class Command(NamedTuple):
    """One `symgrad <name>` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command("demo", "train the PyTorch tutorial's network, compiled to native code, on MNIST",
            demo.add_arguments, demo.run),
    Command("export", "export a model as a standalone C library (header, object, shared "
            "library, example)", export_command.add_arguments, export_command.run),
    Command("explain", "show what reverse mode does to a model: its graphs, rewrites, kernel "
            "derivatives, saved bytes and FLOPs (text, or an HTML page)",
            explain_command.add_arguments, explain_command.run),
    Command("cache", "show (info) or empty (clear) symgrad's cache of compiled code",
            cache_command.add_arguments, cache_command.run),
)


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of `symgrad [--version] <command> ...` with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="symgrad: PyTorch's programming model with a symbolic reverse-mode compiler "
                    "to native code.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _unknown_command_message(name: str, commands: Sequence[Command]) -> str:
    known = ", ".join(c.name for c in commands)
    available = f"the commands are: {known}" if known else "this version has no commands yet"
    return f"unknown command {name!r}; {available} (see `{PROG} --help`)"


def main(argv: Sequence[str] | None = None, commands: Sequence[Command] = COMMANDS) -> int:
    """Run `symgrad` with `argv` (default: the process arguments); returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands)
    first = next((a for a in args_list if not a.startswith("-")), None)
    if first is not None and first not in {c.name for c in commands}:
        parser.error(_unknown_command_message(first, commands))
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
