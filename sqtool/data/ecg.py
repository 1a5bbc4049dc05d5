"""Reference heart rate from an ECG channel: R peaks -> HR per sliding window, with doubt flags.

    r_peaks(ecg, fs, method="neurokit")           -> (n,) int sample indices of the R peaks (neurokit2)
    window_starts(n_samples, fs, window_s, hop_s) -> (W,) window start times (s), windows fully inside
    beats_window_hr(beats_s, starts_s, window_s)  -> (hr (W,), n_beats (W,), rr_jump (W,) bool)
    ecg_window_hr(ecg, fs, window_s=8, hop_s=2, beats=None) -> (starts_s, hr_bpm, flags, info)
    beat_train_hr(beats_s, starts_s, window_s)    -> (hr_bpm (W,), flags (W,) bool, reasons {name: (W,) bool})

Windows are [start, start + window_s) with start = k * hop_s, every window fully inside the record
(the SP Cup 2015 / TROIKA convention: W = floor((N / fs - window_s) / hop_s) + 1).

HR of one beat list in one window = 60 / mean RR over the RR intervals whose two beats both lie in
the window, i.e. 60 (n - 1) / (t_last - t_first) for its n beats: the "ECG HR over the window" of TROIKA's
truth (on SP Cup DATA_01, 02 and 05 these detectors' mean RR gives BPM0 to a mean 0.14-0.18 BPM per window,
their median RR to 0.62-0.78: the median reads one interval of the beat-to-beat variation, e.g. RR
alternating 0.75 / 0.95 s is 70.6 BPM, the median says 63.2 or 80). A missed or spurious beat would move the mean: such a window's RR
jumps, so the detector is not clean there (below) and the window takes no value from it. The annotations'
cross-check (`beats`) reads their median RR instead, so that one beat the annotation list misses does not
flag a window whose ECG is clean.

R peaks: chest ECG recorded during exercise is noisy (motion, EMG, baseline wander) and no single
detector holds up everywhere (on the wrist_exercise data neurokit2's default misses a third of the
beats in s4_run, Pan-Tompkins fails on s6_run). So the R peaks come from several maintained
detectors of neurokit2 (`DETECTORS`: ecg_clean + ecg_peaks with each method) and, per window:

    clean     a detector's beat train is clean in a window when it has >= min_beats beats, its HR is
              inside [hr_min, hr_max] and no RR interval is off its median RR by more than rr_tol
              (a missed beat gives an RR ratio ~2, a spurious one ~0.5)
    hr_bpm    the median HR over the clean detectors (over all detectors when none is clean; NaN when
              no detector has 2 beats in the window)

A window is DOUBTFUL (flags[w] True) for any of these reasons (counts in info["reasons"]):
    unclean    no detector gives a clean beat train
    detectors  the clean detectors disagree: max - min HR > max(tol_bpm, tol_frac * HR)
    unconfirmed  without `beats`: only one detector is clean, so nothing independent confirms it
               (on pure noise one detector now and then finds a regular-looking train)
    annot      only with `beats` (an independent beat list, e.g. a dataset's annotations): the
               annotation HR of the window (60 / their median RR) is missing or differs from hr_bpm by more than
               max(tol_bpm, tol_frac * HR) (default max(5 BPM, 5 %)); with `beats`, agreeing
               annotations confirm a window where a single detector is clean
A window may have several reasons; each is counted.

One beat list that IS the reference (a chest strap's R-R intervals, `beat_train_hr`; `data.strap` reads the file):
the same HR (60 / mean RR over the window's beats) and the same clean rule as one detector's, each failure a
reason (STRAP_REASONS): dropout (fewer than min_beats beats, an RR over `gap` x the window's median RR, or a window
edge further than that from its nearest beat: the strap lost beats there), artifact (an RR off the median by more
than rr_tol: an ectopic, missed or extra beat) and range (HR outside [hr_min, hr_max]).
The caller decides what a flag does (the wrist_exercise reader stores NaN for doubtful windows so every
scorer that ignores NaN truth leaves them out).

info: {"r_peaks": {method: (n,) samples}, "n_clean": (W,) clean detectors per window,
       "hr_annot": (W,) or None, "reasons": {name: count}, "reason_masks": {name: (W,) bool},
       "detector": text naming neurokit2's version and the methods}
Bad input (not 1-D, shorter than 2 s, NaN/Inf, bad rate) -> SqtoolError.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sqtool.core import SqtoolError

# neurokit2 ecg_peaks methods, each with its own ecg_clean where neurokit2 has one (else "neurokit")
DETECTORS = ("neurokit", "pantompkins1985", "kalidas2017", "hamilton2002", "rodrigues2021")
_CLEAN = {"neurokit", "pantompkins1985", "hamilton2002", "elgendi2010", "engzeemod2012"}
REASONS = ("unclean", "detectors", "unconfirmed", "annot")
STRAP_REASONS = ("dropout", "artifact", "range")


@dataclass(frozen=True)
class DoubtRules:
    min_beats: int = 4              # R peaks needed inside a window (3 RR intervals)
    hr_min: float = 35.0            # BPM: plausible HR range of a window
    hr_max: float = 220.0
    rr_tol: float = 0.30            # an RR off the window's median RR by more than this fraction = jump
    tol_bpm: float = 5.0            # two HR values disagree when |a - b| > max(tol_bpm, tol_frac * HR)
    tol_frac: float = 0.05
    gap: float = 1.5                # a beat train's (strap's) RR, or a window edge's distance to its nearest beat,
                                    #   over this many median RRs: beats missing there (beat_train_hr)


def _nk():
    try:
        import neurokit2 as nk
    except ImportError:
        raise SqtoolError("R-peak detection needs neurokit2: pip install neurokit2") from None
    return nk


def _check_ecg(ecg, fs) -> np.ndarray:
    x = np.asarray(ecg, dtype=np.float64)
    if x.ndim != 1:
        raise SqtoolError(f"ECG must be 1-D, got shape {x.shape}")
    if not (np.isfinite(fs) and fs > 0):
        raise SqtoolError(f"ECG sampling rate must be > 0, got {fs}")
    if x.size < 2 * fs:
        raise SqtoolError(f"ECG is {x.size / fs:.2f} s long; need at least 2 s for R-peak detection")
    if not np.all(np.isfinite(x)):
        raise SqtoolError(f"ECG has {int(x.size - np.isfinite(x).sum())} NaN/Inf samples")
    return x


def r_peaks(ecg: np.ndarray, fs: float, method: str = "neurokit") -> np.ndarray:
    """(n,) sorted int sample indices of the R peaks found by one neurokit2 method."""
    x = _check_ecg(ecg, fs)
    nk = _nk()
    import warnings
    with warnings.catch_warnings():             # neurokit2 warns on short/odd inputs; flags handle it
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(x, sampling_rate=fs, method=method if method in _CLEAN else "neurokit")
        try:
            _, info = nk.ecg_peaks(clean, sampling_rate=fs, method=method)
        except (ValueError, IndexError):         # e.g. no QRS at all in pure noise / a flat line
            return np.zeros(0, dtype=np.int64)
    pk = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    return np.unique(pk[(pk >= 0) & (pk < x.size)])


def window_starts(n_samples: int, fs: float, window_s: float = 8.0, hop_s: float = 2.0) -> np.ndarray:
    """(W,) start times (s) of the windows [k hop, k hop + window) that lie fully inside n samples."""
    if window_s <= 0 or hop_s <= 0:
        raise SqtoolError(f"window_s and hop_s must be > 0, got {window_s}, {hop_s}")
    dur = n_samples / fs
    if dur < window_s:
        return np.zeros(0)
    w = int(np.floor((dur - window_s) / hop_s + 1e-9)) + 1
    return np.arange(w) * float(hop_s)


def beats_window_hr(beats_s: np.ndarray, starts_s: np.ndarray, window_s: float,
                    rr_tol: float = DoubtRules.rr_tol, stat: str = "mean") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window [start, start + window_s): HR of the beats inside (NaN with < 2), the number of beats, and
    whether an RR interval is off their median RR by more than rr_tol. stat "mean": HR = 60 / mean RR =
    60 (n - 1) / (t_last - t_first) (TROIKA's truth, see the module docstring); "median": 60 / median RR
    (robust to one missed or spurious beat: the annotations' cross-check)."""
    if stat not in ("mean", "median"):
        raise SqtoolError(f"beats_window_hr: stat must be 'mean' or 'median', got {stat!r}")
    b = np.sort(np.asarray(beats_s, dtype=np.float64))
    starts_s = np.asarray(starts_s, dtype=np.float64)
    lo = np.searchsorted(b, starts_s, side="left")
    hi = np.searchsorted(b, starts_s + window_s, side="left")
    hr = np.full(starts_s.shape, np.nan)
    jump = np.zeros(starts_s.shape, dtype=bool)
    for w, (i, j) in enumerate(zip(lo, hi)):
        if j - i >= 2:
            rr = np.diff(b[i:j])                    # (n_beats - 1,) seconds
            med = float(np.median(rr))
            if med > 0:
                hr[w] = 60.0 / (med if stat == "median" else float(np.mean(rr)))
                jump[w] = bool(np.any(np.abs(rr / med - 1.0) > rr_tol))
    return hr, (hi - lo).astype(np.int64), jump


def _in_range(hr: np.ndarray, rules: DoubtRules) -> np.ndarray:
    """(W,) bool: HR inside [hr_min, hr_max] (NaN: not)."""
    with np.errstate(invalid="ignore"):
        return (hr >= rules.hr_min) & (hr <= rules.hr_max)


def beat_train_hr(beats_s: np.ndarray, starts_s: np.ndarray, window_s: float,
                  rules: DoubtRules = DoubtRules()) -> tuple[np.ndarray, np.ndarray, dict]:
    """(hr_bpm (W,), flags (W,) bool, reasons {STRAP_REASONS name: (W,) bool}) of one beat list taken as the
    reference (see the module docstring): hr_bpm is beats_window_hr's mean-RR HR, as an ECG detector's, NaN where
    the window is doubtful (flags), so it is never scored."""
    b = np.sort(np.asarray(beats_s, dtype=np.float64))
    starts_s = np.asarray(starts_s, dtype=np.float64)
    hr, n, jump = beats_window_hr(b, starts_s, window_s, rules.rr_tol)
    lo = np.searchsorted(b, starts_s, side="left")
    hi = np.searchsorted(b, starts_s + window_s, side="left")
    dropout = n < rules.min_beats
    gap = np.zeros(starts_s.shape, dtype=bool)
    for w in np.flatnonzero(~dropout):
        rr = np.diff(b[lo[w]:hi[w]])                # (n_beats - 1,) s
        med = float(np.median(rr))
        edge = max(b[lo[w]] - starts_s[w], starts_s[w] + window_s - b[hi[w] - 1])
        gap[w] = bool(rr.max() > rules.gap * med or edge > rules.gap * med)
    reasons = {"dropout": dropout | gap, "artifact": jump & ~(dropout | gap),
               "range": np.isfinite(hr) & ~_in_range(hr, rules)}
    flags = reasons["dropout"] | reasons["artifact"] | reasons["range"]
    return np.where(flags, np.nan, hr), flags, reasons


def _disagree(a: np.ndarray, b: np.ndarray, rules: DoubtRules) -> np.ndarray:
    """|a - b| > max(tol_bpm, tol_frac * a); NaN on either side counts as disagreement."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(a - b) <= np.maximum(rules.tol_bpm, rules.tol_frac * a))


def ecg_window_hr(ecg: np.ndarray, fs: float, window_s: float = 8.0, hop_s: float = 2.0,
                  beats: np.ndarray | None = None, rules: DoubtRules = DoubtRules(),
                  detectors: tuple[str, ...] = DETECTORS, peaks: dict | None = None):
    """(starts_s (W,), hr_bpm (W,), flags (W,) bool, info) for an ECG channel (see module docstring).

    beats: optional independent beat sample indices (at `fs`) to cross-check against.
    peaks: {name: R-peak sample indices} already detected (replaces the detectors; tests, caching).
    """
    x = _check_ecg(ecg, fs)
    if peaks is None:
        if not detectors:
            raise SqtoolError("ecg_window_hr: no R-peak detector given")
        peaks = {m: r_peaks(x, fs, m) for m in detectors}
    peaks = {m: np.asarray(p, dtype=np.int64) for m, p in peaks.items()}
    starts = window_starts(x.size, fs, window_s, hop_s)
    hrs, clean = [], []                             # (D, W) each
    for p in peaks.values():
        hr, n, jump = beats_window_hr(p / fs, starts, window_s, rules.rr_tol)
        ok = (n >= rules.min_beats) & ~jump & _in_range(hr, rules)
        hrs.append(hr)
        clean.append(ok)
    H, C = np.array(hrs).reshape(len(peaks), -1), np.array(clean).reshape(len(peaks), -1)
    n_clean = C.sum(axis=0)
    Hc = np.where(C, H, np.nan)
    hr = np.full(starts.shape, np.nan)
    with np.errstate(invalid="ignore"):
        for w in range(starts.size):
            col = Hc[:, w] if n_clean[w] else H[:, w]
            col = col[np.isfinite(col)]
            if col.size:
                hr[w] = float(np.median(col))
        spread = np.where(n_clean > 0, np.nanmax(np.where(C, H, -np.inf), axis=0)
                          - np.nanmin(np.where(C, H, np.inf), axis=0), 0.0)
    reasons = {"unclean": n_clean == 0,
               "detectors": (n_clean > 1) & (spread > np.maximum(rules.tol_bpm, rules.tol_frac * np.nan_to_num(hr))),
               "unconfirmed": np.zeros(starts.shape, dtype=bool),
               "annot": np.zeros(starts.shape, dtype=bool)}
    hr_annot = None
    if beats is not None:
        hr_annot, _, _ = beats_window_hr(np.asarray(beats, dtype=np.float64) / fs, starts, window_s,
                                         rules.rr_tol, stat="median")
        reasons["annot"] = _disagree(hr, hr_annot, rules)
    elif len(peaks) > 1:                            # no annotations: a second detector must confirm
        reasons["unconfirmed"] = n_clean == 1
    flags = reasons["unclean"] | reasons["detectors"] | reasons["unconfirmed"] | reasons["annot"]
    info = {"r_peaks": peaks, "n_clean": n_clean, "hr_annot": hr_annot,
            "reasons": {r: int(v.sum()) for r, v in reasons.items()}, "reason_masks": reasons,
            "detector": detector_name(tuple(peaks))}
    return starts, hr, flags, info


def detector_name(methods: tuple[str, ...] = DETECTORS) -> str:
    try:
        import neurokit2 as nk
        version = nk.__version__
    except ImportError:
        version = "(not installed)"
    return f"neurokit2 {version} ecg_clean + ecg_peaks, consensus of {', '.join(methods)}"
