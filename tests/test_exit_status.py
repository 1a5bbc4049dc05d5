"""The exit statuses the README's table promises scripts and CI (0, 1, 2, 3, 130, 143: the last three in
tests/test_cli_faults.py, tests/test_sigterm.py and the bench floor tests), and SQTOOL_DEBUG's spellings."""
from __future__ import annotations

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError


def test_bad_input_is_1_with_one_line(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "nothing"), "--data", "synthetic"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sqtool: error: ") and "\n" not in err


def test_a_malformed_command_line_is_2(capsys):
    assert main(["train", "finetune", "--epochs", "abc"]) == 2
    assert main(["train", "finetune", "--nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(ln.startswith("sqtool: error: train finetune: ") for ln in err)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on"])
def test_sqtool_debug_spellings_show_the_traceback(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SQTOOL_DEBUG", value)
    with pytest.raises(SqtoolError):
        main(["predict", "--model", str(tmp_path / "nothing"), "--data", "synthetic"])


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_sqtool_debug_off_spellings_keep_one_line(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv("SQTOOL_DEBUG", value)
    assert main(["predict", "--model", str(tmp_path / "nothing"), "--data", "synthetic"]) == 1
