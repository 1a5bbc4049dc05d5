"""A full disk during the C export is one line "disk full while writing X", not a C compile failure: when the
generated C cannot be written (ENOSPC from the write) and when the compiler cannot write its library."""
import errno
import subprocess

import pytest

import sqtool.export.c as C
from sqtool.cli import main
from sqtool.core import SqtoolError


def _full(*a, **kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def _export(capsys, int8_run, out):
    capsys.readouterr()
    rc = main(["export", "--model", str(int8_run), "--target", "c", "--out", str(out)])
    return rc, capsys.readouterr().err.strip().splitlines()


def test_disk_full_writing_the_c_is_one_line(int8_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(C, "atomic_write_text", _full)
    rc, err = _export(capsys, int8_run, tmp_path / "out")
    assert rc == 1 and len(err) == 1, err
    assert "disk full while writing" in err[0] and "sq_model.h" in err[0] and "compile" not in err[0]


def test_disk_full_while_compiling_is_not_a_compile_failure(int8_run, tmp_path, monkeypatch, capsys):
    def ld_full(cmd, **kw):                           # what gcc/ld print when the output cannot be written
        return subprocess.CompletedProcess(cmd, 1, "", "/usr/bin/ld: final link failed: No space left on device\n"
                                                       "collect2: error: ld returned 1 exit status\n")
    monkeypatch.setattr(subprocess, "run", ld_full)
    rc, err = _export(capsys, int8_run, tmp_path / "out")
    assert rc == 1 and len(err) == 1, err
    assert "disk full while building" in err[0] and "libsq_model" in err[0] and "does not compile" not in err[0]
    assert "'/usr/bin/ld: final link failed: No space left on device'" in err[0]           # what the linker said


def test_a_full_tmpdir_is_named_as_gccs_not_the_output_folders(int8_run, tmp_path, monkeypatch, capsys):
    """gcc writes its intermediate files to $TMPDIR: a full one read as 'disk full while writing <the export's
    library>' (a 67 GB-free volume) and an operator enlarged the wrong disk."""
    small = tmp_path / "small"
    small.mkdir()

    def as_full(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", f"{small}/ccKP53RE.s: Fatal error: can't write 12 bytes "
                                                       "to section .text: No space left on device\n")
    monkeypatch.setattr(subprocess, "run", as_full)
    monkeypatch.setenv("TMPDIR", str(small))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)                   # re-read TMPDIR
    rc, err = _export(capsys, int8_run, tmp_path / "out")
    assert rc == 1 and len(err) == 1, err
    assert f"{small}/ccKP53RE.s" in err[0] and f"temporary files go to {small}, set by TMPDIR" in err[0], err


def test_disk_full_from_the_compiler_process(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", _full)
    with pytest.raises(SqtoolError, match="disk full while writing"):
        C.build_shared_lib(tmp_path, tmp_path / "build", single_rounding=True)
