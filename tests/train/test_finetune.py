"""Fine-tuning: real TROIKA heart rate with LOSO folds and CIs, teacher_task checkpoint, OOF predictions,
linear probe, multi-channel stem init, and every bad input as one clear error."""
import json

import numpy as np
import pytest
import torch

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.models import create_model
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
from sqtool.train.finetune import FinetuneConfig, init_encoder, run_finetune

FAST = dict(model="", epochs=1, batch_size=64, progress=False, bootstrap=100)


def test_finetune_hr_on_troika_from_pretrained(tmp_path, data_root, tiny_pretrained, capsys):
    rc = main(["train", "finetune", "--task", "hr", "--init", str(tiny_pretrained), "--data", str(data_root),
               "--epochs", "1", "--max-records", "3", "--bootstrap", "100", "--progress", "false",
               "--out", str(tmp_path)])
    assert rc == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("init: ")]   # the encoder it starts from
    assert len(said) == 1 and str(tiny_pretrained) in said[0] and "teacher_pretrain" in said[0] and " steps over " in said[0]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["task"] == "hr" and m["pretrained"] and m["folds"] == "leave-one-subject-out" and m["n_folds"] == 2
    assert m["heldout_subjects"] == ["03"] and m["subjects"] == 2         # the last 0.2 of 3: out of every fit
    lo, hi = m["ci95"]["mae"]
    assert 0 < lo <= m["mae"] <= hi and m["dataset"] == "troika"
    cl = m["skill"]["classic"]                                            # the spectral baseline on these windows
    assert cl["name"].startswith("PPG spectral peak") and 0 < cl["metrics"]["mae"] < 100
    ck = load_checkpoint(tmp_path, expect_kind="teacher_task")
    mc = ck["model_cfg"]
    assert (mc["task"], mc["fs"], mc["window_s"], mc["hop_s"], mc["channels"]) == ("hr", 40.0, 8.0, 2.0, ["ppg"])
    assert mc["outputs"] == ["hr_bpm"] and mc["units"] == ["bpm"] and 40 < mc["target_mean"][0] < 200
    model = create_model(mc["name"], **{k: v for k, v in mc.items() if k not in ("name", "family")})
    model.load_state_dict(ck["state_dict"])
    oof = np.load(tmp_path / "oof_predictions.npz")
    assert set(oof.files) >= {"groups", "t0", "y", "pred"} and oof["pred"].shape == oof["y"].shape
    assert np.isfinite(oof["pred"]).all() and set(oof["groups"]) == {"01", "02"}
    assert ck["train_cfg"]["heldout_subjects"] == ["03"]                 # what quantize takes by default
    assert np.mean(np.abs(oof["pred"] - oof["y"])) == pytest.approx(m["mae"], rel=1e-5)


def test_linear_probe_classification_on_synthetic(tmp_path, tiny_pretrained):
    m = run_finetune(FinetuneConfig(**{**FAST, "task": "af", "init": str(tiny_pretrained), "mode": "linear",
                                       "data_root": "synthetic", "folds": 4, "epochs": 3}), tmp_path)
    assert m["n_folds"] == 4 and len(m["per_fold"]) == 4
    # the pooled metrics are those of the saved out-of-fold predictions (checked against sklearn), and every
    # window was predicted by exactly one fold that did not train on its subject
    from sklearn.metrics import f1_score, roc_auc_score
    with np.load(tmp_path / "oof_predictions.npz") as z:
        y, pred, fold, groups = z["y"][:, 0], z["pred"][:, 0], z["fold"], z["groups"]
    assert np.isfinite(pred).all() and set(fold.tolist()) == {0, 1, 2, 3}
    assert m["f1_weighted"] == pytest.approx(f1_score(y, pred > 0, average="weighted"), abs=1e-9)
    assert m["metrics"]["auroc"] == pytest.approx(roc_auc_score(y, pred), abs=1e-9)
    for f in m["per_fold"]:
        assert set(groups[fold == f["fold"]].tolist()) == set(f["test_subjects"])
    ck = load_checkpoint(tmp_path, expect_kind="teacher_task")
    pre = load_checkpoint(tiny_pretrained)["state_dict"]
    # linear mode: the encoder is exactly the pretrained one
    assert all(torch.equal(ck["state_dict"][k], v) for k, v in pre.items() if k.startswith("encoder.")
               and "num_batches" not in k)


def test_one_batch_and_ten_epochs_a_fold_trains(tmp_path, tiny_pretrained):
    # 10 optimiser steps a fold: torch's one-cycle schedule divided by zero at its one-step warm-up
    m = run_finetune(FinetuneConfig(**{**FAST, "task": "af", "init": str(tiny_pretrained), "mode": "linear",
                                       "data_root": "synthetic", "folds": 2, "epochs": 10,
                                       "batch_size": 100_000}), tmp_path)
    assert m["n_folds"] == 2 and np.isfinite(m["metrics"]["auroc"])


def test_multichannel_stem_starts_as_the_ppg_model(tiny_pretrained):
    ck = load_checkpoint(tiny_pretrained)
    one = create_model("resnet1d_siamq_tiny", task="hr", outputs=("hr_bpm",), window_s=8.0).eval()
    many = create_model("resnet1d_siamq_tiny", task="hr", outputs=("hr_bpm",), window_s=8.0,
                        channels=("ppg", "acc_x", "acc_y")).eval()
    init_encoder(one, ck)
    init_encoder(many, ck)
    x = torch.rand(2, 3, 320)
    with torch.no_grad():
        assert torch.allclose(one.encoder(x[:, :1]), many.encoder(x), atol=1e-6)


def test_bad_inputs_are_one_clear_error(tmp_path, tiny_pretrained, data_root):
    def ft(**kw):
        return run_finetune(FinetuneConfig(**{**FAST, "data_root": "synthetic", **kw}), tmp_path)
    with pytest.raises(SqtoolError, match="resnet1d_siamq_tiny model but --model asks for resnet1d_siamq_18"):
        ft(init=str(tiny_pretrained), model="resnet1d_siamq_18")
    with pytest.raises(SqtoolError, match="trained on 40 Hz input but the task input is 100 Hz"):
        ft(init=str(tiny_pretrained), fs=100.0)
    with pytest.raises(SqtoolError, match="not found"):
        ft(init=str(tmp_path / "nope.pt"))
    save_checkpoint(tmp_path / "student.pt", kind="student_float", model_cfg={"name": "x"}, state_dict={})
    with pytest.raises(SqtoolError, match="student_float checkpoint; expected teacher_pretrain or teacher_task"):
        ft(init=str(tmp_path / "student.pt"))
    with pytest.raises(SqtoolError, match="unknown task"):
        ft(task="spo2")
    with pytest.raises(SqtoolError, match="needs the troika dataset"):
        ft(task="hr", data_root=str(tmp_path))
    with pytest.raises(SqtoolError, match="no channel ppg2"):
        ft(task="hr", channels=["ppg", "ppg2"])
    with pytest.raises(SqtoolError, match="mode must be"):
        ft(mode="half")
    with pytest.raises(SqtoolError, match="no synthetic version"):
        ft(task="bp")
    assert main(["train", "finetune", "--task", "hr", "--init", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()                      # checked before the run directory is made


@pytest.mark.parametrize("flag", ["--model", "--init"])
def test_the_init_checkpoint_is_read_once(tmp_path, tiny_pretrained, monkeypatch, flag):
    import sqtool.core.checkpoint as C
    real, read = C.load_checkpoint, []

    def counting(path, *a, **kw):
        ck = real(path, *a, **kw)
        read.append(ck["path"])
        return ck
    monkeypatch.setattr(C, "load_checkpoint", counting)
    assert main(["train", "finetune", "--task", "hr", flag, str(tiny_pretrained), "--data", "synthetic", "--folds",
                 "2", "--epochs", "1", "--mode", "linear", "--bootstrap", "10", "--max-records", "3", "--no-progress",
                 "--out", str(tmp_path / "ft")]) == 0
    assert read.count(str(tiny_pretrained / "model.pt")) == 1, read


@pytest.mark.parametrize("model", ["cnn1d_student_s", "spec_student_xs"])
def test_linear_mode_of_a_model_without_encoder_and_head_is_one_line_before_any_data(model, tmp_path, capsys,
                                                                                      monkeypatch):
    import sqtool.data.tasks as T
    import sqtool.train.finetune_hr as FH

    def no_data(*a, **kw):
        raise AssertionError("data read before the mode was refused")
    monkeypatch.setattr(T, "load_task", no_data)
    monkeypatch.setattr(FH, "hr_corpus", no_data)
    assert main(["train", "finetune", "--task", "hr", "--model", model, "--mode", "linear", "--data", "synthetic",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--mode linear freezes an encoder and fits a head: {model}" in err[0], err
    assert "resnet1d models do); use --mode full" in err[0]
    assert not (tmp_path / "o").exists()
    cfg = FinetuneConfig(**{**FAST, "model": model, "mode": "linear", "data_root": "synthetic"})
    with pytest.raises(SqtoolError, match="has no such split"):                 # the library entries too
        (FH.run_finetune_hr if model.startswith("spec_") else run_finetune)(cfg, tmp_path / "lib")


def test_a_window_of_no_whole_samples_is_one_line_before_any_data(tmp_path, monkeypatch):
    import sqtool.data.tasks as T

    def no_data(*a, **kw):
        raise AssertionError("data read before the window was refused")
    monkeypatch.setattr(T, "load_task", no_data)
    with pytest.raises(SqtoolError, match=r"fs \* window_s = 330.4 is not a whole number of samples"):
        run_finetune(FinetuneConfig(**{**FAST, "fs": 41.3, "data_root": "synthetic"}), tmp_path)


BAD_VALUES = [("--epochs=-3", {"epochs": -3}), ("--lr=0", {"lr": 0.0}), ("--batch-size=1", {"batch_size": 1}),
              ("--fs=-1", {"fs": -1.0}), ("--window-s=1e6", {"window_s": 1e6}), ("--hop-s=-2", {"hop_s": -2.0}),
              ("--task=spo2", {"task": "spo2"})]


@pytest.mark.parametrize("model", ["", "spec_student_xs"])
@pytest.mark.parametrize("flag, kw", BAD_VALUES, ids=[f for f, _ in BAD_VALUES])
def test_the_library_entries_refuse_what_the_cli_refuses(flag, kw, model, tmp_path, capsys, monkeypatch):
    """FinetuneConfig.validate() holds the CLI's value checks: run_finetune_hr(epochs=-3) trained and returned
    where `sqtool train finetune --epochs -3` refuses; now both say the same line before any data is read."""
    import sqtool.data.tasks as T
    import sqtool.train.finetune_hr as FH

    def no_data(*a, **k):
        raise AssertionError("data read before the bad value was refused")
    monkeypatch.setattr(T, "load_task", no_data)
    monkeypatch.setattr(FH, "hr_corpus", no_data)
    argv = ["train", "finetune", "--data", "synthetic", *(["--model", model] if model else []), flag]
    assert main(argv + ["--out", str(tmp_path / "cli")]) == 1
    cli = capsys.readouterr().err.strip()
    cfg = FinetuneConfig(**{**FAST, "model": model, "data_root": "synthetic", **kw})
    with pytest.raises(SqtoolError) as e:
        (FH.run_finetune_hr if model else run_finetune)(cfg, tmp_path / "lib")
    assert cli == f"sqtool: error: {e.value}", cli


@pytest.mark.parametrize("model", ["", "spec_student_xs"])
def test_each_path_validates_the_config_once(model, tmp_path, capsys, monkeypatch):
    """The CLI validated before making the run folder and the library entry validated again; now the CLI hands
    its prepared config on (prepared=True) and a direct library call prepares it itself: once on either path."""
    import sqtool.data.tasks as T
    import sqtool.train.finetune_hr as FH
    calls = []
    real = FinetuneConfig.validate

    def counted(self, *a, **k):
        calls.append(self.model)
        return real(self, *a, **k)

    def stop(*a, **k):
        raise SqtoolError("stopped at the data")
    monkeypatch.setattr(FinetuneConfig, "validate", counted)
    monkeypatch.setattr(T, "load_task", stop)
    monkeypatch.setattr(FH, "hr_corpus", stop)
    argv = ["train", "finetune", "--data", "synthetic", *(["--model", model] if model else [])]
    assert main(argv + ["--out", str(tmp_path / "cli")]) == 1
    assert capsys.readouterr().err.strip() == "sqtool: error: stopped at the data"
    assert calls == [model]
    calls.clear()
    with pytest.raises(SqtoolError, match="stopped at the data"):
        (FH.run_finetune_hr if model else run_finetune)(FinetuneConfig(**{**FAST, "model": model,
                                                                           "data_root": "synthetic"}), tmp_path / "lib")
    assert calls == [model]


def _spectral_pretrain_run(folder):
    from sqtool.models import get_model_cfg
    cfg = get_model_cfg("spec_student_xs", task="pretrain")
    folder.mkdir(parents=True)
    save_checkpoint(folder / "model.pt", kind="teacher_pretrain", model_cfg=cfg.to_dict(),
                    state_dict=create_model(cfg).state_dict())
    return folder


def test_run_finetune_hr_takes_a_pretrained_run_folder_as_model_as_the_cli_does(tmp_path, monkeypatch,
                                                                                  tiny_pretrained):
    """FinetuneConfig.model documents 'a pretrained run folder / checkpoint file (then the same as --init)'; only
    the CLI translated it, the library said "unknown model '/...'"."""
    import sqtool.models.spectral as S
    import sqtool.train.finetune_hr as FH
    real, loads = S.load_encoder, []
    monkeypatch.setattr(S, "load_encoder", lambda *a, **k: (loads.append(1), real(*a, **k))[1])
    run = _spectral_pretrain_run(tmp_path / "pretrain")
    cfg = FinetuneConfig(**{**FAST, "model": str(run), "data_root": "synthetic", "folds": 2, "max_records": 3,
                            "bootstrap": 10})
    FH.run_finetune_hr(cfg, tmp_path / "ft", log=lambda *a: None)
    train_cfg = load_checkpoint(tmp_path / "ft" / "model.pt")["train_cfg"]
    assert (train_cfg["model"], train_cfg["init"]) == ("spec_student_xs", str(run))     # = --model X --init RUN
    assert len(loads) == 3                                                  # two folds and the final model
    with pytest.raises(SqtoolError, match="is a checkpoint and --init .* another; give one of them"):
        FH.run_finetune_hr(FinetuneConfig(**{**FAST, "model": str(run), "init": str(tiny_pretrained)}), tmp_path)
    with pytest.raises(SqtoolError, match="time-domain encoder, not a spectral heart-rate model"):
        FH.run_finetune_hr(FinetuneConfig(**{**FAST, "model": str(tiny_pretrained)}), tmp_path)


def test_run_finetune_takes_a_pretrained_run_folder_as_model_too(tmp_path, tiny_pretrained):
    m = run_finetune(FinetuneConfig(**{**FAST, "task": "af", "model": str(tiny_pretrained), "mode": "linear",
                                       "data_root": "synthetic", "folds": 2, "max_records": 3, "bootstrap": 10}),
                     tmp_path / "ft")
    ck = load_checkpoint(tmp_path / "ft" / "model.pt")
    assert ck["train_cfg"]["init"] == str(tiny_pretrained) and ck["model_cfg"]["name"] == "resnet1d_siamq_tiny", m
