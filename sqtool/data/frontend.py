"""Fixed-point streaming front end of the wrist heart-rate monitor: int16 samples -> int8 spectra.

The numpy INTEGER reference of the firmware front end (C templates `sqtool/export/templates/
sq_frontend.{h,c}`, tables from `sqtool/export/c_frontend.py`): after `design(cfg)` every step is
integer arithmetic, identical in Python and C, bit for bit. Input rows ("sensor channels", C_in =
n_ppg + 3 of them, n_ppg without an accelerometer): the device's n_ppg PPG sensors (1 or 2: ppg, ppg2), then
acc_x, acc_y, acc_z (none when n_channels = 1). Steps 1-5 run per input row; step 6 averages the PPG sensors'
spectra into the network's one ppg channel and, for n_channels = 2, sums the three axes' powers into one acc
channel, so the output always has C = n_channels network channels (ppg; ppg, acc; or ppg, acc_x, acc_y, acc_z)
whatever n_ppg is. Per input row, int16 samples at the device rate fs_in:

 1. gaps     a flagged input sample (one uint8 flag per time step, shared by all channels) is
             replaced by the channel's last good sample (0 before any); the window's flagged
             fraction is counted (see "flags" below).
 2. resample polyphase FIR fs_in -> fs, up/down L/M = the reduced ratio fs/fs_in (125 -> 16: 16/125,
             256 -> 16: 1/16; only down-sampling, M >= L). Prototype: Kaiser-window low-pass
             (cutoff fir_cutoff_hz, beta kaiser_beta) of L * P taps at L * fs_in, P = taps_per_phase
             (0 = auto: ceil(3 fs_in / fs), 24 at 125 Hz, 48 at 256 Hz: the filter spans 3 model
             periods; at 125 Hz: -2.3 dB at 4 Hz, <= -26 dB at 12-20 Hz (what folds onto 0-4 Hz
             at 16 Hz), <= -50 dB above 16 Hz),
             times L, split into L phases of P = taps_per_phase taps, rounded to Q15 int16, then each
             phase corrected to a DC gain of EXACTLY 32768 (the rounding residual, |r| <= P/2, is
             spread one LSB at a time over the phase's largest taps). Exact per-phase DC gain
             matters: a DC offset (PPG baseline, gravity) would otherwise be modulated by the phase
             sequence, which repeats every L outputs (1 s at 125 -> 16 Hz, i.e. 1 Hz: in band).
             Output m (time m / fs) is computed when input n_m = floor(m M / L) arrives, with phase
             p = m M mod L:  y[m] = sat16((sum_i g[p, i] x[n_m - i] + 2^14) >> 15)   (x[<0] = 0).
             Accumulation in int32: design() refuses a table with sum_i |g[p, i]| > 65535, so
             |acc| <= 32768 * 65535 < 2^31. Output keeps the input scale, saturated to int16.
 3. band-pass  causal Butterworth (scipy butter(filter_order, band, "bandpass", output="sos"):
             filter_order sections), coefficients Q30 int32, Direct Form I per section:
             acc = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2 (int64), y = (acc + 2^29) >> 30; the output
             of an inner section is clamped to [-2^24, 2^24 - 1] (int32 state, and the int64
             accumulator provably cannot overflow: 5 * 2^31 * 2^24 < 2^63), the last section's to
             int16. Zero input from zero state stays exactly zero; a constant input does NOT settle at
             zero: the rounding leaves the recursion in a dead band (default band: the high-pass section's
             y = round(y - d y), d = 1 + a1 + a2 ~ 0.04, keeps any |y| <= 12 LSB), and an input noise of
             1 LSB makes the output wander inside it. Step 5's silence rule keeps that out of the spectra.
 4. windows  a ring of the last T = window_s * fs model-rate samples per channel; window i covers
             model samples [i hop, i hop + T) (hop = hop_s * fs), i.e. device time
             [i hop_s, i hop_s + window_s) by the outputs' time stamps m / fs, and is emitted when
             model sample i hop + T - 1 is produced: on input sample floor((i hop + T - 1) M / L),
             window_s - 1/fs after the window start (latency after the window's nominal end: -1/fs;
             the content is further delayed by the FIR's group delay (L P - 1) / (2 L fs_in),
             0.096 s at 125 Hz / 24 taps, and the band-pass's frequency-dependent delay).
             flags: model sample m "owns" the inputs (n_{m-1}, n_m] (n_{-1} = -1); a window's
             flagged fraction = flagged inputs / inputs owned by its T model samples (1000 inputs
             at 125 Hz, 993 for window 0), also as flagged_q15 = (f * 32768 + cnt // 2) // cnt.
 5. spectrum per window and channel: silence: a channel whose resampled samples (step 2's outputs, the
             band-pass's input) at the window's T model samples span at most QUIET = 4 counts (max - min:
             a stuck sensor, a still accelerometer axis at the device's fixed gain, a dropout held for
             the whole window) is coded as an all-zero window (power 0 in every bin: codes -127, nothing
             added to the ppg sum, no part in the acc sum); without it block floating point would scale
             the band-pass's dead band to full range, a full-height peak at 30-33 BPM. Real signals
             span far more (>= 21 counts in every window of the built-in datasets, whose codes this
             rule leaves unchanged). The C keeps, per channel, the min and max of each of the
             ceil(T / hop) windows in flight. Then block floating point: mx = max |x|; if mx <= XMAX
             (= 2^(dft_in_bits - 1) - 1) x <<= s with the largest s keeping mx << s <= XMAX, else
             x = (x + 2^(r-1)) >> r with the smallest r keeping (mx + 2^(r-1)) >> r <= XMAX; Hann
             (periodic, Q15, 1.0 clamped to 32767): xw = (x h + 2^14) >> 15; direct DFT at bins
             k_b = bpm_b N / (60 fs) with ONE cos table of N = 60 fs / bin_step entries (Q14):
             re = sum xw cos[(k_b n) mod N], im = sum xw cos[(k_b n + 3N/4) mod N] (= sin).
             No-overflow proof for the int32 accumulators (checked numerically by design()):
             |re|, |im| <= sum_n |xw[n]| * 16384 <= sum_n ((XMAX h[n] + 2^14) >> 15) * 16384
             = 2,146,435,072 < 2^31 at T = 128 (every partial sum is bounded by the same sum, so
             any summation order, SMLAD pairs included, is exact). Power: r = (re + 2^(ps-1)) >> ps
             (ps = power_shift = 16), P = r^2 + i^2 in int64, <= 2^31, kept as uint32.
 6. ppg      the ppg channel's power: n_ppg = 1: the sensor's P itself (unchanged). n_ppg = 2: the
             mean of the sensors' spectra, each normalised to its own max so sensors of different
             gains weigh equally. Per sensor s: Pmax_s = max_b P_s; q_s = max(0, bitlen(Pmax_s) -
             NORM_BITS) (NORM_BITS = 15); Pm_s = Pmax_s >> q_s, Pb_s = P_s >> q_s (both < 2^15);
             u_s = ((Pb_s << NORM_FRAC) + (Pm_s >> 1)) // Pm_s (NORM_FRAC = 16), i.e. round-half-up
             of 2^16 P_s / Pmax_s on the shifted powers: uint32 (Pb << 16 < 2^31, + Pm/2 < 2^14),
             the sensor's max bin exactly 2^16; Pmax_s == 0 -> u_s = 0 (a dead sensor adds nothing, and
             so does a stuck one: step 5's silence).
             P_ppg = sum_s u_s <= n_ppg 2^16 (the sum, not the mean: the code step divides by the
             max anyway), then coded as any channel's P (step 7: bitlen <= 18, so q = 0).
    acc      n_channels = 2: ONE acc channel, the power summed over the three axes, |X|^2 + |Y|^2 + |Z|^2,
             which does not depend on how the accelerometer's axes are turned on the wrist (a rotation
             of the sensor frame leaves it unchanged, up to rounding): a swing along any direction shows.
             Step 5 scaled each axis by its own block-floating-point shift, so the powers are first put
             on one scale: per axis e = 2 (r - s) (the power's exponent: right shifts r, left shifts s;
             an all-zero axis takes no part), emax = the largest e of the non-zero axes, and
             P_acc = (sum_axes (P_axis >> (emax - e_axis)) + 2) >> 2  (a shift of 32 or more gives 0;
             each term <= 2^31, the sum < 2^33, P_acc < 2^31: uint32), then coded as any channel's P.
 7. codes    per channel Pmax = max_b P; q = max(0, bitlen(Pmax) - 22); Pm = Pmax >> q,
             Pb = P >> q; code = (508 Pb + Pm) // (2 Pm) - 127, i.e. round-half-up of
             254 P / Pmax - 127 on the shifted powers (uint32 arithmetic: 509 * 2^22 < 2^31);
             the max bin gets 127; Pmax == 0 -> all -127. Output per window: int8 (F, C)
             channels-last, F bins on bins_bpm (201 at 30..230 BPM by default; the registry's
             spectral models use 134 at 30..229.5 BPM). Each window also reports ppg_quiet: every PPG
             sensor's row was quiet (a stuck, railed, all-zero or absent PPG); the pipeline does not score
             such a window (valid = 0), as one with more than half its inputs flagged.

API: `FrontEndCfg` (to_dict / from_dict; `n_inputs` = C_in), `design(cfg) -> FrontEndTables`,
`FrontEnd(cfg)` (streaming: push / reset), `spectra(cfg, x, gap, ppg_quiet=False)` (whole recording, x (C_in, N),
vectorised, bit-exact with the streaming path; ppg_quiet=True: also each window's ppg_quiet), `to_int16(x, gains)` (device quantisation for replaying
float data), `bin_bpm(cfg)`, `input_channels(cfg)` (names of the C_in rows).

n_ppg is a DEVICE property, not a model's: the network reads the same 4 channels either way, and a model
trained on two-sensor averages reads a one-sensor device (its spectrum is then one sensor's). The model
contract lists the sensors to average when a recording has them (frontend["ppg_sensors"], see
`data.hr_spectra.stream_channels`); n_ppg = 1 gives exactly the codes of the single-sensor front end.

Input scaling (for replaying float datasets, `default_gains`): acc in g -> 4096 counts/g (a +-8 g,
16-bit accelerometer); PPG -> 8 counts per unit, calibrated on SP Cup / TROIKA's AC-coupled PPG units
(robust amplitude 93-890 units -> 750-7100 counts). A device cannot know the recording in advance, so
the gains are fixed per channel type; another PPG source needs its own gain (`gains=`) or
`gains="robust"` (99.9th percentile of |x - median| -> 8000 counts, per recording: replay only).
The spectrum codes are scale-invariant per window anyway (block floating point + per-channel max),
up to saturation and the integer rounding of small signals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core import from_dict as _from_dict
from sqtool.core import to_dict as _to_dict
from sqtool.core.model_cfg import ACC_AXES, ACC_SUM

FORMAT = "sqtool.frontend/v1"
CHANNELS = ("ppg",) + ACC_AXES
NETWORK_CHANNELS = {1: ("ppg",), 2: ("ppg", ACC_SUM), 4: CHANNELS}  # n_channels -> the network's channels
DEFAULT_GAINS = {"ppg": 8.0, "acc": 4096.0}       # counts per unit: PPG (TROIKA units), acc (g)
MID_SAT = (1 << 24) - 1                           # clamp of an inner biquad section's output
QUIET = 4                                         # a window's resampled samples spanning <= QUIET counts: silence
CODE_BITS = 22                                    # Pmax is shifted below 2^22 before the division
NORM_BITS = 15                                    # n_ppg > 1: a sensor's Pmax shifted below 2^15 ...
NORM_FRAC = 16                                    # ... its spectrum normalised to max 2^16 (Q16)
MAX_PPG = 2                                       # PPG sensors averaged at most
BLOCK_WINDOWS = 1024                              # spectra(): windows coded per block (a day-long recording in MBs)
BLOCK_OUTPUTS = 16384                             # the resampler's outputs computed per block (idem)
_DESCRIPTIVE = ("format", "filter", "phase", "resampler", "normalisation", "input_scaling", "channels",
                "inputs", "ppg_combine")


# ----------------------------------------------------------------------------- config
@dataclass
class FrontEndCfg:
    fs_in: float = 125.0                  # device rate (Hz)
    fs: float = 16.0                      # model rate (Hz)
    window_s: float = 8.0
    hop_s: float = 2.0
    n_channels: int = 4                   # network channels: 4 = ppg, acc_x, acc_y, acc_z; 2 = ppg, acc (the
                                          # axes' powers summed: orientation-free); 1 = ppg only
    n_ppg: int = 1                        # PPG sensors on the DEVICE, averaged into the ppg channel (1, 2)
    band: tuple[float, float] = (0.5, 4.0)            # Hz, causal Butterworth band-pass
    filter_order: int = 2                 # butter order -> filter_order biquad sections
    bins_bpm: tuple[float, float, float] = (30.0, 230.0, 1.0)   # first, last (inclusive), step
    taps_per_phase: int = 0               # polyphase FIR taps per phase P; 0 = ceil(3 fs_in / fs)
    fir_cutoff_hz: float = 6.0            # Kaiser low-pass cutoff (below fs / 2)
    kaiser_beta: float = 5.0
    iir_frac_bits: int = 30               # biquad coefficients Q30 (or Q28)
    dft_in_bits: int = 12                 # block floating point: |x| <= 2^(bits-1) - 1 before Hann
    cos_frac_bits: int = 14               # cos table Q14 (1.0 = 16384)
    power_shift: int = 16                 # re, im >> power_shift (rounded) before squaring
    gain_ppg: float = DEFAULT_GAINS["ppg"]   # to_int16 defaults (counts per unit)
    gain_acc: float = DEFAULT_GAINS["acc"]

    @property
    def n_inputs(self) -> int:
        """C_in: input rows (the n_ppg PPG sensors, then the accelerometer axes)."""
        return self.n_ppg + (len(ACC_AXES) if self.n_channels > 1 else 0)

    def to_dict(self) -> dict:
        """The contract: every field plus descriptive keys (ignored by from_dict)."""
        d = _to_dict(self)
        d.update({
            "format": FORMAT,
            "channels": list(network_channels(self.n_channels)),
            "inputs": list(input_channels(self)),
            "ppg_combine": ("one sensor: its power spectrum" if self.n_ppg == 1 else
                            f"sum over {self.n_ppg} sensors of round(2^{NORM_FRAC} P / Pmax) per sensor "
                            f"(P >> max(0, bitlen(Pmax) - {NORM_BITS}) first, uint32), then coded"),
            "filter": f"butterworth bandpass order {self.filter_order}, {self.filter_order} biquads, "
                      f"Q{self.iir_frac_bits} Direct Form I",
            "phase": "causal",
            "resampler": f"polyphase FIR, kaiser beta {self.kaiser_beta}, cutoff {self.fir_cutoff_hz} Hz, "
                         f"{taps_per_phase(self)} taps/phase, Q15, per-phase DC gain exact",
            "normalisation": "per window and channel: power / max power -> int8 [-127, 127] "
                             "(round(254 P / Pmax) - 127; Pmax == 0 -> -127)",
            "input_scaling": f"int16 counts: ppg x{self.gain_ppg} per unit, acc x{self.gain_acc} per g",
        })
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FrontEndCfg":
        d = {k: v for k, v in dict(d).items() if k not in _DESCRIPTIVE}
        return _from_dict(cls, d, where="frontend config")


# ----------------------------------------------------------------------------- design
@dataclass
class FrontEndTables:
    up: int                     # L
    down: int                   # M
    fir: np.ndarray             # (L, P) int16 Q15: y[m] = sum_i fir[p, i] x[n_m - i]
    sos: np.ndarray             # (S, 5) int32 Q(iir_frac_bits): b0 b1 b2 a1 a2
    hann: np.ndarray            # (T,) int16 Q15
    cos: np.ndarray             # (N,) int16 Q(cos_frac_bits)
    k: np.ndarray               # (F,) int64 bin indices into the N-point grid
    T: int
    hop: int
    N: int
    xmax: int                   # block floating point bound 2^(dft_in_bits-1) - 1
    dft_bound: int              # proven bound of |re|, |im| (< 2^31)
    sos_float: np.ndarray = field(repr=False)       # (S, 6) the float design
    fir_float: np.ndarray = field(repr=False)       # (L * P,) prototype (gain 1 at DC)
    ct: np.ndarray = field(repr=False)              # (T, F) int64 cos[(k n) mod N]
    st: np.ndarray = field(repr=False)              # (T, F) int64 cos[(k n + 3N/4) mod N]

    @property
    def n_bins(self) -> int:
        return int(self.k.size)

    def flash_bytes(self) -> dict:
        """Sizes of the C const tables (the DFT table is packed cos|sin words, N + 2 k_max entries)."""
        return {"fir": self.fir.size * 2, "sos": self.sos.size * 4, "hann": self.hann.size * 2,
                "cos_sin": (self.N + 2 * int(self.k.max())) * 4}


def _exact_int(v: float, what: str) -> int:
    f = Fraction(str(float(v)))
    if f.denominator != 1:
        raise SqtoolError(f"frontend: {what} = {float(v)} must be an integer")
    return int(f)


def _ratio(cfg: FrontEndCfg) -> tuple[int, int]:
    if not (cfg.fs > 0 and cfg.fs_in > 0):
        raise SqtoolError(f"frontend: fs_in={cfg.fs_in} and fs={cfg.fs} must be > 0")
    r = Fraction(str(float(cfg.fs))) / Fraction(str(float(cfg.fs_in)))
    L, M = r.numerator, r.denominator
    if M < L:
        raise SqtoolError(f"frontend: input at {cfg.fs_in:g} Hz is below the {cfg.fs:g} Hz the network reads: "
                          f"sample at {cfg.fs:g} Hz or faster (the front end resamples down, never up)")
    if L > 256 or (M + L - 1) // L > 255 or M > 1_000_000:
        near = _near_rate(cfg)
        raise SqtoolError(f"frontend: resampling ratio {L}/{M} (fs_in={cfg.fs_in} -> fs={cfg.fs}) too awkward "
                          "(need L <= 256 phases and ceil(M / L) <= 255)"
                          + (f"; declare it as {near:g} Hz (a {abs(near / cfg.fs_in - 1):.3%}"
                             f" rate error: heart rates read {abs(near / cfg.fs_in - 1):.3%} off)" if near else ""))
    return L, M


def _near_rate(cfg: FrontEndCfg) -> float | None:
    """The whole-Hz (else 0.1-Hz) rate within 0.5 % of cfg.fs_in that the front end takes, or None."""
    for step in (1.0, 0.1):
        near = round(round(float(cfg.fs_in) / step) * step, 1)
        if near >= cfg.fs and abs(near / cfg.fs_in - 1) <= 0.005 and near != cfg.fs_in:
            L, M = (Fraction(str(float(cfg.fs))) / Fraction(str(near))).as_integer_ratio()
            if L <= 256 and (M + L - 1) // L <= 255 and M <= 1_000_000:
                return near
    return None


def takes_rate(cfg: FrontEndCfg) -> bool:
    """Whether the front end can resample from cfg.fs_in to its model rate (`_ratio`: a down-sampling ratio L/M with
    few enough phases and taps); the other checks of `design` still apply."""
    try:
        _ratio(cfg)
    except SqtoolError:
        return False
    return True


def taps_per_phase(cfg: FrontEndCfg) -> int:
    """P: cfg.taps_per_phase, or (0 = auto) ceil(3 M / L), a span of 3 model-rate periods (24 taps at
    125 -> 16 Hz, 48 at 256 -> 16 Hz), capped at 256."""
    if cfg.taps_per_phase:
        return int(cfg.taps_per_phase)
    L, M = _ratio(cfg)
    return min(256, -(-3 * M // L))


def _check_cfg(cfg: FrontEndCfg) -> None:
    if cfg.n_channels not in NETWORK_CHANNELS:
        raise SqtoolError(f"frontend: n_channels={cfg.n_channels} must be 1 (ppg), 2 (ppg + acc, the axes' powers "
                          f"summed) or 4 (ppg + acc x, y, z)")
    if not (isinstance(cfg.n_ppg, int) and 1 <= cfg.n_ppg <= MAX_PPG):
        raise SqtoolError(f"frontend: n_ppg={cfg.n_ppg} PPG sensors: must be 1 or {MAX_PPG}")
    lo, hi = (float(b) for b in cfg.band)
    if not 0 < lo < hi < cfg.fs / 2:
        raise SqtoolError(f"frontend: band {cfg.band} must satisfy 0 < lo < hi < fs/2 = {cfg.fs / 2}")
    if not 0 < cfg.fir_cutoff_hz <= cfg.fs / 2:
        raise SqtoolError(f"frontend: fir_cutoff_hz={cfg.fir_cutoff_hz} must be in (0, fs/2 = {cfg.fs / 2}]")
    if not 0 <= cfg.taps_per_phase <= 256:
        raise SqtoolError(f"frontend: taps_per_phase={cfg.taps_per_phase} must be 0 (auto) or in 1..256")
    if not 1 <= cfg.filter_order <= 8:
        raise SqtoolError(f"frontend: filter_order={cfg.filter_order} must be in 1..8")
    if cfg.iir_frac_bits not in (28, 29, 30):
        raise SqtoolError(f"frontend: iir_frac_bits={cfg.iir_frac_bits} must be 28, 29 or 30")
    if not 4 <= cfg.dft_in_bits <= 15 or not 8 <= cfg.cos_frac_bits <= 15:
        raise SqtoolError("frontend: dft_in_bits must be in 4..15 and cos_frac_bits in 8..15")
    if not 1 <= cfg.power_shift <= 30:
        raise SqtoolError(f"frontend: power_shift={cfg.power_shift} must be in 1..30")


def design(cfg: FrontEndCfg) -> FrontEndTables:
    """All integer tables of the front end, computed deterministically from cfg (refuses bad configs)."""
    from scipy import signal as sps
    _check_cfg(cfg)
    L, M = _ratio(cfg)
    P = taps_per_phase(cfg)
    T = _exact_int(cfg.window_s * cfg.fs, "window_s * fs")
    hop = _exact_int(cfg.hop_s * cfg.fs, "hop_s * fs")
    if T < 4 or T % 2 or hop < 1 or hop > T:
        raise SqtoolError(f"frontend: window T={T} samples must be even and >= 4, hop {hop} in 1..T")
    b0, b1, step = (float(v) for v in cfg.bins_bpm)
    if not (0 < b0 <= b1 and step > 0):
        raise SqtoolError(f"frontend: bins_bpm {cfg.bins_bpm} must be (first > 0, last >= first, step > 0)")
    N = _exact_int(cfg.fs * 60.0 / step, "cos table size N = fs * 60 / bin_step")
    if N % 4:
        raise SqtoolError(f"frontend: cos table size N={N} must be a multiple of 4 (sin = cos at N/4)")
    k0 = _exact_int(b0 / step, "first bin / bin_step")
    k1 = _exact_int(b1 / step, "last bin / bin_step")
    if not k1 < N // 2:
        raise SqtoolError(f"frontend: last bin {b1} BPM is not below the Nyquist rate {cfg.fs * 30} BPM")
    k = np.arange(k0, k1 + 1, dtype=np.int64)                             # (F,)

    # --- polyphase FIR: prototype at L * fs_in, gain L, phases (L, P), Q15, exact DC per phase
    n_taps = L * P
    fir_float = sps.firwin(n_taps, cfg.fir_cutoff_hz, window=("kaiser", float(cfg.kaiser_beta)),
                           fs=L * float(cfg.fs_in))                       # sum = 1
    ph = (L * fir_float).reshape(P, L).T                                  # (L, P): ph[p, i] = L h[p + i L]
    g = np.round(ph * 32768.0).astype(np.int64)
    for p in range(L):
        r = 32768 - int(g[p].sum())
        order = np.argsort(-np.abs(ph[p]), kind="stable")
        for j in range(abs(r)):
            g[p, order[j % P]] += 1 if r > 0 else -1
    if np.abs(g).max() > 32767:
        raise SqtoolError("frontend: a polyphase FIR tap does not fit int16 Q15 (fs_in too close to fs?)")
    if np.abs(g).sum(axis=1).max() > 65535:
        raise SqtoolError("frontend: polyphase FIR L1 gain >= 2: int32 accumulation could overflow")

    # --- band-pass biquads, Q30
    sos = sps.butter(cfg.filter_order, [float(cfg.band[0]), float(cfg.band[1])], btype="bandpass",
                     fs=float(cfg.fs), output="sos")                     # (S, 6)
    one = 1 << cfg.iir_frac_bits
    sq = np.round(sos[:, [0, 1, 2, 4, 5]] * one).astype(np.int64)
    if sq.min() < -2**31 or sq.max() > 2**31 - 1:
        raise SqtoolError(f"frontend: a biquad coefficient does not fit Q{cfg.iir_frac_bits} int32")

    # --- Hann Q15 (periodic) and the cos table
    n = np.arange(T)
    hann = np.minimum(np.round((0.5 - 0.5 * np.cos(2 * np.pi * n / T)) * 32768.0), 32767).astype(np.int64)
    cone = 1 << cfg.cos_frac_bits
    cos = np.round(np.cos(2 * np.pi * np.arange(N) / N) * cone).astype(np.int64)
    xmax = (1 << (cfg.dft_in_bits - 1)) - 1
    dft_bound = int(((xmax * hann + (1 << 14)) >> 15).sum()) * int(np.abs(cos).max())
    if dft_bound + (1 << (cfg.power_shift - 1)) > 2**31 - 1:
        raise SqtoolError(f"frontend: DFT accumulators could overflow int32 (bound {dft_bound}); "
                          "lower dft_in_bits or cos_frac_bits")
    rmax = (dft_bound + (1 << (cfg.power_shift - 1))) >> cfg.power_shift
    if 2 * rmax * rmax > 2**32 - 1:
        raise SqtoolError(f"frontend: power does not fit uint32 with power_shift={cfg.power_shift}")
    idx = (k[None, :] * n[:, None]) % N                                  # (T, F)
    return FrontEndTables(
        up=L, down=M, fir=g.astype(np.int16), sos=sq.astype(np.int32), hann=hann.astype(np.int16),
        cos=cos.astype(np.int16), k=k, T=T, hop=hop, N=N, xmax=xmax, dft_bound=dft_bound,
        sos_float=sos, fir_float=fir_float, ct=cos[idx], st=cos[(idx + 3 * N // 4) % N])


def input_channels(cfg: FrontEndCfg) -> tuple[str, ...]:
    """Names of the C_in input rows: ppg (ppg2), then acc_x, acc_y, acc_z when the network reads acc."""
    return ("ppg", "ppg2")[:cfg.n_ppg] + (ACC_AXES if cfg.n_channels > 1 else ())


def network_channels(n_channels: int) -> tuple[str, ...]:
    """Names of the network's channels for a front end of n_channels (1, 2 or 4)."""
    if n_channels not in NETWORK_CHANNELS:
        raise SqtoolError(f"frontend: {n_channels} network channels: must be one of "
                          f"{', '.join(map(str, NETWORK_CHANNELS))}")
    return NETWORK_CHANNELS[n_channels]


def bin_bpm(cfg: FrontEndCfg) -> np.ndarray:
    """(F,) bin centres in BPM."""
    b0, b1, step = (float(v) for v in cfg.bins_bpm)
    k0, k1 = round(b0 / step), round(b1 / step)
    return np.arange(k0, k1 + 1, dtype=np.float64) * step


# ----------------------------------------------------------------------------- integer stages
def _hold_gaps(x: np.ndarray, gap: np.ndarray | None, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (C, n) int16, gap (n,) bool, last (C,) int16 -> held (C, n) int16, new last."""
    if gap is None or not gap.any() or x.shape[1] == 0:
        return x, (x[:, -1].copy() if x.shape[1] else last)
    n = x.shape[1]
    good_idx = np.where(~gap, np.arange(n), -1)
    src = np.maximum.accumulate(good_idx)                                 # (n,) last good index or -1
    held = np.where(src[None, :] >= 0, x[:, np.maximum(src, 0)], last[:, None]).astype(np.int16)
    return held, held[:, -1].copy()


def _fir_outputs(buf: np.ndarray, start: int, m0: int, m1: int, tab: FrontEndTables) -> np.ndarray:
    """Outputs m0..m1-1; buf (C, len) int16 holds inputs start..start+len-1 (with >= P-1 samples of
    history before the first n_m, zeros standing for x[<0]). -> (C, m1 - m0) int16. Long spans are computed
    BLOCK_OUTPUTS at a time (each output is independent), so that the (C, K, P) products stay in MBs."""
    if m1 - m0 > BLOCK_OUTPUTS:
        return np.concatenate([_fir_outputs(buf, start, a, min(a + BLOCK_OUTPUTS, m1), tab)
                               for a in range(m0, m1, BLOCK_OUTPUTS)], axis=1)
    L, M = tab.up, tab.down
    P = tab.fir.shape[1]
    m = np.arange(m0, m1, dtype=np.int64)
    nm = (m * M) // L                                                     # (K,) triggering input
    ph = (m * M) % L                                                      # (K,) phase
    cols = (nm - start)[:, None] - np.arange(P)[None, :]                  # (K, P)
    xs = buf[:, cols].astype(np.int64)                                    # (C, K, P)
    acc = (xs * tab.fir[ph].astype(np.int64)[None]).sum(axis=2)           # (C, K) |acc| < 2^31
    return np.clip((acc + (1 << 14)) >> 15, -32768, 32767).astype(np.int16)


def _biquads(x: np.ndarray, state: list, tab: FrontEndTables, frac: int) -> np.ndarray:
    """Causal Direct Form I cascade. x (C, K) int16; state[c][s] = [x1, x2, y1, y2] (python ints,
    updated in place). -> (C, K) int16."""
    C, K = x.shape
    S = tab.sos.shape[0]
    rnd = 1 << (frac - 1)
    out = np.empty((C, K), dtype=np.int16)
    coefs = [tuple(int(v) for v in row) for row in tab.sos]
    for c in range(C):
        seq = x[c].tolist()
        for s, (b0, b1, b2, a1, a2) in enumerate(coefs):
            x1, x2, y1, y2 = state[c][s]
            lo, hi = (-32768, 32767) if s == S - 1 else (-MID_SAT - 1, MID_SAT)
            ys = []
            for v in seq:
                y = (b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2 + rnd) >> frac
                y = lo if y < lo else (hi if y > hi else y)
                x2, x1, y2, y1 = x1, v, y1, y
                ys.append(y)
            state[c][s] = [x1, x2, y1, y2]
            seq = ys
        out[c] = seq
    return out


def _bitlen(v: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (0 -> 0), exact."""
    v = v.astype(np.int64)
    out = np.zeros(v.shape, dtype=np.int64)
    for b in range(63):
        out += (v >> b) > 0
    return out


def combine_ppg(p: np.ndarray, n_ppg: int) -> np.ndarray:
    """Step 6: powers (W, C_in, F) int64 -> (W, C, F): the first n_ppg rows (the PPG sensors) become one,
    the sum of each sensor's spectrum normalised to 2^NORM_FRAC at its max; n_ppg = 1: unchanged."""
    if n_ppg == 1:
        return p
    s = p[:, :n_ppg]                                                      # (W, S, F)
    smax = s.max(axis=2, keepdims=True)                                   # (W, S, 1)
    q = np.maximum(_bitlen(smax) - NORM_BITS, 0)
    pm = smax >> q                                                        # < 2^15
    pb = s >> q
    u = np.where(pm > 0, ((pb << NORM_FRAC) + (pm >> 1)) // np.maximum(pm, 1), 0)   # (W, S, F) <= 2^16
    return np.concatenate([u.sum(axis=1, keepdims=True), p[:, n_ppg:]], axis=1)


def combine_acc(p: np.ndarray, e: np.ndarray) -> np.ndarray:
    """n_channels = 2: powers (W, 1 + 3, F) (ppg, then the three axes) with the axes' power exponents e
    (W, 3) -> (W, 2, F): ppg, and the axes' powers on one scale, summed, >> 2 (rounded)."""
    live = e > np.iinfo(np.int64).min                                     # (W, 3) non-zero axes
    emax = np.where(live, e, np.iinfo(np.int64).min).max(axis=1, keepdims=True)   # (W, 1)
    sh = np.where(live, emax - e, 64)[..., None]                          # (W, 3, 1) >= 0
    a = np.where(sh < 32, p[:, 1:] >> np.minimum(sh, 31), 0)              # (W, 3, F)
    return np.concatenate([p[:, :1], (a.sum(axis=1, keepdims=True) + 2) >> 2], axis=1)


def quiet_rows(res: np.ndarray) -> np.ndarray:
    """Step 5's silence rule: resampled windows res (W, C_in, T) int16 -> (W, C_in) bool, the rows whose samples
    span at most QUIET counts."""
    return (res.max(axis=2).astype(np.int64) - res.min(axis=2)) <= QUIET


def window_codes(win: np.ndarray, cfg: FrontEndCfg, tab: FrontEndTables, quiet: np.ndarray | None = None) -> np.ndarray:
    """Steps 5-7 on a batch of windows: win (W, C_in, T) int16 -> codes (W, F, C) int8. quiet (W, C_in) bool
    (`quiet_rows` of the same windows' resampled samples; None: none): those rows are coded as all-zero."""
    x = win.astype(np.int64)                                              # (W, C_in, T)
    if quiet is not None:
        x = np.where(quiet[..., None], 0, x)                              # silence: as an all-zero row
    mx = np.abs(x).max(axis=2)                                            # (W, C_in)
    xmax = tab.xmax
    s = np.zeros_like(mx)                                                 # left shifts
    for _ in range(16):
        s += (mx > 0) & ((mx << (s + 1)) <= xmax)
    big = mx > xmax                                                       # right shifts r >= 1:
    r = big.astype(np.int64)                                              # smallest r with
    for _ in range(16):                                                   # (mx + 2^(r-1)) >> r <= XMAX
        ok = ((mx + ((1 << r) >> 1)) >> r) <= xmax
        r = np.where(big & ~ok, r + 1, r)
    rs = np.maximum(r, 1)[..., None]
    xr = np.where(r[..., None] > 0, (x + ((1 << rs) >> 1)) >> rs, x << s[..., None])   # (W, C_in, T)
    xw = (xr * tab.hann.astype(np.int64) + (1 << 14)) >> 15               # (W, C_in, T)
    re = xw @ tab.ct                                                      # (W, C_in, F) exact, < 2^31
    im = xw @ tab.st
    ps = cfg.power_shift
    re = (re + (1 << (ps - 1))) >> ps
    im = (im + (1 << (ps - 1))) >> ps
    p = re * re + im * im                                                 # (W, C_in, F) <= 2^31
    p = combine_ppg(p, cfg.n_ppg)                                         # (W, 1 + acc rows, F)
    if cfg.n_channels == 2:                                               # power exponent 2 (r - s) per axis
        e = np.where(mx > 0, 2 * (r - s), np.iinfo(np.int64).min)[:, cfg.n_ppg:]      # (W, 3)
        p = combine_acc(p, e)                                             # (W, 2, F)
    pmax = p.max(axis=2, keepdims=True)                                   # (W, C, 1)
    q = np.maximum(_bitlen(pmax) - CODE_BITS, 0)
    pm = pmax >> q
    pb = p >> q
    code = np.where(pm > 0, (508 * pb + pm) // np.maximum(2 * pm, 1) - 127, -127)
    return np.ascontiguousarray(code.transpose(0, 2, 1)).astype(np.int8)  # (W, F, C)


# ----------------------------------------------------------------------------- streaming
@dataclass
class FrontEndWindow:
    index: int
    t0_s: float
    spec: np.ndarray            # (F, C) int8
    flagged: float              # flagged inputs / inputs owned by the window
    flagged_q15: int = 0        # (flagged * 32768 + cnt // 2) // cnt, as the C returns it
    ppg_quiet: bool = False     # every PPG sensor's row is quiet (`quiet_rows`): the C's s->ppg_quiet


@dataclass
class FrontEndBlock:
    """The windows one `FrontEnd.push_block` completed, as arrays (k windows; FrontEndWindow's fields)."""
    index: np.ndarray           # (k,) int64
    spec: np.ndarray            # (k, F, C) int8
    flagged: np.ndarray         # (k,) float64
    flagged_q15: np.ndarray     # (k,) int64
    ppg_quiet: np.ndarray       # (k,) bool


def _q15(f, cnt):
    """(flagged * 32768 + cnt // 2) // cnt, 0 where cnt is 0: ints or int64 arrays."""
    return np.where(cnt > 0, (f * 32768 + cnt // 2) // np.maximum(cnt, 1), 0)


def _check_input(x, gap, cfg: FrontEndCfg) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    C = cfg.n_inputs
    if x.ndim == 1 and C == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != C:
        raise SqtoolError(f"frontend: input must be int16 (C={C}: {', '.join(input_channels(cfg))}, n), "
                          f"got shape {x.shape}")
    if x.dtype != np.int16:
        raise SqtoolError(f"frontend: input must be int16 samples, got {x.dtype} (use to_int16)")
    if gap is not None:
        gap = np.asarray(gap).reshape(-1)
        if gap.shape[0] != x.shape[1]:
            raise SqtoolError(f"frontend: gap flags ({gap.shape[0]}) must have one per sample ({x.shape[1]})")
        gap = gap.astype(bool)
    return x, gap


class FrontEnd:
    """Streaming front end: push int16 chunks of any size, get the windows they complete."""

    def __init__(self, cfg: FrontEndCfg, tables: FrontEndTables | None = None):
        self.cfg = cfg
        self.tab = tables or design(cfg)
        _check_cfg(cfg)
        self.C = cfg.n_inputs                           # input rows (PPG sensors + acc axes)
        self.reset()

    def reset(self) -> None:
        C, P = self.C, self.tab.fir.shape[1]
        self.n_in = 0                                   # inputs consumed
        self.m = 0                                      # next model-rate output index
        self.hist = np.zeros((C, P - 1), dtype=np.int16)   # held inputs n_in-P+1 .. n_in-1
        self.last = np.zeros(C, dtype=np.int16)
        self.iir = [[[0, 0, 0, 0] for _ in range(self.tab.sos.shape[0])] for _ in range(C)]
        self.buf = np.zeros((C, 0), dtype=np.int16)     # model samples m_buf0 .. m - 1
        self.res = np.zeros((C, 0), dtype=np.int16)     # ... the same samples before the band-pass (silence rule)
        self.m_buf0 = 0
        self.own = np.zeros((2, 0), dtype=np.int64)     # per buffered model sample: inputs, flagged
        self.pend = [0, 0]                              # inputs / flagged since the last output

    def push(self, x, gap=None) -> list[FrontEndWindow]:
        """Push int16 samples (C_in, n) and their gap flags (n,); returns the windows they complete."""
        b = self.push_block(x, gap)
        hop_s = float(self.cfg.hop_s)
        return [FrontEndWindow(int(i), int(i) * hop_s, b.spec[j], float(b.flagged[j]), int(b.flagged_q15[j]),
                               bool(b.ppg_quiet[j])) for j, i in enumerate(b.index)]

    def push_block(self, x, gap=None) -> FrontEndBlock:
        """`push` with the completed windows as arrays, coded BLOCK_WINDOWS at a time (`window_codes` over a batch):
        a recording pushed in long chunks (`firmware_bench.spectral.prepare`) keeps no Python object per window."""
        x, gap = _check_input(x, gap, self.cfg)
        n = x.shape[1]
        if n == 0:
            return self._emit()
        tab, L, M, P = self.tab, self.tab.up, self.tab.down, self.tab.fir.shape[1]
        held, self.last = _hold_gaps(x, gap, self.last)
        start = self.n_in - (P - 1)
        buf = np.concatenate([self.hist, held], axis=1)                  # inputs start .. n_in+n-1
        m1 = ((self.n_in + n) * L + M - 1) // M                          # outputs with n_m < n_in + n
        res = _fir_outputs(buf, start, self.m, m1, tab)                  # (C, m1 - m) resampled
        y = _biquads(res, self.iir, tab, self.cfg.iir_frac_bits)
        # ownership of inputs per new model sample
        g = np.zeros(n, dtype=np.int64) if gap is None else gap.astype(np.int64)
        cg = np.concatenate([[0], np.cumsum(g)])
        nm = (np.arange(self.m, m1, dtype=np.int64) * M) // L - self.n_in   # local triggering index
        ends = nm + 1
        begs = np.concatenate([[0], ends[:-1]]) if ends.size else ends
        cnt = ends - begs
        flg = cg[ends] - cg[begs]
        if ends.size:
            cnt[0] += self.pend[0]
            flg[0] += self.pend[1]
            rest = n - int(ends[-1])
            self.pend = [rest, int(cg[n] - cg[ends[-1]])]
        else:
            self.pend = [self.pend[0] + n, self.pend[1] + int(cg[n])]
        self.buf = np.concatenate([self.buf, y], axis=1)
        self.res = np.concatenate([self.res, res], axis=1)
        self.own = np.concatenate([self.own, np.stack([cnt, flg])], axis=1)
        self.m = m1
        self.n_in += n
        self.hist = buf[:, buf.shape[1] - (P - 1):]
        return self._emit()

    def _emit(self) -> FrontEndBlock:
        """The windows the buffer completes, then the buffer cut to what the next window needs."""
        T, hop = self.tab.T, self.tab.hop
        i0 = -(-self.m_buf0 // hop)                                      # the first i with i*hop >= m_buf0 (all
        a0 = i0 * hop - self.m_buf0                                      # earlier ones were emitted)
        held = self.buf.shape[1]
        k = (held - a0 - T) // hop + 1 if held >= a0 + T else 0         # windows complete
        starts = a0 + hop * np.arange(k)                                 # (k,) in the buffer
        spec, quiet = _codes_at(self.cfg, self.tab, self.res, self.buf, starts)   # (k, F, C), (k, C_in)
        own = np.concatenate([np.zeros((2, 1), np.int64), np.cumsum(self.own, axis=1)], axis=1)
        cnt, flg = own[:, starts + T] - own[:, starts]                   # (k,) inputs owned, flagged
        out = FrontEndBlock(i0 + np.arange(k), spec, np.where(cnt > 0, flg / np.maximum(cnt, 1), 0.0),
                            _q15(flg, cnt), quiet[:, :self.cfg.n_ppg].all(axis=1))
        drop = min((i0 + k) * hop - self.m_buf0, held)                   # keep from the next window on
        if drop > 0:
            self.buf, self.res, self.own = self.buf[:, drop:], self.res[:, drop:], self.own[:, drop:]
            self.m_buf0 += drop
        return out


# ----------------------------------------------------------------------------- offline
def _stages(cfg: FrontEndCfg, x, gap, tab: FrontEndTables) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 on a whole recording: int16 (C_in, N) -> (resampled, band-passed), both int16 (C_in, n_out)."""
    x, gap = _check_input(x, gap, cfg)
    C, n = x.shape
    P = tab.fir.shape[1]
    held, _ = _hold_gaps(x, gap, np.zeros(C, dtype=np.int16))
    n_out = (n * tab.up + tab.down - 1) // tab.down
    buf = np.concatenate([np.zeros((C, P - 1), dtype=np.int16), held], axis=1)
    res = _fir_outputs(buf, -(P - 1), 0, n_out, tab)                      # (C, n_out)
    state = [[[0, 0, 0, 0] for _ in range(tab.sos.shape[0])] for _ in range(C)]
    return res, _biquads(res, state, tab, cfg.iir_frac_bits)


def filtered(cfg: FrontEndCfg, x, gap=None, tables: FrontEndTables | None = None) -> np.ndarray:
    """Steps 1-3 on a whole recording: int16 (C_in, N) -> band-passed model-rate int16 (C_in, ceil(N L / M));
    window i of the ring is filtered(...)[:, i hop : i hop + T]."""
    return _stages(cfg, x, gap, tables or design(cfg))[1]


def _codes_at(cfg: FrontEndCfg, tab: FrontEndTables, res: np.ndarray, y: np.ndarray, starts: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Steps 4-7 of the windows at `starts` (k,) of the model-rate samples res (resampled) and y (band-passed),
    (C_in, n) int16 each -> (codes (k, F, C) int8, quiet (k, C_in) bool), BLOCK_WINDOWS windows at a time."""
    if not len(starts):
        return np.zeros((0, tab.n_bins, cfg.n_channels), np.int8), np.zeros((0, len(y)), bool)
    frames = np.lib.stride_tricks.sliding_window_view(y, tab.T, axis=1)     # (C_in, n - T + 1, T), a view
    rframes = np.lib.stride_tricks.sliding_window_view(res, tab.T, axis=1)  # (idem), the resampled samples
    blocks = np.array_split(starts, -(-len(starts) // BLOCK_WINDOWS))
    quiet = [quiet_rows(rframes[:, blk].transpose(1, 0, 2)) for blk in blocks]           # (w, C_in) per block
    codes = np.concatenate([window_codes(np.ascontiguousarray(frames[:, blk].transpose(1, 0, 2)), cfg, tab, q)
                            for blk, q in zip(blocks, quiet)])            # (k, F, C), block by block
    return codes, np.concatenate(quiet)


def spectra(cfg: FrontEndCfg, x, gap=None, tables: FrontEndTables | None = None, ppg_quiet: bool = False):
    """Whole recording: x int16 (C_in, N) -> (spec int8 (W, F, C), t0 (W,) s, flagged (W,) float), and with
    ppg_quiet=True a fourth item: (W,) bool, every PPG sensor of the window quiet (FrontEndWindow.ppg_quiet).

    Bit-exact with FrontEnd(cfg).push(x, gap) (the same integer stages, vectorised over time)."""
    tab = tables or design(cfg)
    x, gap = _check_input(x, gap, cfg)
    C, n = cfg.n_channels, x.shape[1]
    L, M, T, hop = tab.up, tab.down, tab.T, tab.hop
    F = tab.n_bins
    res, y = _stages(cfg, x, gap, tab)                                    # (C_in, n_out) each
    n_out = y.shape[1]
    W = (n_out - T) // hop + 1 if n_out >= T else 0
    if W == 0:
        empty = (np.zeros((0, F, C), np.int8), np.zeros(0), np.zeros(0))
        return (*empty, np.zeros(0, bool)) if ppg_quiet else empty
    starts = np.arange(W) * hop
    codes, quiet = _codes_at(cfg, tab, res, y, starts)                    # (W, F, C), (W, C_in)
    g = np.zeros(n, dtype=np.int64) if gap is None else gap.astype(np.int64)
    cg = np.concatenate([[0], np.cumsum(g)])
    end = (starts + T - 1) * M // L + 1                                   # inputs < end owned
    beg = np.where(starts > 0, (starts - 1) * M // L + 1, 0)
    flagged = (cg[end] - cg[beg]) / (end - beg)
    if ppg_quiet:
        return codes, starts / float(cfg.fs), flagged, quiet[:, :cfg.n_ppg].all(axis=1)
    return codes, starts / float(cfg.fs), flagged


def flagged_q15(cfg: FrontEndCfg, gap, n: int, tables: FrontEndTables | None = None) -> np.ndarray:
    """(W,) the C's uint16 flagged fraction per window for n inputs with these gap flags."""
    tab = tables or design(cfg)
    L, M, T, hop = tab.up, tab.down, tab.T, tab.hop
    n_out = (n * L + M - 1) // M
    W = (n_out - T) // hop + 1 if n_out >= T else 0
    starts = np.arange(W) * hop
    g = np.zeros(n, dtype=np.int64) if gap is None else np.asarray(gap).astype(bool).astype(np.int64)
    cg = np.concatenate([[0], np.cumsum(g)])
    end = (starts + T - 1) * M // L + 1
    beg = np.where(starts > 0, (starts - 1) * M // L + 1, 0)
    f, c = cg[end] - cg[beg], end - beg
    return (f * 32768 + c // 2) // c


# ----------------------------------------------------------------------------- device quantisation
def default_gains(cfg: FrontEndCfg) -> tuple[float, ...]:
    """Counts per unit per input row: the PPG sensors (TROIKA-like units), then acc in g."""
    return (cfg.gain_ppg,) * cfg.n_ppg + (cfg.gain_acc,) * (cfg.n_inputs - cfg.n_ppg)


def to_int16(x, gains: Sequence[float] | float | str | None = None, cfg: FrontEndCfg | None = None,
             share: Sequence[int] = ()) -> np.ndarray:
    """Float (C, N) -> int16 (C, N): round(x * gain), saturating. gains: per channel, one for all,
    None (= default_gains(cfg), cfg guessed from C: 1, 2, 4, 5 rows) or "robust" (per recording: the 99.9th
    percentile of |x - median| -> 8000 counts; replay only, a device cannot do this). Robust: the rows in `share`
    get one gain (the largest of theirs: one sensor's full scale, e.g. an accelerometer's axes), and a row whose
    level (a PPG's DC, gravity on an axis) would saturate at its gain is replayed without it (x - median, as an
    AC-coupled sensor gives it): saturated it would be one constant, and the front end's band-pass removes the
    level anyway. Rows that fit keep their level, to the bit. x may be a list of C (N,) rows (`record.channel_rows`:
    never stacked); the work is row by row, INT16_BLOCK samples at a time where it can be: a day-long recording's
    temporaries are about one row's (44 MB at 64 Hz), not all rows' at once."""
    rows = [np.asarray(r, dtype=np.float64) for r in x] if isinstance(x, (list, tuple)) else \
        np.asarray(x, dtype=np.float64)
    if isinstance(rows, np.ndarray) and rows.ndim == 1:
        rows = rows[None]
    if isinstance(rows, np.ndarray) and rows.ndim != 2 or any(r.ndim != 1 or len(r) != len(rows[0]) for r in rows):
        raise SqtoolError(f"to_int16: expected (C, N) samples, got shape {np.shape(rows)}")
    if not all(np.isfinite(r).all() for r in rows):
        raise SqtoolError("to_int16: samples contain NaN/Inf (flag them as gaps and fill first)")
    C = len(rows)
    level = [False] * C                                                             # rows replayed as x - median
    if gains is None:
        gains = default_gains(cfg or FrontEndCfg(n_channels=4 if C >= 4 else 1, n_ppg=2 if C in (2, 5) else 1))
    elif isinstance(gains, str):
        if gains != "robust":
            raise SqtoolError(f"to_int16: gains '{gains}' unknown (per-channel numbers, None or 'robust')")
        med = np.array([np.median(row) for row in rows])                           # (C,)
        dev = np.array([_spread(row, m) for row, m in zip(rows, med)])              # (C,)
        if len(share):
            dev[list(share)] = dev[list(share)].max()
        gains = 8000.0 / np.maximum(dev, 1e-12)
        # |x * g| of a row's largest |x| is the largest |x * g| (rounding is monotone): no (N,) temporary
        level = [max(row.max(), -row.min()) * g > 32767 for row, g in zip(rows, gains)]   # saturates: x - median
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64).reshape(-1), (C,)) if np.size(gains) in (1, C) else None
    if g is None:
        raise SqtoolError(f"to_int16: {np.size(gains)} gains for {C} channels")
    out = np.empty((C, len(rows[0]) if C else 0), np.int16)                        # (C, N)
    for c in range(C):
        for a in range(0, out.shape[1], INT16_BLOCK):
            row = rows[c][a:a + INT16_BLOCK]
            row = row - med[c] if level[c] else row
            out[c, a:a + INT16_BLOCK] = np.clip(np.round(row * g[c]), -32768, 32767)
    return out


INT16_BLOCK = 1 << 20    # samples `to_int16` quantises at a time (8 MB temporaries each)


def _spread(row: np.ndarray, med: float) -> float:
    """The 99.9th percentile of |row - med|, with one (N,) temporary (partitioned in place)."""
    d = row - med
    np.abs(d, out=d)
    return float(np.percentile(d, 99.9, overwrite_input=True))


__all__ = ["FrontEndCfg", "FrontEndTables", "FrontEnd", "FrontEndWindow", "design", "spectra", "to_int16",
           "bin_bpm", "default_gains", "taps_per_phase", "filtered", "flagged_q15", "window_codes", "quiet_rows",
           "combine_ppg", "QUIET",
           "input_channels", "network_channels", "combine_acc", "CHANNELS", "ACC_AXES", "DEFAULT_GAINS", "NORM_BITS", "NORM_FRAC", "MAX_PPG"]
