"""Shared fixtures: the real data root (tests that need it are skipped only when it is absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
_DATA = Path(os.environ.get("SQTOOL_DATA", PROJECT.parent / "shared" / "data"))

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not _DATA.is_dir():
        pytest.skip(f"real data root {_DATA} absent")
    return _DATA


def have_data(name: str) -> bool:
    return (_DATA / name).is_dir()


requires_data = pytest.mark.skipif(not _DATA.is_dir(), reason="../shared/data absent")


@pytest.fixture(scope="session", autouse=True)
def _subprocess_tmpdir(tmp_path_factory):
    """The suite's subprocesses make their temporary files inside pytest's own temporary tree (pruned to its last
    runs), not in the machine's /tmp: every torchrun leaves a torchelastic_* folder there (about 200 per suite)."""
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("subprocess_tmp"))
    yield
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before


@pytest.fixture(scope="session")
def af_finetune(tmp_path_factory):
    """(run folder, stdout) of one small af fine-tune on the synthetic default (2 folds, 1 epoch, every one of the
    4 subjects in its folds: --heldout-fraction 0, else the last is held out and a 3-subject fold lacks a class for
    the classic row): the skill rows and the per-subject rows are read off the same run."""
    import contextlib
    import io

    from sqtool.cli import main
    out, said = tmp_path_factory.mktemp("af_finetune"), io.StringIO()
    with contextlib.redirect_stdout(said):
        rc = main(["train", "finetune", "--task", "af", "--data", "synthetic", "--model", "resnet1d_siamq_tiny",
                   "--epochs", "1", "--max-records", "4", "--folds", "2", "--bootstrap", "50", "--final-fit",
                   "false", "--heldout-fraction", "0", "--progress", "false", "--out", str(out)])
    assert rc == 0, said.getvalue()[-2000:]
    return out, said.getvalue()


@pytest.fixture
def sigint_default():
    """SIGINT as an interactive Python starts with it (KeyboardInterrupt), whatever started the suite: a background
    job of a non-interactive shell (`(make test &)`, nohup) starts every process with SIGINT ignored, where main
    rightly installs no handler (a Ctrl-C cannot reach it); the Ctrl-C tests then failed together (CI, twice). Put
    back after the test (before the autouse guard below checks)."""
    import signal
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(autouse=True)
def _signal_handlers_kept():
    """A test leaves SIGINT / SIGTERM handling as it found it: sqtool's CLI installs its handlers for a command's
    length and puts the caller's back, and a test that changed them would break the next test of the same xdist
    worker: the handlers are put back, and the test that changed them fails, naming them. (The Ctrl-C tests that
    once found SIGINT ignored in CI had inherited it: a suite started as a background job of a non-interactive
    shell starts with SIGINT ignored; the sigint_default fixture above gives them Python's default.)"""
    import signal
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    changed = {s.name: (h, signal.getsignal(s)) for s, h in before.items() if signal.getsignal(s) != h}
    for s, h in before.items():
        signal.signal(s, h)
    assert not changed, f"the test changed this process's signal handlers (before, after): {changed}"
