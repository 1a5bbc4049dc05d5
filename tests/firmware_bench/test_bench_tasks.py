"""`sqtool bench` of a time-domain model of another task (it refused every task but heart rate, "sqtool bench scores
heart rate", so an rr or af student's MCU cost and runtime agreement had no command): a regression model is scored
against the label its recordings carry, as predict compares it, beside the task's classic method and the trivial
predictor (the training labels' mean), with the skill verdict on held-out subjects as the last line; a class model
(af, quality) is scored by AUROC against the recordings' class label beside its classic rule and a constant score.
Heart rate's tables are unchanged."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_predict_targets import _export

from sqtool.core import SqtoolError
from sqtool.data.record import Label, Record
from sqtool.firmware_bench.cli import BenchConfig, next_step, run_bench
from sqtool.firmware_bench.predict import PredictConfig, predict
from sqtool.firmware_bench.report import tables

RUNTIMES = ["c_host", "c_host_single", "brevitas_int8", "torch_student"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_tasks")
    return {t: _export(root / t, t) for t in ("rr", "af", "bp")}


def _record(subject: str, rr: np.ndarray | None, seconds: float = 90.0, seed: int = 0) -> Record:
    """PPG at 40 Hz (a 72 /min pulse, a breathing wander at 0.25 Hz) with an rr label per 30 s window, 10 s hop."""
    t = np.arange(int(seconds * 40)) / 40.0
    ppg = (np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 0.25 * t)
           + 0.05 * np.random.default_rng(seed).standard_normal(len(t)))
    labels = {} if rr is None else {"rr": Label(rr, times=np.arange(len(rr)) * 10.0, unit="breaths/min",
                                                kind="window", window_s=30.0)}
    return Record("icu", subject, f"{subject}_icu", {"ppg": ppg}, {"ppg": 40.0}, labels=labels)


def _bench(export: Path, out: Path, records, **kw) -> dict:
    return run_bench(BenchConfig(model=str(export), data="icu", runtime=kw.pop("runtime", RUNTIMES),
                                 callgrind_windows=0, progress=False, out=str(out), **kw), records=records)


def test_an_rr_model_is_scored_on_its_label_beside_the_classic_and_the_trivial_predictor(exports, tmp_path):
    recs = [_record(f"p0{i}", np.array([12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0]) + i, seed=i) for i in range(3)]
    res = _bench(exports["rr"], tmp_path / "b", recs)
    assert res["target"]["output"] == "rr_bpm" and res["target"]["unit"] == "breaths/min"
    assert res["labelled"] is True and res["provenance"]["windows"] == 21
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert {r["status"] for r in rows.values()} == {"ok"}
    # the MAE is predict's, on the same recordings and the same C (predict's `c`: double rounding, as exported)
    p = predict(PredictConfig(model=str(exports["rr"]), data="icu", runtime="c", out=str(tmp_path / "p"),
                              progress=False), records=recs)
    assert p["runtime"] == "c_host"
    assert rows["c_host"]["metrics"]["mae"] == pytest.approx(p["pooled"]["pooled"]["mae_rr_bpm"], abs=1e-6)
    assert rows["c_host"]["metrics"]["n"] == 21 and rows["c_host"]["metrics"]["gt10"] is None
    assert "metrics_tracked" not in rows["c_host"]                             # no heart-rate tracker
    assert rows["c_host_single"]["exact_pct"] == 100.0                         # Brevitas' arithmetic, bit for bit
    # the trivial predictor: the training labels' mean on every window
    import json
    md = json.loads((exports["rr"] / "metadata.json").read_text())
    truth = np.concatenate([np.array([12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0]) + i for i in range(3)])
    assert res["trivial"]["metrics"]["mae"] == pytest.approx(np.abs(truth - md["target_mean"][0]).mean())
    # the classic respiratory estimator on the same windows: 0.25 Hz wander -> 15 breaths/min
    base = res["baseline"]
    assert base["status"] == "ok" and "RIIV" in base["method"]
    assert base["metrics"]["mae"] == pytest.approx(np.abs(truth - 15.0).mean(), abs=0.6)
    # the verdict on held-out subjects (3 cannot show skill), the command's last line
    line = res["skill"]["line"]
    assert line.startswith(f"{res['primary']} on held-out subjects: rr: pooled mae of rr_bpm model ")
    assert "NO SKILL" in line and res["skill"]["subjects"] == 3
    assert next_step(res).splitlines()[-1] == line
    text = tables(res)
    assert "accuracy (breaths/min, windows with the 'rr' label)" in text and "MAE breaths/min" in text
    assert "BPM" not in text and "tracked" not in text
    assert "| trivial " in text and "per subject (breaths/min, per-window estimates)" in text
    assert "rr_bpm_over_time.png" in (tmp_path / "b" / "bench.md").read_text()


def test_a_recording_without_the_label_is_benchmarked_with_accuracy_not_measured(exports, tmp_path):
    res = _bench(exports["rr"], tmp_path / "b", [_record("p01", None)])
    assert res["labelled"] is False
    assert res["accuracy"] == "accuracy not measured: no recording has the 'rr' label"
    assert next_step(res).splitlines()[-1] == "accuracy not measured: no recording has the 'rr' label; cost and " \
                                              "fidelity only"


def _beats(subject: str, af: bool, seconds: float = 30.0, seed: int = 0) -> Record:
    """PPG at 40 Hz with a pulse per beat: irregular intervals (0.45-1.15 s) under AF, a steady 0.8 s under sinus
    rhythm; its 'rhythm' label as the ppg_arrhythmia reader writes it (a class index into its six classes)."""
    from sqtool.data.readers.ppg_arrhythmia import CLASSES
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 40)) / 40.0
    beats = np.cumsum(rng.uniform(0.45, 1.15, 80) if af else np.full(80, 0.8))
    ppg = sum(np.exp(-0.5 * ((t - b) / 0.08) ** 2) for b in beats[beats < seconds + 1])
    ppg = ppg + 0.02 * rng.standard_normal(len(t))
    lab = Label(np.array(CLASSES.index("AF" if af else "sinus")), unit="class", kind="class", classes=CLASSES)
    return Record("arr", subject, f"{subject}_{'af' if af else 'sr'}{seed}", {"ppg": ppg}, {"ppg": 40.0},
                  labels={"rhythm": lab})


@pytest.fixture(scope="module")
def af_bench(exports, tmp_path_factory):
    recs = [_beats(f"p0{i}", af, seed=10 * i + j) for i in range(4) for j, af in enumerate((True, False, False))]
    out = tmp_path_factory.mktemp("af_bench")
    return _bench(exports["af"], out / "b", recs, runtime=["c_host", "c_host_single", "brevitas_int8"],
                  floor=["auroc=0", "c_host:auroc=1.01"]), recs, out / "b"


def test_a_class_model_is_scored_by_auroc_against_the_rhythm_label(af_bench):
    """af: every window's logit against the recording's rhythm class (AF = 1) as training reads it: the AUROC of the
    logits the runtime wrote, by subject too; the beat-interval rule beside it (its threshold fitted on the other
    subjects) and a constant score (0.5); the AUROC verdict is the last line; the C agrees with Brevitas bit for bit."""
    from sqtool.core.metrics import auroc
    res, recs, run_dir = af_bench
    assert res["target"]["output"] == "logit_af" and res["target"]["kind"] == "class" and res["labelled"] is True
    truth = np.concatenate([[1.0 if r.record_id.split("_")[1].startswith("af") else 0.0] * 3 for r in recs])
    assert res["provenance"]["windows"] == len(truth) == 36
    rows = {r["runtime"]: r for r in res["runtimes"]}
    logits = np.concatenate(res["series"]["pred"]["c_host"])
    m = rows["c_host"]["metrics"]
    assert m["auroc"] == pytest.approx(auroc(truth, logits)) and m["positives"] == 12 and m["n"] == 36
    assert m["mae"] is None and m["accuracy"] == pytest.approx(np.mean((logits > 0) == (truth > 0.5)))
    assert rows["c_host_single"]["exact_pct"] == 100.0
    per = rows["c_host"]["per_subject"]
    assert set(per) == {f"arr:p0{i}" for i in range(4)} and all(s["positives"] == 3 for s in per.values())
    assert rows["c_host"]["by_subject"]["subjects"] == 4
    assert rows["c_host"]["by_subject"]["mean"] == pytest.approx(np.mean([s["auroc"] for s in per.values()]))
    # the classic rule separates the irregular beats; a constant score is 0.5 whatever it is
    base = res["baseline"]
    assert base["status"] == "ok" and "RMSSD" in base["method"] and base["metrics"]["auroc"] > 0.9
    assert res["trivial"]["metrics"]["auroc"] == 0.5 and res["trivial"]["metrics"]["f1"] is None
    line = res["skill"]["line"]
    assert line.startswith(f"{res['primary']} on held-out subjects: af: pooled auroc of logit_af model ")
    assert next_step(res).splitlines()[-1] == line
    assert [(f["runtime"], f["ok"]) for f in res["floor"]] == [("c_host", True), ("c_host_single", True),
                                                               ("brevitas_int8", True), ("c_host", False)]
    text = tables(res)
    assert "| runtime" in text and "| AUROC" in text and "MAE" not in text and "AUROC by subject" in text
    assert "per subject (af (AF = 1); AUROC '-' where the subject's windows hold one class)" in text
    assert (run_dir / "roc.png").is_file() and not (run_dir / "bland_altman.png").exists()


def test_a_class_floor_of_another_kind_and_a_compare_are_one_line(af_bench, exports, tmp_path):
    from sqtool.firmware_bench.compare import compare
    res, recs, _ = af_bench
    with pytest.raises(SqtoolError, match=r"^--floor mae: a regression output's; .* is a 'af' model: its floors are "
                                          r"auroc, exact, insns, flash_kb, ram_kb$"):
        _bench(exports["af"], tmp_path / "f", recs[:3], runtime=["c_host"], floor=["mae=3"])
    with pytest.raises(SqtoolError, match=r"^--floor auroc: a class's .* is a 'rr' model: its floors are mae, "):
        _bench(exports["rr"], tmp_path / "g", [_record("p01", None)], runtime=["c_host"], floor=["auroc=0.8"])
    with pytest.raises(SqtoolError, match=r"^--compare pairs per-subject MAE; A and B scored logit_af, a class's "):
        compare(res, res)


def test_the_c_front_end_runs_the_whole_window_path_in_c(tmp_path, monkeypatch):
    """An af export with --device-fs 40 holds c/sq_window.c: bench's c_window runtime streams each recording's
    device samples through it into the C network; its int8 inputs equal the stream's but a few codes one apart, so
    its AUROC is c_host's; the last lines name the loop; recordings at another rate skip it (named: an error)."""
    from test_predict_targets import export_student

    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    exp = export_student(tmp_path / "e", mc, ["c"], device_fs=40.0)
    assert (exp / "c" / "sq_window.c").is_file() and "c/sq_window.{h,c}" in (exp / "INTEGRATION.md").read_text()
    recs = [_beats(f"p0{i}", af, seed=10 * i + j) for i in range(2) for j, af in enumerate((True, False))]
    res = _bench(exp, tmp_path / "b", recs, runtime=["c_host", "c_window"])
    rows = {r["runtime"]: r for r in res["runtimes"]}
    fe = rows["c_window"]["front_end"]
    assert rows["c_window"]["status"] == "ok" and fe["windows"] == 12 and fe["max_lsb"] <= 1
    assert fe["codes_equal_pct"] >= 99.5 and rows["c_window"]["fidelity"]["ref"] == "c_host"
    assert rows["c_window"]["metrics"]["auroc"] == pytest.approx(rows["c_host"]["metrics"]["auroc"], abs=0.05)
    # its latency is timed inside the C process, one figure per window, and the note says so
    assert len(res["series"]["latency_ms"]["c_window"]) == 12 and rows["c_window"]["latency_ms_p50"] > 0
    assert any(n.startswith("Latency (host, one thread)") and "c_window's timed inside its C process" in n
               for n in res["notes"])
    assert "C front end (c_window: c/sq_window.c, 40 Hz device samples)" in tables(res)
    assert "sq_window_push -> sq_model_run" in next_step(res).splitlines()[1]
    p = predict(PredictConfig(model=str(exp), data="arr", runtime="c_window", out=str(tmp_path / "p"),
                              progress=False), records=recs)       # predict runs it too: the same windows' outputs
    csv = np.concatenate([np.genfromtxt(tmp_path / "p" / r["csv"], delimiter=",", names=True)["p_af"]
                          for r in p["recordings"]])
    bench_p = 1 / (1 + np.exp(-np.concatenate(res["series"]["pred"]["c_window"])))
    np.testing.assert_allclose(csv, bench_p, atol=6e-4)              # the CSV's 3 decimals
    fast = [Record("arr", r.subject, r.record_id, {"ppg": np.repeat(r.signals["ppg"], 2)}, {"ppg": 80.0},
                   labels=r.labels) for r in recs[:2]]
    from sqtool.firmware_bench import runtimes as R
    monkeypatch.setattr(R, "DEFAULT_RUNTIMES", ("c_host", "c_window"))      # the default list, less the slow ones
    res = _bench(exp, tmp_path / "c", fast, runtime=[])
    assert {r["runtime"]: r["status"] for r in res["runtimes"]} == {"c_host": "ok", "c_window": "skipped"}
    with pytest.raises(SqtoolError, match=r"^runtime c_window cannot run: c_window: p00_af0 is sampled at 80 Hz, "
                                          r"the C front end was built for 40 Hz \(export --device-fs 80 for this "):
        _bench(exp, tmp_path / "d", fast, runtime=["c_window"])
    with pytest.raises(SqtoolError, match=r"^runtime c_window cannot run: c_window: the C front end band-passes "
                                          r"'window' \(export --device-filter\), this stream 'causal': run with "):
        _bench(exp, tmp_path / "f", recs, runtime=["c_window"], filter="causal")
    causal = export_student(tmp_path / "k", mc, ["c"], device_fs=40.0, device_filter="causal")
    res = _bench(causal, tmp_path / "g", recs, runtime=["c_window"], filter="causal")      # its own stream
    fe = res["runtimes"][0]["front_end"]
    assert fe["max_lsb"] <= 1 and fe["codes_equal_pct"] >= 99.5


@pytest.mark.mcu
def test_the_whole_window_loop_runs_on_the_cortex_m4(tmp_path):
    """mcu_m4_window: the front end and the network on the emulated M4, fed the recordings' device samples: its int8
    outputs equal c_window's bit for bit (the same float32 and integer arithmetic), and the firmware table counts the
    instructions of both per window and the image's flash and RAM."""
    from test_predict_targets import export_student

    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    exp = export_student(tmp_path / "e", mc, ["c"], device_fs=40.0)
    recs = [_beats(f"p0{i}", af, seed=10 * i + j) for i in range(2) for j, af in enumerate((True, False))]
    res = _bench(exp, tmp_path / "b", recs, runtime=["c_window", "mcu_m4_window"])
    m4 = {r["runtime"]: r for r in res["runtimes"]}["mcu_m4_window"]
    assert m4["status"] == "ok" and m4["exact_ref"] == "c_window" and m4["exact_pct"] == 100.0
    assert m4["front_end"]["max_lsb"] <= 1 and m4["windows"] == 12
    fe, net = m4["front_end_instructions_per_window"], m4["network_instructions_per_window"]
    assert fe > 0 and net > 0 and m4["instructions_per_inference"] == pytest.approx(fe + net)
    assert m4["flash_kb"] > 0 and m4["ram_kb"] * 1024 > m4["front_end_state_bytes"] > 0
    assert "mcu_m4_window: the whole loop per window, front end (c/sq_window.c)" in tables(res)


def test_a_class_model_without_its_label_is_benchmarked_for_cost_and_fidelity_only(exports, tmp_path):
    """af recordings without a rhythm label: its logit runs on every runtime and the C agrees with Brevitas bit for
    bit; accuracy not measured, said in the last line."""
    res = _bench(exports["af"], tmp_path / "b", [_record("p01", None, seconds=30)])
    assert res["target"]["output"] == "logit_af" and res["labelled"] is False
    assert res["accuracy"] == "accuracy not measured: no recording has the 'rhythm' label"
    rows = {r["runtime"]: r for r in res["runtimes"]}
    assert rows["c_host_single"]["exact_pct"] == 100.0 and rows["c_host_single"]["fidelity"]["windows"] == res["provenance"]["windows"] >= 2
    assert next_step(res).splitlines()[-1] == "accuracy not measured: no recording has the 'rhythm' label; cost " \
                                              "and fidelity only"
    text = tables(res)
    assert "accuracy: not measured (no recording has the 'rhythm' label)" in text and "MAE" not in text


def test_the_quality_gate_of_a_model_without_the_tracker_is_one_line(exports, tmp_path):
    with pytest.raises(SqtoolError, match=r"^--quality-gate holds the heart-rate tracker; .* is a 'rr' model, "
                                          r"scored window by window without one$"):
        _bench(exports["rr"], tmp_path / "b", [_record("p01", None)], quality_gate=True)
    assert not (tmp_path / "b").exists()


@pytest.mark.mcu
def test_an_mcu_subset_is_never_the_primary_runtime(export_dir, cross_tools, tmp_path):
    """--mcu-windows runs the emulated MCU on a few windows: its row says it covered part of the labelled windows,
    and the per-subject table and the verdicts read a runtime that scored them all (the M4 was taken as primary with
    its 4 windows, every other subject's cells empty)."""
    from sqtool.firmware_bench.spectral import synthetic_records
    res = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["tflm_int8", "mcu_m4"],
                                mcu_windows=4, callgrind_windows=0, progress=False, out=str(tmp_path / "b")),
                    records=synthetic_records()[:2])
    m4 = {r["runtime"]: r for r in res["runtimes"]}["mcu_m4"]
    assert m4["windows"] == 4 and m4["metrics"]["coverage"] < 0.5
    assert res["primary"] == "tflm_int8"


def test_two_rr_runs_compare_in_breaths_per_minute_and_a_heart_rate_run_is_not_their_peer(exports, tmp_path):
    from sqtool.firmware_bench.compare import compare, tables as compare_tables
    recs = [_record(f"p0{i}", np.full(7, 14.0 + i), seed=i) for i in range(3)]
    a = _bench(exports["rr"], tmp_path / "a", recs, runtime=["c_host"])
    b = _bench(exports["rr"], tmp_path / "b", recs, runtime=["c_host"])
    c = compare(a, b)
    assert c["unit"] == "breaths/min" and c["output"] == "rr_bpm" and len(c["subjects"]) == 3
    assert "MAE of rr_bpm in breaths/min per subject" in compare_tables(c) and "BPM" not in c["verdict"]
    hr = dict(a, target=None)                                  # a heart-rate bench.json (written before `target`)
    with pytest.raises(SqtoolError, match=r"^--compare: A scored rr_bpm and B hr_bpm: compare two runs of models "
                                          r"of the same task$"):
        compare(a, hr)


def test_a_bp_model_scores_the_output_its_recordings_label_and_refuses_heart_rates_floors(exports, tmp_path):
    """bp's two outputs: the recordings carry dbp only, so dbp is scored (sbp, the first, would be 'not measured'),
    on the first window of each recording (bp's training takes one), the real-time figure of the 2.1 s recording
    before it was tiled to the window; a heart-rate floor (the tracker's, > 10 BPM) is one line."""
    recs = [_record(f"p0{i}", None, seconds=2.1, seed=i) for i in range(3)]
    for i, r in enumerate(recs):
        r.labels["dbp"] = Label(np.array(70.0 + 5 * i), unit="mmHg")
    res = _bench(exports["bp"], tmp_path / "b", recs, runtime=["c_host"])
    assert res["target"]["output"] == "dbp" and res["target"]["unit"] == "mmHg" and res["labelled"] is True
    assert res["provenance"]["windows"] == 3 and res["runtimes"][0]["metrics"]["n"] == 3
    assert res["provenance"]["signal_hours"] == pytest.approx(3 * 2.1 / 3600, rel=0.02)
    assert res["skill"]["line"].startswith("c_host on held-out subjects: bp: pooled mae of dbp model ")
    with pytest.raises(SqtoolError, match=r"^--floor gt10: heart rate's .* is a 'bp' model: its floors are mae, "):
        _bench(exports["bp"], tmp_path / "f", recs, runtime=["c_host"], floor=["gt10=5"])


def test_output_chooses_which_of_several_outputs_is_scored(exports, tmp_path):
    """bp recordings with both labels: sbp by default (the first), dbp with --output dbp, each against its own label;
    a name the model does not output is one line naming those it does."""
    recs = [_record(f"p0{i}", None, seconds=2.1, seed=i) for i in range(3)]
    for i, r in enumerate(recs):
        r.labels["sbp"], r.labels["dbp"] = Label(np.array(120.0 + 9 * i), unit="mmHg"), Label(np.array(70.0 + 5 * i),
                                                                                              unit="mmHg")
    a = _bench(exports["bp"], tmp_path / "a", recs, runtime=["c_host"])
    b = _bench(exports["bp"], tmp_path / "b", recs, runtime=["c_host"], output="dbp")
    assert a["target"]["output"] == "sbp" and b["target"]["output"] == "dbp"
    for res, k, truth in ((a, "sbp", [120.0, 129.0, 138.0]), (b, "dbp", [70.0, 75.0, 80.0])):
        pred = np.concatenate(res["series"]["pred"]["c_host"])
        assert res["runtimes"][0]["metrics"]["mae"] == pytest.approx(np.abs(pred - truth).mean())
    with pytest.raises(SqtoolError, match=r"^--output map: not an output of the model \(the outputs bench scores: "
                                          r"sbp, dbp\)$"):
        _bench(exports["bp"], tmp_path / "c", recs, runtime=["c_host"], output="map")
    assert not (tmp_path / "c").exists()


def test_the_next_line_names_what_the_export_holds(exports, tmp_path):
    """With C: build it, and the preprocessing document beside it; without C (--target onnx): predict, never a c/
    folder that is not there (the bench's line named EXPORT/c/sq_model.c for every time-domain export)."""
    from test_predict_targets import export_student

    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    recs = [_record("p01", np.full(7, 15.0))]
    res = _bench(exports["rr"], tmp_path / "b", recs, runtime=["c_host"])
    nxt = next_step(res).splitlines()[1]
    assert nxt == (f"next: build {exports['rr'] / 'c'}/sq_model.c into the firmware (API in sq_model.h); the "
                   f"preprocessing it needs before it: {exports['rr'] / 'INTEGRATION.md'}")
    onnx = export_student(tmp_path / "o", task_model_cfg("rr", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)),
                          ["onnx"])
    res = _bench(onnx, tmp_path / "c", recs, runtime=["onnx_int8"])
    nxt = next_step(res).splitlines()[1]
    assert nxt.startswith("next: sqtool predict --model ") and "/c/" not in nxt and "INTEGRATION.md" in nxt
