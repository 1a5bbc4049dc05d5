"""Readers on the real data (../shared/data) and on layouts/bad inputs built in tmp_path."""
from __future__ import annotations

import inspect as _inspect
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from sqtool.core import SqtoolError
from sqtool.data.readers import detect_kind, iter_records, read_dataset
from sqtool.data.readers import troika


# ----------------------------------------------------------------------------- TROIKA / SP Cup

def test_troika_training_and_extra(data_root):
    recs = read_dataset(data_root / "troika")
    assert len(recs) == 13
    by_id = {r.record_id: r for r in recs}
    r = by_id["DATA_01_TYPE01"]
    assert r.dataset == "troika" and r.subject == "01" and r.meta["layout"] == "training"
    assert r.channels == ["ecg", "ppg", "ppg2", "acc_x", "acc_y", "acc_z"]
    assert set(r.fs.values()) == {125.0}
    n = len(r.signals["ppg"])
    assert n == 37937
    hr = r.labels["hr"]
    assert hr.kind == "window" and hr.window_s == 8 and hr.unit == "bpm"
    assert len(hr) == (n - 1000) // 250 + 1 == 148
    np.testing.assert_allclose(hr.times[:3], [0, 2, 4])
    raw = sio.loadmat(data_root / "troika/Training_data/DATA_01_TYPE01.mat")["sig"]
    np.testing.assert_array_equal(r.signals["ppg"], raw[1])           # row 1 = first wrist PPG
    np.testing.assert_array_equal(r.signals["acc_z"], raw[5])
    extra = by_id["DATA_S04_T01"]
    assert extra.subject == "S04" and extra.meta["layout"] == "extra" and len(extra.labels["hr"]) == 107
    assert len({r.subject for r in recs}) == 13


def test_troika_protocol_conditions(data_root):
    """A training recording's windows take the competition protocol's conditions at its nominal times (bench's table
    by condition): rest, then a minute each of jog and run twice, rest; the extra recording (another protocol) none."""
    from collections import Counter
    from sqtool.data.record import window_conditions
    by_id = {r.record_id: r for r in read_dataset(data_root / "troika")}
    for rid in ("DATA_01_TYPE01", "DATA_12_TYPE02"):
        r = by_id[rid]
        hr = r.labels["hr"]
        cond = window_conditions(r, hr.times, hr.window_s)                     # by each window's centre
        assert cond[0] == "rest" and cond[13] == troika.JOG and cond[43] == troika.RUN and cond[-1] == "rest"
        counts = Counter(cond)
        assert counts[troika.JOG] == counts[troika.RUN] == 60                  # two minutes each, a window per 2 s
        assert counts["rest"] == len(hr) - 120 and set(counts) == {"rest", troika.JOG, troika.RUN}
        assert r.meta["condition_segments"][-1][1] == len(r.signals["ppg"]) / troika.FS    # to the recording's end
    extra = by_id["DATA_S04_T01"]
    assert "condition_segments" not in extra.meta
    assert set(window_conditions(extra, extra.labels["hr"].times, 8.0)) == {""}


def _build_test_layout(data_root: Path, dst: Path, ids=("01", "02")) -> Path:
    """SP Cup test layout from training files: TestData/TEST_Sxx_T01.mat (5 rows) + TrueBPM/True_*.mat."""
    (dst / "TestData").mkdir(parents=True)
    (dst / "TrueBPM").mkdir()
    for i in ids:
        sig = sio.loadmat(data_root / f"troika/Training_data/DATA_{i}_TYPE0{1 if i == '01' else 2}.mat")["sig"]
        bpm = sio.loadmat(data_root / f"troika/Training_data/DATA_{i}_TYPE0{1 if i == '01' else 2}_BPMtrace.mat")
        sio.savemat(dst / "TestData" / f"TEST_S{i}_T01.mat", {"sig": sig[1:]})          # drop ECG row
        sio.savemat(dst / "TrueBPM" / f"True_S{i}_T01.mat", {"BPM0": bpm["BPM0"]})
    return dst


def test_troika_test_layout_detected_from_files(data_root, tmp_path):
    root = _build_test_layout(data_root, tmp_path / "spcup_test")
    assert detect_kind(root) == "troika"
    recs = read_dataset(root)
    assert [r.record_id for r in recs] == ["TEST_S01_T01", "TEST_S02_T01"]
    r = recs[0]
    assert r.meta["layout"] == "test" and r.subject == "S01"
    assert r.channels == ["ppg", "ppg2", "acc_x", "acc_y", "acc_z"]              # no ECG
    raw = sio.loadmat(data_root / "troika/Training_data/DATA_01_TYPE01.mat")["sig"]
    np.testing.assert_array_equal(r.signals["ppg"], raw[1])
    np.testing.assert_array_equal(r.signals["acc_x"], raw[3])
    assert len(r.labels["hr"]) == 148
    # reading the TestData folder alone still finds the sibling TrueBPM folder
    assert len(read_dataset(root / "TestData")[1].labels["hr"]) == 148
    # without truth the recordings read unlabeled
    shutil.rmtree(root / "TrueBPM")
    assert read_dataset(root)[0].labels == {}


def test_troika_row_layout_follows_row_count(data_root, tmp_path):
    """A 5-row signal saved under a training name is still read as PPG x2 + acc (no ECG)."""
    sig = sio.loadmat(data_root / "troika/Training_data/DATA_03_TYPE02.mat")["sig"]
    sio.savemat(tmp_path / "DATA_03_TYPE02.mat", {"sig": sig[1:]})
    r = read_dataset(tmp_path)[0]
    assert r.channels == ["ppg", "ppg2", "acc_x", "acc_y", "acc_z"]
    np.testing.assert_array_equal(r.signals["ppg2"], sig[2])


def test_troika_label_count_mismatch(data_root, tmp_path):
    root = _build_test_layout(data_root, tmp_path / "t", ids=("01",))
    bpm = sio.loadmat(root / "TrueBPM/True_S01_T01.mat")["BPM0"]
    sio.savemat(root / "TrueBPM/True_S01_T01.mat", {"BPM0": bpm[:-3]})
    with pytest.raises(SqtoolError, match="labels do not match"):
        read_dataset(root)


def test_troika_n_windows():
    assert troika.n_windows(999) == 0 and troika.n_windows(1000) == 1 and troika.n_windows(1249) == 1
    assert troika.n_windows(1250) == 2 and troika.n_windows(37937) == 148


def test_iter_records_is_lazy(data_root):
    it = iter_records(data_root / "troika")
    assert _inspect.isgenerator(it)
    first = next(it)
    assert first.dataset == "troika"
    it.close()


# ----------------------------------------------------------------------------- every real dataset

_CACHE: dict = {}


def _real(data_root: Path, kind: str):
    """Each real dataset read once per test process (the assertions below only look)."""
    if kind not in _CACHE:
        _CACHE[kind] = read_dataset(data_root / kind)
    return _CACHE[kind]

# kind, records, subjects, channels every record has, label names every record has
REAL = [
    ("troika", 13, 13, {"ppg", "ppg2", "acc_x", "acc_y", "acc_z", "ecg"}, {"hr"}),
    ("bidmc", 53, 53, {"ppg", "resp", "ecg"}, {"breaths_ann1", "breaths_ann2", "hr", "rr", "spo2"}),
    ("ppg_bp", 659, 219, {"ppg"}, {"sbp", "dbp", "hr", "hypertension", "sqi"}),
    ("ppg_arrhythmia", 2295, 12, {"ppg"}, {"rhythm"}),
    ("but_ppg", 51, 13, {"ppg"}, {"quality", "hr"}),
    ("mw_ppg", 78, 78, {"ppg_660", "ppg_730", "ppg_850"}, {"artifact", "artifact_ppg_660", "sbp", "dbp"}),
    ("unlabeled", 10, 6, {"ppg"}, set()),
]


@pytest.mark.parametrize("kind,n_rec,n_subj,channels,labels", REAL, ids=[r[0] for r in REAL])
def test_every_real_dataset(data_root, kind, n_rec, n_subj, channels, labels):
    assert detect_kind(data_root / kind) == kind
    recs = _real(data_root, kind)
    assert len(recs) == n_rec
    assert len({r.subject for r in recs}) == n_subj
    assert len({r.record_id for r in recs}) == n_rec                    # record ids unique
    for r in recs:
        assert r.dataset == kind
        assert channels <= set(r.signals), r.record_id
        assert labels <= set(r.labels), r.record_id
        assert r.primary_channel().startswith("ppg")
        for c, x in r.signals.items():
            assert x.dtype == np.float64 and x.ndim == 1 and np.isfinite(x).all()
            assert r.fs[c] > 0


def test_bidmc_columns_by_name_and_breaths(data_root):
    import pandas as pd
    recs = {r.record_id: r for r in _real(data_root, "bidmc")}
    r = recs["bidmc01"]                                       # columns: RESP, PLETH, V, AVR, II
    df = pd.read_csv(data_root / "bidmc/bidmc_csv/bidmc_01_Signals.csv.gz", skipinitialspace=True)
    np.testing.assert_array_equal(r.signals["ppg"], df["PLETH"].to_numpy())
    np.testing.assert_array_equal(r.signals["ecg"], df["II"].to_numpy())
    np.testing.assert_array_equal(r.signals["ecg_v"], df["V"].to_numpy())
    assert r.fs["ppg"] == 125.0 and len(r.signals["ppg"]) == 60001
    b = pd.read_csv(data_root / "bidmc/bidmc_csv/bidmc_01_Breaths.csv", skipinitialspace=True)
    lab = r.labels["breaths_ann1"]
    assert lab.kind == "events"
    np.testing.assert_allclose(lab.times, (b.iloc[:, 0].to_numpy() - 1) / 125.0)   # 1-based -> seconds
    assert r.labels["hr"].kind == "value" and r.labels["hr"].times[0] == 0
    assert recs["bidmc23"].labels["hr"].times.min() >= 0                # the t = -1 s numeric is dropped
    assert recs["bidmc23"].signals["ppg"].size == 60001


def test_ppg_bp_quirk_and_labels(data_root):
    recs = _real(data_root, "ppg_bp")
    ids = {r.record_id: r for r in recs}
    assert {"231_1a", "231_1b", "231_2a", "231_2b", "231_3"} <= set(ids)
    assert all(len(r.signals["ppg"]) == 2100 and r.fs["ppg"] == 1000.0 for r in recs)
    r = ids["2_1"]
    assert r.subject == "2" and float(r.labels["sbp"].values) == 161 and float(r.labels["dbp"].values) == 89
    assert r.labels["hypertension"].classes[int(r.labels["hypertension"].values)] == "Stage 2 hypertension"
    assert float(r.labels["sqi"].values) == pytest.approx(0.98)          # Table1.xlsx block 1, row 1


def test_arrhythmia_classes(data_root):
    recs = _real(data_root, "ppg_arrhythmia")
    counts = np.bincount([int(r.labels["rhythm"].values) for r in recs], minlength=6)
    assert counts.tolist() == [710, 217, 207, 234, 195, 732]             # SR PVC PAC VT SVT AF (MANIFEST)
    assert recs[0].labels["rhythm"].classes == ("sinus", "PVC", "PAC", "VT", "SVT", "AF")
    assert all(r.duration() == 10.0 for r in recs)


def test_but_ppg_quality_and_subjects(data_root):
    recs = _real(data_root, "but_ppg")
    q = [int(r.labels["quality"].values) for r in recs]
    assert sum(q) == 37 and len(q) - sum(q) == 14
    r = recs[0]
    assert r.record_id == "100001" and r.subject == "100" and r.fs["ppg"] == 30.0
    assert float(r.labels["hr"].values) == 83 and len(r.signals["ppg"]) == 300


def test_mw_ppg_flags(data_root):
    recs = _real(data_root, "mw_ppg")
    assert sum(bool(r.labels["artifact"].values.any()) for r in recs) == 15     # MANIFEST: 15 of 78
    r = recs[0]
    assert r.channels == ["ppg_660", "ppg_730", "ppg_850"] and r.primary_channel() == "ppg_660"
    lab = r.labels["artifact_ppg_660"]
    assert lab.kind == "flags" and lab.fs == 200 and len(lab) == len(r.signals["ppg_660"]) == 12000
    assert "assumed" in r.meta["bp_mapping"]


def test_unlabeled_rates_and_gaps(data_root):
    recs = {r.record_id: r for r in _real(data_root, "unlabeled")}
    assert recs["heartpy_data"].fs["ppg"] == 100.0
    assert recs["heartpy_data2"].fs["ppg"] == pytest.approx(117, abs=0.5)      # timer in ms
    assert recs["heartpy_data3"].fs["ppg"] == pytest.approx(100, abs=1)        # datetime strings
    e2e = recs["e2epyppg_201902020222_Data"]
    assert e2e.fs["ppg"] == pytest.approx(20, rel=0.03) and {"acc_x", "acc_y", "acc_z"} <= set(e2e.signals)
    mag = np.sqrt(sum(e2e.signals[c] ** 2 for c in ("acc_x", "acc_y", "acc_z")))
    assert np.median(mag) == pytest.approx(1.0, abs=0.1)                      # converted to g
    rings = [r for r in recs.values() if r.subject == "heartpy_ring"]
    assert len(rings) >= 2 and all(r.fs["ppg"] == 32.0 for r in rings)      # split at the empty rows
    sc = [r for r in recs.values() if r.subject == "smartcare"]
    assert sc and sc[0].fs["ppg"] == 100.0 and sc[0].labels["device_hr"].unit == "bpm"


# ----------------------------------------------------------------------------- generic readers

def test_generic_csv_time_column_and_rate(tmp_path):
    from sqtool.data.readers import read_csv
    t = np.arange(500) / 50.0
    x = np.sin(2 * np.pi * 1.2 * t)
    f = tmp_path / "rec.csv"
    f.write_text("time,PLETH,accx\n" + "".join(f"{a:.4f},{b:.6f},{c:.3f}\n" for a, b, c in zip(t, x, x)))
    r = read_csv(f)
    assert r.fs["ppg"] == pytest.approx(50.0) and r.channels == ["ppg", "acc_x"]
    np.testing.assert_allclose(r.signals["ppg"], x, atol=1e-6)
    assert read_csv(f, fs=50).fs["ppg"] == pytest.approx(50.0)
    with pytest.raises(SqtoolError, match="wrong sampling rate"):
        read_csv(f, fs=100)
    assert read_csv(f, fs=50.4).fs["ppg"] == pytest.approx(50.4)            # 0.8 %: within the one tolerance
    with pytest.raises(SqtoolError, match="wrong sampling rate"):           # 1.5 % off: a dataset.yaml refuses
        read_csv(f, fs=50.75)                                               # it, so does a plain CSV (was 2 %)
    g = tmp_path / "norate.csv"                                   # no header, no time column
    g.write_text("".join(f"{v}\n" for v in x))
    with pytest.raises(SqtoolError, match="no sampling rate"):
        read_csv(g)
    assert read_csv(g, fs=25).duration() == pytest.approx(20.0)
    for bad in (0, -5, float("nan")):
        with pytest.raises(SqtoolError, match="sampling rate"):
            read_csv(g, fs=bad)


@pytest.mark.parametrize("stem", ["accel_", "Accelerometer ", "acceleration_"])
def test_generic_csv_spelled_out_accelerometer_columns(tmp_path, stem):
    """A watch export's accel_x / "Accelerometer X" columns are the acc channels, as accx is: a bare CSV given to
    predict / bench reads them without a dataset.yaml (accel_x was a channel of its own: "the model needs acc_x")."""
    from sqtool.data.readers import read_csv
    t = np.arange(200) / 50.0
    f = tmp_path / "rec.csv"
    f.write_text(f"time,ppg,{stem}x,{stem}y,{stem}z\n" + "".join(f"{a:.4f},{a:.3f},0,0,1\n" for a in t))
    assert read_csv(f).channels == ["ppg", "acc_x", "acc_y", "acc_z"]


def test_semicolon_csv_with_decimal_commas_reads_as_the_comma_csv(tmp_path):
    """A European spreadsheet export (`;` between fields, `,` as the decimal mark) reads to the samples of the same
    recording written with `,` and `.`, with a header row (predict on a bare file) or without one (a dataset.yaml
    naming columns by position): the header's time column was refused as "neither numbers nor date-times", and a
    header-less file was split at its decimal commas."""
    from sqtool.data.readers import iter_records, read_csv
    t = np.arange(320) / 64.0
    x = np.column_stack([t, -17.25 + np.sin(2 * np.pi * 1.3 * t), 0.5 * np.cos(t), np.full(t.size, 0.98)])
    rows = [";".join(f"{v:.6f}" for v in r).replace(".", ",") for r in x]
    plain, euro = tmp_path / "plain.csv", tmp_path / "euro.csv"
    np.savetxt(plain, x, delimiter=",", header="time,ppg,acc_x,acc_z", comments="", fmt="%.6f")
    euro.write_text('"time";"ppg";"acc_x";"acc_z"\n' + "\n".join(rows) + "\n")
    want, got = read_csv(plain), read_csv(euro)
    assert got.fs == want.fs and got.channels == want.channels == ["ppg", "acc_x", "acc_z"]
    for c in want.channels:
        np.testing.assert_array_equal(got.signals[c], want.signals[c])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "rec.csv").write_text("\n".join(rows) + "\n")
    (bare / "dataset.yaml").write_text("format: csv\nfs: 64\nchannels: {ppg: 1, acc_x: 2, acc_z: 3}\n")
    r = next(iter_records(bare / "dataset.yaml"))
    np.testing.assert_array_equal(r.signals["ppg"], want.signals["ppg"])


def test_a_header_less_csv_with_a_time_column_says_its_columns_have_no_names(tmp_path):
    """time,ppg,acc_x,... written without the header row: one line saying the columns have no names (the first
    rising like a time column) and how to name them, by a header or by position in a dataset.yaml, which then reads
    it (it said "no time column", of a file whose first column is one)."""
    from sqtool.data.readers import iter_records, read_csv
    t = np.arange(320) / 64.0
    f = tmp_path / "rec.csv"
    np.savetxt(f, np.column_stack([t, np.sin(2 * np.pi * 1.3 * t), np.zeros(t.size)]), delimiter=",", fmt="%.6f")
    with pytest.raises(SqtoolError, match=r"no header row, so its 3 columns have no names .*the first rises like a "
                       r"time column.*time_column: 0 or fs"):
        read_csv(f)
    with pytest.raises(SqtoolError, match=r"no names .*the first rises like a time column, and would be read as the "
                       r"PPG\)"):                       # a rate given: the time column was read as the PPG, silently
        read_csv(f, fs=64)
    (tmp_path / "dataset.yaml").write_text('format: csv\ntime_column: "0"\nchannels: {ppg: 1, acc_x: 2}\n')
    r = next(iter_records(tmp_path / "dataset.yaml"))
    assert r.fs["ppg"] == pytest.approx(64.0) and r.signals["ppg"][16] == pytest.approx(np.sin(2 * np.pi * 1.3 / 4))
    (tmp_path / "dataset.yaml").write_text('format: csv\ntime_column: 0\nchannels: {ppg: 1, acc_x: 2}\n')
    r0 = next(iter_records(tmp_path / "dataset.yaml"))     # a position as a number, as channels: takes one (was
    np.testing.assert_array_equal(r0.signals["ppg"], r.signals["ppg"])   # "time_column: expected text, got 0")


def _timed_csv(folder: Path, t: np.ndarray, name="s1_a.csv") -> Path:
    """time (s, %.3f), ppg, acc in g and hr at times `t`: ppg is the row's own time, so a sample says when it was."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(t)
    f = folder / name
    np.savetxt(f, np.column_stack([t, t, np.zeros(n), np.zeros(n), np.ones(n), np.full(n, 70.0)]), delimiter=",",
               header="time,ppg,ax,ay,az,hr", comments="", fmt=["%.3f", "%.3f", "%g", "%g", "%g", "%g"])
    return f


def _timed_yaml(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "dataset.yaml"
    p.write_text("format: csv\nroot: rec\ntime_column: time\n" + extra
                 + "channels: {ppg: ppg, acc_x: ax, acc_y: ay, acc_z: az}\n")
    return p


@pytest.mark.parametrize("fs_line", ["", "fs: 125\n"])
def test_rows_missing_from_a_timed_csv_are_a_gap_not_a_shift(tmp_path, capsys, fs_line):
    """A 7 s hole in 1 h at 125 Hz (a BLE drop-out) was within the 0.1 %-of-span drift the rate allowed: the rows after
    it were read 7 s early (124.77 Hz, which the front end refused; with fs: 125 beside the time column, cut out
    silently). Rows missing from a regular clock are a gap: NaN samples, every other sample at its own time, one
    warning line."""
    from sqtool.data.dataset_file import load_dataset_file
    fs = 125
    t = np.arange(3600 * fs) / fs
    _timed_csv(tmp_path / "rec", t[(t < 1800) | (t >= 1807)])
    capsys.readouterr()
    rec = load_dataset_file(_timed_yaml(tmp_path, fs_line)).records()[0]
    x = rec.signals["ppg"]
    assert rec.fs["ppg"] == 125.0 and len(x) == 3600 * fs
    hole = np.zeros(len(x), bool)
    hole[1800 * fs:1807 * fs] = True
    assert np.isnan(x[hole]).all() and np.isfinite(x[~hole]).all() and np.isnan(rec.signals["acc_z"][hole]).all()
    assert np.allclose(x[~hole], np.flatnonzero(~hole) / fs, atol=1e-3)     # after the hole too: at its own time
    said = [ln for ln in capsys.readouterr().err.splitlines() if "rows missing" in ln]
    assert len(said) == 1 and said[0].startswith("sqtool: warning: ")
    assert "rows missing from the time column: 7 s after row 225000 (t=1799.99 s)" in said[0]


def test_a_30_s_hole_in_5_min_is_a_gap_whose_windows_are_flagged(tmp_path, capsys):
    """A 30 s hole in 5 min was refused as 'irregular sampling ... resample first or give the rate explicitly', and
    giving fs: too did not help. It is a gap now, through a dataset file and the plain CSV reader alike: the front
    end flags the windows in it, and training leaves out (no truth) every window touching it."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.hr_spectra import record_spectra
    from sqtool.data.readers import read_csv
    from sqtool.models import get_model_cfg
    t = np.arange(300 * 125) / 125
    f = _timed_csv(tmp_path / "rec", t[(t < 100) | (t >= 130)])
    rec = load_dataset_file(_timed_yaml(tmp_path, "labels: {hr: {column: hr}}\n")).records()[0]
    plain = read_csv(f)
    for r in (rec, plain):
        assert r.fs["ppg"] == 125.0 and len(r.signals["ppg"]) == 300 * 125
        x = r.signals["ppg"]
        assert np.isnan(x[100 * 125:130 * 125]).all() and np.isfinite(x[130 * 125:]).all()
    err = capsys.readouterr().err
    assert err.count("rows missing from the time column: 30 s after row 12500 (t=99.992 s)") == 2
    h = record_spectra(rec, get_model_cfg("spec_student_xs"))
    inside = (h.t0 >= 100) & (h.t0 + 8 <= 130)
    touching = (h.t0 < 130) & (h.t0 + 8 > 100)
    assert inside.sum() >= 8 and (h.flagged[inside] > 0.99).all() and (h.flagged[~touching] < 0.01).all()
    assert np.isnan(h.y[touching]).all() and (h.y[~touching] == 70).all()


def test_a_jump_of_no_whole_rows_is_refused(tmp_path):
    """A jump that is not whole periods of the clock (a clock reset) is no gap: one line naming it (with or without
    fs: beside the time column), with advice that works, not 'give the rate explicitly'. Readers that take no gaps
    (rate_from_times: BIDMC's sample-numbered breaths) refuse a gap; a gap 10x the rows is refused too."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_csv
    from sqtool.data.readers._common import rate_from_times, time_grid
    t = np.arange(300 * 125) / 125
    t = np.where(t < 130, t, t + 0.004)[(t < 100) | (t >= 130)]          # 30.012 s: 3751.5 periods
    f = _timed_csv(tmp_path / "rec", t)
    for extra in ("", "fs: 125\n"):
        with pytest.raises(SqtoolError) as e:
            load_dataset_file(_timed_yaml(tmp_path, extra)).records()
        assert "jump by 30.012 s after row 12500 (t=99.992 s), 3751.50 periods of 125 Hz: not whole" in str(e.value)
        assert "explicitly" not in str(e.value)
    with pytest.raises(SqtoolError, match="jump by 30.012 s after row 12500"):
        read_csv(f)
    whole = np.r_[np.arange(300), np.arange(400, 700)] / 100.0           # 1 s of 100 Hz rows missing
    with pytest.raises(SqtoolError, match=r"rows missing from the time column: 1 s after row 300 \(t=2.99 s\); this "
                                          "reader takes no gaps"):
        rate_from_times(whole, "x")
    with pytest.raises(SqtoolError, match="over 9x the rows it holds; split the file"):
        time_grid(np.r_[np.arange(100), np.arange(2000, 2100)] / 100.0, "x")


def test_a_clock_that_goes_back_is_one_line_saying_how_far_and_what_to_do(tmp_path):
    """A device clock reset, an NTP step back or naive local times falling back an hour (daylight saving) were
    refused as 'time column goes backwards at row N': no size, no time, nothing to do about it. The line now says how
    far back, where, and the two ways out (split the file there, or times with their UTC offset). Found by a
    helper's sweep."""
    from sqtool.data.readers import read_csv
    t = np.arange(300 * 25) / 25
    t[4000:] -= 30.0                                                     # stepped back 30 s at 160 s
    f = _timed_csv(tmp_path / "rec", t)
    with pytest.raises(SqtoolError) as e:
        read_csv(f)
    msg = str(e.value)
    assert "goes backwards by 29.96 s at row 4001 (t=159.96 s)" in msg and "\n" not in msg
    assert "split the file there" in msg and "UTC offset" in msg


def test_rows_stamped_in_bursts_or_by_a_jittery_clock_keep_their_gaps_whole():
    """Rows stamped 4 at a time (a BLE packet's arrival) are no gaps between the packets; a clock jittering by up to
    3 ms at 125 Hz has its 10 s gap found whole, 3 ms off (over a quarter period, within its own jitter)."""
    from sqtool.data.readers._common import time_grid
    t = np.floor(np.arange(30 * 125) / 4) * 4 / 125                        # 32 ms steps, 3 zero ones between
    g = time_grid(t, "x")
    assert g.n == len(t) and not g.gaps and g.fs == pytest.approx(125, rel=1e-3)
    t = np.arange(60 * 125) / 125 + np.tile([0.0, 0.003, -0.003, 0.001], 60 * 125 // 4)
    g = time_grid(np.r_[t[:3000], t[4250:] + 0.003], "x")
    assert g.gaps == ((3000, pytest.approx(23.993), pytest.approx(10.0, abs=0.01)),) and g.n == len(t)
    assert g.at[3000] == 4250


def test_a_host_stall_whose_rows_come_late_is_no_gap():
    """A host-stamped 100 Hz logger stalls 60 ms every 20 s, then stamps the 5 rows it buffered at once: no row is
    missing (the old arithmetic read 100 Hz), so no gap; read as gaps it made 29 of them and 100.24 Hz. A real 1 s
    hole in the same file is still one gap."""
    from sqtool.data.readers._common import rate_from_times, time_grid
    t = np.arange(600 * 100) / 100
    for k in range(2000, t.size - 10, 2000):
        t[k:k + 5] = t[k + 5]
    t = np.round(t, 3)
    g = time_grid(t, "x")
    assert g.fs == 100.0 and g.n == t.size and not g.gaps and rate_from_times(t, "x") == 100.0
    g = time_grid(np.r_[t[:30000], t[30100:]], "x")
    assert g.fs == 100.0 and g.n == t.size and len(g.gaps) == 1 and g.at[30000] == 30100


def test_millisecond_timestamps_read_as_seconds_are_said_to_be_milliseconds(tmp_path):
    """Integer-ms timestamps in a column named time, no unit given: read as seconds they gave 0.064 Hz, which only the
    front end refused ('below 2x the model band's top 4 Hz'), naming no unit. The reader says they look like
    milliseconds and how to say so, in a dataset file and for a plain CSV; said in ms, they read at 64 Hz."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_csv
    t = np.round(np.arange(60 * 64) / 64 * 1000)
    (tmp_path / "rec").mkdir()
    f = tmp_path / "rec" / "s1_a.csv"
    np.savetxt(f, np.column_stack([t, np.sin(t / 100.0)]), delimiter=",", header="time,ppg", comments="",
               fmt=["%d", "%.5f"])
    with pytest.raises(SqtoolError, match=r"column 'time': the timestamps give 0.064 Hz, no device's rate: they look "
                                          r"like milliseconds \(64 Hz\); rename the column time_ms"):
        read_csv(f)
    assert read_csv(f, time_unit="ms").fs["ppg"] == 64.0
    p = tmp_path / "dataset.yaml"
    p.write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match=r"they look like milliseconds \(64 Hz\); add time_unit: ms to dataset.yaml"):
        load_dataset_file(p).records()
    p.write_text("format: csv\nroot: rec\ntime_column: time\ntime_unit: ms\nchannels: {ppg: ppg}\n")
    assert load_dataset_file(p).records()[0].fs["ppg"] == 64.0


def test_generic_npz(tmp_path):
    from sqtool.data.readers import read_npz
    x = np.random.default_rng(0).normal(size=1000)
    np.savez(tmp_path / "a.npz", ppg=x, acc_x=x[::2], fs_ppg=100.0, fs_acc_x=50.0, subject="s1")
    r = read_npz(tmp_path / "a.npz")
    assert r.fs == {"ppg": 100.0, "acc_x": 50.0} and r.subject == "s1"
    np.savez(tmp_path / "b.npz", ppg=x)
    with pytest.raises(SqtoolError, match="no sampling rate"):
        read_npz(tmp_path / "b.npz")
    assert read_npz(tmp_path / "b.npz", fs=64).fs["ppg"] == 64
    np.savez(tmp_path / "c.npz", ppg=x, fs=0.0)
    with pytest.raises(SqtoolError, match="sampling rate"):
        read_npz(tmp_path / "c.npz")


def _write_wfdb(d: Path, name="rec", n=2000, fs=100):
    import wfdb
    t = np.arange(n) / fs
    sig = np.stack([np.sin(2 * np.pi * 1.1 * t), np.sin(2 * np.pi * 0.25 * t)], axis=1)
    wfdb.wrsamp(name, fs=fs, units=["NU", "NU"], sig_name=["PLETH", "RESP"], p_signal=sig, fmt=["16", "16"],
                write_dir=str(d))
    wfdb.wrann(name, "breath", np.array([100, 500, 900]), symbol=["N"] * 3, write_dir=str(d))
    return sig


def test_generic_wfdb(tmp_path):
    from sqtool.data.readers import read_wfdb
    sig = _write_wfdb(tmp_path)
    assert detect_kind(tmp_path) == "wfdb"
    r = read_wfdb(tmp_path / "rec.hea")
    assert r.channels == ["ppg", "resp"] and r.fs["ppg"] == 100
    np.testing.assert_allclose(r.signals["ppg"], sig[:, 0], atol=1e-3)
    np.testing.assert_allclose(r.labels["breath"].times, [1, 5, 9])
    assert read_dataset(tmp_path)[0].record_id == "rec"


def test_wfdb_given_rate_checked_against_header(tmp_path):
    """`data inspect --fs` on a WFDB folder passed fs to read_wfdb, which took none: a TypeError line. Now a rate that
    agrees with the header reads, one that does not is refused as a wrong sampling rate, in one line."""
    from sqtool.data.readers import read_wfdb
    _write_wfdb(tmp_path)
    assert read_wfdb(tmp_path / "rec.hea", fs=100).fs["ppg"] == 100
    assert read_dataset(tmp_path, fs=100)[0].fs["ppg"] == 100
    with pytest.raises(SqtoolError, match=r"header says 100 Hz but fs=125 was given; wrong sampling rate"):
        read_wfdb(tmp_path / "rec.hea", fs=125)


# ----------------------------------------------------------------------------- bad input: one line each

def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_missing_and_empty(tmp_path):
    with pytest.raises(SqtoolError, match="no such file") as e:
        read_dataset(tmp_path / "nope")
    _one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SqtoolError, match="folder is empty"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.docx").write_bytes(b"x")
    with pytest.raises(SqtoolError, match="no dataset recognised"):
        read_dataset(tmp_path / "junk")
    (tmp_path / "z.csv").write_text("")
    with pytest.raises(SqtoolError, match="empty"):
        read_dataset(tmp_path / "z.csv", fs=10)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    f = tmp_path / "DATA_01_TYPE01.mat"
    f.write_bytes(b"x" * 100)
    f.chmod(0)
    with pytest.raises(SqtoolError, match="not readable"):
        read_dataset(f)


def test_truncated_and_corrupt_mat(data_root, tmp_path):
    src = (data_root / "troika/Training_data/DATA_01_TYPE01.mat").read_bytes()
    (tmp_path / "DATA_01_TYPE01.mat").write_bytes(src[: len(src) // 2])
    with pytest.raises(SqtoolError, match="corrupt or truncated .mat") as e:
        read_dataset(tmp_path)
    _one_line(e)
    (tmp_path / "DATA_01_TYPE01.mat").write_bytes(b"MATLAB 5.0 garbage" + bytes(range(256)) * 4)
    with pytest.raises(SqtoolError, match="corrupt or truncated .mat"):
        read_dataset(tmp_path)
    sio.savemat(tmp_path / "DATA_01_TYPE01.mat", {"other": np.zeros(3)})
    with pytest.raises(SqtoolError, match="variable 'sig' missing"):
        read_dataset(tmp_path)
    sio.savemat(tmp_path / "DATA_01_TYPE01.mat", {"sig": np.zeros((4, 100))})
    with pytest.raises(SqtoolError, match="4 rows"):
        read_dataset(tmp_path)


def test_truncated_and_corrupt_csv(data_root, tmp_path):
    d = tmp_path / "bidmc_csv"
    d.mkdir()
    gz = (data_root / "bidmc/bidmc_csv/bidmc_01_Signals.csv.gz").read_bytes()
    (d / "bidmc_01_Signals.csv.gz").write_bytes(gz[: len(gz) // 3])
    with pytest.raises(SqtoolError, match="corrupt or truncated CSV") as e:
        read_dataset(tmp_path)
    _one_line(e)
    (d / "bidmc_01_Signals.csv.gz").unlink()
    (d / "bidmc_01_Signals.csv").write_text("Time [s], PLETH, RESP\n0,0.1,0.2\n0.008,abc,0.3\n0.016,0.2,0.1\n")
    with pytest.raises(SqtoolError, match="not a number"):
        read_dataset(tmp_path)
    g = tmp_path / "x.csv"
    g.write_text('time,ppg\n0,1\n0.1,"2\n')
    with pytest.raises(SqtoolError, match="corrupt or truncated CSV"):
        read_dataset(g)


def test_truncated_wfdb(tmp_path):
    _write_wfdb(tmp_path)
    dat = tmp_path / "rec.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(SqtoolError, match="WFDB") as e:
        read_dataset(tmp_path)
    _one_line(e)
    dat.unlink()
    with pytest.raises(SqtoolError, match="WFDB|missing"):
        read_dataset(tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_samples_are_gaps(tmp_path, bad):
    """NaN/Inf samples are gaps, read as they are (predict holds them, training leaves their windows out); a
    channel without one finite sample is one line."""
    x = np.sin(np.arange(1000) / 10.0)
    x[500] = bad
    np.savez(tmp_path / "a.npz", ppg=x, fs=100.0)
    rec = read_dataset(tmp_path)[0]
    assert rec.nonfinite_samples() == 1 and np.isfinite(rec.signals["ppg"]).sum() == 999
    from sqtool.data.readers import inspect_path
    from sqtool.data.readers.summary import format_summary
    s = inspect_path(tmp_path)
    assert s["nonfinite"] == {"samples": 1, "records": 1, "example": "a: ppg 1 of 1,000 samples"} and "gaps: 1 NaN/Inf samples in 1 record(s)" in \
        format_summary(s)
    np.savez(tmp_path / "a.npz", ppg=np.full(1000, bad), fs=100.0)
    with pytest.raises(SqtoolError, match="channel 'ppg' has no finite sample") as e:
        read_dataset(tmp_path)
    _one_line(e)


def test_nan_in_csv(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("time,ppg\n0,1\n0.01,\n0.02,3\n0.03,4\n")
    assert read_dataset(f)[0].nonfinite_samples() == 1                   # an empty cell: one gap
    f.write_text("time,ppg,acc_x\n0,1,\n0.01,2,\n0.02,3,\n0.03,4,\n")
    with pytest.raises(SqtoolError, match="channel 'acc_x' has no finite sample"):
        read_dataset(f)


def test_flat_line(data_root, tmp_path):
    sig = sio.loadmat(data_root / "troika/Training_data/DATA_02_TYPE02.mat")["sig"].copy()
    sig[1] = 0.5                                                    # wrist PPG detached
    sio.savemat(tmp_path / "DATA_02_TYPE02.mat", {"sig": sig})
    with pytest.raises(SqtoolError, match="flat line") as e:
        read_dataset(tmp_path)
    _one_line(e)


def test_short_record_and_skip(data_root, tmp_path):
    sig = sio.loadmat(data_root / "troika/Training_data/DATA_02_TYPE02.mat")["sig"]
    sio.savemat(tmp_path / "DATA_02_TYPE02.mat", {"sig": sig[:, :2000]})       # 16 s
    sio.savemat(tmp_path / "DATA_03_TYPE02.mat", {"sig": sig[:, :5000]})       # 40 s
    assert len(read_dataset(tmp_path, min_duration_s=10)) == 2
    with pytest.raises(SqtoolError, match="shorter than the 30 s needed") as e:
        read_dataset(tmp_path, min_duration_s=30)
    _one_line(e)
    skipped = []
    recs = read_dataset(tmp_path, min_duration_s=30, on_error="skip", skipped=skipped)
    assert [r.record_id for r in recs] == ["DATA_03_TYPE02"] and len(skipped) == 1
    with pytest.raises(SqtoolError, match="no usable records"):
        read_dataset(tmp_path, min_duration_s=100, on_error="skip")


def test_channel_missing(data_root, tmp_path):
    with pytest.raises(SqtoolError, match="channel 'acc_x' missing"):
        read_dataset(data_root / "but_ppg", channels=["ppg", "acc_x"])
    d = tmp_path / "ad_labeled_files"
    d.mkdir()
    (d / "bp_dataset_1.csv").write_text("green_channel,ir_channel,Anomaly_ch0\n1,2,0\n3,4,0\n")
    with pytest.raises(SqtoolError, match="red_channel"):
        read_dataset(tmp_path)


def test_labels_not_matching_signal(data_root, tmp_path):
    # BIDMC breaths beyond the end of the signal
    d = tmp_path / "bidmc_csv"
    d.mkdir()
    t = np.arange(1000) / 125
    (d / "bidmc_07_Signals.csv").write_text("Time [s], PLETH, RESP\n" + "".join(
        f"{a:.3f},{np.sin(7 * a):.5f},{np.sin(a):.5f}\n" for a in t))
    (d / "bidmc_07_Breaths.csv").write_text("breaths ann1 [signal sample no], breaths ann2 [signal sample no]\n"
                                            "100,101\n900,1500\n")
    with pytest.raises(SqtoolError, match="labels do not match") as e:
        read_dataset(tmp_path)
    _one_line(e)
    # multi-wavelength flags of the wrong length: impossible in one CSV, so check the generic label check
    from sqtool.data.readers import check_record
    from sqtool.data.record import Label, Record
    r = Record("mw_ppg", "1", "1", {"ppg_660": np.sin(np.arange(400) / 5.0)}, {"ppg_660": 200.0},
               labels={"artifact": Label(values=np.zeros(300, np.uint8), kind="flags", fs=200.0)})
    with pytest.raises(SqtoolError, match="labels do not match"):
        check_record(r)


def test_several_datasets_need_a_choice(data_root):
    with pytest.raises(SqtoolError, match="several datasets"):
        detect_kind(data_root)


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    """Same check as above, by pretending the permission bit is off (tests run as root in CI)."""
    import sqtool.data.readers._common as common
    f = tmp_path / "DATA_01_TYPE01.mat"
    f.write_bytes(b"x" * 100)
    monkeypatch.setattr(common.os, "access", lambda p, mode: False)
    with pytest.raises(SqtoolError, match="not readable"):
        common.require_file(f)


def test_unknown_kind(tmp_path):
    (tmp_path / "a.csv").write_text("time,ppg\n0,1\n0.1,2\n")
    with pytest.raises(SqtoolError, match="unknown dataset kind 'bogus'"):
        read_dataset(tmp_path, kind="bogus")


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(fs=st.floats(1.0, 2000.0), n=st.integers(10, 400), t0=st.floats(0, 1e4), ms=st.booleans())
def test_rate_from_time_column_roundtrip(fs, n, t0, ms):
    """Any uniform time axis (s or ms, any offset) gives back its rate; written at 12 significant digits."""
    from sqtool.data.readers.generic import read_csv
    import tempfile
    t = t0 + np.arange(n) / fs
    col = "time_ms" if ms else "time"
    vals = t * 1000 if ms else t
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "r.csv"
        f.write_text(f"{col},ppg\n" + "".join(f"{v:.12g},{i % 7}\n" for i, v in enumerate(vals)))
        r = read_csv(f)
    step = (float(f"{vals[-1]:.12g}") - float(f"{vals[0]:.12g}")) / (n - 1) / (1000 if ms else 1)
    assert r.fs["ppg"] == pytest.approx(1 / step, rel=1e-5)
    assert r.fs["ppg"] == pytest.approx(fs, rel=1e-3)


def test_clipped_signal_opt_in(data_root):
    """PPG-BP 125_2 sits at the 12-bit rail (4095) for 67 % of its samples."""
    d = data_root / "ppg_bp" / "PPGBPDatabase"
    with pytest.raises(SqtoolError, match="clipped/saturated") as e:
        read_dataset(d / "125_2.txt", kind="ppg_bp", max_clip_fraction=0.3)
    assert "\n" not in str(e.value)
    assert len(read_dataset(d / "125_2.txt", kind="ppg_bp")) == 1          # off by default
    assert len(read_dataset(d / "125_1.txt", kind="ppg_bp", max_clip_fraction=0.3)) == 1


@pytest.mark.parametrize("fs, unit, fmt", [(64, "ms", "{:.0f}"), (256, "s", "{:.3f}"), (125, "ms", "{:.0f}"),
                                           (25, "s", "{:.2f}"), (1024, "ms", "{:.0f}"), (100, "s", "{:.1f}")])
def test_rounded_timestamps_give_the_nominal_rate(tmp_path, fs, unit, fmt):
    """Timestamps rounded to 1 ms (integer ms, `%.3f` s) measure 64.0002 / 256.0006 Hz over 130 s: within the
    rounding of the nominal rate, which the reader takes (the front end cannot resample 64.0002 Hz)."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_csv
    from sqtool.data.readers._common import rate_from_times
    t = np.arange(int(130 * fs)) / fs
    x = np.sin(2 * np.pi * 1.2 * t)
    scale = 1000.0 if unit == "ms" else 1.0
    (tmp_path / "rec").mkdir()
    f = tmp_path / "rec" / "s01_a.csv"
    f.write_text("time,ppg\n" + "".join(f"{fmt.format(a * scale)},{b:.5f}\n" for a, b in zip(t, x)))
    assert rate_from_times(np.round(t * 1000) / 1000, "t") == float(fs)
    assert read_csv(f, time_unit=unit).fs["ppg"] == float(fs)
    (tmp_path / "dataset.yaml").write_text(f"format: csv\nroot: rec\ntime_column: time\ntime_unit: {unit}\n"
                                           "channels: {ppg: ppg}\n")
    assert load_dataset_file(tmp_path / "dataset.yaml").records()[0].fs["ppg"] == float(fs)


def test_significant_digit_timestamps_give_the_nominal_rate(tmp_path):
    """`%.6g` timestamps round to 1e-8 s near 0 but to 1 ms past 100 s, so no one resolution fits the column; the
    span's ends are off by 1 ms at most, and 256 Hz over 300 s measured 256.00008, which the front end could
    not resample ('resampling ratio 1600000/25600007 too awkward'). The record's fs is the nominal 256 Hz, as
    `data inspect` reports it, through a dataset file and the plain CSV reader alike."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_csv
    fs = 256
    t = np.arange(300 * fs) / fs
    x = np.sin(2 * np.pi * 1.2 * t)
    (tmp_path / "rec").mkdir()
    f = tmp_path / "rec" / "s01_a.csv"
    f.write_text("time,ppg,ax,ay,az\n" + "".join(f"{a:.6g},{b:.5f},0.01,0.02,1\n" for a, b in zip(t, x)))
    assert read_csv(f).fs["ppg"] == 256.0
    (tmp_path / "dataset.yaml").write_text("format: csv\nroot: rec\ntime_column: time\n"
                                           "channels: {ppg: ppg, acc_x: ax, acc_y: ay, acc_z: az}\n")
    rec = load_dataset_file(tmp_path / "dataset.yaml").records()[0]
    assert set(rec.fs.values()) == {256.0}


def test_a_clock_off_its_rate_is_not_snapped():
    """Only the rounding's own error is snapped: a clock 50 ppm fast with full-precision or 1 ms timestamps, a
    smartwatch at 19.58 Hz for a nominal 20, stay as measured (the front end then resamples it to 20 Hz)."""
    from sqtool.data.readers._common import rate_from_times
    t = np.arange(130 * 64) / 64.0032
    assert rate_from_times(t, "t") == pytest.approx(64.0032, abs=1e-5)
    assert rate_from_times(np.round(t * 1000) / 1000, "t") == pytest.approx(64.0032, abs=1e-3)
    assert rate_from_times(np.round(np.arange(735 * 20) / 19.58 * 1000) / 1000, "t") == pytest.approx(19.58, abs=1e-3)
    assert rate_from_times(np.arange(1000) * 0.008, "t") == 125.0           # exact rates stay exact


def test_host_stamped_rows_give_the_nominal_rate():
    """Rows a host stamps when it receives them (integer ms, +-4 ms of jitter) measured 50.0035 Hz over 100 s,
    one duplicated row 50.01 and three rows dropped at once 49.97, which the front end refused ('cannot take 50.0035 Hz')
    though the sensor ran at 50 Hz. The nominal rate moves no row further than the stamps already scatter: it
    is taken. A clock 0.5 % off stays as measured however its rows scatter (beyond 0.1 %: not the stamps)."""
    from sqtool.data.readers._common import rate_from_times
    rng = np.random.default_rng(0)
    t = np.arange(5000) / 50.0
    jitter = np.round((t + rng.uniform(-0.004, 0.004, t.size)) * 1000) / 1000
    jitter[1:] = np.maximum.accumulate(jitter[1:])                       # never backwards
    assert rate_from_times(jitter, "t") == 50.0
    assert rate_from_times(np.insert(t, 2500, t[2500]), "t") == 50.0      # a row written twice
    assert rate_from_times(np.delete(t, [2000, 2001, 2002]), "t") == 50.0  # three rows lost (an 80 ms step)
    assert rate_from_times(np.arange(5000) / 50.25, "t") == pytest.approx(50.25, abs=1e-4)
    off = np.arange(5000) / 50.25 + rng.uniform(-0.004, 0.004, 5000)
    assert rate_from_times(np.maximum.accumulate(off), "t") == pytest.approx(50.25, rel=2e-4)   # not 50


def _iso_csv(path: Path, times: list[str], fs: float) -> Path:
    x = np.sin(2 * np.pi * 1.2 * np.arange(len(times)) / fs)
    path.write_text("time,ppg\n" + "".join(f"{a},{b:.6f}\n" for a, b in zip(times, x)))
    return path


def test_iso_times_crossing_a_daylight_saving_change_are_instants(tmp_path):
    """A day-long file from a phone writes local ISO times with their offset: +01:00 up to 02:00, then +02:00 from
    03:00 (Europe/Berlin, 29 March 2026). The column was refused as 'neither numbers nor date-times' (pandas' mixed
    timezones); it is one clock of instants: 64 Hz, no gap, nothing missing. One offset throughout and no offset
    at all read as before; a column mixing times with and without an offset is one line."""
    import pandas as pd

    from sqtool.data.readers import read_csv
    fs, n = 64, 64 * 120                                         # 2 min around 01:00 UTC = 02:00 -> 03:00 local
    utc = pd.Timestamp("2026-03-29 00:59", tz="UTC") + pd.to_timedelta(np.arange(n) / fs, unit="s")
    local = [x.isoformat(timespec="milliseconds") for x in utc.tz_convert("Europe/Berlin")]
    assert local[0].endswith("+01:00") and local[-1].endswith("+02:00")
    r = read_csv(_iso_csv(tmp_path / "dst.csv", local, fs))
    assert r.fs["ppg"] == 64.0 and len(r.signals["ppg"]) == n and np.isfinite(r.signals["ppg"]).all()
    one = [x.isoformat(timespec="milliseconds") for x in utc.tz_convert("Etc/GMT-1")]    # +01:00 throughout
    naive = [x.replace("+01:00", "") for x in one]
    for times in (one, naive):
        r = read_csv(_iso_csv(tmp_path / "same.csv", times, fs))
        assert r.fs["ppg"] == 64.0 and len(r.signals["ppg"]) == n
    with pytest.raises(SqtoolError, match=r"mixes date-times with and without a UTC offset \(row 3 has none\)"):
        read_csv(_iso_csv(tmp_path / "mix.csv", local[:2] + naive[2:], fs))


def test_naive_local_times_jumping_an_hour_say_it_may_be_daylight_saving(tmp_path, capsys):
    """Naive local times across the spring daylight-saving change (02:00 -> 03:00, no row missing) read as an hour of
    rows missing, the line saying only 'rows missing from the time column: 3600 s': 1800 windows flagged and nothing
    to say why. The line now says a naive time jumping 1 h may be daylight saving and how to say so; an hour lost
    from epoch times (a real gap) gets no such words. Found by a helper's sweep."""
    import pandas as pd

    from sqtool.data.readers import read_csv
    fs, n = 25, 25 * 900                                                  # 15 min, 02:00 -> 03:00 after 8
    utc = pd.Timestamp("2026-03-29 00:52", tz="UTC") + pd.to_timedelta(np.arange(n) / fs, unit="s")
    naive = [x.tz_localize(None).isoformat(timespec="milliseconds") for x in utc.tz_convert("Europe/Berlin")]
    capsys.readouterr()
    r = read_csv(_iso_csv(tmp_path / "naive.csv", naive, fs))
    said = capsys.readouterr().err
    assert len(r.signals["ppg"]) == n + 3600 * fs and "rows missing from the time column: 3600 s" in said
    assert "may be a daylight-saving change with no row missing: write the times with their UTC offset" in said
    ms = (utc.asi8 // 1_000_000).copy()
    ms[n // 2:] += 3_600_000
    f = tmp_path / "epoch.csv"
    pd.DataFrame({"time_ms": ms, "ppg": np.sin(np.arange(n))}).to_csv(f, index=False)
    read_csv(f)
    said = capsys.readouterr().err
    assert "rows missing from the time column: 3600 s" in said and "daylight" not in said


def test_a_text_cell_in_a_numeric_time_column_is_named_by_its_row(tmp_path):
    """Two day logs joined with `cat` repeat the header mid-file: the time column was refused as 'neither numbers nor
    date-times (Parsing "1780000000000" to datetime overflows)', blaming the good rows. The line names the row and
    its text as the other columns' do, and a repeated header says the files were joined. Found by a helper's sweep."""
    import pandas as pd

    from sqtool.data.readers import read_csv
    ms = 1780000000000 + np.arange(200) * 40
    f = tmp_path / "joined.csv"
    pd.DataFrame({"time_ms": ms, "ppg": np.sin(np.arange(200))}).to_csv(f, index=False)
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:101] + lines[:1] + lines[101:]) + "\n")
    with pytest.raises(SqtoolError) as e:
        read_csv(f)
    assert "time column 'time_ms' row 101 is not a number ('time_ms'); the header again: files joined" in str(e.value)
    f.write_text("\n".join(lines[:51] + ["oops,0.5"] + lines[51:]) + "\n")
    with pytest.raises(SqtoolError, match=r"time column 'time_ms' row 51 is not a number \('oops'\); remove the row"):
        read_csv(f)


def test_an_empty_time_cell_is_named_by_its_row(tmp_path):
    """A logger that wrote one row without its time: 'time column has NaN/Inf values', no row and nothing to do, in a
    5-million-row day file. The line names the first such row, how many there are, and what to do. Found by a
    helper's sweep."""
    import pandas as pd

    from sqtool.data.readers import read_csv
    t = (1780000000000 + np.arange(300) * 40).astype(float)
    t[[120, 200]] = np.nan
    f = tmp_path / "holes.csv"
    pd.DataFrame({"time_ms": t, "ppg": np.sin(np.arange(300))}).to_csv(f, index=False)
    with pytest.raises(SqtoolError, match=r"time column has no time at row 121 \(empty, NaN or Inf; 2 such rows\): "
                                          "remove those rows, or give them their times"):
        read_csv(f)


def test_rows_written_twice_are_read_once(tmp_path, capsys):
    """A 25 Hz watch log with every 50th row written twice (same time, same values) read as 25.5 Hz, every repeat a
    sample: predict said the recording 'is at 25.5 Hz' and left the 25 Hz C pipeline for another runtime. A row that
    repeats the one before exactly is read once now, one warning line with the count, through a plain CSV and a
    dataset file alike; rows sharing a rounded time with other values stay samples. Found by a helper's sweep."""
    import pandas as pd

    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_csv
    n = 2500
    t = np.arange(n) / 25.0
    clean = _timed_csv(tmp_path / "rec", t)
    want = read_csv(clean).signals["ppg"]
    rows = np.sort(np.r_[np.arange(n), np.arange(0, n, 50)])
    df = pd.read_csv(clean).iloc[rows]
    df.to_csv(clean, index=False)
    capsys.readouterr()
    for r in (read_csv(clean), load_dataset_file(_timed_yaml(tmp_path)).records()[0]):
        assert r.fs["ppg"] == 25.0 and np.array_equal(r.signals["ppg"], want)
    said = [ln for ln in capsys.readouterr().err.splitlines() if "repeat the row before" in ln]
    assert len(said) == 2 and "50 rows repeat the row before, time and values (the first: row 2): read once" in said[0]
    f = tmp_path / "rounded.csv"                                          # 125 Hz stamped to 0.01 s: 100.02 twice
    pd.DataFrame({"time": np.round(np.arange(1000) / 125, 2), "ppg": np.sin(np.arange(1000))}).to_csv(f, index=False)
    r = read_csv(f)
    assert len(r.signals["ppg"]) == 1000 and r.fs["ppg"] == pytest.approx(125, rel=1e-3)


def test_the_first_samples_wall_clock_time_is_kept(tmp_path):
    """A time column's wall clock was lost (seconds from the first row only): hourly files could not be put back on
    a timeline. Record.meta["start_time"] keeps the first row's time, ISO 8601: epoch numbers (ms, s) in UTC with
    'Z', ISO strings with their own offset (the first row's across a daylight-saving change), naive ones naive; a
    time column of seconds from a start has none. An NPZ may say it as start_time (ISO text or epoch seconds)."""
    import pandas as pd

    from sqtool.data.readers import read_csv, read_npz
    fs, n = 64, 64 * 20
    x = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)
    ms = 1774728000000 + np.round(np.arange(n) * 1000 / fs).astype(np.int64)      # 2026-03-28T20:00:00Z
    f = tmp_path / "ms.csv"
    pd.DataFrame({"timestamp_ms": ms, "ppg": x}).to_csv(f, index=False)
    assert read_csv(f).meta["start_time"] == "2026-03-28T20:00:00.000Z"
    pd.DataFrame({"time": ms / 1000, "ppg": x}).to_csv(f, index=False)             # epoch seconds
    assert read_csv(f).meta["start_time"] == "2026-03-28T20:00:00.000Z"
    pd.DataFrame({"time": np.arange(n) / fs, "ppg": x}).to_csv(f, index=False)     # seconds from the start
    assert "start_time" not in read_csv(f).meta
    utc = pd.Timestamp("2026-03-29 00:59:50.5", tz="UTC") + pd.to_timedelta(np.arange(n) / fs, unit="s")
    local = [v.isoformat(timespec="milliseconds") for v in utc.tz_convert("Europe/Berlin")]
    assert local[-1].endswith("+02:00")
    assert read_csv(_iso_csv(f, local, fs)).meta["start_time"] == "2026-03-29T01:59:50.500+01:00"
    naive = [v[:-6] for v in local[:600]]
    assert read_csv(_iso_csv(f, naive, fs)).meta["start_time"] == "2026-03-29T01:59:50.500"
    z = tmp_path / "a.npz"
    np.savez(z, ppg=x, fs=64.0)
    assert "start_time" not in read_npz(z).meta
    np.savez(z, ppg=x, fs=64.0, start_time="2026-03-29T01:59:50.5+01:00")
    assert read_npz(z).meta["start_time"] == "2026-03-29T01:59:50.500+01:00"
    np.savez(z, ppg=x, fs=64.0, start_time=1774728000.0)
    assert read_npz(z).meta["start_time"] == "2026-03-28T20:00:00.000Z"
    np.savez(z, ppg=x, fs=64.0, start_time="yesterday-ish")
    with pytest.raises(SqtoolError, match="start_time yesterday-ish is neither an ISO 8601 time nor seconds since 1970"):
        read_npz(z)


@pytest.mark.parametrize("seconds", [60, 600])
def test_timestamps_coarser_than_the_samples_are_said_so(seconds):
    """Epoch seconds written without their fraction at 64 Hz (64 rows share a stamp): refused, as before, but saying
    the stamps are too coarse and how to write them (it said 'irregular sampling ... resample onto a uniform grid',
    of a uniformly sampled file); an hour of them reads (its rate within the stamps' rounding), as before."""
    from sqtool.data.readers._common import time_grid
    t = np.floor(1.7e9 + np.arange(64 * seconds) / 64.0)
    with pytest.raises(SqtoolError, match=r"timestamps are written to 1 s, coarser than the samples \(about 6[45]\.?\d* "
                       r"Hz: 6[45] rows share a stamp\); write them with more digits"):
        time_grid(t, "f.csv")
    g = time_grid(np.floor(1.7e9 + np.arange(64 * 3600) / 64.0), "f.csv")
    assert g.fs == 64.0 and np.array_equal(g.at, np.arange(64 * 3600))
