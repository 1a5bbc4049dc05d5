"""`sqtool bench --data FOLDER` leaves out a file that is off the wrist throughout, as predict does (audit find_long,
left alone by the predict fix): an hour on the charger (PPG a flat line) or with nothing recorded (no finite sample)
stopped the whole benchmark with rc 1 and no report. Such a file has no window the network scores, so it has no
accuracy to add and no cost of its own: it is left out with one `bench: left out <file>: <why>` line, listed in
bench.json (provenance.skipped_records) and in bench.md's notes, as a recording shorter than one window already is.
Spectral and time-domain benches alike; a damaged file of the folder (it stopped the bench) is left out too."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

from sqtool.cli import main


def _hours(folder):
    folder.mkdir()
    z = dict(np.load(write_wrist_npz(folder / "h00.npz", seconds=30)))
    np.savez(folder / "h01.npz", **{**z, "ppg": np.zeros_like(z["ppg"])})                 # on the charger
    np.savez(folder / "h02.npz", **{**z, "ppg": np.full_like(z["ppg"], np.nan)})          # nothing recorded
    return folder


@pytest.mark.parametrize("which, runtime", [("spectral", "onnx_int8"), ("time_domain", "c_host_single")])
def test_a_file_off_the_wrist_throughout_is_left_out_of_the_bench(which, runtime, spec_export_dir, export_dir,
                                                                   tmp_path, capsys):
    model = spec_export_dir if which == "spectral" else export_dir
    data = _hours(tmp_path / "hours")
    out = tmp_path / "b"
    rc = main(["bench", "--model", str(model), "--data", str(data), "--runtime", runtime, "--callgrind-windows", "0",
               "--progress", "false", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    left = [ln for ln in err.splitlines() if ln.startswith("bench: left out")]
    assert len(left) == 2, err
    assert str(data / "h01.npz") in left[0] and "'ppg' is a flat line (constant 0)" in left[0]
    assert str(data / "h02.npz") in left[1] and "'ppg' has no finite sample" in left[1]
    res = json.loads((out / "bench.json").read_text())
    assert res["provenance"]["records"] == 1 and len(res["provenance"]["skipped_records"]) == 2
    md = (out / "bench.md").read_text()
    assert "left out 2 recordings" in md and "h01.npz" in md and "h02.npz" in md
    (data / "h03.npz").write_bytes(b"not a zip")                           # a damaged file: left out as well
    rc = main(["bench", "--model", str(model), "--data", str(data), "--runtime", runtime, "--callgrind-windows", "0",
               "--progress", "false", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 0, err
    left = [ln for ln in err.splitlines() if ln.startswith("bench: left out")]
    assert len(left) == 3 and "h03.npz: corrupt or truncated .npz" in left[2]
    assert json.loads((tmp_path / "bad" / "bench.json").read_text())["provenance"]["records"] == 1
