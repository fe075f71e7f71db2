"""``--help`` of every command: every flag explained, plain text (issue #16)."""

from __future__ import annotations

import argparse

import pytest

from featurestore.cli import COMMANDS, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_and_the_text_is_plain(command):
    sub = _subparsers()[command]
    missing = [a.option_strings or a.dest for a in sub._actions
               if not a.help and a.help is not argparse.SUPPRESS]
    assert missing == []
    text = sub.format_help()
    assert "``" not in text and "SPEC §" not in text, text


def test_reading_and_writing_commands_take_json():
    subs = _subparsers()
    without = [name for name, sub in subs.items()
               if "--json" not in {s for a in sub._actions for s in a.option_strings}]
    assert sorted(without) == ["demo", "serve"]  # no report: a pipeline show and a server
