"""`train finetune` starting from a pretrain that did not finish: a `train pretrain --force` into a finished run's
folder, killed part-way, leaves that run's model.pt beside its own last.pt (its metrics.json, what ends a run, gone:
core.runs.unfinish). --init RUN, --model RUN and --init RUN/last.pt started from it, an encoder the folder no longer
holds the run of; they are refused in one line naming the run and the --resume that finishes it, as quantize refuses
a killed fine-tune's teacher (core.checkpoint.load_checkpoint(finished=True)). A pretrain that stopped itself
(--max-steps) wrote its model.pt with its metrics.json and is still read."""
from __future__ import annotations

import pytest

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from sqtool.train.finetune import init_line

PRETRAIN = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--batch-size", "16",
            "--progress", "false", "--val-fraction", "0"]
FINETUNE = ["train", "finetune", "--task", "hr", "--data", "synthetic", "--folds", "2", "--epochs", "1",
            "--bootstrap", "10", "--no-progress"]


@pytest.fixture(scope="module")
def killed_pretrain(tmp_path_factory):
    """A finished 1-epoch pretrain, then a --force'd 3-epoch run into its folder interrupted in its 2nd epoch (after
    the last.pt of step 4): the earlier model.pt, this run's last.pt and config.yaml, no metrics.json."""
    from sqtool.train import loop
    out = tmp_path_factory.mktemp("killed") / "pt"
    assert main(PRETRAIN + ["--epochs", "1", "--out", str(out)]) == 0
    real, n = loop.simsiam_loss, [0]

    def loss(*a):
        n[0] += 1
        if n[0] == 6:
            raise KeyboardInterrupt
        return real(*a)
    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "simsiam_loss", loss)
    try:
        assert main(PRETRAIN + ["--epochs", "3", "--ckpt-every", "2", "--out", str(out), "--force"]) == 130
    finally:
        mp.undo()
    assert (out / "model.pt").is_file() and (out / "last.pt").is_file() and not (out / "metrics.json").exists()
    return out


@pytest.mark.parametrize("how", [["--init", "{run}"], ["--model", "{run}"], ["--init", "{run}/last.pt"],
                                 ["--model", "spec_student_xs", "--init", "{run}"]],
                         ids=["init", "model", "last.pt", "spectral-init"])
def test_finetune_refuses_an_unfinished_pretrain(killed_pretrain, tmp_path, capsys, how):
    run = killed_pretrain
    capsys.readouterr()
    argv = FINETUNE + [a.format(run=run) for a in how] + ["--out", str(tmp_path / "ft")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (f"sqtool: error: {run} has no metrics.json: an unfinished `sqtool train pretrain` run (killed?): "
                   f"continue it with `sqtool train pretrain --resume {run}`\n"), err
    assert not (tmp_path / "ft").exists()


def test_a_pretrain_stopped_at_its_max_steps_is_read(tmp_path):
    """--max-steps stops a run on purpose: model.pt and metrics.json (`status: stopped (max_steps)`) are written
    together, and the fine-tune's init line shows that status."""
    out = tmp_path / "pt"
    assert main(PRETRAIN + ["--epochs", "2", "--max-steps", "3", "--out", str(out)]) == 0
    ck = load_checkpoint(out, expect_kind="teacher_pretrain", finished=True)
    assert "stopped (max_steps)" in init_line(ck)
