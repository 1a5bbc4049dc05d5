"""`bench --floor` on subjects the model was trained on: an accuracy floor is checked on held-out subjects only,
is not measured (exit 3) when every scored subject was seen in training, and --floor-on-seen counts them."""
from __future__ import annotations

import json

import pytest

from sqtool.cli import main
from sqtool.firmware_bench.cli import BenchConfig, check_floors, parse_floors, run_bench
from sqtool.firmware_bench.report import floors_line


def _row(**per_subject):
    """A runtime row whose per-subject MAE is given (10 windows each); its whole-run MAE is their mean."""
    per = {k: {"n": 10, "mae": v, "gt10_pct": 0.0} for k, v in per_subject.items()}
    mae = sum(per_subject.values()) / len(per_subject)
    return {"runtime": "c_host", "status": "ok", "metrics": {"mae": mae}, "gt10_pct": 0.0, "per_subject": per}


def test_accuracy_floor_is_checked_on_held_out_subjects_only():
    row = _row(**{"d:a": 1.0, "d:b": 3.0, "d:c": 20.0})
    floors = parse_floors(["mae=8", "exact=100"])
    # no subject seen in training: the whole run's MAE, as before
    assert [(f["value"], f["ok"], "scope" in f) for f in check_floors([row], floors[:1])] == [(8.0, True, False)]
    # a, b seen: only c is held out, and its 20 BPM misses the floor (the run's 8.0 would have passed)
    f, = check_floors([row], floors[:1], seen=["d:a", "d:b"])
    assert (f["value"], f["ok"], f["scope"]) == (20.0, False, "held-out 1 of 3 subjects")
    assert floors_line([f]) == "floors: c_host mae 20 <= 8: FAILED (held-out 1 of 3 subjects)"
    # every scored subject seen: not measured (a CI gate fails closed), with the reason on the line
    f, = check_floors([row], floors[:1], seen=["d:a", "d:b", "d:c"])
    assert (f["runtime"], f["value"], f["ok"]) == ("any runtime", None, False)
    assert "all 3 scored subjects were seen in training; --floor-on-seen counts them" in floors_line([f])
    # --floor-on-seen: over every subject again, and the line says they were counted
    f, = check_floors([row], floors[:1], seen=["d:a", "d:b", "d:c"], on_seen=True)
    assert (f["value"], f["ok"]) == (8.0, True) and "--floor-on-seen" in f["scope"]
    # a floor that does not depend on the subjects (bit-exactness) is not scoped
    row["exact_pct"] = 100.0
    assert [("scope" in f, f["ok"]) for f in check_floors([row], floors[1:], seen=["d:a"])] == [(False, True)]


def _recs(n):
    from sqtool.data.synthetic import synth_record
    return [synth_record(duration_s=40.0, fs=125.0, hr_bpm=70.0 + 10 * i, seed=i, subject=f"w{i}")
            for i in range(n)]


@pytest.mark.parametrize("seen", [{"synthetic:w0", "synthetic:w1"}, {"synthetic:w0"}])
def test_spectral_bench_floor_on_training_subjects(spec_export_dir, tmp_path, monkeypatch, seen):
    """The spectral bench (its floors were checked before the seen set was known): res, bench.json,
    metrics.json and bench.md carry the held-out check."""
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: set(seen))
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, floor=["mae=1000"], out=str(out)),
                    records=_recs(2))
    assert set(res["seen_in_training"]) == seen
    f, = res["floor"]
    if len(seen) == 2:                                  # every scored subject seen: not measured, exit 3
        assert (f["value"], f["ok"]) == (None, False)
    else:                                               # w1 held out: its MAE alone
        w1 = next(r for r in res["runtimes"] if r["runtime"] == "onnx_int8")["per_subject"]["synthetic:w1"]
        assert f["ok"] and f["value"] == pytest.approx(w1["mae"]) and f["scope"] == "held-out 1 of 2 subjects"
    for name in ("bench.json", "metrics.json"):
        assert json.loads((out / name).read_text())["floor"] == res["floor"], name
    assert floors_line(res["floor"]) in (out / "bench.md").read_text()
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, floor=["mae=1000"], floor_on_seen=True,
                                out=str(tmp_path / "b2")), records=_recs(2))
    assert [f["ok"] for f in res["floor"]] == [True]


def test_spectral_bench_scores_the_held_out_subjects_apart(spec_export_dir, tmp_path, monkeypatch):
    """An audit: bench.md's headline on wrist_exercise pooled 2 training subjects with 3 held-out ones (11.1 BPM
    and a calibrated-looking interval; the held-out ones alone 22.2 BPM, 75 % coverage). With some scored subjects
    seen in training, each runtime and the baseline get a held-out-only row (pooled, mean of subjects, interval,
    stated error, subjects better than the baseline) in bench.json and bench.md."""
    import numpy as np
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: {"synthetic:w0"})
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, out=str(out)), records=_recs(3))
    row = next(r for r in res["runtimes"] if r["runtime"] == "onnx_int8")
    h = row["held_out"]
    per = row["per_subject"]
    assert h["subjects"] == 2 and set(h["per_subject"]) == {"synthetic:w1", "synthetic:w2"}
    assert h["mae_mean_of_subjects"] == pytest.approx(np.mean([per[s]["mae"] for s in h["per_subject"]]))
    n = [per[s]["n"] for s in ("synthetic:w1", "synthetic:w2")]
    assert h["metrics"]["n"] == sum(n) < row["metrics"]["n"]
    assert h["metrics"]["mae"] == pytest.approx(np.average([per[s]["mae"] for s in h["per_subject"]], weights=n))
    assert h["uncertainty"]["n"] == sum(n) and h["better_than_baseline"][1] == 2
    assert res["baseline"]["held_out"]["subjects"] == 2
    md = (out / "bench.md").read_text()
    assert "held-out subjects only (2 subjects the model was not trained on" in md and "seen in training)" in md
    assert json.loads((out / "bench.json").read_text())["runtimes"][0]["held_out"]["subjects"] == 2
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, out=str(tmp_path / "b2")),
                    records=_recs(3)[1:])                          # none seen: no such row
    assert all("held_out" not in r for r in res["runtimes"])


def test_time_domain_bench_floor_on_training_subjects_exits_3(export_dir, tmp_path, monkeypatch, capsys):
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: {f"synthetic:eval{i:03d}" for i in range(4)})
    args = ["bench", "--model", str(export_dir), "--data", "synthetic", "--runtime", "c_host",
            "--callgrind-windows", "0", "--no-progress", "--floor", "mae=1000"]
    rc = main([*args, "--out", str(tmp_path / "b")])
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert res["seen_in_training"], "the synthetic subjects are named as seen"
    assert rc == 3 and "seen in training; --floor-on-seen counts them" in out
    rc = main([*args, "--floor-on-seen", "--out", str(tmp_path / "b2")])
    assert rc == 0 and "(--floor-on-seen)" in capsys.readouterr().out


def test_each_bench_table_names_its_own_mae_ci_method(spec_export_dir, tmp_path, monkeypatch):
    """bench.md's held-out table printed a MAE 95% CI without naming its method (batch means of the held-out
    windows), while the only method line, under the table above, named that table's (a t-interval over every
    scored subject): each table now has its own line."""
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: {"synthetic:w0"})
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(spec_export_dir), data="synthetic", runtime=["onnx_int8"],
                                callgrind_windows=0, progress=False, out=str(out)), records=_recs(3))
    row = next(r for r in res["runtimes"] if r["runtime"] == "onnx_int8")
    top, held = row["metrics"]["mae_ci95_method"], row["held_out"]["metrics"]["mae_ci95_method"]
    assert top == "t-interval over 3 subjects" and held != top
    md = (out / "bench.md").read_text()
    above, below = md.split("\nheld-out subjects only (", 1)
    assert f"MAE 95% CI: {top}." in above and f"MAE 95% CI: {top}" not in below
    assert f"MAE 95% CI: {held}." in below.split("MAE per subject", 1)[0]
