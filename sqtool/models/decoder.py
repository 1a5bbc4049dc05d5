"""Probabilistic heart-rate decoder: an HMM over heart-rate bins, in float and in bit-exact fixed point.

A network outputs, every hop (2 s), one logit per heart-rate bin (default grid 30..230 BPM step 1:
F = 201 bins), int8 with scale `logit_scale` and zero point 0. This module turns the sequence of
per-window distributions into the reported heart rate, an uncertainty interval and a confidence.

Model (the same in every decoder below)
    hidden state    the HR bin x_t in 0..F-1, bin centres b_k = lo + k * step
    start           pi = uniform, or a Gaussian around `start_bpm` (std `start_sigma_bpm`)
    transition      A[i, j] = (1 - floor) * g[j - i] + floor / F, where g is a Gaussian of std
                    `sigma_bpm` sampled on the bin grid, truncated at +-R = ceil(3 sigma / step) bins
                    and normalised so that sum(g) = 1. Mass that a step would carry off the grid is
                    dropped (the walk is conditioned on staying on the grid); `floor` is the per-hop
                    probability of a jump anywhere, which lets the tracker re-acquire after a lock-on
                    to a wrong peak.
    likelihood      L_t[k] = softmax(logits_t)[k]; an invalid window (gated out) has L_t = 1 everywhere,
                    i.e. it only predicts. With an emission floor kappa > 0 (`emission_floor`), L_t[k] is
                    (exp(logit_k - max logit) + kappa) / (1 + kappa): every bin keeps at least kappa x the
                    window's peak, so a window the network misreads costs a belief at most ln(1 / kappa), while
                    the ratios between the bins it does read stay as they are. This is the robust alternative
                    to a logit temperature, which flattens every ratio (and with it a narrow, correct pulse peak
                    against a broad wrong plateau).
    evidence        optional (evidence_weight mu > 0): L_t[k] is multiplied by ((eps + n_k / 254) / (1 + eps))^mu,
                    the motion-subtracted PPG spectrum of the window as the firmware front end codes it:
                    n_k = clip(ppg_k - max_axis acc_k, 0, 254) on the int8 spectra (codes 254 P / Pmax - 127
                    per channel; `evidence_codes`), eps = evidence_floor. A bin where the accelerometer is as
                    strong as the PPG (relative to each channel's own peak) is damped by eps^mu, a PPG peak with
                    no motion under it is not: the classic spectral-subtraction rule (TROIKA, JOSS) as a prior
                    on top of the network, which sees the same spectra but can be fooled off its training
                    distribution (a pulse weaker than the arm's motion at an unusual cadence). mu is chosen on
                    inner out-of-fold logits (`hr_bins.select_decoder`; 0 = off, the network alone).
    first window    posterior_0 ~ pi * L_0 (no transition before the first window).

Float decoders (numpy float64): `forward` (causal filtering, what runs on the device), `forward_backward`
(smoothed posteriors, offline), `viterbi` (most likely path, offline).

Read-out of a posterior p (the same in float and in fixed point):
    hr      the argmax bin a (first one on ties) refined by the posterior mean over bins
            a - refine_bins .. a + refine_bins (clipped to the grid): hr = b_a + step * sum((k - a) p_k) / sum(p_k)
    lo, hi  by `interval_mode`: "posterior" the central `interval` (0.9) of the posterior, reading its CDF as
            piecewise linear, each bin's mass spread uniformly over [b_k - step/2, b_k + step/2]; "spread"
            hr -+ (c + k S_t) clamped to the grid's extent [b_0 - step/2, b_{F-1} + step/2] (which the posterior's
            interval never leaves: the truth the network reads lies within it; hr lies on the grid, so the interval
            still holds it), where S_t is the exponential mean (weight 2^-spread_shift per window, the first valid
            window's value at the start, held over invalid windows) of |b_n - hr| with n the network's own argmax
            of the window (first largest logit): how far the network has recently been from the track. A posterior that is sharp but wrong (a wearer whose pulse the network misreads for
            minutes) is as narrow as a right one; the network arguing with the track is what such minutes show,
            and an interval that widens with it holds the truth about as often for every wearer (the posterior's
            calibrated mass holds it on 90 % of the windows pooled, but on 63-99 % of a wearer's). c, k and the
            shift are chosen on inner out-of-fold windows (`hr_bins.select_decoder`)
    conf    the quality output, by `conf_measure`: "mass" (default) the posterior mass of the bins whose
            centres lie within +-conf_halfwidth_bpm of b_a (1 = the decoder is sure within +-5 BPM); "width"
            1 - (hi - lo) / span, span = step * F the grid's extent (1 = a zero-width interval); then, with
            calibration knots (`conf_calib_x/y`, fitted by `fit_conf_calibration` on inner out-of-fold windows),
            mapped piecewise-linearly to 1 - expected |error| / span: a confidence on one scale whatever the
            measure and the model (without it, windows of two models with different measures do not rank together)
    std     the posterior standard deviation (float decoders only)

Fixed point (`IntDecoder`, and the C in sqtool/export/templates/sq_decoder.c, bit-exact with it)
No float anywhere in a step; all tables are computed at export time by `decoder_tables`. F <= 1024.

    posterior   p[k] uint32, sum(p) == 2^20 exactly after every step (Q20 probabilities). Stored with R zero
                pads on each side so the convolution needs no bounds checks.
    taps        t[d] uint16 Q15 for d = 0..R (symmetric): t[d] = round(2^15 g[d]) for d >= 1 and the
                centre tap t[0] = 2^15 - 2 sum_{d>=1} t[d], so the full kernel sums to 2^15 exactly.
    predict     c[j] = t[0] p[j] + sum_{d=1..R} t[d] (p[j-d] + p[j+d])                (uint64 accumulator)
                bound: c[j] <= max(p) * sum(kernel) <= 2^20 * 2^15 = 2^35 (p[j-d] + p[j+d] <= 2^20: uint32).
    floor       prior[j] = ((c[j] + 8) >> 4) + FLOOR_ADD, FLOOR_ADD = round(2^31 floor / ((1 - floor) F)) (uint32)
                bound: (c + 8) >> 4 <= 2^31, FLOOR_ADD <= 2^31 / F (DecoderCfg keeps floor <= 0.5), so
                prior < 2^32. Since (1 - floor) (c' + FLOOR_ADD) = (1 - floor) c' + floor 2^31 / F and the
                scale goes away in the normalisation, this is the mixing (1 - floor) g * p + floor / F.
    likelihood  d_k = max(logits) - logits[k] in 0..255, LUT[d] = round(2^24 (exp(-logit_scale d) + kappa) /
                (1 + kappa)) (uint32, LUT[0] = 2^24; kappa = emission_floor, 0 by default: the emission floor
                is in the table, not in the code); an invalid window has no likelihood (prod = prior).
                With evidence: e_k = logits[k] - PEN[n_k] (int16, -128 - 255 .. 127), PEN[n] = min(255,
                round(-mu ln((eps + n / 254) / (1 + eps)) / logit_scale)) (uint8, PEN[254] = 0), and
                d_k = min(255, max(e) - e_k): the evidence is a shift of the logits in their own units.
                (Q24, not Q16: with a Q16 LUT the posterior's L1 error against float was ~10x larger at
                logit_scale >= 0.125, because exp(-s d) for d ~ 20..60 kept only 1-2 significant digits.)
    update      prod_k = prior_k * LUT[d_k] (uint64, < 2^32 * 2^24 = 2^56); total = sum prod_k
                <= (sum prior) 2^24 <= (2^31 + F FLOOR_ADD) 2^24 <= (2^32 + F) 2^24 < 2^57.
    normalise   ONE 64-bit division per window. s = least shift with (total >> s) < 2^32, T = total >> s,
                r = floor(2^63 / T), p_k = ((prod_k >> s) r + 2^42) >> 43 (round to nearest).
                bound: sum_k (prod_k >> s) <= T, so (prod_k >> s) r <= T 2^63 / T = 2^63 and + 2^42 < 2^64.
                Each p_k is within 1/2 + 2^20 / T' of its exact value (T' >= 2^31 when s > 0), so the
                deficit e = 2^20 - sum(p) has |e| <= F/2 + 2; it is added to the (first) largest bin, which
                holds >= (2^20 - F/2 - 2) / F > F/2 + 2 for F <= 1024: the sum is exactly 2^20, no underflow.
                If total == 0 (only possible with floor == 0: the prior and the likelihood do not overlap)
                the prior is reset to all ones, i.e. the posterior restarts from the likelihood alone.
    read-out    a = first largest bin of the final p; int64 numerators, int32 denominators:
    hr_mbpm     BIN_LO_MBPM + STEP_MBPM a + div_round(STEP_MBPM num, den), num = sum (k - a) p_k,
                den = sum p_k over the refine window (den >= p_a >= 1); |STEP_MBPM num| <= 5000 * 3 * 2^20.
    lo/hi_mbpm  T = round(q 2^20) for q = (1 -+ interval) / 2; k = first bin with CDF_k >= T, prev = CDF_{k-1};
                BIN_LO_MBPM + STEP_MBPM k + div_round(STEP_MBPM (2 (T - prev) - p_k), 2 p_k); then
                lo_mbpm = min(lo_mbpm, hr_mbpm), hi_mbpm = max(hi_mbpm, hr_mbpm): the equal-tailed interval of a
                two-peaked posterior can leave out its own largest peak (hr), and a device must never report a
                heart rate outside its own interval (the width, conf "width", grows with it: less certain).
    spread      (interval_mode "spread", after the posterior's lo/hi, which conf "width" reads) on a valid
                window: D = |BIN_LO_MBPM + STEP_MBPM n - hr_mbpm| << 8 (n = first largest int8 logit; D < 2^23 << 8
                = 2^31 for F <= 1024, STEP <= 5 BPM), S = D on the first valid window, else
                S = S - (S >> SHIFT) + (D >> SHIFT) (uint32, S <= max D); H = C_MBPM + ((K_Q8 S + 2^15) >> 16)
                (uint64: K_Q8 = round(256 k) <= 2^14), lo_mbpm = max(EDGE_LO, hr_mbpm - H), hi_mbpm = min(EDGE_HI,
                hr_mbpm + H): the grid's extent, EDGE_LO = BIN_LO_MBPM - E, EDGE_HI = BIN_LO_MBPM + STEP_MBPM (F - 1)
                + E, E = (STEP_MBPM + 1) >> 1 (a half step rounded outwards; the posterior's lo/hi never leave it).
    conf_q15    "mass": (sum of p over a - W .. a + W + 16) >> 5, W = floor(conf_halfwidth / step): 0..32768
                (uint16). "width": w = max(0, hi_mbpm - lo_mbpm) of the posterior's interval, CONF_INV = round(2^31 / (STEP_MBPM F)),
                32768 - min(32768, (w CONF_INV + 2^15) >> 16) (uint64; w <= STEP_MBPM F so w CONF_INV <~ 2^31).
    calibrated  with knots (conf_calib_x, conf_calib_y, Q15, at most 16): conf_q15 -> y_0 below x_0, y_K above
                x_K, else y_k + ((y_{k+1} - y_k) (conf_q15 - x_k) + dx / 2) / dx, dx = x_{k+1} - x_k (uint32).
    div_round   integer division rounding half away from zero (C's truncating division on magnitudes).

Cost per step: F (R + 1) 32x32->64 MACs (201 x 13 for sigma = 4 BPM, thanks to the symmetric taps), F
32x32->64 multiplies for the update, F 64-bit multiplies for the normalisation, one 64-bit division and three
64/32-bit divisions in the read-out. Measured (default cfg, x86-64 gcc -O2, callgrind): ~35 k instructions
per step, 63 % of them in the predict loop; Cortex-M4 -O2: ~1.3 KB code + 1.85 KB const tables, 1.7 KB state
(+ 2F bytes of int16 emission scratch). In the pipeline (134 bins, benchmarks/results/firmware_pipeline*.md):
16 k Cortex-M4 instructions per hop; with evidence 20 k (one pass over the window's F x 4 codes) and a 255-byte
penalty table.
Against `forward` on network-like logits (`synthetic_logits`) the fixed-point HR differs by < 0.01 BPM on average
(logit_scale 0.05..0.25, sigma 2..8); on uniformly random logits the mean is 0.01..0.16 BPM, all of it from
0.1-0.2 % of windows where two far modes are tied to ~1e-4 and the argmax picks the other one.

`estimate_transition` fits sigma_bpm from training truth (robust std of the per-hop HR change);
`estimate_floor` fits the jump probability. `check_grid` refuses a network whose logits do not match the bins.
`synthetic_logits` makes network-like int8 logits (a peak on a random walk, outliers, harmonics) for tests.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from sqtool.core.config import from_dict as _from_dict
from sqtool.core.errors import SqtoolError

POST_BITS = 20
POST_ONE = 1 << POST_BITS     # the fixed-point posterior sums to this
TAP_ONE = 1 << 15             # the transition kernel sums to this
LUT_ONE = 1 << 24             # LUT[0]
PRIOR_SHIFT = POST_BITS + 15 - 31      # c (<= 2^35) -> prior (<= 2^31)
NORM_SHIFT = 63 - POST_BITS            # p = ((prod >> s) * floor(2^63 / T) + 2^42) >> 43  ->  sum 2^20
MAX_STEP_MBPM = 5000          # read-out bounds (see the docstring)
MAX_REFINE = 3
MAX_BINS = 1024
MAX_GRID_BPM = 10000.0        # a grid's top: hr + c + k S stays below 2^31 mBPM (hr, c <= 1e7, 64 S <= 6.4e8)
MAX_EVIDENCE_WEIGHT = 8.0
MAX_EMISSION_FLOOR = 0.5     # a window whose every bin keeps half the peak says almost nothing
EVIDENCE_MAX = 254            # evidence codes n_k are 0..254 (int8 spectra: ppg - acc)
INTERVAL_MODES = ("posterior", "spread")
MAX_SPREAD_SHIFT = 8          # S's weight per window 2^-shift: 1/2 .. 1/256 (~1 s .. ~8.5 min at a 2 s hop)
MAX_SPREAD_K = 64.0           # K_Q8 = round(256 k) <= 2^14
SPREAD_FRAC = 8               # S is held in milli-BPM x 2^8
SPREAD_KEYS = ("interval_mode", "spread_shift", "spread_c_bpm", "spread_k")


# ----------------------------------------------------------------------------- config

@dataclass
class DecoderCfg:
    bins_bpm: tuple[float, float, float] = (30.0, 230.0, 1.0)   # (first centre, last centre, step), BPM
    sigma_bpm: float = 4.0             # Gaussian transition std per hop (2 s)
    floor: float = 1e-3                # per-hop probability of a jump to anywhere on the grid (uniform mixing)
    logit_scale: float = 0.125         # int8 logit -> real logit (zero point 0)
    start: str = "uniform"             # "uniform" | "gaussian" (around start_bpm)
    start_bpm: float = 80.0
    start_sigma_bpm: float = 20.0
    interval: float = 0.9              # central posterior interval reported as (lo, hi)
    conf_halfwidth_bpm: float = 5.0    # conf = posterior mass within +- this of the estimate
    conf_measure: str = "mass"         # "mass" (as above) | "width": conf = 1 - interval width / grid extent
    refine_bins: int = 2               # hr = posterior mean over argmax +- refine_bins
    evidence_weight: float = 0.0       # mu: weight of the motion-subtracted PPG spectrum (0 = the network alone)
    evidence_floor: float = 0.02       # eps: a bin fully under the accelerometer's peak keeps eps^mu
    emission_floor: float = 0.0        # kappa: every bin's likelihood is at least kappa x the window's peak
    conf_calib_x: tuple[int, ...] = ()  # calibration knots: the measure's raw conf, Q15, strictly increasing
    conf_calib_y: tuple[int, ...] = ()  # ... -> conf = 1 - expected |error| / span, Q15, non-decreasing (() = raw)
    interval_mode: str = "posterior"   # (lo, hi): "posterior" the central `interval` | "spread": hr -+ (c + k S)
    spread_shift: int = 4              # S: the recent |network argmax - hr|, exponential, weight 2^-shift per window
    spread_c_bpm: float = 0.0          # c, BPM
    spread_k: float = 0.0              # k (rounded to 1/256 in fixed point)

    def __post_init__(self):
        self.bins_bpm = tuple(float(v) for v in self.bins_bpm)
        if len(self.bins_bpm) != 3 or not all(math.isfinite(v) for v in self.bins_bpm):
            raise SqtoolError(f"decoder bins_bpm must be 3 finite numbers (lo, hi, step), got {self.bins_bpm}")
        lo, hi, step = self.bins_bpm
        if not step > 0 or not hi > lo or lo < 0:
            raise SqtoolError(f"decoder bins_bpm {self.bins_bpm}: need 0 <= lo < hi and step > 0")
        if hi > MAX_GRID_BPM:
            raise SqtoolError(f"decoder bins_bpm {self.bins_bpm}: the grid's top {hi:g} is over {MAX_GRID_BPM:g} "
                              "per minute (the fixed-point limit)")
        n = (hi - lo) / step
        if abs(n - round(n)) > 1e-6:
            raise SqtoolError(f"decoder bins_bpm {self.bins_bpm}: (hi - lo) / step = {n:g} is not a whole number of bins")
        for name, v in (("lo", lo), ("step", step)):
            if abs(v * 1000 - round(v * 1000)) > 1e-6:
                raise SqtoolError(f"decoder bins_bpm {name} = {v} is not a whole number of milli-BPM")
        if round(step * 1000) > MAX_STEP_MBPM:
            raise SqtoolError(f"decoder bins_bpm step {step} BPM is over the fixed-point limit of {MAX_STEP_MBPM / 1000} BPM")
        if not 2 <= self.n_bins <= MAX_BINS:
            raise SqtoolError(f"decoder bins_bpm {self.bins_bpm} gives {self.n_bins} bins (need 2..{MAX_BINS})")
        if not (math.isfinite(self.sigma_bpm) and self.sigma_bpm > 0):
            raise SqtoolError(f"decoder sigma_bpm must be a finite number > 0, got {self.sigma_bpm}")
        if not (math.isfinite(self.floor) and 0 <= self.floor < 1):
            raise SqtoolError(f"decoder floor must be in [0, 1), got {self.floor}")
        if self.floor > 0.5:       # a tracker that forgets more than half its belief every hop; and a fixed-point bound
            raise SqtoolError(f"decoder floor {self.floor} is over 0.5 (the jump probability per hop must stay small)")
        if not (math.isfinite(self.logit_scale) and self.logit_scale > 0):
            raise SqtoolError(f"decoder logit_scale must be a finite number > 0, got {self.logit_scale}")
        if self.start not in ("uniform", "gaussian"):
            raise SqtoolError(f"decoder start must be 'uniform' or 'gaussian', got {self.start!r}")
        if self.start == "gaussian" and not (math.isfinite(self.start_bpm) and math.isfinite(self.start_sigma_bpm)
                                             and self.start_sigma_bpm > 0):
            raise SqtoolError(f"decoder gaussian start needs a finite start_bpm and start_sigma_bpm > 0, "
                              f"got {self.start_bpm}, {self.start_sigma_bpm}")
        if not (math.isfinite(self.interval) and 0 < self.interval < 1):
            raise SqtoolError(f"decoder interval must be in (0, 1), got {self.interval}")
        if not (math.isfinite(self.conf_halfwidth_bpm) and self.conf_halfwidth_bpm >= 0):
            raise SqtoolError(f"decoder conf_halfwidth_bpm must be a finite number >= 0, got {self.conf_halfwidth_bpm}")
        if self.conf_measure not in ("mass", "width"):
            raise SqtoolError(f"decoder conf_measure must be 'mass' or 'width', got {self.conf_measure!r}")
        if isinstance(self.refine_bins, bool) or int(self.refine_bins) != self.refine_bins \
                or not 0 <= self.refine_bins <= MAX_REFINE:
            raise SqtoolError(f"decoder refine_bins must be an integer in 0..{MAX_REFINE}, got {self.refine_bins}")
        self.refine_bins = int(self.refine_bins)
        if not (math.isfinite(self.evidence_weight) and 0 <= self.evidence_weight <= MAX_EVIDENCE_WEIGHT):
            raise SqtoolError(f"decoder evidence_weight must be in [0, {MAX_EVIDENCE_WEIGHT}], got {self.evidence_weight}")
        if not (math.isfinite(self.evidence_floor) and 1e-4 <= self.evidence_floor <= 1):
            raise SqtoolError(f"decoder evidence_floor must be in [1e-4, 1], got {self.evidence_floor}")
        if not (math.isfinite(self.emission_floor) and 0 <= self.emission_floor <= MAX_EMISSION_FLOOR):
            raise SqtoolError(f"decoder emission_floor must be in [0, {MAX_EMISSION_FLOOR}], got {self.emission_floor}")
        self.conf_calib_x, self.conf_calib_y = _calib_knots(self.conf_calib_x, self.conf_calib_y)
        if self.interval_mode not in INTERVAL_MODES:
            raise SqtoolError(f"decoder interval_mode must be one of {', '.join(INTERVAL_MODES)}, "
                              f"got {self.interval_mode!r}")
        if isinstance(self.spread_shift, bool) or int(self.spread_shift) != self.spread_shift \
                or not 1 <= self.spread_shift <= MAX_SPREAD_SHIFT:
            raise SqtoolError(f"decoder spread_shift must be an integer in 1..{MAX_SPREAD_SHIFT}, got {self.spread_shift}")
        self.spread_shift = int(self.spread_shift)
        if not (math.isfinite(self.spread_c_bpm) and 0 <= self.spread_c_bpm <= self.span_bpm):
            raise SqtoolError(f"decoder spread_c_bpm must be in [0, {self.span_bpm:g}] BPM (the grid's extent), "
                              f"got {self.spread_c_bpm}")
        if not (math.isfinite(self.spread_k) and 0 <= self.spread_k <= MAX_SPREAD_K):
            raise SqtoolError(f"decoder spread_k must be in [0, {MAX_SPREAD_K:g}], got {self.spread_k}")
        if self.interval_mode == "posterior":       # no spread interval: its fields at their defaults, so that a
            for f in dataclasses.fields(self):        # decoder equals itself read back from its dict (to_dict)
                if f.name in SPREAD_KEYS[1:]:
                    setattr(self, f.name, f.default)

    # grid
    @property
    def n_bins(self) -> int:
        lo, hi, step = self.bins_bpm
        return int(round((hi - lo) / step)) + 1

    @property
    def centres(self) -> np.ndarray:                  # (F,) BPM
        lo, _, step = self.bins_bpm
        return lo + step * np.arange(self.n_bins, dtype=np.float64)

    @property
    def radius(self) -> int:                          # transition half-width R, bins
        return min(int(math.ceil(3.0 * self.sigma_bpm / self.bins_bpm[2] - 1e-9)), self.n_bins - 1)

    @property
    def conf_bins(self) -> int:                       # W: conf window is argmax +- W bins
        return int(math.floor(self.conf_halfwidth_bpm / self.bins_bpm[2] + 1e-9))

    @property
    def span_bpm(self) -> float:                      # the grid's extent, step * F (conf_measure "width")
        return self.bins_bpm[2] * self.n_bins

    @property
    def edges_bpm(self) -> tuple[float, float]:       # the grid's extent: b_0 - step/2 .. b_(F-1) + step/2
        lo, hi, step = self.bins_bpm
        return lo - step / 2, hi + step / 2

    @property
    def conf_error_span(self) -> float | None:        # calibrated: expected |error| = (1 - conf) x this; else None
        return self.span_bpm if self.conf_calib_x else None

    @property
    def uses_evidence(self) -> bool:
        return self.evidence_weight > 0

    def evidence_loglik(self, n: np.ndarray) -> np.ndarray:
        """Evidence codes (any shape, 0..254) -> mu ln((eps + n / 254) / (1 + eps)) (<= 0, 0 at n = 254)."""
        eps = self.evidence_floor
        return self.evidence_weight * np.log((eps + np.asarray(n, np.float64) / EVIDENCE_MAX) / (1 + eps))

    @property
    def emission_text(self) -> str:                   # what the decoder multiplies into its belief, for the kit
        text = "the network's heart-rate bins"
        if self.uses_evidence:
            text += (f" times the motion-subtracted PPG spectrum to the power {self.evidence_weight:g} (floor "
                     f"{self.evidence_floor:g}: a bin under the accelerometer's peak is damped)")
        if self.emission_floor > 0:
            text += f", each bin at least {self.emission_floor:g} x the window's peak (emission floor)"
        return text

    @property
    def interval_text(self) -> str:                   # what (lo, hi) is, for logs and the firmware kit
        if self.interval_mode == "posterior":
            return f"central posterior mass {100 * self.interval:.4g} %"
        return (f"hr -+ ({self.spread_c_bpm:g} + {self.spread_k:g} S) BPM, S = the recent |network's own argmax - hr| "
                f"(exponential, weight 1/{1 << self.spread_shift} per window)")

    @property
    def conf_text(self) -> str:                       # what conf means, for logs and the firmware kit
        raw = (f"1 - the posterior interval's width / the grid's {self.span_bpm:g} BPM" if self.conf_measure == "width"
               else f"posterior mass within +-{self.conf_halfwidth_bpm:g} BPM of the estimate")
        if not self.conf_calib_x:
            return raw
        return (f"1 - expected |error| / {self.span_bpm:g} BPM (expected |error| = (1 - conf) x {self.span_bpm:g} BPM), "
                f"calibrated with {len(self.conf_calib_x)} knots on inner out-of-fold windows from the raw measure: {raw}")

    def calibrate_conf(self, raw: np.ndarray) -> np.ndarray:
        """Raw conf in [0, 1] (the measure) -> the calibrated conf (float decoders; piecewise linear between
        the knots, constant outside them; the identity without knots)."""
        if not self.conf_calib_x:
            return np.asarray(raw, np.float64)
        return np.interp(np.asarray(raw, np.float64) * 32768.0, self.conf_calib_x, self.conf_calib_y) / 32768.0

    def to_dict(self) -> dict:
        """The fields, without the spread interval's when it is off (a posterior-interval decoder's dict, and so
        its metadata and C tables, is the one it was before the spread interval existed)."""
        d = dataclasses.asdict(self)
        d["bins_bpm"] = list(self.bins_bpm)
        if self.interval_mode == "posterior":
            for k in SPREAD_KEYS:
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DecoderCfg":
        return _from_dict(cls, d, where="decoder config")


MAX_CALIB_KNOTS = 16
CALIB_RAMP = 1 / 64      # the conf calibration's least slope (calibrated per raw, both Q15): it keeps the order


def _calib_knots(xs, ys) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated conf calibration knots: both empty, or 2..16 Q15 integers each, x strictly increasing,
    y non-decreasing (a higher raw conf never means a larger expected error)."""
    try:
        x, y = [int(v) for v in xs], [int(v) for v in ys]
        whole = all(float(a) == int(a) for a in (*xs, *ys))
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise SqtoolError(f"decoder conf_calib_x / conf_calib_y must be lists of integers, got {xs!r} / {ys!r}")
    if not x and not y:
        return (), ()
    if len(x) != len(y) or not 2 <= len(x) <= MAX_CALIB_KNOTS:
        raise SqtoolError(f"decoder conf calibration needs 2..{MAX_CALIB_KNOTS} integer knots in conf_calib_x and "
                          f"conf_calib_y alike, got {len(x)} and {len(y)}")
    if min(x + y) < 0 or max(x + y) > 32768:
        raise SqtoolError("decoder conf calibration knots must be Q15 values in 0..32768")
    if any(b <= a for a, b in zip(x, x[1:])) or any(b < a for a, b in zip(y, y[1:])):
        raise SqtoolError("decoder conf calibration: conf_calib_x must increase strictly and conf_calib_y must not decrease")
    return tuple(x), tuple(y)


def fit_conf_calibration(raw: np.ndarray, err: np.ndarray, span_bpm: float, knots: int = MAX_CALIB_KNOTS) -> dict:
    """Knots mapping a raw conf (W,) in [0, 1] to 1 - expected |error| / span, fitted on windows with known
    errors (W,) BPM (inner out-of-fold windows): `knots` - 2 equal-count bins of the raw conf (Q15), each bin's
    mean error made non-increasing in the raw conf (isotonic, pool-adjacent-violators), knots at the bins'
    median raw conf (duplicates merged), plus a ramp of slope CALIB_RAMP centred on the windows' mean raw conf
    and end knots at 0 and 1 that extend it: the map is strictly increasing, so it never ties windows that the
    measure tells apart (an isotonic fit that is flat where the inner windows show no trend would: on
    wrist_exercise a flat fit threw away a ranking that held on the held-out subject), and the windows' mean
    stated error is unchanged. A confidence on this scale means the same thing whatever the measure and
    whatever model it comes from, so windows of different models (or folds) rank together. Returns
    {"conf_calib_x": [...], "conf_calib_y": [...]} ({} with fewer than 2 distinct knots: keep the raw conf)."""
    from scipy.optimize import isotonic_regression
    r = np.round(np.clip(np.asarray(raw, np.float64), 0, 1) * 32768).astype(np.int64)
    e = np.asarray(err, np.float64)
    if r.shape != e.shape or r.ndim != 1 or not np.isfinite(e).all():
        raise SqtoolError(f"fit_conf_calibration: raw conf and errors must be equal-length 1-D arrays of finite "
                          f"values, got shapes {r.shape} and {e.shape}")
    if len(r) < 2:
        return {}
    order = np.argsort(r, kind="stable")
    xs, es, ns = [], [], []
    for part in np.array_split(order, max(1, min(knots - 2, len(order)))):
        if len(part) == 0:
            continue
        x = int(np.median(r[part]))
        if xs and x <= xs[-1]:                                             # merge a bin into the previous one
            n = ns[-1] + len(part)
            es[-1], ns[-1] = (es[-1] * ns[-1] + e[part].sum()) / n, n
            continue
        xs.append(x)
        es.append(float(e[part].mean()))
        ns.append(len(part))
    if len(xs) < 2:
        return {}
    mean_err = -isotonic_regression(-np.asarray(es), weights=np.asarray(ns, np.float64), increasing=True).x
    y = 32768 * (1 - np.minimum(mean_err, span_bpm) / span_bpm)            # (K,) non-decreasing, Q15
    x, y = [float(v) for v in xs], list(y)
    if x[0] > 0:                                                           # end knots: the ramp goes on past the bins
        x, y = [0.0, *x], [y[0], *y]
    if x[-1] < 32768:
        x, y = [*x, 32768.0], [*y, y[-1]]
    x = np.array(x)
    y = np.array(y) + CALIB_RAMP * (x - r.mean())                          # strictly increasing, mean kept
    lo, hi = max(y[0], 0.0), min(y[-1], 32768.0)
    if (lo, hi) != (y[0], y[-1]):                                          # squeeze into Q15, keeping the order
        y = lo + (y - y[0]) * (hi - lo) / (y[-1] - y[0])
    return {"conf_calib_x": [int(v) for v in x], "conf_calib_y": [int(round(v)) for v in y]}   # y: increasing


def check_grid(cfg: DecoderCfg, n_logits: int) -> None:
    """Refuse a network whose number of output logits is not the decoder's number of bins."""
    if int(n_logits) != cfg.n_bins:
        lo, hi, step = cfg.bins_bpm
        raise SqtoolError(f"the model outputs {int(n_logits)} logits but the decoder grid {lo:g}..{hi:g} BPM "
                          f"step {step:g} has {cfg.n_bins} bins")


def evidence_codes(spec: np.ndarray) -> np.ndarray:
    """int8 front-end spectra (W, F, C) channels-last (ppg, then the accelerometer axes) -> (W, F) uint8
    evidence codes n = clip(ppg - max_axis acc, 0, 254): the PPG's power above the strongest axis's, both
    relative to their own peak (a PPG-only spectrum, C = 1, counts its accelerometer as silent: -127)."""
    x = np.asarray(spec)
    if x.ndim != 3 or x.dtype != np.int8:
        raise SqtoolError(f"decoder evidence needs int8 spectra (windows, bins, channels), got {x.dtype} {x.shape}")
    ppg = x[:, :, 0].astype(np.int16)
    acc = x[:, :, 1:].max(axis=2).astype(np.int16) if x.shape[2] > 1 else np.full_like(ppg, -127)
    return np.clip(ppg - acc, 0, EVIDENCE_MAX).astype(np.uint8)


def _check_evidence(cfg: DecoderCfg, evidence, n_windows: int) -> np.ndarray | None:
    """The (W, F) evidence codes a decoder with evidence needs (None for one without: ignored)."""
    if not cfg.uses_evidence:
        return None
    if evidence is None:
        raise SqtoolError(f"this decoder weighs the motion-subtracted PPG spectrum (evidence_weight "
                          f"{cfg.evidence_weight:g}): pass the window's front-end spectra")
    n = np.asarray(evidence)
    if n.shape != (n_windows, cfg.n_bins) or n.min(initial=0) < 0 or n.max(initial=0) > EVIDENCE_MAX:
        raise SqtoolError(f"decoder evidence must be ({n_windows}, {cfg.n_bins}) codes in 0..{EVIDENCE_MAX}, "
                          f"got shape {n.shape}")
    return n.astype(np.int64)


# ----------------------------------------------------------------------------- model pieces (float)

def transition_taps(cfg: DecoderCfg) -> np.ndarray:
    """(2R + 1,) float Gaussian kernel over bin offsets -R..R, summing to 1."""
    r, step = cfg.radius, cfg.bins_bpm[2]
    d = np.arange(-r, r + 1, dtype=np.float64) * step
    g = np.exp(-0.5 * (d / cfg.sigma_bpm) ** 2)
    return g / g.sum()


def transition_matrix(cfg: DecoderCfg) -> np.ndarray:
    """(F, F) A[i, j] = P(x_t = j | x_{t-1} = i) = (1 - floor) g[j - i] + floor / F (rows sum to <= 1 at edges)."""
    f, r = cfg.n_bins, cfg.radius
    g = transition_taps(cfg)
    off = np.arange(f)[None, :] - np.arange(f)[:, None]                   # (F, F) j - i
    a = np.where(np.abs(off) <= r, g[np.clip(off + r, 0, 2 * r)], 0.0)
    return (1 - cfg.floor) * a + cfg.floor / f


def start_distribution(cfg: DecoderCfg) -> np.ndarray:
    """(F,) float start distribution pi, summing to 1."""
    if cfg.start == "uniform":
        return np.full(cfg.n_bins, 1.0 / cfg.n_bins)
    p = np.exp(-0.5 * ((cfg.centres - cfg.start_bpm) / cfg.start_sigma_bpm) ** 2)
    if not p.sum() > 0:
        raise SqtoolError(f"decoder gaussian start at {cfg.start_bpm} BPM has no mass on the grid {cfg.bins_bpm}")
    return p / p.sum()


def _predict(p: np.ndarray, g: np.ndarray, cfg: DecoderCfg) -> np.ndarray:
    """A^T p for a normalised p: (1 - floor) (g * p) + floor / F.  (F,) -> (F,)"""
    r = cfg.radius
    return (1 - cfg.floor) * np.convolve(p, g, mode="full")[r:r + len(p)] + cfg.floor * p.sum() / len(p)


def _likelihoods(logits: np.ndarray, valid: np.ndarray | None, cfg: DecoderCfg,
                 evidence: np.ndarray | None = None) -> np.ndarray:
    """(W, F) real logits (+ the evidence's log-likelihood) -> (W, F) softmax (un-normalised: max 1), 1 on
    invalid windows."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise SqtoolError(f"decoder logits must be (windows, bins), got shape {x.shape}")
    check_grid(cfg, x.shape[1])
    if not np.isfinite(x).all():
        raise SqtoolError("decoder logits contain NaN or inf")
    n = _check_evidence(cfg, evidence, len(x))
    if n is not None:
        x = x + cfg.evidence_loglik(n)
    lik = np.exp(x - x.max(axis=1, keepdims=True))
    if cfg.emission_floor > 0:
        lik = (lik + cfg.emission_floor) / (1 + cfg.emission_floor)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (len(x),):
            raise SqtoolError(f"decoder valid must be ({len(x)},) booleans, got shape {valid.shape}")
        lik[~valid] = 1.0
    return lik


def _gather(post: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's bins lo[t] .. hi[t] from its first, as columns 0 .. hi[t] - lo[t] of (W, n) (n the widest;
    beyond a row's last bin: zeros), and their bin indices (W, n)."""
    idx = lo[:, None] + np.arange(int((hi - lo).max()) + 1)
    inside = idx <= hi[:, None]
    vals = np.where(inside, post[np.arange(len(post))[:, None], np.minimum(idx, post.shape[1] - 1)], 0.0)
    return vals, idx


def _slice_sums(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(W,) the sums of `_gather`'s rows, each adding the same numbers in the same order as the slice
    `post[t, lo:hi + 1].sum()`: a row narrower than the widest (clipped at the grid's edge) is summed as its slice,
    since zeros appended to it would change numpy's pairwise grouping of a longer sum."""
    out = vals.sum(axis=1)
    for t in np.flatnonzero(hi - lo + 1 < vals.shape[1]):
        out[t] = vals[t, :hi[t] - lo[t] + 1].sum()
    return out


def summarise(post: np.ndarray, cfg: DecoderCfg) -> dict[str, np.ndarray]:
    """(W, F) normalised posteriors -> hr, lo, hi, conf, std (each (W,)), as in the module docstring. Every window
    at once, the same numbers as window by window (a loop over the windows was most of a decoder selection's time:
    `hr_bins.select_decoder` reads every candidate decoder's posteriors of every inner recording)."""
    post = np.atleast_2d(np.asarray(post, np.float64))
    w, f = post.shape
    if w == 0:
        return {k: np.zeros(0) for k in ("hr", "lo", "hi", "conf", "std")}
    b, step, h, cw = cfg.centres, cfg.bins_bpm[2], cfg.refine_bins, cfg.conf_bins
    r = np.arange(w)
    a = np.argmax(post, axis=1)
    i0, i1 = np.maximum(0, a - h), np.minimum(f - 1, a + h)
    p, k = _gather(post, i0, i1)
    hr = b[a] + step * (_slice_sums((k - a[:, None]) * p, i0, i1) / _slice_sums(p, i0, i1))
    c = np.cumsum(post, axis=1)
    total = c[:, -1]
    out = {"hr": hr}
    for name, q in (("lo", (1 - cfg.interval) / 2), ("hi", (1 + cfg.interval) / 2)):
        target = q * total
        j = np.minimum((c < target[:, None]).sum(axis=1), f - 1)          # np.searchsorted(c[t], target, "left")
        prev = np.where(j > 0, c[r, np.maximum(j - 1, 0)], 0.0)
        pj = post[r, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.where(pj > 0, b[j] + step * ((target - prev) / pj - 0.5), b[j])
    out["lo"], out["hi"] = np.minimum(out["lo"], hr), np.maximum(out["hi"], hr)
    if cfg.conf_measure == "width":
        conf = np.maximum(0.0, 1.0 - (out["hi"] - out["lo"]) / cfg.span_bpm)
    else:
        lo, hi = np.maximum(0, a - cw), np.minimum(f - 1, a + cw)
        conf = _slice_sums(_gather(post, lo, hi)[0], lo, hi) / total
    mu = (post * b).sum(axis=1) / total
    out["std"] = np.sqrt(np.maximum(0.0, (post * (b - mu[:, None]) ** 2).sum(axis=1) / total))
    out["conf"] = cfg.calibrate_conf(conf)
    return {k: out[k] for k in ("hr", "lo", "hi", "conf", "std")}


def spread_track(hr: np.ndarray, net_argmax: np.ndarray, valid: np.ndarray | None, shift: int) -> np.ndarray:
    """(W,) S_t: the exponential mean, weight 2^-shift per valid window, of |network's own argmax - hr| (BPM),
    the first valid window's value at the start, held over invalid windows (0 before the first valid one). The
    float twin of the fixed-point state (which truncates each update to 1/256 milli-BPM)."""
    a = 2.0 ** -int(shift)
    d = np.abs(np.asarray(net_argmax, np.float64) - np.asarray(hr, np.float64))
    v = np.ones(len(d), bool) if valid is None else np.asarray(valid, bool)
    out, m, started = np.zeros(len(d)), 0.0, False
    for t in range(len(d)):
        if v[t]:
            m, started = (m + a * (d[t] - m), True) if started else (float(d[t]), True)
        out[t] = m
    return out


def spread_interval(out: dict, logits: np.ndarray, valid: np.ndarray | None, cfg: DecoderCfg) -> dict:
    """A float read-out (`summarise`'s dict) with interval_mode "spread": lo, hi = hr -+ (c + k S) clamped to
    `DecoderCfg.edges_bpm` (`spread_track`, the network's own argmax of `logits` (W, F)); "posterior": unchanged."""
    if cfg.interval_mode != "spread":
        return out
    am = cfg.centres[np.argmax(np.asarray(logits), axis=1)]
    h = cfg.spread_c_bpm + cfg.spread_k * spread_track(out["hr"], am, valid, cfg.spread_shift)
    e0, e1 = cfg.edges_bpm
    return {**out, "lo": np.maximum(out["hr"] - h, e0), "hi": np.minimum(out["hr"] + h, e1)}


SPREAD_SHIFTS = (2, 3, 4, 5, 6)                       # S's weight per window 1/4 .. 1/64 (~8 s .. ~2 min at 2 s)
SPREAD_C_BPM = tuple(np.round(np.arange(0.0, 8.001, 0.25), 2))


def fit_spread_interval(hr: list[np.ndarray], net_argmax_bpm: list[np.ndarray], truth: list[np.ndarray],
                        groups: list[str], coverage: float = 0.9, slack_bpm: float = 0.5,
                        shifts=SPREAD_SHIFTS, cs=SPREAD_C_BPM, valid: list[np.ndarray] | None = None,
                        edges_bpm: tuple[float, float] | None = None) -> dict:
    """The spread interval (hr -+ (c + k S), `spread_track`) that holds the truth (+-slack_bpm) on `coverage` of
    the windows pooled AND comes closest to it for every subject: for each shift and c, the least k (on the
    fixed point's 1/256 grid) whose pooled coverage reaches `coverage`; among those, the lowest mean over subjects
    of |a subject's coverage - coverage| (ties: the narrower mean interval). Per recording (one list entry each):
    the decoded hr, the network's own argmax (BPM) and the truth (NaN: not scored), all (W,); `groups` its
    subject; `valid` (W,) bool each (None: every window): the windows the device scores, S held over the others
    as the device holds it, and only those scored. `edges_bpm`: the grid's extent (`DecoderCfg.edges_bpm`) the
    decoder clamps the interval to: a truth beyond it (+-slack_bpm) is never held, and the width is the clamped
    one (None: no clamp). Returns {"spread_shift", "spread_c_bpm", "spread_k", "dev" (that mean), "coverage"
    (pooled), "per_subject" {subject: coverage}}; None when no candidate reaches `coverage` (k over MAX_SPREAD_K)."""
    best = None
    if not any(np.isfinite(np.asarray(y, np.float64)).any() for y in truth):
        return None
    for shift in shifts:
        S, e, g, H, Y = [], [], [], [], []
        for h, a, y, grp, v in zip(hr, net_argmax_bpm, truth, groups, valid or [None] * len(hr)):
            ok = np.isfinite(y) & (True if v is None else np.asarray(v, bool))     # scored windows with truth
            S.append(spread_track(h, a, v, shift)[ok])
            H.append(np.asarray(h, np.float64)[ok])
            Y.append(np.asarray(y, np.float64)[ok])
            e.append(np.abs(H[-1] - Y[-1]) - slack_bpm)
            g += [grp] * int(ok.sum())
        S, e, g, H, Y = np.concatenate(S), np.concatenate(e), np.array(g), np.concatenate(H), np.concatenate(Y)
        lo_e, hi_e = (-np.inf, np.inf) if edges_bpm is None else edges_bpm
        off = (Y + slack_bpm < lo_e) | (Y - slack_bpm > hi_e)                # beyond the clamp: no k holds it
        subjects = sorted(set(g.tolist()))
        for c in cs:
            with np.errstate(divide="ignore", invalid="ignore"):
                kw = np.where(off, np.inf, np.where(e <= c, 0.0, np.where(S > 0, (e - c) / S, np.inf)))  # (N,) least k
            k = float(np.quantile(kw, coverage, method="inverted_cdf"))        # the least k covering `coverage`
            if not math.isfinite(k):
                continue
            k = math.ceil(k * 256 - 1e-9) / 256
            if k > MAX_SPREAD_K:
                continue
            cov = {s: float(np.mean(kw[g == s] <= k)) for s in subjects}
            dev = float(np.mean([abs(v - coverage) for v in cov.values()]))
            w = c + k * S                                                       # (N,) half-widths, then clamped
            width = float(np.mean((np.minimum(w, H - lo_e) + np.minimum(w, hi_e - H)) / 2))
            if best is None or (dev, width) < (best["dev"], best["width"]):
                best = {"spread_shift": int(shift), "spread_c_bpm": float(c), "spread_k": k, "dev": dev,
                        "width": width, "coverage": float(np.mean(kw <= k)), "per_subject": cov}
    return best


def needed_mass(post: np.ndarray, y: np.ndarray, cfg: DecoderCfg, slack_bpm: float = 0.5,
                hr: np.ndarray | None = None) -> np.ndarray:
    """(W, F) posteriors, (W,) truth -> (W,) the smallest central mass whose interval (read as `summarise`
    reads lo/hi: piecewise-linear CDF) reaches [y - slack, y + slack]. A central interval of mass m covers y
    iff m >= this, so the q-quantile of it over windows is the mass whose coverage is q (NaN truth -> NaN).
    `hr` (W,), the read-out the interval is stretched to hold (`summarise`): a side that the reported hr already
    reaches needs no mass."""
    post = np.atleast_2d(np.asarray(post, np.float64))
    post = post / post.sum(axis=1, keepdims=True)
    lo, _, step = cfg.bins_bpm
    f = post.shape[1]
    c = np.concatenate([np.zeros((len(post), 1)), np.cumsum(post, axis=1)], axis=1)   # (W, F + 1) CDF at bin edges

    def cdf(v):                                                            # (W,) piecewise-linear CDF at v
        z = np.clip((v - lo) / step + 0.5, 0.0, float(f))                  # position in bins from the left edge
        k = np.minimum(np.floor(z).astype(np.int64), f - 1)
        r = np.arange(len(post))
        return c[r, k] + post[r, k] * (z - k)

    y = np.asarray(y, np.float64)
    yy = np.where(np.isfinite(y), y, lo)
    need_lo = 1 - 2 * cdf(yy + slack_bpm)              # lo <= y + slack iff the mass is at least this
    need_hi = 2 * cdf(yy - slack_bpm) - 1              # hi >= y - slack iff ...
    if hr is not None:
        hr = np.asarray(hr, np.float64)
        need_lo = np.where(hr <= yy + slack_bpm, 0.0, need_lo)
        need_hi = np.where(hr >= yy - slack_bpm, 0.0, need_hi)
    m = np.maximum(np.maximum(need_hi, need_lo), 0.0)
    return np.where(np.isfinite(y), m, np.nan)


def conf_mass(post: np.ndarray, halfwidth_bpm: float, cfg: DecoderCfg) -> np.ndarray:
    """(W, F) posteriors -> (W,) mass within +-halfwidth of the argmax (the decoder's `conf` read-out)."""
    post = np.atleast_2d(np.asarray(post, np.float64))
    w = int(math.floor(halfwidth_bpm / cfg.bins_bpm[2] + 1e-9))
    f = post.shape[1]
    c = np.concatenate([np.zeros((len(post), 1)), np.cumsum(post, axis=1)], axis=1)
    a = post.argmax(axis=1)
    r = np.arange(len(post))
    return (c[r, np.minimum(a + w + 1, f)] - c[r, np.maximum(a - w, 0)]) / c[:, -1]


def forward(logits: np.ndarray, valid: np.ndarray | None = None, cfg: DecoderCfg | None = None,
            evidence: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Causal forward filtering. logits (W, F) real-valued (int8 * logit_scale), valid (W,) bool or None,
    evidence (W, F) codes (`evidence_codes`; needed when cfg.evidence_weight > 0).
    Returns hr, lo, hi, conf, std (W,) and post (W, F): p(x_t | windows <= t)."""
    cfg = cfg or DecoderCfg()
    lik = _likelihoods(logits, valid, cfg, evidence)                               # (W, F)
    g, pi = transition_taps(cfg), start_distribution(cfg)
    post = np.zeros_like(lik)
    p = pi
    for t in range(len(lik)):
        prior = pi if t == 0 else _predict(p, g, cfg)
        q = prior * lik[t]
        if not q.sum() > 0:                                                # floor 0 and no overlap: restart
            q = lik[t].copy()
        p = q / q.sum()
        post[t] = p
    return {**spread_interval(summarise(post, cfg), logits, valid, cfg), "post": post}


def forward_backward(logits: np.ndarray, valid: np.ndarray | None = None,
                     cfg: DecoderCfg | None = None, evidence: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Offline smoothing: post[t] = p(x_t | all windows), read out as in `forward`."""
    cfg = cfg or DecoderCfg()
    lik = _likelihoods(logits, valid, cfg, evidence)
    n = len(lik)
    alpha = forward(logits, valid, cfg, evidence)["post"]                            # (W, F) filtered
    g = transition_taps(cfg)
    beta = np.ones_like(lik)
    for t in range(n - 2, -1, -1):
        m = lik[t + 1] * beta[t + 1]                                       # A m = (1 - floor) g * m + floor/F sum(m)
        b = _predict(m, g, cfg)
        beta[t] = b / b.max()
    post = alpha * beta
    post /= post.sum(axis=1, keepdims=True)
    return {**spread_interval(summarise(post, cfg), logits, valid, cfg), "post": post}


def viterbi(logits: np.ndarray, valid: np.ndarray | None = None, cfg: DecoderCfg | None = None,
            evidence: np.ndarray | None = None) -> np.ndarray:
    """Offline most likely path (max-product in the log domain). Returns (W,) bin centres, BPM."""
    cfg = cfg or DecoderCfg()
    lik = _likelihoods(logits, valid, cfg, evidence)
    with np.errstate(divide="ignore"):
        log_a = np.log(transition_matrix(cfg))                             # (F, F)
        log_l = np.log(lik)
        delta = np.log(start_distribution(cfg)) + log_l[0]
    n, f = lik.shape
    back = np.zeros((n, f), dtype=np.int64)
    for t in range(1, n):
        s = delta[:, None] + log_a                                         # (F_prev, F)
        back[t] = np.argmax(s, axis=0)
        delta = s[back[t], np.arange(f)] + log_l[t]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return cfg.centres[path]


# ----------------------------------------------------------------------------- fitting from training truth

def _hop_changes(truth_sequences: list[np.ndarray]) -> np.ndarray:
    d = [np.diff(np.asarray(s, dtype=np.float64).reshape(-1)) for s in truth_sequences]
    d = np.concatenate(d) if d else np.zeros(0)
    return d[np.isfinite(d)]                                               # a NaN window drops both of its pairs


def estimate_transition(truth_sequences: list[np.ndarray], hop_s: float, truth_dt_s: float | None = None,
                        min_sigma_bpm: float = 0.5) -> float:
    """sigma_bpm per hop from reference HR sequences (BPM, one value every `truth_dt_s`, default hop_s).

    The per-step HR changes of all sequences are pooled (pairs with a NaN are skipped) and their robust
    std is taken: 1.4826 * median(|d - median(d)|), which ignores the rare jumps (those are the floor's
    business, see `estimate_floor`). A random walk's std grows with sqrt(time), so a truth sampled every
    truth_dt_s is rescaled by sqrt(hop_s / truth_dt_s). The result is at least `min_sigma_bpm`."""
    if not (hop_s > 0 and math.isfinite(hop_s)):
        raise SqtoolError(f"estimate_transition: hop_s must be > 0, got {hop_s}")
    dt = hop_s if truth_dt_s is None else truth_dt_s
    if not (dt > 0 and math.isfinite(dt)):
        raise SqtoolError(f"estimate_transition: truth_dt_s must be > 0, got {truth_dt_s}")
    d = _hop_changes(truth_sequences)
    if len(d) < 10:
        raise SqtoolError(f"estimate_transition: only {len(d)} finite consecutive truth pairs (need >= 10)")
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return max(sigma * math.sqrt(hop_s / dt), min_sigma_bpm)


def estimate_floor(truth_sequences: list[np.ndarray], sigma_bpm: float, cfg: DecoderCfg | None = None,
                   k_sigma: float = 4.0) -> float:
    """Fit the per-hop jump probability: the excess fraction of changes beyond k_sigma * sigma over the
    Gaussian's own tail, divided by the chance that a uniform jump lands that far. Clipped to [1e-5, 0.2]."""
    cfg = cfg or DecoderCfg()
    d = _hop_changes(truth_sequences)
    if len(d) == 0:
        raise SqtoolError("estimate_floor: no finite consecutive truth pairs")
    thr = k_sigma * sigma_bpm
    tail = math.erfc(k_sigma / math.sqrt(2))
    span = cfg.bins_bpm[1] - cfg.bins_bpm[0]
    far = max(1e-3, 1 - 2 * thr / span)
    return float(np.clip((np.mean(np.abs(d) > thr) - tail) / far, 1e-5, 0.2))


# ----------------------------------------------------------------------------- fixed point

def _mbpm(v: float) -> int:
    return int(round(v * 1000))


def decoder_tables(cfg: DecoderCfg) -> dict[str, np.ndarray]:
    """The integer tables and constants of the fixed-point decoder (formats in the module docstring)."""
    f, r = cfg.n_bins, cfg.radius
    g = transition_taps(cfg)[r:]                                           # (R + 1,) offsets 0..R
    taps = np.floor(g * TAP_ONE + 0.5).astype(np.int64)
    taps[0] = TAP_ONE - 2 * int(taps[1:].sum())
    if taps[0] <= 0:
        raise SqtoolError(f"decoder sigma_bpm {cfg.sigma_bpm}: the Q15 centre tap is not positive")
    k = cfg.emission_floor
    lut = np.floor(LUT_ONE * (np.exp(-cfg.logit_scale * np.arange(256)) + k) / (1 + k) + 0.5).astype(np.uint32)
    pi = start_distribution(cfg) * POST_ONE                                # largest-remainder rounding to 2^20
    start = np.floor(pi).astype(np.int64)
    extra = POST_ONE - int(start.sum())
    start[np.argsort(-(pi - start), kind="stable")[:extra]] += 1
    floor_add = int(math.floor((1 << 31) * cfg.floor / ((1 - cfg.floor) * f) + 0.5))
    if floor_add >= (1 << 31):
        raise SqtoolError(f"decoder floor {cfg.floor} overflows the fixed-point floor add")
    q = [min(max(int(math.floor(v * POST_ONE + 0.5)), 1), POST_ONE - 1)
         for v in ((1 - cfg.interval) / 2, (1 + cfg.interval) / 2)]
    pen = np.zeros(EVIDENCE_MAX + 1, np.int64)
    if cfg.uses_evidence:                                                  # logit units, 0 at n = 254
        pen = np.minimum(np.floor(-cfg.evidence_loglik(np.arange(EVIDENCE_MAX + 1)) / cfg.logit_scale + 0.5), 255)
    sc = lambda v: np.array(v, dtype=np.int64)                             # noqa: E731
    return {
        "taps": taps.astype(np.uint16), "lut": lut, "start": start.astype(np.uint32),
        "pen": np.asarray(pen, np.int64).astype(np.uint8), "evidence": sc(int(cfg.uses_evidence)),
        "nbins": sc(f), "radius": sc(r), "bin_lo_mbpm": sc(_mbpm(cfg.bins_bpm[0])),
        "bin_step_mbpm": sc(_mbpm(cfg.bins_bpm[2])), "floor_add": sc(floor_add), "q_lo": sc(q[0]), "q_hi": sc(q[1]),
        "refine": sc(cfg.refine_bins), "conf_bins": sc(cfg.conf_bins),
        "conf_width": sc(int(cfg.conf_measure == "width")),
        "conf_inv": sc(int(math.floor((1 << 31) / (_mbpm(cfg.bins_bpm[2]) * f) + 0.5))),
        "calib_x": np.array(cfg.conf_calib_x, dtype=np.uint16), "calib_y": np.array(cfg.conf_calib_y, dtype=np.uint16),
        "sigma_mbpm": sc(_mbpm(cfg.sigma_bpm)), "floor_ppm": sc(int(round(cfg.floor * 1e6))),
        "spread": sc(int(cfg.interval_mode == "spread")), "spread_shift": sc(cfg.spread_shift),
        "spread_c_mbpm": sc(_mbpm(cfg.spread_c_bpm)), "spread_k_q8": sc(int(math.floor(cfg.spread_k * 256 + 0.5))),
    }


def _div_round(num: int, den: int) -> int:
    """num / den rounded half away from zero (den > 0), as the C does it with truncating division."""
    return (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)


def _calibrate_q15(raw: int, xs: list[int], ys: list[int]) -> int:
    """The conf calibration in integers (as the C): constant outside the knots, else
    y_k + ((y_{k+1} - y_k) (raw - x_k) + dx / 2) / dx with dx = x_{k+1} - x_k (all terms >= 0)."""
    if raw <= xs[0]:
        return ys[0]
    for k in range(len(xs) - 1):
        if raw < xs[k + 1]:
            dx = xs[k + 1] - xs[k]
            return ys[k] + ((ys[k + 1] - ys[k]) * (raw - xs[k]) + dx // 2) // dx
    return ys[-1]


@dataclass
class IntDecoderOut:
    hr_mbpm: int        # int32 milli-BPM
    lo_mbpm: int
    hi_mbpm: int
    conf_q15: int       # uint16, 32768 = 1 (calibrated when the decoder has knots)
    conf_raw_q15: int   # the measure before the knots (= conf_q15 without them)
    argmax: int
    valid: bool


class IntDecoder:
    """Fixed-point forward filter, bit-exact with sq_decoder.c. Integer arithmetic only in step()."""

    def __init__(self, cfg: DecoderCfg | None = None):
        self.cfg = cfg or DecoderCfg()
        t = decoder_tables(self.cfg)
        self.f, self.r = int(t["nbins"]), int(t["radius"])
        self.taps_full = np.concatenate([t["taps"][:0:-1], t["taps"]]).astype(np.int64)   # (2R + 1,)
        self.lut = t["lut"].astype(np.uint64)
        self.start = t["start"].astype(np.int64)
        self.floor_add = int(t["floor_add"])
        self.lo_mbpm, self.step_mbpm = int(t["bin_lo_mbpm"]), int(t["bin_step_mbpm"])
        self.q_lo, self.q_hi = int(t["q_lo"]), int(t["q_hi"])
        self.refine, self.conf_bins = int(t["refine"]), int(t["conf_bins"])
        self.conf_width, self.conf_inv = bool(t["conf_width"]), int(t["conf_inv"])
        self.evidence, self.pen = bool(t["evidence"]), t["pen"].astype(np.int64)
        self.calib_x, self.calib_y = [int(v) for v in t["calib_x"]], [int(v) for v in t["calib_y"]]
        self.spread, self.spread_shift = bool(t["spread"]), int(t["spread_shift"])
        self.spread_c, self.spread_k = int(t["spread_c_mbpm"]), int(t["spread_k_q8"])
        e = (self.step_mbpm + 1) >> 1                                      # the grid's extent, milli-BPM (outwards)
        self.edge_lo, self.edge_hi = self.lo_mbpm - e, self.lo_mbpm + self.step_mbpm * (self.f - 1) + e
        self.reset()

    def reset(self) -> None:
        self.post = self.start.copy()                                      # (F,) int64 holding uint32 values
        self.started = False
        self.s_spread, self.spread_started = 0, False                      # S, milli-BPM x 2^8 (uint32)

    def step(self, logits: np.ndarray, valid: bool = True, evidence: np.ndarray | None = None) -> IntDecoderOut:
        """One window: int8 logits (F,), and with evidence its (F,) evidence codes 0..254 (`evidence_codes`)."""
        x = np.asarray(logits)
        if x.dtype != np.int8 or x.shape != (self.f,):
            raise SqtoolError(f"IntDecoder.step: logits must be int8 ({self.f},), got {x.dtype} {x.shape}")
        n = _check_evidence(self.cfg, None if evidence is None else np.asarray(evidence)[None], 1) \
            if self.evidence and valid else None
        return self._step(x, valid, None if n is None else n[0])

    def _step(self, x: np.ndarray, valid: bool, n: np.ndarray | None) -> IntDecoderOut:
        """`step` on checked inputs: int8 logits x (F,), evidence codes n (F,) int64 or None."""
        e = x.astype(np.int64)                                             # (F,) emission, logit units
        if n is not None:
            e = e - self.pen[n]                                            # -128 - 255 .. 127
        f, r = self.f, self.r
        if self.started:                                                   # predict: c <= 2^35, prior < 2^32
            c = np.convolve(self.post, self.taps_full, mode="full")[r:r + f]
            prior = ((c + (1 << (PRIOR_SHIFT - 1))) >> PRIOR_SHIFT) + self.floor_add
        else:
            prior = self.post.copy()
        self.started = True
        prior_u = prior.astype(np.uint64)
        if valid:
            d = np.minimum(int(e.max()) - e, 255)                          # 0..255
            prod = prior_u * self.lut[d]                                   # < 2^56
            if int(prod.sum()) == 0:                                       # floor 0, no overlap: restart
                prod = self.lut[d].copy()
        else:
            prod = prior_u
        total = int(prod.sum())                                            # < 2^57
        s = max(0, total.bit_length() - 32)                                # total >> s < 2^32
        rcp = np.uint64((1 << 63) // (total >> s))
        p = (((prod >> np.uint64(s)) * rcp + np.uint64(1 << (NORM_SHIFT - 1)))
             >> np.uint64(NORM_SHIFT)).astype(np.int64)                    # <= 2^63 + 2^42 before the shift
        p[int(np.argmax(p))] += POST_ONE - int(p.sum())                    # |deficit| <= F/2 + 2
        self.post = p
        out = self._readout(p, bool(valid))
        if self.spread:
            self._spread(out, int(np.argmax(x)) if valid else -1)
        return out

    def _spread(self, out: "IntDecoderOut", net_arg: int) -> None:
        """interval_mode "spread": update S on a valid window (net_arg >= 0, the first largest int8 logit), then
        lo, hi = hr -+ H, H = C + ((K_Q8 S + 2^15) >> 16), clamped to the grid's extent EDGE_LO..EDGE_HI (formats
        in the module docstring)."""
        if net_arg >= 0:
            d = abs(self.lo_mbpm + self.step_mbpm * net_arg - out.hr_mbpm) << SPREAD_FRAC
            if self.spread_started:
                self.s_spread = self.s_spread - (self.s_spread >> self.spread_shift) + (d >> self.spread_shift)
            else:
                self.s_spread, self.spread_started = d, True
        h = self.spread_c + ((self.spread_k * self.s_spread + (1 << 15)) >> 16)
        out.lo_mbpm, out.hi_mbpm = max(self.edge_lo, out.hr_mbpm - h), min(self.edge_hi, out.hr_mbpm + h)

    def _readout(self, p: np.ndarray, valid: bool) -> IntDecoderOut:
        f, step = self.f, self.step_mbpm
        a = int(np.argmax(p))
        i0, i1 = max(0, a - self.refine), min(f - 1, a + self.refine)
        num = int(((np.arange(i0, i1 + 1) - a) * p[i0:i1 + 1]).sum())
        den = int(p[i0:i1 + 1].sum())
        hr = self.lo_mbpm + step * a + _div_round(step * num, den)
        cum = np.cumsum(p)
        qs = []
        for tq in (self.q_lo, self.q_hi):
            k = int(np.searchsorted(cum, tq, side="left"))
            prev = int(cum[k - 1]) if k > 0 else 0
            pk = int(p[k])
            qs.append(self.lo_mbpm + step * k + _div_round(step * (2 * (tq - prev) - pk), 2 * pk))
        qs = [min(qs[0], hr), max(qs[1], hr)]                        # the interval holds the reported hr
        if self.conf_width:
            w = max(0, qs[1] - qs[0])
            conf_q15 = (1 << 15) - min(1 << 15, (w * self.conf_inv + (1 << 15)) >> 16)
        else:
            conf = int(p[max(0, a - self.conf_bins):a + self.conf_bins + 1].sum())
            conf_q15 = (conf + (1 << (POST_BITS - 16))) >> (POST_BITS - 15)
        cal = _calibrate_q15(conf_q15, self.calib_x, self.calib_y) if self.calib_x else conf_q15
        return IntDecoderOut(hr_mbpm=hr, lo_mbpm=qs[0], hi_mbpm=qs[1], conf_q15=cal, conf_raw_q15=conf_q15, argmax=a,
                             valid=valid)

    def run(self, logits: np.ndarray, valid: np.ndarray | None = None,
            evidence: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Reset, then step over (W, F) int8 logits (and (W, F) evidence codes). Returns int arrays hr_mbpm,
        lo_mbpm, hi_mbpm (int32), conf_q15 and conf_raw_q15 (uint16), argmax (int16), valid (uint8), and post
        (W, F) uint32 (sum 2^20 each)."""
        x = np.asarray(logits)
        if x.ndim != 2:
            raise SqtoolError(f"IntDecoder.run: logits must be (windows, bins), got shape {x.shape}")
        check_grid(self.cfg, x.shape[1])
        if x.dtype != np.int8:
            raise SqtoolError(f"IntDecoder.run: logits must be int8, got {x.dtype}")
        ev = _check_evidence(self.cfg, evidence, len(x))
        v = np.ones(len(x), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        if v.shape != (len(x),):
            raise SqtoolError(f"IntDecoder.run: valid must be ({len(x)},) booleans, got shape {v.shape}")
        self.reset()
        outs, posts = [], []
        for t in range(len(x)):
            outs.append(self._step(x[t], bool(v[t]), ev[t] if ev is not None and v[t] else None))
            posts.append(self.post.copy())
        res = {k: np.array([getattr(o, k) for o in outs], dtype=dt) for k, dt in
               (("hr_mbpm", np.int32), ("lo_mbpm", np.int32), ("hi_mbpm", np.int32), ("conf_q15", np.uint16),
                ("conf_raw_q15", np.uint16),
                ("argmax", np.int16), ("valid", np.uint8))}
        res["post"] = np.array(posts, dtype=np.uint32).reshape(len(x), self.f)
        return res


# ----------------------------------------------------------------------------- synthetic inputs (tests, benchmarks)

def synthetic_logits(rng: np.random.Generator, n_windows: int, cfg: DecoderCfg, walk_bpm: float = 2.0,
                     outlier: float = 0.15, harmonic: float = 0.3, width_bpm: float = 3.0, peak: float = 60.0,
                     noise: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Network-like int8 logits: a peak (height `peak` LSB, std `width_bpm`) on a Gaussian random walk of the
    true HR, moved to a random place with probability `outlier`, a second peak at twice the HR with
    probability `harmonic`, plus Gaussian noise; the maximum is put at 127. Returns (logits (W, F) int8, hr (W,))."""
    lo, hi, _ = cfg.bins_bpm
    b = cfg.centres
    hr = np.clip(np.cumsum(rng.normal(0, walk_bpm, n_windows)) + rng.uniform(lo + 0.2 * (hi - lo), lo + 0.6 * (hi - lo)),
                 lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))
    x = rng.normal(0, noise, (n_windows, cfg.n_bins))                      # (W, F)
    for t in range(n_windows):
        c = hr[t] if rng.random() >= outlier else rng.uniform(lo, hi)
        x[t] += peak * np.exp(-0.5 * ((b - c) / width_bpm) ** 2)
        if rng.random() < harmonic:
            x[t] += 0.6 * peak * np.exp(-0.5 * ((b - 2 * hr[t]) / width_bpm) ** 2)
    q = np.clip(np.round(x - x.max(axis=1, keepdims=True) + 127), -128, 127).astype(np.int8)
    return q, hr


# ----------------------------------------------------------------------------- a model's decoder dict
# A model's cfg.decoder is a DecoderCfg dict plus "temperature" (logits are divided by it before the
# softmax; in fixed point it folds into logit_scale, so it costs nothing on the device) and, when chosen
# by inner cross-validation, selection bookkeeping "inner_*" (inner_mae, inner_coverage, inner_gating, ...):
# the chosen interval mass and confidence half-width are ordinary DecoderCfg fields (interval,
# conf_halfwidth_bpm), so they reach the fixed-point decoder, the C tables and the metadata. These helpers decode one recording with such a dict.

def decoder_only(dec: dict) -> dict:
    """The DecoderCfg keys of a decoder dict (drops "temperature" and the selection bookkeeping "inner_*")."""
    return {k: v for k, v in dec.items() if k != "temperature" and not k.startswith("inner_")}


def decoder_cfg(dec: dict, logit_scale: float = 1.0) -> DecoderCfg:
    """The DecoderCfg of a model's decoder dict at `logit_scale` (its temperature is not folded in)."""
    return DecoderCfg.from_dict({**decoder_only(dec), "logit_scale": float(logit_scale)})


def uncalibrated(dec: dict) -> dict:
    """A decoder dict without its conf calibration knots (conf is then the raw measure)."""
    return {k: v for k, v in dec.items() if k not in ("conf_calib_x", "conf_calib_y")}


def conf_text(dec: dict) -> str:
    """What a decoder dict's `conf` output means (DecoderCfg.conf_text)."""
    return decoder_cfg(dec).conf_text


def interval_text(dec: dict) -> str:
    """What a decoder dict's (lo, hi) is (DecoderCfg.interval_text)."""
    return decoder_cfg(dec).interval_text


def _evidence_of(spec, cfg: DecoderCfg):
    return evidence_codes(spec) if cfg.uses_evidence and spec is not None else None


def decode_float(logits: np.ndarray, decoder: dict, valid: np.ndarray | None = None,
                 spec: np.ndarray | None = None) -> dict:
    """Float causal forward filtering of one recording's (W, F) real-valued logits; `spec`: its int8 front-end
    spectra (W, F, C), needed by a decoder with evidence (ignored otherwise)."""
    cfg = decoder_cfg(decoder)
    return forward(np.asarray(logits, np.float64) / float(decoder.get("temperature", 1.0)), valid, cfg,
                   _evidence_of(spec, cfg))


def int_decoder(decoder: dict, logit_scale: float) -> IntDecoder:
    """The fixed-point decoder of int8 logits of real scale `logit_scale` (the network's output scale), the decoder
    dict's temperature applied: `decode_int`'s, or a stream's stepped window by window (`sqtool.api.HrStream`)."""
    return IntDecoder(decoder_cfg(decoder, float(logit_scale) / float(decoder.get("temperature", 1.0))))


def decode_int(logits_q: np.ndarray, decoder: dict, logit_scale: float, valid: np.ndarray | None = None,
               spec: np.ndarray | None = None) -> dict:
    """Fixed-point decoding (bit-exact with the firmware) of one recording's (W, F) int8 logits, in BPM: hr, lo,
    hi, conf (the device's) and conf_raw (its measure before the calibration knots)."""
    dec = int_decoder(decoder, logit_scale)
    r = dec.run(np.asarray(logits_q, np.int8), valid, _evidence_of(spec, dec.cfg))
    return {"hr": r["hr_mbpm"] / 1000.0, "lo": r["lo_mbpm"] / 1000.0, "hi": r["hi_mbpm"] / 1000.0,
            "conf": r["conf_q15"] / 32768.0, "conf_raw": r["conf_raw_q15"] / 32768.0}
