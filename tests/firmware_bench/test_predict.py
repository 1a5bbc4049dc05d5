"""`sqtool predict`: per-window CSV, one PNG per recording and summary.json through the C pipeline (default)
or another runtime; recordings it cannot read are one-line errors."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.firmware_bench import spectral as S
from sqtool.firmware_bench.predict import PredictConfig, predict

COLUMNS = ["time_s", "hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse"]


def _csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], float)


def test_predict_writes_csv_png_summary(spec_export_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=30, ppg2=True)              # ppg + ppg2: the export's 2 sensors
    write_wrist_npz(data / "b.npz", seconds=20, hr_bpm=120, seed=1, ppg2=True)
    out = tmp_path / "pred"
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads((out / "summary.json").read_text())
    assert s["runtime"] == "c_pipeline" and [r["windows"] for r in s["recordings"]] == [12, 7]
    for r in s["recordings"]:
        assert not r["truth"] and "metrics" not in r
        head, x = _csv(out / r["csv"])
        assert head == COLUMNS and x.shape == (r["windows"], 7)
        assert np.array_equal(x[:, 0], 8.0 + 2.0 * np.arange(r["windows"]))     # end of each 8 s window
        assert (x[:, 2] <= x[:, 3]).all() and (x[:, 1:4] >= 29).all() and (x[:, 1:4] <= 231).all()
        assert ((x[:, 4] >= 0) & (x[:, 4] <= 1)).all() and set(x[:, 5]) <= {0.0, 1.0}
        png = (out / r["plot"]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "a.npz" not in cap.out and "predict (c_pipeline)" in cap.out

    # the C network + the Python front end and fixed-point decoder give the same heart rate as the C pipeline
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c", out=str(tmp_path / "c")))
    assert res["runtime"] == "c_host_single"
    for a, b in zip(s["recordings"], res["recordings"]):
        _, xa = _csv(out / a["csv"])
        _, xb = _csv(tmp_path / "c" / b["csv"])
        assert np.array_equal(xa, xb)
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data / "a.npz"), runtime="tflite",
                                out=str(tmp_path / "t")))
    assert res["runtime"] == "litert_int8" and res["recordings"][0]["csv"] == "a.csv"


@pytest.mark.realdata
def test_predict_with_truth(spec_export_dir, data_root, tmp_path):
    from sqtool.data.readers import iter_records
    rec = next(iter_records(data_root / "troika" / "Training_data"))
    res = predict(PredictConfig(model=str(spec_export_dir), data="unused", max_seconds=30, runtime="torch",
                                out=str(tmp_path / "p")), records=[rec])
    r = res["recordings"][0]
    assert res["runtime"] == "torch_student" and r["truth"] and r["windows"] == 12
    head, x = _csv(tmp_path / "p" / r["csv"])
    assert head == COLUMNS + ["truth_bpm"] and np.isfinite(x[:, 7]).all()
    assert r["metrics"]["mae"] == pytest.approx(np.abs(x[:, 1] - x[:, 7]).mean(), abs=0.01)
    assert res["warnings"] == []                                 # the fixture's student records no training


@pytest.mark.realdata
def test_predict_flags_a_synthetic_only_model_on_a_real_recording(spec_export_dir, data_root, tmp_path, capsys,
                                                                    monkeypatch):
    """The student's provenance says it saw generated PPG only (sqtool demo's default): predict on a real
    TROIKA recording prints one warning line and writes it in summary.json."""
    from sqtool.data.readers import iter_records
    from sqtool.firmware_bench import predict as P
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: {"synthetic:syn000", "synthetic:syn001"})
    rec = next(iter_records(data_root / "troika" / "Training_data"))
    monkeypatch.setattr(P, "predict", lambda cfg, records=None, _p=P.predict: _p(cfg, records=[rec]))
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "unused", "--max-seconds", "30",
               "--runtime", "torch", "--out", str(tmp_path / "p")])
    said = capsys.readouterr()
    out = said.out
    assert rc == 0 and out.startswith("WARNING: this model was trained on synthetic PPG only (2 generated subjects")
    assert "(troika)" in out.splitlines()[0]
    assert out.splitlines()[0] in said.err.splitlines()            # on stderr too, where a CI log keeps warnings
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["warnings"] == [out.splitlines()[0]]


def test_predict_bad_recordings(spec_export_dir, tmp_path, capsys):
    noacc = write_wrist_npz(tmp_path / "noacc.npz", seconds=20, acc=False)
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(noacc), "--out", str(tmp_path / "p1")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "needs channel(s) acc_x, acc_y, acc_z" in err
    assert not (tmp_path / "p1" / "summary.json").exists()
    slow = write_wrist_npz(tmp_path / "slow.npz", seconds=20, fs=5.0)
    with pytest.raises(SqtoolError, match="5 Hz, below 2x the model band's top 4 Hz"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(slow), out=str(tmp_path / "p2")))
    fast = write_wrist_npz(tmp_path / "fast.npz", seconds=20, fs=250.0)
    with pytest.raises(SqtoolError, match="250 Hz but the C pipeline was exported for 125 Hz"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(fast), runtime="c_pipeline",
                              out=str(tmp_path / "p3")))
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(fast), out=str(tmp_path / "p4")))
    assert res["runtime"] == "c_host_single" and "250 Hz" in res["runtime_choice"]   # default falls back
    one = write_wrist_npz(tmp_path / "one.npz", seconds=20)              # one PPG sensor, the export has two:
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(one), out=str(tmp_path / "p7")))
    assert res["runtime"] == "c_pipeline"                                 # replayed with the sensor repeated
    x16 = np.arange(12, dtype=np.int16).reshape(4, 3)                     # ppg, acc_x, acc_y, acc_z
    two, n = S.fit_sensors(x16, 1, 2)
    assert n == 2 and (two[0] == two[1]).all() and (two[0] == x16[0]).all() and (two[2:] == x16[1:]).all()
    back, n = S.fit_sensors(two, 2, 1)
    assert n == 1 and (back == x16).all()
    with pytest.raises(SqtoolError, match="--runtime gpu: unknown"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(fast), runtime="gpu", out=str(tmp_path / "p5")))


def test_predict_a_time_domain_model(export_dir, tmp_path, capsys):
    """A time-domain student's export (windows of samples, hr_bpm + quality_logit): predict replays it as the bench
    does, the network's C on the host by default (as built: double rounding); the CSV holds the network's HR, the
    tracked HR and the quality probability, the HR of the LiteRT int8 runtime to one code; a missing channel and the C
    pipeline are one line each."""
    import math
    rec = write_wrist_npz(tmp_path / "w.npz", seconds=40)
    rc = main(["predict", "--model", str(export_dir), "--data", str(rec), "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert rc == 0 and "w: " in out
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["runtime"] == "c_host" and s["recordings"][0]["windows"] > 10
    assert set(s["columns"]) >= {"hr_bpm", "hr_tracked_bpm", "p_quality", "flagged"} and "decoder" not in s
    with open(tmp_path / "c" / "w.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", "hr_bpm", "hr_tracked_bpm", "p_quality", "flagged"]
    x = np.array([[float(v) if v else math.nan for v in r] for r in rows[1:]])
    assert np.allclose(np.diff(x[:, 0]), 2.0) and np.isfinite(x[:, 1]).all()
    assert ((x[:, 3] >= 0) & (x[:, 3] <= 1)).all() and (tmp_path / "c" / "w.png").is_file()
    res = predict(PredictConfig(model=str(export_dir), data=str(rec), runtime="tflite", out=str(tmp_path / "t")))
    with open(tmp_path / "t" / "w.csv") as f:
        y = np.array([[float(v) if v else math.nan for v in r] for r in list(csv.reader(f))[1:]])
    lsb = json.loads((export_dir / "metadata.json").read_text())["output_quantization"][0]["scale"]   # BPM / code
    # int8 on both: LiteRT's optimized kernels and the C (TFLite's reference arithmetic) one code apart at most
    assert res["runtime"] == "litert_int8" and np.abs(y[:, 1] - x[:, 1]).max() <= lsb + 0.01    # CSV: 2 decimals
    from sqtool.data.synthetic import synth_record
    noppg = synth_record(duration_s=30.0, fs=125.0, hr_bpm=80.0, seed=0, subject="a")
    noppg.signals.pop("ppg")
    with pytest.raises(SqtoolError, match=r"needs channel\(s\) ppg; the recording has acc_x"):
        predict(PredictConfig(model=str(export_dir), data="unused", out=str(tmp_path / "n")), records=[noppg])
    with pytest.raises(SqtoolError, match="the C pipeline is the spectral models'"):
        predict(PredictConfig(model=str(export_dir), data=str(rec), runtime="c_pipeline", out=str(tmp_path / "p")))


def test_predict_tracks_a_time_domain_model_as_the_bench_does(export_dir, tmp_path, monkeypatch):
    """predict's hr_tracked_bpm is the bench's tracker (`tracker.tracker_ok`, quality gate on): a 2 s gap puts
    25 % dropouts in the windows over it (fewer than half, which predict once required before holding), the
    tracker holds there in both, the CSV flags exactly those windows, and the two tracked series are the same
    (a stub network whose HR jumps by 40 BPM every window and whose quality_logit says good everywhere)."""
    import math

    from sqtool.data.synthetic import synth_record
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    from sqtool.firmware_bench.stream import StreamSpec, replay
    from sqtool.data.hr_tracker import MAX_FLAGGED, track

    class Jumpy:                                  # outputs in the export's order: hr_bpm, quality_logit
        precision, latencies_s, int8_outputs = "float32", [], None

        def run_batch(self, x):
            return np.stack([60.0 + 40.0 * (np.arange(len(x)) % 2), np.full(len(x), 5.0)], axis=1)

        def info(self):
            return {}
    monkeypatch.setattr(R, "make_runtime", lambda name, art, work: Jumpy())
    rec = synth_record(duration_s=40.0, fs=125.0, hr_bpm=75.0, seed=3, subject="g")
    ppg = np.array(rec.signals["ppg"], dtype=np.float64)
    ppg[int(16 * 125):int(18 * 125)] = np.nan                           # 2 s of 8 s windows: 25 % flagged
    rec.signals["ppg"] = ppg
    md = json.loads((export_dir / "metadata.json").read_text())
    assert md["outputs"] == ["hr_bpm", "quality_logit"]
    share = replay(rec, StreamSpec.from_model_cfg(md)).flagged
    assert 0 < share.max() < 0.5                                         # dropouts, never over half a window
    predict(PredictConfig(model=str(export_dir), data="records", runtime="c", out=str(tmp_path / "p")), records=[rec])
    with open(next((tmp_path / "p").glob("*.csv"))) as f:
        rows = list(csv.reader(f))
    x = {k: np.array([float(r[j]) if r[j] else math.nan for r in rows[1:]]) for j, k in enumerate(rows[0])}
    assert (x["flagged"] == (share >= MAX_FLAGGED)).all() and x["flagged"].sum() >= 3
    assert not np.allclose(x["hr_tracked_bpm"], track(x["hr_bpm"]))     # the held windows change the track
    bench = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["onnx_float"], chunk=1,
                                  quality_gate=True, callgrind_windows=0, progress=False, out=str(tmp_path / "b")),
                      records=[rec])
    assert np.allclose(x["hr_bpm"], bench["series"]["pred"]["onnx_float"][0])
    assert np.allclose(x["hr_tracked_bpm"], bench["series"]["pred_tracked"]["onnx_float"][0], atol=1e-3)


@pytest.mark.parametrize("task", ["hr", "rr", "af", "bp", "quality"])
def test_every_tasks_outputs_have_a_column(task):
    """Each task's outputs (data.tasks.TASK_SPECS) -> CSV columns: a logit as its class probability."""
    from sqtool.data.tasks import TASK_SPECS
    from sqtool.firmware_bench.predict import output_columns
    spec = TASK_SPECS[task]
    cols = output_columns(spec["outputs"], spec["units"])
    assert len(cols) == len(spec["outputs"]) and len({c for c, _, _ in cols}) == len(cols)
    expect = {"hr": ["hr_bpm"], "rr": ["rr_bpm"], "af": ["p_af"], "bp": ["sbp", "dbp"], "quality": ["p_good"]}
    assert [c for c, _, _ in cols] == expect[task]
    assert all(prob == (u == "logit") for (_, _, prob), u in zip(cols, spec["units"]))
    assert output_columns(["hr_bpm", "quality_logit"], ["bpm", "logit"])[1][0] == "p_quality"


def test_predict_a_time_domain_model_of_another_task(tmp_path):
    """A non-heart-rate time-domain export (a bp student, cnn1d_student_xs with the task's outputs sbp, dbp in
    mmHg, quantized and exported as the other fixtures are): one CSV column per output, no tracker, no truth
    column, medians in summary.json."""
    import math

    from export_fixtures import make_int8_run

    from sqtool.data.tasks import task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("bp", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)).replace(
        target_mean=(120.0, 80.0), target_std=(15.0, 10.0))
    run = make_int8_run(tmp_path / "quantize", mc, n_heldout=4)
    exp = export(ExportConfig(model=str(run), target=["c"], out=str(tmp_path / "export")))
    assert exp["failed"] == [], exp["summary"]
    export_dir = exp["out"]
    rec = write_wrist_npz(tmp_path / "w.npz", seconds=30)
    res = predict(PredictConfig(model=str(export_dir), data=str(rec), out=str(tmp_path / "bp")))
    with open(tmp_path / "bp" / "w.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", "sbp", "dbp", "flagged"]
    assert all(not math.isnan(float(v)) for r in rows[1:] for v in r)
    r = res["recordings"][0]
    assert set(r["medians"]) == {"sbp", "dbp"} and "hr_median" not in r and not r["truth"]
    assert res["columns"]["sbp"] == "sbp (mmHg)" and (tmp_path / "bp" / "w.png").is_file()
    assert res["task"] == "bp"
    import contextlib
    import io
    from sqtool.firmware_bench.predict import print_results
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_results(res)                           # bench scores heart rate only: not the next step here
    assert out.getvalue().strip().splitlines()[-1].startswith(f"next: build {res['model_dir']}/c/*.c into the firmware")


@pytest.mark.mcu
def test_predict_on_the_m4(spec_export_dir, cross_tools, tmp_path, capsys):
    """`--runtime mcu`: the network on a Cortex-M4 (QEMU), a few windows of two label-free recordings: the same
    CSV as the host C (single rounding, as the pipeline), and the firmware's cost in summary.json."""
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=14, ppg2=True)               # 4 windows
    write_wrist_npz(data / "b.npz", seconds=12, hr_bpm=120, seed=1, ppg2=True)   # 3 windows
    out = tmp_path / "m4"
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--runtime", "mcu", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads((out / "summary.json").read_text())
    assert s["runtime"] == "mcu_m4_single" and [r["windows"] for r in s["recordings"]] == [4, 3]
    fw = s["firmware"]
    assert fw["cpu"] == "cortex-m4" and fw["instructions_per_inference"] > 1e5 and 0 < fw["flash_bytes"] < 64 * 1024
    assert 0 < fw["ram_bytes"] < 32 * 1024 and "cortex-m4" in cap.out and "predict (mcu_m4_single)" in cap.out
    host = predict(PredictConfig(model=str(spec_export_dir), data=str(data), runtime="c", out=str(tmp_path / "c")))
    assert "firmware" not in host
    for a, b in zip(s["recordings"], host["recordings"]):
        head, xa = _csv(out / a["csv"])
        _, xb = _csv(tmp_path / "c" / b["csv"])
        assert head == COLUMNS and np.array_equal(xa, xb)


def test_repeated_sensor_codes_match_one_sensor(spec_export_dir):
    """A 1-sensor recording on a 2-sensor device: the repeated sensor's codes equal the 1-sensor codes within
    one rounding step (each sensor's spectrum is normalised to its own max before the average)."""
    from sqtool.data.synthetic import synth_corpus
    from sqtool.firmware_bench.runtimes import load_artifacts
    mc = load_artifacts(spec_export_dir).metadata["model_cfg"]
    rec = synth_corpus(n_subjects=1, duration_s=40.0, seed=3, af_fraction=0.0)[0]
    one, two = S.prepare(rec, mc), S.prepare(rec, mc, n_sensors=2)
    assert one.n_ppg == 1 and two.n_ppg == 2
    d = np.abs(one.codes.astype(int) - two.codes.astype(int))
    assert d.max() <= 1 and (d[..., 1:] == 0).all()                      # acc channels untouched


def test_predict_writes_the_expected_error_of_a_calibrated_confidence(spec_export_dir, tmp_path):
    """A model whose decoder carries conf calibration knots (what `sqtool quantize` ships): the CSV gains
    expected_err_bpm = (1 - confidence) x grid extent, and summary.json says what both columns mean."""
    import shutil
    from sqtool.core import sha256_file
    from sqtool.models.decoder import decoder_cfg
    shutil.copytree(spec_export_dir.parent, tmp_path / "run")             # with the runs its manifest lists
    model = tmp_path / "run" / spec_export_dir.name
    meta = json.loads((model / "metadata.json").read_text())
    holder = meta if meta.get("decoder") else meta["model_cfg"]
    holder["decoder"] = {**holder["decoder"], "conf_calib_x": [0, 30000, 32768], "conf_calib_y": [30000, 32000, 32700]}
    (model / "metadata.json").write_text(json.dumps(meta))
    man = json.loads((model / "manifest.json").read_text())              # as an export with these knots lists it
    for f in man["files"]:
        if f["path"] == "metadata.json":
            f["sha256"], f["bytes"] = sha256_file(model / "metadata.json"), (model / "metadata.json").stat().st_size
    (model / "manifest.json").write_text(json.dumps(man))
    span = decoder_cfg(S.decoder_dict(meta)[0]).span_bpm
    data = write_wrist_npz(tmp_path / "a.npz", seconds=30, ppg2=True)
    res = predict(PredictConfig(model=str(model), data=str(data), runtime="torch", out=str(tmp_path / "p")))
    head, x = _csv(tmp_path / "p" / res["recordings"][0]["csv"])
    assert head == COLUMNS[:5] + ["expected_err_bpm", "flagged", "no_pulse"]
    np.testing.assert_allclose(x[:, 5], (1 - x[:, 4]) * span, atol=6e-4 * span)     # the CSV keeps 3 decimals
    assert (x[:, 4] >= 30000 / 32768 - 1e-3).all() and (x[:, 4] <= 32700 / 32768 + 1e-3).all()
    cols = json.loads((tmp_path / "p" / "summary.json").read_text())["columns"]
    assert "expected |error|" in cols["confidence"] and "expected_err_bpm" in cols


def test_a_short_recording_is_left_out_with_a_warning(spec_export_dir, export_dir, tmp_path, capsys):
    """One 5 s file in a folder does not stop predict: it is left out with one WARNING line (and in summary.json),
    the rest is predicted; only when no recording is one window long is it an error (spectral and time-domain)."""
    data = tmp_path / "mix"
    data.mkdir()
    write_wrist_npz(data / "long.npz", seconds=20)
    write_wrist_npz(data / "short.npz", seconds=5, seed=1)
    out = tmp_path / "p"
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(out)]) == 0
    out_lines = capsys.readouterr().out.splitlines()
    warn = [ln for ln in out_lines if ln.startswith("WARNING")]
    assert len(warn) == 1 and "short: 5.0 s is shorter than one 8 s window" in warn[0]
    assert out_lines[-1].startswith(f"next: sqtool bench --model {spec_export_dir} --data {data} ")
    s = json.loads((out / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["long"] and len(s["skipped_records"]) == 1
    assert s["warnings"] == warn
    with pytest.raises(SqtoolError, match="short: 5.0 s is shorter than one 8 s window"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(data / "short.npz"), out=str(tmp_path / "s")))
    res = predict(PredictConfig(model=str(export_dir), data=str(data), out=str(tmp_path / "td")))
    assert [r["record_id"] for r in res["recordings"]] == ["long"] and "short" in res["skipped_records"][0]
    with pytest.raises(SqtoolError, match="shorter than one"):
        predict(PredictConfig(model=str(export_dir), data=str(data / "short.npz"), out=str(tmp_path / "ts")))


def test_nan_samples_are_gaps_not_an_error(spec_export_dir, export_dir, tmp_path):
    """NaN samples (an empty CSV cell) are the gaps the front end documents: predict runs, a window mostly in a gap
    is flagged, in the C pipeline and the Python front end alike and in a time-domain model's stream; the
    windows before the gap read what they read without it; a channel of NaN only is one line."""
    data = tmp_path / "nan"
    data.mkdir()
    clean = write_wrist_npz(tmp_path / "clean.npz", seconds=40)
    z = dict(np.load(clean))
    z["ppg"][int(10 * 125):int(16 * 125)] = np.nan                      # 6 s gap: the window at 8-16 s is flagged
    z["acc_x"][int(30 * 125)] = np.nan
    np.savez(data / "w.npz", **z)
    res = {}
    for rt in ("c_pipeline", "c"):
        res[rt] = predict(PredictConfig(model=str(spec_export_dir), data=str(data / "w.npz"), runtime=rt,
                                        out=str(tmp_path / rt)))
        _, x = _csv(tmp_path / rt / "w.csv")
        assert x[4, 5] == 1 and x[0, 5] == 0 and np.isfinite(x[:, 1]).all()   # window 4 = 8-16 s, mostly gap
    _, a = _csv(tmp_path / "c_pipeline" / "w.csv")
    _, b = _csv(tmp_path / "c" / "w.csv")
    assert np.array_equal(a, b)
    predict(PredictConfig(model=str(spec_export_dir), data=str(clean), runtime="c", out=str(tmp_path / "clean")))
    _, c = _csv(tmp_path / "clean" / "clean.csv")
    assert np.array_equal(a[:2], c[:2])                                  # before the gap: the very same rows
    td = predict(PredictConfig(model=str(export_dir), data=str(data / "w.npz"), out=str(tmp_path / "td")))
    assert td["recordings"][0]["windows"] == 17 and td["recordings"][0]["flagged_windows"] >= 1
    z["ppg"][:] = np.nan
    np.savez(data / "w.npz", **z)
    with pytest.raises(SqtoolError, match="channel 'ppg' has no finite sample"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(data / "w.npz"), out=str(tmp_path / "all")))


def test_file_names_are_the_recordings_ids(spec_export_dir, tmp_path):
    """Each recording's CSV and plot are named by its id, whatever script it is written in; the dataset goes in
    front only where two recordings of the run share an id."""
    data = tmp_path / "ids"
    data.mkdir()
    write_wrist_npz(data / "s01_walk.npz", seconds=20)
    write_wrist_npz(data / "s02_Łódź.npz", seconds=20, seed=1)
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), out=str(tmp_path / "p")))
    assert sorted(r["csv"] for r in res["recordings"]) == ["s01_walk.csv", "s02_Łódź.csv"]
    assert (tmp_path / "p" / "s02_Łódź.png").is_file()

    from sqtool.firmware_bench.predict import _stems
    rec = lambda ds, rid: type("R", (), {"record_id": rid, "record": type("D", (), {"dataset": ds})()})()  # noqa: E731
    assert _stems([rec("a", "s01"), rec("b", "s01"), rec("a", "s02")]) == ["a_s01", "b_s01", "s02"]
    assert _stems([rec("a", "x/y"), rec("a", "x y")]) == ["a_x_y", "a_x_y_"]


def test_data_root_alone_is_read_as_data(spec_export_dir, tmp_path, capsys):
    """predict's --data-root is where a bare dataset name is looked up; given alone (a recordings folder), it is
    --data's old spelling as in train / quantize / demo: read as --data with one notice line."""
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=20, ppg2=True)
    rc = main(["predict", "--model", str(spec_export_dir), "--data-root", str(data), "--out", str(tmp_path / "p")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cap.err.count("deprecated: use --data instead of --data-root") == 1
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["recordings"][0]["record_id"] == "a"


def test_library_predict_takes_data_as_given(spec_export_dir, tmp_path, capsys):
    """--data-root alone read as --data is the command line's (firmware_bench.cli.data_from_flags, bench's and
    predict's): library predict(), like run_bench(), prints no deprecation line and asks for --data in one error."""
    from sqtool.core import SqtoolError
    from sqtool.firmware_bench.predict import PredictConfig, predict
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=20, ppg2=True)
    with pytest.raises(SqtoolError, match=r"^--data is required"):
        predict(PredictConfig(model=str(spec_export_dir), data_root=str(data), out=str(tmp_path / "p")))
    assert "deprecated" not in capsys.readouterr().err
    predict(PredictConfig(model=str(spec_export_dir), data=str(data), out=str(tmp_path / "p2")))
    assert "deprecated" not in capsys.readouterr().err


def test_a_runtime_other_than_the_default_says_why(spec_export_dir, tmp_path, capsys):
    """The export has the C pipeline (the default) but the recording is at another rate: the console says which
    runtime ran and why in one line (summary.json's runtime_choice), not only 'predict (c_host_single)'."""
    fast = write_wrist_npz(tmp_path / "fast.npz", seconds=20, fs=250.0, ppg2=True)
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(fast), "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    why = [ln for ln in out.splitlines() if ln.startswith("runtime c_host_single, not the C pipeline (the default): ")]
    assert len(why) == 1 and "fast is at 250 Hz, the C pipeline was exported for 125 Hz" in why[0], out
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(fast), "--runtime", "c",
                 "--out", str(tmp_path / "c")]) == 0                  # asked for: nothing to explain
    assert "not the C pipeline" not in capsys.readouterr().out


def test_library_predict_releases_its_run_folder(spec_export_dir, tmp_path, monkeypatch):
    """A library predict() call (a notebook) left its run folder locked for the rest of the process: `sqtool predict
    --out` the same folder from a terminal said 'in use by another sqtool run'. It releases what it locked when it
    returns (or raises), as the CLI does; a lock held before the call (an enclosing command's) stays held."""
    import fcntl
    import os

    from sqtool.core import held_run_dirs, lock_run_dir, release_run_dirs
    from sqtool.firmware_bench import predict as P
    rec = write_wrist_npz(tmp_path / "a.npz", seconds=20, ppg2=True)
    outer = tmp_path / "outer"
    outer.mkdir()
    lock_run_dir(outer)
    before = held_run_dirs()
    assert str(outer.resolve()) in before
    try:
        out = tmp_path / "p"
        predict(PredictConfig(model=str(spec_export_dir), data=str(rec), out=str(out)))
        assert held_run_dirs() == before
        assert (out / "summary.json").exists() and not (out / ".lock").exists()     # released: its lock file gone
        assert (outer / ".lock").exists()                                         # the enclosing one still held
        fd = os.open(outer / ".lock", os.O_RDWR)
        try:
            with pytest.raises(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        def boom(*a, **k):
            raise SqtoolError("the runtime failed")
        monkeypatch.setattr(P, "run_spectral", boom)              # fails after the run folder is made
        with pytest.raises(SqtoolError, match="the runtime failed"):   # a failed call releases its folder too
            predict(PredictConfig(model=str(spec_export_dir), data=str(rec), out=str(tmp_path / "q")))
        assert not (tmp_path / "q" / ".lock").exists()
        assert held_run_dirs() == before
    finally:
        release_run_dirs(keep=before - {str(outer.resolve())})


def _arrays_record(n: int = 3750, **change):
    """A 30 s wrist Record made in code (ppg + acc at 125 Hz), with `change` applied: signals / fs by channel."""
    from sqtool.data.record import Record
    rng = np.random.default_rng(0)
    t = np.arange(n) / 125.0
    sig = {"ppg": np.sin(2 * np.pi * 1.5 * t) + 0.1 * rng.standard_normal(n),
           **{f"acc_{a}": 0.05 * rng.standard_normal(n) for a in "xyz"}}
    fs = {c: 125.0 for c in sig}
    for k, v in change.items():
        (fs if k.startswith("fs_") else sig)[k.removeprefix("fs_")] = v
    return Record("mine", "s1", "r1", sig, fs)


@pytest.mark.parametrize("record, match", [
    (lambda: _arrays_record(ppg=np.zeros((3750, 1))), r"mine/r1: channel 'ppg' must be 1-D, got shape \(3750, 1\)"),
    (lambda: _arrays_record(ppg=np.zeros((1, 3750))), r"must be 1-D, got shape \(1, 3750\)"),
    (lambda: _arrays_record(fs_ppg=None), "channel 'ppg' has no valid sampling rate"),
    (lambda: _arrays_record(fs_ppg="125"), "sampling rate '125' is text, not a number"),
    (lambda: _arrays_record(n=0), "channel 'ppg' is empty"),
    (lambda: _arrays_record(acc_x=np.zeros(2500), acc_y=np.zeros(2500), acc_z=np.zeros(2500)),
     r"channels of unequal length: 'ppg' has 3750 samples at 125 Hz \(30 s\), 'acc_x' 2500 at 125 Hz \(20 s\)"),
    (lambda: _arrays_record(acc_z=np.zeros(3749)), "channels of unequal length"),
    (lambda: _arrays_record(ppg=np.ones(3750) * (1 + 1j)), "channel 'ppg' must hold real numbers, got complex128"),
    (lambda: _arrays_record(ppg=np.array(["1.0"] * 3750)), "channel 'ppg' must hold real numbers, got <U3"),
    (lambda: {"ppg": np.zeros(3750)}, "records must be sqtool.data.record.Record, got dict"),
], ids=["ppg_N1", "ppg_1N", "fs_none", "fs_text", "empty", "acc_shorter", "one_sample_short", "complex", "text",
        "not_a_record"])
def test_predict_checks_the_records_it_is_given(spec_export_dir, tmp_path, record, match):
    """predict(records=[...]) (the path from arrays) ran records it never checked: numpy ValueError / IndexError
    tracebacks, complex or text samples and a text rate taken, a shorter accelerometer silently cutting every channel
    (fewer windows). Each is one SqtoolError line now, before a run folder is made."""
    with pytest.raises(SqtoolError, match=match) as e:
        predict(PredictConfig(model=str(spec_export_dir), out=str(tmp_path / "p")), records=[record()])
    assert "\n" not in str(e.value) and not (tmp_path / "p" / "summary.json").exists()


def test_predict_takes_a_good_record_made_in_code(spec_export_dir, tmp_path):
    """The checks leave a record of int16 counts or float32 samples, whose channels span the same time, alone."""
    rec = _arrays_record(ppg=(_arrays_record().signals["ppg"] * 1000).astype(np.int16))
    res = predict(PredictConfig(model=str(spec_export_dir), out=str(tmp_path / "p")), records=[rec])
    assert res["recordings"][0]["windows"] == 12


def test_the_summary_leaves_flagged_windows_out(spec_export_dir, export_dir, tmp_path, capsys):
    """hr_median / hr_min / hr_max / confidence_median and the medians were over every window, the flagged ones too,
    whose hr_bpm is the decoder's prediction only (hours off the wrist: a constant 129 BPM pulled the median of a
    day up by 14 BPM). They are over the windows not flagged now (scored_windows), the CSV still has every window's
    row with its flag, and the printed line says the flagged windows were left out; a recording flagged throughout
    has no median (None) and says so. Spectral and time-domain models alike."""
    from sqtool.firmware_bench.predict import print_results
    z = dict(np.load(write_wrist_npz(tmp_path / "clean.npz", seconds=120)))
    z["ppg"][int(20 * 125):int(100 * 125)] = np.nan                     # 80 s off the wrist
    data = tmp_path / "gap"
    data.mkdir()
    np.savez(data / "w.npz", **z)
    for model, col in ((spec_export_dir, "confidence"), (export_dir, "p_quality")):
        out = tmp_path / f"p_{col}"
        res = predict(PredictConfig(model=str(model), data=str(data), runtime="c", out=str(out)))
        r = res["recordings"][0]
        head, x = _csv(out / r["csv"])
        fl = x[:, head.index("flagged")] == 1
        assert len(x) == r["windows"] and fl.sum() == r["flagged_windows"] >= 10 and (~fl).sum() >= 10
        assert r["scored_windows"] == (~fl).sum()
        hr = x[~fl, head.index("hr_bpm")]
        assert r["hr_median"] == pytest.approx(np.median(hr), abs=1e-3)
        assert (r["hr_min"], r["hr_max"]) == pytest.approx((hr.min(), hr.max()), abs=1e-3)
        assert r[f"{col}_median"] == pytest.approx(np.median(x[~fl, head.index(col)]), abs=1e-3)
        assert r["medians"]["hr_bpm"] == r["hr_median"]
        print_results(res)
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("w: "))
        assert f"HR {r['hr_median']:.1f} BPM median, {r['flagged_windows']} flagged (left out of the medians)" in line
    off = _arrays_record(ppg=np.zeros(3750))                             # a flat line throughout: nothing scored
    res = predict(PredictConfig(model=str(spec_export_dir), out=str(tmp_path / "flat")), records=[off])
    r = res["recordings"][0]
    assert r["flagged_windows"] == r["windows"] == 12 and r["scored_windows"] == 0 and r["medians"] == {}
    assert r["hr_median"] is None and r["hr_min"] is None and r["confidence_median"] is None
    print_results(res)
    assert "r1: 12 windows, every window flagged: nothing scored, 12 flagged -> r1.csv" in capsys.readouterr().out


def test_a_file_off_the_wrist_throughout_is_left_out_of_a_folder(spec_export_dir, export_dir, tmp_path, capsys):
    """A folder of hourly files stopped at the first hour spent on the charger (PPG a flat line) or with the sensor off
    (no finite sample): rc 1, nothing written for the other hours. Such a file is left out with one WARNING line
    naming it and why, as a short one is, and the others are predicted; a folder of such files only, or the one
    file given alone, is one error line. A damaged file of the folder stopped it too: now left out the same way (given
    alone, its own line). load_model(...).predict,
    handed a flat line as arrays, returns its windows all flagged (arrays in code: every window asked for)."""
    import sqtool
    data = tmp_path / "hours"
    data.mkdir()
    z = dict(np.load(write_wrist_npz(data / "h00.npz", seconds=20)))
    np.savez(data / "h01.npz", **{**z, "ppg": np.zeros_like(z["ppg"])})                 # on the charger
    np.savez(data / "h02.npz", **{**z, "ppg": np.full_like(z["ppg"], np.nan)})          # nothing recorded
    out = tmp_path / "p"
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(out)]) == 0
    warn = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("WARNING")]
    assert len(warn) == 2
    assert warn[0].startswith(f"WARNING: left out {data / 'h01.npz'}: ") and "'ppg' is a flat line (constant 0)" in warn[0]
    assert warn[1].startswith(f"WARNING: left out {data / 'h02.npz'}: ") and "'ppg' has no finite sample" in warn[1]
    s = json.loads((out / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["h00"] and len(s["skipped_records"]) == 2
    assert s["warnings"] == warn and (out / "h00.csv").is_file() and not (out / "h01.csv").exists()
    td = predict(PredictConfig(model=str(export_dir), data=str(data), out=str(tmp_path / "td")))
    assert [r["record_id"] for r in td["recordings"]] == ["h00"] and len(td["skipped_records"]) == 2
    with pytest.raises(SqtoolError, match="h01.npz: record h01: channel 'ppg' is a flat line") as e:
        predict(PredictConfig(model=str(spec_export_dir), data=str(data / "h01.npz"), out=str(tmp_path / "one")))
    assert "\n" not in str(e.value)
    (data / "h03.npz").write_bytes(b"not a zip")                  # a damaged file of the folder: left out too
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), out=str(tmp_path / "damaged")))
    assert [r["record_id"] for r in res["recordings"]] == ["h00"] and len(res["skipped_records"]) == 3
    assert "h03.npz: corrupt or truncated .npz" in res["skipped_records"][2]
    with pytest.raises(SqtoolError, match="h03.npz: corrupt or truncated .npz"):        # given alone: its line
        predict(PredictConfig(model=str(spec_export_dir), data=str(data / "h03.npz"), out=str(tmp_path / "bad")))
    (data / "h00.npz").unlink()
    with pytest.raises(SqtoolError, match=r"no recording the model can use \(3 recordings, e.g. .*h01.npz"):
        predict(PredictConfig(model=str(spec_export_dir), data=str(data), out=str(tmp_path / "none")))
    model = sqtool.load_model(spec_export_dir)
    res = model.predict(np.zeros(len(z["ppg"])), np.stack([z[f"acc_{a}"] for a in "xyz"], 1), fs=125.0)
    assert len(res) == 7 and (res.flagged == 1).all()
    model.close()


def test_predict_writes_the_inputs_wall_clock_time(spec_export_dir, tmp_path):
    """An epoch-ms / ISO time column was reduced to seconds from the first row: every hourly CSV restarted at 8.000.
    The CSV has a `time` column beside time_s (the window's end as ISO 8601, in the input's form: Z for epoch
    numbers, the input's offset for ISO times) and summary.json the recording's start_time; an input without a
    wall clock (an NPZ, seconds from the start) is written as before."""
    import pandas as pd
    z = dict(np.load(write_wrist_npz(tmp_path / "w.npz", seconds=20)))
    n = len(z["ppg"])
    data = tmp_path / "hours"
    data.mkdir()
    ms = 1774728000000 + np.arange(n) * 8                                 # 125 Hz, from 2026-03-28T20:00:00Z
    df = pd.DataFrame({"timestamp_ms": ms, **{k: z[k] for k in ("ppg", "acc_x", "acc_y", "acc_z")}})
    df.to_csv(data / "h20.csv", index=False)
    iso = pd.Timestamp("2026-03-28 21:00", tz="Europe/Berlin") + pd.to_timedelta(np.arange(n) * 8, unit="ms")
    df.drop(columns="timestamp_ms").assign(time=[v.isoformat() for v in iso]).to_csv(data / "h21.csv", index=False)
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(data), out=str(tmp_path / "p")))
    for r, start, first in zip(res["recordings"], ("2026-03-28T20:00:00.000Z", "2026-03-28T21:00:00.000+01:00"),
                               ("2026-03-28T20:00:08.000Z", "2026-03-28T21:00:08.000+01:00")):
        assert r["start_time"] == start
        rows = (tmp_path / "p" / r["csv"]).read_text().splitlines()
        assert rows[0].split(",")[:3] == ["time_s", "time", "hr_bpm"] and len(rows) == r["windows"] + 1
        assert rows[1].split(",")[:2] == ["8.000", first]
        assert rows[-1].split(",")[1] == first.replace("20:00:08", "20:00:20").replace("21:00:08", "21:00:20")
    assert "ISO 8601" in res["columns"]["time"]
    res = predict(PredictConfig(model=str(spec_export_dir), data=str(tmp_path / "w.npz"), out=str(tmp_path / "n")))
    assert "start_time" not in res["recordings"][0] and "time" not in res["columns"]
    assert (tmp_path / "n" / "w.csv").read_text().startswith(",".join(COLUMNS) + "\n")
