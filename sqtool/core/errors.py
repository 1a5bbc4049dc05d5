"""The one user-facing error type: the CLI prints it as one line and exits with `code`."""
from __future__ import annotations


class SqtoolError(Exception):
    """An error caused by the user's input: printed as one line, exit code `code`."""

    def __init__(self, msg: str, code: int = 1):
        super().__init__(msg)
        self.code = code
