"""predict compares a time-domain model of any regression task with the truth its recordings carry (audit: an rr
model on BIDMC-like recordings with rr labels wrote "truth": false for every one), says which class labels it does
not compare, and prints each WARNING once where stdout and stderr are one terminal."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from sqtool.data.record import Label, Record
from sqtool.firmware_bench.predict import PredictConfig, predict, print_results


def _export(root: Path, task: str) -> Path:
    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    mc = task_model_cfg(task, get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    if task == "bp":
        mc = mc.replace(target_mean=(120.0, 80.0), target_std=(15.0, 10.0))
    return export_student(root, mc, ["c"])


def export_student(root: Path, mc, targets: list[str], **kw) -> Path:
    """An untrained int8 student of model cfg `mc` (a quantize-like run) exported to `targets` (`kw`: more
    ExportConfig, e.g. device_fs), parity passed."""
    from export_fixtures import make_int8_run

    from sqtool.export.cli import ExportConfig, export
    run = make_int8_run(root / "quantize", mc, n_heldout=4, seed=1)   # af at seed 0: an untrained student off by
    exp = export(ExportConfig(model=str(run), target=targets, out=str(root / "export"), **kw))  # 5 LSB, double rounding
    assert exp["failed"] == [], exp["summary"]
    return Path(exp["out"])


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets")
    return {t: _export(root / t, t) for t in ("rr", "bp", "af")}


def _record(seconds: float, labels: dict, rid: str = "p01_icu") -> Record:
    t = np.arange(int(seconds * 40)) / 40.0
    ppg = np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 0.25 * t) \
        + 0.05 * np.random.default_rng(0).standard_normal(len(t))
    return Record("icu", "p01", rid, {"ppg": ppg}, {"ppg": 40.0}, labels=labels)


def _af_records() -> list[Record]:
    """Four noisy recordings of two subjects (p0, p1), alternately sinus and AF."""
    recs = [_record(20, {"rhythm": Label(np.array(i % 2), kind="class", classes=("sinus", "AF"))},
                    rid=f"p0{i}_icu") for i in range(4)]
    for i, r in enumerate(recs):
        r.subject = f"p{i // 2}"
        r.signals["ppg"] = r.signals["ppg"] + 0.3 * np.random.default_rng(i).standard_normal(len(r.signals["ppg"]))
    return recs


def _csv(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in rows[0]}


def test_an_rr_model_writes_the_truth_and_its_mae(exports, tmp_path, capsys):
    rr = np.array([12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0])           # per 30 s label window, 10 s hop
    rec = _record(90, {"rr": Label(rr, times=np.arange(7) * 10.0, unit="breaths/min", kind="window", window_s=30.0)})
    res = predict(PredictConfig(model=str(exports["rr"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=[rec])
    r = res["recordings"][0]
    assert r["truth"] is True and r["windows"] == 7
    col = _csv(tmp_path / "p" / r["csv"])
    np.testing.assert_allclose(col["truth_rr_bpm"], rr)                # the label at each window's centre
    m = r["metrics"]
    assert m["n"] == m["n_rr_bpm"] == 7 and set(m) == {"mae", "mae_rr_bpm", "n", "n_rr_bpm"}
    assert m["mae"] == m["mae_rr_bpm"] == pytest.approx(np.abs(col["rr_bpm"] - rr).mean(), abs=1e-3)
    assert "truth_rr_bpm" in res["columns"] and res["truth_units"]["rr_bpm"] == "breaths/min"
    assert res["metrics_note"].startswith("metrics (mae_<output>")
    print_results(res)
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("p01_icu:"))
    assert f", MAE {m['mae']:.2f} breaths/min vs truth over 7 windows -> " in line


def test_breath_marks_are_breaths_per_minute_in_the_window(exports, tmp_path):
    """rr as breath times (kind events, BIDMC's annotations): 60 (n - 1) / span per window, as training takes it."""
    breaths = np.arange(0.0, 90.0, 4.0)                                 # one breath every 4 s: 15 breaths/min
    rec = _record(90, {"rr": Label(np.ones(len(breaths)), times=breaths, unit="breaths/min", kind="events")})
    res = predict(PredictConfig(model=str(exports["rr"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=[rec])
    np.testing.assert_allclose(_csv(tmp_path / "p" / res["recordings"][0]["csv"])["truth_rr_bpm"], 15.0)


def test_a_bp_model_scores_sbp_and_dbp(exports, tmp_path, capsys):
    rec = _record(16, {"sbp": Label(np.array(130.0), unit="mmHg"), "dbp": Label(np.array(85.0), unit="mmHg")})
    res = predict(PredictConfig(model=str(exports["bp"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=[rec])
    r = res["recordings"][0]
    col = _csv(tmp_path / "p" / r["csv"])
    assert list(col) == ["time_s", "sbp", "dbp", "flagged", "truth_sbp", "truth_dbp"]
    assert col["truth_sbp"][0] == 130.0 and col["truth_dbp"][0] == 85.0     # the window training scores: the first
    assert np.isnan(col["truth_sbp"][1:]).all() and np.isnan(col["truth_dbp"][1:]).all()
    m = r["metrics"]
    assert m["mae_sbp"] == pytest.approx(abs(col["sbp"][0] - 130), abs=1e-3)
    assert m["mae"] == pytest.approx((m["mae_sbp"] + m["mae_dbp"]) / 2)
    print_results(res)
    assert f"MAE sbp {m['mae_sbp']:.2f}, dbp {m['mae_dbp']:.2f} mmHg vs truth over 1 windows" in capsys.readouterr().out

    two = [rec, _record(16, {"sbp": Label(np.array(110.0), unit="mmHg")}, rid="p02_icu"),   # no dbp truth
           _record(16, {"sbp": Label(np.array(150.0), unit="mmHg"), "dbp": Label(np.array(95.0), unit="mmHg")},
                   rid="p03_icu")]
    res = predict(PredictConfig(model=str(exports["bp"]), data="icu", out=str(tmp_path / "q"), progress=False),
                  records=two)
    ms, pool = [r["metrics"] for r in res["recordings"]], res["pooled"]
    assert pool["recordings"] == 3 and pool["pooled"]["n_sbp"] == 3 and pool["pooled"]["n_dbp"] == 2   # per output
    assert pool["pooled"]["mae_sbp"] == pytest.approx(np.mean([x["mae_sbp"] for x in ms]))
    assert pool["pooled"]["mae_dbp"] == pytest.approx(np.mean([ms[0]["mae_dbp"], ms[2]["mae_dbp"]]))
    assert pool["pooled"]["mae"] == pytest.approx((pool["pooled"]["mae_sbp"] + pool["pooled"]["mae_dbp"]) / 2)
    print_results(res)
    assert (f"all 3 recordings with a MAE: MAE sbp {pool['pooled']['mae_sbp']:.2f}, dbp {pool['pooled']['mae_dbp']:.2f} "
            "mmHg pooled over 2 windows") in capsys.readouterr().out


def test_a_class_model_is_scored_against_its_label(exports, tmp_path, capsys):
    """af: truth_af (1 / 0, as training reads the rhythm label) beside p_af per window, the accuracy per recording,
    and the AUROC over every window with truth and by subject; a recording without the label has neither."""
    from sqtool.core.metrics import auroc
    recs = _af_records()
    res = predict(PredictConfig(model=str(exports["af"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=recs + [_record(20, {}, rid="p09_b")])
    rows = res["recordings"]
    assert [r["truth"] for r in rows] == [True] * 4 + [False] and "metrics" not in rows[4]
    csv = [np.genfromtxt(tmp_path / "p" / r["csv"], delimiter=",", names=True) for r in rows[:4]]
    assert all(c["truth_af"].tolist() == [float(i % 2)] * len(c) for i, c in enumerate(csv))
    p, y = np.concatenate([c["p_af"] for c in csv]), np.concatenate([c["truth_af"] for c in csv])
    pc = res["pooled_class"]
    assert pc["n"] == len(y) and pc["positives"] == int(y.sum()) and pc["label"] == "rhythm"
    assert pc["auroc"] == pytest.approx(auroc(y, p), abs=0.02)              # the CSV rounds p to 3 decimals
    assert pc["by_subject"]["subjects"] == 2 and rows[0]["metrics"]["auroc"] is None   # one class per recording
    assert rows[1]["metrics"]["accuracy"] == pytest.approx(np.mean(csv[1]["p_af"] > 0.5))
    assert "truth_af" in res["columns"] and "truth_not_compared" not in rows[0]
    print_results(res)
    assert f"all 4 recordings with a 'rhythm' label: AUROC {pc['auroc']:.3f}" in capsys.readouterr().out


def _res(tmp_path) -> dict:
    return {"warnings": ["WARNING: this model's teacher in fine-tuning: NO SKILL"], "recordings": [],
            "runtime": "c_host_single", "run_dir": str(tmp_path), "model_dir": "EXPORT", "data": "x", "task": "rr"}


def test_a_warning_shows_once_where_both_streams_are_one(tmp_path, monkeypatch):
    """A terminal (or 2>&1) shows stdout and stderr together: the NO SKILL line was there twice."""
    with open(tmp_path / "both.txt", "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        monkeypatch.setattr(sys, "stderr", f)
        print_results(_res(tmp_path))
    assert (tmp_path / "both.txt").read_text().count("NO SKILL") == 1
    with open(tmp_path / "out.txt", "w") as o, open(tmp_path / "err.txt", "w") as e:   # a CI log of stderr keeps it
        monkeypatch.setattr(sys, "stdout", o)
        monkeypatch.setattr(sys, "stderr", e)
        print_results(_res(tmp_path))
    assert [(tmp_path / n).read_text().count("NO SKILL") for n in ("out.txt", "err.txt")] == [1, 1]
    monkeypatch.setattr(sys, "stdout", io.StringIO())                   # no file behind it: both, as before
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    print_results(_res(tmp_path))
    assert sys.stdout.getvalue().count("NO SKILL") == sys.stderr.getvalue().count("NO SKILL") == 1


def test_a_time_domain_models_c_rounds_as_its_export_builds_it(tmp_path):
    """predict's default runtime of a time-domain export (`c`) is the export's C as sq_model.h builds it by default
    (double rounding, TFLite's arithmetic): its outputs are TFLite Micro's, bit for bit, what a firmware computes."""
    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    model = export_student(tmp_path / "e", mc, ["c", "tflite"])
    rec = _record(120, {})
    outs = {}
    for rt in ("", "tflm"):
        res = predict(PredictConfig(model=str(model), data="icu", runtime=rt, out=str(tmp_path / f"p{rt}"),
                                    progress=False), records=[rec])
        outs[res["runtime"]] = _csv(tmp_path / f"p{rt}" / res["recordings"][0]["csv"])["p_af"]
    assert set(outs) == {"c_host", "tflm_int8"}
    np.testing.assert_array_equal(outs["c_host"], outs["tflm_int8"])


def test_a_class_model_on_subjects_it_trained_on_gets_a_held_out_only_line(exports, tmp_path, capsys, monkeypatch):
    """As rr and bp do: the pool mixes in subjects seen in training, so the held-out subjects' AUROC is its own line
    (a sweep's af predict printed one AUROC 0.991 over 10 trained-on and 2 held-out patients)."""
    import sqtool.firmware_bench.provenance as P
    monkeypatch.setattr(P, "provenance_warnings", lambda art, scored, subjects: (["icu:p0"], ["WARNING: icu:p0 seen"]))
    recs = _af_records()
    res = predict(PredictConfig(model=str(exports["af"]), data="icu", out=str(tmp_path / "p"), progress=False),
                  records=recs)
    pc, hc = res["pooled_class"], res["pooled_class_held_out"]
    assert pc["recordings"] == 4 and hc["recordings"] == 2 and hc["n"] == pc["n"] // 2
    print_results(res)
    assert (f"held-out subjects only (2 recordings of subjects not seen in training): AUROC "
            f"{'-' if hc['auroc'] is None else format(hc['auroc'], '.3f')}") in capsys.readouterr().out
