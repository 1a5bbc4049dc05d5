"""An accelerometer at its own rate, brought to the PPG's device rate on the device: the integer reference.

    tab = design_acc(fs_acc=25.0, fs_in=125.0)          # polyphase FIR tables, Q15 (refuses an awkward ratio)
    rs = AccResampler(tab)
    out = rs.push(acc)                                  # acc (m, 3) int16 at fs_acc -> (k, 3) int16 at fs_in

The monitor's front end takes one accelerometer sample per PPG sample. A watch whose accelerometer runs at another
rate converts it before the push; `benchmarks/acc_rate.py` measured what that costs: from 50 Hz holding the latest
sample is as good as a filter, from 25 Hz it is not (+0.19 BPM pooled on unseen recordings, +1.02 on one, against
+0.04 / +0.19 with a polyphase filter). This is that filter, in the integer arithmetic of the C kit's
`<prefix>_acc_resampler.c` (bit-exact, tests/export/test_c_acc_resampler.py):

- the rate ratio fs_in / fs_acc = L / M in lowest terms (L, M <= MAX_PHASES): up-sampling (L > M), down-sampling
  (L < M) or both;
- a linear-phase low-pass prototype at L fs_acc (scipy.signal.firwin, Kaiser beta 8, cutoff 0.45 min(fs_acc,
  fs_in), P L taps), split into L phases of P = TAPS_PER_PHASE ceil(M / L) taps (down-sampling keeps the filter's
  span in seconds, and its stop band), each scaled by L and rounded to Q15 with its sum set to exactly 32768 (a
  constant input comes out unchanged);
- output j (at time j / fs_in) is due when input n = floor(j M / L) has arrived; it is
  sat16((sum_i g[(j M) mod L][i] x[n - i] + 2^14) >> 15), x[< 0] = 0, the three axes alike (the state counts
  with a phase and a countdown, never j itself, so a stream may run for ever).

Its group delay, (TAPS_PER_PHASE L - 1) / (2 L fs_acc) seconds (0.16 s at 25 Hz), puts the accelerometer that much
behind the PPG: the spectra it feeds are power spectra over 8 s windows, which such a shift leaves as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from functools import lru_cache

import numpy as np

from sqtool.core import SqtoolError

TAPS_PER_PHASE = 8            # taps per output when up-sampling: 8 input samples (0.32 s at 25 Hz)
MAX_PHASES = 256              # L and M at most this (25 -> 125 Hz: 5 / 1; 25 -> 256 Hz: 256 / 25, 4 KB of taps)
KAISER_BETA = 8.0
CUTOFF = 0.45                 # x min(fs_acc, fs_in): below both Nyquist rates


@dataclass(frozen=True)
class AccRateTables:
    fs_acc: float             # Hz, the accelerometer's
    fs_in: float              # Hz, the device rate the pipeline takes (the PPG's)
    up: int                   # L
    down: int                 # M
    fir: np.ndarray           # (L, TAPS_PER_PHASE) int16 Q15, each row sums to 32768

    @property
    def taps(self) -> int:
        return int(self.fir.shape[1])

    @property
    def delay_us(self) -> int:
        """The filter's group delay, (P L - 1) / (2 L fs_acc) s, in microseconds."""
        return int(round(1e6 * (self.up * self.taps - 1) / (2 * self.up * self.fs_acc)))

    @property
    def table_bytes(self) -> int:
        return 2 * self.up * self.taps


def ratio(fs_acc: float, fs_in: float) -> tuple[int, int]:
    """(L, M): fs_in / fs_acc in lowest terms; one line for a rate that is not a positive number of milli-Hz or an
    awkward ratio."""
    for name, v in (("accelerometer rate", fs_acc), ("device rate", fs_in)):
        if not (np.isfinite(v) and v > 0) or abs(round(v * 1000) - v * 1000) > 1e-6:
            raise SqtoolError(f"acc resampler: {name} {v} Hz must be a positive whole number of milli-Hz")
    r = Fraction(round(fs_in * 1000), round(fs_acc * 1000))
    L, M = r.numerator, r.denominator
    if L > MAX_PHASES or M > MAX_PHASES:
        raise SqtoolError(f"acc resampler: {fs_acc:g} -> {fs_in:g} Hz is the ratio {L}/{M}: more than "
                          f"{MAX_PHASES} phases; choose an accelerometer rate closer to a simple fraction of "
                          f"{fs_in:g} Hz")
    return L, M


@lru_cache(maxsize=16)
def design_acc(fs_acc: float, fs_in: float) -> AccRateTables:
    """The resampler's tables for an accelerometer at fs_acc beside a device rate fs_in (module docstring); designed
    once per rate pair (export checks, renders, documents and tests them: the tables are never changed)."""
    from scipy import signal as sps
    L, M = ratio(fs_acc, fs_in)
    P = TAPS_PER_PHASE * -(-M // L)                                       # down-sampling: the same span in seconds
    h = sps.firwin(L * P, CUTOFF * min(fs_acc, fs_in), window=("kaiser", KAISER_BETA), fs=L * float(fs_acc))
    ph = (L * h).reshape(P, L).T                                          # (L, P): ph[p, i] = L h[p + i L]
    g = np.round(ph * 32768.0).astype(np.int64)
    for p in range(L):                                                    # each phase's DC gain exactly 1
        r = 32768 - int(g[p].sum())
        order = np.argsort(-np.abs(ph[p]), kind="stable")
        for j in range(abs(r)):
            g[p, order[j % P]] += 1 if r > 0 else -1
    if np.abs(g).max() > 32767 or np.abs(g).sum(axis=1).max() > 65535:
        raise SqtoolError(f"acc resampler: {fs_acc:g} -> {fs_in:g} Hz: a tap or a phase's gain does not fit Q15")
    fir = g.astype(np.int16)
    fir.setflags(write=False)                                             # shared by the cache: read only
    return AccRateTables(float(fs_acc), float(fs_in), L, M, fir)


class AccResampler:
    """The streaming integer resampler (the C kit's <prefix>_acc_rs_push, bit for bit)."""

    def __init__(self, tables: AccRateTables):
        self.tab = tables
        self.reset()

    def reset(self) -> None:
        self.hist = np.zeros((3, self.tab.taps), np.int64)              # newest input last
        self.phase = 0
        self.due = 1                                                      # output 0 is due on input 0

    def count(self, m: int) -> int:
        """Outputs a push of m inputs makes (nothing changes)."""
        L, M = self.tab.up, self.tab.down
        phase, due, k = self.phase, self.due, 0
        for _ in range(int(m)):
            due -= 1
            while due == 0:
                k += 1
                phase += M
                due, phase = phase // L, phase % L
        return k

    def push(self, acc) -> np.ndarray:
        """acc (m, 3) int16 (x, y, z per sample; or (3 m,) interleaved) -> (k, 3) int16 at the device rate."""
        a = triples(acc)
        L, M, g = self.tab.up, self.tab.down, self.tab.fir.astype(np.int64)
        out = []
        for x in a:
            self.hist = np.concatenate([self.hist[:, 1:], x[:, None]], axis=1)
            self.due -= 1
            while self.due == 0:
                acc32 = (self.hist[:, ::-1] * g[self.phase][None, :]).sum(axis=1)       # x[n - i] g[i]
                out.append(np.clip((acc32 + (1 << 14)) >> 15, -32768, 32767))
                self.phase += M
                self.due, self.phase = self.phase // L, self.phase % L
        return np.array(out, np.int16).reshape(-1, 3)


def triples(acc) -> np.ndarray:
    """acc (m, 3) int16, or (3 m,) interleaved -> (m, 3) int64; anything else one line."""
    a = np.asarray(acc)
    if a.dtype != np.int16 or not (a.ndim == 2 and a.shape[1] == 3 or a.ndim == 1 and a.size % 3 == 0):
        raise SqtoolError(f"acc resampler: acc must be int16 (m, 3) or (3 m,) interleaved, got {a.dtype} {a.shape}")
    return a.reshape(-1, 3).astype(np.int64)


def resample_acc(acc, fs_acc: float, fs_in: float) -> np.ndarray:
    """A whole recording's accelerometer (m, 3) int16 at fs_acc -> (k, 3) int16 at fs_in, k = ceil(m L / M), from a
    fresh state: `AccResampler.push`'s outputs at once (output j reads inputs up to n = floor(j M / L) through phase
    (j M) mod L), so a recording of hours takes a moment on the host (predict, bench)."""
    tab = design_acc(fs_acc, fs_in)
    a = triples(acc)                                                      # (m, 3)
    L, M, P, g = tab.up, tab.down, tab.taps, tab.fir.astype(np.int64)
    j = np.arange(-(-len(a) * L // M))                                    # (k,) outputs
    n, phase = j * M // L, j * M % L                                      # (k,) newest input, phase
    xp = np.concatenate([np.zeros((P - 1, 3), np.int64), a])              # x[n - i] = xp[n + P - 1 - i], x[< 0] = 0
    acc32 = sum(g[phase, i][:, None] * xp[n + P - 1 - i] for i in range(P))                  # (k, 3)
    return np.clip((acc32 + (1 << 14)) >> 15, -32768, 32767).astype(np.int16)


__all__ = ["AccRateTables", "AccResampler", "design_acc", "resample_acc", "ratio", "TAPS_PER_PHASE", "MAX_PHASES"]
