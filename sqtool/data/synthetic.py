"""Synthetic wrist PPG with known heart rate, respiratory rate, rhythm and artifacts.

The embedded default when no data is given, and the fixture for fast tests. Everything is drawn from
one `numpy.random.Generator` seeded by the caller, so a (seed, arguments) pair always gives the same
bytes. A 5-minute record at 125 Hz takes a few milliseconds.

How a record is made (all times in seconds):
1. Heart rate hr(t) (bpm) and respiratory rate rr(t) (breaths/min): constants, or knots spread evenly
   over the record and linearly interpolated (time-varying). Respiratory phase phi(t) = 2 pi int rr/60.
2. Beat times: RR_k = 60 / hr(t_k), then
     sinus: x (1 + rsa * sin phi(t_k))  (respiratory sinus arrhythmia = frequency modulation) + 1 % jitter
     af:    x lognormal(0, af_cv)       (irregularly irregular, no RSA)
3. Pulse per beat: a systolic and a smaller diastolic Gaussian whose widths scale with sqrt(RR), times
   (1 + am * sin phi) (amplitude modulation), plus baseline wander bw * sin phi and a slow random drift.
4. Artifacts (rate `artifacts` = expected fraction of time affected), each flagged per sample:
     motion bursts  2-10 s of arm motion at 1-3 Hz (+ harmonics, noise) on a random 3-D direction in the
                    accelerometer; the PPG gets the motion projected with a random gain (correlated
                    artifact, as on a wrist) and a perfusion drop;
     clipping       the PPG saturates at an ADC rail over a 1-5 s stretch;
     dropouts       the sensor loses contact: PPG stuck at a constant for 0.5-3 s;
   plus white noise on every sample (`noise` = std relative to the pulse amplitude).
5. Accelerometer (g): gravity on a fixed random orientation + 5 mg noise + the motion bursts.

Labels (the TROIKA conventions, so every consumer reads synthetic and real data the same way):
    "hr"       kind="window", window_s=8, times = starts 0, 2, 4 ... s; value = 60 / mean RR of the beats
               inside the window (what an ECG reference gives), bpm
    "rr"       kind="window", same windows; mean rr(t) over the window, breaths/min
    "rhythm"   kind="class", classes ("sinus", "af"), value 0 or 1
    "artifact" kind="flags", per-sample 0/1 at the PPG rate
"""
from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from sqtool.core import SqtoolError
from sqtool.data.record import Label, Record

RHYTHMS = ("sinus", "af")
LABEL_WINDOW_S, LABEL_HOP_S = 8.0, 2.0


def _profile(v: float | Sequence[float], t: np.ndarray, duration_s: float, what: str) -> np.ndarray:
    """A constant or evenly spaced knots, linearly interpolated at times t."""
    knots = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if knots.size == 0 or not np.all(np.isfinite(knots)) or np.any(knots <= 0):
        raise SqtoolError(f"synthetic: {what} must be positive numbers, got {v!r}")
    if knots.size == 1:
        return np.full(t.shape, knots[0])
    return np.interp(t, np.linspace(0.0, duration_s, knots.size), knots)


def _beat_times(duration_s: float, hr_at, phase_at, rhythm: str, rsa: float, af_cv: float,
                rng: np.random.Generator) -> np.ndarray:
    t = float(rng.uniform(0.0, 0.6))
    out = []
    while t < duration_s + 2.0:
        out.append(t)
        rr = 60.0 / float(hr_at(t))
        if rhythm == "af":
            rr *= float(rng.lognormal(0.0, af_cv))
        else:
            rr *= 1.0 + rsa * float(np.sin(phase_at(t))) + 0.01 * float(rng.standard_normal())
        t += float(np.clip(rr, 0.25, 2.5))
    return np.asarray(out)


def _pulse_train(n: int, fs: float, beats: np.ndarray, amp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of two-Gaussian pulses, one per beat (systolic peak + diastolic wave)."""
    y = np.zeros(n)
    rr = np.diff(beats, append=beats[-1] + (beats[-1] - beats[-2] if beats.size > 1 else 0.8))
    a2 = float(rng.uniform(0.3, 0.55))           # this subject's diastolic wave height
    for tk, rk in zip(beats, rr):
        s = np.sqrt(np.clip(rk, 0.3, 2.0) / 0.8)
        lo, hi = int((tk - 0.1) * fs), int((tk + 1.2 * s) * fs) + 1
        lo, hi = max(lo, 0), min(hi, n)
        if hi <= lo:
            continue
        tau = np.arange(lo, hi) / fs - tk
        a = amp[min(max(int(tk * fs), 0), n - 1)]
        y[lo:hi] += a * (np.exp(-0.5 * ((tau - 0.16 * s) / (0.07 * s)) ** 2)
                         + a2 * np.exp(-0.5 * ((tau - 0.42 * s) / (0.11 * s)) ** 2))
    return y


def _segments(duration_s: float, rate: float, dur_range: tuple[float, float],
              rng: np.random.Generator) -> list[tuple[float, float]]:
    """Random (start, end) stretches covering about `rate` of the time (Poisson count)."""
    if rate <= 0:
        return []
    mean_dur = 0.5 * (dur_range[0] + dur_range[1])
    k = int(rng.poisson(rate * duration_s / mean_dur))
    out = []
    for _ in range(k):
        d = float(rng.uniform(*dur_range))
        s = float(rng.uniform(0.0, max(duration_s - d, 0.0)))
        out.append((s, s + d))
    return out


def motion_signal(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """One motion burst of n samples (unit scale): arm swing at 1-3 Hz with a harmonic, a random
    envelope, and broadband jerk noise."""
    t = np.arange(n) / fs
    f = float(rng.uniform(1.0, 3.0))
    ph = rng.uniform(0, 2 * np.pi, size=2)
    m = np.sin(2 * np.pi * f * t + ph[0]) + 0.4 * np.sin(4 * np.pi * f * t + ph[1])
    env = np.sqrt(np.clip(np.sin(np.pi * np.arange(n) / max(n - 1, 1)), 0.0, 1.0))          # ramps in and out
    return env * (m + 0.3 * rng.standard_normal(n))


def corrupt(x: np.ndarray, fs: float, rng: np.random.Generator, kind: str | None = None,
            severity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A corrupted copy of PPG window `x` and its per-sample artifact flags: one motion burst, a clipped
    stretch, a dropout or strong baseline wander (`kind`, random if None). Used to make a synthetic
    poor partner when a subject has no real poor window (pairs --synthetic-fallback)."""
    x = np.asarray(x, dtype=np.float64).copy()
    n = x.size
    flags = np.zeros(n, dtype=np.uint8)
    kinds = ("motion", "clip", "dropout", "wander")
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    scale = float(np.std(x)) or 1.0
    seg = max(int(n * rng.uniform(0.4, 0.8)), 1)
    s = int(rng.integers(0, n - seg + 1))
    sl = slice(s, s + seg)
    if kind == "motion":
        x[sl] += severity * float(rng.uniform(2.0, 5.0)) * scale * motion_signal(seg, fs, rng)
    elif kind == "clip":
        rail = np.quantile(x, float(rng.uniform(0.5, 0.7)))
        x[sl] = np.minimum(x[sl], rail)
    elif kind == "dropout":
        x[sl] = x[s]
    elif kind == "wander":
        t = np.arange(n) / fs
        x += severity * float(rng.uniform(3.0, 6.0)) * scale * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t
                                                                    + rng.uniform(0, 2 * np.pi))
        sl = slice(0, n)
    else:
        raise SqtoolError(f"synthetic: unknown artifact kind '{kind}' (known: {', '.join(kinds)})")
    flags[sl] = 1
    x += 0.2 * severity * scale * rng.standard_normal(n)
    return x, flags


def _window_labels(beats: np.ndarray, rr_t: np.ndarray, duration_s: float, fs: float):
    n_win = int((duration_s - LABEL_WINDOW_S) // LABEL_HOP_S) + 1 if duration_s >= LABEL_WINDOW_S else 0
    starts = np.arange(n_win) * LABEL_HOP_S
    hr = np.empty(n_win)
    rr = np.empty(n_win)
    for i, s in enumerate(starts):
        b = beats[(beats >= s) & (beats < s + LABEL_WINDOW_S)]
        if b.size >= 2:
            hr[i] = 60.0 / float(np.mean(np.diff(b)))
        else:  # cannot happen for hr >= 15 bpm; keep defined anyway
            near = beats[np.argsort(np.abs(beats - (s + 4.0)))[:2]]
            hr[i] = 60.0 / max(abs(float(near[1] - near[0])), 1e-3)
        lo, hi = int(round(s * fs)), int(round((s + LABEL_WINDOW_S) * fs))
        rr[i] = float(np.mean(rr_t[lo:hi]))
    return starts, hr, rr


def synth_record(duration_s: float = 300.0, fs: float = 125.0, hr_bpm: float | Sequence[float] = 72.0,
                 rr_bpm: float | Sequence[float] = 15.0, rhythm: str = "sinus", artifacts: float = 0.15,
                 noise: float = 0.03, seed: int = 0, subject: str = "syn000", record_id: str | None = None,
                 am: float = 0.15, bw: float = 0.2, rsa: float = 0.04, af_cv: float = 0.18,
                 clip_rate: float | None = None, dropout_rate: float | None = None) -> Record:
    """One synthetic wrist recording: channels ppg, acc_x, acc_y, acc_z at `fs`, with labels
    hr / rr (8 s windows, 2 s hop), rhythm, and per-sample artifact flags (see module docstring)."""
    if rhythm not in RHYTHMS:
        raise SqtoolError(f"synthetic: rhythm must be one of {', '.join(RHYTHMS)}, got '{rhythm}'")
    if not (duration_s > 0 and np.isfinite(duration_s)) or not (fs > 0 and np.isfinite(fs)):
        raise SqtoolError(f"synthetic: duration and fs must be positive (got {duration_s}, {fs})")
    if not 0.0 <= artifacts <= 1.0:
        raise SqtoolError(f"synthetic: artifacts is a fraction of time in [0, 1], got {artifacts}")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs
    hr_t = _profile(hr_bpm, t, duration_s, "hr_bpm")
    rr_t = _profile(rr_bpm, t, duration_s, "rr_bpm")
    phase = 2 * np.pi * np.cumsum(rr_t / 60.0) / fs + rng.uniform(0, 2 * np.pi)

    def hr_at(tt):
        return np.interp(tt, t, hr_t)

    def phase_at(tt):
        return np.interp(tt, t, phase)

    beats = _beat_times(duration_s, hr_at, phase_at, rhythm, rsa, af_cv, rng)
    ppg = _pulse_train(n, fs, beats, 1.0 + am * np.sin(phase), rng)
    ppg += bw * np.sin(phase)                                                      # respiratory baseline
    drift = np.cumsum(rng.standard_normal(n)) / np.sqrt(fs * 60.0)                 # slow random walk
    ppg += 0.3 * (drift - np.linspace(drift[0], drift[-1], n))

    # accelerometer at rest: gravity on a random fixed orientation + sensor noise (g)
    g = rng.normal(size=3)
    g /= np.linalg.norm(g)
    acc = g[:, None] * np.ones((3, n)) + 0.005 * rng.standard_normal((3, n))
    flags = np.zeros(n, dtype=np.uint8)

    for s, e in _segments(duration_s, artifacts, (2.0, 10.0), rng):               # motion bursts
        lo, hi = int(s * fs), min(int(e * fs), n)
        if hi - lo < 2:
            continue
        m = motion_signal(hi - lo, fs, rng)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        a_g = float(rng.uniform(0.3, 1.5))
        acc[:, lo:hi] += a_g * direction[:, None] * m
        ppg[lo:hi] *= float(rng.uniform(0.3, 0.8))                                # perfusion/contact drop
        ppg[lo:hi] += float(rng.uniform(1.0, 3.0)) * a_g * m                      # motion in the PPG
        flags[lo:hi] = 1
    rail = float(np.quantile(ppg, 0.8))
    for s, e in _segments(duration_s, artifacts * 0.2 if clip_rate is None else clip_rate, (1.0, 5.0), rng):
        lo, hi = int(s * fs), min(int(e * fs), n)
        ppg[lo:hi] = np.minimum(ppg[lo:hi], rail)                                 # ADC saturation
        flags[lo:hi] = 1
    for s, e in _segments(duration_s, artifacts * 0.1 if dropout_rate is None else dropout_rate, (0.5, 3.0), rng):
        lo, hi = int(s * fs), min(int(e * fs), n)
        if hi > lo:
            ppg[lo:hi] = ppg[lo]                                                  # contact lost
            flags[lo:hi] = 1
    ppg += noise * rng.standard_normal(n)

    starts, hr_w, rr_w = _window_labels(beats, rr_t, duration_s, fs)
    labels = {
        "hr": Label(values=hr_w, times=starts, unit="bpm", kind="window", window_s=LABEL_WINDOW_S),
        "rr": Label(values=rr_w, times=starts, unit="breaths/min", kind="window", window_s=LABEL_WINDOW_S),
        "rhythm": Label(values=np.asarray(RHYTHMS.index(rhythm)), unit="class", kind="class", classes=RHYTHMS),
        "artifact": Label(values=flags, times=None, unit="flag", kind="flags", fs=fs),
    }
    signals = {"ppg": ppg, "acc_x": acc[0], "acc_y": acc[1], "acc_z": acc[2]}
    return Record(dataset="synthetic", subject=subject, record_id=record_id or f"{subject}_r0",
                  signals=signals, fs={c: float(fs) for c in signals}, labels=labels,
                  meta={"seed": seed, "rhythm": rhythm, "artifacts": artifacts, "beats": beats[beats < duration_s]},
                  source=f"synthetic:seed={seed}")


def synth_corpus_specs(n_subjects: int = 8, duration_s: float = 300.0, seed: int = 0, fs: float = 125.0,
                       af_fraction: float = 0.25, artifacts: float | tuple[float, float] = (0.05, 0.35),
                       records_per_subject: int = 1, prefix: str = "syn", **kw) -> list[dict]:
    """The `synth_record` keyword arguments of every record of `synth_corpus` (cheap: nothing generated),
    so that workers can generate records lazily, one at a time. Subjects are `prefix` + 000, 001, ...; a prefix
    other than "syn" also draws from its own random stream (seeded by seed and the prefix), so its subjects are
    neither named nor generated as any "syn" corpus's (the embedded recordings of bench and predict, eval000...)."""
    if n_subjects < 1 or records_per_subject < 1:
        raise SqtoolError("synthetic: need at least one subject and one record per subject")
    rng = np.random.default_rng(seed if prefix == "syn" else [seed, zlib.crc32(prefix.encode())])
    n_af = int(round(af_fraction * n_subjects))
    if af_fraction > 0 and n_subjects >= 2:
        n_af = max(n_af, 1)
    af = np.zeros(n_subjects, dtype=bool)
    af[rng.permutation(n_subjects)[:n_af]] = True
    specs = []
    for i in range(n_subjects):
        subject = f"{prefix}{i:03d}"
        hr0 = float(rng.uniform(55, 95))
        rr0 = float(rng.uniform(10, 22))
        for j in range(records_per_subject):
            hr = [hr0, float(np.clip(hr0 + rng.uniform(-15, 15), 40, 170)),
                  float(np.clip(hr0 + rng.uniform(-15, 15), 40, 170))]
            rr = [rr0, float(np.clip(rr0 + rng.uniform(-4, 4), 6, 30))]
            art = float(rng.uniform(*artifacts)) if isinstance(artifacts, (tuple, list)) else float(artifacts)
            specs.append(dict(duration_s=duration_s, fs=fs, hr_bpm=hr, rr_bpm=rr, rhythm="af" if af[i] else "sinus",
                              artifacts=art, seed=int(rng.integers(2**31)), subject=subject,
                              record_id=f"{subject}_r{j}", **kw))
    return specs


def synth_corpus(n_subjects: int = 8, duration_s: float = 300.0, seed: int = 0, fs: float = 125.0,
                 af_fraction: float = 0.25, artifacts: float | tuple[float, float] = (0.05, 0.35),
                 records_per_subject: int = 1, prefix: str = "syn", **kw) -> list[Record]:
    """A small corpus: each subject gets its own resting HR (55-95 bpm, drifting +-15 bpm), RR
    (10-22 breaths/min, drifting), rhythm (AF with probability af_fraction, at least one AF subject when
    n_subjects >= 2 and af_fraction > 0) and artifact level (uniform in `artifacts` if a range)."""
    return [synth_record(**s) for s in synth_corpus_specs(n_subjects, duration_s, seed, fs, af_fraction, artifacts,
                                                          records_per_subject, prefix, **kw)]


__all__ = ["synth_record", "synth_corpus", "synth_corpus_specs", "corrupt", "motion_signal", "RHYTHMS"]
