"""core.io.ScratchDir: a scratch folder a killed run leaves behind is removed by the next one made; a live run's
is not; the folder is removed on cleanup, as tempfile.TemporaryDirectory's."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sqtool.core.io import SCRATCH_LOCK, SCRATCH_MAKING, SCRATCH_STALE_S, ScratchDir

pytest.importorskip("fcntl")

HOLD = """
import sys, time
from sqtool.core.io import ScratchDir
d = ScratchDir("sqtool-bench-")
open(d.name + "/samples.npy", "wb").write(b"x" * 1000)
print(d.name, flush=True)
time.sleep(600)
"""


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def holder(root: Path) -> tuple[subprocess.Popen, Path]:
    """A process that made a ScratchDir under root and sleeps; returns it and the folder's path."""
    p = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "TMPDIR": str(root)})
    return p, Path(p.stdout.readline().strip())


def test_killed_owners_folder_is_swept_and_a_live_ones_kept(tmpdir_env):
    dead, dead_dir = holder(tmpdir_env)
    live, live_dir = holder(tmpdir_env)
    try:
        assert dead_dir.parent == tmpdir_env and dead_dir.name.startswith("sqtool-bench-")
        assert (dead_dir / "samples.npy").exists() and (dead_dir / SCRATCH_LOCK).exists()
        dead.send_signal(signal.SIGKILL)                 # no cleanup runs: the folder stays, its lock is dropped
        dead.wait(10)
        assert dead_dir.exists()
        other = tmpdir_env / "sqtool-not-ours"           # a folder without the lock file: another tool's, left
        other.mkdir()
        with ScratchDir("sqtool-predict-") as mine:
            assert Path(mine).is_dir() and Path(mine).name.startswith("sqtool-predict-")
            assert not dead_dir.exists()                 # swept
            assert (live_dir / "samples.npy").exists()   # its owner is alive: kept
            assert other.exists()
            again = ScratchDir("sqtool-bench-")          # a second one in the same process does not sweep the first
            assert Path(mine).exists()
            again.cleanup()
            assert not Path(again.name).exists()
        assert not Path(mine).exists()                   # removed on leaving the block
    finally:
        live.kill()
        live.wait(10)


def test_a_folder_left_in_the_making_is_swept_only_when_stale(tmpdir_env):
    fresh = tmpdir_env / (SCRATCH_MAKING + "sqtool-bench-fresh")
    old = tmpdir_env / (SCRATCH_MAKING + "sqtool-bench-old")
    for d in (fresh, old):
        d.mkdir()
        (d / SCRATCH_LOCK).touch()                       # made, lock file open but not yet locked (or never)
    past = time.time() - SCRATCH_STALE_S - 5
    os.utime(old, (past, past))
    d = ScratchDir()
    try:
        assert fresh.exists() and not old.exists()
    finally:
        d.cleanup()


def test_prefix_must_be_swept_by_name():
    with pytest.raises(ValueError):
        ScratchDir("bench-")
