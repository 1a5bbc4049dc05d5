"""Atomic writes: orphans of killed writes go, modes follow the umask, OSErrors name the file."""
import errno
import os
import stat

import numpy as np
import pytest

from sqtool.core import atomic_save_npz, atomic_write_text
from sqtool.core.errors import oserror_line


def test_orphan_tmp_removed_at_next_write(tmp_path):
    orphan = tmp_path / ".last.pt.k2j3h4.tmp"               # what a kill -9 during atomic_write leaves
    orphan.write_bytes(b"half")
    other = tmp_path / ".model.pt.zz.tmp"                   # another file's temp: not ours to remove
    other.write_bytes(b"x")
    atomic_write_text(tmp_path / "last.pt", "new")
    assert (tmp_path / "last.pt").read_text() == "new"
    assert not orphan.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.pt.zz.tmp", "last.pt"]


def test_atomic_npz_round_trip_and_no_partial_file(tmp_path, monkeypatch):
    p = tmp_path / "oof_predictions.npz"
    atomic_save_npz(p, a=np.arange(3), s=np.array(["x", "y"]))
    with np.load(p, allow_pickle=False) as z:
        assert z["a"].tolist() == [0, 1, 2] and z["s"].tolist() == ["x", "y"]
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError) as e:
        atomic_save_npz(p, a=np.arange(5))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(p)    # the file named, errno kept
    with np.load(p) as z:
        assert z["a"].tolist() == [0, 1, 2]                                # the old file is intact
    assert sorted(x.name for x in tmp_path.iterdir()) == ["oof_predictions.npz"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only file system"),
                                         (errno.ENOTDIR, "is a file, not a folder")])
def test_oserror_line(code, words):
    line = oserror_line(OSError(code, os.strerror(code), "/x/out/config.yaml"))
    assert line == f"/x/out/config.yaml: {line.split(': ', 1)[1]}" and words in line and "Errno" not in line


def _modes(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


def test_command_outputs_honour_the_umask(tmp_path):
    from sqtool.cli import main
    old = os.umask(0o022)
    try:
        assert main(["data", "pairs", "--data", "synthetic", "--synthetic-subjects", "2",
                     "--synthetic-duration-s", "300", "--workers", "1", "--out", str(tmp_path / "pairs")]) == 0
        assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "64", "--epochs",
                     "1", "--batch-size", "32", "--val-fraction", "0", "--progress", "false", "--out",
                     str(tmp_path / "pre")]) == 0
    finally:
        os.umask(old)
    modes = {**_modes(tmp_path / "pairs"), **{f"pre/{k}": v for k, v in _modes(tmp_path / "pre").items()}}
    assert {"config.yaml", "index.json", "metrics.json", "pre/model.pt", "pre/config.yaml"} <= set(modes)
    assert any(k.startswith("shards/") for k in modes)
    bad = {k: oct(v) for k, v in modes.items() if v != 0o644}
    assert not bad, bad
