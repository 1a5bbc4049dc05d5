"""`sqtool bench` by activity condition, as wearable heart-rate validations report it: MAPE (% of the reference) beside
MAE in every heart-rate metrics dict and as a --floor, and a table by condition (walk, run, bike, ...) whose conditions
come from the wrist_exercise reader's file stems, a dataset.yaml's `conditions: {pattern}` or `{table}` of timed
segments; bad conditions are one line."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.metrics import mape
from sqtool.firmware_bench.cli import check_floor_metrics, check_floors, parse_floors
from sqtool.firmware_bench.report import HEART_RATE, NONE_ROW, Target, hr_metrics

PROJECT = Path(__file__).resolve().parents[2]
FS = 125.0


def real_export() -> Path:
    """The trained real-data export (runs/demo_real/export: spec_student_s on TROIKA + wrist_exercise s2, s3), read
    only: this project's own, else the main checkout's beside it (SQTOOL_REAL_EXPORT names another)."""
    for p in (os.environ.get("SQTOOL_REAL_EXPORT"), PROJECT / "runs/demo_real/export",
              PROJECT.parent / "main/runs/demo_real/export"):
        if p and (Path(p) / "manifest.json").is_file():
            return Path(p)
    pytest.skip("no trained real-data export (runs/demo_real/export)")


def windows_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "windows.csv", newline="") as f:
        return list(csv.DictReader(f))


def _mape_of(rows: list[dict], col: str) -> float:
    """MAPE recomputed with numpy from windows.csv: the windows with a truth and an estimate."""
    t = np.array([float(r["truth"]) if r["truth"] else np.nan for r in rows])
    p = np.array([float(r[col]) if r[col] else np.nan for r in rows])
    ok = np.isfinite(t) & np.isfinite(p)
    return float(np.mean(np.abs(p[ok] - t[ok]) / t[ok]) * 100)


# ----------------------------------------------------------------------------- MAPE and its floor

def test_mape_is_percent_of_the_reference():
    assert mape([100.0, 50.0], [110.0, 45.0]) == pytest.approx(10.0)          # 10 % and 10 %
    assert mape([60.0, 120.0], [60.0, 60.0]) == pytest.approx(25.0)           # 0 % and 50 %
    assert mape([], []) is None and mape([0.0, 10.0], [1.0, 10.0]) is None     # no window; a zero reference
    m = hr_metrics(np.array([110.0, np.nan, 45.0]), np.array([100.0, 80.0, 50.0]))
    assert m["mape"] == pytest.approx(10.0) and m["mae"] == pytest.approx(7.5)  # the window without an estimate: out


def test_mape_floor_is_checked_on_held_out_subjects():
    per = {"d:a": {"n": 10, "mape": 2.0}, "d:b": {"n": 30, "mape": 14.0}}
    row = {"runtime": "c_host", "status": "ok", "metrics": {"mape": 11.0}, "per_subject": per}
    floors = parse_floors(["mape=10"])
    f, = check_floors([row], floors)
    assert (f["value"], f["op"], f["ok"]) == (11.0, "max", False)
    f, = check_floors([row], floors, seen=["d:b"])                            # only a, held out, counts
    assert (f["value"], f["ok"], f["scope"]) == (2.0, True, "held-out 1 of 2 subjects")
    check_floor_metrics(floors, HEART_RATE, "hr")                              # heart rate and a value measure it
    check_floor_metrics(floors, Target("rr_bpm", "breaths/min", "rr", "breath marks"), "rr")
    with pytest.raises(SqtoolError, match="--floor mape: a regression output's"):
        check_floor_metrics(floors, Target("af_logit", "logit", "AF", "rhythm", kind="class"), "af")


# ----------------------------------------------------------------------------- wrist_exercise's stems

@pytest.mark.realdata
def test_bench_by_condition_on_wrist_exercise(data_root, tmp_path, capsys):
    """Three recordings of three activities (held-out subjects s4, s5, s6): one row per activity whose windows sum to
    the scored windows, MAPE as numpy recomputes it from windows.csv, the table in bench.md, per_condition in the
    held-out block too."""
    src = data_root / "wrist_exercise"
    data = tmp_path / "we"
    for sub in ("edf", "beats"):
        (data / sub).mkdir(parents=True)
    for stem in ("s4_run", "s5_low_resistance_bike", "s6_walk"):
        (data / "edf" / f"{stem}.edf").symlink_to(src / "edf" / f"{stem}.edf")
        (data / "beats" / f"{stem}.txt").symlink_to(src / "beats" / f"{stem}.txt")
    out = tmp_path / "bench"
    rc = main(["bench", "--model", str(real_export()), "--data", str(data), "--runtime", "torch_student",
               "--callgrind-windows", "0", "--floor", "mape=1000", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((out / "bench.json").read_text())
    rows = windows_csv(out)
    assert len(rows) == res["provenance"]["windows"]
    for r in (res["runtimes"][0], res["baseline"]):
        name = r["runtime"]
        by = r["per_condition"]
        assert list(by) == ["low_resistance_bike", "run", "walk"]              # the stems' activities, sorted
        assert sum(c["n"] for c in by.values()) == r["metrics"]["n"] > 0        # every scored window, once
        assert all(c["subjects"] == 1 for c in by.values())
        assert r["metrics"]["mape"] == pytest.approx(_mape_of(rows, name), rel=1e-6)
        for cond, c in by.items():
            mine = [w for w in rows if w["condition"] == cond]
            assert c["n"] == sum(bool(w["truth"]) and bool(w[name]) for w in mine)
            assert c["mape"] == pytest.approx(_mape_of(mine, name), rel=1e-6)
            assert c["loa95"][0] < c["bias"] < c["loa95"][1]
    assert res["floor"][0]["metric"] == "mape" and res["floor"][0]["ok"]
    md = (out / "bench.md").read_text()
    assert "by condition (BPM" in md and "| walk " in md and "MAPE %" in md
    assert NONE_ROW not in md                                               # every window has its activity
    # no subject of these was trained on: the held-out block is not there; with one seen, it has per_condition
    assert "held_out" not in res["runtimes"][0]


@pytest.mark.realdata
def test_bench_seen_subject_gets_held_out_conditions(data_root, tmp_path):
    src = data_root / "wrist_exercise"
    data = tmp_path / "we"
    (data / "edf").mkdir(parents=True)
    for stem in ("s2_walk", "s6_walk", "s2_high_resistance_bike"):        # s2 was trained on, s6 not
        (data / "edf" / f"{stem}.edf").symlink_to(src / "edf" / f"{stem}.edf")
    out = tmp_path / "bench"
    assert main(["bench", "--model", str(real_export()), "--data", str(data), "--runtime", "torch_student",
                 "--callgrind-windows", "0", "--out", str(out)]) == 0
    res = json.loads((out / "bench.json").read_text())
    r = res["runtimes"][0]
    assert r["per_condition"]["walk"]["subjects"] == 2
    assert r["held_out"]["per_condition"]["walk"]["subjects"] == 1
    assert r["held_out"]["per_condition"]["walk"]["n"] == r["held_out"]["metrics"]["n"]
    md = (out / "bench.md").read_text()
    assert "counts the 1 subject seen in training" in md
    held = md.split("held-out subjects only, by condition")[1].split("\n\n")[1]   # the figures to ship on, by condition
    assert "| walk " in held and "high_resistance_bike" not in held              # no held-out subject rode it
    assert "high_resistance_bike" not in r["held_out"]["per_condition"]          # no n = 0 row in bench.json either
    assert r["per_condition"]["high_resistance_bike"]["subjects"] == 1


# ----------------------------------------------------------------------------- a dataset.yaml's conditions

def write_csv_dataset(root: Path, stems: dict[str, float], conditions: str = "") -> Path:
    """A CSV dataset: one recording per stem (seconds long, 125 Hz, a clean pulse at 72-96 BPM with its `hr` column),
    subject = the stem's part before '_'; `conditions`: the yaml's conditions: line. Returns the dataset.yaml."""
    (root / "rec").mkdir(parents=True)
    for i, (stem, seconds) in enumerate(stems.items()):
        t = np.arange(int(seconds * FS)) / FS
        hr = 72.0 + 8 * i + 0.1 * t
        rng = np.random.default_rng(i)
        ppg = np.sin(2 * np.pi * np.cumsum(hr / 60.0) / FS) + 0.05 * rng.standard_normal(t.size)
        acc = 0.01 * rng.standard_normal((3, t.size)) + np.array([[0.0], [0.0], [1.0]])
        np.savetxt(root / "rec" / f"{stem}.csv", np.column_stack([t, ppg, ppg, *acc, hr]), delimiter=",", comments="",
                   header="time,ppg,ppg2,acc_x,acc_y,acc_z,hr", fmt="%.6f")
    (root / "dataset.yaml").write_text(
        "format: csv\nroot: rec\ntime_column: time\n"
        "channels: {ppg: ppg, ppg2: ppg2, acc_x: acc_x, acc_y: acc_y, acc_z: acc_z}\n"
        "subject: {pattern: '^(?P<subject>[^_]+)_'}\nlabels: {hr: {column: hr}}\n" + conditions)
    return root / "dataset.yaml"


def _bench(ds: Path, out: Path, capsys) -> dict:
    rc = main(["bench", "--model", str(real_export()), "--data", str(ds), "--runtime", "torch_student",
               "--callgrind-windows", "0", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    return json.loads((out / "bench.json").read_text())


def test_pattern_conditions_from_the_path(tmp_path):
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.record import window_conditions
    ds = write_csv_dataset(tmp_path, {"p1_walk": 30, "p1_run": 30, "p2_rest": 30},
                           "conditions: {pattern: '_(?P<condition>walk|run)'}\n")
    recs = {r.record_id: r for r in load_dataset_file(ds).records()}
    assert [recs[k].meta.get("condition") for k in ("p1_walk", "p1_run", "p2_rest")] == ["walk", "run", None]
    assert list(window_conditions(recs["p1_run"], [0.0, 10.0], 8.0)) == ["run", "run"]
    assert list(window_conditions(recs["p2_rest"], [0.0], 8.0)) == [""]    # not matched: no condition


def test_table_segments_by_window_centre(tmp_path):
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.record import window_conditions
    ds = write_csv_dataset(tmp_path, {"p1_protocol": 60}, "conditions: {table: protocol.csv}\n")
    (tmp_path / "protocol.csv").write_text("recording,condition,start_s,end_s\np1_protocol,walk,30,60\n"
                                           "p1_protocol,sit,0,30\n")
    rec, = load_dataset_file(ds).records()
    assert rec.meta["condition_segments"] == [[0.0, 30.0, "sit"], [30.0, 60.0, "walk"]]
    # windows 8 s: starts 20, 22, 24 have centres 24, 26, 28 (sit), 26 centres at 30 (walk)
    assert list(window_conditions(rec, [20.0, 24.0, 26.0, 56.0], 8.0)) == ["sit", "sit", "walk", ""]


def test_bench_yaml_pattern_and_table(tmp_path, capsys):
    """Through the bench: a pattern's conditions (a recording it does not match: the (none) row) and a protocol
    table's timed segments, window counts by the centre rule, summing to the scored windows."""
    ds = write_csv_dataset(tmp_path / "a", {"p1_walk": 40, "p2_run": 40, "p3_rest": 40},
                           "conditions: {pattern: '_(?P<condition>walk|run)'}\n")
    res = _bench(ds, tmp_path / "ba", capsys)
    by = res["runtimes"][0]["per_condition"]
    assert list(by) == ["run", "walk", NONE_ROW]
    assert [by[k]["n"] for k in by] == [17, 17, 17]                          # (40 - 8) / 2 + 1 windows each
    assert sum(c["n"] for c in by.values()) == res["runtimes"][0]["metrics"]["n"]
    ds = write_csv_dataset(tmp_path / "b", {"p1_protocol": 60}, "conditions: {table: protocol.csv}\n")
    (tmp_path / "b" / "protocol.csv").write_text("recording,condition,start_s,end_s\n"
                                                 "p1_protocol,sit,0,30\np1_protocol,walk,30,60\n")
    res = _bench(ds, tmp_path / "bb", capsys)
    by = res["runtimes"][0]["per_condition"]
    assert {k: c["n"] for k, c in by.items()} == {"sit": 13, "walk": 14}     # starts 0..24 | 26..52: centre < 30
    assert sum(c["n"] for c in by.values()) == res["runtimes"][0]["metrics"]["n"] == 27
    rows = windows_csv(tmp_path / "bb")
    assert [w["condition"] for w in rows] == ["sit"] * 13 + ["walk"] * 14
    assert by["walk"]["mape"] == pytest.approx(_mape_of(rows[13:], "torch_student"), rel=1e-6)


def test_no_conditions_no_table(tmp_path, capsys):
    ds = write_csv_dataset(tmp_path, {"p1_a": 30})
    res = _bench(ds, tmp_path / "b", capsys)
    assert "per_condition" not in res["runtimes"][0] and "per_condition" not in res["baseline"]
    assert "by condition" not in (tmp_path / "b" / "bench.md").read_text()
    assert {w["condition"] for w in windows_csv(tmp_path / "b")} == {""}


@pytest.mark.parametrize("conditions, table, said", [
    ("{pattern: '_(walk|run)'}", None, "conditions.pattern '_(walk|run)' has no group named condition"),
    ("{pattern: '_(?P<condition>bike)'}", None, "conditions.pattern '_(?P<condition>bike)' matches none of the 2"),
    ("{pattern: '(?P<condition>'}", None, "conditions.pattern is not a regular expression"),
    ("{pattern: x, table: t.csv}", None, "conditions: give one of pattern"),
    ("{column: x}", None, "unknown key 'column' in conditions"),
    ("{table: t.csv}", "recording,condition\np9_walk,walk\n", "row(s) name recordings that are not under"),
    ("{table: t.csv}", "recording,condition,start_s,end_s\np1_walk,sit,0,20\np1_walk,walk,15,30\n",
     "segments 0-20 s (sit) and 15-30 s (walk) overlap with different conditions"),
    ("{table: t.csv}", "recording,condition,start\np1_walk,walk,0\n",
     "the condition table has an unknown column 'start'"),
    ("{table: t.csv}", "recording,condition,start_s\np1_walk,walk,0\n", "has 'start_s' but no 'end_s' column"),
    ("{table: t.csv}", "recording,activity\np1_walk,walk\n", "the condition table has no 'condition' column"),
])
def test_bad_conditions_are_one_line(tmp_path, capsys, conditions, table, said):
    ds = write_csv_dataset(tmp_path, {"p1_walk": 30, "p2_run": 30}, f"conditions: {conditions}\n")
    if table is not None:
        (tmp_path / "t.csv").write_text(table)
    rc = main(["data", "inspect", "--data", str(ds)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and said in err[0] and "Traceback" not in err[0], err


def test_builtin_layout_refuses_a_conditions_key(tmp_path, capsys):
    (tmp_path / "dataset.yaml").write_text("format: wrist_exercise\nroot: .\n"
                                           "conditions: {pattern: '(?P<condition>x)'}\n")
    rc = main(["data", "inspect", "--data", str(tmp_path / "dataset.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "format wrist_exercise is a built-in layout" in err[0], err


def test_time_domain_bench_by_condition(export_dir, tmp_path):
    """The time-domain bench (an int8 cnn1d student): per_condition from the records' meta, before the tracker, its
    windows summing to the scored ones and its MAPE as windows.csv recomputes it."""
    from sqtool.data.synthetic import synth_record
    from sqtool.firmware_bench.cli import BenchConfig, run_bench
    recs = [synth_record(duration_s=40.0, fs=125.0, hr_bpm=70.0 + 20 * i, seed=i, subject=f"w{i}") for i in range(3)]
    for r, c in zip(recs, ("walk", "run", None)):
        if c:
            r.meta["condition"] = c
    out = tmp_path / "b"
    res = run_bench(BenchConfig(model=str(export_dir), data="synthetic", runtime=["c_host"], callgrind_windows=0,
                                progress=False, floor=["mape=1000"], out=str(out)), records=recs)
    row = res["runtimes"][0]
    by = row["per_condition"]
    assert list(by) == ["run", "walk", NONE_ROW] and all(c["subjects"] == 1 for c in by.values())
    assert sum(c["n"] for c in by.values()) == row["metrics"]["n"] > 0
    rows = windows_csv(out)
    assert row["metrics"]["mape"] == pytest.approx(_mape_of(rows, "c_host"), rel=1e-6)
    assert by["run"]["mape"] == pytest.approx(_mape_of([w for w in rows if w["condition"] == "run"], "c_host"),
                                              rel=1e-6)
    assert res["floor"][0]["ok"] and "per_condition" in res["baseline"]
    md = (out / "bench.md").read_text()
    assert "by condition (BPM" in md and "(none): windows without a condition" in md and "| MAPE % |" in md
