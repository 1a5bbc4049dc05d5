"""benchmarks/acc_axes.py: the accelerometer's axes negated and permuted on int16 counts, the whole monitor
(PipelineRef) on each; one real TROIKA recording and an untrained spectral student (the figures' size is not the
point: the script's arithmetic and its report are)."""
import json

import numpy as np

from tests.bench_scripts import load_benchmark
from tests.export.export_fixtures import make_spec_int8_run


def test_turn_negates_and_permutes_the_rows_saturating():
    A = load_benchmark("acc_axes")
    acc = np.array([[1, -32768], [2, 5], [3, 32767]], np.int16)
    assert np.array_equal(A.turn(acc, (0, 1, 2), (-1, 1, 1)), [[-1, 32767], [2, 5], [3, 32767]])
    assert np.array_equal(A.turn(acc, (2, 0, 1), (1, 1, 1)), [[3, 32767], [1, -32768], [2, 5]])
    assert A.turn(acc, (0, 1, 2), (1, 1, 1)).dtype == np.int16


def test_acc_axes_writes_per_recording_rows_and_same_codes_for_a_permutation(data_root, tmp_path):
    A = load_benchmark("acc_axes")
    run = make_spec_int8_run(tmp_path / "run", "spec_student_xs", n_heldout=0)
    assert A.main(["--model", str(run), "--data", str(data_root / "troika"), "--max-records", "1",
                   "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "acc_axes.json").read_text())
    (row,) = res["rows"]
    assert res["variants"][0] == "recorded" and row["dhr"]["recorded"] == 0.0 and row["same_hr"]["recorded"] == 1.0
    for name in ("y x z", "z x y"):                  # the front end reads each axis alike: the codes only move
        assert row["codes_changed"][name] == 0.0
    assert 0 < row["code_max_diff"]["-x -y -z"] <= 8  # a sign changes only the rounding
    md = (tmp_path / "o" / "acc_axes.md").read_text()
    assert "| troika | -x |" in md and row["record"] in md
