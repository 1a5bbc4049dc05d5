"""benchmarks/acc_rate.py: an accelerometer at its own rate brought back to the PPG's by hold / linear / polyphase,
the whole monitor (PipelineRef) and the classic baseline on each, one real TROIKA recording and an untrained
spectral student (the figures' size is not the point: the script's arithmetic and its report are)."""
import json

import numpy as np

from tests.bench_scripts import load_benchmark
from tests.export.export_fixtures import make_spec_int8_run


def test_the_ways_back_to_the_ppg_rate():
    A = load_benchmark("acc_rate")
    xa = np.arange(10, dtype=float)[None] * 2.0                       # a ramp at 25 Hz
    hold = A.back(xa, 25.0, 125.0, 50, "hold")
    assert hold.shape == (1, 50) and np.array_equal(hold[0, :10], [0] * 5 + [2] * 5)   # the latest sample
    lin = A.back(xa, 25.0, 125.0, 46, "linear")
    assert np.allclose(lin[0], np.arange(46) * 2.0 / 5)                 # a ramp stays a ramp
    assert A.back(xa, 25.0, 125.0, 60, "polyphase").shape == (1, 60)   # padded to the PPG's length
    t = np.arange(1250) / 125.0
    x = np.sin(2 * np.pi * 2.0 * t)[None]                               # 2 Hz: inside every rate's band
    for way in A.WAYS:
        y = A.variant(x, 125.0, 25.0, way)
        assert y.shape == x.shape
        spec = np.abs(np.fft.rfft(y[0, 125:-125]))
        assert abs(np.argmax(spec) / (len(t) - 250) * 125.0 - 2.0) < 0.15, way


def test_acc_rate_writes_per_recording_rows_beside_the_baseline(data_root, tmp_path):
    A = load_benchmark("acc_rate")
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=0)
    assert A.main(["--model", str(run), "--data", str(data_root / "troika"), "--max-records", "1",
                   "--acc-rates", "25", "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "acc_rate.json").read_text())
    assert res["variants"] == ["recorded", "25 Hz hold", "25 Hz linear", "25 Hz polyphase", "25 Hz kit"]
    (row,) = res["rows"]
    assert row["dhr"]["recorded"] == 0.0 and row["windows"] > 0 and not row["seen_in_training"]
    assert all(np.isfinite(row[k][n]) for k in ("model", "baseline") for n in res["variants"])
    md = (tmp_path / "o" / "acc_rate.md").read_text()
    assert "| troika | 25 Hz hold |" in md and row["record"] in md
