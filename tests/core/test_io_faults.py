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


def test_a_torn_run_npz_is_one_line_naming_it(tmp_path):
    """core.runs.load_run_npz: an empty, truncated, pickled or bare-.npy file is one SqtoolError line naming it;
    a good archive reads whole."""
    import numpy as np

    from sqtool.core import SqtoolError
    from sqtool.core.runs import load_run_npz
    good = tmp_path / "good.npz"
    np.savez(good, a=np.arange(3), b=np.ones(2))
    assert {k: v.tolist() for k, v in load_run_npz(good).items()} == {"a": [0, 1, 2], "b": [1.0, 1.0]}
    np.save(tmp_path / "bare.npy", np.arange(3))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "torn.npz").write_bytes(good.read_bytes()[:100])
    np.savez(tmp_path / "pickled.npz", o=np.array([{"x": 1}], dtype=object))
    for name in ("empty.npz", "torn.npz", "pickled.npz", "bare.npy"):
        with pytest.raises(SqtoolError) as e:
            load_run_npz(tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name} is corrupt or not an .npz archive (")
        assert str(e.value).endswith(f"re-run the command that wrote {tmp_path}") and "\n" not in str(e.value)
