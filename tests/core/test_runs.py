"""Run directories: names are one path component; one run at a time per directory."""
import subprocess
import sys
from pathlib import Path

import pytest

from sqtool.core import SqtoolError, make_run_dir
from sqtool.core.runs import release_run_dirs


@pytest.mark.parametrize("name", ["../../x", "../../../../x", "a/b", "/abs", "..", ".", "", ".hidden", "-x",
                                  "a\\b", "a\x00b", "x" * 101])
def test_bad_run_names_refused(tmp_path, name):
    with pytest.raises(SqtoolError, match="run name") as e:
        make_run_dir("cmd", name, root=tmp_path / "runs")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x").exists() and not (tmp_path / "runs").exists()


def test_good_run_name_stays_under_root(tmp_path):
    d = make_run_dir("train/finetune", "hr-pretrained_v1.2", root=tmp_path / "runs")
    assert d.parent == tmp_path / "runs" / "train" / "finetune" and d.name.endswith("-hr-pretrained_v1.2")
    release_run_dirs()


def test_out_that_is_a_file_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(SqtoolError, match="is a file"):
        make_run_dir("cmd", "n", out=f)


_HOLD = ("import sys, time; from sqtool.core import make_run_dir; make_run_dir('cmd', 'n', out=sys.argv[1], "
         "force=True); print('locked', flush=True); time.sleep(60)")


def test_second_run_into_same_out_refused(tmp_path):
    out = tmp_path / "out"
    env_path = str(Path(__file__).resolve().parents[2])
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(SqtoolError, match="in use by another sqtool run") as e:
            make_run_dir("cmd", "n", out=out, force=True)
        assert str(out) in str(e.value)
    finally:
        p.kill()
        p.wait()
    make_run_dir("cmd", "n", out=out, force=True)       # the lock died with its process
    release_run_dirs()


def test_cli_refuses_escaping_name_and_releases_its_lock(tmp_path, capsys, monkeypatch):
    from sqtool.cli import main
    from sqtool.core.runs import held_run_dirs
    monkeypatch.chdir(tmp_path)
    base = ["data", "pairs", "--data", "synthetic", "--synthetic-subjects", "2", "--synthetic-duration-s",
            "120", "--workers", "1"]
    assert main(base + ["--name", "../../escape"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sqtool: error: run name") and "\n" not in err
    assert not list(tmp_path.parent.glob("escape*")) and not (tmp_path / "runs").exists()
    assert main(base + ["--out", str(tmp_path / "p")]) == 0
    assert not held_run_dirs()                              # the command's lock ends with the command
    assert main(base + ["--out", str(tmp_path / "p"), "--force"]) == 0


def test_no_data_root_names_the_commands_option(tmp_path, monkeypatch):
    """Without a data root the error recommends the option the command has: --data for the commands (where
    --data-root is an old spelling or a lookup root), --data-root for the benchmark scripts that take it."""
    from sqtool.core import runs
    monkeypatch.delenv("SQTOOL_DATA", raising=False)
    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path / "a" / "project")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SqtoolError) as e:
        runs.resolve_data_root(None, required=True)
    assert "pass --data DIR" in str(e.value) and "--data-root" not in str(e.value) and "SQTOOL_DATA" in str(e.value)
    said = []
    with pytest.raises(SqtoolError):
        runs.data_root_or_exit(None, said.append)
    assert "pass --data-root DIR" in said[0]


def test_data_root_alone_is_read_as_data(capsys):
    from sqtool.core.runs import data_and_root
    assert data_and_root("troika", "/r") == ("troika", "/r")           # the lookup root of a bare name
    assert data_and_root(None, None) == (None, None) and capsys.readouterr().err == ""
    assert data_and_root("", "/r/troika") == ("/r/troika", None)       # alone: the old spelling of --data
    assert capsys.readouterr().err == "sqtool: deprecated: use --data instead of --data-root\n"


def test_force_never_writes_into_another_commands_run(tmp_path, capsys):
    """--force writes over an earlier run of the same command (or a folder that is no sqtool run); a folder
    holding another command's run (its config.yaml names it) is refused in one line, nothing written or deleted."""
    from sqtool.core.runs import check_out_dir, save_config
    pre = make_run_dir("train/pretrain", "m", out=tmp_path / "pre")
    save_config(pre, {"lr": 1.0})
    (pre / "last.pt").write_bytes(b"ckpt")
    release_run_dirs()
    before = sorted(p.name for p in pre.iterdir())
    with pytest.raises(SqtoolError) as e:
        make_run_dir("export", "m", out=pre, force=True)
    assert str(e.value) == (f"output directory {pre} holds a train pretrain run: --force writes over an earlier "
                            "export run only, never another command's files; choose another --out")
    assert sorted(p.name for p in pre.iterdir()) == before
    assert check_out_dir("train/pretrain", pre, force=True) == pre              # the same command: allowed
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    assert check_out_dir("export", mine, force=True) == mine                   # not a sqtool run: as before
    from sqtool.cli import main                                                  # the demo's own folder too
    assert main(["demo", "--out", str(pre), "--force"]) != 0
    err = capsys.readouterr().err
    assert "holds a train pretrain run: --force writes over an earlier demo run only" in err and err.count("\n") == 1
    assert sorted(p.name for p in pre.iterdir()) == before


def test_without_force_a_taken_folder_says_what_force_would_write_into(tmp_path):
    """Without --force a non-empty --out says what it holds, what --force writes into (an earlier run of the same
    command, or a folder that is no sqtool run), and --force's help does not claim that nothing is deleted."""
    from sqtool.core.runs import FORCE_HELP, check_out_dir, save_config
    pre = make_run_dir("export", "m", out=tmp_path / "exp")
    save_config(pre, {"lr": 1.0})
    release_run_dirs()
    with pytest.raises(SqtoolError) as e:
        check_out_dir("export", pre)
    assert str(e.value) == (f"output directory {pre} exists and is not empty (it holds an unfinished export run; "
                            "use --force to write into it)")
    with pytest.raises(SqtoolError, match=r"holds an export run: --force writes over an earlier train pretrain"):
        check_out_dir("train/pretrain", pre)                                    # without --force: the final answer
    assert "deleted" not in FORCE_HELP and "kept unless this run rewrites them" in FORCE_HELP


def test_git_sha_marks_a_tree_with_uncommitted_changes_dirty(tmp_path):
    """A run records the commit of its code, with -dirty when a tracked file has uncommitted changes (the code that
    ran is not that commit's); an untracked file does not make it dirty."""
    from sqtool.core.runs import git_sha

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True,
                       capture_output=True)
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "new.py").write_text("untracked\n")
    assert git_sha(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_sha(tmp_path) == head + "-dirty"


def test_printed_commands_paste_as_they_are(tmp_path, monkeypatch, capsys):
    """Every command sqtool prints for the user to copy (`next:`, the resume hint of a taken --out or of an
    interrupt) is shell-quoted: a run folder with a space and a quote, pasted through a shell (shlex.split), is
    one argument."""
    import shlex

    from sqtool.compress import cli as compress_cli
    from sqtool.core.runs import check_out_dir, resume_command, save_config, shell_command
    from sqtool.export.cli import next_step
    d = tmp_path / "my runs" / "données é 'pt'"
    make_run_dir("train/pretrain", "m", out=d)
    save_config(d, {"pairs": "p", "pair_mode": "x", "lr_step_epochs": 1})
    (d / "last.pt").write_bytes(b"ckpt")
    release_run_dirs()
    assert shlex.split(resume_command(d)) == ["sqtool", "train", "pretrain", "--resume", str(d)]
    with pytest.raises(SqtoolError) as e:
        check_out_dir("train/pretrain", d)
    assert shlex.split(str(e.value).split("`")[1]) == ["sqtool", "train", "pretrain", "--resume", str(d)]
    assert shell_command("bench", "--model", d) == "sqtool bench --model " + shlex.quote(str(d))

    res = {"out": str(d), "failed": [], "metadata": {"task": "hr", "training_data": {"datasets": ["synthetic"]}}}
    line = next_step(res).splitlines()[-1]
    assert shlex.split(line.removeprefix("next: ").split("   (")[0]) == [
        "sqtool", "bench", "--model", str(d), "--data", "synthetic"]
    monkeypatch.setattr(compress_cli, "result_line", lambda m: "result")
    compress_cli.print_results(d, {})
    line = capsys.readouterr().out.splitlines()[-1]
    assert shlex.split(line.removeprefix("next: ")) == ["sqtool", "export", "--model", str(d), "--target",
                                                        "onnx,tflite,c"]



def _stage_commands(d: Path, capsys, monkeypatch):
    """(printed line, the argv it must paste as) for a command each stage prints, `d` a run folder with a space."""
    from types import SimpleNamespace as NS

    from sqtool.core.runs import save_config
    from sqtool.data import cli as data_cli, pairs, quality
    from sqtool.firmware_bench import cli as bench_cli, compare, predict
    from sqtool.train import cli as train_cli
    (d / "model.pt").write_bytes(b"ckpt")
    train_cli._print_pretrain(NS(pair_mode="real", model="m", epochs=3, val_every=0), d,
                              {"status": "stopped", "val_pairs": 0})
    yield capsys.readouterr().out.splitlines()[-1], ["train", "pretrain", "--resume", d]
    yield train_cli.pretrain_next(NS(pairs="synthetic", model="m"), d), ["train", "finetune", "--task", "hr",
                                                                          "--model", d]
    yield train_cli.quantize_next(NS(task="af"), d), ["quantize", "--model", d, "--task", "af"]
    yield bench_cli.next_step({"run_dir": d, "kind": "spectral", "provenance": {"model_dir": d}}).splitlines()[1], \
        ["predict", "--model", d, "--data", "RECORDING"]
    predict.print_results({"warnings": [], "recordings": [], "runtime": "c_pipeline", "run_dir": d, "model_dir": d,
                           "data": d / "rec 1.csv"})
    yield capsys.readouterr().out.splitlines()[-1], ["bench", "--model", d, "--data", d / "rec 1.csv"]
    yield compare.next_line({"a": {"model_dir": str(d)}, "b": {"model_dir": "b"}, "verdict": "A is better",
                             "mean": {"over": "held-out", "subjects": 3}}), ["predict", "--model", d, "--data",
                                                                             "RECORDING"]
    yield compare.next_line({"a": {"model_dir": str(d)}, "b": {"model_dir": "b"}, "verdict": "no difference",
                             "mean": {"over": "held-out", "subjects": 3}}).split(" (the same")[0], \
        ["bench", "--model", d, "--data", "MORE_RECORDINGS"]
    yield data_cli.inspect_next(str(d), ["hr"], acc=True), ["train", "finetune", "--task", "hr", "--model",
                                                            "spec_teacher_m", "--data", d, "--folds", "0"]
    yield data_cli.inspect_next(str(d), ["hr"]), ["train", "finetune", "--task", "hr", "--data", d]
    yield data_cli.inspect_next(str(d), []), ["data", "pairs", "--data", d]
    monkeypatch.setattr("sqtool.data.download.download", lambda *a, **k: {"files": 1, "dir": d, "fetched": 1,
                                                                          "skipped": 0, "bytes": 0})
    data_cli.run_download(NS(list=False, name="troika", out=d, mirror=None, base_url=None, retries=1, timeout=1,
                             progress=False))
    yield capsys.readouterr().out.splitlines()[-1], ["data", "inspect", "--data", d]
    monkeypatch.setattr("sqtool.data.dataset_tasks.dataset_of",
                        lambda data: NS(records=lambda: [], iter_records=lambda: iter(())))
    quality._run_cli(NS(data=str(d), path=None, kind=None, window_s=10.0, hop_s=None, fs=None, threshold=0.25,
                        json=False, progress=False))
    yield capsys.readouterr().out.splitlines()[-1], ["data", "pairs", "--data", d, "--threshold", "0.25"]
    save_config(d, {"max_gap_s": 1, "shard_mb": 1, "synthetic_fallback": 1}, command="data_pairs")
    with pytest.raises(SqtoolError) as e:
        pairs._refuse_unfinished(d)
    yield str(e.value).split("`")[1], ["data", "pairs", "--resume", d]
    (d / "index.json").write_text("{}")
    with pytest.raises(SqtoolError) as e:
        pairs._resumable(pairs.PairsConfig(out=str(d)))
    yield str(e.value).split("`")[1], ["train", "pretrain", "--pairs", d]


def test_every_stages_printed_commands_paste_as_they_are(tmp_path, monkeypatch, capsys):
    """The `next:` lines and resume hints of train, bench, predict, bench --compare, data inspect / download / pairs
    name a run folder with a space and a quote as one argument when pasted through a shell (shlex.split)."""
    import shlex
    d = tmp_path / "my runs" / "it's here"
    d.mkdir(parents=True)
    n = 0
    for line, argv in _stage_commands(d, capsys, monkeypatch):
        cmd = line.removeprefix("next: ").split("   (")[0]
        assert shlex.split(cmd) == ["sqtool", *map(str, argv)], line
        n += 1
    assert n == 14                                  # every case above ran


def _killed() -> None:
    """What a killed writer leaves: its folders' .lock files, no longer held (the kernel closed their descriptors)."""
    import os

    from sqtool.core import runs
    for fd in runs._LOCKS.values():
        os.close(fd)
    runs._LOCKS.clear()


def test_a_finished_run_leaves_no_lock_file_and_a_killed_one_is_taken_over(tmp_path):
    """A finished run's folder held its `.lock` for good (an export zipped for a customer shipped it); releasing
    removes it. A killed writer's .lock stays, free: the next run takes it. A folder whose .lock is held is refused."""
    import fcntl
    import os
    d = make_run_dir("export", "m", out=tmp_path / "e")
    assert (d / ".lock").exists()
    release_run_dirs()
    assert not (d / ".lock").exists()
    make_run_dir("export", "m", out=d, force=True)
    _killed()
    assert (d / ".lock").exists()
    make_run_dir("export", "m", out=d, force=True)                              # taken over
    release_run_dirs()
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT)                           # another process writing there
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SqtoolError, match="is in use by another sqtool run"):
            make_run_dir("export", "m", out=d, force=True)
    finally:
        os.close(fd)


def test_a_lock_removed_by_its_releaser_is_not_taken(tmp_path, monkeypatch):
    """A process that opened `.lock` just before its holder removed it and let go would flock a file no longer in the
    folder, beside a third process's new one: lock_run_dir takes only the file at the path (here the first open is of
    a file removed at once, as the releaser does)."""
    import os

    from sqtool.core import runs
    d = tmp_path / "r"
    d.mkdir()
    opened = []
    real_open = os.open

    def racing_open(path, *a, **k):
        fd = real_open(path, *a, **k)
        if str(path).endswith(".lock") and not opened:
            os.unlink(path)                                                     # the releaser's unlink
        opened.append(fd)
        return fd
    monkeypatch.setattr(runs.os, "open", racing_open)
    runs.lock_run_dir(d)
    monkeypatch.undo()
    try:
        assert len(opened) == 2 and os.fstat(runs._LOCKS[str(d.resolve())]).st_ino == os.stat(d / ".lock").st_ino
    finally:
        release_run_dirs()


def test_taking_over_a_dead_runs_folder_removes_its_temp_files(tmp_path):
    """A killed export / bench / predict leaves hidden temp files of its atomic writes; the next run that takes the
    folder's lock (a --force re-run, a --resume) removes them, in subfolders too, and nothing else: not another
    run's folder inside it (its own .lock), not a user's hidden file, not a folder that never held a run."""
    d = make_run_dir("export", "m", out=tmp_path / "e1")
    temps = [".model_int8.onnx.f0yy_ej9.tmp.onnx", ".metrics.json.x1y2.tmp", ".curve.png.tmp.png", "c/.sq_model.c.ab.tmp",
             "shards/.pairs-00001.meta.tmp.npz", "shards/.pairs-00001.npy.tmp"]
    kept = ["model.onnx", ".keep", ".tmpfiles", "c/sq_model.c", "inner/.lock", "inner/.x.tmp", "notes.tmp"]
    for rel in temps + kept:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"")
    _killed()                                                                   # the writer is gone
    assert make_run_dir("export", "m", out=d, force=True) == d
    release_run_dirs()
    assert [rel for rel in temps if (d / rel).exists()] == []
    assert [rel for rel in kept if not (d / rel).exists()] == []
    mine = tmp_path / "mine"                                                    # no earlier run: left as it is
    mine.mkdir()
    (mine / ".draft.tmp").write_text("x")
    make_run_dir("export", "m", out=mine, force=True)
    release_run_dirs()
    assert (mine / ".draft.tmp").exists()


def test_a_killed_export_is_said_to_be_unfinished(tmp_path, capsys):
    """bench / predict on an export folder whose run was killed (config.yaml, some artifacts, no manifest.json) say
    it is an unfinished export run and that --force re-runs it (export has no --resume), not 'not an `sqtool
    export` folder'; a folder that is no run keeps that line."""
    from sqtool.cli import main
    from sqtool.core.manifest import read_manifest
    from sqtool.core.runs import save_config
    e = make_run_dir("export", "m", out=tmp_path / "e1")
    save_config(e, {"model": "q", "target": "onnx"})
    (e / "model_float.onnx").write_bytes(b"onnx")
    release_run_dirs()
    line = (f"{e} has no manifest.json: an unfinished `sqtool export` run (killed?): run `sqtool export` into it "
            "again with --force")
    with pytest.raises(SqtoolError) as err:
        read_manifest(e)
    assert str(err.value) == line
    assert main(["bench", "--model", str(e), "--data", "synthetic", "--out", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().err == f"sqtool: error: {line}\n"
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(SqtoolError, match="has no manifest.json: not an `sqtool export` folder"):
        read_manifest(plain)


def test_a_finished_run_is_not_offered_a_resume(tmp_path):
    """Running into the folder of a finished run says it is finished and names --force for a new run (a finetune
    --resume would redo its final fit); an unfinished or --max-steps-stopped run is still offered its --resume; a
    finished export says it is finished too."""
    import json

    from sqtool.core.runs import check_out_dir, save_config
    pt = make_run_dir("train/pretrain", "m", out=tmp_path / "pt")
    save_config(pt, {"pairs": "p", "pair_mode": "x", "lr_step_epochs": 1})
    (pt / "last.pt").write_bytes(b"ckpt")
    release_run_dirs()
    for metrics, said in [(None, "holds a train pretrain run already: continue it with"),
                          ({"status": "stopped (max_steps)"}, "holds a train pretrain run already: continue it with"),
                          ({"status": "done"}, "holds a finished train pretrain run: choose another --out, or use "
                                               "--force to write a new run into it")]:
        if metrics:
            (pt / "metrics.json").write_text(json.dumps(metrics))
        with pytest.raises(SqtoolError, match=said):
            check_out_dir("train/pretrain", pt)
    ft = make_run_dir("train/finetune", "m", out=tmp_path / "ft")
    save_config(ft, {"task": "hr", "init": "", "mode": "x", "label_fraction": 1.0})
    (ft / "model.pt").write_bytes(b"ckpt")
    (ft / "metrics.json").write_text("{}")
    ex = make_run_dir("export", "m", out=tmp_path / "ex")
    save_config(ex, {"model": "q"})
    (ex / "manifest.json").write_text("{}")
    release_run_dirs()
    for command, d in (("train/finetune", ft), ("export", ex)):
        with pytest.raises(SqtoolError) as e:
            check_out_dir(command, d)
        assert str(e.value) == (f"output directory {d} holds a finished {command.replace('/', ' ')} run: choose "
                                "another --out, or use --force to write a new run into it")


def test_a_run_writing_into_out_now_is_said_first(tmp_path):
    """Two runs into one --out at once: the second is told that another run is writing there now, with or without
    --force, before anything is read (check_out_dir), not that the folder holds an earlier run. The lock this
    process holds itself (the demo's folder) is no other run."""
    from sqtool.core.runs import check_out_dir
    out = tmp_path / "out"
    hold = _HOLD.replace("print(", "open(sys.argv[1] + '/last.pt', 'w').close(); print(")
    p = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})
    try:
        assert p.stdout.readline().strip() == "locked"
        for force in (False, True):
            with pytest.raises(SqtoolError) as e:
                check_out_dir("cmd", out, force=force)
            assert str(e.value) == f"output directory {out} is in use by another sqtool run (locked: {out / '.lock'})"
    finally:
        p.kill()
        p.wait()
    with pytest.raises(SqtoolError, match="exists and is not empty"):     # the writer is gone: an earlier run
        check_out_dir("cmd", out)
    make_run_dir("cmd", "n", out=out, force=True)
    assert check_out_dir("cmd", out, force=True) == out                    # held by this process: not another run
    release_run_dirs()


def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """check_out_dir (called by bench and predict before their front end) refuses a --out under a file or on a
    read-only file system with the OSError's one line, creating nothing; bench says it before it reads its model."""
    import errno
    import os

    from sqtool.cli import main
    from sqtool.core.runs import check_out_dir
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError) as e:
        check_out_dir("bench", tmp_path / "afile" / "sub" / "b")
    assert e.value.errno == errno.ENOTDIR and e.value.filename == str(tmp_path / "afile" / "sub" / "b")
    assert main(["bench", "--model", str(tmp_path / "no_export"), "--data", "synthetic", "--out",
                 str(tmp_path / "afile" / "b")]) == 1
    assert capsys.readouterr().err == (f"sqtool: error: {tmp_path / 'afile' / 'b'}: a part of the path is a file, "
                                       "not a folder\n")
    rom = tmp_path / "rom"
    rom.mkdir()
    real_access, real_statvfs = os.access, os.statvfs

    class _Ro:                                          # a read-only mount, as statvfs reports one
        def __init__(self, st):
            self.f_flag = st.f_flag | os.ST_RDONLY
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == rom else real_access(p, mode))
    monkeypatch.setattr(os, "statvfs", lambda p: _Ro(real_statvfs(p)) if Path(p) == rom else real_statvfs(p))
    with pytest.raises(OSError) as e:
        check_out_dir("bench", rom / "b", force=True)
    assert e.value.errno == errno.EROFS and e.value.filename == str(rom / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "rom"] and not list(rom.iterdir())


def test_library_entries_release_the_run_folders_they_lock(tmp_path):
    """releases_run_dirs: a library entry's folder locks go when it returns or raises (a notebook keeps none),
    locks held before the call stay held; the entries that make run folders carry it."""
    from sqtool.compress.cli import quantize_run
    from sqtool.compress.quantize_hr import quantize_hr_run
    from sqtool.core import held_run_dirs, lock_run_dir, make_run_dir, release_run_dirs, releases_run_dirs
    from sqtool.data.pairs import mine_pairs
    from sqtool.export.cli import export
    from sqtool.firmware_bench.cli import run_bench
    from sqtool.firmware_bench.predict import predict

    (tmp_path / "outer").mkdir()
    outer = lock_run_dir(tmp_path / "outer")

    @releases_run_dirs
    def entry(fail: bool):
        make_run_dir("x", "y", str(tmp_path / ("bad" if fail else "ok")), force=True)
        if fail:
            raise SqtoolError("boom")
        return 1

    try:
        assert entry(False) == 1
        with pytest.raises(SqtoolError):
            entry(True)
        assert held_run_dirs() == {str(outer.resolve())}
    finally:
        release_run_dirs()
    for fn in (export, mine_pairs, run_bench, predict, quantize_run, quantize_hr_run):
        assert getattr(fn, "__wrapped__", None) is not None, fn.__name__
        assert fn.__code__ is entry.__code__, fn.__name__                    # releases_run_dirs' wrapper, no other


@pytest.mark.parametrize("cmd", [["train", "finetune"], ["quantize"], ["data", "pairs"]])
def test_resume_of_a_run_whose_config_yaml_is_not_text_is_one_line_naming_the_run(tmp_path, capsys, cmd):
    """A run folder from elsewhere (a colleague's copy, a damaged disk) whose config.yaml holds bytes that are not
    UTF-8: `--resume` said only "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff ..." with no file; now one
    line naming the run and its config.yaml, exit 1, as a config.yaml that is not YAML is."""
    from sqtool.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(b"\xff\xfe\x00command: x\n")
    assert main([*cmd, "--resume", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: cannot resume {run}: its config.yaml cannot be read (UnicodeDecodeError)"]
