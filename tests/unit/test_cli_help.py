"""`routeiq --help` is enough to use the command: every flag of every subcommand says what it
does, and a flag with a default shows it."""

from __future__ import annotations

import argparse

import pytest

from routeiq import __version__
from routeiq.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: str = "routeiq"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, f"{path} {name}")
    return found


def _has_real_default(action: argparse.Action) -> bool:
    # None / False / --help's SUPPRESS: nothing to show (the help says what happens then)
    default = action.default
    return default is not None and default != argparse.SUPPRESS and not isinstance(default, bool)


def _help_string(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser.formatter_class("routeiq")
    return formatter._get_help_string(action) or ""  # type: ignore[attr-defined]


def test_every_flag_of_every_subcommand_has_help_and_its_default() -> None:
    missing, no_default = [], []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            name = action.option_strings[-1] if action.option_strings else action.dest
            if not action.help:
                missing.append(f"{path} {name}")
            elif _has_real_default(action) and "%(default)" not in _help_string(parser, action):
                no_default.append(f"{path} {name}")
    assert not missing, f"flags without help: {missing}"
    assert not no_default, f"flags whose help hides the default: {no_default}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"routeiq {__version__}"
