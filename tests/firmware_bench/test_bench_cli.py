"""`sqtool bench` end to end on a real SP Cup recording (host C + Cortex-M4 QEMU firmware checked bit
for bit against TFLite Micro), floors, and every bad input as one line + non-zero exit."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sqtool.cli import main


def _bench(capsys, *args):
    rc = main(["bench", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_bench_end_to_end_on_troika(export_dir, data_root, cross_tools, tmp_path, capsys):
    out = tmp_path / "bench"
    rc, stdout, err = _bench(capsys, "--model", export_dir, "--data", data_root / "troika" / "Training_data",
                             "--max-records", 1, "--runtime", "litert_float,tflm_int8,c_host,mcu_m4",
                             "--floor", "exact=100,mcu_m4:flash_kb=64,mcu_m4:ram_kb=32", "--out", out)
    assert rc == 0, err
    res = json.loads((out / "bench.json").read_text())
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert all(r["status"] == "ok" for r in rows.values())
    for k in ("c_host", "mcu_m4"):
        assert rows[k]["exact_pct"] == 100.0 and rows[k]["exact_ref"] == "tflm_int8"
    assert rows["mcu_m4"]["instructions_per_inference"] > 0 and rows["mcu_m4"]["windows"] > 100
    assert rows["tflm_int8"]["latency_ms_p50"] > 0                      # measured (None when not)
    assert res["baseline"]["metrics"]["mae"] is not None
    assert res["provenance"]["model_sha256"] and res["provenance"]["tools"]["qemu"] != "absent"
    for f in ("bench.md", "bland_altman.png", "hr_over_time.png", "latency.png", "config.yaml"):
        assert (out / f).is_file(), f
    assert "mcu_m4" in stdout and "instructions / inference" in stdout and "baseline" in stdout
    # a floor the model cannot meet fails the command (exit 3) and says which
    rc, stdout, stderr = _bench(capsys, "--model", export_dir, "--data", data_root / "troika" / "Training_data",
                                "--max-records", 1, "--runtime", "tflm_int8", "--floor", "mae=0.01",
                                "--out", tmp_path / "b2")
    assert rc == 3 and "FAILED" in stdout
    last = stderr.strip().splitlines()[-1]                  # the reason on stderr too, where a CI log shows it
    assert last.startswith("sqtool: floors: tflm_int8 mae ") and last.endswith("FAILED"), stderr


def _npz(path, fs, ppg):
    n = len(ppg)
    rng = np.random.default_rng(0)
    np.savez(path, ppg=ppg, acc_x=rng.standard_normal(n), acc_y=rng.standard_normal(n),
             acc_z=rng.standard_normal(n), fs=fs)
    return path


@pytest.fixture(scope="module")
def metadata_only(tmp_path_factory):
    """An export dir holding only metadata.json, a passed report and the manifest (every bad-input case fails
    before a runtime loads)."""
    from sqtool.core.manifest import write_manifest
    from sqtool.export.metadata import build_metadata
    from sqtool.models import get_model_cfg
    d = tmp_path_factory.mktemp("md_only")
    md = build_metadata({"model_cfg": get_model_cfg("cnn1d_student_xs").to_dict(), "kind": "student_int8"}, "0" * 64)
    (d / "metadata.json").write_text(json.dumps(md))
    (d / "export_report.json").write_text(json.dumps({"failed": []}))
    write_manifest(d, model=md["model"], sources={}, failed=[])
    return d


BAD_OPTIONS = {"bad_runtime": ["--runtime", "tpu_int4"], "bad_floor": ["--floor", "speed=3"],
               "negative_seconds": ["--max-seconds", "-3"],   # cut the recording's last 3 s instead of failing
               "zero_timeout": ["--timeout", "0"],
               "nan_floor": ["--floor", "mae=nan"],          # ran the whole bench, then FAILED 'mae <= nan'
               "inf_floor": ["--floor", "exact=-inf"]}        # passed whatever was measured


@pytest.mark.parametrize("case,match", [
    ("no_metadata", "has no manifest.json"),
    ("bad_runtime", "unknown runtime"),
    ("bad_floor", "unknown metric"),
    ("low_rate", "cannot resample 12.5 Hz"),
    ("flat", "flat"),
    ("no_data", "does not exist"),
    ("negative_seconds", "--max-seconds must be >= 0"),
    ("zero_timeout", "--timeout must be > 0 seconds"),
    ("nan_floor", "--floor 'mae=nan': 'nan' is not a finite number"),
    ("inf_floor", "--floor 'exact=-inf': '-inf' is not a finite number"),
    ("taken_out", "exists and is not empty"),          # said before the data are read (here: none exist)
])
def test_bench_bad_input_is_one_line(metadata_only, tmp_path, capsys, case, match):
    t = np.arange(int(60 * 125)) / 125
    pulse = np.sin(2 * np.pi * 1.2 * t)
    model, data, extra = metadata_only, tmp_path / "rec.npz", []
    if case == "no_metadata":
        model = tmp_path / "empty"
        model.mkdir()
        _npz(data, 125.0, pulse)
    elif case in BAD_OPTIONS:                             # a good recording, a bad option
        _npz(data, 125.0, pulse)
        extra = BAD_OPTIONS[case]
    elif case == "low_rate":
        _npz(data, 12.5, np.sin(2 * np.pi * 1.2 * np.arange(750) / 12.5))
    elif case == "flat":
        _npz(data, 125.0, np.zeros_like(t))
    elif case == "no_data":
        data = tmp_path / "nowhere"
    elif case == "taken_out":
        data = tmp_path / "nowhere"
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "mine.txt").write_text("x")
    rc, _, err = _bench(capsys, "--model", model, "--data", data, "--out", tmp_path / "out", *extra)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], err
    assert not (tmp_path / "out" / "bench.json").exists()          # no half-written report


def test_none_left_names_every_recording_left_out(metadata_only, tmp_path, capsys):
    """No recording left: the one line gives the count and the reasons of all that were left out, a recording
    without the model's channels (left out before streaming) as well as one shorter than a window."""
    from fwb_helpers import write_wrist_npz
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=30, acc=False)                 # no accelerometer
    write_wrist_npz(data / "b.npz", seconds=4)                             # shorter than one 8 s window
    rc, _, err = _bench(capsys, "--model", metadata_only, "--data", data, "--progress", "false",
                        "--out", tmp_path / "out")
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("bench: ")]   # minus progress
    assert rc != 0 and len(lines) == 1, err
    assert f"--data {data}: no recording the model can use (2 recordings, e.g. " in lines[0], lines[0]
    assert "a: no channel acc_x, acc_y, acc_z; " in lines[0] and "b: 4.0 s is shorter than one 8 s window)" in lines[0]


def test_time_domain_bench_without_labels(export_dir, tmp_path, capsys):
    """Label-free recordings (no labels['hr']): the bench still runs every runtime, reports cost (latency,
    callgrind instructions) and fidelity (decoded HR and int8 outputs vs the reference runtime), says that
    accuracy was not measured in the table, bench.md, bench.json and the last line, and exits 0."""
    from fwb_helpers import write_wrist_npz

    from sqtool.firmware_bench.spectral import NOT_MEASURED
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=30)
    write_wrist_npz(data / "b.npz", seconds=24, hr_bpm=120, seed=1)
    write_wrist_npz(data / "c.npz", seconds=4, hr_bpm=90, seed=2)         # shorter than one window: left out
    out = tmp_path / "b"
    rc, stdout, err = _bench(capsys, "--model", export_dir, "--data", data, "--runtime",
                             "tflm_int8,c_host,c_host_single,litert_int8", "--callgrind-windows", 2,
                             "--floor", "exact=100,mae=5", "--progress", "false", "--out", out)
    assert rc == 3, err                          # the mae floor cannot be checked without labels: a CI gate fails
    res = json.loads((out / "bench.json").read_text())
    assert res["labelled"] is False and res["accuracy"] == NOT_MEASURED
    assert [s.split(":")[0] for s in res["provenance"]["skipped_records"]] == ["npz/c"]
    assert "bench: left out npz/c: 4.0 s is shorter than one 8 s window" in err
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert set(rows) == {"tflm_int8", "c_host", "c_host_single", "litert_int8"}
    assert all(r["status"] == "ok" and r["metrics"]["mae"] is None for r in rows.values())
    assert res["baseline"]["metrics"]["mae"] is None
    n = res["provenance"]["windows"]
    assert n > 10 and all(r["windows"] == n for r in rows.values())
    # cost
    assert rows["c_host"]["instructions_per_inference"] > 0 and rows["tflm_int8"]["latency_ms_p50"] > 0
    # fidelity: the firmware C equals TFLite Micro bit for bit, hence the same HR in every window
    f = rows["c_host"]["fidelity"]
    assert f["ref"] == "tflm_int8" and f["windows"] == n and f["exact_pct"] == 100.0
    assert f["hr_equal_pct"] == 100.0 and f["hr_diff_max"] == 0.0
    assert rows["litert_int8"]["fidelity"]["ref"] == "tflm_int8"
    assert "fidelity" not in rows["tflm_int8"]                                  # the reference itself
    assert "fidelity" not in rows["c_host_single"]                   # single rounding: no Brevitas run to compare
    # floors: exact is checked where measured; mae, measured by no runtime here, is one FAILED entry
    assert [(x["runtime"], x["metric"], x["ok"]) for x in res["floor"]] == [("c_host", "exact", True),
                                                                           ("any runtime", "mae", False)]
    assert "any runtime mae not measured <= 5: FAILED" in stdout
    md = (out / "bench.md").read_text()
    assert f"**{NOT_MEASURED}.**" in md and "fidelity" in md and "per subject" not in md
    assert not (out / "bland_altman.png").exists() and (out / "hr_over_time.png").is_file()
    assert f"NOTE: {NOT_MEASURED}" in stdout
    assert stdout.strip().splitlines()[-1] == f"{NOT_MEASURED}; cost and fidelity only"
    assert "accuracy not measured" in err                                       # the progress lines


def test_time_domain_fidelity_reference():
    from sqtool.firmware_bench.cli import hr_fidelity, hr_reference
    present = {"torch_student", "brevitas_int8", "tflm_int8", "c_host", "c_host_single", "mcu_m4", "onnx_float"}
    assert hr_reference("mcu_m4", present) == "tflm_int8" and hr_reference("c_host", {"c_host", "mcu_m4"}) is None
    assert hr_reference("mcu_m4", {"c_host", "mcu_m4"}) == "c_host"
    assert hr_reference("c_host_single", present) == "brevitas_int8"
    assert hr_reference("onnx_float", present) == "torch_student" and hr_reference("torch_student", present) is None
    assert hr_reference("tflm_int8", present) is None
    d = hr_fidelity(np.array([60.0, 70.0, np.nan, 80.0]), np.array([60.0, 72.0, 90.0, np.nan]))
    assert d == {"windows": 2, "hr_diff_mean": 1.0, "hr_diff_max": 2.0, "hr_equal_pct": 50.0}
    assert hr_fidelity(np.full(3, np.nan), np.ones(3))["windows"] == 0


def test_same_hr_is_within_a_stated_tolerance():
    """Float runtimes' regression outputs differ in their last bits: 'same HR %' counts the windows within
    SAME_HR_BPM (said in the column), not exact float equality (0 % next to a max difference of 0.000 BPM)."""
    from sqtool.firmware_bench import report
    from sqtool.firmware_bench.cli import hr_fidelity
    d = hr_fidelity(np.array([60.0, 70.0, 80.0, 90.0]), np.array([60.0 + 1e-5, 70.0 - 2e-4, 80.04, 90.3]))
    assert d["hr_equal_pct"] == 75.0 and d["hr_diff_max"] == pytest.approx(0.3)
    assert report.SAME_HR_BPM == 0.05
    row = {"runtime": "onnx_float", "status": "ok", "fidelity": {"ref": "torch_student", **d}}
    text = report.tables({"runtimes": [row], "baseline": {"runtime": "baseline", "status": "ok"}, "provenance": {},
                   "labelled": False})
    assert "| same HR % (<= 0.05 BPM) |" in text and "| 75.0 " in text


def test_the_quality_gate_reads_the_quality_output_by_name(metadata_only, tmp_path, monkeypatch):
    """--quality-gate reads the output named quality_logit wherever the model's outputs put it: here third, after
    another output that says 'good' everywhere while quality_logit says poor, so the tracker holds every window
    (no state yet: the tracked series is the raw one); without the gate it smooths the jumps."""
    from sqtool.data.synthetic import synth_record
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    load = R.load_artifacts

    def three_outputs(*a, **kw):
        art = load(*a, **kw)
        art.metadata = {**art.metadata, "outputs": ["hr_bpm", "spo2", "quality_logit"]}
        return art

    class Fake:                                   # HR jumping by 40 BPM every window; spo2 > 0, quality < 0
        precision, latencies_s, int8_outputs = "float32", [], None

        def run_batch(self, x):
            hr = 60.0 + 40.0 * (np.arange(len(x)) % 2)
            return np.stack([hr, np.full(len(x), 5.0), np.full(len(x), -5.0)], axis=1)

        def info(self):
            return {}
    monkeypatch.setattr(R, "load_artifacts", three_outputs)
    monkeypatch.setattr(R, "make_runtime", lambda name, art, work: Fake())
    recs = [synth_record(duration_s=40.0, fs=125.0, hr_bpm=80.0, seed=0, subject="w0")]
    for gate in (True, False):
        res = run_bench(BenchConfig(model=str(metadata_only), data="synthetic", runtime=["onnx_float"],
                                    quality_gate=gate, progress=False, out=str(tmp_path / f"b{gate}")), records=recs)
        raw, trk = res["series"]["pred"]["onnx_float"][0], res["series"]["pred_tracked"]["onnx_float"][0]
        assert len(raw) > 5 and (trk == raw) == gate, (gate, raw, trk)


def test_the_quality_gate_refuses_a_model_without_a_quality_output(metadata_only, tmp_path, capsys, monkeypatch):
    """--quality-gate (off by default) on a model without a quality_logit output would gate nothing: one line naming
    the model's outputs, before any recording is read; the same model runs without the flag."""
    from sqtool.firmware_bench import runtimes as R
    load = R.load_artifacts

    def hr_only(*a, **kw):
        art = load(*a, **kw)
        art.metadata = {**art.metadata, "outputs": ["hr_bpm"]}
        return art
    monkeypatch.setattr(R, "load_artifacts", hr_only)
    rc, stdout, err = _bench(capsys, "--model", metadata_only, "--data", tmp_path / "nowhere", "--quality-gate",
                             "--out", tmp_path / "b")
    assert rc != 0 and err.strip().splitlines()[-1].endswith(
        f"--quality-gate reads the model's quality_logit output; {metadata_only} has none (its outputs: hr_bpm)")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
    rc, _, err = _bench(capsys, "--model", metadata_only, "--data", tmp_path / "nowhere", "--out", tmp_path / "b")
    assert "--quality-gate" not in err and "nowhere does not exist" in err   # without the flag: on to the data


def test_heart_rate_is_read_from_the_hr_bpm_output_by_name(metadata_only, tmp_path, monkeypatch):
    """bench (decode_hr) and predict read the output named hr_bpm wherever the model's outputs put it: here second,
    after quality_logit; a model without hr_bpm is one line naming its outputs, before any recording is streamed."""
    import csv

    from sqtool.core import SqtoolError
    from sqtool.data.synthetic import synth_record
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    from sqtool.firmware_bench.predict import PredictConfig, predict
    load = R.load_artifacts
    outputs = ["quality_logit", "hr_bpm"]

    def reordered(*a, **kw):
        art = load(*a, **kw)
        art.metadata = {**art.metadata, "outputs": list(outputs), "units": ["logit", "bpm"][:len(outputs)]}
        return art

    class Fake:                                   # quality_logit 5 (good), then the HR: 70, 71, 72, ...
        precision, latencies_s, int8_outputs = "float32", [], None

        def run_batch(self, x):
            return np.stack([np.full(len(x), 5.0), 70.0 + np.arange(len(x))], axis=1)

        def info(self):
            return {}
    monkeypatch.setattr(R, "load_artifacts", reordered)
    monkeypatch.setattr(R, "make_runtime", lambda name, art, work: Fake())
    recs = [synth_record(duration_s=30.0, fs=125.0, hr_bpm=80.0, seed=0, subject="w0")]
    res = run_bench(BenchConfig(model=str(metadata_only), data="synthetic", runtime=["onnx_float"], progress=False,
                                out=str(tmp_path / "b")), records=recs)
    hr = res["series"]["pred"]["onnx_float"][0]
    assert len(hr) > 5 and hr == [70.0 + i for i in range(len(hr))]
    s = predict(PredictConfig(model=str(metadata_only), data="records", runtime="onnx", out=str(tmp_path / "p")),
                records=recs)
    with open(tmp_path / "p" / s["recordings"][0]["csv"]) as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["time_s", "hr_bpm", "hr_tracked_bpm", "p_quality"]
    assert [float(r[1]) for r in rows[1:]] == hr and rows[1][2] == "70.000"           # tracked from the HR
    outputs[:] = ["quality_logit", "spo2"]
    with pytest.raises(SqtoolError, match=r"no 'hr_bpm' output to read heart rate from \(its outputs: "
                                          r"quality_logit, spo2\)"):
        run_bench(BenchConfig(model=str(metadata_only), data="synthetic", runtime=["onnx_float"], progress=False,
                              out=str(tmp_path / "b2")), records=recs)


@pytest.mark.mcu
def test_time_domain_bench_without_labels_on_m4(export_dir, cross_tools, tmp_path):
    """Label-free data on the Cortex-M4 firmware (QEMU, a few windows): instructions, flash and RAM, and its
    outputs equal TFLite Micro's on every window it ran."""
    from fwb_helpers import write_wrist_npz

    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    rec = write_wrist_npz(tmp_path / "a.npz", seconds=24)
    res = run_bench(BenchConfig(model=str(export_dir), data=str(rec), runtime=["tflm_int8", "mcu_m4"],
                                mcu_windows=4, callgrind_windows=0, progress=False, out=str(tmp_path / "b")))
    assert res["labelled"] is False
    m4 = {r["runtime"]: r for r in res["runtimes"]}["mcu_m4"]
    assert m4["status"] == "ok", m4.get("error")
    assert m4["windows"] == 4 and m4["metrics"]["mae"] is None
    assert m4["instructions_per_inference"] > 0 and m4["flash_kb"] > 0 and m4["ram_kb"] > 0
    assert m4["fidelity"] == {"ref": "tflm_int8", "windows": 4, "hr_diff_mean": 0.0, "hr_diff_max": 0.0,
                              "hr_equal_pct": 100.0, "exact_pct": 100.0}
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "accuracy not measured" in md and "mcu_m4" in md and "instructions / inference" in md


def test_bench_on_the_embedded_synthetic_default(export_dir, tmp_path, capsys):
    """`--data synthetic` (what `make demo` uses without real data), the export reached through a link (as
    runs/demo/latest/export)."""
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "export").symlink_to(export_dir, target_is_directory=True)
    out = tmp_path / "b"
    rc, stdout, err = _bench(capsys, "--model", demo / "export", "--data", "synthetic", "--runtime", "tflm,c_host",
                             "--quality-gate", "true", "--chunk", 7, "--out", out)
    assert rc == 0, err
    res = json.loads((out / "bench.json").read_text())
    assert res["provenance"]["records"] == 4 and res["provenance"]["windows"] > 100
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert set(rows) == {"tflm_int8", "c_host"}                  # the group name "tflm" expanded
    assert rows["c_host"]["exact_pct"] == 100.0
    assert res["baseline"]["metrics"]["mae"] < 15.0             # clean-ish synthetic PPG: the baseline works


def test_time_domain_bench_warns_when_scored_subjects_were_seen_in_training(export_dir, tmp_path, monkeypatch):
    """The student's train_subjects (written by `sqtool quantize`, read from the export's provenance) that the
    bench scores are named in bench.md's table, the notes and bench.json; held-out subjects are not marked."""
    from sqtool.data.synthetic import synth_record
    from sqtool.firmware_bench import provenance
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    recs = [synth_record(duration_s=40.0, fs=125.0, hr_bpm=70.0 + 10 * i, seed=i, subject=f"w{i}") for i in range(2)]
    seen_by = {}

    def fake_training_subjects(art):
        seen_by["export"] = str(art.export_dir)
        return {"synthetic:w0", "other:w1"}
    monkeypatch.setattr(provenance, "training_subjects", fake_training_subjects)
    res = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["c_host"], callgrind_windows=0,
                                progress=False, out=str(tmp_path / "b")), records=recs)
    assert seen_by["export"] == str(export_dir) and res["seen_in_training"] == ["synthetic:w0"]
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "WARNING: 1 of 2 scored subjects were seen in training (synthetic:w0)" in md
    assert "w0 (seen in training)" in md and "w1 (seen" not in md
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["seen_in_training"] == ["synthetic:w0"]
    monkeypatch.setattr(provenance, "training_subjects", lambda art: None)        # not recorded: no warning
    res = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["c_host"], callgrind_windows=0,
                                progress=False, out=str(tmp_path / "b2")), records=recs)
    assert res["seen_in_training"] == [] and "seen in training" not in (tmp_path / "b2" / "bench.md").read_text()


def test_training_subjects_reads_the_students_provenance(export_dir, tmp_path):
    """training_subjects: the export's manifest names student_int8; its train_subjects, or None without them."""
    from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.provenance import training_subjects
    art = R.load_artifacts(str(export_dir), {})
    assert training_subjects(art) is None                         # the fixture's student records none
    p = art.manifest.source("student_int8")
    ck = load_checkpoint(p)
    q = tmp_path / "model.pt"
    save_checkpoint(q, **{k: v for k, v in ck.items() if k not in ("path",)}, train_subjects=["synthetic:s0"])

    class Art:                                                    # the same export, its student replaced
        @staticmethod
        def checkpoint(key):
            return q
    assert training_subjects(Art()) == {"synthetic:s0"}


def test_training_subjects_of_a_student_changed_since_the_export_are_unknown_and_said(tmp_path, capsys):
    """An older export (no training_data in its metadata) reads the student's train_subjects from the checkpoint
    its manifest names: a checkpoint changed since the export is not the export's, so its subjects are unknown
    (None), said in one note line, never silently "not recorded"; it does not stop a bench of runtimes that never
    read it (test_manifest); a missing one (an export copied alone) is None."""
    from sqtool.core.manifest import Manifest
    from sqtool.firmware_bench.provenance import training_subjects
    man = Manifest(tmp_path, {"sources": {"student_int8": {"path": "model.pt", "sha256": "0" * 64}}})

    class Art:                                                    # an older export: metadata without training_data
        metadata = {}
        checkpoint = staticmethod(man.source)
    assert training_subjects(Art()) is None                       # listed but missing: MissingArtifact, not recorded
    assert capsys.readouterr().err == ""
    (tmp_path / "model.pt").write_bytes(b"re-trained after the export")
    assert training_subjects(Art()) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: ") and "changed after export" in err[0] \
        and "no 'seen in training' check" in err[0]


def test_a_synthetic_only_model_is_flagged_on_real_recordings():
    """A model trained on generated PPG alone (sqtool demo's embedded default) run on real recordings: one
    warning line; on synthetic recordings, or when its training is mixed or not recorded: none."""
    from sqtool.firmware_bench.provenance import synthetic_warning
    syn = {"synthetic:syn000", "synthetic:syn001"}
    w = synthetic_warning({"wrist_exercise:s2", "synthetic:syn007"}, syn)
    assert w.startswith("WARNING: this model was trained on synthetic PPG only (2 generated subjects")
    assert "(wrist_exercise)" in w and "\n" not in w
    assert synthetic_warning({"synthetic:syn007"}, syn) is None
    assert synthetic_warning({"wrist_exercise:s2"}, syn | {"troika:01"}) is None
    assert synthetic_warning({"wrist_exercise:s2"}, None) is None


def test_a_model_without_skill_is_flagged_wherever_it_runs(tmp_path):
    """The fine-tune's verdict against the trivial predictor travels from its metrics.json through the quantize
    checkpoint into the export's metadata; predict and bench print one WARNING line for a NO SKILL model."""
    import json as _json
    from sqtool.compress.cli import teacher_skill
    from sqtool.export.metadata import build_metadata
    from sqtool.firmware_bench.provenance import no_skill_warning
    run = tmp_path / "ft"
    run.mkdir()
    verdict = {"metric": "mae", "model": 2.74, "reference": 2.40, "diff": 0.34, "diff_ci95": [0.1, 0.6],
               "skill": False}
    (run / "metrics.json").write_text(_json.dumps({"skill": {"skill": {**verdict, "flag": "no skill"}}}))
    assert teacher_skill(run / "model.pt") == verdict
    assert teacher_skill(tmp_path / "elsewhere" / "model.pt") is None            # no run folder: nothing claimed
    from sqtool.models import get_model_cfg
    mc = get_model_cfg("cnn1d_student_xs").replace(task="rr", outputs=("rr_bpm",), units=("breaths/min",),
                                                     target_mean=(15.0,), target_std=(5.0,)).to_dict()
    md = build_metadata({"model_cfg": mc, "teacher_skill": verdict}, "0" * 64)
    w = no_skill_warning(md)
    assert w == ("WARNING: this model's teacher in fine-tuning: rr: mae model 2.740 breaths/min vs trivial 2.400 "
                 "breaths/min (difference +0.340 breaths/min, 95 % CI +0.100, +0.600 breaths/min): NO SKILL (does not beat the trivial predictor); its outputs may be "
                 "near one constant whatever the recording")                    # core.metrics.skill_line's verdict
    assert no_skill_warning({"teacher_skill": {**verdict, "skill": True}}) is None and no_skill_warning({}) is None


def test_bench_data_root_alone_is_read_as_data(tmp_path, capsys, monkeypatch):
    """bench's --data-root looks bare dataset names up; alone it is --data (its old spelling, one notice line)."""
    from sqtool.core import SqtoolError
    from sqtool.firmware_bench import cli as bench_cli
    seen = []

    def fake(cfg):
        seen.append((cfg.data, cfg.data_root))
        raise SqtoolError("stop")
    monkeypatch.setattr(bench_cli, "run_bench", fake)
    assert main(["bench", "--model", str(tmp_path), "--data-root", str(tmp_path / "troika")]) != 0
    assert seen == [(str(tmp_path / "troika"), "")]
    assert capsys.readouterr().err.count("deprecated: use --data instead of --data-root") == 1
    assert main(["bench", "--model", str(tmp_path), "--data", "troika", "--data-root", str(tmp_path)]) != 0
    assert seen[1] == ("troika", str(tmp_path))


def test_recordings_at_several_other_rates_are_named_together():
    """A folder of five devices' files benched against a 125 Hz export said 'export --device-fs 25' (the first file's
    rate): re-exported for it, the other rates failed in turn. Several rates are one line naming them all; one other
    rate still names its --device-fs; recordings at the built rate, none."""
    from sqtool.firmware_bench.runtimes import off_rate
    rates = [("a", 25.0), ("b", 50.0), ("c", 125.0), ("d", 50.0), ("e", 100.0)]
    why = off_rate(rates, 125.0, "c_pipeline: ", "the C pipeline was exported for")
    assert why == ("c_pipeline: 4 recordings are sampled at 3 other rates (25, 50, 100 Hz; e.g. a), the C pipeline was "
                   "exported for 125 Hz: an export serves one device rate; bench each rate's recordings against its "
                   "own (export --device-fs RATE)")
    assert off_rate([("a", 64.0), ("c", 125.0)], 125.0, "c_host: ", "the C front end was built for") == (
        "c_host: a is sampled at 64 Hz, the C front end was built for 125 Hz (export --device-fs 64 for this device)")
    assert off_rate([("c", 125.0)], 125.0, "", "built for") is None
