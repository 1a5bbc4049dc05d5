"""`sqtool demo --force` (the one --force of every command): a non-empty demo directory is refused with the
hint, and with --force every step is told to overwrite its own folder (each step's parser takes --force)."""
from __future__ import annotations

from pathlib import Path

from sqtool.cli import build_parser, main
from sqtool.demo import DemoCfg, steps


def test_demo_refuses_a_non_empty_dir_and_names_force(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "d")]) != 0
    err = capsys.readouterr().err
    assert "exists and is not empty (it holds no sqtool run; use --force to write into it)" in err and len(err.strip().splitlines()) == 1


def test_every_demo_step_takes_force(tmp_path):
    parser = build_parser()
    for data in ("synthetic", str(tmp_path)):
        for _, argv in steps(DemoCfg(data_root=data, force=True), Path(tmp_path / "demo")):
            ns = parser.parse_args(argv + ["--force"])
            assert getattr(ns, "force", None) in (True, "true", 1), argv[:2]


def test_a_synthetic_demo_of_too_few_subjects_is_refused_before_any_step(tmp_path, capsys):
    """One subject is held out of fine-tuning and quantize, and the teacher's subject folds need 2 more: 2 synthetic
    subjects failed at the fine-tune step, after the pairs and two pretrainings. Now one line and no step."""
    assert main(["demo", "--subjects", "2", "--out", str(tmp_path / "d")]) != 0
    err = capsys.readouterr().err
    assert "--subjects 2: the synthetic demo needs 3 or more" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d" / "pairs").exists()
