"""Signal quality index (SQI) per PPG window, 0..1, threshold 0.5 (<= 0.5 = poor / artifact).

SiamQuality pairs a good window with a poor one of the same subject; "poor" means an SQI <= 0.5. This
module computes that index from the raw (not normalised) PPG windows, vectorised over windows with
numpy (only the beat detector loops, one `find_peaks` call per window).

Component indices (each (W,), all in 0..1 unless said otherwise):

    template     Orphanidou et al. 2015 template matching: detect beats (peaks of the 0.5-8 Hz band-passed
                 signal at least 0.33 s apart), average the beats (each cut +-median RR / 2 around its
                 peak) into a template, and take the mean Pearson correlation of the beats with it
                 (`template_corr`, -1..1). Mapped piecewise-linearly 0.5 -> 0, 0.86 -> 0.5 (Orphanidou's
                 acceptability threshold), 1 -> 1. Halved when the physiological rules fail: HR outside
                 40-180 bpm, a gap > 3 s between beats, or fewer than 3 beats. Orphanidou's third rule
                 (max/min RR < 2.2) is NOT used: atrial fibrillation is irregular by nature and its windows
                 must not be scored as artifact.
    spectral     spectral concentration: share of the 0.5-8 Hz power within +-0.15 Hz of the dominant
                 pulse frequency f0 (0.6-3.3 Hz, i.e. 36-200 bpm) and of its 2nd harmonic (`spec_conc`);
                 mapped linearly 0.1 -> 0, 0.5 -> 1.
    kurtosis     excess kurtosis of the band-passed window (`kurt`): a clean pulse wave is near -1..1;
                 spikes and bursts make it heavy-tailed. Mapped 1 -> 1 down to 6 -> 0.
    zcr          zero-crossing agreement: the zero-crossing rate of the band-passed signal is ~2 f0 for a
                 clean pulse and higher for noise; 1 when ZCR/2 is within 25 % of f0, falling to 0 at 100 %.
    statistical  mean of spectral, kurtosis and zcr. Skewness (`skew`, Elgendi's favourite) is reported
                 but left out of the score: its sign follows the sensor's polarity (camera PPG is
                 inverted: on BUT PPG good records have the LOWER skewness, AUROC 0.37). The perfusion
                 index (AC/DC) is left out too: many datasets ship high-passed or normalised signals
                 without their DC level.
    motion       accelerometer motion energy (only when `acc` is given): RMS of the band-passed (0.5-8 Hz)
                 axes, relative to the window's median acceleration magnitude (gravity, so the index is
                 unit-free: 'g' whatever the sensor's units); `motion_g`; index 1 / (1 + (e / 0.1 g)^2).
    flat_frac    fraction of samples in flat runs (>= max(4, 0.15 s) samples with |diff| <= 1e-4 x range):
                 dropouts, a detached sensor, a flat line.
    clip_frac    fraction of samples in flat runs sitting at the window's max or min (within 2 % of the
                 range): clipping / ADC saturation.

Combined score:
    base   = 0.5 * template + 0.5 * statistical
    score  = base * (0.4 + 0.6 * motion  if acc given) * max(0, 1 - max(flat_frac, clip_frac) / 0.25)
A window with NaN/Inf samples, or fewer than 2 s of samples, scores 0. The mapping constants come from
the literature (Orphanidou's 0.86) and from synthetic data; they were not fitted to the human labels
the benchmark checks them against (benchmarks/data_quality_pairs.py: BUT PPG, multi-wavelength PPG).
"""
from __future__ import annotations

import numpy as np

from sqtool.core import DEFAULT_BAND, SqtoolError, add_bool_flag, check_fs, check_window_s
from sqtool.core.runs import shell_command

THRESHOLD = 0.5
BAND = DEFAULT_BAND
COMPONENTS = ("template", "statistical", "spectral", "kurtosis", "zcr", "motion", "flat_frac", "clip_frac")


def _ramp(x, x0, x1):
    return np.clip((x - x0) / (x1 - x0), 0.0, 1.0)


def _filtered(x: np.ndarray, fs: float) -> np.ndarray:
    from sqtool.data.preprocess import bandpass

    hi = min(BAND[1], 0.45 * fs)
    return bandpass(x, fs, BAND[0], hi, order=2, axis=-1)


# ----------------------------------------------------------------------------- flat line / clipping

def flat_run(fs: float) -> int:
    """Samples a run of near-equal values must span to count as flat: 0.15 s, at least 4."""
    return max(4, int(round(0.15 * fs)))


def long_runs(small: np.ndarray, min_run: int) -> np.ndarray:
    """small (W, T-1) bool: |diff| small between samples t and t+1. Returns (W, T) bool: samples inside
    a run of >= min_run consecutive near-equal samples (i.e. >= min_run - 1 small diffs)."""
    W, Tm1 = small.shape
    k = min_run - 1
    if Tm1 < k:
        return np.zeros((W, Tm1 + 1), dtype=bool)
    c = np.concatenate([np.zeros((W, 1), np.int64), np.cumsum(small, axis=1)], axis=1)  # (W, T)
    full = (c[:, k:] - c[:, :-k]) == k                 # (W, T-k): diffs s..s+k-1 all small
    # mark samples s .. s+k (k+1 samples) for every start s with full run: dilation via cumsum
    start = np.zeros((W, Tm1 + 2), np.int64)
    start[:, : full.shape[1]] += full
    start[:, k + 1: k + 1 + full.shape[1]] -= full
    return np.cumsum(start, axis=1)[:, : Tm1 + 1] > 0


def flat_clip_fractions(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(flat_frac, clip_frac), each (W,), on raw windows x (W, T)."""
    lo = x.min(axis=1, keepdims=True)
    hi = x.max(axis=1, keepdims=True)
    rng = hi - lo
    small = np.abs(np.diff(x, axis=1)) <= 1e-4 * rng + 1e-12          # (W, T-1)
    runs = long_runs(small, flat_run(fs))          # (W, T)
    flat = runs.mean(axis=1)
    at_rail = (x >= hi - 0.02 * rng) | (x <= lo + 0.02 * rng)
    clip = (runs & at_rail).mean(axis=1)
    const = rng[:, 0] <= 1e-12
    flat[const] = 1.0
    clip[const] = 1.0
    return flat, clip


# ----------------------------------------------------------------------------- template matching

def template_matching(xf: np.ndarray, fs: float, f0: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orphanidou-style index on band-passed windows xf (W, T): (template_corr, rules_ok, hr_bpm).
    `f0` (W,), the dominant pulse frequency, sets the minimum beat distance to 0.6 / f0 so that a
    dicrotic wave is not counted as a beat (never below 0.33 s = 180 bpm)."""
    from scipy.signal import find_peaks

    W, T = xf.shape
    corr = np.zeros(W)
    ok = np.zeros(W, dtype=bool)
    hr = np.full(W, np.nan)
    spread = np.percentile(xf, 95, axis=1) - np.percentile(xf, 5, axis=1)
    for i in range(W):
        dist = max(1, int(fs * max(0.33, 0.6 / f0[i] if f0 is not None else 0.0)))
        if spread[i] <= 0:
            continue
        p, _ = find_peaks(xf[i], distance=dist, prominence=0.3 * spread[i])
        if p.size < 3:
            continue
        rr = np.diff(p) / fs
        hr[i] = 60.0 / rr.mean()
        ok[i] = 40.0 <= hr[i] <= 180.0 and rr.max() <= 3.0
        half = int(np.median(np.diff(p))) // 2
        p = p[(p - half >= 0) & (p + half < T)]
        if p.size < 2 or half < 2:
            continue
        beats = xf[i][p[:, None] + np.arange(-half, half + 1)[None, :]]     # (B, L)
        beats = beats - beats.mean(axis=1, keepdims=True)
        tmpl = beats.mean(axis=0)
        num = beats @ tmpl
        den = np.linalg.norm(beats, axis=1) * np.linalg.norm(tmpl) + 1e-12
        corr[i] = float(np.mean(num / den))
    return corr, ok, hr


# ----------------------------------------------------------------------------- statistical

def statistical_indices(xf: np.ndarray, fs: float) -> dict[str, np.ndarray]:
    """Spectral concentration, excess kurtosis, zero-crossing rate and dominant frequency, (W,) each."""
    W, T = xf.shape
    nfft = max(2048, 1 << int(np.ceil(np.log2(T))))
    spec = np.abs(np.fft.rfft(xf * np.hanning(T)[None, :], n=nfft, axis=1)) ** 2   # (W, F)
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = (f >= BAND[0]) & (f <= min(BAND[1], 0.45 * fs))
    total = spec[:, band].sum(axis=1) + 1e-20
    pulse = (f >= 0.6) & (f <= 3.3)
    f0 = f[pulse][np.argmax(spec[:, pulse], axis=1)]                                 # (W,)
    near = (np.abs(f[None, :] - f0[:, None]) <= 0.15) | (np.abs(f[None, :] - 2 * f0[:, None]) <= 0.15)
    conc = (spec * (near & band[None, :])).sum(axis=1) / total

    xc = xf - xf.mean(axis=1, keepdims=True)
    m2 = (xc ** 2).mean(axis=1)
    m3 = (xc ** 3).mean(axis=1)
    m4 = (xc ** 4).mean(axis=1)
    safe = np.where(m2 > 0, m2, 1.0)
    skew = np.where(m2 > 0, m3 / safe ** 1.5, 0.0)
    kurt = np.where(m2 > 0, m4 / safe ** 2 - 3.0, 0.0)
    zc = (np.signbit(xc[:, 1:]) != np.signbit(xc[:, :-1])).sum(axis=1) / (T / fs)   # crossings / s
    return {"spec_conc": conc, "f0_hz": f0, "skew": skew, "kurt": kurt, "zcr_hz": zc}


def motion_energy(acc: np.ndarray, fs: float) -> np.ndarray:
    """acc (W, 3, T) axes or (W, T) magnitude -> motion energy in g (W,).

    3 axes: sqrt of the summed variances of the band-passed axes (rotation-invariant, sees motion in
    every direction), divided by the median magnitude (gravity) so any unit reads as g. A magnitude
    only: std of its band-passed signal over its median (blind to motion across gravity)."""
    acc = np.asarray(acc, dtype=np.float64)
    if acc.ndim == 3:
        g = np.median(np.sqrt((acc ** 2).sum(axis=1)), axis=1)                       # (W,)
        e = np.sqrt((_filtered(acc, fs) ** 2).mean(axis=2).sum(axis=1))              # (W,)
    else:
        g = np.median(np.abs(acc), axis=1)
        e = _filtered(acc, fs).std(axis=1)
    return np.where(g > 1e-6, e / np.where(g > 1e-6, g, 1.0), e)


# ----------------------------------------------------------------------------- the score

def quality_indices(ppg: np.ndarray, fs: float, acc: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All component indices and the combined "score", each (W,). ppg: raw windows (W, T) or (T,);
    acc: (W, 3, T) or (W, T) (or (3, T) / (T,) with a 1-D ppg), any units, or None."""
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
        if acc is not None:
            acc = np.asarray(acc)[None, ...]
    if x.ndim != 2:
        raise SqtoolError(f"quality: ppg windows must be (W, T) or (T,), got shape {x.shape}")
    if fs is None or not np.isfinite(fs) or fs <= 0:
        raise SqtoolError(f"quality: sampling rate must be > 0, got {fs}")
    W, T = x.shape
    if T < 2 * fs:
        raise SqtoolError(f"quality: windows of {T} samples ({T / fs:.2f} s) are too short; need >= 2 s")
    finite = np.isfinite(x).all(axis=1)
    x = np.where(np.isfinite(x), x, 0.0)

    flat, clip = flat_clip_fractions(x, fs)
    xf = _filtered(x, fs)
    st = statistical_indices(xf, fs)
    corr, ok, hr = template_matching(xf, fs, st["f0_hz"])

    q_template = np.where(corr < 0.86, 0.5 * _ramp(corr, 0.5, 0.86), 0.5 + 0.5 * _ramp(corr, 0.86, 1.0))
    q_template = q_template * np.where(ok, 1.0, 0.5)
    q_spec = _ramp(st["spec_conc"], 0.1, 0.5)
    q_kurt = 1.0 - _ramp(st["kurt"], 1.0, 6.0)
    rel = np.abs(st["zcr_hz"] / 2.0 - st["f0_hz"]) / st["f0_hz"]
    q_zcr = 1.0 - _ramp(rel, 0.25, 1.0)
    q_stat = (q_spec + q_kurt + q_zcr) / 3.0

    score = 0.5 * q_template + 0.5 * q_stat
    out = {"template": q_template, "statistical": q_stat, "spectral": q_spec, "kurtosis": q_kurt, "zcr": q_zcr,
           "flat_frac": flat, "clip_frac": clip, "template_corr": corr, "hr_bpm": hr, **st}
    if acc is not None:
        acc = np.asarray(acc, dtype=np.float64)
        if acc.shape[0] != W or acc.shape[-1] != T:
            raise SqtoolError(f"quality: acc shape {acc.shape} does not match ppg windows {(W, T)}")
        e = motion_energy(np.where(np.isfinite(acc), acc, 0.0), fs)
        q_motion = 1.0 / (1.0 + (e / 0.1) ** 2)
        score = score * (0.4 + 0.6 * q_motion)
        out["motion"] = q_motion
        out["motion_g"] = e
    score = score * np.clip(1.0 - np.maximum(flat, clip) / 0.25, 0.0, 1.0)
    out["score"] = np.where(finite, np.clip(score, 0.0, 1.0), 0.0)
    return out


def quality_score(ppg: np.ndarray, fs: float, acc: np.ndarray | None = None,
                  components: bool = False):
    """Combined SQI (W,) in 0..1 (> 0.5 good, <= 0.5 poor); with components=True also the dict of
    component indices (see module docstring)."""
    q = quality_indices(ppg, fs, acc)
    return (q["score"], q) if components else q["score"]


def is_good(score: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    return np.asarray(score) > threshold


# ----------------------------------------------------------------------------- records and the CLI

ACC = ("acc_x", "acc_y", "acc_z")


def record_quality(record, window_s: float = 10.0, hop_s: float | None = None, fs: float | None = None,
                   channel: str | None = None) -> dict:
    """Score one record: windows of the raw PPG (resampled to `fs` if given), with the accelerometer
    when the record has all three axes. Returns {"t0", "score", components...}; a window holding a NaN/Inf
    sample (a gap) has no score (NaN), and "nonfinite" (W,) marks those when there are any."""
    from sqtool.data.preprocess import nonfinite_windows, record_signals, sliding_windows, window_starts

    ch = channel or ("ppg" if "ppg" in record.signals else record.primary_channel())
    chans = [ch] + ([*ACC] if all(a in record.signals for a in ACC) else [])
    sig, f = record_signals(record, chans, fs if fs is not None else record.fs[ch], band=None)  # (C, N) raw
    hop_s = window_s if hop_s is None else hop_s
    win, hop = int(round(window_s * f)), int(round(hop_s * f))
    n = sig.shape[1]
    if n < win:
        raise SqtoolError(f"{record.source or record.record_id}: record is {n / f:g} s long, shorter than one "
                          f"{window_s:g} s quality window (pass a shorter --window-s)")
    if win < 2 or hop < 1:
        raise SqtoolError(f"quality window {window_s:g} s / hop {hop_s:g} s at {f:g} Hz is under 2 samples")
    w = sliding_windows(sig, win, hop)                  # (C, W, T)
    q = quality_indices(w[0], f, np.moveaxis(w[1:], 0, 1) if len(chans) == 4 else None)
    q["t0"] = window_starts(n, win, hop) / f
    gap = nonfinite_windows(record, chans, q["t0"], window_s)
    if gap.any():
        q["score"], q["nonfinite"] = np.where(gap, np.nan, q["score"]), gap
    return q


def register_cli(sub) -> None:
    """Add `sqtool data quality --data PATH` to the `sqtool data` sub-parsers."""
    import argparse
    p = sub.add_parser("quality", help="score the signal quality of every window (0..1, <= 0.5 = poor)",
                       description="Score the signal quality index of every window of a dataset/file and "
                                   "print a per-record summary (fraction of good windows). The index combines "
                                   "template correlation, spectral concentration, kurtosis, zero crossings, "
                                   "flat/clipped runs and accelerometer energy.")
    p.add_argument("--data", default=None, metavar="PATH", help="dataset folder or recording file (required)")
    p.add_argument("path", nargs="?", default=None, help=argparse.SUPPRESS)      # deprecated: use --data
    p.add_argument("--kind", default=None, metavar="KIND", help="dataset kind (default: detected from the files)")
    p.add_argument("--window-s", type=float, default=10.0, metavar="S", help="window length, s (default: 10)")
    p.add_argument("--hop-s", type=float, default=None, metavar="S", help="hop, s (default: the window length)")
    p.add_argument("--fs", type=float, default=None, metavar="HZ", help="resample to this rate first (default: native)")
    p.add_argument("--threshold", type=float, default=THRESHOLD, metavar="Q",
                   help=f"good if score > threshold (default: {THRESHOLD})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_bool_flag(p, "--progress", "progress", "show a progress bar on stderr (records scored)", default=True,
                  stored_default=True)
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> int:
    from sqtool.core.io import dumps_json
    from sqtool.core.progress import bar
    from sqtool.data.readers import iter_records

    check_window_s(args.window_s, "data quality --window-s")
    if args.hop_s is not None:
        check_window_s(args.hop_s, "data quality --hop-s")
    if args.fs is not None:
        check_fs(args.fs, "data quality --fs")
    from sqtool.data.cli import _data_arg
    args.path = _data_arg(args)
    from sqtool.data.dataset_tasks import dataset_of
    ds = dataset_of(args.path)             # a dataset.yaml or a built-in name
    rows = []
    for rec in bar(ds.iter_records() if ds is not None else iter_records(args.path, args.kind), desc="data quality",
                   enabled=args.progress, unit="rec"):
        q = record_quality(rec, args.window_s, args.hop_s, args.fs)
        s = q["score"]
        gaps = int(np.sum(q.get("nonfinite", 0)))
        s = s[np.isfinite(s)] if gaps else s                # windows holding a NaN/Inf sample: not scored
        good = is_good(s, args.threshold)
        rows.append({"dataset": rec.dataset, "record": rec.record_id, "subject": rec.subject,
                     "windows": int(s.size), "good": int(good.sum()),
                     "frac_good": float(good.mean()) if s.size else 0.0,
                     "mean_score": float(s.mean()) if s.size else float("nan"),
                     "motion": "motion" in q, **({"nonfinite_windows": gaps} if gaps else {})})
    total = sum(r["windows"] for r in rows)
    good = sum(r["good"] for r in rows)
    summary = {"path": str(args.path), "records": len(rows), "windows": total, "good": good,
               "frac_good": good / total if total else 0.0, "threshold": args.threshold,
               "window_s": args.window_s, "per_record": rows}
    if args.json:
        print(dumps_json(summary, indent=2))                # a record without a scored window: mean null
        return 0
    print(f"{'record':<28} {'windows':>7} {'good':>5} {'frac':>6} {'mean':>6}")
    for r in rows:
        print(f"{r['record'][:28]:<28} {r['windows']:>7} {r['good']:>5} {r['frac_good']:>6.2f} "
              f"{r['mean_score']:>6.2f}")
    print(f"{len(rows)} records, {total} windows of {args.window_s:g} s: {good} good "
          f"({summary['frac_good']:.1%}), threshold {args.threshold}")
    if gaps := sum(r.get("nonfinite_windows", 0) for r in rows):
        print(f"left out {gaps} windows holding NaN/Inf samples (gaps)")
    pairs = shell_command("data", "pairs", "--data", args.path, "--threshold", f"{args.threshold:g}")
    print(f"next: {pairs}   (same-subject (good, poor) pairs for pretraining)")
    return 0


__all__ = ["quality_score", "quality_indices", "record_quality", "is_good", "flat_clip_fractions",
           "template_matching", "statistical_indices", "motion_energy", "register_cli", "THRESHOLD"]
