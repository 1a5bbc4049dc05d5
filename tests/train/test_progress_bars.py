"""Bars are drawn only on a terminal: with stderr redirected to a file (CI logs, `2>log`) a training command
writes no tqdm bar, even with --progress on (its default); the per-item lines still come."""
import sys

from sqtool.cli import main


def _no_bar(err: str) -> None:
    assert "\r" not in err and "%|" not in err, err[:300]


def test_pretrain_draws_no_bar_into_a_file(tmp_path, capfd):
    assert main(["train", "pretrain", "--synthetic-pairs", "64", "--batch-size", "16", "--epochs", "1",
                 "--val-fraction", "0", "--out", str(tmp_path / "pt")]) == 0
    _no_bar(capfd.readouterr().err)


def test_finetune_draws_no_bar_into_a_file(tmp_path, tiny_pretrained, capfd):
    assert main(["train", "finetune", "--task", "hr", "--model", str(tiny_pretrained), "--data", "synthetic",
                 "--folds", "2", "--epochs", "1", "--bootstrap", "10", "--out", str(tmp_path / "ft")]) == 0
    err = capfd.readouterr().err
    _no_bar(err)
    assert "hr fold 1/2" in err                                        # the per-item lines are not bars


def test_pairs_draws_no_bar_into_a_file(tmp_path, capfd):
    from sqtool.data.pairs import PairsConfig, mine_pairs
    mine_pairs(PairsConfig(data_root="synthetic", synthetic_subjects=2, synthetic_duration_s=120,
                           out=str(tmp_path / "p"), workers=1), progress=True)
    _no_bar(capfd.readouterr().err)


def test_bars_follow_the_terminal(monkeypatch):
    from sqtool.core.progress import bars_on
    class Tty:
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stderr", Tty())
    assert bars_on(True) and not bars_on(False)
    monkeypatch.setattr(sys, "stderr", object())                       # no isatty at all: off
    assert not bars_on(True)
