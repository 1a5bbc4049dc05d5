"""DDP on gloo/CPU: 2 processes with a local batch of B/2 == 1 process with batch B (synced BN)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from sqtool.cli import main
from sqtool.core.checkpoint import load_checkpoint
from sqtool.core.trainlog import LOG_FILE, read_log

ARGS = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "96", "--epochs", "1",
        "--batch-size", "32", "--lr", "0.05", "--val-fraction", "0", "--max-steps", "3", "--progress", "false",
        "--dtype", "float64"]


def test_two_process_ddp_matches_one_process(tmp_path):
    # float64 so that the comparison is not drowned in float32 summation-order noise: BN-heavy
    # gradients at init differ from float64 by up to ~2 % in float32 whatever the batch order
    assert main(ARGS + ["--log-every", "1", "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "sqtool.cli", *ARGS, "--log-every", "1", "--out", str(tmp_path / "two")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    l1, l2 = [h["loss"] for h in one["history"]], [h["loss"] for h in two["history"]]
    assert len(l1) == len(l2) == 3
    assert all(abs(a - b) < 1e-9 for a, b in zip(l1, l2)), (l1, l2)
    rows = read_log(tmp_path / "two" / LOG_FILE)             # rank 0's alone: each step once, one header
    assert [r["step"] for r in rows] == ["1", "2", "3"] and [float(r["loss"]) for r in rows] == l2
    assert (tmp_path / "two" / LOG_FILE).read_text().count("kind,") == 1
    s1, s2 = load_checkpoint(tmp_path / "one")["state_dict"], load_checkpoint(tmp_path / "two")["state_dict"]
    for k in s1:
        if s1[k].is_floating_point():
            assert torch.allclose(s1[k], s2[k], rtol=1e-7, atol=1e-9), k     # weights AND BN running stats


def test_a_spectral_encoder_pretrains_under_torchrun(tmp_path):
    """`sqtool-torchrun ... train pretrain --model spec_student_xs` stopped at its first step: "Expected to have
    finished reduction in the prior iteration ... parameters that were not used" (the per-bin head, which SimSiam
    never reads, had no gradient). Its head is frozen while pretraining: 2 processes = 1 process, as above."""
    pairs = tmp_path / "pairs"
    assert main(["data", "pairs", "--data", "synthetic", "--model", "spec_student_xs", "--synthetic-subjects", "3",
                 "--workers", "1", "--no-progress", "--out", str(pairs)]) == 0
    args = ["train", "pretrain", "--model", "spec_student_xs", "--pairs", str(pairs), "--epochs", "1",
            "--batch-size", "16", "--lr", "0.05", "--val-fraction", "0", "--max-steps", "2", "--progress", "false",
            "--dtype", "float64"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "sqtool.cli", *args, "--out", str(tmp_path / "two")],
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    l1, l2 = ([h["loss"] for h in json.loads((tmp_path / d / "metrics.json").read_text())["history"]]
              for d in ("one", "two"))
    assert len(l1) == len(l2) == 2 and all(abs(a - b) < 1e-9 for a, b in zip(l1, l2)), (l1, l2)
    s1, s2 = load_checkpoint(tmp_path / "one")["state_dict"], load_checkpoint(tmp_path / "two")["state_dict"]
    assert all(torch.allclose(s1[k], s2[k], rtol=1e-7, atol=1e-9) for k in s1 if s1[k].is_floating_point())


@pytest.mark.parametrize("fail", [False, True])
def test_the_ddp_wrapper_is_freed_before_the_process_group_is_destroyed(tmp_path, fail):
    """At cleanup_distributed, no DistributedDataParallel object is left on either rank: a wrapper left alive past
    destroy_process_group is freed at the interpreter's exit, where gloo's work objects abort the rank (the
    2-process test's rare SIGABRT). Also when an exception leaves the wrapper's forward (a Ctrl-C mid-step): its
    traceback keeps that frame, and with it the wrapper, alive. Two ranks of `train pretrain` in forked processes
    (env rendezvous), each with cleanup_distributed wrapped to count the live DDP objects after a gc.collect()."""
    import socket
    import textwrap
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent(f"""
        import gc, os, torch.multiprocessing as mp
        def run(rank):
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}", WORLD_SIZE="2", RANK=str(rank),
                              LOCAL_RANK=str(rank))
            from torch.nn.parallel import DistributedDataParallel as DDP
            from sqtool.cli import main
            from sqtool.train import loop
            clean = loop.cleanup_distributed
            def counted(d):
                gc.collect()
                os.write(1, f"{{rank}} ddp {{sum(isinstance(o, DDP) for o in gc.get_objects())}}\\n".encode())
                clean(d)
            loop.cleanup_distributed = counted
            if {fail!r}:                          # the second step's forward raises on both ranks
                forward, calls = loop.SimSiamStep.forward, []
                def failing(self, *a, **k):
                    calls.append(1)
                    if len(calls) == 2:
                        raise RuntimeError("boom")
                    return forward(self, *a, **k)
                loop.SimSiamStep.forward = failing
            assert main({ARGS!r} + ["--out", r"{tmp_path / 'run'}"]) == (1 if {fail!r} else 0)
        mp.start_processes(run, nprocs=2, start_method="fork")
    """)
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(line for line in r.stdout.splitlines() if " ddp " in line) == ["0 ddp 0", "1 ddp 0"], r.stdout


def test_first_error_gives_every_rank_the_first_failing_ranks_line(tmp_path):
    """loop.first_error over a real gloo group (test_pretrain's once-per-machine test fakes it): no line anywhere
    gives None on every rank; one rank's line reaches the rank that saw none; several: the lowest rank's."""
    import textwrap
    code = textwrap.dedent(f"""
        import os, torch.distributed as dist, torch.multiprocessing as mp
        from sqtool.train import loop
        def run(rank):
            dist.init_process_group("gloo", init_method="file://{tmp_path / 'pg'}", rank=rank, world_size=2)
            d = loop.Dist(rank=rank, world=2, local_rank=rank)
            got = [loop.first_error(d, None), loop.first_error(d, "one" if rank == 1 else None),
                   loop.first_error(d, f"rank {{rank}}")]
            os.write(1, f"{{rank}} {{got}}\\n".encode())      # one write: the two ranks' lines never interleave
            dist.destroy_process_group()
        mp.start_processes(run, nprocs=2, start_method="fork")
    """)
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(r.stdout.splitlines()) == [f"{k} [None, 'one', 'rank 0']" for k in (0, 1)], r.stdout
    from sqtool.train import loop
    assert (loop.first_error(loop.Dist(), "x"), loop.first_error(loop.Dist(), None)) == ("x", None)   # alone


NAN_ON_RANK_1 = """
import os, sys, torch
from sqtool.train import loop
real, n = loop.simsiam_loss, [0]
def poisoned(*a):                                   # the 5th training step's loss is NaN on rank 1 only
    out = real(*a)
    if torch.is_grad_enabled():
        n[0] += 1
        if n[0] == 5 and os.environ["RANK"] == "1":
            out = out * float("nan")
    return out
loop.simsiam_loss = poisoned
from sqtool.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_nan_at_a_validation_step_stops_every_rank_with_the_same_line(tmp_path):
    """The loss is read a step late; at a --val-every step every rank reads it (only rank 0 did: rank 1 went on
    and died on a closed gloo connection instead of the one line)."""
    script = tmp_path / "nan.py"
    script.write_text(NAN_ON_RANK_1)
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "160", "--batch-size", "16",
            "--lr", "0.05", "--epochs", "3", "--ckpt-every", "4", "--val-every", "5", "--device", "cpu",
            "--progress", "false", "--out", str(tmp_path / "run")]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), *args], env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=300)
    said = "sqtool: error: loss is nan at epoch 0 step 4 (global step 4): training stopped; last good checkpoint kept"
    assert r.returncode != 0 and r.stderr.count(said) == 2, r.stderr[-3000:]     # once per rank (lines may interleave)
    assert "Connection closed" not in r.stderr and r.stderr.count("sqtool: error") == 2, r.stderr[-3000:]



PREEMPTED = """
import os, signal, sys, time, torch
from sqtool.train import loop
real, n = loop.simsiam_loss, [0]
rank, how = os.environ["RANK"], os.environ["PREEMPT"]
def loss(*a):
    if torch.is_grad_enabled():
        n[0] += 1
        if how == "rank 1" and n[0] == 2 and rank == "1":     # rank 1 alone gets a SIGTERM in its 2nd step
            os.kill(os.getpid(), signal.SIGTERM)
        if how.startswith("launcher"):                       # steps slowed down; rank 0 says when step 2 runs
            time.sleep(0.5)
            if n[0] == 2 and rank == "0":
                open(how.split(" ", 1)[1], "w").close()
    return real(*a)
loop.simsiam_loss = loss
from sqtool.cli import main
sys.exit(main(sys.argv[1:]))     # rank 1 may end first: torchrun's SIGTERM to rank 0 then races its last line
"""


def sigterm_at_step_2(cmd: list[str], env: dict, mark) -> tuple[int, str]:
    """Start a launcher running PREEMPTED (slowed steps), SIGTERM it once rank 0 runs its 2nd step (`mark` appears):
    (its exit code, its stderr)."""
    import signal
    import time
    p = subprocess.Popen(cmd, env={**env, "PREEMPT": f"launcher {mark}"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.monotonic()
    while not mark.exists():
        assert p.poll() is None and time.monotonic() - t0 < 240, p.communicate()
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def test_a_sigterm_stops_every_rank_at_one_step_and_the_torchrun_resume_is_bit_exact(tmp_path, capsys):
    """A SIGTERM (a preemption): to one rank of two, both ranks stop after the same step (the one after: the mark
    travels with that step's loss all-reduce), rank 0 writes last.pt there, both end as terminated, and the resume
    line is the torchrun command with 2 processes (it was the one-process command, which continues, but not bit
    for bit); to torchrun itself (which passes it on), the same. Run as printed, the resume ends exactly as an
    uninterrupted 2-process run; on one process it continues with one WARNING line."""
    import shlex
    import shutil
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "96", "--epochs", "1",
            "--batch-size", "16", "--lr", "0.05", "--val-fraction", "0", "--device", "cpu", "--progress", "false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    r = subprocess.run(torchrun + ["-m", "sqtool.cli", *args, "--out", str(tmp_path / "full")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    script = tmp_path / "preempted.py"
    script.write_text(PREEMPTED)

    def resumed_equals_full(run, hint):
        r = subprocess.run(torchrun + shlex.split(hint)[4:], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr[-3000:]
        res = json.loads((run / "metrics.json").read_text())
        assert res["history"] == full["history"] and len(res["history"]) == 6            # exactly
        a, b = load_checkpoint(tmp_path / "full")["state_dict"], load_checkpoint(run)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a)

    run = tmp_path / "cut"                                      # rank 1 alone: stopped after step 3, on both
    r = subprocess.run(torchrun + [str(script), *args, "--out", str(run)], env={**env, "PREEMPT": "rank 1"},
                       capture_output=True, text=True, timeout=300)
    hint = f"torchrun --standalone --nproc_per_node 2 -m sqtool.cli train pretrain --resume {run}"
    assert r.returncode != 0 and r.stderr.count("sqtool: terminated (SIGTERM)") == 2, r.stderr[-3000:]
    assert f"sqtool: terminated (SIGTERM); continue with: {hint}\n" in r.stderr, r.stderr[-3000:]
    assert f"SIGTERM: stopped after global step 3 (epoch 1, step 3 of 6); {run / 'last.pt'} saved" in r.stderr
    assert "Connection closed" not in r.stderr and "sqtool: error" not in r.stderr, r.stderr[-3000:]
    ck = load_checkpoint(run, name="last.pt")
    assert ck["train_state"]["global_step"] == 3 and ck["world"] == 2 and not (run / "model.pt").exists()
    shutil.copytree(run, tmp_path / "one", ignore=shutil.ignore_patterns(".lock"))
    resumed_equals_full(run, hint)

    run = tmp_path / "launcher"                                 # torchrun's own SIGTERM, passed on to both ranks
    _, err = sigterm_at_step_2(torchrun + [str(script), *args, "--out", str(run)], env, tmp_path / "step2")
    hint = f"torchrun --standalone --nproc_per_node 2 -m sqtool.cli train pretrain --resume {run}"
    assert f"sqtool: terminated (SIGTERM); continue with: {hint}\n" in err, err[-3000:]
    assert "Connection closed" not in err and "sqtool: error" not in err, err[-3000:]
    assert 2 <= load_checkpoint(run, name="last.pt")["train_state"]["global_step"] < 6
    resumed_equals_full(run, hint)

    capsys.readouterr()
    assert main(["train", "pretrain", "--resume", str(tmp_path / "one")]) == 0        # 1 process: goes on, says so
    err = [ln for ln in capsys.readouterr().err.splitlines() if "WARNING" in ln]
    assert err == [f"sqtool: WARNING: {tmp_path / 'one'} was trained on 2 processes and resumes on 1: it continues "
                   "with the same batches, but not bit for bit (each step sums over another number of ranks); "
                   "resume it on 2 for an exact continuation"], err
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["global_step"] == 6


RANK_2_REFUSES = """
import os, sys
from sqtool.core import SqtoolError
where = os.environ["REFUSE_AT"]
if os.environ["RANK"] == "2":                       # rank 2 alone sees a bad input; ranks 0 and 1 see none
    if where == "precheck":                         # before the process group: its node lacks the pairs folder
        import sqtool.train.cli as tc
        def refuse(cfg):
            raise SqtoolError("pair shards /data/pairs not found on rank 2's node")
        tc._precheck_pretrain = refuse
    elif where == "pairs":                          # in run_pretrain, the group set up: its copy of the pairs
        from sqtool.train import pretrain
        def refuse(*a, **k):
            raise SqtoolError("rank 2's copy of the pairs is corrupt")
        pretrain.synthetic_pairs = refuse
    elif where == "resume":                         # its view of the run folder: a last.pt it cannot read
        from sqtool.core import checkpoint
        def refuse(path, *a, **k):
            raise SqtoolError(f"{path}: truncated on rank 2's node")
        checkpoint.load_checkpoint = refuse
from sqtool.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("where", ["precheck", "pairs", "resume"])
def test_one_rank_of_three_refusing_stops_every_rank_with_one_line(tmp_path, where):
    """The 3-rank refusal race: rank 2 alone refuses its input. Before the process group existed, it exited while
    ranks 0 and 1 waited for it in their set-up until the launcher killed them (SIGKILL, rank 0's folder with its
    config.yaml left behind); after it, ranks 0 and 1 died at their next collective, each with its own 'Connection
    closed by peer' line. Now every rank stops non-zero with rank 2's one line (said once, by rank 0), the
    launcher's line, no traceback, no folder left, and a resumed run's last.pt and config.yaml untouched. The
    launcher is bounded by a timeout: a hang fails the test."""
    import hashlib
    script = tmp_path / "refuses.py"
    script.write_text(RANK_2_REFUSES)
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "48", "--epochs", "1",
            "--batch-size", "12", "--val-fraction", "0", "--device", "cpu", "--progress", "false"]
    run = tmp_path / "run"
    if where == "resume":                           # a run stopped at its 1st step (one process), to resume
        assert main(args + ["--max-steps", "1", "--out", str(run)]) == 0
        before = {f: hashlib.sha256((run / f).read_bytes()).hexdigest() for f in ("last.pt", "model.pt", "config.yaml",
                                                                           "metrics.json")}
        args = ["train", "pretrain", "--resume", str(run)]
    else:
        args = args + ["--out", str(run)]
    r = subprocess.run([sys.executable, "-m", "sqtool.train.launch", "--standalone", "--nproc_per_node", "3",
                        str(script), *args], env={**os.environ, "OMP_NUM_THREADS": "1", "REFUSE_AT": where},
                       capture_output=True, text=True, timeout=240)
    said = {"precheck": "pair shards /data/pairs not found on rank 2's node",
            "pairs": "rank 2's copy of the pairs is corrupt",
            "resume": f"{run / 'last.pt'}: truncated on rank 2's node"}[where]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("sqtool") and not ln.startswith("sqtool: note")]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[:-1] == [f"sqtool: error: {said}"], r.stderr[-3000:]           # once: no 'terminated', no other
    assert lines[-1].startswith("sqtool-torchrun: ") and "SIGKILL" not in lines[-1], r.stderr[-3000:]
    if where == "resume":
        assert {f: hashlib.sha256((run / f).read_bytes()).hexdigest() for f in before} == before
    else:
        assert not run.exists(), sorted(p.name for p in run.iterdir())


RANK_1_OTHER_ARGS = """
import os, sys
from sqtool.cli import main
more = os.environ["RANK_1_ARGS"].split() if os.environ["RANK"] == "1" else []
sys.exit(main(sys.argv[1:] + more))                 # rank 1 (another node's command) with other options
"""


@pytest.mark.parametrize("where", ["start", "resume"])
def test_ranks_started_with_other_options_are_refused_in_one_line(tmp_path, where):
    """A launch where one rank's command differs (a node given another --lr, --seed, --max-steps or pairs) trained on
    silently: the ranks' weights drifted apart under different learning rates, another seed repeated and skipped
    pairs, another --max-steps left one rank waiting for the other. The ranks now compare their resolved options (and
    pairs, and the last.pt a resume continues) first: one line naming the rank and what differs, no folder left, a
    resumed run's files untouched."""
    import hashlib
    script = tmp_path / "other.py"
    script.write_text(RANK_1_OTHER_ARGS)
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "48", "--epochs", "1",
            "--batch-size", "12", "--val-fraction", "0", "--device", "cpu", "--progress", "false"]
    run = tmp_path / "run"
    if where == "resume":
        assert main(args + ["--max-steps", "1", "--out", str(run)]) == 0
        before = {f: hashlib.sha256((run / f).read_bytes()).hexdigest() for f in ("last.pt", "config.yaml")}
        args, other, said = ["train", "pretrain", "--resume", str(run)], "--max-steps 3", "max_steps 3 where rank 0 has max_steps 0"
    else:
        args, other, said = args + ["--out", str(run)], "--lr 0.05", "lr 0.05 where rank 0 has lr 0.0001"
    r = subprocess.run([sys.executable, "-m", "sqtool.train.launch", "--standalone", "--nproc_per_node", "2",
                        str(script), *args], env={**os.environ, "OMP_NUM_THREADS": "1", "RANK_1_ARGS": other},
                       capture_output=True, text=True, timeout=240)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("sqtool") and not ln.startswith("sqtool: note")]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[:-1] == [f"sqtool: error: the ranks were not started alike: rank 1 has {said}: start every rank (on "
                          "every node) with the same command and the same pairs"], r.stderr[-3000:]
    if where == "resume":
        assert {f: hashlib.sha256((run / f).read_bytes()).hexdigest() for f in before} == before
    else:
        assert not run.exists()


TINY_RUN = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "96", "--epochs", "1",
            "--batch-size", "12", "--val-fraction", "0", "--device", "cpu", "--progress", "false", "--ckpt-every", "2"]


RANK_1_AT_STEP_4 = """
import os, signal, sys
from sqtool.train import loop
if os.environ["RANK"] == "1":                 # rank 1 gets signal SIGNAL at its 4th step: SIGKILL (out of memory, a
    real, steps = loop.simsiam_loss, []       # node lost), SIGSTOP (stalled: a read of a hung network file system,
    def loss(*a):                             # a stuck device)
        steps.append(1)
        if len(steps) == 4:
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
        return real(*a)
    loop.simsiam_loss = loss
from sqtool.cli import main
sys.exit(main(sys.argv[1:]))
"""


def two_ranks(script, args: list[str], **env) -> list[subprocess.Popen]:
    """Ranks 0 and 1 of a run of 2 started by hand (no launcher: one rank's end is not the other's stop), each running
    `script` with `args` and `env` added to the environment, their stderr piped."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **env, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    return [subprocess.Popen([sys.executable, str(script), *args], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]


def test_a_rank_killed_mid_run_leaves_the_other_one_line_with_its_checkpoint_and_resume(tmp_path):
    """Rank 1 of 2 SIGKILLed at step 4 (its node's launcher alone sees it, as on another node: rank 0 gets no SIGTERM
    from it). Rank 0's next collective fails; it said 'sqtool: error: RuntimeError: [.../gloo/transport/tcp/pair.cc:
    537] Read error ... GLHF!' and nothing of its run. Now one line: another rank is lost, the last.pt kept (step 2,
    --ckpt-every 2) and the command that continues the run."""
    script = tmp_path / "killed.py"
    script.write_text(RANK_1_AT_STEP_4)
    run = tmp_path / "run"
    procs = two_ranks(script, TINY_RUN + ["--out", str(run)], SIGNAL="SIGKILL")
    out = [p.communicate(timeout=240) for p in procs]
    assert procs[1].returncode == -9
    err = out[0][1]
    lines = [ln for ln in err.splitlines() if ln.startswith("sqtool") and not ln.startswith("sqtool: note")]
    assert procs[0].returncode == 1 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("sqtool: error: lost another rank of this run (gloo: "), err[-3000:]
    assert lines[0].endswith(f"; {run / 'last.pt'} (global step 2) kept; continue with: torchrun --standalone "
                             f"--nproc_per_node 2 -m sqtool.cli train pretrain --resume {run}"), lines[0]
    assert "GLHF" not in lines[0] and "pair.cc" not in lines[0]


def test_a_stalled_rank_ends_the_run_with_one_line_and_a_checkpoint_that_resumes(tmp_path):
    """Rank 1 of 2 stalls in step 4 (SIGSTOP). Rank 0 waited in that step's all-reduce for the backend's timeout, 30
    min on gloo (10 on NCCL), then said 'lost another rank of this run (gloo: Timed out waiting 1800000ms for recv
    operation to complete)': as if a rank were gone. With --ddp-timeout it waits that long and says a rank is stuck,
    at which step, the last.pt kept (step 2: --ckpt-every 2) and the command that continues (under a launcher, its
    line then names the rank it had to kill). last.pt resumes (here in one process, to the run's end)."""
    script, run = tmp_path / "stalled.py", tmp_path / "run"
    script.write_text(RANK_1_AT_STEP_4)
    procs = two_ranks(script, TINY_RUN + ["--ddp-timeout", "5", "--out", str(run)], SIGNAL="SIGSTOP")
    try:
        _, err = procs[0].communicate(timeout=240)
    finally:
        procs[1].kill()
        procs[1].communicate()
    lines = [ln for ln in err.splitlines() if ln.startswith("sqtool") and not ln.startswith("sqtool: note")]
    assert procs[0].returncode == 1 and "Traceback" not in err, err[-3000:]
    assert lines == [
        "sqtool: error: another rank of this run did not answer within 5 s at global step 4 (--ddp-timeout): it is "
        "stuck (a data read on a network file system, a deadlocked loader, a stalled device; the launcher names the "
        f"rank it had to kill); {run / 'last.pt'} (global step 2) kept; continue with: torchrun --standalone "
        f"--nproc_per_node 2 -m sqtool.cli train pretrain --resume {run}"], err[-3000:]
    assert main(["train", "pretrain", "--resume", str(run)]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "done" and m["global_step"] == 8 and m["world_sizes"] == [2, 1], m

