"""The CLI promise: every command has real help; errors are one line on stderr, never a traceback."""
import subprocess
import sys

import pytest

from sqtool.cli import COMMANDS, main


def run(*args):
    return subprocess.run([sys.executable, "-m", "sqtool.cli", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for name, _, _ in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_each_command_has_help(name):
    r = run(name, "--help")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) >= 2


def test_unknown_config_key_is_one_line(tmp_path):
    from sqtool.core import SqtoolError, resolve_config
    from dataclasses import dataclass

    @dataclass
    class C:
        a: int = 1

    f = tmp_path / "c.yaml"
    f.write_text("a: 2\nbogus: 3\n")
    with pytest.raises(SqtoolError, match="bogus"):
        resolve_config(C, config_file=str(f))
    assert resolve_config(C, config_file=None, a=5).a == 5


def test_error_is_one_line_no_traceback(capsys):
    rc = main(["export", "--model", "/nonexistent/run", "--target", "onnx"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def _leaf_commands(parser, prefix=()):
    import argparse
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
        return
    for name, p in subs[0].choices.items():
        yield from _leaf_commands(p, prefix + (name,))


def test_every_nested_command_has_help(capsys):
    from sqtool.cli import build_parser
    leaves = list(_leaf_commands(build_parser()))
    assert len(leaves) >= 6
    for cmd in leaves:
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0, cmd
        assert "usage:" in out, cmd
