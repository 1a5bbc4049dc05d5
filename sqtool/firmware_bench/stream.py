"""Stream replay: feed a recording to a model the way a watch sees it.

    s = WindowStream(StreamSpec.from_model_cfg(cfg), fs_in=125.0)
    for chunk in chunks:                          # (C, n) device samples, any n; NaN = dropout
        for w in s.push(chunk):                   # every hop, once the window is complete
            w.index, w.t0, w.x (C, T) float32 model input, w.raw (C, T_dev) device-rate window, w.flagged
    s.push_gap(n)                                 # n samples the device never received (held, flagged)
    s.finish()                                    # end of recording: the last windows

    res = replay(record, spec)                    # the whole record -> ReplayResult (x, raw, t0, truth...)
    res = replay(record, spec, chunk=25)          # ... pushed as a device's 25-sample chunks (sqtool bench --chunk)

Per channel, at the device rate, samples go through: dropout repair (NaN/Inf and gaps hold the last
good value and are flagged) -> a streaming polyphase resampler to the model rate
(`StreamingResampler`, the same Kaiser FIR as `scipy.signal.resample_poly`, with carried state, so
the resampled stream equals resample_poly on the whole record whatever the chunk sizes) -> a model-rate
ring buffer -> every hop, window i = model-rate samples [i hop, i hop + T), i.e. seconds
[i hop_s, i hop_s + window_s) of the recording: for TROIKA exactly the SP Cup truth windows
(samples [250 i, 250 i + 1000) at 125 Hz) -> band-pass -> per-window normalisation (model contract).

Band-pass modes (`StreamSpec.filter`):
    "window"  (default) zero-phase Butterworth over the buffered window plus `context_s` = 8 s of history
              and 4 s of look-ahead, then cropped: the offline pipeline filters the whole record
              zero-phase, and the backward pass needs look-ahead to match it (measured on synthetic
              PPG: 0 s look-ahead -> max difference 0.66 minmax units at the window edges, 2 s -> 0.44,
              4 s -> 0.014). Costs 4 s of latency, harmless for a heart-rate display.
    "causal"  a running causal Butterworth (`sqtool.data.preprocess.StreamingBandpass`), what a
              sample-by-sample device runs: equals the offline windows made with `causal=True`.
    "none"    no band-pass: equals the offline windows with band=None.
Tolerances (tests/firmware_bench/test_stream.py): "none" and "causal" equal their offline
counterparts (make_windows(band=None) / record_signals(causal=True)) within 1e-4 except the first and
last window, where the offline resampler removed the whole-record mean (unknowable to a device; the
stream removes the first sample instead) and zero-pads; "window" equals make_windows within 0.03
away from the first/last 8 s, where the offline filter saw no more signal than the stream.

Latency: a window is emitted `latency_s` after its last sample arrived (the resampler's look-ahead,
0.25 s for 125 -> 40 Hz, plus the "window" filter's look-ahead).

The windows do not depend on how the samples are chunked, to the bit (each resampled sample is the same dot product
over the same taps in the same order, each window's band-pass runs on the same slice of history; test_stream.py),
so `replay` pushes a whole record in blocks of REPLAY_CHUNK samples: one sample a push took 40x as long (an hour at
125 Hz through an AF student's C, `TaskModel.predict`: 34 s, 0.84 s in blocks), and the whole record in one push
would hold every resampled sample's taps at once (at 125 -> 40 Hz 66 doubles each: 1.8 GB a channel for a day).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sqtool.core import SqtoolError, stream_filter
from sqtool.data.preprocess import (DEFAULT_BAND, StreamingBandpass, _sos, filtfilt_padlen, normalise,
                                    polyphase_design, resample_ratio, zero_phase_context)
from sqtool.firmware_bench.report import too_short

FILTERS = ("window", "causal", "none")
REPLAY_CHUNK = 1024            # device samples per push when `replay` streams a whole record (8 s at 125 Hz)


@dataclass
class StreamSpec:
    """The model's preprocessing contract, as the stream needs it."""
    fs: float = 40.0
    window_s: float = 8.0
    hop_s: float = 2.0
    channels: tuple[str, ...] = ("ppg",)
    norm: str = "minmax"
    band: tuple[float | None, float | None] | None = DEFAULT_BAND
    filter: str = "window"
    context_s: tuple[float, float] = (8.0, 4.0)   # "window" filter: seconds of history / look-ahead

    @classmethod
    def from_model_cfg(cls, cfg, filter: str = "", band="model") -> "StreamSpec":
        """The stream for a model contract (ModelCfg, its dict, or an export's metadata.json).

        filter "" = the band-pass the model was trained with (`core.stream_filter`: "causal" for band_phase causal,
        else "window").
        band="model" takes the contract's band-pass (older files without one: DEFAULT_BAND). The
        "window" filter's history/look-ahead grows with a low cut-off (`preprocess.zero_phase_context`), so a
        0.05 Hz respiratory band is filtered like the offline whole-record filter (60 s / 30 s)."""
        g = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
        if isinstance(band, str) and band == "model":
            band = g("band", None)
            if band is None and isinstance(cfg, dict) and isinstance(cfg.get("model_cfg"), dict):
                band = cfg["model_cfg"].get("band", DEFAULT_BAND)
            elif band is None and not (isinstance(cfg, dict) and "band" in cfg):
                band = DEFAULT_BAND
        band = tuple(band) if band is not None else None
        filter = filter or stream_filter(cfg)
        context = zero_phase_context(band)
        return cls(fs=float(g("fs")), window_s=float(g("window_s")), hop_s=float(g("hop_s")),
                   channels=tuple(g("channels")), norm=str(g("norm", "minmax")), band=band, filter=filter,
                   context_s=context)

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.window_s))

    @property
    def hop(self) -> int:
        return int(round(self.fs * self.hop_s))


# ----------------------------------------------------------------------------- resampler

class StreamingResampler:
    """Polyphase FIR resampling of a (C, n) stream from fs_in to fs_out with state.

    Same filter and alignment as `scipy.signal.resample_poly(x, up, down)` (Kaiser window, beta 5,
    half length 10 max(up, down) taps, output sample m at time m / fs_out): pushing a signal in chunks
    of any size and calling `flush()` gives resample_poly's output of the whole signal, to float
    rounding. Output sample m needs inputs up to m down / up + half its filter: `latency_in` samples
    of look-ahead."""

    def __init__(self, fs_in: float, fs_out: float, n_channels: int):
        self.up, self.down = resample_ratio(fs_in, fs_out)
        up, down = self.up, self.down
        self.identity = up == down
        self.C = n_channels
        self.n_in = self.m_next = 0
        if self.identity:                                            # same rate: a pass-through
            self.latency_in, self.n_pre_remove, self.K = 0.0, 0, 1
            return
        self.poly, self.n_pre_remove = polyphase_design(up, down)    # (up, K): poly[p, k] = h[p + k up]
        self.K = self.poly.shape[1]                                  # taps per polyphase branch
        self.hist = np.zeros((n_channels, 0))                        # last inputs, absolute index base..
        self.base = 0                                                # absolute index of hist[:, 0]
        self.n_in = 0                                                # inputs received
        self.m_next = 0                                              # next aligned output index
        self.latency_in = self.n_pre_remove * down / up             # look-ahead, input samples

    def _ready(self, n_in: int) -> int:
        """Number of aligned outputs computable from n_in inputs: largest m with i_hi(m) < n_in."""
        # i_hi(m) = ((m + n_pre_remove) down) // up  <  n_in   <=>  (m + npr) down < n_in up
        return max(0, -(-(n_in * self.up) // self.down) - self.n_pre_remove)

    def _compute(self, m_end: int) -> np.ndarray:
        m = np.arange(self.m_next, m_end)
        if m.size == 0:
            return np.zeros((self.C, 0))
        j = (m + self.n_pre_remove) * self.down
        i_hi = j // self.up
        phase = j - i_hi * self.up
        idx = i_hi[:, None] - np.arange(self.K)[None, :]             # (M, K) absolute input indices
        rel = idx - self.base
        valid = (idx >= 0) & (idx < self.n_in)
        if np.any(valid & (rel < 0)):
            raise AssertionError("resampler history too short")     # internal invariant
        xs = np.where(valid[None], self.hist[:, np.clip(rel, 0, max(self.hist.shape[1] - 1, 0))], 0.0)  # (C, M, K)
        y = np.einsum("cmk,mk->cm", xs, self.poly[phase])
        self.m_next = m_end
        return y

    def push(self, x: np.ndarray) -> np.ndarray:
        """x (C, n) -> (C, m) newly available aligned output samples."""
        x = np.asarray(x, dtype=np.float64).reshape(self.C, -1)
        if self.identity:
            self.n_in += x.shape[1]
            self.m_next += x.shape[1]
            return x.copy()
        self.hist = np.concatenate([self.hist, x], axis=1)
        self.n_in += x.shape[1]
        y = self._compute(self._ready(self.n_in))
        keep = self.K + 2                                            # inputs the next outputs may need
        if self.hist.shape[1] > keep:
            drop = self.hist.shape[1] - keep
            self.hist = self.hist[:, drop:]
            self.base += drop
        return y

    def flush(self, n_total_out: int) -> np.ndarray:
        """End of stream: outputs up to index n_total_out - 1 with zeros beyond the last input (as
        resample_poly pads), e.g. n_total_out = ceil(n_in up / down)."""
        if self.identity:
            return np.zeros((self.C, 0))
        return self._compute(max(self.m_next, n_total_out))


# ----------------------------------------------------------------------------- windows

@dataclass
class StreamWindow:
    index: int                    # window i: seconds [i hop_s, i hop_s + window_s)
    t0: float                     # start, s
    x: np.ndarray                 # (C, T) float32: band-passed + normalised model input
    raw: np.ndarray               # (C, T_dev) float64: the device-rate window as received (dropouts held)
    flagged: float                # fraction of the window's device samples that were dropouts / gaps
    emitted_at: float             # seconds of signal received when the window was complete


class WindowStream:
    """Ring buffers at the device and model rates; emits a window every hop. See module docstring."""

    def __init__(self, spec: StreamSpec, fs_in: float, dtype=np.float32):
        if spec.filter not in FILTERS:
            raise SqtoolError(f"stream filter must be one of {', '.join(FILTERS)}, got '{spec.filter}'")
        self.spec, self.fs_in, self.dtype = spec, float(fs_in), dtype
        self.C = len(spec.channels)
        self.T, self.hop = spec.n_samples, spec.hop
        if spec.band and spec.band[1] and fs_in / 2 < spec.band[1]:
            raise SqtoolError(f"cannot resample {fs_in:g} Hz to the model's {spec.fs:g} Hz input: the device "
                              f"rate's Nyquist frequency {fs_in / 2:g} Hz is below the model's band "
                              f"({spec.band[1]:g} Hz); the signal the model expects is not in the recording")
        self.rs = StreamingResampler(fs_in, spec.fs, self.C)            # raises for impossible rates
        win_dev, hop_dev = spec.window_s * fs_in, spec.hop_s * fs_in
        if not whole_samples(spec, fs_in):
            raise SqtoolError(f"stream: {spec.window_s:g} s / {spec.hop_s:g} s windows are not whole numbers "
                              f"of samples at the device rate {fs_in:g} Hz")
        self.T_dev, self.hop_dev = int(round(win_dev)), int(round(hop_dev))
        self.zero_phase = spec.filter == "window" and bool(spec.band)
        self._sos = None
        self.ctx_pre = int(round(spec.context_s[0] * spec.fs)) if self.zero_phase else 0
        self.ctx_post = int(round(spec.context_s[1] * spec.fs)) if self.zero_phase else 0
        self.causal_bp = ([StreamingBandpass(spec.fs, *spec.band) for _ in range(self.C)]
                          if spec.filter == "causal" and spec.band else None)
        self.offset = None                                               # per-channel DC removed before resampling
        self.last = np.zeros(self.C)                                     # last good sample (dropout hold)
        self.n_dev = 0
        # model-rate history (absolute index m_base..), device-rate history (absolute d_base..)
        self.model = np.zeros((self.C, 0))
        self.m_base = 0
        self.dev = np.zeros((self.C, 0))
        self.dev_flags = np.zeros(0, dtype=bool)
        self.d_base = 0
        self.next_window = 0

    def _zero_phase(self, x: np.ndarray) -> np.ndarray:
        """preprocess.bandpass(x, fs, *band) with the filter designed once (same design, same padding)."""
        from scipy import signal
        if self._sos is None:
            self._sos = _sos(self.spec.fs, self.spec.band[0], self.spec.band[1], 2)
        return signal.sosfiltfilt(self._sos, x, axis=-1, padlen=filtfilt_padlen(self._sos, x.shape[-1]))

    @property
    def latency_s(self) -> float:
        """Seconds between a window's last sample arriving and the window being emitted."""
        return self.rs.latency_in / self.fs_in + self.ctx_post / self.spec.fs

    def _repair(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.array(x, dtype=np.float64).reshape(self.C, -1)
        bad = ~np.isfinite(x)
        flags = bad.any(axis=0)
        if bad.any():
            for c in range(self.C):                                      # hold the last good value
                if bad[c].any():
                    xc = x[c]
                    good = np.where(~bad[c], np.arange(xc.size), -1)
                    good = np.maximum.accumulate(good)
                    held = np.where(good >= 0, xc[np.maximum(good, 0)], self.last[c])
                    x[c] = held
        if x.shape[1]:
            self.last = x[:, -1].copy()
        return x, flags

    def push(self, chunk: np.ndarray) -> list[StreamWindow]:
        """chunk (C, n) device samples in spec.channels order (1-D ok for one channel)."""
        x, flags = self._repair(chunk)
        if x.shape[1] == 0:
            return []
        if self.offset is None:
            self.offset = x[:, :1].copy()
        self.dev = np.concatenate([self.dev, x], axis=1)
        self.dev_flags = np.concatenate([self.dev_flags, flags])
        self.n_dev += x.shape[1]
        return self._take(self.rs.push(x - self.offset))

    def push_gap(self, n: int) -> list[StreamWindow]:
        """n samples missing from the stream (a radio gap): held at the last value and flagged."""
        if n <= 0:
            return []
        return self.push(np.full((self.C, int(n)), np.nan))

    def finish(self) -> list[StreamWindow]:
        """End of recording: resample the tail with zero padding (as offline) and emit the windows
        whose device samples all arrived."""
        if self.offset is None:
            return []
        n_out = -(-self.n_dev * self.rs.up // self.rs.down)
        return self._take(self.rs.flush(n_out), final=True)

    def _take(self, y: np.ndarray, final: bool = False) -> list[StreamWindow]:
        if y.shape[1]:
            y = y + self.offset
            if self.causal_bp is not None:
                y = np.stack([bp(yc) for bp, yc in zip(self.causal_bp, y)])
            self.model = np.concatenate([self.model, y], axis=1)
        out = []
        n_model = self.m_base + self.model.shape[1]
        while True:
            i = self.next_window
            m0, d0 = i * self.hop, i * self.hop_dev
            if m0 + self.T > n_model or d0 + self.T_dev > self.n_dev:
                break
            if self.zero_phase and m0 + self.T + self.ctx_post > n_model and not final:
                break                                        # wait for the filter's look-ahead
            a = max(m0 - self.ctx_pre, self.m_base) - self.m_base
            b = m0 - self.m_base + self.T
            if self.zero_phase:
                seg = self._zero_phase(self.model[:, a: b + self.ctx_post])
                w = seg[:, b - self.T - a: b - a]
            else:
                w = self.model[:, b - self.T: b]
            x = normalise(w, self.spec.norm).astype(self.dtype)
            raw = self.dev[:, d0 - self.d_base: d0 - self.d_base + self.T_dev].copy()
            fl = float(self.dev_flags[d0 - self.d_base: d0 - self.d_base + self.T_dev].mean())
            out.append(StreamWindow(i, i * self.spec.hop_s, x, raw, fl, self.n_dev / self.fs_in))
            self.next_window += 1
        # drop history no future window needs
        keep_m = self.next_window * self.hop - self.ctx_pre - self.m_base
        if keep_m > 0:
            self.model, self.m_base = self.model[:, keep_m:], self.m_base + keep_m
        keep_d = self.next_window * self.hop_dev - self.d_base
        if keep_d > 0:
            self.dev, self.dev_flags = self.dev[:, keep_d:], self.dev_flags[keep_d:]
            self.d_base += keep_d
        return out


# ----------------------------------------------------------------------------- whole records

@dataclass
class ReplayResult:
    x: np.ndarray                 # (W, C, T) float32 model inputs
    raw: np.ndarray | None        # (W, C, T_dev) device-rate windows (None: let go, as bench does once streamed)
    t0: np.ndarray                # (W,) window start, s
    flagged: np.ndarray           # (W,) dropout fraction
    truth: np.ndarray | None      # (W,) label per window (NaN where none), e.g. BPM
    fs_in: float
    record_id: str = ""
    subject: str = ""
    latency_s: float = 0.0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.t0)


def record_matrix(record, channels: Sequence[str]) -> tuple[np.ndarray, float]:
    """(C, N) device samples of the record's channels (one common rate required)."""
    from sqtool.data.record import channel_matrix
    return channel_matrix(record, channels)


def window_truth(record, t0: np.ndarray, window_s: float | None = None, label: str = "hr") -> np.ndarray | None:
    """The label value of each window [t0, t0 + window_s) at the window's centre, as training takes it (the one
    function of both training paths, `hr_spectra.window_truth`: exact where a label window has the same centre,
    else interpolated between the label windows' centres; NaN outside their span); None when the record has no
    such label. window_s None: windows as long as the label's."""
    lab = record.labels.get(label)
    if lab is None or lab.times is None:
        return None
    from sqtool.data.hr_spectra import window_truth as label_at_centres
    return label_at_centres(record, t0, window_s, label)


def whole_samples(spec: StreamSpec, fs_in: float) -> bool:
    """Whether the spec's window and hop are whole numbers of samples at the device rate fs_in (a stream counts
    whole samples; `WindowStream` refuses another rate)."""
    return all(abs(v * fs_in - round(v * fs_in)) <= 1e-6 for v in (spec.window_s, spec.hop_s))


def at_stream_rate(record, spec: StreamSpec):
    """`record` as a device stream takes it: itself, or, when its first channel's rate is off a whole number of Hz
    and a window or hop is not a whole number of its samples (a clock measured from a file's timestamps: 19.58 Hz
    for a nominal 20), `preprocess.at_whole_hz(record)` (the time base kept, meta["resampled_from_hz"])."""
    from sqtool.data.preprocess import at_whole_hz_where
    fs = record.fs.get(spec.channels[0]) if spec.channels else None
    return record if fs is None else at_whole_hz_where(record, float(fs), lambda f: whole_samples(spec, f))


def replay(record, spec: StreamSpec, chunk: int | Sequence[int] = REPLAY_CHUNK, gaps: dict[int, int] | None = None,
           label: str = "hr") -> ReplayResult:
    """Replay a whole record through a `WindowStream` in chunks of `chunk` device samples (sizes in turn for a
    list; the windows are the same whatever the chunks, see the module docstring) (`gaps`: {device sample index:
    number of samples lost there}, the lost samples are removed from the feed and declared as a gap)."""
    sig, fs_in = record_matrix(record, spec.channels)
    s = WindowStream(spec, fs_in)
    wins: list[StreamWindow] = []
    gaps = {int(k): int(v) for k, v in (gaps or {}).items()}
    n = sig.shape[1]
    sizes = [int(chunk)] if np.isscalar(chunk) else [int(c) for c in chunk]
    if not sizes or min(sizes) < 1:
        raise SqtoolError(f"stream chunk sizes must be >= 1, got {chunk}")
    i, k = 0, 0
    while i < n:
        j = min(i + sizes[k % len(sizes)], n)
        k += 1
        g = min((g for g in gaps if i <= g < j), default=None)
        if g is not None:                           # deliver up to the gap, then declare the lost samples
            wins += s.push(sig[:, i:g])
            lost = min(gaps.pop(g), n - g)
            wins += s.push_gap(lost)
            i = g + lost
            continue
        wins += s.push(sig[:, i:j])
        i = j
    wins += s.finish()
    if not wins:
        raise too_short(f"{record.dataset}/{record.record_id}", n / fs_in, spec.window_s)
    t0 = np.array([w.t0 for w in wins])
    return ReplayResult(x=np.stack([w.x for w in wins]), raw=np.stack([w.raw for w in wins]), t0=t0,
                        flagged=np.array([w.flagged for w in wins]),
                        truth=window_truth(record, t0, spec.window_s, label), fs_in=fs_in,
                        record_id=str(record.record_id), subject=str(record.subject), latency_s=s.latency_s)
