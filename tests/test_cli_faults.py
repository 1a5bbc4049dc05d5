"""A failed command leaves no lone config.yaml; OSErrors (disk full, read-only, a file in the path) are one
line naming the path."""
import errno
import os
import tempfile

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError

PAIRS = ["data", "pairs", "--data", "synthetic", "--synthetic-subjects", "2", "--synthetic-duration-s",
         "120", "--workers", "1"]


def test_failed_command_leaves_no_config_yaml(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ft"
    import sqtool.data.tasks as tasks

    def refused(*a, **k):
        raise SqtoolError("refused inside the run")
    monkeypatch.setattr(tasks, "load_task", refused)                       # after the run folder was made
    argv = ["train", "finetune", "--data", "synthetic"]
    assert main(argv + ["--out", str(out)]) == 1
    assert "refused inside the run" in capsys.readouterr().err
    assert not out.exists()
    assert main(argv) == 1                                                 # default runs/train/finetune/...
    assert not list(tmp_path.rglob("config.yaml"))
    kept = tmp_path / "kept"                                               # other output: left for a look
    kept.mkdir()
    (kept / "last.pt").write_bytes(b"x")
    assert main(argv + ["--out", str(kept), "--force"]) == 1
    assert (kept / "last.pt").exists() and (kept / "config.yaml").exists()


@pytest.mark.parametrize("code, where, words", [
    (errno.ENOSPC, "fsync", "no space left on device"),
    (errno.EACCES, "mkstemp", "permission denied"),
    (errno.EROFS, "mkstemp", "read-only file system"),
])
def test_oserror_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys, code, where, words):
    def boom(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(os if where == "fsync" else tempfile, where, boom)
    out = tmp_path / "p"
    assert main(PAIRS + ["--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"sqtool: error: {out / 'config.yaml'}: {err.split(': ')[-1]}" and words in err, err
    assert "Errno" not in err and "\n" not in err


def test_out_below_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(PAIRS + ["--out", str(f / "sub")]) == 1                   # errno 20, for real
    err = capsys.readouterr().err.strip()
    assert str(f / "sub") in err and "is a file, not a folder" in err and "Errno" not in err
    assert main(PAIRS + ["--out", str(f)]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err


def test_a_command_started_with_sigint_ignored_leaves_it_ignored(monkeypatch):
    """nohup / a background job: SIGINT ignored from the start; main installs no handler over it (a Ctrl-C is not
    for this process) and leaves it ignored after the command."""
    import signal

    import sqtool.demo
    seen = []
    monkeypatch.setattr(sqtool.demo, "run", lambda args: seen.append(signal.getsignal(signal.SIGINT)) or 0)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert main(["demo"]) == 0
        assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def _swallowed_ctrl_c_then(error: Exception):
    """A command that gets a Ctrl-C (SIGINT to this process) inside a library import that swallows the
    KeyboardInterrupt, and then fails as the half-imported module does (`module 'sympy' has no attribute 'core'`)."""
    import signal

    def run(args):
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler) and handler is not signal.default_int_handler, \
            f"main did not install its SIGINT handler (found {handler!r})"
        try:
            handler(signal.SIGINT, None)         # what Python runs for a Ctrl-C, without the OS's delivery timing
        except KeyboardInterrupt:
            pass
        raise error
    return run


@pytest.mark.parametrize("error", [AttributeError("module 'sympy' has no attribute 'core'"),
                                   ImportError("cannot import name 'x' from partially initialized module 'torch'"),
                                   OSError(errno.EINTR, "Interrupted system call")])
def test_an_error_after_a_ctrl_c_is_the_interrupt(monkeypatch, capsys, error, sigint_default):
    """Ctrl-C while torch / sympy import: whatever the KeyboardInterrupt turned into is reported as the interrupt
    (one line, exit 130), and main leaves the SIGINT handler as it found it. Without a Ctrl-C the same error is
    its one line and exit 1."""
    import signal

    import sqtool.demo
    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sqtool.demo, "run", _swallowed_ctrl_c_then(error))
    assert main(["demo"]) == 130
    assert capsys.readouterr().err == "sqtool: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is before

    def fails(args):
        raise error
    monkeypatch.setattr(sqtool.demo, "run", fails)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err.startswith("sqtool: error: ")





@pytest.mark.parametrize("argv, says", [
    (["quantize", "--model", "runs/t", "--temperature", "nan"], "--temperature must be a finite number, got nan"),
    (["quantize", "--model", "runs/t", "--width-mult", "0"], "--width-mult must be > 0, got 0"),
    (["train", "pretrain", "--lr-gamma", "-1"], "--lr-gamma must be > 0, got -1"),
    (["data", "pairs", "--data", "synthetic", "--chunksize", "0"], "--chunksize must be >= 1, got 0"),
    (["data", "pairs", "--data", "synthetic", "--workers", "100000"], "--workers 100000: this machine has"),
    (["export", "--model", "runs/q", "--tol-float-l2", "nan"], "--tol-float-l2 must be a finite number, got nan"),
    (["demo", "--student-epochs", "0"], "--student-epochs must be >= 1, got 0"),
    (["bench", "--model", "runs/e", "--chunk", "0"], "--chunk must be >= 1, got 0"),
])
def test_numbers_outside_their_declared_range_are_one_line_before_any_folder(argv, says, tmp_path, capsys):
    """Each config class's RANGES (core.config): NaN, a zero temperature, a fork of 100,000 workers (which took a
    24 GB machine down) are refused before anything is read or made."""
    from sqtool.cli import main
    assert main(argv + ["--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and not (tmp_path / "o").exists()
