"""`sqtool.load_model(export).predict(ppg, acc, fs)` for every export that is not a spectral heart-rate model (a
TaskModel): the columns `sqtool predict` writes into its CSV for the same samples (a time-domain hr student, an af
student, an af_beats ONNX export, an rr_spec export), read as attributes of a TaskResult; bad input one line each."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from fwb_helpers import assert_streams_as_predict, run_readme_example, write_wrist_npz

import sqtool
from sqtool.cli import main
from sqtool.core import SqtoolError


def _csv_rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _same_as_predict(model, export, tmp_path, ppg_only: bool = True, seconds: float = 40.0, fs: float = 125.0):
    """A generated wrist recording through `sqtool predict` (its CSV) and through the API on the same arrays: the
    same columns, in the same order, the same value in every window (3 decimals; flagged 0/1)."""
    path = write_wrist_npz(tmp_path / "w.npz", seconds=seconds, fs=fs, acc=not ppg_only)
    assert main(["predict", "--model", str(export), "--data", str(path), "--out", str(tmp_path / "p")]) == 0
    rows = _csv_rows(tmp_path / "p" / "w.csv")
    z = np.load(path)
    acc = None if ppg_only else np.stack([z[f"acc_{a}"] for a in "xyz"], 1)
    res = model.predict(z["ppg"], acc, fs=float(z["fs"]))
    assert len(res) == len(rows) > 0
    assert ["time_s", *res.columns] == list(rows[0])
    assert [f"{v:.3f}" for v in res.t_end_s] == [r["time_s"] for r in rows]
    for k in res.columns:
        want = [r[k] for r in rows]
        got = [str(int(v)) if k == "flagged" else "" if not np.isfinite(v) else f"{v:.3f}" for v in res[k]]
        assert got == want, k
        assert getattr(res, k) is res[k] and res[k].dtype == np.float64 and not res[k].flags.writeable
    return res


def _student(root: Path, task: str) -> Path:
    """An untrained int8 student of `task` on the PPG alone, exported with its C (test_predict_targets' kind)."""
    from export_fixtures import make_int8_run

    from sqtool.data.tasks import task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from sqtool.models import get_model_cfg
    mc = task_model_cfg(task, get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    run = make_int8_run(root / "quantize", mc, n_heldout=4, seed=1)
    exp = export(ExportConfig(model=str(run), target=["c"], out=str(root / "export"), progress=False))
    assert exp["failed"] == [], exp["summary"]
    return Path(exp["out"])


@pytest.fixture(scope="module")
def af_student(tmp_path_factory):
    return _student(tmp_path_factory.mktemp("af_student"), "af")


def _finetuned(root: Path, task: str, model: str, targets: str, extra: list[str]) -> Path:
    """`sqtool train finetune --task T --model M` on the embedded synthetic recordings, exported to `targets`."""
    import torch
    torch.set_num_threads(1)
    run, out = root / "run", root / "export"
    assert main(["train", "finetune", "--task", task, "--model", model, "--data", "synthetic", "--folds", "3",
                 "--bootstrap", "20", "--progress", "false", *extra, "--out", str(run)]) == 0
    assert main(["export", "--model", str(run), "--target", targets, "--out", str(out), "--progress", "false"]) == 0
    return out


def test_load_model_gives_a_task_model_for_a_time_domain_hr_student(export_dir, tmp_path):
    """The conftest's hr student (time-domain): hr_bpm, hr_tracked_bpm (the bench's tracker) and the rest as
    predict writes them, on its default runtime (the export's C) and on tflite."""
    m = sqtool.load_model(export_dir)
    assert isinstance(m, sqtool.TaskModel) and m.task == "hr"
    res = _same_as_predict(m, export_dir, tmp_path, ppg_only=not m.needs_acc)
    assert res.runtime == "c_host" and {"hr_bpm", "hr_tracked_bpm", "flagged"} <= set(res.columns)
    assert res.model_sha256 and len(res.model_sha256) == 64
    assert res.t_end_s[0] == pytest.approx(m.window_s)
    t = sqtool.load_model(export_dir, runtime="tflite")
    path = tmp_path / "w.npz"
    z = np.load(path)
    acc = np.stack([z[f"acc_{a}"] for a in "xyz"], 1) if m.needs_acc else None
    assert t.predict(z["ppg"], acc, fs=125.0).runtime == "litert_int8"
    m.close()
    t.close()


def test_an_af_student_gives_predicts_p_af(af_student, tmp_path):
    m = sqtool.load_model(af_student)
    assert isinstance(m, sqtool.TaskModel) and m.sensors == ["ppg"] and not m.needs_acc
    res = _same_as_predict(m, af_student, tmp_path)
    assert list(res.columns) == ["p_af", "flagged"] and ((0 <= res.p_af) & (res.p_af <= 1)).all()
    assert res.runtime == "c_host"
    again = m.predict(np.load(tmp_path / "w.npz")["ppg"].astype(np.float32).tolist(), fs=125)   # built once, lists
    np.testing.assert_allclose(again.p_af, res.p_af, atol=1e-6)
    m.close()


def test_an_af_beats_export_gives_predicts_p_af(tmp_path_factory, tmp_path):
    exp = _finetuned(tmp_path_factory.mktemp("af_beats"), "af", "af_beats", "onnx", ["--max-records", "10"])
    m = sqtool.load_model(exp)
    res = _same_as_predict(m, exp, tmp_path, seconds=60.0)
    assert list(res.columns) == ["p_af", "flagged"] and res.runtime == "onnx_float"
    assert_streams_as_predict(m, np.load(tmp_path / "w.npz")["ppg"], None, 125.0, [[7], [401]])   # as it streams


def test_an_rr_spec_export_gives_predicts_rr_bpm(tmp_path_factory, tmp_path):
    exp = _finetuned(tmp_path_factory.mktemp("rr_spec"), "rr", "rr_spec", "onnx", ["--epochs", "2",
                                                                                   "--max-records", "8"])
    m = sqtool.load_model(exp)
    res = _same_as_predict(m, exp, tmp_path, seconds=90.0)
    assert list(res.columns) == ["rr_bpm", "flagged"] and res.runtime == "onnx_float"
    assert_streams_as_predict(m, np.load(tmp_path / "w.npz")["ppg"], None, 125.0, [[7], [401]])   # as it streams


def test_the_result_reads_by_attribute_and_name_and_is_frozen(af_student, tmp_path):
    m = sqtool.load_model(af_student)
    ppg = np.load(write_wrist_npz(tmp_path / "r.npz", seconds=40, acc=False))["ppg"]
    res = m.predict(ppg, fs=125.0)
    assert len(res) == len(res.p_af) == len(res["flagged"]) and res.t_end_s.shape == res.p_af.shape
    with pytest.raises(AttributeError, match=r"TaskResult has no column 'hr_bpm' \(columns: p_af, flagged\)"):
        res.hr_bpm
    with pytest.raises(AttributeError):
        res.runtime = "x"
    with pytest.raises(TypeError):
        res.columns["p_af"] = None
    m.close()


N = 5000


@pytest.mark.parametrize("kw, match", [
    (dict(ppg=lambda p: np.stack([p, p])), r"ppg must be \(N,\) or \(N, S\).*got shape \(2, 5000\) \(channels-first\? "
                                           r"pass ppg.T\)"),
    (dict(ppg=lambda p: np.stack([p, p], 1)), r"ppg has 2 sensor columns, the model reads 1 \(ppg\): pass "
                                              r"ppg\[:, :1\]"),
    (dict(fs=None), r"fs must be the sampling rate in Hz \(a number\), got None"),
    (dict(fs=float("nan")), "fs: sampling rate must be finite"),
    (dict(acc=lambda a: np.zeros((3, N))), r"acc must be \(N, 3\) = \(5000, 3\).*\(channels-first\? pass acc.T\)"),
    (dict(ppg=lambda p: p * 1j), "ppg must hold real numbers, got complex128"),
    (dict(ppg=lambda p: p[:0]), r"ppg is empty \(shape \(0,\)\)"),
    (dict(ppg=lambda p: np.full_like(p, np.nan)), "channel 'ppg' has no finite sample"),
    (dict(ppg=lambda p: [1.0, [2.0]]), r"ppg is not an array of samples"),
    (dict(acc=125.0, fs=None), r"acc is the number 125.0, not samples: give the rate by name, predict\(ppg, "
                               r"fs=125.0\)"),       # predict(ppg, 125.0): the rate where acc goes
], ids=["channels_first", "too_many_sensors", "fs_none", "fs_nan", "acc_channels_first", "complex", "empty",
        "nan_only", "ragged", "rate_as_acc"])
def test_bad_input_is_one_line(af_student, kw, match):
    m = sqtool.load_model(af_student)
    ppg = np.sin(np.arange(N) / 10.0)
    args = {"ppg": ppg, "acc": None, "fs": 125.0}
    for k, v in kw.items():
        args[k] = v(args[k]) if callable(v) else v
    with pytest.raises(SqtoolError, match=match) as e:
        m.predict(**args)
    assert "\n" not in str(e.value) and str(e.value).startswith(("TaskModel.predict: ", "arrays/input: "))


def test_a_model_reading_the_accelerometer_wants_it(export_dir):
    m = sqtool.load_model(export_dir)                                  # the hr student: ppg, acc_x, acc_y, acc_z
    ppg = np.sin(np.arange(N) / 10.0)
    assert m.needs_acc and m.sensors == ["ppg"]
    with pytest.raises(SqtoolError, match=r"^TaskModel.predict: this model reads the accelerometer: pass acc"):
        m.predict(ppg, fs=125.0)
    with pytest.raises(SqtoolError, match=r"^TaskModel.predict: acc must be \(N, 3\) = \(5000, 3\).*got shape "
                                          r"\(4000, 3\) \(ppg has 5000 samples"):
        m.predict(ppg, np.zeros((4000, 3)), fs=125.0)


def test_an_unknown_runtime_is_one_line(af_student):
    with pytest.raises(SqtoolError, match=r"^sqtool.load_model: --runtime gpu: unknown for a time-domain model") as e:
        sqtool.load_model(af_student, runtime="gpu")
    assert "\n" not in str(e.value)


def test_hr_model_alone_says_load_model_loads_it(af_student):
    with pytest.raises(SqtoolError, match=r"is a time-domain 'af' model; HrModel reads spectral heart-rate exports "
                                          r"only: sqtool.load_model loads this one \(a TaskModel\)"):
        sqtool.HrModel(af_student)


def test_the_readme_example_runs_and_prints_predicts_p_af(af_student, tmp_path):
    """The README's "Python API for other tasks" block, run as written beside the own-data example's CSV (time,ppg)
    and runs/af_export (an af student): one line per window, the p_af `sqtool predict` writes for that file."""
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=30, acc=False))
    cols = {"time": np.arange(len(z["ppg"])) / 125.0, "ppg": z["ppg"]}
    lines, printed, want = run_readme_example(tmp_path, "## Python API for other tasks", "## Multi-GPU",
                                              "python-api-tasks", cols, af_student, "af_export")
    assert lines <= 25
    assert len(printed) == len(want) > 0
    for line, r in zip(printed, want):
        t, p = re.match(r"\s*([\d.]+) s\s+p_af ([\d.]+)", line).groups()
        assert float(t) == pytest.approx(float(r["time_s"])) and float(p) == pytest.approx(float(r["p_af"]), abs=6e-4)


def test_a_model_of_two_ppg_channels_wants_both():
    """A time-domain model reads every channel it was trained on (`_record(every_sensor=True)`), where a spectral
    one repeats a missing second sensor."""
    from sqtool.api import _record
    ppg = np.zeros((N, 1))
    with pytest.raises(SqtoolError, match=r"^TaskModel.predict: ppg has 1 sensor column, the model reads 2 \(ppg, "
                                          r"ppg2\): one column each, in that order$"):
        _record(ppg, None, 125.0, None, ["ppg", "ppg2"], False, "TaskModel.predict", every_sensor=True)
    assert list(_record(ppg, None, 125.0, None, ["ppg", "ppg2"], False, "HrModel.predict").signals) == ["ppg"]


def test_a_task_model_pickles_as_its_export_and_serves_threads(af_student, tmp_path):
    """Pickled (multiprocessing), a TaskModel loads again from its export folder (before: ctypes' "Can't pickle"
    traceback); one AF model serving a thread per request gives each predict the p_af it gets alone (the lock
    HrModel needs, test_api_stream's threads test; here a guard: unlocked, this model's one-call C did not race)."""
    import pickle
    import threading
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=60.0))
    m = sqtool.load_model(af_student)
    ref = m.predict(z["ppg"], fs=float(z["fs"]))
    got: dict = {}

    def request(i: int) -> None:
        got[i] = m.predict(z["ppg"][i * 125:], fs=float(z["fs"]))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alone = {i: m.predict(z["ppg"][i * 125:], fs=float(z["fs"])) for i in range(6)}
    for i in range(6):
        assert np.array_equal(got[i].p_af, alone[i].p_af), i
    assert np.array_equal(ref.p_af, alone[0].p_af)
    m2 = pickle.loads(pickle.dumps(m))
    assert isinstance(m2, sqtool.TaskModel) and np.array_equal(m2.predict(z["ppg"], fs=float(z["fs"])).p_af, ref.p_af)
    m.close()
    m2.close()
