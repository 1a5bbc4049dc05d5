"""`sqtool bench` on a spectral export: one front end for every runtime, the C pipeline equal to the Python
integer reference hop for hop, accuracy against TROIKA truth, label-free data (cost and fidelity only), and
every unusable input as one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.firmware_bench.cli import BenchConfig, run_bench
from sqtool.firmware_bench.spectral import NOT_MEASURED

HOST = "c,tflm_int8,litert_int8,onnx_int8,torch,c_pipeline"


def _rows(res):
    return {r["runtime"]: r for r in res["runtimes"]}


@pytest.mark.realdata
def test_bench_spectral_on_troika(spec_export_dir, data_root, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = main(["bench", "--model", str(spec_export_dir), "--data", str(data_root / "troika" / "Training_data"),
               "--max-records", "1", "--max-seconds", "40", "--runtime", HOST, "--callgrind-windows", "0",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((out / "bench.json").read_text())
    rows = _rows(res)
    assert set(rows) == {"c_host", "c_host_single", "tflm_int8", "litert_int8", "onnx_int8", "torch_student",
                         "brevitas_int8", "c_pipeline"}
    assert all(r["status"] == "ok" for r in rows.values()), [r.get("error") for r in rows.values()]
    assert res["labelled"] and res["provenance"]["records"] == 1
    n = res["provenance"]["windows"]
    assert n == 17 and all(r["windows"] == n for r in rows.values())          # (40 - 8) / 2 + 1 windows
    # the C pipeline, one call per recording, equals the Python integer reference in every field of every hop
    pl = rows["c_pipeline"]
    assert pl["exact_hops_pct"] == 100.0 and "mismatched_fields" not in pl and pl["calls"] == 1
    # ... and the C network + Python decode_int with the same (single) rounding gives the same heart rate
    assert pl["hr_vs_c_host_single"]["hr_equal_pct"] == 100.0
    # int8 runtimes got the same codes: the firmware C equals TFLite Micro, single rounding equals Brevitas
    assert rows["c_host"]["exact_pct"] == 100.0 and rows["c_host"]["exact_ref"] == "tflm_int8"
    assert rows["c_host_single"]["fidelity"]["ref"] == "brevitas_int8"
    assert rows["c_host_single"]["max_lsb_diff"] <= 1
    for r in rows.values():
        m = r["metrics"]
        assert m["n"] == n and len(m["loa95"]) == 2 and m["mae_ci95"] is None      # 2 batches: no interval
        assert list(r["per_subject"]) == ["troika:01"] and list(r["per_record"]) == ["DATA_01_TYPE01"]
        for k in ("n", "mae", "rmse", "bias", "gt10_pct"):              # one recording: the same windows
            assert r["per_record"]["DATA_01_TYPE01"][k] == pytest.approx(m[k]), k
        assert m["gt10_pct"] * n / 100 == pytest.approx(round(m["gt10_pct"] * n / 100))   # k of n windows
        assert r.get("latency_ms_mean", 0) > 0
    assert rows["tflm_int8"]["argmax"]["mae"] is not None
    # the decoder's uncertainty against the truth, per runtime: the pipeline's own interval and confidence
    # outputs give exactly what the C network + decode_int give (same hops, same decoder)
    for r in rows.values():
        u = r["uncertainty"]
        assert u["n"] == n and 0.0 <= u["interval_coverage"] <= 1.0 and u["interval_width_median"] >= 0
        assert u["mae_all"] == pytest.approx(r["metrics"]["mae"]) and u["mae_top"] >= 0
    assert pl["uncertainty"] == rows["c_host_single"]["uncertainty"]
    assert res["baseline"]["status"] == "ok" and res["baseline"]["metrics"]["n"] == n
    md = (out / "bench.md").read_text()
    assert "MAE per subject" in md and "troika:01" in md and "c_pipeline" in md and "in interval %" in md
    assert ("MAE 95% CI: too few batches for an interval (2 batches of 7-10 windows; 1 subject, 1 recording; "
            "batches of 30 halved to 7: too few windows).") in md       # 8 s / 2 s: 30 windows a minute, 17 here
    assert "bootstrap" not in md.split("## Notes")[1].split("MAE CI:")[1].split("\n")[0]      # the note agrees with the line
    # progress: one line per runtime as it finishes
    assert sum(ln.startswith("bench: ") and ": ok," in ln for ln in cap.err.splitlines()) == len(rows)   # stderr


def test_bench_spectral_without_labels(spec_export_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=30, ppg2=True)                  # two PPG sensors, as the export
    write_wrist_npz(data / "b.npz", seconds=24, hr_bpm=120, seed=1, ppg2=True)
    write_wrist_npz(data / "c.npz", seconds=5, seed=2, ppg2=True)           # shorter than one window: left out
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(data), runtime=["c", "tflm", "c_pipeline"],
                                callgrind_windows=2, floor=["exact=100", "mae=5"], out=str(tmp_path / "bench")))
    assert res["provenance"]["skipped_records"] == ["npz/c: 5.0 s is shorter than one 8 s window"]
    assert [(f["runtime"], f["metric"], f["ok"]) for f in res["floor"]] == [
        ("c_host", "exact", True), ("c_pipeline", "exact", True), ("any runtime", "mae", False)]   # fails closed
    assert not res["labelled"] and res["accuracy"] == NOT_MEASURED
    rows = _rows(res)
    assert all(r["status"] == "ok" for r in rows.values())
    assert res["provenance"]["windows"] == 12 + 9
    assert all(r["metrics"]["mae"] is None for r in rows.values())
    assert rows["c_host"]["exact_pct"] == 100.0 and rows["c_pipeline"]["exact_hops_pct"] == 100.0
    assert rows["c_host"]["instructions_per_inference"] > 0 and rows["c_pipeline"]["latency_ms_mean"] > 0
    md = (tmp_path / "bench" / "bench.md").read_text()
    assert "accuracy not measured" in md and "MAE per subject" not in md
    from sqtool.firmware_bench.cli import next_step
    assert next_step(res).splitlines()[-1] == f"{NOT_MEASURED}; cost and fidelity only"   # the command's last line


def test_bench_spectral_bad_recordings(spec_export_dir, tmp_path, capsys):
    noacc = write_wrist_npz(tmp_path / "noacc.npz", seconds=20, acc=False)
    with pytest.raises(SqtoolError, match=r"noacc: the model needs channel\(s\) acc_x, acc_y, acc_z; the recording has ppg"):
        run_bench(BenchConfig(model=str(spec_export_dir), data=str(noacc), runtime=["c"], out=str(tmp_path / "b1")))
    slow = write_wrist_npz(tmp_path / "slow.npz", seconds=20, fs=6.0)
    rc = main(["bench", "--model", str(spec_export_dir), "--data", str(slow), "--out", str(tmp_path / "b2")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "6 Hz, below 2x the model band's top 4 Hz" in err
    odd = write_wrist_npz(tmp_path / "odd.npz", seconds=20, fs=8000.37)     # nor could it take 8000 Hz
    with pytest.raises(SqtoolError, match="front end cannot take 8000.37 Hz.*resample the recording to a rate such as"):
        run_bench(BenchConfig(model=str(spec_export_dir), data=str(odd), runtime=["c"], out=str(tmp_path / "b3")))
    off = write_wrist_npz(tmp_path / "off.npz", seconds=20, fs=125.37)       # a clock off 125 Hz: resampled to it
    run_bench(BenchConfig(model=str(spec_export_dir), data=str(off), runtime=["c"], out=str(tmp_path / "b4")))
    res = json.loads((tmp_path / "b4" / "bench.json").read_text())
    assert _rows(res)["c_host"]["status"] == "ok"
    assert any(n.startswith("note: 1 recording sampled off a whole-Hz rate") and "125.37 -> 125 Hz" in n
               for n in res["notes"]), res["notes"]


def test_asked_runtime_that_cannot_run_is_an_error(spec_export_dir, tmp_path):
    """The C pipeline was exported for 125 Hz: asking for it on 250 Hz data is an error (after the report), a
    default run skips it with the reason; the Python front end handles 250 Hz for the other runtimes."""
    rec = write_wrist_npz(tmp_path / "fast.npz", seconds=20, fs=250.0)
    with pytest.raises(SqtoolError, match=r"runtime c_pipeline cannot run: .*250 Hz.*exported for 125 Hz"):
        run_bench(BenchConfig(model=str(spec_export_dir), data=str(rec), runtime=["c_pipeline", "c_host"],
                              out=str(tmp_path / "b1")))
    res = json.loads((tmp_path / "b1" / "bench.json").read_text())
    assert _rows(res)["c_host"]["status"] == "ok" and _rows(res)["c_pipeline"]["status"] == "error"
    with pytest.raises(SqtoolError, match="unknown runtime 'c_pipelin'"):
        run_bench(BenchConfig(model=str(spec_export_dir), data=str(rec), runtime=["c_pipelin"],
                              out=str(tmp_path / "b2")))


@pytest.mark.mcu
def test_bench_spectral_on_m4(spec_export_dir, cross_tools, tmp_path):
    """Label-free data on the Cortex-M4 (QEMU, 6 windows): cost (instructions, flash, RAM) and fidelity (int8
    logits and decoded HR vs TFLite Micro) are reported, accuracy is "not measured" everywhere."""
    from sqtool.firmware_bench.cli import next_step
    rec = write_wrist_npz(tmp_path / "a.npz", seconds=30)
    res = run_bench(BenchConfig(model=str(spec_export_dir), data=str(rec), runtime=["tflm_int8", "mcu_m4"],
                                mcu_windows=6, out=str(tmp_path / "bench")))
    m4 = _rows(res)["mcu_m4"]
    assert m4["status"] == "ok", m4.get("error")
    assert m4["windows"] == 6 and m4["exact_pct"] == 100.0 and m4["exact_ref"] == "tflm_int8"
    assert m4["instructions_per_inference"] > 1e5 and 0 < m4["flash_kb"] < 64 and 0 < m4["ram_kb"] < 32
    fd = m4["fidelity"]
    assert fd["ref"] == "tflm_int8" and fd["windows"] == 6 and fd["exact_pct"] == 100.0
    assert fd["hr_equal_pct"] == 100.0 and fd["hr_diff_max"] == 0.0
    assert not res["labelled"] and res["accuracy"] == NOT_MEASURED and m4["metrics"]["mae"] is None
    md = (tmp_path / "bench" / "bench.md").read_text()
    assert "cortex-m4" in md and f"**{NOT_MEASURED}.**" in md
    saved = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert saved["labelled"] is False and saved["accuracy"] == NOT_MEASURED
    assert next_step(res).splitlines()[-1] == f"{NOT_MEASURED}; cost and fidelity only"


def test_one_sensor_recording_on_a_two_sensor_pipeline(spec_export_dir, tmp_path, capsys):
    """The export's C pipeline takes 2 PPG sensors (the model's ppg_sensors, the --ppg-sensors default): a
    1-sensor recording is replayed on that device with its sensor repeated, in every runtime alike, so the
    C pipeline runs and equals the Python reference on every hop, and a note says so."""
    rec = write_wrist_npz(tmp_path / "one.npz", seconds=20)
    run_bench(BenchConfig(model=str(spec_export_dir), data=str(rec), runtime=["c_pipeline", "c_host"],
                          out=str(tmp_path / "b1")))
    res = json.loads((tmp_path / "b1" / "bench.json").read_text())
    rows = _rows(res)
    assert rows["c_host"]["status"] == "ok" and rows["c_pipeline"]["status"] == "ok"
    cap = capsys.readouterr()
    assert "repeats the first" in cap.out + cap.err


def test_the_mae_ci_is_over_subjects_from_three_on_else_batches_of_windows():
    """Subjects are the independent units: from 3 on, a t-interval over their MAEs (a subject's recordings
    together); with fewer, batch means of each recording's windows when the bench gives a batch (single windows
    are said to be too narrow)."""
    from sqtool.core.metrics import mae_batch_ci, ratio_t_interval
    from sqtool.firmware_bench.spectral import _mae_ci, hr_scores
    rng = np.random.default_rng(0)
    err = np.repeat(rng.normal(size=6), 10)                     # errors that persist over 10 windows
    one = np.repeat(["s1"], 60)
    recs = np.repeat(["walk", "run"], 30)
    ci, how = _mae_ci(err, one, recs)
    assert how == "t-interval over single windows (1 subject, 2 recordings; windows are correlated: too narrow)"
    ci_b, how = _mae_ci(err, one, recs, block=10)
    assert how == "batch means over windows, 6 batches of 10 windows (1 subject, 2 recordings)"
    assert ci_b == list(mae_batch_ci(np.abs(err), 10, recs))
    assert ci[0] < ci[1] and ci_b[1] - ci_b[0] > 1.5 * (ci[1] - ci[0])   # the persisting errors widen it
    subj = np.repeat(["a", "b", "c"], [10, 20, 30])
    ci, how = _mae_ci(err, subj, np.repeat(["r1", "r2", "r3", "r4", "r5", "r6"], 10), block=10)
    assert how == "t-interval over 3 subjects"                  # not over its 6 recordings
    a = np.abs(err)
    lo, hi = ratio_t_interval([a[:10].mean(), a[10:30].mean(), a[30:].mean()], [10, 20, 30], jackknife=True)
    assert ci == [max(0.0, lo), hi]
    assert _mae_ci(np.r_[1.0, np.nan], one[:2], recs[:2]) == (None, "too few windows")
    y = np.full(60, 80.0)                                       # subjects without recordings: one each
    assert hr_scores(y + err, y, np.repeat(["a", "b"], 30))["mae_ci95_method"].startswith("t-interval over single")


def test_the_mae_ci_method_states_the_batches_it_used_and_refuses_too_few():
    """The method text named the requested batch length ('batches of about 30') where batch_means_ci had halved it
    (a 26-window recording: batches of 7, 7, 12), and 2 batches gave a 1-degree-of-freedom interval (0-282 BPM)
    with no caveat: it now states the batches used, and below MIN_BATCHES gives no interval and says why."""
    from sqtool.core.metrics import mae_batch_ci
    from sqtool.firmware_bench.spectral import MIN_BATCHES, _mae_ci
    rng = np.random.default_rng(0)
    err = rng.normal(size=26)
    one, rec = np.repeat(["s1"], 26), np.repeat(["r1"], 26)
    ci, how = _mae_ci(err, one, rec, block=30)                  # 30 -> 15 (1 batch) -> 7: 7, 7, 12
    assert how == ("batch means over windows, 3 batches of 7-12 windows (1 subject, 1 recording; batches of 30 halved "
                   "to 7: too few windows)")
    assert ci == list(mae_batch_ci(np.abs(err), 30, rec))
    assert MIN_BATCHES == 3
    two = np.repeat(["a", "b"], 13)                             # two 13-window recordings: 2 batches of 13
    ci, how = _mae_ci(err, one, two, block=30)
    assert ci is None
    assert how == "too few batches for an interval (2 batches of 13 windows; 1 subject, 2 recordings)"


def test_a_copied_export_folder_benches_the_c_pipeline_as_in_place(spec_export_dir, tmp_path, capsys):
    """An export folder copied alone (its manifest's sources, ../quantize/*.pt, are not beside the copy) gives the
    C pipeline's row as in place, the same heart rate and accuracy; only its comparison with the Python integer
    reference (built from the student_int8 checkpoint) is left out, said in one line and in the row."""
    import shutil
    copy = tmp_path / "elsewhere" / "export"
    shutil.copytree(spec_export_dir, copy)
    runs = {}
    for where, exp in (("in_place", spec_export_dir), ("copy", copy)):
        res = run_bench(BenchConfig(model=str(exp), data="synthetic", max_records=1, max_seconds=40,
                                    runtime=["c_pipeline"], callgrind_windows=0, out=str(tmp_path / where)))
        runs[where] = (_rows(res)["c_pipeline"], capsys.readouterr().err)
    (here, here_err), (there, there_err) = runs["in_place"], runs["copy"]
    assert here["status"] == there["status"] == "ok" and there["metrics"]["mae"] is not None
    assert there["metrics"] == here["metrics"] and there["per_record"] == here["per_record"]
    assert here["exact_hops_pct"] == 100.0 and "exact_hops_pct" not in there
    assert "source student_int8 model.pt not found beside the export (looked in ../" in there["exact_note"]
    assert "bench --student-int8" in there["exact_note"]
    said = [ln for ln in there_err.splitlines() if "reference left out" in ln]
    assert len(said) == 1 and said[0].startswith("bench: c_pipeline: exact hops vs the Python integer reference "
                                                 "left out: ") and "model.pt" in said[0]
    assert "reference left out" not in here_err
