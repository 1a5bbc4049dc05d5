"""The classic baseline: spectral heart rate with accelerometer artifact suppression and peak tracking.

What a practitioner ships without a learned model, in the spirit of TROIKA (Zhang et al. 2015) and
the SP Cup 2015 entries built on it, simplified to what runs on a wrist MCU:

    per 8 s window at the device rate (raw PPG + 3-axis accelerometer):
    1. band-pass 0.5-4 Hz (zero-phase over the buffered window) PPG and each acc axis;
    2. power spectra with a Hann window, zero-padded to ~0.9 BPM bins, restricted to 40-210 BPM; a device with
       two PPG sensors (`ppg_sensors`, e.g. TROIKA's ppg, ppg2): the mean of their spectra, each scaled to max 1,
       as the front end averages a model's sensors (default: the first sensor alone);
    3. artifact suppression by spectral subtraction: the PPG spectrum (scaled to max 1) minus the
       summed accelerometer spectrum (scaled to max 1, times `acc_weight`), and a notch of +-`notch_bpm`
       around every accelerometer peak -- a PPG peak that coincides with a motion peak (arm swing,
       cadence) is cancelled, a cardiac peak without a motion partner survives. Applied only when the
       window moves (acc band power above `motion_floor`). On the 12 SP Cup training recordings the
       notch took subject 02 from 43.8 to 5.2 BPM MAE (motion peak no longer tracked);
    4. peak tracking: the candidates are the spectral peaks above 30 % of the maximum; the first window
       takes the largest peak in 50-150 BPM (the subject starts at rest, as in SP Cup), later windows
       take the largest candidate within +-`search_bpm` of the previous estimate; when no candidate is
       there, the previous value is held, and after `lost_after` such windows in a row the tracker
       re-acquires the strongest peak; when the tracked peak stays below half
       of the strongest peak for `doubt_after` windows, it jumps to the strongest (wrong lock);
    5. the result passes the same slew-rate tracker as the learned model (`tracker.HrTracker`).

Causal at the window level: window i uses samples up to its own end and the state from window i-1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sqtool.core import SqtoolError, check_fs
from sqtool.data.hr_tracker import HrTracker, TrackerCfg

ACC = ("acc_x", "acc_y", "acc_z")
SPECTRA_CHUNK = 256                 # windows whose zero-padded spectra `spectra` holds at once (memory, not results)


@dataclass
class BaselineCfg:
    band: tuple[float, float] = (0.5, 4.0)     # Hz
    bpm_range: tuple[float, float] = (40.0, 210.0)
    init_range: tuple[float, float] = (50.0, 150.0)
    resolution_bpm: float = 0.9                # FFT bin size after zero padding
    acc_weight: float = 1.0                    # spectral subtraction strength
    motion_floor: float = 1e-3                 # acc band power (units^2) below which no subtraction
    peak_rel: float = 0.3                      # candidate peaks: >= this x the max
    search_bpm: float = 12.0                   # tracking window around the previous estimate
    lost_after: int = 3                        # windows without a candidate before re-acquiring
    notch_bpm: float = 4.0                     # zero the PPG spectrum this close to motion peaks (0 = off)
    doubt_rel: float = 0.5                     # tracked peak below this x the strongest peak ...
    doubt_after: int = 4                       # ... for this many windows in a row: jump to the strongest
    ppg_sensors: tuple[str, ...] = ("ppg",)    # the PPG sensors read, those the recording has: 2+ -> the mean of
                                               # their spectra, each scaled to max 1 (as the front end averages a
                                               # model's frontend ppg_sensors); ("ppg",): the first sensor alone


def spectra(ppg: np.ndarray, acc: np.ndarray | None, fs: float, cfg: BaselineCfg):
    """ppg (W, T) or (W, S, T) (S sensors), acc (W, 3, T) or None -> bpm (F,), P (W, F), A (W, F) or None, motion
    power (W,). S sensors: P is the mean of their spectra, each scaled to its max in the band (a dead sensor adds
    nothing), as the front end's step 6 averages them."""
    from scipy import signal

    W, T = ppg.shape[0], ppg.shape[-1]
    sos = signal.butter(2, cfg.band, btype="bandpass", fs=fs, output="sos")
    nfft = int(2 ** np.ceil(np.log2(fs * 60.0 / cfg.resolution_bpm)))
    nfft = max(nfft, T)
    bpm = np.fft.rfftfreq(nfft, 1.0 / fs) * 60.0
    keep = (bpm >= cfg.bpm_range[0]) & (bpm <= cfg.bpm_range[1])
    win = np.hanning(T)
    pad = min(3 * 5, T - 1)

    def power(x):                                                  # (..., T) -> (..., F) in the kept band
        xf = signal.sosfiltfilt(sos, x, axis=-1, padlen=pad)
        xf = xf - xf.mean(axis=-1, keepdims=True)
        return (np.abs(np.fft.rfft(xf * win, n=nfft, axis=-1)) ** 2)[..., keep], xf

    def block(ppg, acc):                                           # W' windows -> P (W', F), A (W', F), motion
        P, _ = power(np.asarray(ppg, dtype=np.float64))           # (W', F) or (W', S, F)
        if P.ndim == 3:                                            # (W', S, F) -> (W', F)
            mx = P.max(axis=2, keepdims=True)                     # 0: a dead sensor, P all 0, adds nothing
            P = (P / np.where(mx > 0, mx, 1.0)).mean(axis=1)
        if acc is None:
            return P, None, np.zeros(len(P))
        A3, accf = power(np.asarray(acc, dtype=np.float64))        # (W', 3, F)
        return P, A3.sum(axis=1), (accf ** 2).mean(axis=(1, 2))

    # SPECTRA_CHUNK windows at a time: the whole zero-padded spectra of a day at 64 Hz (43,197 windows) took 15 GB
    parts = [block(ppg[i:i + SPECTRA_CHUNK], None if acc is None else acc[i:i + SPECTRA_CHUNK])
             for i in range(0, W, SPECTRA_CHUNK)] or [block(ppg, acc)]
    A = None if acc is None else np.concatenate([q[1] for q in parts])
    return bpm[keep], np.concatenate([q[0] for q in parts]), A, np.concatenate([q[2] for q in parts])


def _peaks(s: np.ndarray, rel: float) -> np.ndarray:
    """Indices of local maxima >= rel x max (plateaus: first index)."""
    if s.size < 3 or not np.isfinite(s).all() or s.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    i = np.flatnonzero((s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:])) + 1
    return i[s[i] >= rel * s.max()]


def estimate(ppg: np.ndarray, acc: np.ndarray | None, fs: float, cfg: BaselineCfg | None = None,
             tracker: TrackerCfg | None = None) -> dict:
    """Windows of ONE recording, in order: ppg (W, T), or (W, S, T) for S sensors (see `spectra`), acc (W, 3, T) or
    None, fs in Hz (a number above twice the band's top) -> {"hr": tracked (W,), "raw": per-window pick (W,),
    "suppressed": whether motion subtraction was applied (W,)}. Other shapes or rates: one SqtoolError."""
    cfg = cfg or BaselineCfg()
    ppg, acc, fs = _checked(ppg, acc, fs, cfg)
    return track(*spectra(ppg, acc, fs, cfg), cfg, tracker)


def _checked(ppg, acc, fs, cfg: BaselineCfg):
    """ppg (W, T) / (W, S, T) and acc (W, 3, T) or None as float64 (non-finite samples 0), fs as a number; other
    shapes or rates: one SqtoolError."""
    if isinstance(fs, (str, bytes, bool)):                      # check_fs would parse '125'; a caller's slip here
        raise SqtoolError(f"baseline: fs must be the sampling rate in Hz as a number, got {fs!r}")
    fs = check_fs(fs, "baseline: fs")
    if fs <= 2 * cfg.band[1]:                                   # the band-pass needs its top edge below Nyquist
        raise SqtoolError(f"baseline: fs must be above {2 * cfg.band[1]:g} Hz for the {cfg.band[0]:g}-"
                          f"{cfg.band[1]:g} Hz band-pass, got {fs:g}")
    ppg = np.asarray(ppg, dtype=np.float64)
    if ppg.ndim == 3 and ppg.shape[1] == 1:                     # one sensor: its spectrum as is
        ppg = ppg[:, 0]
    if ppg.ndim not in (2, 3) or ppg.shape[-1] < 2 * fs:
        raise SqtoolError(f"baseline: ppg windows must be (W, T) or (W, S, T) with T >= 2 s, got {ppg.shape}")
    ppg = np.where(np.isfinite(ppg), ppg, 0.0)
    if acc is not None:
        acc = np.asarray(acc, dtype=np.float64)
        want = (ppg.shape[0], 3, ppg.shape[-1])                  # (W, 3, T): the ppg's windows, x/y/z, samples
        if acc.shape != want:
            raise SqtoolError(f"baseline: acc windows must be (W, 3, T) = {want} to match ppg {ppg.shape}, "
                              f"got {acc.shape}")
        acc = np.where(np.isfinite(acc), acc, 0.0)
    return ppg, acc, fs


def track(bpm: np.ndarray, P: np.ndarray, A: np.ndarray | None, motion: np.ndarray, cfg: BaselineCfg | None = None,
          tracker: TrackerCfg | None = None) -> dict:
    """Steps 3-5 over one recording's window spectra (`spectra`): suppression, peak tracking, the slew-rate tracker.
    Only these read the notch, so a grid of notches shares one `spectra` (`baseline_grid`)."""
    cfg = cfg or BaselineCfg()
    W = len(P)
    raw = np.full(W, np.nan)
    suppressed = np.zeros(W, dtype=bool)
    prev, lost, doubt = None, 0, 0
    for i in range(W):
        p = P[i] / P[i].max() if P[i].max() > 0 else P[i]
        if A is not None and motion[i] > cfg.motion_floor and A[i].max() > 0:
            a = A[i] / A[i].max()
            s = np.clip(p - cfg.acc_weight * a, 0.0, None)
            if cfg.notch_bpm > 0:                                # also notch out the motion peaks
                for j in _peaks(a, cfg.peak_rel):
                    s[np.abs(bpm - bpm[j]) <= cfg.notch_bpm] = 0.0
            if s.max() > 0:
                p, suppressed[i] = s, True
        cand = _peaks(p, cfg.peak_rel)
        if cand.size == 0:
            lost += 1
            raw[i] = prev if prev is not None else np.nan
            continue
        if prev is None:
            ok = cand[(bpm[cand] >= cfg.init_range[0]) & (bpm[cand] <= cfg.init_range[1])]
            ok = ok if ok.size else cand
            pick = ok[np.argmax(p[ok])]
        else:
            near = cand[np.abs(bpm[cand] - prev) <= cfg.search_bpm]
            if near.size == 0:
                lost += 1
                if lost < cfg.lost_after:                        # hold through a short artifact
                    raw[i] = prev
                    continue
                near = cand                                      # lost for long: re-acquire the strongest
            pick = near[np.argmax(p[near])]
            # the tracked peak is weak while a far one dominates, window after window: re-acquire
            top = cand[np.argmax(p[cand])]
            doubt = doubt + 1 if p[pick] < cfg.doubt_rel * p[top] else 0
            if doubt >= cfg.doubt_after:
                pick, doubt = top, 0
        lost = 0
        prev = float(bpm[pick])
        raw[i] = prev
    t = HrTracker(tracker)
    hr = np.array([t.update(r, True) for r in raw])
    return {"hr": hr, "raw": raw, "suppressed": suppressed}


def record_windows(record, t0: np.ndarray, window_s: float, sensors: tuple[str, ...] = ("ppg",)
                   ) -> tuple[np.ndarray, np.ndarray | None, float, np.ndarray]:
    """Raw device-rate PPG (W, S, T) of the S `sensors` the recording has (in that order; none of them: its first
    PPG channel) and acc (W, 3, T) (None if absent; at another rate: resampled to the PPG's, polyphase with its gaps
    kept, as `data.record.channel_matrix` streams it to the model) of the windows starting at t0, the rate, and which windows the
    recording holds in full (W,) bool. A window running past the recording's end (the front end emits its last
    window once its last MODEL sample is in, a few raw samples short) has NaN rows; one starting outside the
    recording is an error (t0 of another recording)."""
    chans = [c for c in sensors if c in record.signals] or [record.primary_channel()]
    fs = float(record.fs[chans[0]])
    if any(float(record.fs[c]) != fs for c in chans):
        raise SqtoolError(f"{record.record_id}: PPG sensors {', '.join(chans)} at different rates "
                          f"({', '.join(f'{float(record.fs[c]):g}' for c in chans)} Hz); the baseline reads one rate")
    T = int(round(window_s * fs))
    starts = np.round(np.asarray(t0) * fs).astype(np.int64)
    x = np.asarray(record.signals[chans[0]], dtype=np.float64)
    if starts.size and (starts.min() < 0 or starts.max() >= len(x)):
        raise SqtoolError(f"{record.record_id}: a window starts beyond the end of the recording (or before its start)")
    full = starts + T <= len(x)
    idx = np.minimum(starts[:, None] + np.arange(T)[None, :], len(x) - 1)           # (W, T)

    def take(v):                                                                     # (N,) -> (W, T)
        return np.where(full[:, None], np.asarray(v, dtype=np.float64)[idx], np.nan)
    ppg = np.stack([take(record.signals[c]) for c in chans], axis=1)                # (W, S, T)
    acc = None
    if all(a in record.signals for a in ACC):      # at the PPG's rate, as the model's stream reads them
        from sqtool.data.record import channel_matrix
        m = channel_matrix(record, (chans[0], *ACC))[0][1:]                         # (3, <= N) at fs
        acc = np.stack([take(np.pad(v, (0, len(x) - len(v)), constant_values=np.nan)) for v in m],
                       axis=1)                                                       # (W, 3, T)
    return ppg, acc, fs, full


def baseline_hr(record, t0: np.ndarray, window_s: float = 8.0, cfg: BaselineCfg | None = None,
                share: bool = False) -> dict:
    """`estimate` over the windows of one recording starting at t0; a window the recording does not hold in full
    (see `record_windows`) gets NaN (its truth is NaN too: the label has no such window). With `share`, besides
    estimate's keys, "share": each window's `peak_share` of its per-window pick (how confidently the spectrum reads
    it; the clock-lag check's)."""
    cfg = cfg or BaselineCfg()
    return baseline_grid(record, t0, window_s, (cfg.notch_bpm,), cfg, share=share)[cfg.notch_bpm]


def baseline_grid(record, t0: np.ndarray, window_s: float, notches, cfg: BaselineCfg | None = None,
                  share: bool = False) -> dict:
    """{notch: `baseline_hr` at that notch width (BPM), cfg's other settings}: the windows read and their spectra
    computed once for every notch."""
    cfg = cfg or BaselineCfg()
    ppg, acc, fs, full = record_windows(record, t0, window_s, cfg.ppg_sensors)
    out = {}
    if full.any():                      # the windows held in full, in order (tracking skips the others)
        ppg, acc, fs = _checked(ppg[full], None if acc is None else acc[full], fs, cfg)
        spec = spectra(ppg, acc, fs, cfg)
    for notch in notches:
        res = {"hr": np.full(len(full), np.nan), "raw": np.full(len(full), np.nan),
               "suppressed": np.zeros(len(full), bool), **({"share": np.full(len(full), np.nan)} if share else {})}
        if full.any():
            for k, v in track(*spec, replace(cfg, notch_bpm=float(notch))).items():
                res[k][full] = v
            if share:
                res["share"][full] = peak_share(spec[0], spec[1], res["raw"][full])
        out[notch] = res
    return out


def peak_share(bpm: np.ndarray, P: np.ndarray, hr: np.ndarray, half_bpm: float = 3.0) -> np.ndarray:
    """bpm (F,), the PPG spectra P (W, F) (`spectra`), picks hr (W,) BPM -> (W,) the share of each window's PPG power
    within +-half_bpm of its pick: how clearly the spectrum holds that one rate (a clean pulse: a large share; motion
    or noise: power spread over many peaks). NaN where there is no pick or no power."""
    near = np.abs(bpm[None, :] - np.asarray(hr, np.float64)[:, None]) <= half_bpm      # (W, F)
    total = P.sum(axis=1)                                                              # (W,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(hr) & (total > 0), (P * near).sum(axis=1) / total, np.nan)


# ----------------------------------------------------------------------------- nested choice (classic rows)

NOTCHES = (0.0, 3.0, 6.0, 9.0, 12.0)    # BPM; the SP Cup folds chose 6 from 0-6 (its edge), so the grid goes on


def sensor_options(sensors) -> list[tuple[str, ...]]:
    """The baseline's PPG sensor choices for a model reading `sensors` (its front end's ppg_sensors): the first alone,
    and, when it lists more, the mean of their spectra as the model's front end averages them."""
    sensors = tuple(sensors)
    return [sensors[:1]] + ([sensors] if len(sensors) > 1 else [])


def _mae(a, y) -> float:
    ok = np.isfinite(y) & np.isfinite(a)
    return float(np.abs(a[ok] - y[ok]).mean()) if ok.any() else float("nan")


class NestedBaseline:
    """The classic baseline with its notch width (NOTCHES) and PPG sensors chosen on training recordings only, as
    a learned model's settings are: `choose(train)` -> the pair with the lowest mean of the training recordings'
    MAE (the first in NOTCHES x options order on a tie), `hr(rec, notch, sensors)` -> its HR on a recording's
    windows. Recordings are `hr_spectra.HrRecording`s (their raw record in `.source`, windows at `.t0`, truth
    `.y`); every (recording, sensors) is read and transformed once, all notches tracked from those spectra."""

    def __init__(self, options, window_s: float = 8.0, notches=NOTCHES):
        self.options, self.window_s, self.notches = [tuple(o) for o in options], float(window_s), tuple(notches)
        self._hr: dict = {}

    def hr(self, rec, notch: float, sensors) -> np.ndarray:
        key = (rec.dataset, rec.record_id, tuple(sensors))
        if key not in self._hr:
            if rec.source is None:
                raise SqtoolError(f"{rec.dataset}/{rec.record_id}: no raw recording kept for the classic baseline")
            grid = baseline_grid(rec.source, rec.t0, self.window_s, self.notches,
                                 BaselineCfg(ppg_sensors=tuple(sensors)))
            self._hr[key] = {n: g["hr"] for n, g in grid.items()}
        return self._hr[key][notch]

    def choose(self, train) -> tuple[float, tuple[str, ...], dict]:
        """(notch, sensors, {(notch, sensors): mean of the training recordings' MAE})."""
        scores = {(n, s): float(np.nanmean([_mae(self.hr(r, n, s), r.y) for r in train]))
                  for n in self.notches for s in self.options}
        best = min(scores, key=lambda k: (not np.isfinite(scores[k]), scores[k]))
        return best[0], best[1], scores

    def fit_predict(self, train, test) -> tuple[dict, float, tuple[str, ...]]:
        """({record id: HR} of the `test` recordings at the setting the `train` recordings choose, the training mean
        HR where the baseline has no peak yet (a recording's first windows), notch, sensors)."""
        notch, sensors, _ = self.choose(train)
        mean = float(np.nanmean(np.concatenate([r.y for r in train])))
        out = {r.record_id: np.where(np.isfinite(h := self.hr(r, notch, sensors)), h, mean) for r in test}
        return out, notch, sensors

    def out_of_fold(self, corpus, groups) -> tuple[dict, list[dict]]:
        """({record id: HR} of every recording of `corpus`, scored with the setting its fold's OTHER subjects
        chose (`fit_predict`); per fold {subjects, notch_bpm, ppg_sensors}). `groups`: the folds' held-out
        subject keys."""
        out, chosen = {}, []
        for g in groups:
            hr, notch, sensors = self.fit_predict([r for r in corpus if r.key not in g], [r for r in corpus if r.key in g])
            out.update(hr)
            chosen.append({"subjects": sorted(g), "notch_bpm": notch, "ppg_sensors": list(sensors)})
        return out, chosen
