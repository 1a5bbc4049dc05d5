"""Lines a command shows on stdout (its report) and on stderr too (where a CI log keeps what went wrong).

When stdout and stderr are one file (a terminal, `2>&1`), the stderr copy would show every such line twice:
`also_on_stderr` writes it there only when the two are different files; bench, predict and quantize use it for
their WARNING lines.
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


def also_on_stderr(line: str) -> None:
    """`line` on stderr, flushed, unless stderr is stdout's file: the caller prints it on stdout (in its report)."""
    if not one_stream():
        print(line, file=sys.stderr, flush=True)
