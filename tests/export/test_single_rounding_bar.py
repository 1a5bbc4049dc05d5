"""The 99.5 % single-rounding bar (C single rounding == Brevitas on at least 99.5 % of windows), asserted on
enough windows (>= 200) for one flipped window to pass and two to fail; and the bar itself applies."""
from __future__ import annotations

import numpy as np

from export_fixtures import make_int8_run
from sqtool.export import parity as P


def test_the_bar_counts_windows():
    md = {"task": "other"}
    ref = np.zeros((200, 2), np.int8)
    for flips, status in ((0, "ok"), (1, "ok"), (2, "FAILED")):
        got = ref.copy()
        got[:flips, 0] = 1                                         # one element off in `flips` windows
        row = P.int8_row("C single", "c/sq_model.c", md, ref, got, None, lambda q: q, 1, 0.1, min_exact_pct=99.5)
        assert row["status"] == status and "exact vs Brevitas >= 99.5 %" in row["tolerance"], flips


def test_export_meets_the_995_bar_on_240_windows(tmp_path):
    from sqtool.export.cli import ExportConfig, export
    run = make_int8_run(tmp_path / "run", n_heldout=240, steps=40)
    res = export(ExportConfig(model=str(run), target=["c"], min_single_exact_pct=99.5, out=str(tmp_path / "out")))
    row = next(r for r in res["rows"] if r["artifact"] == "C single rounding (host gcc)")
    assert row["n"] == 240 and "exact vs Brevitas >= 99.5 %" in row["tolerance"]
    assert row["status"] == "ok" and row["exact_windows_pct"] >= 99.5, row
    assert res["failed"] == [], res["summary"]
