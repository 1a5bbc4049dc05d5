"""The pieces every training command shares: devices and distributed set-up, synced BatchNorm,
the paper's optimiser, mixed precision, RNG state, and the collapse monitor.

Distributed runs are started by `torchrun` (it sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR):
gloo on CPU, nccl on CUDA. BatchNorm statistics are synchronised across ranks: torch's SyncBatchNorm on
GPUs, and on CPU (where torch's SyncBatchNorm refuses to run) `GlobalBatchNorm` below, which
all-reduces the batch mean and variance with a differentiable all-reduce, so a run on W ranks with a
local batch of B/W computes the same forward pass and the same gradients as one process with batch B
(up to float summation order).
"""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sqtool.core import SqtoolError
from sqtool.core.errors import Said
from sqtool.train.launch import DDP_TIMEOUT_S


# ----------------------------------------------------------------------------- devices, ranks

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    timeout_s: float = 0.0      # how long a collective waits for the other ranks (setup_distributed; 0: one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SqtoolError("device 'cuda' asked for but no CUDA device is available")
        return torch.device("cuda", local_rank if name == "cuda" else int(name.split(":")[1]))
    if name != "cpu":
        raise SqtoolError(f"unknown device '{name}' (use auto, cpu, cuda)")
    return torch.device("cpu")


def setup_distributed(device: str = "auto", timeout_s: float = DDP_TIMEOUT_S) -> Dist:
    """One process: Dist(world=1). Under torchrun: init the process group (gloo on CPU, nccl on GPU) whose
    collectives wait `timeout_s` for the other ranks (a rank stuck in a data read or on its device: then they fail,
    `rank_loss_said` says it in one line); a group set up already (the CLI's, before the run's config was read)
    gets that timeout from here on."""
    import datetime
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world <= 1:
        return Dist(device=dev)
    import torch.distributed as dist
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_initialized() and dist.get_backend() != backend:     # set up by the CLI for the device its line
        dist.destroy_process_group()                                # named, the run's resolved to another one
    wait = datetime.timedelta(seconds=timeout_s)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=wait)
    else:
        dist.distributed_c10d._set_pg_timeout(wait)
    global _group_set_up
    _group_set_up = True
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=dev,
                backend=backend, timeout_s=timeout_s)


_group_set_up = False       # setup_distributed has run under several ranks: their refusals since are agreed in it


def group_set_up() -> bool:
    """Whether this process has set up its run's process group (`setup_distributed`, several ranks)."""
    return _group_set_up


def cleanup_distributed(d: Dist) -> None:
    """The run's last tensors freed, then the process group destroyed (a finished run's ranks meet at a barrier
    before this; an interrupted one must not wait here for a rank still inside a collective). The caller drops its
    DistributedDataParallel wrapper first (`step_mod = None`): DDP's reducer holds the group and its last gloo work
    objects with their tensors, and the wrapper sits in reference cycles, so left alone it is freed only by the
    interpreter's exit, where a gloo thread's tensor release takes the GIL of an interpreter being torn down and
    the rank aborts (SIGABRT, "terminate called without an active exception": a 2-process run under load, 1 of 12,
    after it had finished and written its model; pytorch/pytorch#179291 describes the same exit). gc.collect()
    here then frees those cycles while the group is still alive."""
    if d.enabled:
        import gc

        import torch.distributed as dist
        if dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist
        dist.barrier()


class SigtermStop:
    """A SIGTERM (preemption: SLURM, Kubernetes, torchrun passing its own on) turned into a stop at a step boundary,
    for a training loop to save its state first. Within `with SigtermStop(d) as term:` the signal only marks the
    rank (`received`); the loop asks `term.stop` once per step and, when it says so, ends that step, writes its
    checkpoint and leaves the block. Leaving it puts the handler before it back and, when this rank got the signal
    (or the ranks agreed to stop), delivers SIGTERM again to that handler: under the CLI a KeyboardInterrupt that
    ends the command with its resume line and exit 143; alone, the system's default action (the process ends).
    A rank blocked in a collective is not disturbed: the mark waits for the loop.

    The ranks stop at the same step: each step's loss all-reduce carries how many ranks were marked (`reduce`: one
    collective per step, as before), and every rank reads that count with the loss, a step later (`read`, in the
    loop's one host sync per step), so all of them see the same count after the same step. One process reads its
    own mark at once. Installed only in the main thread and over a handler that does not ignore SIGTERM; SIGINT
    (Ctrl-C) is left alone: it still interrupts at once."""

    def __init__(self, d: Dist):
        self.d = d
        self.received = False           # this rank got a SIGTERM
        self.agreed = False             # a rank did, as the ranks' last all-reduce said
        self._previous = None

    def __enter__(self) -> "SigtermStop":
        import signal
        import threading
        previous = signal.getsignal(signal.SIGTERM)
        if threading.current_thread() is threading.main_thread() and previous not in (signal.SIG_IGN, None):
            self._previous = signal.signal(signal.SIGTERM, self._mark)
        return self

    def _mark(self, signum, frame) -> None:
        self.received = True

    def __exit__(self, exc_type, exc, tb) -> None:
        import signal
        if self._previous is None:
            return
        signal.signal(signal.SIGTERM, self._previous)
        self._previous = None
        if self.received or (self.agreed and exc_type is None):
            signal.raise_signal(signal.SIGTERM)      # the run's end as the signal asked, its state saved

    @property
    def stop(self) -> bool:
        """Whether the loop stops after the step it is in (the same step on every rank)."""
        return self.agreed if self.d.enabled else self.received

    def reduce(self, loss: torch.Tensor) -> torch.Tensor:
        """This step's loss (0-d, on the device) for `read`: under several ranks their sum and the count of ranks
        marked by a SIGTERM, (2,), all-reduced on the device without waiting for it."""
        if not self.d.enabled:
            return loss.detach()
        import torch.distributed as dist
        mark = torch.full((), float(self.received), device=loss.device, dtype=loss.dtype)
        t = torch.stack([loss.detach(), mark])                  # (2,)
        dist.all_reduce(t)
        return t

    def read(self, t: torch.Tensor) -> float:
        """The mean loss over ranks of a `reduce`d step (a host sync); notes whether a rank was marked by then."""
        if not self.d.enabled:
            return float(t)
        total, marked = t.tolist()
        self.agreed = self.agreed or marked > 0
        return total / self.d.world


def lost_rank(d: Dist, e: BaseException) -> str | None:
    """What a collective's failure says when `e` is one (another rank of the run is gone: killed, crashed, its node
    lost), e.g. "gloo: Connection reset by peer"; None for any other error, or in one process."""
    import re

    import torch.distributed as dist
    text = str(e).strip()
    if not d.enabled or not (isinstance(e, dist.DistError) or (isinstance(e, RuntimeError) and "/gloo/" in text)):
        return None
    first = re.sub(r"^\[\S+\]\s*", "", text.splitlines()[0] if text else type(e).__name__)   # its source file:line
    return f"{d.backend}: {first.split(' This is typically')[0].strip().rstrip('.')}"


def timed_out(e: BaseException) -> bool:
    """Whether a collective's failure (`lost_rank`) is its timeout: another rank did not answer within the group's
    --ddp-timeout (gloo: 'Timed out waiting 600000ms for recv operation to complete'), not a rank gone."""
    import re
    return bool(re.search(r"\btimed out\b", str(e), re.IGNORECASE))


@contextlib.contextmanager
def rank_loss_said(d: Dist, then, at=None):
    """`with rank_loss_said(d, then, at):` around a run's training: a collective failing because another rank is gone
    (a SIGKILL, an out-of-memory kill, a crashed node; `lost_rank`) or stuck past the group's timeout (a data read
    hung on a network file system, a deadlocked loader, a stalled device: `timed_out`) stops this rank with one line
    that says so (a timeout: at the step `at()` returns) and what `then()` returns (where the last checkpoint is, how to
    continue), instead of the backend's raw error. The failure's frames are cleared first (its DDP forward's frame
    would keep the wrapper, and with it the group, alive)."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - only a lost rank's failure becomes the line; others go on as they were
        cause = lost_rank(d, e)
        if cause is None:
            raise
        import traceback
        traceback.clear_frames(e.__traceback__)
        if timed_out(e):
            step = "" if at is None else f" at global step {at()}"
            raise SqtoolError(f"another rank of this run did not answer within {d.timeout_s:g} s{step} (--ddp-timeout):"
                              f" it is stuck (a data read on a network file system, a deadlocked loader, a stalled "
                              f"device; the launcher names the rank it had to kill); {then()}") from e
        raise SqtoolError(f"lost another rank of this run ({cause}): one of its processes stopped or its node went "
                          f"away (its own lines, or its launcher's, say why); {then()}") from e


def first_error(d: Dist, msg: str | None) -> str | None:
    """The first rank's error line when any rank has one, else None, on every rank: so the ranks that did
    not see a problem (they trusted another rank's check) stop with the same one line."""
    if not d.enabled:
        return msg
    import torch.distributed as dist
    flag = torch.tensor([0.0 if msg is None else 1.0], device=d.device)
    dist.all_reduce(flag)
    if float(flag) == 0:
        return None
    msgs = [None] * d.world
    dist.all_gather_object(msgs, msg)
    return next(m for m in msgs if m is not None)


def disagreement(d: Dist, facts: dict) -> str | None:
    """Whether the ranks were started alike, on every rank: None when every rank's `facts` (plain, picklable values)
    equal rank 0's, else the line that names the first rank that differs and each of its differing facts with rank
    0's. A launch where one rank (one node's command) had another option or other pairs trained on silently: another
    --lr diverged the ranks' weights, another --seed or corpus repeated and skipped pairs."""
    if not d.enabled:
        return None
    import torch.distributed as dist
    every = [None] * d.world
    dist.all_gather_object(every, facts)
    ref = every[0]
    for r, mine in enumerate(every[1:], 1):
        keys = [k for k in dict.fromkeys([*ref, *mine]) if ref.get(k) != mine.get(k)]
        if keys:
            return (f"the ranks were not started alike: rank {r} has " + ", ".join(f"{k} {mine.get(k)}" for k in keys)
                    + " where rank 0 has " + ", ".join(f"{k} {ref.get(k)}" for k in keys)
                    + ": start every rank (on every node) with the same command and the same pairs")
    return None


def error_text(e: BaseException) -> str:
    """The line the CLI prints after `sqtool: error: ` for `e` (a refusal's own words; an OSError by errno)."""
    if isinstance(e, SqtoolError):
        return str(e)
    if isinstance(e, OSError):
        from sqtool.core.errors import oserror_line
        return oserror_line(e)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg} (run with --debug for the traceback)"


def stop_together(d: Dist, err: str, code: int = 1, cleanup=None, cause: BaseException | None = None):
    """Every rank, with the same `err` (from `first_error`): stop the run with ONE line. Rank 0 runs `cleanup`
    (a folder this command made and left empty goes), prints `sqtool: error: ERR`, then all ranks meet at a barrier
    and raise `Said` (exit `code`, nothing more printed). The barrier comes after the line and the cleanup: the
    launcher stops every other rank as soon as one exits (torchrun: SIGTERM), and without it rank 0 could be
    stopped before its line (the reason then lost, a 'terminated' line in its place) or before its cleanup (a folder
    holding only config.yaml, that a retry refuses). From here a SIGTERM (that stop) is ignored where a handler was
    set (the CLI's, which puts its own back as it returns: it would turn the stop into an interrupt mid-exit, a
    'terminated' line after the error); where none was, it ends the rank as it would have.
    After the barrier rank 0, which said the line, exits first, with `code`; the other ranks wait (at most
    STOP_WAIT_S) for the launcher's stop and exit with 143, as a rank it stopped: `sqtool-torchrun` then names rank 0
    as the one that failed, whose line is above, and the others as stopped. Leaving together, whichever rank the
    launcher saw first was named ('failed on rank 1: the reason is on its line above', a rank that said nothing, or
    'on ranks 0, 1: on their lines above' over one line)."""
    import signal
    import threading
    main_thread = threading.current_thread() is threading.main_thread()
    handled = main_thread and callable(signal.getsignal(signal.SIGTERM))
    if handled:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if d.is_main:
        try:
            if cleanup is not None:
                cleanup()
        finally:
            import sys
            print(f"sqtool: error: {err}", file=sys.stderr, flush=True)
    barrier(d)
    if not d.is_main and handled and _stopped_by_launcher():
        raise Said(err, code=128 + int(signal.SIGTERM)) from cause
    raise Said(err, code=code) from cause


STOP_WAIT_S = 10.0      # how long a rank other than 0 waits, after a refusal agreed, for the launcher to stop it
MEET_WAIT_S = 60.0      # how long the ranks of a refusal at start-up wait for each other (`refuse_at_start`)


def refuse_at_start(e: SqtoolError) -> int:
    """The exit code of refusal `e` on one rank of several (torchrun's WORLD_SIZE) raised before this process set up
    its run's process group: a usage error, `train finetune`'s one-process rule, a check of the command line. Every
    rank meets the same refusal at start-up, so they meet in a gloo group made for it and stop as an agreed refusal
    does (`stop_together`): rank 0 says the one line and exits first with e.code, the others with 143 as the launcher
    stops them. Each rank printed it before (N lines), and the first to exit had the launcher stop the others
    mid-exit ('sqtool: terminated' after the line, or in its place). When the ranks do not all meet within
    MEET_WAIT_S (a rank refusing alone, no launcher's rendezvous in the environment), this rank says its own line."""
    import datetime
    import sys

    import torch.distributed as dist
    try:
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=MEET_WAIT_S))
    except Exception:  # noqa: BLE001 - no group to agree in: the line said here, as one process says it
        print(f"sqtool: error: {e}", file=sys.stderr, flush=True)
        return e.code
    d = Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
             backend="gloo")
    try:
        stop_together(d, first_error(d, error_text(e)), code=e.code, cause=e)
    except Said as said:
        return said.code
    finally:
        cleanup_distributed(d)


class _Stop(Exception):
    pass


def _stopped_by_launcher() -> bool:
    """Wait up to STOP_WAIT_S for a SIGTERM (the launcher stopping this rank once rank 0 has exited): True when it
    came. The handler before it is put back either way."""
    import signal
    import time

    def stop(signum, frame):
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        time.sleep(STOP_WAIT_S)
        return False
    except _Stop:
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def refusals_agreed(d: Dist, cleanup=None):
    """`with refusals_agreed(d):` around the checks of a run's input that one rank may fail alone (its copy of the
    pairs, its view of a run folder): on one process the error as is; under several ranks every rank leaves the
    block together, and when any rank's block raised, all stop with the first failing rank's one line
    (`stop_together`; the refusing rank's error is the `Said`'s cause, for --debug). Without this, a rank that
    refused exited while the others went on to their next collective and died there ('Connection closed by peer',
    a line each) or were killed by the launcher while waiting for it (their folder left behind). The block must
    not run a collective itself (a rank that raised before it would pair its agreement with it)."""
    if not d.enabled:
        yield
        return
    mine = None
    try:
        yield
    except Exception as e:  # noqa: BLE001 - any failure of one rank is agreed on, not only refusals
        mine = e
    err = first_error(d, None if mine is None else error_text(mine))
    if err is not None:
        stop_together(d, err, code=mine.code if isinstance(mine, SqtoolError) else 1, cleanup=cleanup, cause=mine)


# ----------------------------------------------------------------------------- synced BatchNorm on CPU

class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are computed over the batch of ALL ranks (gloo/CPU).

    Two differentiable all-reduces (sum, then sum of squared deviations) give the exact global mean and
    biased variance; autograd's backward of all_reduce is an all_reduce of the gradients, so the
    gradient equals the single-process gradient of the global batch. Same state_dict keys as BatchNorm.
    """

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x):                                       # (B, C) or (B, C, T)
        import torch.distributed as dist
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training or not self.track_running_stats, self.momentum or 0.0, self.eps)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)      # deprecated alias, still the documented one
            return self._global_forward(x)

    def _global_forward(self, x):
        from torch.distributed.nn.functional import all_reduce
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        n_local = x.numel() // x.shape[1]
        count = all_reduce(torch.tensor([float(n_local)], device=x.device, dtype=x.dtype))
        mean = all_reduce(x.sum(dims)) / count                  # (C,)
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims)) / count           # (C,) biased
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count.item())
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1.0, 1.0), alpha=m)
        return y


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """All BatchNorm layers synced across ranks (torch SyncBatchNorm on GPU, GlobalBatchNorm on CPU)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def convert(m: nn.Module) -> nn.Module:
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, GlobalBatchNorm):
            g = GlobalBatchNorm(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            ref = m.running_mean if m.running_mean is not None else m.weight
            if ref is not None:
                g = g.to(device=ref.device, dtype=ref.dtype)
            g.load_state_dict(m.state_dict())
            g.train(m.training)
            return g
        for name, child in m.named_children():
            setattr(m, name, convert(child))
        return m
    return convert(model)


# ----------------------------------------------------------------------------- optimiser

def paper_optimizer(params, lr: float = 1e-4, momentum: float = 0.9, weight_decay: float = 1e-4,
                    nesterov: bool = True) -> torch.optim.Optimizer:
    """SiamQuality: SGD with Nesterov momentum 0.9, weight decay 1e-4."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def fit_optimizer_state(opt: torch.optim.Optimizer) -> None:
    """After load_state_dict: each per-parameter state tensor of the parameter's size (SGD's momentum) given the
    parameter's shape and memory format, so a checkpoint of a 1-D (O, I, k) kernel resumes into its channels-last
    (O, I, 1, k) twin and back."""
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if torch.is_tensor(v) and v.numel() == p.numel() and v.shape != p.shape:
                    fmt = torch.channels_last if p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) \
                        else torch.contiguous_format
                    opt.state[p][k] = v.reshape(p.shape).contiguous(memory_format=fmt)


def step_decay(opt, every_epochs: int = 10, gamma: float = 0.5):
    """lr x gamma every `every_epochs` epochs (stepped once per epoch)."""
    return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, every_epochs), gamma=gamma)


# ----------------------------------------------------------------------------- mixed precision

def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """'auto' = fp16 on CUDA, off on CPU; 'bf16' works on both; 'fp16' needs CUDA."""
    if amp not in ("auto", "off", "bf16", "fp16"):
        raise SqtoolError(f"amp must be one of auto, off, bf16, fp16 (got '{amp}')")
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "off":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise SqtoolError("amp fp16 needs a CUDA device; on CPU use --amp bf16 or off")
    return torch.float16 if amp == "fp16" else torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None):
    """A GradScaler only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler("cuda", enabled=(dtype == torch.float16 and device.type == "cuda"))


# ----------------------------------------------------------------------------- RNG state

def get_rng_state() -> dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    name, keys, *rest = st["numpy"]               # keys: a tensor in a checkpoint (plain data only)
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ----------------------------------------------------------------------------- SimSiam pieces

def neg_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """D(p, z) = -cos(p, sg(z)), averaged over the batch."""
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss(p1, p2, z1, z2) -> torch.Tensor:
    """Symmetric SimSiam loss in [-1, 1]; -1 = perfect agreement."""
    return 0.5 * (neg_cosine(p1, z2) + neg_cosine(p2, z1))


def to_device(x: np.ndarray, dev: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A host batch onto the training device. To a GPU through pinned memory without blocking: a copy from
    pageable memory waits for the GPU's queue to drain, which would idle it at every step."""
    t = torch.from_numpy(x)
    if dev.type != "cuda":
        return t.to(dev, dtype)
    return t.pin_memory().to(dev, dtype, non_blocking=True)


def collapse_std(z: torch.Tensor) -> float | None:
    """Mean per-dimension std of L2-normalised embeddings: ~1/sqrt(d) healthy, -> 0 when collapsed.

    None when fewer than 2 embeddings are given (a std over one sample is undefined)."""
    t = collapse_std_t(z)
    return None if t is None else float(t)


def collapse_std_t(z: torch.Tensor) -> torch.Tensor | None:
    """`collapse_std` left on z's device (no host sync): the training loop reads it a step later."""
    if z.shape[0] < 2:
        return None
    zn = F.normalize(z.float(), dim=-1)                     # (B, d)
    return zn.std(dim=0).mean()


class RunningCollapseStd:
    """`collapse_std` over embeddings given batch by batch, in constant memory: per-dimension sums of the L2-normalised
    embeddings and of their squares (float64), not every embedding kept (validation at the paper's scale: 1.8 M
    pairs x 256 dims would be 1.8 GB on the device)."""

    def __init__(self):
        self.n, self.s, self.ss = 0, None, None

    def add(self, z: torch.Tensor) -> None:
        zn = F.normalize(z.float(), dim=-1).double()            # (B, d)
        s, ss = zn.sum(0), (zn * zn).sum(0)                     # (d,) each
        self.s, self.ss = (s, ss) if self.s is None else (self.s + s, self.ss + ss)
        self.n += zn.shape[0]

    def value(self) -> float | None:
        """The mean per-dimension std (unbiased, as torch.std); None under 2 embeddings."""
        if self.n < 2:
            return None
        var = (self.ss - self.s * self.s / self.n).clamp_min(0) / (self.n - 1)   # (d,)
        return float(var.sqrt().mean())


class SimSiamStep(nn.Module):
    """forward(x1, x2) -> (p1, p2, z1, z2); exists so DDP wraps a forward() (DDP hooks only forward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x1, x2):
        return self.model.simsiam(x1, x2)
