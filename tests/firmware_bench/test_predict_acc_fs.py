"""`sqtool predict --acc-fs HZ` (and bench's): a bare CSV (no dataset.yaml) whose accelerometer columns hold a
slower stream, one value every k-th row, blank between, as a dataset.yaml's `acc_x: {column: acc_x, fs: HZ}` says it;
a rate the file cannot hold, or one its rows contradict, is one error line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz
from test_api import _csv_rows
from test_predict_inputs import AXES, _half_rate_acc

from sqtool.cli import main

COLUMNS = ("ppg", "ppg2", *AXES)


def _csv(path, z: dict, every: int = 2) -> str:
    """z's full-rate recording as a 125 Hz CSV (time in s), its accelerometer in every `every`-th row only (the rows
    between blank), as a device logging a slower accelerometer beside its PPG writes it."""
    n = len(z["ppg"])
    lines = ["time," + ",".join(COLUMNS)]
    for i in range(n):
        cells = [repr(float(z[c][i])) if c.startswith("ppg") or i % every == 0 else "" for c in COLUMNS]
        lines.append(f"{i / 125.0!r}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("acc_fs")
    full = write_wrist_npz(d / "full.npz", seconds=30, ppg2=True)
    z = dict(np.load(full))
    return {"half_npz": _half_rate_acc(full, d / "half.npz"), "half_csv": _csv(d / "half.csv", z),
            "full_csv": _csv(d / "full.csv", z, every=1)}


def _predict(model, data, out, *more) -> int:
    return main(["predict", "--model", str(model), "--data", str(data), "--out", str(out), "--no-progress", *more])


def test_a_csv_with_its_accelerometer_in_every_other_row(spec_export_dir, files, tmp_path, capsys):
    """Before: no way to say it (`--acc-fs` unknown; read as it is, the blank cells were gaps on every other sample).
    Now the accelerometer columns are read at 62.5 Hz from their rows: predict gives the numbers of the NPZ that
    stores the same samples at that rate (resampled to the PPG's rate on the host, one note line)."""
    assert _predict(spec_export_dir, files["half_csv"], tmp_path / "csv", "--acc-fs", "62.5") == 0
    out = capsys.readouterr().out
    assert _predict(spec_export_dir, files["half_npz"], tmp_path / "npz") == 0
    capsys.readouterr()
    s = json.loads((tmp_path / "csv" / "summary.json").read_text())
    r = s["recordings"][0]
    assert r["resampled_from_hz"] == {a: 62.5 for a in AXES} and r["windows"] == 12
    assert "e.g. half: acc_x, acc_y, acc_z 62.5 Hz -> 125 Hz" in out
    want = _csv_rows(tmp_path / "npz" / json.loads((tmp_path / "npz" / "summary.json").read_text())
                     ["recordings"][0]["csv"])
    got = _csv_rows(tmp_path / "csv" / r["csv"])
    assert [row["hr_bpm"] for row in got] == [row["hr_bpm"] for row in want]
    assert [row["flagged"] for row in got] == ["0"] * 12
    assert f"next: sqtool bench --model {spec_export_dir} --data {files['half_csv']} --acc-fs 62.5 " in out


def test_bench_takes_it_too(spec_export_dir, files, tmp_path, capsys):
    """`sqtool bench --acc-fs` reads the same file the same way (predict's next line says so)."""
    rc = main(["bench", "--model", str(spec_export_dir), "--data", files["half_csv"], "--acc-fs", "62.5", "--runtime",
               "c_pipeline", "--no-progress", "--out", str(tmp_path / "b")])
    assert rc == 0, capsys.readouterr().err
    notes = json.loads((tmp_path / "b" / "bench.json").read_text())["notes"]
    assert any(n.endswith("e.g. half: acc_x, acc_y, acc_z 62.5 Hz -> 125 Hz") for n in notes), notes


@pytest.mark.parametrize("data, value, says", [
    ("half_csv", "0", "--acc-fs must be > 0, got 0"),
    ("half_csv", "-25", "--acc-fs must be > 0, got -25"),
    ("half_csv", "fast", "--acc-fs"),
    ("half_csv", "250", "--acc-fs 250 Hz is above the file's 125 Hz rows"),
    ("half_csv", "50", "--acc-fs 50 Hz is not the file's 125 Hz rows divided by a whole number (x2.5)"),
    ("full_csv", "62.5", "--acc-fs 62.5 Hz (column acc_x) is one value every 2 rows of the time column's 125 Hz, but "
                         "the column has values between them"),
    ("half_npz", "62.5", "--acc-fs 62.5: for CSV recordings, whose columns state no rate"),
    ("synthetic", "62.5", "--acc-fs 62.5: for CSV recordings, whose columns state no rate; synthetic are not read"),
])
def test_a_rate_the_file_cannot_hold_is_one_line(spec_export_dir, files, tmp_path, capsys, data, value, says):
    rc = _predict(spec_export_dir, files.get(data, data), tmp_path / "p", "--acc-fs", value)
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and says in err and "Traceback" not in err, err
    assert not (tmp_path / "p" / "summary.json").exists()


@pytest.mark.parametrize("command", ["predict", "bench"])
def test_help_names_it(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--acc-fs HZ" in capsys.readouterr().out
