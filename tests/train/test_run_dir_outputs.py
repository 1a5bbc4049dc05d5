"""Every training run dir holds a training-curve plot and a config.yaml whose `resolved:` section has the
values the run used (not `model: ''`, `fs: 0.0`); fine-tune prints one line per fold with its metric in units."""
import re

import pytest
import yaml

from sqtool.cli import main
from sqtool.core.progress import metric_text


def test_pretrain_writes_a_training_curve(tiny_pretrained):
    assert (tiny_pretrained / "training_curve.png").stat().st_size > 1000


def test_finetune_prints_a_line_per_fold_and_saves_resolved_values(tmp_path, tiny_pretrained, capsys):
    out = tmp_path / "ft"
    rc = main(["train", "finetune", "--task", "hr", "--model", str(tiny_pretrained), "--data", "synthetic",
               "--folds", "2", "--epochs", "2", "--mode", "linear", "--bootstrap", "20", "--no-progress",
               "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    folds = [ln for ln in cap.err.splitlines() if re.match(r"hr fold \d/2 ", ln)]
    assert len(folds) == 2, cap.err
    assert all(re.search(r": MAE \d+\.\d\d BPM on \d+ held-out windows$", ln) for ln in folds), folds
    assert re.search(r"MAE \d+\.\d\d BPM \[95 % CI", cap.out)                 # the headline has its unit
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["config"]["fs"] == 0.0 and saved["config"]["model"] == ""      # what was asked (auto) ...
    r = saved["resolved"]                                                     # ... and what was used
    assert r["model"] and r["fs"] > 0 and r["window_s"] > 0 and r["hop_s"] > 0 and r["channels"] == ["ppg"]
    assert r["data_root"] == "synthetic" and r["folds"] == 2 and r["init"].endswith("model.pt")
    assert (out / "training_curve.png").stat().st_size > 1000


@pytest.mark.parametrize("task,metric,value,text", [
    ("hr", "mae", 8.108, "MAE 8.11 BPM"), ("rr", "mae", 2.0, "MAE 2.00 breaths/min"),
    ("bp", "rmse", 10.0, "RMSE 10.00 mmHg"), ("quality", "auroc", 0.91234, "AUROC 0.912"),
    ("af", "f1_weighted", 0.5, "weighted F1 0.500")])
def test_headline_numbers_carry_units(task, metric, value, text):
    assert metric_text(task, metric, value) == text


def test_spectral_finetune_and_quantize_write_curves_and_resolved_values(tmp_path, capsys):
    ft, q = tmp_path / "ft", tmp_path / "q"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
                 "--folds", "2", "--epochs", "1", "--max-records", "3", "--out", str(ft)]) == 0
    err = capsys.readouterr().err
    assert len(re.findall(r"^hr fold \d/2 .*MAE \d+\.\d\d BPM .* held-out windows", err, re.M)) == 2, err  # per fold
    r = yaml.safe_load((ft / "config.yaml").read_text())["resolved"]
    assert r["datasets"] == ["synthetic"] and r["fs"] > 0 and r["folds"] == 2
    assert (ft / "training_curve.png").is_file()
    assert main(["quantize", "--model", str(ft), "--student", "spec_student_xs", "--data", "synthetic",
                 "--epochs", "1", "--qat-epochs", "1", "--no-progress", "--out", str(q)]) == 0
    r = yaml.safe_load((q / "config.yaml").read_text())["resolved"]
    assert r["heldout_subjects"] and r["teacher"].endswith("model.pt") and r["epochs"] == 1
    assert (q / "training_curve.png").is_file()


def test_out_and_force_are_keys_of_a_train_config_file(tmp_path, capsys):
    """`out:` and `force:` in a --config file were "unknown key" in train pretrain / finetune, while quantize, export,
    bench, predict, data pairs and demo took them (the README: a key is the flag's name). The flag still wins."""
    cfg = tmp_path / "ft.yaml"
    text = (f"task: hr\nmodel: spec_student_xs\ndata: synthetic\nmax_records: 3\nfolds: 2\nepochs: 1\n"
            f"progress: false\nout: {tmp_path / 'run'}\n")
    cfg.write_text(text)
    assert main(["train", "finetune", "--config", str(cfg)]) == 0 and (tmp_path / "run" / "metrics.json").is_file()
    assert main(["train", "finetune", "--config", str(cfg)]) == 1               # a finished run there: refused
    assert "holds a finished train finetune run" in capsys.readouterr().err
    cfg.write_text(text + "force: true\n")
    assert main(["train", "finetune", "--config", str(cfg)]) == 0
    assert main(["train", "finetune", "--config", str(cfg), "--out", str(tmp_path / "flag")]) == 0
    assert (tmp_path / "flag" / "metrics.json").is_file()


def test_a_resume_says_whose_run_it_is_and_refuses_another_out(tmp_path, capsys):
    """`train finetune --resume QUANTIZE_RUN` said "unknown key 'teacher'"; `--resume RUN --out OTHER` went on in RUN
    and ignored --out without a word. Each is one line now."""
    run = tmp_path / "ft"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
                 "--max-records", "3", "--folds", "2", "--epochs", "1", "--progress", "false", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "finetune", "--resume", str(run), "--out", str(tmp_path / "other")]) == 1
    assert capsys.readouterr().err.strip() == (f"sqtool: error: --resume {run} continues that run in its own folder: "
                                               f"drop --out {tmp_path / 'other'} (a run elsewhere is a new run, "
                                               "without --resume)")
    assert not (tmp_path / "other").exists()
    assert main(["quantize", "--resume", str(run)]) == 1
    assert capsys.readouterr().err.strip() == (f"sqtool: error: cannot resume {run} here: it is a `sqtool train "
                                               f"finetune` run; continue it with `sqtool train finetune --resume {run}`")


def test_finetune_under_torchrun_says_it_runs_in_one_process(tmp_path, capsys, monkeypatch):
    """Under torchrun each rank started the same fine-tune: every rank but one said its folder was "in use by another
    sqtool run". One line now, before any folder."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
                 "--out", str(tmp_path / "ft")]) == 1
    assert capsys.readouterr().err.strip() == ("sqtool: error: train finetune runs in one process (its folds are small; "
                                               "torchrun is for train pretrain): run it without torchrun")
    assert not (tmp_path / "ft").exists()


@pytest.mark.parametrize("args", [
    ["--task", "hr", "--model", "spec_student_xs"],                             # the spectral heart-rate fine-tune
    ["--task", "af", "--model", "resnet1d_siamq_tiny"],                         # a time-domain one
    ["--task", "rr", "--model", "rr_spec"],                                     # a front-end model's
])
def test_finetune_records_the_torch_threads_its_sums_ran_on(tmp_path, args):
    """A training's float sums split by thread, so the same config and seed give other weights at another thread
    count (README); config.yaml's resolved: now says the count (and torch's version) the run trained on, so a
    re-run from it can match bit for bit. It said neither: a user re-running a run's config.yaml on another
    machine got other weights with nothing in the run to say why."""
    import torch

    from sqtool.core.runs import torch_threads
    out = tmp_path / "ft"
    with torch_threads(2):
        assert main(["train", "finetune", *args, "--data", "synthetic", "--max-records", "4", "--folds", "2",
                     "--epochs", "1", "--bootstrap", "10", "--progress", "false", "--out", str(out)]) == 0
    r = yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    assert r["torch_threads"] == 2 and r["torch"] == torch.__version__


def test_pretrain_records_the_torch_threads_too(tmp_path):
    import torch

    from sqtool.core.runs import torch_threads
    out = tmp_path / "pt"
    with torch_threads(2):
        assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--epochs", "1",
                     "--batch-size", "32", "--val-fraction", "0", "--progress", "false", "--out", str(out)]) == 0
    r = yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    assert r["torch_threads"] == 2 and r["torch"] == torch.__version__
