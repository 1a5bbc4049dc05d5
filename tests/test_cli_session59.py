"""Small promises of the command line a user-acceptance sweep found missing: a YAML error names its line and
column; `python -m sqtool` is the `sqtool` command; `--resume` of a finished pretraining writes nothing; options only
the spectral heart-rate fine-tune reads are refused on other models; `data inspect` says which recordings are too
short for a window."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core.config import yaml_error_text


@pytest.mark.parametrize("text, says", [
    ("name: x\nchannels:\n  ppg: {column: 1\n  acc: 3\n",
     "line 4, column 6: expected ',' or '}', but got ':' (while parsing a flow mapping opened at line 3)"),
    ("a: b\n  c: d\n", "line 2, column 4: mapping values are not allowed here"),
])
def test_a_yaml_error_names_its_line_and_column(tmp_path, capsys, text, says):
    ds = tmp_path / "dataset.yaml"
    ds.write_text(text)
    assert main(["data", "inspect", "--data", str(ds)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: {ds}: not valid YAML ({says})"], err
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    assert main(["train", "finetune", "--config", str(cfg)]) == 1
    assert capsys.readouterr().err.strip() == f"sqtool: error: config file {cfg} is not valid YAML: {says}"


def test_yaml_error_text_without_a_mark_is_the_first_line():
    assert yaml_error_text(ValueError("first\nsecond")) == "first"


def test_python_dash_m_sqtool_is_the_command(tmp_path):
    bad = tmp_path / "dataset.yaml"
    bad.write_text("a: [1, 2\n")
    r = subprocess.run([sys.executable, "-m", "sqtool", "data", "inspect", "--data", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"sqtool: error: {bad}: not valid YAML (line 2, column 1: expected ',' "
                                             "or ']', but got '<stream end>' (while parsing a flow sequence opened "
                                             "at line 1))"]
    r = subprocess.run([sys.executable, "-m", "sqtool", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: sqtool ")


def _digests(run):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
            for p in sorted(run.iterdir()) if p.is_file() and not p.name.startswith(".")}   # .lock: the resume's lock


def test_resume_of_a_finished_pretraining_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--epochs", "1",
                 "--batch-size", "32", "--val-fraction", "0", "--progress", "false", "--out", str(run)]) == 0
    capsys.readouterr()
    before = _digests(run)
    assert main(["train", "pretrain", "--resume", str(run)]) == 0
    io = capsys.readouterr()
    assert _digests(run) == before                                  # model.pt, config.yaml, metrics.json untouched
    assert io.err.strip().splitlines() == [f"sqtool: note: {run} has trained all its 1 epochs; nothing to resume "
                                           "(give --epochs N above 1 to train further)"]
    assert io.out.strip() == f"next: sqtool train finetune --task hr --model {run}"
    assert main(["train", "pretrain", "--resume", str(run), "--epochs", "2", "--progress", "false"]) == 0
    assert "(done, 2 of 2 epochs)" in capsys.readouterr().out       # more epochs: it trains them


@pytest.mark.parametrize("model, task, extra, says", [
    ("resnet1d_siamq_tiny", "hr", ["--freq-stretch", "0.8"], "--freq-stretch is"),
    ("rr_spec", "rr", ["--motion-frac", "0.1", "--lr-schedule", "constant"], "--motion-frac, --lr-schedule are"),
    ("af_beats", "af", ["--calibrate-on", "troika"], "--calibrate-on is"),
])
def test_spectral_only_options_are_refused_on_other_models(tmp_path, capsys, model, task, extra, says):
    out = tmp_path / "ft"
    assert main(["train", "finetune", "--task", task, "--model", model, "--data", "synthetic", "--out", str(out),
                 *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sqtool: error: train finetune --model {model}: {says} for the "
                                               "spectral heart-rate models (spec_*) only"), err
    assert not out.exists()


def test_inspect_notes_recordings_too_short_for_a_window(tmp_path, capsys):
    root = tmp_path / "watch"
    root.mkdir()
    for name, seconds in (("short", 5), ("mid", 20), ("long", 40)):
        t = np.arange(int(seconds * 64)) / 64.0
        (root / f"{name}.csv").write_text("time,ppg\n" + "".join(f"{a:.5f},{np.sin(2 * np.pi * 1.2 * a):.5f}\n"
                                                                 for a in t))
    assert main(["data", "inspect", "--data", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("  note: 1 of 3 record(s) shorter than 8 s hold no heart-rate window; 2 of 3 record(s) shorter than 30 s "
            "hold no pairs' and the time-domain tasks' default window (a task reads them only with a --window-s that "
            "fits)") in out.splitlines(), out
    assert main(["data", "inspect", "--data", str(root / "long.csv"), "--no-progress"]) == 0
    assert "note:" not in capsys.readouterr().out


@pytest.mark.parametrize("task, model", [("hr", ""), ("rr", "rr_spec")])
def test_a_recording_file_as_training_data_root_says_how_to_use_it(tmp_path, capsys, task, model):
    f = tmp_path / "w.csv"
    f.write_text("time,ppg\n0,1\n0.015625,2\n")
    argv = ["train", "finetune", "--task", task, "--data", str(f), "--out", str(tmp_path / "ft")]
    assert main(argv + (["--model", model] if model else [])) == 1
    assert capsys.readouterr().err.strip() == (
        f"sqtool: error: --data {f} is a file: this command reads a folder of datasets, or a dataset file "
        f"(dataset.yaml) that names your recordings and their labels (README 'Your own data'; sqtool data inspect "
        f"--data {f} shows what the file holds)")
    assert not (tmp_path / "ft").exists()


@pytest.mark.parametrize("flag, name, says", [
    ("--teacher", "bogus", "demo --teacher: unknown model 'bogus' (known: "),
    ("--teacher", "resnet1d_siamq_18", "demo --teacher resnet1d_siamq_18: the demo builds the spectral heart-rate "
                                       "monitor, give a spec_* model"),
    ("--student", "rr_spec", "demo --student rr_spec: the demo builds the spectral heart-rate monitor"),
    ("--student", "spec_student_s_accsum", "demo --student spec_student_s_accsum does not read the inputs of --teacher "
                                           "spec_teacher_m (its channels, rate, window or heart-rate bins): give "
                                           "spec_student_s or spec_student_xs"),     # it failed at step 3 of 7
])
def test_the_demo_refuses_a_model_it_cannot_build_before_its_first_step(tmp_path, capsys, flag, name, says):
    out = tmp_path / "demo"
    assert main(["demo", flag, name, "--out", str(out)]) == 1
    io = capsys.readouterr()
    err = io.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sqtool: error: {says}"), err
    assert "===" not in io.out and not out.exists()                  # no step ran, no folder made
