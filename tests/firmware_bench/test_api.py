"""`sqtool.load_model(export).predict(ppg, acc, fs)`: the Python entry point for heart rate from arrays. The same
heart rate per window as `sqtool predict`'s CSV, no files, no lock, global state as found; bad input is one
SqtoolError line each; `import sqtool` stays cheap."""
from __future__ import annotations

import csv
import subprocess
import sys
import warnings

import numpy as np
import pytest
from fwb_helpers import run_readme_example, write_wrist_npz

import sqtool
from sqtool.cli import main
from sqtool.core import SqtoolError, held_run_dirs

COLUMNS = ("hr_bpm", "lo_bpm", "hi_bpm", "confidence")


def _csv_rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _same_as_csv(res, rows: list[dict]) -> None:
    """Every window's values as predict writes them (3 decimals; flagged 0/1)."""
    assert len(res) == len(rows) > 0
    assert [f"{v:.3f}" for v in res.t_end_s] == [r["time_s"] for r in rows]
    for k in COLUMNS:
        assert [f"{v:.3f}" for v in getattr(res, k)] == [r[k] for r in rows], k
    assert [str(int(v)) for v in res.flagged] == [r["flagged"] for r in rows]


@pytest.fixture(scope="module")
def model(spec_export_dir):
    m = sqtool.load_model(spec_export_dir)
    yield m
    m.close()


def _wrist(seconds: float = 30.0, fs: float = 125.0):
    """(ppg (N, 2), acc (N, 3), fs): two PPG sensors and an accelerometer, as the fixture export reads."""
    z = np.load(write_wrist_npz(_wrist.tmp / f"w{seconds:g}_{fs:g}.npz", seconds=seconds, fs=fs, ppg2=True))
    return (np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[f"acc_{a}"] for a in "xyz"], 1), float(z["fs"]))


@pytest.fixture(autouse=True)
def _tmp_for_wrist(tmp_path):
    _wrist.tmp = tmp_path


def test_import_sqtool_is_cheap_and_the_api_is_loaded_on_use():
    code = ("import sys, sqtool; heavy = [m for m in ('numpy', 'torch', 'scipy', 'matplotlib') if m in sys.modules];"
            "assert not heavy, heavy; assert 'load_model' in dir(sqtool) and 'load_model' in sqtool.__all__;"
            "f = sqtool.load_model; assert 'torch' not in sys.modules and 'numpy' in sys.modules;"
            "from sqtool import HrModel, HrResult, load_model; assert f is load_model;"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sqtool.nope


@pytest.mark.realdata
def test_the_heart_rate_is_predicts_on_a_troika_recording(spec_export_dir, data_root, tmp_path, monkeypatch):
    """The same recording through `sqtool predict` (its CSV) and through the API on the reader's arrays: the same
    values in every window; the API wrote nothing, locked nothing, left torch's threads and the warning filters."""
    import torch

    from sqtool.data.readers import iter_records
    mat = data_root / "troika" / "Training_data" / "DATA_01_TYPE01.mat"
    out = tmp_path / "p"
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(mat), "--out", str(out)]) == 0
    rows = _csv_rows(out / "DATA_01_TYPE01.csv")
    rec = next(r for r in iter_records(mat.parent) if r.record_id == "DATA_01_TYPE01")
    ppg = np.stack([rec.signals["ppg"], rec.signals["ppg2"]], 1)                       # (N, 2)
    acc = np.stack([rec.signals[f"acc_{a}"] for a in "xyz"], 1)                          # (N, 3) g
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    torch.set_num_threads(3)
    filters, held = list(warnings.filters), held_run_dirs()
    try:
        m = sqtool.load_model(spec_export_dir)
        res = m.predict(ppg, acc, fs=rec.fs["ppg"])
        assert res.runtime == "c_pipeline" and len(res) == 148
        _same_as_csv(res, rows)
        assert res.model_sha256 and len(res.model_sha256) == 64
        assert torch.get_num_threads() == 3 and list(warnings.filters) == filters and held_run_dirs() == held
        assert list(cwd.iterdir()) == []
        c = sqtool.load_model(spec_export_dir, runtime="c").predict(ppg, acc, fs=125)   # C network + Python decoder
        assert c.runtime == "c_host_single" and np.array_equal(c.hr_bpm, res.hr_bpm)
        m.close()
    finally:
        torch.set_num_threads(1)


def test_the_heart_rate_is_predicts_on_a_file_and_on_another_runtime(model, spec_export_dir, tmp_path):
    """Without the data root: a generated NPZ recording, default runtime and torch (whose thread setting is put
    back); arrays as lists or float32 give the same numbers."""
    import torch
    path = write_wrist_npz(tmp_path / "a.npz", seconds=30, ppg2=True)
    for runtime in ("", "torch"):
        out = tmp_path / f"p{runtime}"
        argv = ["predict", "--model", str(spec_export_dir), "--data", str(path), "--out", str(out)]
        assert main(argv + (["--runtime", runtime] if runtime else [])) == 0
        z = np.load(path)
        ppg, acc = np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[f"acc_{a}"] for a in "xyz"], 1)
        m = sqtool.load_model(spec_export_dir, runtime=runtime) if runtime else model
        torch.set_num_threads(2)
        try:
            res = m.predict(ppg, acc, fs=float(z["fs"]))
            assert torch.get_num_threads() == 2
        finally:
            torch.set_num_threads(1)
        assert res.runtime == ("torch_student" if runtime else "c_pipeline")
        _same_as_csv(res, _csv_rows(out / "a.csv"))
    res2 = model.predict(ppg.astype(np.float32).tolist(), acc.tolist(), fs=np.float64(125))
    assert len(res2) == 12


def test_the_result_is_a_frozen_record_of_arrays(model):
    ppg, acc, fs = _wrist(20.0)
    res = model.predict(ppg, acc, fs)
    assert len(res) == 7 and res.t_end_s[0] == 8.0
    for k in ("t_end_s", *COLUMNS, "flagged", "no_pulse"):
        a = getattr(res, k)
        assert a.shape == (7,) and a.dtype == np.float64 and not a.flags.writeable
    with pytest.raises(AttributeError):
        res.hr_bpm = None
    assert set(res.flagged) <= {0.0, 1.0}
    one = model.predict(ppg[:, 0], acc, fs)                          # one sensor: the device repeats it
    assert len(one) == 7


N = 2500


@pytest.mark.parametrize("kw, match", [
    (dict(ppg=lambda p: p.T), r"ppg must be \(N,\) or \(N, S\).*got shape \(2, 2500\) \(channels-first\? pass ppg.T\)"),
    (dict(ppg=lambda p: p[:, :, None]), r"got shape \(2500, 2, 1\)"),
    (dict(ppg=lambda p: np.hstack([p, p])), r"ppg has 4 sensor columns, the model reads 2"),
    (dict(fs=None), r"fs must be the sampling rate in Hz \(a number\), got None"),
    (dict(fs="125"), r"got '125'"),
    (dict(fs=0.0), r"fs: sampling rate must be in \(0, "),
    (dict(fs=float("nan")), "fs: sampling rate must be finite"),
    (dict(fs=True), "got True"),
    (dict(acc=lambda a: a.T), r"acc must be \(N, 3\) = \(2500, 3\).*got shape \(3, 2500\) \(channels-first\? pass acc.T"),
    (dict(acc=lambda a: a[:2000]), r"got shape \(2000, 3\) \(ppg has 2500 samples: give both the same length, or acc's own rate as "
     r"acc_fs\)"),
    (dict(acc=lambda a: a[:, 0]), r"acc must be \(N, 3\).*got shape \(2500,\)$"),
    (dict(acc=None), "this model reads the accelerometer: pass acc"),
    (dict(ppg=lambda p: p[:0], acc=lambda a: a[:0]), r"ppg is empty \(shape \(0, 2\)\)"),
    (dict(ppg=lambda p: p * (1 + 1j)), "ppg must hold real numbers, got complex128"),
    (dict(ppg=lambda p: p.astype(str)), "ppg must hold real numbers, got <U"),
    (dict(acc=lambda a: a.astype(object)), "acc must hold real numbers, got object"),
    (dict(ppg=lambda p: np.full_like(p, np.nan)), "channel 'ppg' has no finite sample"),
    (dict(ppg=lambda p: p[:500], acc=lambda a: a[:500]), r"arrays/input: 4.0 s is shorter than one 8 s window"),
    (dict(acc=lambda a: [list(a[0]), list(a[1, :2])]), r"acc is not an array of samples \(rows of unequal length\?\)"),
], ids=["ppg_channels_first", "ppg_3d", "ppg_too_many_sensors", "fs_none", "fs_text", "fs_zero", "fs_nan", "fs_bool",
        "acc_channels_first", "acc_shorter", "acc_1d", "acc_missing", "empty", "complex", "text", "object", "nan_only",
        "too_short", "ragged"])
def test_bad_input_is_one_line(model, kw, match):
    ppg, acc, fs = _wrist(20.0)
    args = {"ppg": ppg, "acc": acc, "fs": fs}
    for k, v in kw.items():
        args[k] = v(args[k]) if callable(v) else v
    with pytest.raises(SqtoolError, match=match) as e:
        model.predict(**args)
    assert "\n" not in str(e.value)


def test_a_spectral_hr_export_is_an_hr_model_any_other_a_task_model(model, export_dir):
    """(tests/firmware_bench/test_api_tasks.py: what a TaskModel gives)"""
    assert type(model) is sqtool.HrModel
    assert type(sqtool.load_model(export_dir)) is sqtool.TaskModel           # a time-domain hr student


def test_an_unknown_runtime_is_one_line(spec_export_dir):
    with pytest.raises(SqtoolError, match=r"^sqtool.load_model: runtime gpu: unknown \(choose c_pipeline") as e:
        sqtool.load_model(spec_export_dir, runtime="gpu")
    assert "\n" not in str(e.value)
    sqtool.load_model(spec_export_dir, runtime="c").close()                 # predict's short names are accepted


def test_the_readme_example_runs_and_prints_predicts_heart_rate(spec_export_dir, tmp_path):
    """The README's "Python API" block, run as written in a folder holding the own-data example's CSV
    (my_watch/recordings/s01_walk.csv: time,ppg,acc_x,acc_y,acc_z,hr at 125 Hz) and runs/mw_export (the fixture
    export): one line per window, the heart rate `sqtool predict` writes for that file."""
    import re
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=30))
    cols = {"time": np.arange(len(z["ppg"])) / 125.0, "ppg": z["ppg"], **{f"acc_{a}": z[f"acc_{a}"] for a in "xyz"},
            "hr": np.full(len(z["ppg"]), 90.0)}
    lines, printed, want = run_readme_example(tmp_path, "## Python API", "## Python API for other tasks", "python-api",
                                              cols, spec_export_dir, "mw_export")
    assert 10 <= lines <= 40                                       # predict, then the stream and its recipe
    assert len(printed) == len(want) == 12
    for line, r in zip(printed, want):
        t, hr = re.match(r"\s*([\d.]+) s\s+([\d.]+) BPM", line).groups()
        assert float(t) == pytest.approx(float(r["time_s"])) and float(hr) == pytest.approx(float(r["hr_bpm"]),
                                                                                            abs=0.05)
