"""Keep known library chatter off the console, precisely (never a blanket filter).

    quiet_library_warnings()   Python warnings the user cannot act on, filtered by message:
                               Brevitas's "fast_hadamard_transform package not found" (printed when
                               `brevitas.graph` / `brevitas.export` is imported; the PyTorch kernels it
                               falls back to are the ones sqtool uses anyway).
    quiet_fd2(patterns)        a context manager for C/C++ code that prints to file descriptor 2
                               (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."):
                               stderr is captured while the block runs and every line that does not
                               match one of `patterns` is written back, so real errors still show.

TracerWarnings of torch.onnx.export are filtered around the export call (export.onnx) and onnxruntime's
"Removing initializer" warnings by its logger severity (export.onnx.session); both where they arise.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings

LIBRARY_WARNINGS = (
    (r"fast_hadamard_transform package not found", UserWarning),
)
XNNPACK_INFO = r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*$"

_installed = False


def quiet_library_warnings() -> None:
    """Install the warning filters of LIBRARY_WARNINGS once per process (idempotent)."""
    global _installed
    if _installed and all(any(f[1] is not None and f[1].pattern == m for f in warnings.filters)
                          for m, _ in LIBRARY_WARNINGS):
        return
    for message, category in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    _installed = True


@contextlib.contextmanager
def quiet_fd2(patterns: tuple[str, ...] = (XNNPACK_INFO,)):
    """Run the block with file descriptor 2 captured; lines matching any regex in `patterns` are dropped,
    the others are written back to stderr when the block ends (also when it raises)."""
    fd = 2                                             # C/C++ libraries write to the descriptor itself
    regs = [re.compile(p) for p in patterns]
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except (OSError, ValueError):                      # no descriptor 2 (closed): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(r.search(ln) for r in regs)]
            if kept:
                os.write(fd, "".join(kept).encode())


__all__ = ["quiet_library_warnings", "quiet_fd2", "LIBRARY_WARNINGS", "XNNPACK_INFO"]
