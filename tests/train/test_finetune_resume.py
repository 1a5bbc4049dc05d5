"""`train finetune --resume RUN`: killed during fold 2, the run continues from its saved folds and ends bit for
bit where an uninterrupted run ends (metrics, out-of-fold predictions, model.pt); a fold file made with another
config is refused."""
import dataclasses
import json

import numpy as np
import pytest
import torch

import sqtool.train.finetune as FT
from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint

ARGS = ["train", "finetune", "--task", "af", "--model", "resnet1d_siamq_tiny", "--data-root", "synthetic",
        "--epochs", "1", "--batch-size", "16", "--max-records", "6", "--folds", "3", "--bootstrap", "20",
        "--progress", "false"]


def _counting_fit(monkeypatch, kill_at: int | None = None) -> list:
    calls, real = [], FT._fit

    def fit(*a, **kw):
        calls.append(kw.get("desc"))
        if kill_at is not None and len(calls) == kill_at:
            raise KeyboardInterrupt                                  # Ctrl-C / a kill in the middle of this fit
        return real(*a, **kw)
    monkeypatch.setattr(FT, "_fit", fit)
    return calls


def test_finetune_resumes_at_fold_level_bit_exact(tmp_path, monkeypatch, capsys):
    calls = _counting_fit(monkeypatch)
    assert main(ARGS + ["--out", str(tmp_path / "full")]) == 0
    assert len(calls) == 4                                           # 3 folds + the final model

    calls = _counting_fit(monkeypatch, kill_at=2)                    # killed while training fold 2
    run = tmp_path / "killed"
    assert main(ARGS + ["--out", str(run)]) == 130
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_000.npz"]
    assert not (run / "model.pt").exists() and not (run / "metrics.json").exists()

    calls = _counting_fit(monkeypatch)
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 0
    assert calls == ["af fold 2/3", "af fold 3/3", "af final"]      # fold 1 reused, not retrained
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert b["resumed_folds"] == [0] and a["resumed_folds"] == []
    for k in set(a) | set(b):
        if k not in ("elapsed_s", "resumed_folds"):
            assert a[k] == b[k], k
    with np.load(tmp_path / "full" / "oof_predictions.npz") as za, np.load(run / "oof_predictions.npz") as zb:
        np.testing.assert_array_equal(za["pred"], zb["pred"])
        np.testing.assert_array_equal(za["fold"], zb["fold"])
    sa = load_checkpoint(tmp_path / "full")["state_dict"]
    sb = load_checkpoint(run)["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    # another config (here: another learning rate) is refused naming the key, before anything is read
    capsys.readouterr()
    assert main(["train", "finetune", "--resume", str(run), "--lr", "0.01", "--epochs", "5", "--progress", "false"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed config (epochs: 1 -> 5, lr: 0.001 -> 0.01)" in err[0], err
    assert "only --progress, --bootstrap, --final-fit, --calibrate-on, --layout, --tensorboard may change" in err[0]
    # ... and a fold file from another config is refused by the fold's key, never mixed in, naming the key
    from sqtool.core.runs import saved_config
    other = dataclasses.replace(saved_config(FT.FinetuneConfig, run, "finetune"), lr=0.01)
    with pytest.raises(SqtoolError, match=r"fold_000.npz was made with other inputs: its config changed "
                                          r"\(lr: 0.001 -> 0.01\); restore it, or start a new run"):
        FT.run_finetune(other, run, resume=True)


def test_resume_needs_a_finetune_run(tmp_path, capsys):
    assert main(["train", "finetune", "--resume", str(tmp_path / "nope")]) == 1
    assert "cannot resume" in capsys.readouterr().err
    assert FT.load_fold(tmp_path, 0, "k", np.arange(3)) is None                 # no file: the fold is trained
    FT.fold_path(tmp_path, 0).parent.mkdir()
    FT.fold_path(tmp_path, 0).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SqtoolError, match="fold_000.npz is unreadable"):
        FT.load_fold(tmp_path, 0, "k", np.arange(3))


def test_a_run_interrupted_before_subjects_were_held_out_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """A time-domain fine-tune holds its held-out subjects out of every fold, so a run killed before that change
    (its config says nothing of them, its fold files span every subject) cannot be resumed into the new rule: the
    first fold file's key (the training subjects' data) is refused in one line, never mixed in."""
    from sqtool.core.runs import saved_yaml
    import yaml
    _counting_fit(monkeypatch, kill_at=2)
    run = tmp_path / "old"
    assert main(ARGS + ["--heldout-fraction", "0", "--out", str(run)]) == 130     # folds over all 6 subjects
    saved = saved_yaml(run)
    saved["config"]["heldout_fraction"] = None                     # what a run from before the rule recorded
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    capsys.readouterr()
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fold_000.npz was made with other inputs: its held-out subjects changed (none -> " \
        in err[0], err


def test_the_fold_key_hashes_the_data_the_held_out_options_leave_not_the_options():
    """Holding none out (--heldout-fraction 0, what the benchmarks pass) keys a fold as before the options existed,
    so their --work folders' finished folds are still reused; another held-out set changes the data, so the key."""
    from types import SimpleNamespace as NS
    td = NS(x=np.zeros((4, 1, 8), np.float32), y=np.zeros((4, 1), np.float32), groups=np.array(["a", "a", "b", "c"]))
    folds = [(np.array([0, 1]), np.array([2, 3]))]
    cfg = FT.FinetuneConfig(task="af", heldout_fraction=0)
    assert FT.fold_key(cfg, td, folds) == FT.fold_key(FT.FinetuneConfig(task="af"), td, folds)
    fewer = NS(x=td.x[:3], y=td.y[:3], groups=td.groups[:3])
    assert FT.fold_key(cfg, fewer, folds) != FT.fold_key(cfg, td, folds)


def test_resuming_a_finished_finetune_writes_nothing_unless_a_reporting_option_changes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "done"
    assert main(ARGS + ["--out", str(run)]) == 0
    capsys.readouterr()
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    calls = _counting_fit(monkeypatch)
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 0
    out, err = capsys.readouterr()
    assert calls == []                                                # no fold read or trained again
    assert "has finished all its folds; nothing to resume" in err
    assert out.strip().splitlines()[-1].startswith("next: sqtool quantize --model")
    now = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert now == files                                               # config.yaml, metrics, model untouched

    calls = _counting_fit(monkeypatch)                                # a changed reporting option re-reports
    assert main(["train", "finetune", "--resume", str(run), "--bootstrap", "30", "--progress", "false"]) == 0
    assert calls == ["af final"]                                      # the folds reused, the final model again
