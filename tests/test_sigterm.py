"""A SIGTERM (CI cancel, `timeout`, docker stop) ends a command as a Ctrl-C does: what was saved stays, a run folder
with nothing in it goes, the resume command is said, exit 143 (it was killed on the spot: a folder holding only
.lock and config.yaml that a retry refused, and `--resume` found no last.pt). `train pretrain` in its training loop
first ends the step in progress and writes last.pt at it (`train.loop.SigtermStop`), so a preemption loses no epoch."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


ARGS = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "256", "--batch-size", "16",
        "--epochs", "200", "--progress", "false"]

# `sqtool ARGS...` with a hook that touches the file $MARK when the run reaches a point (and then waits there or goes
# on slowly), so that the test's SIGTERM lands where it means it to
HOOKED = """
import os, sys, time, torch
from pathlib import Path
import sqtool.train.pretrain as P
from sqtool.train import loop
mark, where = Path(os.environ["MARK"]), os.environ["WHERE"]
if where == "setup":                                  # the pairs being made, before the training loop
    def pairs(*a, **k):
        mark.touch()
        time.sleep(120)
    P.synthetic_pairs = pairs
else:                                                 # the training loop's 2nd step, in the first epoch
    real, n = loop.simsiam_loss, [0]
    def loss(*a):
        if torch.is_grad_enabled():
            n[0] += 1
            if n[0] == 2:
                mark.touch()
            time.sleep(0.2)
        return real(*a)
    loop.simsiam_loss = loss
from sqtool.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(out: Path, *extra: str, hooked: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = ["-c", HOOKED] if hooked else ["-m", "sqtool.cli"]
    if hooked:
        env.update(MARK=str(out.parent / "mark"), WHERE=hooked)
    return subprocess.Popen([sys.executable, *cmd, *ARGS, "--out", str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)   # only our signal


def _wait_for(path: Path, p: subprocess.Popen, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.1)


def test_sigterm_before_training_leaves_no_folder_a_retry_refuses(tmp_path):
    out = tmp_path / "pt"
    p = _start(out, hooked="setup")
    _wait_for(tmp_path / "mark", p)
    assert (out / "config.yaml").is_file()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1] == "sqtool: terminated (SIGTERM)" and "Traceback" not in err, err
    assert not out.exists() or not any(f.name in ("config.yaml", ".lock") for f in out.iterdir()), list(out.iterdir())


def test_sigterm_in_the_first_epoch_saves_that_step_keeps_the_folder_and_says_how_to_resume(tmp_path):
    """A preemption in the first epoch of a run that checkpoints at epoch ends only (the default): it ended on the
    spot, saved nothing and its folder went; now the step in progress ends and last.pt holds it."""
    out = tmp_path / "pt"
    p = _start(out, hooked="step 2")
    _wait_for(tmp_path / "mark", p)
    assert not (out / "last.pt").exists()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1] == f"sqtool: terminated (SIGTERM); continue with: sqtool train pretrain " \
                                           f"--resume {out}", err
    import torch
    st = torch.load(out / "last.pt", weights_only=True)["train_state"]
    assert st["epoch"] == 0 and 2 <= st["global_step"] < 15 and len(st["history"]) == st["global_step"]


def test_sigterm_after_a_checkpoint_says_how_to_resume(tmp_path):
    out = tmp_path / "pt"
    p = _start(out, "--ckpt-every", "2")
    _wait_for(out / "last.pt", p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    last = err.strip().splitlines()[-1]
    assert p.returncode == 143 and "continue with: sqtool train pretrain --resume" in last, err
    assert (out / "last.pt").is_file()


_POOL = """
import multiprocessing as mp, signal, sys, time
from sqtool import cli
cli._watch_sigterm([])
pool = mp.get_context("fork").Pool(2)
r = pool.map_async(time.sleep, [30, 30])
time.sleep(1.0)
pool.terminate()
print("terminated", file=sys.stderr)
"""


def test_a_forked_worker_ended_by_sigterm_dies_quietly():
    """data pairs' Pool.terminate() SIGTERMs its forked workers: they inherit the CLI's handler, and must not each
    print a 'Process ForkPoolWorker-N:' KeyboardInterrupt traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", _POOL], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "terminated", r.stderr


def test_only_the_first_sigterm_raises():
    """The first SIGTERM becomes KeyboardInterrupt (the command stops and says how to resume); a second one, which
    torchrun sends every rank again when one has ended, arrives while the 'terminated' line is written: it is
    recorded, not raised (it cut that line short with a traceback)."""
    import pytest

    from sqtool.cli import _watch_sigterm
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("SIGTERM already handled in this process")
    seen: list[int] = []
    previous = _watch_sigterm(seen)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):                        # the handler runs between bytecodes
                pass
        os.kill(os.getpid(), signal.SIGTERM)            # the second: recorded only
        for _ in range(100):
            pass
        assert seen == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
