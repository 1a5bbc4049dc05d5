"""The `sqtool` command line.

Each stage owns its sub-command in `sqtool/<stage>/cli.py`, which exposes
`register(subparsers)`: it adds its parser(s) and sets `func=run(args) -> int`. Stage CLI modules
import heavy libraries (torch, brevitas, tensorflow) only inside their run functions so that
`sqtool --help` stays instant.

Errors: a `SqtoolError` (bad input, missing data, wrong checkpoint...) is printed as ONE line on
stderr with a non-zero exit; an OSError as one line by errno naming the path (disk full, read-only,
a file where a folder should be), ending with the `--resume RUN` command where its run resumes; any other
exception too, unless `--debug` (anywhere on the line) asks for the traceback. Known library chatter
(core.noise) is kept off the console.
A failed command leaves no run directory holding only its config.yaml (so a retry needs no --force),
and the run-directory locks it took are released when it returns. An interrupted one (Ctrl-C) names the
`--resume RUN` command that continues it, when its command resumes (core.runs.RESUMABLE), and exits 130; a SIGTERM
(a CI cancel, `timeout`, a container's stop) ends the same way and exits 143. A Ctrl-C
is that whatever exception it turns into: the KeyboardInterrupt raised inside an import (torch, sympy) can surface
as an AttributeError of a half-imported module, so any error after a SIGINT arrived is reported as the interrupt.
An interrupted run that cannot resume but stays in its folder (export, bench, predict, demo) names the command line
with --force that redoes it. A stdout whose reader went away (`sqtool data quality ... | head -2`) ends the command
quietly with exit 141 (128 + SIGPIPE, as a shell reports it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from sqtool import __version__
from sqtool.core import SqtoolError, help_formatter, releases_run_dirs
from sqtool.core.errors import Said, oserror_line
from sqtool.core.noise import quiet_library_warnings
from sqtool.core.runs import (PROJECT_ROOT, discard_empty_runs, git_sha, interrupted_hint, run_dirs_made, runs_noted,
                               shell_command, unfinished_noted)
from sqtool.core.say import stdout_first

# (command, module owning it, one-line help)
COMMANDS = [
    ("data", "sqtool.data.cli", "inspect datasets, window and score them, mine (good, poor) pairs, download"),
    ("train", "sqtool.train.cli", "pretrain the SiamQuality ResNet (SimSiam) and fine-tune it on a task"),
    ("quantize", "sqtool.compress.cli", "distil a teacher into a compact student and quantize it to int8 (QAT)"),
    ("export", "sqtool.export.cli", "export ONNX / TFLite / C firmware source, each checked for parity"),
    ("bench", "sqtool.firmware_bench.cli", "stream real PPG through every runtime and the emulated MCU firmware"),
    ("predict", "sqtool.firmware_bench.predict", "heart rate (or a task's outputs) of recordings through an "
                                                 "exported model: CSV, plots, summary"),
    ("demo", "sqtool.demo", "run the whole pipeline on the embedded synthetic default"),
]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2, no abbreviated options
    (`--mod` is not `--model`), and bool flags shown as `--x, --no-x`. Sub-parsers inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        kwargs["formatter_class"] = help_formatter(kwargs.get("formatter_class") or argparse.HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(_sqtool_prog=self.prog)          # the deepest parser's wins: names the sub-command

    def error(self, message):
        raise SqtoolError(_usage_line(self.prog, message), code=2)

    def parse_args(self, args=None, namespace=None):
        """Unknown options are reported against the sub-command that was given (`export: unrecognized
        arguments: --bogus (see sqtool export --help)`), not the top-level parser."""
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            raise SqtoolError(_usage_line(getattr(ns, "_sqtool_prog", self.prog),
                                          f"unrecognized arguments: {' '.join(extra)}"), code=2)
        return ns


def _usage_line(prog: str, message: str) -> str:
    """`export: MESSAGE (see sqtool export --help)`; main() adds the one `sqtool: error: ` in front."""
    where = prog.split(" ", 1)[1] if " " in prog else ""
    return f"{where + ': ' if where else ''}{message} (see {prog} --help)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sqtool",
        description="SiamQuality PPG foundation model: train, compress, export and benchmark on a wrist MCU.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version (and the git commit of a "
                                                                    "checkout) and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks instead of one-line errors (anywhere on the line; or SQTOOL_DEBUG=1 / true)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, helptext in COMMANDS:
        importlib.import_module(module).register(sub, name, helptext)
    return parser


@releases_run_dirs          # the run-dir locks the command took; an enclosing command's (the demo's) stay held
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SQTOOL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    argv = [a for a in argv if a != "--debug"]          # --debug works before or after the sub-command
    quiet_library_warnings()
    made, noted = run_dirs_made(), runs_noted()
    ok = False
    sigints: list[int] = []
    previous = _watch_sigint(sigints)
    previous_term = _watch_sigterm(sigints)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        rc = args.func(args)
        sys.stdout.flush()                          # here, not at exit: a closed pipe is then a BrokenPipeError below
        ok = True
        return int(rc or 0)
    except KeyboardInterrupt:
        return _interrupted(made, noted, sigints, argv)
    except BrokenPipeError:
        if not _stdout_broken():                    # another pipe: an error as any OSError (below)
            return _failed(made, noted, sigints, argv, debug)
        ok = True                                   # `sqtool ... | head`: the reader has what it wanted
        return _stdout_closed()
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - the CLI promise: one line, never a traceback
        return _failed(made, noted, sigints, argv, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if not ok:
            discard_empty_runs(since=made)


def _failed(made: int, noted: int, sigints: list[int], argv: list[str], debug: bool) -> int:
    """The end of a command that raised (called in its `except`): one line on stderr and the exit status, after what
    the command printed on stdout (flushed first: a piped stdout holds it until exit)."""
    e = sys.exc_info()[1]
    stdout_first()
    if debug:
        raise                                   # the traceback asked for
    if sigints and not (isinstance(e, SqtoolError) and e.code in _SIGNAL_CODES):   # (a step that said so, demo)
        return _interrupted(made, noted, sigints, argv)   # what a Ctrl-C turned into (a half-imported module)
    if isinstance(e, Said):                     # the ranks of a torchrun run agreed on a refusal: rank 0 said it
        return e.code
    if isinstance(e, SqtoolError) and e.code in _SIGNAL_CODES:     # an interrupted step said so (demo): no error
        print(f"sqtool: {e}", file=sys.stderr)
        return e.code
    if isinstance(e, SqtoolError) and _rank_before_group():       # every rank of a torchrun run: said once
        from sqtool.train.loop import refuse_at_start
        return refuse_at_start(e)
    if isinstance(e, SqtoolError):
        print(f"sqtool: error: {e}", file=sys.stderr)
        return e.code
    if isinstance(e, OSError):      # (disk full, ...): what was saved is intact (atomic writes): as Ctrl-C
        print(f"sqtool: error: {oserror_line(e)}" + _continue_with(made, noted, argv), file=sys.stderr)
        return 1
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    print(f"sqtool: error: {type(e).__name__}: {msg} (run with --debug for the traceback)",
          file=sys.stderr)
    return 1


def _rank_before_group() -> bool:
    """Whether this process is one rank of several (torchrun's WORLD_SIZE) that has not set up its run's process
    group: a refusal here (a usage error, a check at start-up) is every rank's, `train.loop.refuse_at_start`."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return False
    except ValueError:
        return False
    from sqtool.train.loop import group_set_up
    return not group_set_up()


_SIGNAL_CODES = (130, 143)      # 128 + SIGINT, 128 + SIGTERM: an interrupted command's exit status


class _Version(argparse.Action):
    """`--version`: `sqtool 0.1.0`, and `(git 5468abc1e3e4)` when the package runs from a git checkout (its
    commit, core.git_sha; `-dirty` with uncommitted changes). The commit is read only when asked."""

    def __call__(self, parser, namespace, values, option_string=None):
        sha = git_sha() if (PROJECT_ROOT / ".git").exists() else "unknown"   # an installed package: no commit
        print(f"sqtool {__version__}" + (f" (git {sha})" if sha != "unknown" else ""))
        parser.exit()


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has gone (`sqtool ... | head`): its write end polls as an error."""
    import select
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (AttributeError, OSError, ValueError):       # no file behind stdout (captured): not a closed pipe
        return False


def _stdout_closed() -> int:
    """The end of a command whose stdout's reader went away (`| head` read its lines): quietly, exit 141 (128 +
    SIGPIPE, as a shell reports a program the closed pipe ended). stdout is pointed at /dev/null first, so the
    interpreter's flush at exit has nowhere to fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):                   # no file behind stdout (captured): nothing to flush at exit
        pass
    return 141


def _interrupted(made: int, noted: int, signals: list[int] = (), argv: list[str] = ()) -> int:
    """The end of an interrupted command: `sqtool: interrupted` (with the command that continues its run), 130;
    after a SIGTERM `sqtool: terminated`, 143 (128 + the signal, as the shell reports a process it ended)."""
    stdout_first()
    if signal.SIGTERM in signals:
        print("sqtool: terminated (SIGTERM)" + _continue_with(made, noted, argv), file=sys.stderr)
        return 143
    print("sqtool: interrupted" + _continue_with(made, noted, argv), file=sys.stderr)
    return 130


def _continue_with(made: int, noted: int, argv: list[str] = ()) -> str:
    """`; continue with: sqtool ... --resume RUN` for the latest resumable run this command noted; for one that
    cannot resume and is left unfinished in its folder (export, bench, predict, demo), `; DIR holds the unfinished
    run: redo it with: sqtool ARGV --force` (`argv`: this command's line; a rerun without --force is refused
    there); else ""."""
    discard_empty_runs(since=made)                  # first: a run left with only its config.yaml is gone
    hint = interrupted_hint(since=noted)
    if hint:
        return f"; continue with: {hint}"
    left = unfinished_noted(since=noted)
    if left is None or not argv:
        return ""
    redo = shell_command(*argv, *([] if "--force" in argv else ["--force"]))
    return f"; {left} holds the unfinished run: redo it with: {redo}"


def _watch_sigint(seen: list[int]):
    """Record in `seen` every SIGINT this command gets, then let the handler before it act (Python's raises
    KeyboardInterrupt); returns that handler, to restore, or None when nothing was installed (not the main thread,
    or SIGINT ignored or left to the system: then a Ctrl-C does not raise at all)."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        return None

    def on_sigint(signum, frame):
        seen.append(signum)
        previous(signum, frame)
    signal.signal(signal.SIGINT, on_sigint)
    return previous


def _watch_sigterm(seen: list[int]):
    """A SIGTERM (CI cancel, `timeout`, docker stop, a scheduler's eviction) handled as a Ctrl-C: recorded in `seen`,
    then KeyboardInterrupt, so what was saved stays, an empty run folder goes and the resume command is said (the
    default action killed the process on the spot, leaving a folder a retry refused). Installed only in the main
    thread over the default action (a handler someone else set is left alone); returns the one to restore, or None.
    A process forked from this one (data pairs' worker pool, which Pool.terminate() ends with a SIGTERM) inherits the
    handler: there the default action still applies, instead of a 'Process ForkPoolWorker-N:' traceback each. Only
    the first SIGTERM raises: one arriving while the command writes its 'terminated' line and cleans up is recorded.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return None
    owner = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() != owner:                    # a forked child: end as the default action would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        seen.append(signum)
        if seen.count(signal.SIGTERM) == 1:         # a second one (torchrun signals every rank again when one has
            raise KeyboardInterrupt                 # ended) is recorded only: it would cut the last line short
    return signal.signal(signal.SIGTERM, on_sigterm)


if __name__ == "__main__":
    sys.exit(main())
