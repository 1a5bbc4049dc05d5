"""`sqtool-torchrun`: torchrun itself (`torch.distributed.run`, the same options), whose failure is one line.

    sqtool-torchrun --standalone --nproc_per_node 4 -m sqtool.cli train pretrain --pairs PAIRS --out runs/pt-ddp
    sqtool-torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST0:29500 --rdzv-id sq152 \
        -m sqtool.cli train pretrain ...

A distributed run is started by torch's elastic launcher either way; this entry point only changes how a failure
reads. Under `torchrun`, a worker that stops with sqtool's one-line error (a missing pairs folder, a bad option)
is followed by torchrun's own ChildFailedError traceback, some 40 lines; here the elastic agent's log (its warnings
and its error record, which the line below says again) is kept quiet and the failure is one line naming the ranks and their exit codes (the workers' own lines stay above it), and the
command exits with the first failed rank's exit code (a signal's as 128 + its number). A SIGTERM / SIGINT to the
launcher (a preemption) stops the workers as torchrun does (each saves its step, `train.loop`) and is one line too,
exit 128 + the signal.
"""
from __future__ import annotations

import logging
import os
import sys

LAUNCHER_ENV = "SQTOOL_LAUNCHER"     # set for the workers: a run's resume line names the launcher it was started by
LOGGERS = ("torch.distributed.elastic", "torch.distributed.launcher")   # not torch.distributed.run: its banner
DDP_TIMEOUT_S = 1800.0      # the workers' collective timeout (train pretrain --ddp-timeout): gloo's own, NCCL's 600 s
                            # raised to it: the other ranks wait for rank 0 validating and writing last.pt alone


def failure_line(err, multinode: bool = False) -> tuple[str, int]:
    """(one line, exit code) of torchrun's ChildFailedError: the ranks that failed on their own (an exit code: their
    sqtool line is above), then those the launcher stopped after them (a signal, or sqtool's own exit on it, 143 /
    130: a rank still working when another failed); the first failed rank's exit code (all stopped by a signal: 128
    + its number). `multinode` (--nnodes over 1) on a node without rank 0: a reason the ranks agreed on
    (`loop.stop_together`) is said by rank 0 alone, on node 0's console, so the line points there too."""
    import signal

    def code_text(f) -> str:
        if f.exitcode >= 0:
            return f"exit {f.exitcode}"
        try:
            return signal.Signals(-f.exitcode).name
        except ValueError:
            return f"signal {-f.exitcode}"

    def ranks(group) -> str:
        return f"rank{'s' if len(group) > 1 else ''} {', '.join(str(r) for r, _ in group)} " \
               f"({', '.join(code_text(f) for _, f in group)})"
    fails = sorted(err.failures.items())
    stop = {128 + int(signal.SIGTERM), 128 + int(signal.SIGINT)}   # a worker that caught the launcher's stop
    cause = ([(r, f) for r, f in fails if f.exitcode > 0 and f.exitcode not in stop]      # (sqtool exits 143 / 130
             or [(r, f) for r, f in fails if f.exitcode > 0] or fails)                    # itself): not a cause
    stopped = [rf for rf in fails if rf not in cause]
    first = cause[0][1].exitcode
    line = (f"sqtool-torchrun: {err.name} failed on {ranks(cause)}: the reason is on "
            + ("their lines" if len(cause) > 1 else "its line") + " above"
            + (" (or, a reason every rank met, on node 0's: rank 0 says it for all)" if multinode and 0 not in
               err.failures else "")
            + (f"; the launcher then stopped {ranks(stopped)}" if stopped else ""))
    return line, first if first > 0 else 128 - first if first < 0 else 1


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ[LAUNCHER_ENV] = "sqtool-torchrun"     # the workers inherit it (pretrain's config.yaml: launcher)
    for name in LOGGERS:                             # its ERROR record repeats the failure the one line says
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(args)
    except ChildFailedError as e:
        line, code = failure_line(e, multinode=str(args.nnodes).split(":")[-1] != "1")
        print(line, file=sys.stderr)
        return code
    except SignalException as e:
        print(f"sqtool-torchrun: stopped by {e.sigval.name}: the workers were told to stop (each saves its step "
              "and names the command that continues it, above)", file=sys.stderr)
        return 128 + int(e.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
