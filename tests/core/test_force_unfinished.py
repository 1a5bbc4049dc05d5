"""A --force run into the folder of a finished run of the same command: the earlier run's result file (metrics.json,
summary.json, ...) goes as the new run takes the folder, so a kill before the new one ends leaves a folder that reads
as unfinished (the interrupt names how to go on), never as the earlier run, finished, under the new run's config.yaml
and beside files the new run rewrote (core.runs.unfinish)."""
from __future__ import annotations

import json

import pytest

import sqtool.cli
from sqtool.cli import main
from sqtool.core.runs import make_run_dir, release_run_dirs, save_config

PRETRAIN = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--batch-size", "16",
            "--progress", "false", "--val-fraction", "0"]


@pytest.mark.parametrize("command, result", [("bench", "metrics.json"), ("bench", "compare.json"),
                                             ("quantize", "metrics.json"), ("train/finetune", "metrics.json")])
def test_force_into_a_finished_run_of_the_command_removes_its_result(tmp_path, command, result):
    d = tmp_path / "run"
    make_run_dir(command, "x", d)
    save_config(d, {})
    (d / result).write_text("{}\n")
    (d / "kept.txt").write_text("theirs\n")
    release_run_dirs()
    make_run_dir(command, "x", d, force=True)
    release_run_dirs()
    assert not (d / result).exists() and (d / "kept.txt").is_file()


def test_force_into_a_folder_of_no_run_keeps_its_files(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "metrics.json").write_text("{}\n")                     # a user's own file, no config.yaml naming a run
    make_run_dir("bench", "x", d, force=True)
    release_run_dirs()
    assert (d / "metrics.json").is_file()


def test_a_killed_force_pretrain_reads_as_unfinished_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "pt"
    assert main(PRETRAIN + ["--epochs", "1", "--out", str(out)]) == 0
    from sqtool.train import loop
    real, n = loop.simsiam_loss, [0]

    def loss(*a):                                               # Ctrl-C in the rerun's 2nd epoch, after a checkpoint
        n[0] += 1
        if n[0] == 6:
            raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(loop, "simsiam_loss", loss)
    capsys.readouterr()
    assert main(PRETRAIN + ["--epochs", "3", "--ckpt-every", "2", "--out", str(out), "--force"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"continue with: sqtool train pretrain --resume {out}"), err
    assert not (out / "metrics.json").exists()                  # the 1-epoch run's: it said "done" of this folder
    assert main(PRETRAIN + ["--epochs", "3", "--out", str(out)]) == 1
    assert "--resume" in capsys.readouterr().err                # not "holds a finished train pretrain run"
    monkeypatch.setattr(loop, "simsiam_loss", real)
    assert main(["train", "pretrain", "--resume", str(out), "--progress", "false"]) == 0
    assert json.loads((out / "metrics.json").read_text())["status"] == "done"
    assert "3 of 3 epochs" in capsys.readouterr().out


def test_a_demo_killed_after_force_leaves_no_done_metrics(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sqtool.cli, "main", lambda argv: 0)
    assert main(["demo", "--no-mcu", "--out", "d"]) == 0
    assert "total_s" in json.loads((tmp_path / "d" / "metrics.json").read_text())

    def step(argv):                                             # the rerun's fine-tune is killed on the spot (SIGKILL):
        if argv[:2] == ["train", "finetune"]:                  # none of the demo's own bookkeeping runs after it
            raise SystemExit(137)
        return 0
    monkeypatch.setattr(sqtool.cli, "main", step)
    with pytest.raises(SystemExit):
        main(["demo", "--no-mcu", "--out", "d", "--force"])
    assert not (tmp_path / "d" / "metrics.json").exists()
    release_run_dirs()
