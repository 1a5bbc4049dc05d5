"""`train finetune --resume RUN` for spectral heart-rate models: killed while training fold 2, the run continues
from its saved fold logits and ends bit for bit where an uninterrupted run ends (metrics, oof_logits.npz,
model.pt); a fold file made with another config is refused."""
import json

import numpy as np
import pytest
import torch

import sqtool.models.hr_bins as HB
from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from sqtool.core.trainlog import LOG_FILE, read_log
from test_trainlog import same_log

ARGS = ["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
        "--max-records", "4", "--folds", "3", "--epochs", "1"]      # 3 training subjects, 1 held out


def _counting_train(monkeypatch, kill_at: int | None = None) -> list:
    calls, real = [], HB.train_bins

    def train(*a, **kw):
        calls.append(len(a[1]))
        if kill_at is not None and len(calls) == kill_at:
            raise KeyboardInterrupt                                  # Ctrl-C / a kill in the middle of this fit
        return real(*a, **kw)
    monkeypatch.setattr(HB, "train_bins", train)
    return calls


def test_spectral_finetune_resumes_at_fold_level_bit_exact(tmp_path, monkeypatch, capsys):
    calls = _counting_train(monkeypatch)
    assert main(ARGS + ["--out", str(tmp_path / "full")]) == 0
    assert len(calls) == 4                                           # 3 folds + the final model
    full_calls = list(calls)
    rows, m = read_log(tmp_path / "full" / LOG_FILE), json.loads((tmp_path / "full" / "metrics.json").read_text())
    folds = [r for r in rows if r["fit"] != "final fit"]             # each fold's held-out subject after each epoch:
    assert folds and {r["metric"] for r in folds} == {"argmax_mae_bpm"} and all(float(r["val_loss"]) > 0 for r in folds)
    last = [[r for r in folds if r["fit"] == f"fold {i}"][-1] for i in (1, 2, 3)]    # its per-window argmax MAE
    assert sorted(float(r["val_metric"]) for r in last) == pytest.approx(
        sorted(p["mae_raw_bpm"] for p in m["per_subject"]))
    assert all(r["val_metric"] == "" for r in rows if r["fit"] == "final fit")

    _counting_train(monkeypatch, kill_at=2)                          # killed while training fold 2
    run = tmp_path / "killed"
    assert main(ARGS + ["--out", str(run)]) == 130
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_000.npz"]
    assert not (run / "model.pt").exists() and not (run / "metrics.json").exists()

    calls = _counting_train(monkeypatch)
    assert main(["train", "finetune", "--resume", str(run)]) == 0
    assert calls == full_calls[1:]                                   # fold 1 reused, not retrained
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert b["resumed_folds"] == [0] and a["resumed_folds"] == []
    for k in set(a) | set(b):
        if k not in ("wall_s", "resumed_folds", "model"):
            assert a[k] == b[k], k
    with np.load(tmp_path / "full" / "oof_logits.npz") as za, np.load(run / "oof_logits.npz") as zb:
        assert za.files == zb.files
        for f in za.files:
            np.testing.assert_array_equal(za[f], zb[f])
    sa = load_checkpoint(tmp_path / "full" / "model.pt")["state_dict"]
    sb = load_checkpoint(run / "model.pt")["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    same_log(tmp_path / "full", run)                                 # log.csv: a row per epoch per fit, as if whole

    capsys.readouterr()                                              # another config: refused, not mixed in
    assert main(["train", "finetune", "--resume", str(run), "--lr", "0.01"]) == 1
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("sqtool:")]   # not progress
    assert len(err) == 1 and "changed config (lr: 0.001 -> 0.01)" in err[0]              # names the key


def test_a_resume_after_its_init_encoder_was_retrained_is_refused(tmp_path, monkeypatch, capsys):
    """Killed while training fold 2, its --init pretraining then run again into the same folder (--force): `--resume`
    reused fold 1 (the old encoder's) and trained fold 2 and model.pt from the new one, exit 0. The fold files are
    keyed by the --init checkpoint's sha256 too: one line naming it, nothing mixed."""
    pairs, pt = tmp_path / "pairs", tmp_path / "pt"
    assert main(["data", "pairs", "--data", "synthetic", "--model", "spec_student_xs", "--synthetic-subjects", "3",
                 "--workers", "1", "--no-progress", "--out", str(pairs)]) == 0
    pre = ["train", "pretrain", "--model", "spec_student_xs", "--pairs", str(pairs), "--batch-size", "8",
           "--val-fraction", "0", "--no-progress", "--out", str(pt)]
    assert main(pre + ["--epochs", "1"]) == 0
    _counting_train(monkeypatch, kill_at=2)
    run = tmp_path / "ft"
    assert main(ARGS + ["--init", str(pt), "--out", str(run)]) == 130
    monkeypatch.undo()
    assert main(pre + ["--epochs", "2", "--force"]) == 0                  # another encoder, the same path
    capsys.readouterr()
    assert main(["train", "finetune", "--resume", str(run)]) == 1
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("sqtool:")]
    assert len(err) == 1 and (f"fold_000.npz was made with other inputs: its --init checkpoint {pt} was rewritten "
                              "since it started (sha256 ") in err[0], err                 # names the checkpoint
    assert not (run / "model.pt").exists()
