"""A run records its inputs as absolute paths, so `--resume RUN` works from any directory; a path spelled
differently is no change; a refused change names its key and says what may change; a resumed run ends with its
results and a `next:` line; config.yaml says what the last part ran with (and has a `resolved:` section); an
interrupted run names the `--resume` command, and so does a second run into its folder."""
import shutil

import torch
import yaml

import sqtool.train.finetune as FT
from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from test_pretrain import _write_pairs

PT = ["train", "pretrain", "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--val-fraction", "0",
      "--no-progress"]


def _config(run):
    return yaml.safe_load((run / "config.yaml").read_text())


def test_pretrain_resumes_from_another_directory(tmp_path, monkeypatch, capsys):
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _write_pairs(proj / "pairs")
    monkeypatch.chdir(proj)
    assert main(PT + ["--pairs", "pairs", "--max-steps", "3", "--out", "run"]) == 0      # stopped early
    out = capsys.readouterr().out
    assert "next: sqtool train pretrain --resume run   (" in out
    saved = _config(proj / "run")
    assert saved["config"]["pairs"] == str(proj / "pairs")                             # absolute, not as typed
    r = saved["resolved"]
    assert r["run_dir"] == str(proj / "run") and r["pairs"] == str(proj / "pairs")
    assert r["device"] == "cpu" and r["amp"] == "off" and r["world_size"] == 1

    # the same folder again: told how to continue it
    assert main(PT + ["--pairs", "pairs", "--out", "run"]) == 1
    err = capsys.readouterr().err
    assert "continue it with `sqtool train pretrain --resume run`, or use --force" in err

    monkeypatch.chdir(elsewhere)
    run = proj / "run"
    assert main(["train", "pretrain", "--resume", str(run), "--pairs", "../proj/pairs/", "--lr", "0.1"]) == 1
    err = capsys.readouterr().err.strip()                     # the path spelled differently is no change; lr is
    assert "changed config (lr: 0.05 -> 0.1)" in err and "pairs" not in err.split("(")[1].split(")")[0]
    assert ("only --max-steps, --progress, --device, --layout, --ddp-timeout, --log-every, --tensorboard and "
            "--epochs") in err

    assert main(["train", "pretrain", "--resume", str(run), "--pairs", "../proj/pairs/", "--max-steps", "0"]) == 0
    io = capsys.readouterr()
    lines = io.out.strip().splitlines()
    assert lines[-2].startswith("pretrained resnet1d_siamq_tiny (done, 2 of 2 epochs): loss "), lines
    assert lines[-1] == f"next: sqtool train finetune --task hr --model {run}"
    assert f"resumed {run} after global step 3 (epoch 1, step 3 of 4)" in io.err        # progress: stderr
    saved = _config(run)
    assert saved["config"]["max_steps"] == 0 and len(saved["resumed"]) == 1         # what the last part ran with
    assert saved["config"]["pairs"] == str(proj / "pairs") and saved["resolved"]["device"] == "cpu"


def test_a_run_made_with_relative_paths_says_where_to_resume_it(tmp_path, monkeypatch, capsys):
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _write_pairs(proj / "pairs")
    monkeypatch.chdir(proj)
    assert main(PT + ["--pairs", "pairs", "--max-steps", "2", "--out", "run"]) == 0
    last = proj / "run" / "last.pt"                          # as sqtool wrote it before paths were made absolute
    ck = torch.load(last, weights_only=True)
    ck["train_cfg"]["pairs"] = "pairs"
    torch.save(ck, last)
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["train", "pretrain", "--resume", str(proj / "run"), "--max-steps", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"its --pairs 'pairs' is relative to the folder the run was started in" in err[0]
    assert f"resume it from {proj}" in err[0]
    monkeypatch.chdir(proj)                                   # from there it resumes, and the spelling is kept
    assert main(["train", "pretrain", "--resume", "run", "--max-steps", "0"]) == 0


def test_pretrain_resumed_with_more_epochs_equals_a_longer_run(tmp_path, capsys):
    args = ["train", "pretrain", "--synthetic-pairs", "64", "--batch-size", "16", "--lr", "0.05", "--val-fraction",
            "0", "--no-progress", "--seed", "2"]
    assert main(args + ["--epochs", "2", "--out", str(tmp_path / "long")]) == 0
    assert main(args + ["--epochs", "1", "--out", str(tmp_path / "short")]) == 0
    assert main(["train", "pretrain", "--resume", str(tmp_path / "short"), "--epochs", "2"]) == 0
    a = load_checkpoint(tmp_path / "long")["state_dict"]
    b = load_checkpoint(tmp_path / "short")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    assert main(["train", "pretrain", "--resume", str(tmp_path / "short"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "(epochs: 2 -> 1)" in err and "--epochs (not below the 2 done)" in err


def test_finetune_interrupted_resumed_from_another_directory(tmp_path, monkeypatch, capsys, tiny_pretrained):
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    elsewhere.mkdir()
    proj.mkdir()
    shutil.copytree(tiny_pretrained, proj / "pt")
    monkeypatch.chdir(proj)
    calls, real = [], FT._fit

    def fit(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt                                  # Ctrl-C in fold 2
        return real(*a, **kw)
    monkeypatch.setattr(FT, "_fit", fit)
    args = ["train", "finetune", "--task", "hr", "--model", "pt", "--data", "synthetic", "--folds", "2",
            "--epochs", "1", "--bootstrap", "10", "--no-progress"]
    assert main(args + ["--out", "ft"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "sqtool: interrupted; continue with: sqtool train finetune --resume ft"
    assert _config(proj / "ft")["config"]["init"] == str(proj / "pt")
    assert main(args + ["--out", "ft"]) == 1                           # the same folder: told to resume it
    assert "continue it with `sqtool train finetune --resume ft`" in capsys.readouterr().err
    monkeypatch.setattr(FT, "_fit", real)

    monkeypatch.chdir(elsewhere)
    run = proj / "ft"
    assert main(["train", "finetune", "--resume", str(run), "--epochs", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed config (epochs: 1 -> 3)" in err[0]
    assert main(["train", "finetune", "--resume", str(run), "--init", "../proj/pt", "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any("(1 of 2 folds reused from the interrupted run)" in ln and ln.endswith(f"-> {run}") for ln in out), out
    assert f"next: sqtool quantize --model {run}" in out
    saved = _config(run)
    assert saved["config"]["bootstrap"] == 20 and saved["resumed"]



def test_a_full_disk_names_the_resume_command(tmp_path, monkeypatch, capsys):
    """Disk full while saving epoch 2's last.pt: one line naming the file and the errno's words, ending with the
    command that continues the run from epoch 1's last.pt (intact: written atomically), as a Ctrl-C's line does;
    that command then finishes the run."""
    import errno
    import os
    import shlex

    import sqtool.core.checkpoint as CK
    saves, real = [], CK.atomic_write_bytes

    def write(path, data):
        saves.append(path)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)
    monkeypatch.setattr(CK, "atomic_write_bytes", write)
    run = tmp_path / "my runs" / "pt"
    assert main(PT + ["--synthetic-pairs", "64", "--out", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    line, hint = err[-1].split("; continue with: ")
    assert line == f"sqtool: error: {run / 'last.pt'}: no space left on device (disk full)"
    assert shlex.split(hint) == ["sqtool", "train", "pretrain", "--resume", str(run)]
    assert load_checkpoint(run / "last.pt")["train_state"]["epoch"] == 1              # the save before: intact
    monkeypatch.setattr(CK, "atomic_write_bytes", real)
    assert main(shlex.split(hint)[1:]) == 0
    assert "(done, 2 of 2 epochs)" in capsys.readouterr().out


def test_a_runs_config_yaml_is_a_config_file(tmp_path):
    """`--config RUN/config.yaml` starts a run like it (its bookkeeping keys are not config)."""
    from sqtool.core import resolve_config
    from sqtool.train.pretrain import PretrainConfig
    assert main(PT + ["--synthetic-pairs", "64", "--out", str(tmp_path / "a")]) == 0
    cfg = resolve_config(PretrainConfig, config_file=str(tmp_path / "a" / "config.yaml"))
    assert cfg.epochs == 2 and cfg.batch_size == 16 and cfg.synthetic_pairs == 64
    assert main(["train", "pretrain", "--config", str(tmp_path / "a" / "config.yaml"), "--epochs", "1",
                 "--out", str(tmp_path / "b")]) == 0
    b = _config(tmp_path / "b")["config"]
    assert b["epochs"] == 1 and b["synthetic_pairs"] == 64 and b["lr"] == 0.05


def test_a_run_stopped_early_ends_with_one_next_line(tmp_path, monkeypatch, capsys):
    """Stopped by --max-steps (fresh or resumed): one `next:` line, the resume (no --max-steps: the rest of the
    epochs); a resume to a step it has passed: one note, nothing trained; done: one `next:` line, the fine-tune."""
    _write_pairs(tmp_path / "pairs")
    monkeypatch.chdir(tmp_path)
    assert main(PT + ["--pairs", "pairs", "--max-steps", "1", "--out", "run"]) == 0
    for argv in (None, ["train", "pretrain", "--resume", "run", "--max-steps", "2"]):
        if argv is not None:
            assert main(argv) == 0
        nexts = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next:")]
        assert len(nexts) == 1 and nexts[0].startswith("next: sqtool train pretrain --resume run   ("), nexts
    assert main(["train", "pretrain", "--resume", "run", "--max-steps", "1"]) == 0
    io = capsys.readouterr()
    assert io.out == "" and io.err.startswith("sqtool: note: run is at global step 2, --max-steps 1 reached"), io.err
    assert main(["train", "pretrain", "--resume", "run"]) == 0
    nexts = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next:")]
    assert nexts == ["next: sqtool train finetune --task hr --model run"], nexts


def test_the_resume_command_of_a_torchrun_run_is_a_torchrun_command(tmp_path):
    """A run made under torchrun continues bit for bit only on as many processes: its resume line is the torchrun
    command (the README's spelling) with its world size; `sqtool train pretrain --resume RUN` ran it on one
    process. Several nodes: their count, the processes per node, and the rendezvous to fill in."""
    import shlex

    from sqtool.core.runs import resume_command
    run = tmp_path / "my run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")

    def hint(**saved):
        (run / "config.yaml").write_text(yaml.safe_dump({"command": "train/pretrain", **saved}))
        return resume_command(run)
    plain = f"train pretrain --resume {shlex.quote(str(run))}"
    assert hint(world_size=1, resolved={"world_size": 1}) == f"sqtool {plain}"
    assert hint() == f"sqtool {plain}"                                           # a run from before world_size
    assert hint(world_size=2, resolved={"world_size": 2, "nproc_per_node": 2}) == \
        f"torchrun --standalone --nproc_per_node 2 -m sqtool.cli {plain}"
    assert hint(world_size=4) == f"torchrun --standalone --nproc_per_node 4 -m sqtool.cli {plain}"   # config only
    assert hint(resolved={"world_size": 16, "nproc_per_node": 8}) == \
        f"torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST0:29500 -m sqtool.cli {plain}"
    assert hint(resolved={"world_size": "two"}) == f"sqtool {plain}"             # hand-edited: the plain command
