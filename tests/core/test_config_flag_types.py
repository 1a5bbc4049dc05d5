"""A value of the wrong type: typed on the command line, a usage error (exit 2) naming the flag; in a --config
file, an error naming the file's key."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError, resolve_config


@pytest.mark.parametrize("argv, line", [
    (["demo", "--seed", "abc"], "sqtool: error: demo: --seed: expected int, got 'abc' (see sqtool demo --help)"),
    (["demo", "--folds", "1.5"], "sqtool: error: demo: --folds: expected int, got '1.5' (see sqtool demo --help)"),
    (["train", "pretrain", "--epochs", "abc"],
     "sqtool: error: train pretrain: --epochs: expected int, got 'abc' (see sqtool train pretrain --help)"),
    (["bench", "--max-records", "x"],
     "sqtool: error: bench: --max-records: expected int, got 'x' (see sqtool bench --help)"),
])
def test_a_wrongly_typed_flag_is_a_usage_error_naming_the_flag(argv, line, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == line
    assert not (tmp_path / "runs").exists()                        # refused before any run folder


def test_a_wrongly_typed_config_file_value_names_its_key(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("seed: abc\n")
    assert main(["demo", "--config", str(tmp_path / "c.yaml")]) == 1
    assert capsys.readouterr().err.strip() == "sqtool: error: config key 'seed': cannot use 'abc' as int"
    # the flag over the file's bad value is checked as a flag, and wins
    (tmp_path / "c.yaml").write_text("seed: 3\n")
    assert main(["demo", "--config", str(tmp_path / "c.yaml"), "--seed", "x"]) == 2
    assert "demo: --seed: expected int, got 'x'" in capsys.readouterr().err


def test_a_list_flag_names_the_bad_element():
    from sqtool.firmware_bench.cli import BenchConfig

    @dataclass
    class C:
        sizes: list[int] = field(default_factory=list)
    ns = argparse.Namespace(sizes="1,x,3", _sqtool_prog="sqtool thing")
    with pytest.raises(SqtoolError) as e:
        resolve_config(C, ns)
    assert (str(e.value), e.value.code) == ("thing: --sizes: expected int, got 'x' in '1,x,3' "
                                            "(see sqtool thing --help)", 2)
    assert resolve_config(BenchConfig, argparse.Namespace(chunk="7")).chunk == 7      # a good value: as before


def test_a_config_files_null_or_boolean_number_names_its_key(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for text, line in (("seed:\n", "config key 'seed': cannot use None as int"),
                       ("seed: true\n", "config key 'seed': cannot use True as int")):
        (tmp_path / "c.yaml").write_text(text)
        assert main(["demo", "--config", str(tmp_path / "c.yaml")]) == 1
        assert capsys.readouterr().err.strip() == f"sqtool: error: {line}"
    assert not (tmp_path / "runs").exists()
