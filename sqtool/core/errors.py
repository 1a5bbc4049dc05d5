"""The one user-facing error type: the CLI prints it as one line and exits with `code`; and the one line
an OSError (disk full, read-only folder, a file where a folder should be) becomes."""
from __future__ import annotations

import errno as _errno


class SqtoolError(Exception):
    """An error caused by the user's input: printed as one line, exit code `code`."""

    def __init__(self, msg: str, code: int = 1):
        super().__init__(msg)
        self.code = code


class Said(SqtoolError):
    """An error already printed as its one line (`train.loop.stop_together`: the ranks of a torchrun run agreed on a
    refusal and rank 0 said it): the CLI exits with its code and prints nothing more; the message is that line, for
    a library caller."""


class NoSignal(SqtoolError):
    """A recording channel that holds no signal at all (a flat line, or not one finite sample): a sensor off the
    wrist or on the charger, or nothing recorded. Readers refuse it; predict and bench leave such a file of a folder
    out (`firmware_bench.spectral.load_records`) by this type, not by the message's words."""


_OS_WHAT = {
    _errno.ENOSPC: "no space left on device (disk full)",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
    _errno.EROFS: "read-only file system",
    _errno.ENOTDIR: "a part of the path is a file, not a folder",
    _errno.EISDIR: "is a folder, not a file",
    _errno.ENOENT: "no such file or folder",
    _errno.EEXIST: "already exists",
    _errno.ENAMETOOLONG: "file name too long",
    _errno.EMFILE: "too many open files",
}


def oserror_line(e: OSError) -> str:
    """One line for an OSError, by errno, naming the path (not the raw `[Errno 28] ...` text)."""
    what = _OS_WHAT.get(e.errno, e.strerror or type(e).__name__)
    path = e.filename if e.filename is not None else None
    if path is not None and getattr(e, "filename2", None):
        path = f"{path} -> {e.filename2}"
    return f"{path}: {what}" if path is not None else f"{what} ({type(e).__name__})"
