"""Test helper: push a recording through the streaming front end in chunks of varying sizes."""
from __future__ import annotations


def stream(x, gap, chunks, cfg, tables=None) -> list:
    """The windows `FrontEnd(cfg, tables)` yields for x (C, N) int16 and gap (N,) bool or None, pushed in chunks
    cycling through the sizes `chunks`."""
    from sqtool.data.frontend import FrontEnd
    fe = FrontEnd(cfg, tables)
    out, i, j = [], 0, 0
    while i < x.shape[1]:
        k = int(chunks[j % len(chunks)])
        out += fe.push(x[:, i:i + k], None if gap is None else gap[i:i + k])
        i, j = i + k, j + 1
    return out
