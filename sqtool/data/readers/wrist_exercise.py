"""Wrist PPG During Exercise (Jarchi & Casson 2017, PhysioNet): wrist PPG + acc + gyro, chest ECG, 256 Hz.

    edf/s3_walk.edf     EDF, 15 channels at 256 Hz, taken BY POSITION (the EDF labels are cut to 16
                        characters): chest_ecg, wrist_ppg, gyro x/y/z (deg/s), low-noise accel x/y/z
                        (m/s^2), wide-range accel x/y/z (m/s^2), magnetometer x/y/z (Ga), sample times
    beats/s3_walk.txt   chest-ECG beat annotations, a WFDB annotation listing
                        (`Time  Sample #  Type  Sub Chan  Num  Aux`, first line a header, samples at 256 Hz)

Record: subject "s2".."s6", record_id = file stem (s3_walk), meta["activity"] = walk | run | low_resistance_bike |
high_resistance_bike, and the same as meta["condition"] (the whole recording's activity condition,
`record.window_conditions`: `sqtool bench`'s table by condition). Signals (all 256 Hz): ppg, acc_x/y/z (the low-noise
accelerometer in g = m/s^2 / 9.80665), gyro_x/y/z (deg/s), ecg (as stored; the header says mV but the values are of
order 1000). Wide-range accelerometer, magnetometer and time column are not returned.

There is no HR label in the database. labels["hr"] is the reference HR from the chest ECG, in TROIKA's
form: kind "window", times = window START seconds every 2 s, window_s 8, windows [2 i, 2 i + 8) s all
fully inside the record (W = floor((N / 256 - 8) / 2) + 1), value = 60 / mean RR of the R peaks in the
window, as TROIKA's truth (`sqtool.data.ecg.ecg_window_hr`: consensus of neurokit2 detectors). The
annotations are only a cross-check (in s4_run and s5_* many sit off the R peaks): windows where the ECG
value is doubtful (no clean R-peak train, detectors disagree, annotation HR missing or off by > max(5 BPM,
5 %); without a beat file also: only one detector clean) hold NaN, so scorers that ignore NaN truth leave
them out. labels["hr_annot"] is the annotation HR of every window (60 / their median RR, robust to a
missed annotation; NaN where it has < 2 beats). meta: hr_windows, hr_doubtful, hr_reasons {reason:
windows}, hr_detector, beats (the beat file, or None: then the reference comes from the ECG alone and
meta["hr_source"] says so).

Bad input -> SqtoolError naming the file: fewer than 15 channels (and which are missing), a rate that is
not 256 Hz, a beat file that does not belong to the recording (beats past its end, times that do not
match sample / 256, a stated time resolution other than 256).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.readers._common import check_plausible_labels, first_line, require_file
from sqtool.data.record import Label, Record

KIND = "wrist_exercise"
FS = 256.0
G = 9.80665
WINDOW_S, HOP_S = 8.0, 2.0
CHANNELS = ("chest_ecg", "wrist_ppg", "wrist_gyro_x", "wrist_gyro_y", "wrist_gyro_z",
            "wrist_low_noise_accel_x", "wrist_low_noise_accel_y", "wrist_low_noise_accel_z",
            "wrist_wide_range_accel_x", "wrist_wide_range_accel_y", "wrist_wide_range_accel_z",
            "wrist_mag_x", "wrist_mag_y", "wrist_mag_z", "time")
# record channel -> (EDF position, scale)
_OUT = {"ppg": (1, 1.0), "acc_x": (5, 1 / G), "acc_y": (6, 1 / G), "acc_z": (7, 1 / G),
        "gyro_x": (2, 1.0), "gyro_y": (3, 1.0), "gyro_z": (4, 1.0), "ecg": (0, 1.0)}
ACTIVITIES = ("walk", "run", "low_resistance_bike", "high_resistance_bike")
_EDF = re.compile(rf"^(s\d+)_({'|'.join(ACTIVITIES)})\.edf$", re.I)
# WFDB beat annotation codes (an annotation listing also holds non-beat lines such as '"' comments)
_BEAT_CODES = set("NLRBAaJSVrFejnE/fQ?")


def detect(files: list[Path]) -> bool:
    return any(_EDF.match(p.name) for p in files)


def list_items(files: list[Path]) -> list[Path]:
    return [p for p in files if _EDF.match(p.name)]


def beat_file(p: Path) -> Path | None:
    """The annotation file of EDF `p`: ../beats/<stem>.txt, beats/<stem>.txt, or <stem>.txt beside it."""
    for q in (p.parent.parent / "beats" / f"{p.stem}.txt", p.parent / "beats" / f"{p.stem}.txt",
              p.with_suffix(".txt")):
        if q.is_file():
            return q
    return None


def _seconds(s: str) -> float:
    """'0:06.063' / '1:02:03.5' -> seconds."""
    t = 0.0
    for part in s.split(":"):
        t = 60.0 * t + float(part)
    return t


def read_beats(path: Path, edf: Path, n_samples: int) -> np.ndarray:
    """(n,) beat sample indices of a WFDB annotation listing, checked against the recording."""
    p = require_file(path)
    try:
        lines = p.read_text(encoding="latin-1").splitlines()
    except OSError as e:
        raise SqtoolError(f"{p}: cannot read beat file ({first_line(e)})") from None
    if not lines or "sample" not in lines[0].lower():
        raise SqtoolError(f"{p}: not a WFDB annotation listing (first line should be the "
                          f"'Time  Sample #  Type ...' header)")
    beats, bad_time = [], None
    for k, line in enumerate(lines[1:], start=2):
        if m := re.search(r"time resolution:\s*([\d.]+)", line):
            if abs(float(m.group(1)) - FS) > 1e-6:
                raise SqtoolError(f"{p}: time resolution {m.group(1)} Hz, but {edf} is sampled at "
                                  f"{FS:g} Hz; beat file does not match the recording")
        f = line.split()
        if len(f) < 3 or f[2] not in _BEAT_CODES:
            continue
        try:
            t, s = _seconds(f[0].strip("[]")), int(f[1])
        except ValueError:
            raise SqtoolError(f"{p}: line {k} is not 'time sample type ...': {line.strip()!r}") from None
        if bad_time is None and abs(t - s / FS) > 0.01:    # times are printed to 1 ms
            bad_time = (k, f[0], s)
        beats.append(s)
    if not beats:
        raise SqtoolError(f"{p}: no beat annotations (type N, ...) found")
    b = np.asarray(beats, dtype=np.int64)
    if bad_time:
        k, t, s = bad_time
        raise SqtoolError(f"{p}: line {k} says time {t} but sample {s} = {s / FS:.3f} s at {FS:g} Hz; sample "
                          f"numbers are not at the {FS:g} Hz of {edf}")
    if b.min() < 0 or b.max() >= n_samples:
        raise SqtoolError(f"{p}: beat at sample {int(b.max())} ({b.max() / FS:.1f} s) but {edf} has "
                          f"{n_samples} samples ({n_samples / FS:.1f} s); beat file does not match the recording")
    return np.sort(b)


def _read_edf(p: Path):
    from wfdb.io.convert.edf import read_edf
    require_file(p)
    try:
        return read_edf(str(p))
    except Exception as e:  # noqa: BLE001 - wfdb raises ValueError/struct.error/IndexError on bad files
        raise SqtoolError(f"{p}: corrupt or truncated EDF file ({first_line(e)})") from None


def read_item(p: Path, ctx: dict) -> list[Record]:
    from sqtool.data.ecg import ecg_window_hr

    rec = _read_edf(p)
    x = rec.p_signal
    if x is None or x.ndim != 2:
        raise SqtoolError(f"{p}: EDF holds no signal samples")
    n_ch = x.shape[1]
    if n_ch < len(CHANNELS):
        raise SqtoolError(f"{p}: {n_ch} channels, expected {len(CHANNELS)}; missing (by position) "
                          f"{', '.join(CHANNELS[n_ch:])}")
    spf = getattr(rec, "samps_per_frame", None)
    if float(rec.fs) != FS or (spf is not None and len(set(spf)) > 1):
        raise SqtoolError(f"{p}: sampled at {rec.fs} Hz (samples per record {spf}); expected {FS:g} Hz "
                          f"on every channel")
    n = x.shape[0]
    m = _EDF.match(p.name)
    subject, activity = (m.group(1).lower(), m.group(2).lower()) if m else (p.stem, "")

    signals = {c: np.ascontiguousarray(x[:, i] * s, dtype=np.float64) for c, (i, s) in _OUT.items()}
    bfile = beat_file(p)
    beats = read_beats(bfile, p, n) if bfile else None
    starts, hr, flags, info = ecg_window_hr(signals["ecg"], FS, WINDOW_S, HOP_S, beats=beats)
    labels = {"hr": Label(values=np.where(flags, np.nan, hr), times=starts, unit="bpm", kind="window",
                          window_s=WINDOW_S)}
    if info["hr_annot"] is not None:
        labels["hr_annot"] = Label(values=info["hr_annot"], times=starts, unit="bpm", kind="window",
                                   window_s=WINDOW_S)
    meta = {"activity": activity, **({"condition": activity} if activity else {}),   # bench's table by condition
            "hr_windows": int(starts.size), "hr_doubtful": int(flags.sum()),
            "hr_reasons": info["reasons"], "hr_detector": info["detector"],
            "beats": str(bfile) if bfile else None,
            "hr_source": ("chest ECG R peaks, cross-checked with the beat annotations" if bfile else
                          "chest ECG R peaks alone (no beat file found)")}
    check_plausible_labels(labels, str(p))
    return [Record(dataset=KIND, subject=subject, record_id=p.stem, signals=signals,
                   fs={c: FS for c in signals}, labels=labels, meta=meta, source=str(p))]
