"""RUN/log.csv, the live training log (core.trainlog): rows appear while the run trains (a killed run has them), one
header; a killed-and-resumed run's log equals an uninterrupted run's in every column but the time columns (the rows
past its checkpoint dropped first, a row torn by the kill too); every fine-tune writes a row per epoch per fit, and
its resume drops an unfinished fold's rows; training_curve.png is there from the first checkpoint on."""
import json

import pytest

import sqtool.train.finetune as FT
from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from sqtool.core.trainlog import FINETUNE_COLUMNS, LOG_FILE, PRETRAIN_COLUMNS, TIME_COLUMNS, read_log
from test_pretrain import ctrl_c_at


def log_rows(run) -> list[dict]:
    """log.csv's rows without the time columns (what a resumed run must equal)."""
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in read_log(run / LOG_FILE)]


def same_log(a, b) -> None:
    """The logs of runs `a` and `b` equal but for their time columns (and both have rows)."""
    ra, rb = log_rows(a), log_rows(b)
    assert ra and ra == rb, (ra, rb)


def kill_after_rows(monkeypatch, module, n: int) -> None:
    """`module`'s add_epoch raises KeyboardInterrupt once it has logged `n` rows: a kill mid-fit."""
    real, rows = module.add_epoch, []

    def killed(*a, **kw):
        real(*a, **kw)
        rows.append(1)
        if len(rows) == n:
            raise KeyboardInterrupt
    monkeypatch.setattr(module, "add_epoch", killed)


PT = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "160", "--epochs", "2",
      "--batch-size", "32", "--lr", "0.05", "--val-fraction", "0.2", "--val-every", "2", "--ckpt-every", "3",
      "--log-every", "1", "--progress", "false", "--seed", "3"]


def test_a_killed_and_resumed_pretrain_logs_as_an_uninterrupted_run(tmp_path, monkeypatch):
    assert main(PT + ["--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    text = (tmp_path / "whole" / LOG_FILE).read_text()
    assert text.splitlines()[0] == ",".join(PRETRAIN_COLUMNS) and text.count("kind,") == 1     # one header
    rows = read_log(tmp_path / "whole" / LOG_FILE)
    train = [r for r in rows if r["kind"] == "train"]
    assert [int(r["step"]) for r in train] == list(range(1, whole["global_step"] + 1))       # --log-every 1
    assert [float(r["loss"]) for r in train] == [h["loss"] for h in whole["history"]]        # in full
    assert all(float(r["pairs_per_s"]) > 0 and r["lr"] and r["grad_norm"] for r in train)
    val = [r for r in rows if r["kind"] == "val"]
    assert [float(r["val_loss"]) for r in val] == [v["val_loss"] for v in whole["val_history"]]

    run = tmp_path / "killed"
    ctrl_c_at(monkeypatch, 9)                        # a kill inside step 6 or so: last.pt of step 3, rows past it
    assert main(PT + ["--out", str(run)]) == 130
    monkeypatch.undo()
    saved = load_checkpoint(run, name="last.pt")["train_state"]["global_step"]
    seen = read_log(run / LOG_FILE)                  # the log of the run as it was when it stopped: there mid-run
    assert not (run / "metrics.json").exists() and (run / "training_curve.png").is_file()   # plotted at last.pt
    assert max(int(r["step"]) for r in seen if r["kind"] == "train") > saved, (saved, seen)
    with open(run / LOG_FILE, "a") as f:
        f.write("train,99,2,-0.5")                   # a row a SIGKILL tore in the middle
    assert main(["train", "pretrain", "--resume", str(run)]) == 0
    same_log(tmp_path / "whole", run)
    assert (run / LOG_FILE).read_text().count("kind,") == 1


FTA = ["train", "finetune", "--task", "af", "--model", "resnet1d_siamq_tiny", "--data-root", "synthetic",
       "--epochs", "2", "--batch-size", "16", "--max-records", "6", "--folds", "3", "--bootstrap", "20",
       "--progress", "false"]


def test_a_finetune_logs_each_fit_and_its_resume_redoes_an_unfinished_folds_rows(tmp_path, monkeypatch):
    drawn = []                                       # training_curve.png's lines: each fold's held-out loss dashed
    monkeypatch.setattr(FT, "training_curve", lambda run_dir, curves, **kw: drawn.append((dict(curves), kw["val"])))
    assert main(FTA + ["--out", str(tmp_path / "whole")]) == 0
    monkeypatch.undo()
    curves, val = drawn[-1]
    assert sorted(val) == ["fold 1 held-out", "fold 2 held-out", "fold 3 held-out"]
    assert all(len(v) == len(curves[k.replace(" held-out", "")]) == 2 for k, v in val.items())
    rows = read_log(tmp_path / "whole" / LOG_FILE)
    assert (tmp_path / "whole" / LOG_FILE).read_text().splitlines()[0] == ",".join(FINETUNE_COLUMNS)
    assert [(r["fit"], r["epoch"]) for r in rows] == [(f, e) for f in ("fold 1", "fold 2", "fold 3", "final fit")
                                                      for e in ("1", "2")]
    assert all(float(r["loss"]) > 0 and float(r["lr"]) > 0 for r in rows)
    # each fold's held-out subjects scored after each epoch (BCE, AUROC: empty where they hold one class); the last
    # epoch's is the fold's out-of-fold figure in metrics.json; the final fit has no held-out part
    per_fold = json.loads((tmp_path / "whole" / "metrics.json").read_text())["per_fold"]
    folds = [r for r in rows if r["fit"] != "final fit"]
    assert all(float(r["val_loss"]) > 0 and r["metric"] == "auroc" for r in folds)
    for f, pf in enumerate(per_fold):
        last = [r for r in folds if r["fit"] == f"fold {f + 1}"][-1]["val_metric"]
        assert (last == "") if pf["auroc"] is None else float(last) == pytest.approx(pf["auroc"], abs=1e-6)
    assert any(pf["auroc"] is not None for pf in per_fold)
    assert all(r["val_loss"] == r["val_metric"] == r["metric"] == "" for r in rows if r["fit"] == "final fit")

    kill_after_rows(monkeypatch, FT, 3)              # fold 2's first epoch logged, then a kill mid-fold
    run = tmp_path / "killed"
    assert main(FTA + ["--out", str(run)]) == 130
    assert [r["fit"] for r in read_log(run / LOG_FILE)] == ["fold 1", "fold 1", "fold 2"]
    assert (run / "training_curve.png").is_file()    # plotted after fold 1's file
    monkeypatch.undo()
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 0
    same_log(tmp_path / "whole", run)


def test_tensorboard_writes_events_or_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    import builtins
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--epochs", "1",
            "--batch-size", "32", "--val-fraction", "0", "--max-steps", "2", "--log-every", "1", "--progress",
            "false", "--tensorboard"]
    try:
        import torch.utils.tensorboard  # noqa: F401
        have = True
    except ImportError:
        have = False
    if have:
        assert main(args + ["--out", str(tmp_path / "tb")]) == 0
        assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb" / "tb").iterdir())
    real_import = builtins.__import__

    def no_tensorboard(name, *a, **kw):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "none")]) == 0
    err = capsys.readouterr().err
    assert err.count("pip install tensorboard") == 1 and "Traceback" not in err
    assert len(read_log(tmp_path / "none" / LOG_FILE)) == 2 and not (tmp_path / "none" / "tb").exists()


def tb_scalars(run) -> dict:
    """RUN/tb's scalars as TensorBoard reads them: {(run folder under RUN/tb, tag): [step, ...]} in file order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = {}
    for d in sorted({p.parent for p in (run / "tb").rglob("events.out.tfevents*")}):
        acc = EventAccumulator(str(d))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out[(str(d.relative_to(run / "tb")), tag)] = [e.step for e in acc.Scalars(tag)]
    return out


def test_a_finetune_resume_drops_an_unfinished_folds_tensorboard_events(tmp_path, monkeypatch):
    pytest.importorskip("torch.utils.tensorboard")
    args = FTA + ["--tensorboard"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    whole = tb_scalars(tmp_path / "whole")
    assert whole and all(steps == [1, 2] for steps in whole.values())

    kill_after_rows(monkeypatch, FT, 3)              # fold 2's first epoch logged, then a kill mid-fold
    run = tmp_path / "killed"
    assert main(args + ["--out", str(run)]) == 130
    monkeypatch.undo()
    assert main(["train", "finetune", "--resume", str(run), "--progress", "false"]) == 0
    assert tb_scalars(run) == whole                  # fold 2 once, not its killed try's epoch 1 beside the new one
    assert whole[("fold_2", "loss")] == [1, 2] and ("final_fit", "lr") in whole    # a TensorBoard run per fit


def test_force_over_an_earlier_run_removes_its_tensorboard_events_with_its_log(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--epochs", "1",
            "--batch-size", "32", "--val-fraction", "0", "--max-steps", "2", "--log-every", "1", "--progress",
            "false", "--out", str(tmp_path / "run")]
    assert main(args + ["--tensorboard"]) == 0 and (tmp_path / "run" / "tb").is_dir()
    assert main(args + ["--force"]) == 0             # a new run, without --tensorboard: the earlier events go
    assert not (tmp_path / "run" / "tb").exists() and len(read_log(tmp_path / "run" / LOG_FILE)) == 2


def test_a_log_that_cannot_be_written_never_stops_the_run(tmp_path, capsys, monkeypatch):
    """log.csv opened in a spreadsheet that locks it (Windows), made read-only, a full disk: one note line, the run
    goes on; the rows go on to the file once it can be written, a note saying how many were missed; a resume that
    cannot rewrite it keeps it as it was (said). Before: the PermissionError stopped the training run."""
    import builtins

    import sqtool.core.io as io_mod
    import sqtool.core.trainlog as TL
    log = TL.TrainLog(tmp_path, FINETUNE_COLUMNS)
    log.row(fit="fold 1", epoch=1, loss=0.5)
    real_open = builtins.open

    def locked(path, *a, **kw):
        if str(path).endswith(LOG_FILE):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(TL, "open", locked, raising=False)
    for epoch in (2, 3):
        log.row(fit="fold 1", epoch=epoch, loss=0.4)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "log.csv cannot be written (Permission denied): training goes on" in err
    monkeypatch.undo()
    log.row(fit="fold 1", epoch=4, loss=0.3)
    assert "2 row(s) before this one are not in it" in capsys.readouterr().err
    assert [r["epoch"] for r in read_log(tmp_path / LOG_FILE)] == ["1", "4"]

    def refuse(*a, **kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(io_mod, "atomic_write_text", refuse)
    log.keep(lambda r: r["epoch"] == "1")
    assert "cannot be rewritten for the resume (Permission denied): kept as it was" in capsys.readouterr().err
    assert [r["epoch"] for r in read_log(tmp_path / LOG_FILE)] == ["1", "4"]


def test_tail_f_follows_a_whole_finetune_from_fold_to_fold(tmp_path):
    """`tail -f RUN/log.csv` reads on from the file it opened: each fit's start (`start_fit`, which drops an earlier
    try's rows) leaves the file in place when it drops none, so fold 2's rows reach a reader of fold 1's (before: the
    file was replaced at every fold, and tail -f went quiet after fold 1)."""
    from sqtool.core.trainlog import TrainLog, start_fit
    log = TrainLog(tmp_path, FINETUNE_COLUMNS, fresh=True)
    start_fit(log, "fold 1").add(0.5)
    with open(tmp_path / LOG_FILE) as tail:
        assert tail.read().splitlines()[1].startswith("fold 1,1,0.5,")
        start_fit(log, "fold 2").add(0.4)
        assert tail.read().startswith("fold 2,1,0.4,")
    start_fit(log, "fold 2").add(0.3)                        # a resume training fold 2 again: its rows replaced
    assert [(r["fit"], r["loss"]) for r in read_log(tmp_path / LOG_FILE)] == [("fold 1", "0.5"), ("fold 2", "0.3")]


def test_a_log_every_past_the_run_says_its_log_has_no_train_rows(tmp_path, capsys):
    """--log-every 1000 on an 8-step run: log.csv holds validations only, and one note line says so (before: said
    nowhere, a loss column that never filled)."""
    args = [a if a != "1" or PT[i - 1] != "--log-every" else "1000" for i, a in enumerate(PT)]
    assert main(args + ["--out", str(tmp_path / "r")]) == 0
    assert {r["kind"] for r in read_log(tmp_path / "r" / LOG_FILE)} == {"val"}
    err = [ln for ln in capsys.readouterr().err.splitlines() if "--log-every" in ln]
    assert err == ["sqtool: note: --log-every 1000 is past this run's 8 steps: RUN/log.csv gets no train row (loss, lr, "
                   "grad_norm), only validations; --log-every 1 gives train rows"]


def test_the_held_out_figures_are_a_regression_folds_mae_and_change_nothing_it_trains(tmp_path):
    """A fold's held-out figures (`train.finetune.held_out_part`: the smooth-L1 loss on normalised targets and the MAE
    in BPM, after each epoch) come from a forward pass in eval mode that leaves the model as it was: a model with
    BatchNorm trains to the same weights bit for bit with them and without (the fine-tune's metrics stay those of a
    run without them), and the last epoch's MAE is the trained model's on those windows."""
    import dataclasses

    import numpy as np
    import torch

    from sqtool.core.metrics import task_metrics
    from sqtool.core.trainlog import TrainLog, start_fit
    from sqtool.models import create_model, get_model_cfg

    rng = np.random.default_rng(0)
    mc = get_model_cfg("resnet1d_siamq_tiny")
    mc = mc.replace(task="hr", outputs=("hr_bpm",), units=("bpm",), target_mean=(70.0,), target_std=(10.0,))
    x = rng.standard_normal((40, *mc.input_shape)).astype(np.float32)          # (N, C, T)
    y = (70 + 10 * rng.standard_normal((40, 1))).astype(np.float32)              # (N, 1) BPM
    norm, denorm = (lambda v: ((v - 70) / 10).astype(np.float32)), (lambda p: p * 10 + 70)
    cfg = dataclasses.replace(FT.FinetuneConfig(), epochs=3, batch_size=8, progress=False)

    def trained(history):
        torch.manual_seed(0)
        m = create_model(mc)
        FT._fit(m, x[:30], norm(y[:30]), cfg, "regression", "cpu", seed=1, history=history)
        return m

    held = FT.held_out_part("hr", "regression", x[30:], y[30:], norm(y[30:]), denorm, "cpu", ("hr_bpm",), ("bpm",))
    rows = start_fit(TrainLog(tmp_path, FINETUNE_COLUMNS), "fold 1", held)
    with_val, without = trained(rows), trained([])
    logged = read_log(tmp_path / LOG_FILE)
    a, b = with_val.state_dict(), without.state_dict()
    assert any("running_mean" in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)
    assert list(rows) == pytest.approx([float(r["loss"]) for r in logged])
    assert [r["metric"] for r in logged] == ["mae_bpm"] * 3 and all(float(r["val_loss"]) > 0 for r in logged)
    mae = task_metrics("hr", y[30:], denorm(FT.predict(with_val, x[30:], "cpu")))["mae"]
    assert float(logged[-1]["val_metric"]) == pytest.approx(mae, rel=1e-6)


def test_keep_fits_drops_an_earlier_trys_fits_that_this_run_has_none_of(tmp_path):
    """`keep_fits(log, "inner", fits)`: the rows (and RUN/tb folders) of the family's fits not in `fits` go, the others'
    and other families' stay; with no fits the family's every row goes (a resume with --decoder-on teacher)."""
    from sqtool.core.trainlog import TB_DIR, TrainLog, keep_fits, start_fit
    log = TrainLog(tmp_path, FINETUNE_COLUMNS, fresh=True)
    for fit in ("inner 1 distill", "inner 2 distill", "inner 3 distill", "calibration 1 distill", "distill"):
        start_fit(log, fit).add(0.5)
        (tmp_path / TB_DIR / fit.replace(" ", "_")).mkdir(parents=True)
    keep_fits(log, "inner", ["inner 1 distill", "inner 2 distill"])
    assert [r["fit"] for r in read_log(tmp_path / LOG_FILE)] == ["inner 1 distill", "inner 2 distill",
                                                                "calibration 1 distill", "distill"]
    keep_fits(log, "calibration")
    assert [r["fit"] for r in read_log(tmp_path / LOG_FILE)] == ["inner 1 distill", "inner 2 distill", "distill"]
    assert sorted(p.name for p in (tmp_path / TB_DIR).iterdir()) == ["distill", "inner_1_distill", "inner_2_distill"]


def test_a_resumed_run_whose_log_has_other_columns_rewrites_it_under_this_runs_header(tmp_path):
    """A run started by an earlier sqtool (log.csv without the held-out columns) and resumed by this one: its rows
    are kept under the new header (the new columns empty) before any row is appended, so the CSV stays one table."""
    from sqtool.core.trainlog import TrainLog, start_fit
    old = ("fit", "epoch", "loss", "lr", "elapsed_s")
    (tmp_path / LOG_FILE).write_text(",".join(old) + "\nfold 1,1,0.9,0.001,1.5\nfold 1,2,0.8,0.001,3.0\n")
    log = TrainLog(tmp_path, FINETUNE_COLUMNS)
    start_fit(log, "fold 2").add(0.7, 0.001)
    lines = (tmp_path / LOG_FILE).read_text().splitlines()
    assert lines[0] == ",".join(FINETUNE_COLUMNS) and len(lines) == 4
    rows = read_log(tmp_path / LOG_FILE)
    assert [(r["fit"], r["epoch"], r["loss"], r["val_metric"]) for r in rows] == [
        ("fold 1", "1", "0.9", ""), ("fold 1", "2", "0.8", ""), ("fold 2", "1", "0.7", "")]
    assert all(None not in r for r in rows)               # no row wider than the header
