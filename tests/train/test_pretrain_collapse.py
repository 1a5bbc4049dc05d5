"""A collapsed SimSiam pretraining is said in one WARNING line (what it means, what to try), and the verdict
travels in model.pt, where a fine-tune's --init reads it (`train.collapse.init_collapse_warning`)."""
import json

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from sqtool.train.collapse import init_collapse_warning

ARGS = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--batch-size", "32", "--val-fraction", "0.25",
        "--progress", "false"]


def warnings_in(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("WARNING")]


def test_a_collapsed_run_warns_once_and_its_model_pt_says_so(tmp_path, capsys):
    """3 steps at the paper's lr 1e-4: the validation embeddings' std is far under the healthy 1/sqrt(64) (the
    audit's 6-step run: 0.0015 vs 0.125), and the run used to end on its ordinary summary with no word of it."""
    run = tmp_path / "pre"
    assert main(ARGS + ["--synthetic-pairs", "128", "--epochs", "1", "--lr", "0.0001", "--out", str(run)]) == 0
    said = capsys.readouterr()
    m = json.loads((run / "metrics.json").read_text())
    assert m["collapsed"] is True and m["global_step"] == 3
    warn = warnings_in(said.err) + warnings_in(said.out)
    assert len(warn) == 1, said
    line = warn[0]
    assert line.startswith(f"WARNING: SimSiam collapsed (val z std {m['val_z_std']:.4f} < 0.2 x the healthy ~0.125)")
    assert "nearly the same embedding" in line and "no better than --init none" in line
    assert "more steps (this run trained 3" in line and "a lower --lr (it was 0.0001)" in line
    assert "(its corpus: 0 real, 128 with a synthetic partner)" in line and line.endswith("or --pair-mode augment")
    nxt = [ln for ln in said.out.splitlines() if ln.startswith("next: ")]
    assert nxt == [f"next: sqtool train pretrain --resume {run} --epochs 4   (SimSiam collapsed: train further "
                   "first; the WARNING above names the other fixes)"]          # not a fine-tune from no features
    ck = load_checkpoint(run, expect_kind="teacher_pretrain")
    assert ck["metrics"]["collapsed"] is True                       # model.pt carries the verdict
    init = init_collapse_warning(ck)                                # what fine-tune --init prints
    assert init.startswith(f"WARNING: --init {run / 'model.pt'}: its SimSiam pretraining collapsed (val z std ")
    assert line.split(" collapsed ", 1)[1] == init.split(" collapsed ", 1)[1]    # the same advice
    ft = tmp_path / "ft"                                            # a fine-tune from it says so, once, and records it
    assert main(["train", "finetune", "--task", "hr", "--init", str(run), "--data", "synthetic", "--folds", "2",
                 "--epochs", "1", "--mode", "linear", "--bootstrap", "10", "--max-records", "3", "--no-progress",
                 "--out", str(ft)]) == 0
    said = capsys.readouterr()
    assert warnings_in(said.err) + warnings_in(said.out) == [init]
    assert json.loads((ft / "metrics.json").read_text())["init_collapsed"] is True


def test_a_finished_collapsed_run_resumed_offers_more_steps_and_they_run(tmp_path, capsys):
    """`--resume RUN` of a finished collapsed run says nothing is left and offers the resume to more epochs, which
    trains (the line is a command that works)."""
    run = tmp_path / "pre"
    assert main(ARGS + ["--synthetic-pairs", "128", "--epochs", "1", "--lr", "0.0001", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "pretrain", "--resume", str(run), "--progress", "false"]) == 0
    said = capsys.readouterr()
    assert "has trained all its 1 epochs" in said.err
    nxt = [ln for ln in said.out.splitlines() if ln.startswith("next: ")]
    assert len(nxt) == 1 and nxt[0].startswith(f"next: sqtool train pretrain --resume {run} --epochs 4   ("), nxt
    assert main(nxt[0][len("next: "):].split("   (")[0].split()[1:] + ["--progress", "false"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs_done"] == 4


def test_a_healthy_run_says_nothing(tmp_path, capsys):
    run = tmp_path / "pre"
    assert main(ARGS + ["--synthetic-pairs", "192", "--epochs", "3", "--lr", "0.05", "--out", str(run)]) == 0
    said = capsys.readouterr()
    assert warnings_in(said.err) + warnings_in(said.out) == []
    assert [ln for ln in said.out.splitlines() if ln.startswith("next: ")][0].startswith("next: sqtool train finetune")
    ck = load_checkpoint(run)
    assert ck["metrics"]["collapsed"] is False and init_collapse_warning(ck) is None


def test_init_warning_needs_a_pretraining_that_recorded_a_collapse():
    """No init, another kind of checkpoint, a pretraining that stopped before validating or predates the flag:
    no line."""
    assert init_collapse_warning(None) is None
    assert init_collapse_warning({"kind": "teacher_task", "metrics": {"collapsed": True}}) is None
    assert init_collapse_warning({"kind": "teacher_pretrain", "metrics": {"collapsed": False}}) is None
    assert init_collapse_warning({"kind": "teacher_pretrain"}) is None
    line = init_collapse_warning({"kind": "teacher_pretrain", "path": "r/model.pt", "train_cfg": {"lr": 0.05},
                                  "metrics": {"collapsed": True, "pair_mode": "augment"}})
    assert line == ("WARNING: --init r/model.pt: its SimSiam pretraining collapsed (val z std far under the healthy "
                    "value): the encoder maps every window to nearly the same embedding, so a fine-tune from it "
                    "starts with no useful features (no better than --init none); try a lower --lr (it was 0.05) "
                    "when the loss fell to near -1 at once (the trivial solution)")
