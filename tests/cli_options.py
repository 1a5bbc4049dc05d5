"""What every `sqtool` command's parser says of one option: tests of help texts shared across commands."""
from __future__ import annotations

import argparse


def option_helps(flag: str) -> dict[str, str]:
    """{"quantize": help, "train finetune": help, ...}: the help of `flag` in every (sub)command that has it."""
    from sqtool.cli import build_parser
    helps: dict[str, str] = {}

    def walk(parser, name):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, p in a.choices.items():
                    walk(p, f"{name} {n}".strip())
            elif flag in a.option_strings:
                helps[name] = a.help
    walk(build_parser(), "")
    return helps
