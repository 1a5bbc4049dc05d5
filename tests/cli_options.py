"""What every `sqtool` command's parser says of one option: tests of help texts shared across commands."""
from __future__ import annotations

import argparse


def command_parsers(leaves_only: bool = False) -> dict[str, argparse.ArgumentParser]:
    """{"": the top parser, "data": ..., "data inspect": ..., "export": ...}: every (sub)command's own parser;
    `leaves_only`: those with no sub-commands of their own."""
    from sqtool.cli import build_parser
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser, name):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not (subs and leaves_only):
            out[name] = parser
        for a in subs:
            for n, p in a.choices.items():
                walk(p, f"{name} {n}".strip())
    walk(build_parser(), "")
    return out


def option_helps(flag: str) -> dict[str, str]:
    """{"quantize": help, "train finetune": help, ...}: the help of `flag` in every (sub)command that has it."""
    return {name: a.help for name, p in command_parsers().items() for a in p._actions if flag in a.option_strings}
