"""Preprocessing: band-pass, polyphase resampling, per-window normalisation and sliding windows.

The one path from a `Record` to model input, used by every stage (pretraining pairs, task windows,
the streaming benchmark):

    record --(per channel) resample to the model rate (polyphase, whole record)
           --band-pass (Butterworth, zero-phase; `causal=True` for streaming)
           --cut windows of window_s every hop_s (a strided view, no copy)
           --normalise each window and channel ("minmax" as SiamQuality, or "zscore")  -> Windows

Order and why:
- Resample FIRST, the whole record at once: `resample_poly` applies its anti-alias FIR to the full
  signal, so no window has its own edge transient, and window i of the resampled record covers exactly
  the same seconds as window i of the original (sample 0 stays at t = 0). The band-pass then runs at
  the model rate, so every dataset, whatever its native rate, sees the same filter; it is also the
  filter the firmware would run on-device.
- Accelerometer channels (acc_x/y/z) are resampled, band-passed and normalised exactly like PPG: the
  motion components that corrupt PPG live in the same 0.5-8 Hz band, and a model fed PPG + acc sees
  both on the same scale. (The quality index in `quality.py` reads raw acc instead, in g.)
- Window alignment is by sample index at the model rate: window i covers [i*hop, i*hop + win).
  SP Cup convention: window i = samples [250 i, 250 i + 1000) at 125 Hz = seconds [2 i, 2 i + 8);
  at 40 Hz that is samples [80 i, 80 i + 320). `Windows.t0` holds the start in seconds of the
  ORIGINAL record's time base, so labels given as window-start times line up one to one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

from sqtool.core import DEFAULT_BAND, SqtoolError   # DEFAULT_BAND: re-exported

NORMS = ("minmax", "zscore", "none")
_EPS = 1e-8                         # a window whose range/std is below this is "flat"


# ----------------------------------------------------------------------------- filtering

def _sos(fs: float, lo: float | None, hi: float | None, order: int):
    """Butterworth SOS for a band-, high- or low-pass; refuses cut-offs the rate cannot hold."""
    from scipy import signal

    if fs is None or not np.isfinite(fs) or fs <= 0:
        raise SqtoolError(f"band-pass: sampling rate must be > 0, got {fs}")
    nyq = fs / 2.0
    if lo is not None and lo <= 0:
        lo = None
    if hi is not None and hi >= nyq:
        raise SqtoolError(f"band-pass: upper cut-off {hi:g} Hz must be below the Nyquist rate {nyq:g} Hz "
                          f"(fs = {fs:g} Hz)")
    if lo is not None and hi is not None and lo >= hi:
        raise SqtoolError(f"band-pass: lower cut-off {lo:g} Hz must be below the upper {hi:g} Hz")
    if lo is None and hi is None:
        return None
    if lo is None:
        return signal.butter(order, hi, btype="lowpass", fs=fs, output="sos")
    if hi is None:
        return signal.butter(order, lo, btype="highpass", fs=fs, output="sos")
    return signal.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")


def bandpass(x: np.ndarray, fs: float, lo: float | None = DEFAULT_BAND[0], hi: float | None = DEFAULT_BAND[1],
             order: int = 2, causal: bool = False, axis: int = -1) -> np.ndarray:
    """Butterworth band-pass along `axis`. Zero-phase (sosfiltfilt, effective order 2*order) by
    default; `causal=True` uses sosfilt (what a streaming device can run; adds group delay), started in the steady
    state of the first sample (`sosfilt_zi` times it, as sosfiltfilt starts), so that a signal's level does not ring
    through the first seconds. lo=None -> low-pass only, hi=None -> high-pass only, both None -> copy as float64."""
    from scipy import signal

    x = np.asarray(x, dtype=np.float64)
    sos = _sos(fs, lo, hi, order)
    if sos is None:
        return x.copy()
    if causal:
        x0 = np.moveaxis(x, axis, -1)[..., :1]                              # (..., 1) the first sample
        zi = signal.sosfilt_zi(sos)[:, None, :] * x0.reshape(1, -1, 1)      # (sections, rows, 2)
        y, _ = signal.sosfilt(sos, np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis]), axis=-1, zi=zi)
        return np.moveaxis(y.reshape(np.moveaxis(x, axis, -1).shape), -1, axis)
    return signal.sosfiltfilt(sos, x, axis=axis, padlen=filtfilt_padlen(sos, x.shape[axis]))


def filtfilt_padlen(sos, n: int | None = None) -> int:
    """sosfiltfilt's padding for n samples: scipy's default 3 (2 n_sections + 1), shortened for a short input
    instead of failing (the one rule of the whole-record filter and the stream's window filter); n None: the
    default itself."""
    full = 3 * (2 * len(sos) + 1)
    return full if n is None else min(full, max(n - 1, 0))


def zero_phase_context(band) -> tuple[float, float]:
    """Seconds of history and look-ahead a stream's zero-phase filter of one window takes around it, so that the
    window comes out as the whole-record filter's: (8, 4) s, longer for a low cut-off lo, (max(8, 3 / lo),
    max(4, 1.5 / lo)) (a 0.05 Hz respiratory band: 60 s / 30 s)."""
    lo = band[0] if band else None
    return (max(8.0, 3.0 / lo), max(4.0, 1.5 / lo)) if lo else (8.0, 4.0)


class StreamingBandpass:
    """Causal band-pass that keeps its state between chunks: feeding a signal in pieces gives the same
    output as `bandpass(x, causal=True)` on the whole signal (the firmware's streaming filter), started in the steady
    state of its first sample."""

    def __init__(self, fs: float, lo: float | None = DEFAULT_BAND[0], hi: float | None = DEFAULT_BAND[1],
                 order: int = 2):
        self.sos = _sos(fs, lo, hi, order)
        self.zi, self.started = None, False

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        from scipy import signal

        chunk = np.asarray(chunk, dtype=np.float64)
        if self.sos is None:
            return chunk.copy()
        if self.zi is None or not self.started:
            if not chunk.size:
                return chunk.copy()
            self.zi, self.started = signal.sosfilt_zi(self.sos) * chunk[0], True     # steady at the first sample
        y, self.zi = signal.sosfilt(self.sos, chunk, zi=self.zi)
        return y


# ----------------------------------------------------------------------------- resampling

def resample_ratio(fs_in: float, fs_out: float, max_denominator: int = 1000,
                   rtol: float = 1e-4) -> tuple[int, int]:
    """(up, down) with up/down ~= fs_out/fs_in. Refuses rates <= 0 and ratios that no fraction with
    down <= max_denominator approximates within rtol (e.g. an irrational rate ratio)."""
    for name, f in (("input", fs_in), ("output", fs_out)):
        if f is None or not np.isfinite(f) or f <= 0:
            raise SqtoolError(f"resample: {name} sampling rate must be a positive number, got {f}")
    ratio = float(fs_out) / float(fs_in)
    frac = Fraction(ratio).limit_denominator(max_denominator)
    if frac.numerator == 0 or abs(float(frac) - ratio) > rtol * ratio:
        raise SqtoolError(f"resample: cannot represent {fs_in:g} -> {fs_out:g} Hz as a ratio up/down with "
                          f"down <= {max_denominator} (best {frac}, error "
                          f"{abs(float(frac) - ratio) / ratio:.2e}); resample to a rounder rate first")
    if frac.numerator > 10_000:
        raise SqtoolError(f"resample: {fs_in:g} -> {fs_out:g} Hz needs up-sampling by {frac.numerator}; "
                          f"refused (too costly)")
    return frac.numerator, frac.denominator


def polyphase_design(up: int, down: int) -> tuple[np.ndarray, int]:
    """The polyphase branches of `scipy.signal.resample_poly(x, up, down)`'s default filter (Kaiser window, beta 5,
    half length 10 max(up, down) taps, gain up) and its alignment: (poly (up, K), n_pre_remove), where output m =
    sum_k poly[p, k] x[i - k] with j = (m + n_pre_remove) down, i = j // up, p = j mod up (x = 0 outside the
    signal). The streaming resampler (`firmware_bench.stream.StreamingResampler`) and the time-domain C front end
    (`export.c_window`) use this one design. up == down: ([[1]], 0)."""
    from scipy.signal import firwin
    if up == down:
        return np.ones((1, 1)), 0
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    h = np.concatenate([np.zeros(n_pre_pad), h])
    k = -(-len(h) // up)                                         # taps per polyphase branch
    h = np.concatenate([h, np.zeros(k * up - len(h))])
    return h.reshape(k, up).T.copy(), n_pre_remove              # poly[p, k] = h[p + k up]


def resampled_length(n: int, fs_in: float, fs_out: float) -> int:
    up, down = resample_ratio(fs_in, fs_out)
    return -(-n * up // down)  # ceil(n * up / down), what resample_poly returns


def resample(x: np.ndarray, fs_in: float, fs_out: float, axis: int = -1) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser-windowed FIR anti-alias filter).
    Output length ceil(n * up / down); sample 0 stays at t = 0. The signal's mean is removed before and
    added back after, so a DC offset (raw ADC counts) does not ring at the record edges."""
    from scipy import signal

    x = np.asarray(x, dtype=np.float64)
    up, down = resample_ratio(fs_in, fs_out)
    if up == down:
        return x.copy()
    mean = x.mean(axis=axis, keepdims=True)
    return signal.resample_poly(x - mean, up, down, axis=axis) + mean


def resample_keeping_gaps(x: np.ndarray, fs_in: float, fs_out: float, where: str = "signal") -> np.ndarray:
    """`resample` of one channel (N,) whose NaN/Inf samples are gaps: filled (`fill_gaps`) so the FIR does not
    spread them, resampled, then NaN again at every output sample whose input since the previous output sample
    (upsampling: its last input sample at or before its time; downsampling: every input sample after the previous
    output's, up to its own) held a gap, so a stream still sees (and holds) the same gap, at the new rate: a
    one-sample gap of a faster accelerometer is not interpolated away between two outputs."""
    x = np.asarray(x, dtype=np.float64)
    gap = ~np.isfinite(x)
    y = resample(fill_gaps(x, where) if gap.any() else x, fs_in, fs_out)
    if gap.any():
        y[gaps_at_rate(gap, len(y), fs_in, fs_out)] = np.nan
    return y


def gaps_at_rate(gap: np.ndarray, n_out: int, fs_in: float, fs_out: float, first: int = 0,
                 base: int = 0) -> np.ndarray:
    """Gap flags (N,) bool at fs_in -> (n_out,) bool at fs_out: an output sample is a gap when an input since the
    previous output sample (upsampling: its last input at or before its time; downsampling: every input after the
    previous output's, up to its own) was one (`resample_keeping_gaps`; the accelerometer resampler's host path).
    A stream's next outputs (`GapsAtRate`): outputs first .. first + n_out - 1 of flags that start at input `base`."""
    gap = np.asarray(gap, bool)
    j = np.arange(first - 1, first + n_out)                                # the previous output, then these
    src = np.minimum(np.floor(j * float(fs_in) / float(fs_out) + 1e-9).astype(np.int64),
                     base + len(gap) - 1)                                  # (N' + 1,) last input at or before each
    lo = np.minimum(np.where(j[1:] > 0, src[:-1] + 1, 0), src[1:])         # (N',) first input since the previous
    seen = np.concatenate([[0], np.cumsum(gap)])                           # (N + 1,) gaps before each input
    return seen[src[1:] + 1 - base] - seen[lo - base] > 0                  # (N',) the gaps at the new rate


class GapsAtRate:
    """`gaps_at_rate` on a stream: push each chunk's input flags with the number of outputs the resampler made of
    the inputs so far; the same flags as on the whole, keeping only the inputs the next outputs read."""

    def __init__(self, fs_in: float, fs_out: float):
        self.fs_in, self.fs_out = float(fs_in), float(fs_out)
        self.gap, self.base, self.out = np.zeros(0, bool), 0, 0          # flags of inputs base.., outputs made

    def push(self, gap: np.ndarray, n_out: int) -> np.ndarray:
        """gap (m,) bool of the next m inputs; n_out new outputs -> their (n_out,) flags."""
        self.gap = np.concatenate([self.gap, np.asarray(gap, bool)])
        got = gaps_at_rate(self.gap, n_out, self.fs_in, self.fs_out, self.out, self.base)
        self.out += n_out
        if self.out:                                                       # the next output reads from this on
            keep = min(int(np.floor((self.out - 1) * self.fs_in / self.fs_out + 1e-9)), self.base + len(self.gap))
            self.gap, self.base = self.gap[keep - self.base:], keep
        return got


def at_whole_hz(rec):
    """`rec` itself when every channel's rate is a whole number of Hz; else a copy with each other channel resampled
    to its nearest whole-Hz rate (`resample_keeping_gaps`: the time base kept, NaN/Inf gaps still gaps) and
    meta["resampled_from_hz"] = {channel: its measured rate}: what the device's nominal clock would have sampled (a
    smartwatch's timestamps give 19.58 Hz for its nominal 20, a rate the fixed-point front end cannot resample from)."""
    import dataclasses
    off = {c: float(f) for c, f in rec.fs.items() if abs(float(f) - round(float(f))) > 1e-9}
    if not off:
        return rec
    where = f"{rec.dataset}/{rec.record_id}"
    signals = {c: (resample_keeping_gaps(v, off[c], float(round(off[c])), f"{where} {c}") if c in off else v)
               for c, v in rec.signals.items()}
    return dataclasses.replace(rec, signals=signals, fs={c: float(round(float(f))) for c, f in rec.fs.items()},
                               meta={**rec.meta, "resampled_from_hz": off})


def at_whole_hz_where(rec, fs: float, usable):
    """`at_whole_hz(rec)` when its rate fs is off a whole number of Hz, `usable(fs)` is False and `usable` holds for
    that whole-Hz rate (a device stream that cannot take a measured clock but can take its nominal rate); else rec."""
    whole = float(round(fs))
    if whole == fs or whole <= 0 or usable(fs) or not usable(whole):
        return rec
    return at_whole_hz(rec)


def whole_hz_note(records) -> str | None:
    """One note line on the recordings `at_whole_hz` resampled (meta["resampled_from_hz"]), with what a device that
    takes the clock for its whole-Hz rate would read (the host's heart rates keep the measured time base; a
    firmware configured for the nominal rate does not); None when none was."""
    hits = [r for r in records if r.meta.get("resampled_from_hz")]
    if not hits:
        return None
    r, off = hits[0], hits[0].meta["resampled_from_hz"]
    rates = "; ".join(f"{', '.join(c for c in off if off[c] == f)} {f:g} -> {round(f)} Hz"    # ppg, acc_x 19.58 -> 20 Hz
                      for f in dict.fromkeys(off.values()))
    f = next(iter(off.values()))
    return (f"note: {len(hits)} recording{'s' if len(hits) > 1 else ''} sampled off a whole-Hz rate (a device clock "
            f"measured from its timestamps) resampled to it for the front end, e.g. {r.record_id}: {rates}; firmware "
            f"that takes that clock for {round(f)} Hz reads heart rates {100 * (round(f) / f - 1):+.1f} % off")


# ----------------------------------------------------------------------------- normalisation

def normalise(w: np.ndarray, method: str = "minmax", axis: int = -1) -> np.ndarray:
    """Normalise each window and channel along `axis` (time).

    minmax: (x - min) / (max - min) into [0, 1] (SiamQuality); zscore: (x - mean) / std; none: as is.
    A flat window (range or std < 1e-8) has no shape to scale: minmax gives 0.5 everywhere, zscore
    gives 0 everywhere -- defined values, never NaN/Inf.
    """
    if method not in NORMS:
        raise SqtoolError(f"unknown normalisation '{method}' (known: {', '.join(NORMS)})")
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating):
        w = w.astype(np.float64)
    if method == "none":
        return w.copy()
    if method == "minmax":
        lo = w.min(axis=axis, keepdims=True)
        rng = w.max(axis=axis, keepdims=True) - lo
        flat = rng < _EPS
        out = (w - lo) / np.where(flat, 1.0, rng)
        return np.where(flat, np.asarray(0.5, dtype=out.dtype), out)
    mu = w.mean(axis=axis, keepdims=True)
    sd = w.std(axis=axis, keepdims=True)
    flat = sd < _EPS
    out = (w - mu) / np.where(flat, 1.0, sd)
    return np.where(flat, np.asarray(0.0, dtype=out.dtype), out)


# ----------------------------------------------------------------------------- windows

def window_starts(n: int, win: int, hop: int) -> np.ndarray:
    """Start indices of every full window [s, s + win) in a signal of n samples, every hop samples:
    0, hop, 2 hop, ... while s + win <= n. Empty when n < win."""
    if win <= 0 or hop <= 0:
        raise SqtoolError(f"window length and hop must be positive (got win={win}, hop={hop})")
    if n < win:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n - win + 1, hop, dtype=np.int64)


def sliding_windows(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Windows of the last axis as a read-only strided VIEW (no copy): (..., N) -> (..., W, win),
    window i = x[..., i*hop : i*hop + win]."""
    x = np.asarray(x)
    n = x.shape[-1]
    starts = window_starts(n, win, hop)
    if starts.size == 0:
        return np.zeros(x.shape[:-1] + (0, win), dtype=x.dtype)
    v = np.lib.stride_tricks.sliding_window_view(x, win, axis=-1)  # (..., N - win + 1, win)
    return v[..., ::hop, :]


def _samples(seconds: float, fs: float, what: str) -> int:
    n = seconds * fs
    if seconds <= 0 or round(n) < 1:
        raise SqtoolError(f"{what} must be positive, got {seconds:g} s")
    if abs(n - round(n)) > 1e-6 * max(1.0, n):
        raise SqtoolError(f"{what} {seconds:g} s is not a whole number of samples at {fs:g} Hz")
    return int(round(n))


@dataclass
class Windows:
    """Windows of one record, ready for a model."""
    x: np.ndarray                     # (W, C, T) float32, normalised
    t0: np.ndarray                    # (W,) window start, seconds from the ORIGINAL record start
    subject: str
    record_id: str
    fs: float                         # Hz of x
    channels: tuple[str, ...] = ()
    dataset: str = ""
    window_s: float = 0.0
    hop_s: float = 0.0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])


def record_signals(record, channels: Sequence[str] = ("ppg",), fs: float | None = 40.0,
                   band: tuple[float | None, float | None] | None = DEFAULT_BAND,
                   causal: bool = False) -> tuple[np.ndarray, float]:
    """The chosen channels of a record, each resampled to `fs` (None = keep the common native rate)
    and band-passed, stacked as (C, N) float64. Channels of different lengths after resampling (a
    sample of rounding) are cut to the shortest."""
    where = f"{record.dataset}/{record.record_id}"
    if not channels:
        raise SqtoolError(f"{where}: no channels requested")
    if fs is None:
        rates = {float(record.fs.get(ch, 0)) for ch in channels if ch in record.signals}
        if len(rates) > 1:
            raise SqtoolError(f"{where}: channels {', '.join(channels)} have different rates "
                              f"({', '.join(f'{r:g}' for r in sorted(rates))} Hz); give a model rate fs")
    out = []
    out_fs = None
    for ch in channels:
        x = np.asarray(record.channel(ch), dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise SqtoolError(f"{where}: channel '{ch}' must be a non-empty 1-D signal")
        if not np.all(np.isfinite(x)):                # gaps: filled for the filters; their windows are left
            x = fill_gaps(x, f"{where}: channel '{ch}'")   # out by make_windows / the pair miner (nonfinite_windows)
        f_in = record.fs.get(ch)
        if f_in is None or not np.isfinite(f_in) or f_in <= 0:
            raise SqtoolError(f"{where}: channel '{ch}' has no valid sampling rate")
        f_out = float(f_in) if fs is None else float(fs)
        y = resample(x, float(f_in), f_out) if f_out != f_in else x
        if band is not None:
            y = bandpass(y, f_out, band[0], band[1], causal=causal)
        out.append(y)
        out_fs = f_out
    n = min(len(y) for y in out)
    return np.stack([y[:n] for y in out]), float(out_fs)


def fill_gaps(x: np.ndarray, where: str = "signal") -> np.ndarray:
    """A copy of x (N,) with its NaN/Inf samples (gaps) linearly interpolated between the finite neighbours (the
    nearest finite value at either end), so that a whole-record resampler or filter does not spread them; one
    clear error when no sample is finite. The windows that held a gap are found by `nonfinite_windows`."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.any():
        raise SqtoolError(f"{where}: no finite sample (all {x.size} are NaN/Inf)")
    i = np.arange(x.size)
    return np.interp(i, i[ok], x[ok])


def nonfinite_windows(record, channels: Sequence[str], t0, window_s: float) -> np.ndarray:
    """(W,) bool: the windows [t0, t0 + window_s) s of the record that hold a NaN/Inf sample of any of the
    channels (in each channel's own rate): what training and the pair miner leave out."""
    bad = np.zeros(np.shape(t0), dtype=bool)
    for ch in channels:
        gap = ~np.isfinite(np.asarray(record.signals[ch]))
        if gap.any():
            bad |= samples_in_windows(gap, float(record.fs[ch]), t0, window_s)[0] > 0
    return bad


def samples_in_windows(mask: np.ndarray, fs: float, t0, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """mask (N,) bool per sample at fs Hz -> ((W,) how many marked samples, (W,) how many samples) in each window
    [t0, t0 + window_s) s, cut to the recording."""
    t0 = np.asarray(t0, dtype=np.float64)
    c = np.concatenate([[0], np.cumsum(mask)])                            # (N + 1,)
    lo = np.clip(np.floor(t0 * fs + 1e-6).astype(np.int64), 0, mask.size)
    hi = np.clip(np.ceil((t0 + window_s) * fs - 1e-6).astype(np.int64), 0, mask.size)
    return c[hi] - c[lo], hi - lo


def record_duration(record, channels: Sequence[str]) -> float:
    """Seconds covered by ALL the given channels in the original record: min over channels of N_c / fs_c."""
    return min(len(record.signals[c]) / float(record.fs[c]) for c in channels)


def windows_in_record(starts: np.ndarray, fs: float, win: int, duration_s: float) -> int:
    """How many of the windows (start indices at rate fs) end inside the ORIGINAL record. Resampling
    rounds the length up (ceil(n up / down)), which can make room for one window more than the original
    holds; counting in the original time base keeps the window count of the label convention (SP Cup:
    floor((N - 1000) / 250) + 1 at 125 Hz whatever the model rate)."""
    ends = (starts + win) / fs
    return int(np.count_nonzero(ends <= duration_s + 1e-9))


def make_windows(record, channels: Sequence[str] = ("ppg",), fs: float | None = 40.0,
                 window_s: float = 30.0, hop_s: float | None = None, norm: str = "minmax",
                 band: tuple[float | None, float | None] | None = DEFAULT_BAND,
                 dtype=np.float32, causal: bool = False) -> Windows:
    """Cut a record into model windows: resample whole channels to `fs`, band-pass, window, normalise.
    `causal`: the band-pass runs as one causal filter from the record's start (a model whose band_phase is
    "causal": what the stream's "causal" filter and a sample-by-sample device compute), else zero-phase.

    Raises SqtoolError for a missing channel, a bad rate, or a record shorter than one window. The windows
    holding a NaN/Inf sample (a gap) are left out, their number in `meta["nonfinite_windows"]`.
    `hop_s=None` means non-overlapping windows (hop = window)."""
    if norm not in NORMS:
        raise SqtoolError(f"unknown normalisation '{norm}' (known: {', '.join(NORMS)})")
    hop_s = window_s if hop_s is None else hop_s
    sig, f = record_signals(record, channels, fs, band, causal=causal)    # (C, N)
    win = _samples(window_s, f, "window length")
    hop = _samples(hop_s, f, "hop")
    n = sig.shape[1]
    dur = record_duration(record, channels)
    if n < win or windows_in_record(np.zeros(1, np.int64), f, win, dur) == 0:
        from sqtool.data.record import TooShort                         # record imports this module
        raise TooShort(f"{record.dataset}/{record.record_id}: record is {dur:.2f} s "
                       f"long, shorter than one {window_s:g} s window")
    starts = window_starts(n, win, hop)
    keep = windows_in_record(starts, f, win, dur)
    w = sliding_windows(sig, win, hop)[:, :keep]                           # (C, W, T) view
    starts = starts[:keep]
    meta = {}
    gap = nonfinite_windows(record, channels, starts / f, window_s)        # (W,) windows holding a gap
    if gap.any():
        w, starts, meta = w[:, ~gap], starts[~gap], {"nonfinite_windows": int(gap.sum())}
    x = normalise(np.moveaxis(w, 0, 1), norm).astype(dtype, copy=False)    # (W, C, T)
    return Windows(x=np.ascontiguousarray(x), t0=starts / f, subject=str(record.subject),
                   record_id=str(record.record_id), fs=f, channels=tuple(channels),
                   dataset=record.dataset, window_s=float(window_s), hop_s=float(hop_s), meta=meta)


__all__ = ["bandpass", "filtfilt_padlen", "zero_phase_context", "StreamingBandpass", "resample", "resample_ratio",
           "resampled_length", "normalise",
           "window_starts", "sliding_windows", "record_signals", "record_duration", "windows_in_record", "make_windows", "Windows", "NORMS",
           "fill_gaps", "nonfinite_windows",
           "DEFAULT_BAND"]
