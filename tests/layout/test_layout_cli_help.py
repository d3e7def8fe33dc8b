"""Every command of ``thoughtbank`` explains itself: a description, and help text for every
option, with its default where it has one and never "(default: None)"."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from thoughtbank.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from commands(command, (*path, name))


ALL_COMMANDS = dict(commands(build_parser()))


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            yield action


@pytest.mark.parametrize("path", list(ALL_COMMANDS), ids=lambda p: " ".join(p) or "thoughtbank")
def test_every_option_has_help_and_no_empty_default(path: tuple[str, ...]) -> None:
    parser = ALL_COMMANDS[path]
    assert parser.description, f"`{' '.join(path)}` has no description"
    text = parser.format_help()
    assert "default: None" not in text
    assert "(required) (default" not in text
    for action in options(parser):
        assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}: no help"


def test_main_commands_show_examples() -> None:
    for path in [("mine",), ("index", "build"), ("serve",), ("query",), ("augment",)]:
        assert "examples:" in ALL_COMMANDS[path].format_help(), path


def test_defaults_are_shown() -> None:
    mine = ALL_COMMANDS[("mine",)].format_help()
    for shown in ["(default: fusion)", "(default: extractive)", "(default: 3)", "(default: 4)"]:
        assert shown in " ".join(mine.split()), shown
    build = " ".join(ALL_COMMANDS[("index", "build")].format_help().split())
    assert "texts per encode call (default: 64)" in build


def test_top_level_help_is_for_users() -> None:
    text = ALL_COMMANDS[()].format_help()
    assert "Each stage registers" not in text and "mine them from multi-LLM logs" in text
