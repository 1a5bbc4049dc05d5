"""Recordings in every generic format through a dataset file (NPZ, WFDB, EDF, generated here, seconds), and
time-domain tasks from a dataset file: loaded with their labels, refused (one line) without them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.synthetic import synth_record

FS = 125


def write_edf(path: Path, signals: dict, fs: int, units: dict | None = None,
              recording: str = "Startdate 01-JAN-2020 X X X", start: str = "01.01.2000.00.00") -> None:
    """A minimal EDF file (not EDF+): 1 s data records, int16 samples, each signal scaled to its own range;
    `recording` its recording field, `start` its start date and time fields (dd.mm.yyhh.mm.ss)."""
    names = list(signals)
    n = min(len(v) for v in signals.values()) // fs                    # whole data records
    x = {k: np.asarray(v, float)[: n * fs] for k, v in signals.items()}

    def f(s, w):
        return str(s)[:w].ljust(w).encode("ascii")

    def num(v):
        return f(f"{v:.6g}"[:8], 8)
    lo = {k: float(num(float(np.min(v)) - 1e-3)) for k, v in x.items()}
    hi = {k: float(num(float(np.max(v)) + 1e-3)) for k, v in x.items()}
    ns = len(names)
    head = (f("0", 8) + f("X X X X", 80) + f(recording, 80) + f(start[:8], 8)
            + f(start[8:], 8) + f(256 * (ns + 1), 8) + f("", 44) + f(n, 8) + f(1, 8) + f(ns, 4))
    for field_ in ([f(k, 16) for k in names], [f("", 80)] * ns, [f((units or {}).get(k, ""), 8) for k in names],
                   [num(lo[k]) for k in names], [num(hi[k]) for k in names], [f(-32768, 8)] * ns,
                   [f(32767, 8)] * ns, [f("", 80)] * ns, [f(fs, 8)] * ns, [f("", 32)] * ns):
        head += b"".join(field_)
    assert len(head) == 256 * (ns + 1)
    dig = {k: np.clip(np.round((x[k] - lo[k]) / (hi[k] - lo[k]) * 65535 - 32768), -32768, 32767).astype("<i2")
           for k in names}
    path.write_bytes(head + b"".join(dig[k][r * fs:(r + 1) * fs].tobytes() for r in range(n) for k in names))


def wrist(i: int, seconds: float = 40.0):
    """(record, per-sample hr, per-sample rr) of a synthetic wrist recording at 125 Hz."""
    r = synth_record(duration_s=seconds, fs=FS, hr_bpm=70.0 + 10 * i, rr_bpm=12.0 + 3 * i, seed=i, subject=f"s{i}")
    t = np.arange(len(r.signals["ppg"])) / FS
    per_sample = {k: np.interp(t, np.asarray(r.labels[k].times) + 4.0, np.asarray(r.labels[k].values))
                  for k in ("hr", "rr")}
    return r, per_sample["hr"], per_sample["rr"]


def test_npz_channels_by_name_with_their_own_rates(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    for i in range(2):
        r, hr, _ = wrist(i)
        acc25 = r.signals["acc_x"][::5]                                  # the accelerometer at 25 Hz
        np.savez(rec / f"s{i}_run.npz", PPG=r.signals["ppg"], ACC=acc25, hr=hr, fs=float(FS), fs_ACC=25.0)
    (tmp_path / "dataset.yaml").write_text(
        "format: npz\nroot: rec\nchannels: {ppg: PPG, acc_x: {column: ACC, unit: g}}\n"
        "subject: {pattern: '^(s\\d)_'}\nlabels: {hr: {column: hr}}\n")
    recs = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert [r.subject for r in recs] == ["s0", "s1"] and [r.record_id for r in recs] == ["s0_run", "s1_run"]
    assert recs[0].fs == {"ppg": 125.0, "acc_x": 25.0} and recs[0].duration("acc_x") == pytest.approx(40.0, abs=0.1)
    lab = recs[1].labels["hr"]
    assert lab.kind == "window" and np.allclose(np.diff(lab.times), 2.0) and abs(np.nanmedian(lab.values) - 80) < 2


def test_an_npz_subject_member_names_its_subject(tmp_path):
    """Two recordings of one person, each NPZ holding subject="P1": the plain NPZ reader read 1 subject, a dataset.yaml
    over the same files 2 (their stems): a split could hold out p1_1 and train on p1_0, the same person, with no
    word (`subject: {column: subject}` was 'column missing'). The member is the subject now, by default or named."""
    rec = tmp_path / "rec"
    rec.mkdir()
    for k in range(2):
        r, _, _ = wrist(k)
        np.savez(rec / f"p1_{k}.npz", ppg=r.signals["ppg"], fs=float(FS), subject="P1")
    np.savez(rec / "p2_0.npz", ppg=wrist(2)[0].signals["ppg"], fs=float(FS), subject="P2")
    for rule in ("", "subject: {column: subject}\n"):
        (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n" + rule)
        recs = load_dataset_file(tmp_path / "dataset.yaml").records()
        assert [(r.record_id, r.subject) for r in recs] == [("p1_0", "P1"), ("p1_1", "P1"), ("p2_0", "P2")]
        assert list(recs[0].signals) == ["ppg"]                              # the id is no channel
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n"
                                           "subject: {pattern: '^(p\\d_\\d)'}\n")       # a rule given: it wins
    assert [r.subject for r in load_dataset_file(tmp_path / "dataset.yaml").records()] == ["p1_0", "p1_1", "p2_0"]


def test_wfdb_channels_by_position_gain_and_header_rate(tmp_path):
    import wfdb
    rec = tmp_path / "rec"
    rec.mkdir()
    for i in range(2):
        r, hr, _ = wrist(i)
        sig = np.column_stack([r.signals["ppg"], r.signals["acc_x"], hr])
        wfdb.wrsamp(f"s{i}_run", fs=FS, units=["au", "mg", "bpm"], sig_name=["PLETH", "ACCX", "HR"], p_signal=sig,
                    fmt=["16"] * 3, write_dir=str(rec))
    text = ("format: wfdb\nroot: rec\nchannels: {ppg: PLETH, acc_x: {column: 1, gain: 0.001, unit: g}}\n"
            "subject: {pattern: '^(s\\d)_'}\nlabels: {hr: {column: HR}}\n")
    (tmp_path / "dataset.yaml").write_text(text)
    recs = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert len(recs) == 2 and recs[0].fs["ppg"] == 125.0                 # the rate from the .hea header
    r0, _, _ = wrist(0)
    assert np.allclose(recs[0].signals["acc_x"], 0.001 * r0.signals["acc_x"], atol=1e-3 * 0.001 * 10)
    assert abs(np.nanmedian(recs[0].labels["hr"].values) - 70) < 2
    (tmp_path / "dataset.yaml").write_text(text + "fs: 100\n")           # disagrees with the header
    with pytest.raises(SqtoolError, match="fs 100 Hz disagrees with the file's header"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


def test_edf_with_per_recording_hr_files(tmp_path):
    rec = tmp_path / "rec"
    (tmp_path / "hr").mkdir()
    rec.mkdir()
    for i in range(2):
        r, _, _ = wrist(i)
        write_edf(rec / f"s{i}.edf", {"PPG wrist": r.signals["ppg"], "ACC X": r.signals["acc_x"]}, FS, {"ACC X": "g"})
        lab = r.labels["hr"]
        np.savetxt(tmp_path / "hr" / f"s{i}.csv", np.column_stack([lab.times, lab.values]), delimiter=",",
                   header="start,hr", comments="", fmt="%.3f")
    (tmp_path / "dataset.yaml").write_text(
        "format: edf\nroot: rec\nchannels: {ppg: PPG wrist, acc_x: ACC X}\nlabels: {hr: {file: 'hr/{stem}.csv'}}\n")
    recs = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert [r.subject for r in recs] == ["s0", "s1"] and recs[0].fs["ppg"] == 125.0
    r1, _, _ = wrist(1)
    assert np.abs(recs[1].signals["ppg"] - r1.signals["ppg"]).max() < 1e-3     # int16 EDF round trip
    assert np.allclose(recs[1].labels["hr"].values, r1.labels["hr"].values, atol=1e-3)
    # a channel the file does not have: one line naming it and what the file has
    (tmp_path / "dataset.yaml").write_text("format: edf\nroot: rec\nchannels: {ppg: PLETH}\n")
    with pytest.raises(SqtoolError, match="channel 'ppg': column 'PLETH' missing \\(has PPG wrist, ACC X\\)"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


@pytest.fixture()
def csv_watch(tmp_path):
    """Three subjects, 70 s CSV at 125 Hz: ppg, rr (breaths/min per sample), artifact (per-sample flags)."""
    rec = tmp_path / "rec"
    rec.mkdir()
    for i in range(3):
        r, _, rr = wrist(i, seconds=70.0)
        flags = np.asarray(r.labels["artifact"].values, float)
        np.savetxt(rec / f"s{i}.csv", np.column_stack([np.arange(len(rr)) / FS, r.signals["ppg"], rr, flags]),
                   delimiter=",", header="time,ppg,rr,artifact", comments="", fmt="%.6f")
    return tmp_path


def test_time_domain_tasks_from_a_dataset_file(csv_watch):
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    y = csv_watch / "dataset.yaml"
    y.write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg}\nwindows: {window_s: 30, hop_s: 10}\n"
                 "labels: {rr: {column: rr}, quality: {column: artifact}}\n")
    base = get_model_cfg("resnet1d_siamq_tiny")
    rr = load_task("rr", str(y), task_model_cfg("rr", base))
    c = task_model_cfg("rr", base)
    assert rr.x.shape[1:] == c.input_shape and sorted(np.unique(rr.groups)) == ["s0", "s1", "s2"]
    assert len(rr) == 3 * 5                                        # (70 - 30) / 10 + 1 windows per recording
    for i in range(3):                                             # the rr column's window means, per subject
        assert abs(np.median(rr.y[rr.groups == f"s{i}", 0]) - (12 + 3 * i)) < 1.0
    assert rr.meta["dataset_file"] == str(y.resolve())
    q = load_task("quality", str(y), task_model_cfg("quality", base))
    assert set(np.unique(q.y)) <= {0.0, 1.0} and len(q) > 0 and len(np.unique(q.groups)) == 3


@pytest.mark.parametrize("task,label", [("af", "rhythm"), ("bp", "bp"), ("hr", "hr")])
def test_time_domain_task_without_its_label_is_refused(csv_watch, task, label):
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    y = csv_watch / "dataset.yaml"
    y.write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg}\nlabels: {rr: {column: rr}}\n")
    with pytest.raises(SqtoolError) as e:
        load_task(task, str(y), task_model_cfg(task, get_model_cfg("resnet1d_siamq_tiny")))
    msg = str(e.value)
    assert f"task '{task}' needs label '{label}'" in msg and "declares: rr" in msg and str(y.resolve()) in msg
    assert "\n" not in msg


def test_an_edf_without_a_recorded_start_date_has_no_wall_clock(tmp_path):
    """wfdb's converter writes 'Startdate not recorded' and the placeholder 01.01.85 00.00.00 (EDF+: 'Startdate X');
    the reader took the placeholder for the recording's start, and predict wrote 1985-01-01T00:00:30 as times."""
    rec = tmp_path / "rec"
    rec.mkdir()
    r, _, _ = wrist(0)
    write_edf(rec / "known.edf", {"PPG": r.signals["ppg"]}, FS, recording="Startdate 02-MAR-2024 X X X",
              start="02.03.2408.30.00")
    write_edf(rec / "unknown.edf", {"PPG": r.signals["ppg"]}, FS, recording="Startdate not recorded",
              start="01.01.8500.00.00")
    write_edf(rec / "x.edf", {"PPG": r.signals["ppg"]}, FS, recording="Startdate X X X X", start="01.01.8500.00.00")
    (tmp_path / "dataset.yaml").write_text("format: edf\nroot: rec\nchannels: {ppg: PPG}\n")
    recs = {r.record_id: r for r in load_dataset_file(tmp_path / "dataset.yaml").records()}
    assert recs["known"].meta["start_time"].startswith("2024-03-02T08:30:00")
    assert "start_time" not in recs["unknown"].meta and "start_time" not in recs["x"].meta
