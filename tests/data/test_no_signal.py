"""A recording channel with no signal (a flat line, not one finite sample: off the wrist, on the charger) is refused
as core.NoSignal, a SqtoolError of its own, so that predict and bench leave such a file of a folder out by its type
(they matched the readers' words) and any other refusal still stops them."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import NoSignal, SqtoolError
from sqtool.data.readers import iter_records


def _csv(path, ppg):
    t = np.arange(len(ppg)) / 64.0
    path.write_text("time,ppg\n" + "".join(f"{a:.5f},{b}\n" for a, b in zip(t, ppg)))


def test_flat_and_empty_channels_are_no_signal(tmp_path):
    n = 64 * 20
    _csv(tmp_path / "flat.csv", np.zeros(n))
    _csv(tmp_path / "nan.csv", ["nan"] * n)
    for f in ("flat.csv", "nan.csv"):
        with pytest.raises(NoSignal):
            list(iter_records(tmp_path / f))
    assert issubclass(NoSignal, SqtoolError)


def test_a_folder_skips_only_no_signal_files_when_asked(tmp_path):
    n = 64 * 20
    _csv(tmp_path / "a_flat.csv", np.zeros(n))
    _csv(tmp_path / "b_ok.csv", np.sin(2 * np.pi * 1.2 * np.arange(n) / 64.0))
    skipped: list[str] = []
    recs = list(iter_records(tmp_path, on_error="skip", skipped=skipped, skip_only=NoSignal))
    assert [r.record_id for r in recs] == ["b_ok"] and len(skipped) == 1 and "flat line" in skipped[0]
    (tmp_path / "c_bad.csv").write_text("time,ppg\n0,1\n0.5,x\n")          # another refusal: raised
    with pytest.raises(SqtoolError) as e:
        list(iter_records(tmp_path, on_error="skip", skipped=[], skip_only=NoSignal))
    assert not isinstance(e.value, NoSignal) and "c_bad.csv" in str(e.value)
