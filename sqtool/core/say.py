"""Lines a command shows on stdout (its report) and on stderr too (where a CI log keeps what went wrong).

When stdout and stderr are one file (a terminal, `2>&1`), the stderr copy would show every such line twice:
`also_on_stderr` writes it there only when the two are different files; bench, predict and quantize use it for
their WARNING lines.

A stdout that is a pipe or a file is block-buffered: a line written on stderr (a warning, the one error line) would
come before the report lines printed ahead of it (`sqtool data inspect ... 2>&1 | less`: the error saying "each
listed above" on top). `stdout_first` flushes stdout before such a line.
"""
from __future__ import annotations

import os
import sys


def one_stream() -> bool:
    """True when stdout and stderr are the same file (one terminal, or `2>&1`): a line printed on both shows twice."""
    try:
        a, b = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):           # a stream without a file (captured, io.StringIO)
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def stdout_first() -> None:
    """Flush stdout, so that a line written on stderr next comes after what stdout was given before it; a stdout that
    cannot be flushed (closed, its reader gone) is left to the caller's end."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass


def also_on_stderr(line: str) -> None:
    """`line` on stderr, flushed, unless stderr is stdout's file: the caller prints it on stdout (in its report)."""
    if not one_stream():
        print(line, file=sys.stderr, flush=True)
