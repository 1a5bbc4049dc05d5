"""Is a recording's heart-rate reference on another clock than its PPG? A check for a warning only: it never changes
the data (the fix is the dataset file's `offset_s:`, which the warning names).

A reference recorded on a second device (a chest strap, a Holter, a phone's export) whose clock differs from the
watch's by seconds to minutes puts every window's truth early or late; during any change of heart rate the error
reads as model error. The PPG carries its own heart rate, so the lag shows where the two series agree best:

    hr        the project's classic spectral method (`hr_baseline.baseline_hr`, with the accelerometer when the
              recording has all three axes) on WINDOW_S windows every hop (the dataset file's hop_s, else the label's
              row spacing; at least MIN_HOP_S), its per-window pick ("raw": no slew-rate smoothing, which would lag)
    confident the CONFIDENT_FRACTION (half) of those windows whose spectrum holds its pick most clearly
              (`hr_baseline.peak_share`); the others are left out (a running wrist's classic is often wrong)
    scan      for each lag L in -LAG_MAX_S..+LAG_MAX_S (steps of the hop) the reference read at t - L against the
              classic at t: agreement = the share of windows within TOL_BPM, and the median |difference|. The best lag
              is the one of the highest agreement (within TIE of it: the lowest mean |difference| clipped at
              TOL_BPM, finer than the share when most windows agree, then the smallest |L|)
    verdict   "undetermined" when the reference's heart rate spans under SPREAD_MIN_BPM (its 5th-95th percentile: a
              flat heart rate looks alike at every lag), fewer than MIN_WINDOWS windows compare at lag 0, or the
              classic agrees with the reference on under AGREE_MIN of the windows even at its best lag (it cannot
              read this recording); else "lagged" when the best lag is not 0, gains at least MARGIN of agreement over
              lag 0, and at least halves the windows that disagree (MISS_RATIO); else "aligned".

The fix: offset_s = L (seconds added to the reference's times: positive when the reference's clock runs behind the
recording's, its rows then stamped L seconds early). Read on the shipped recordings (tests/data/test_clocklag.py):
11 of 12 TROIKA recordings aligned (best lag 0 s, one +2 s), DATA_10 undetermined (its classic agrees on 20 % of the
windows), their references moved 10 s behind or 20 s ahead found within one hop; no wrist_exercise recording warns,
12 of 13 undetermined (11 span under 20 BPM; one's classic agrees on 48 %), s2_high_resistance_bike aligned (+4 s).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sqtool.core import SqtoolError

WINDOW_S = 8.0            # the classic method's window
MIN_HOP_S = 1.0           # the scan's step: the hop, not below this (a 0.1 s hop would read 10x the windows)
LAG_MAX_S = 60.0          # lags scanned, each way
TOL_BPM = 5.0             # a window agrees when the classic is this near the reference
CONFIDENT_FRACTION = 0.5  # the windows read: this share of them with the clearest spectral peak
SPREAD_MIN_BPM = 20.0     # the reference's 5th-95th percentile span needed to tell a lag (TROIKA: 50-89 BPM,
                          #   wrist_exercise: 7-29)
MIN_WINDOWS = 20          # confident windows with a reference value at lag 0
AGREE_MIN = 0.5           # the best lag's agreement, else the classic cannot read the recording
MARGIN = 0.15             # the best lag's agreement over lag 0's (aligned TROIKA: at most 0.03)
MISS_RATIO = 0.5          # ... and its disagreeing windows at most this share of lag 0's
TIE = 0.02                # agreements this near the best are a tie (broken by the median |difference|)


@dataclass
class ClockLag:
    verdict: str          # "aligned", "lagged" or "undetermined"
    lag_s: float          # the best lag (NaN: none scanned); the fix is offset_s = lag_s
    agree_0: float        # share of the windows within TOL_BPM at lag 0 (NaN: none)
    agree_lag: float      # ... at lag_s
    median_0: float       # median |classic - reference| (BPM) at lag 0
    median_lag: float     # ... at lag_s
    windows: int          # confident windows compared at lag 0
    spread_bpm: float     # the reference's 5th-95th percentile span on the scanned windows
    hop_s: float          # the scan's step
    why: str = ""         # undetermined: why

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else None if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def lag_scan(hr: np.ndarray, ref: np.ndarray, hop_s: float, max_s: float = LAG_MAX_S):
    """hr (W,) the classic's, ref (W,) the reference's values on the same windows (every hop_s; NaN: none) -> lags (K,)
    s, agreement (K,) (share within TOL_BPM), median |difference| (K,), mean |difference| clipped at TOL_BPM (K,),
    windows compared (K,): at lag L the classic at window i against the reference at window i - L / hop_s (the
    reference read L seconds earlier); a recording shorter than the lags: those its windows hold (at least one
    window compared)."""
    n = max(min(int(np.floor(max_s / hop_s + 1e-9)), len(ref) - 1), 0)
    lags = np.arange(-n, n + 1)                                              # (K,) in hops
    agree, median, clipped, count = (np.full(len(lags), np.nan) for _ in range(4))
    for j, k in enumerate(lags):
        a, b = (hr[k:], ref[:len(ref) - k]) if k >= 0 else (hr[:k], ref[-k:])  # (W - |k|,) each
        ok = np.isfinite(a) & np.isfinite(b)
        count[j] = ok.sum()
        if ok.any():
            d = np.abs(a[ok] - b[ok])
            agree[j], median[j] = float(np.mean(d <= TOL_BPM)), float(np.median(d))
            clipped[j] = float(np.mean(np.minimum(d, TOL_BPM)))
    return lags * hop_s, agree, median, clipped, count


def clock_lag(hr: np.ndarray, share: np.ndarray, ref: np.ndarray, hop_s: float) -> ClockLag:
    """The verdict (module docstring) from the classic's picks hr (W,), their peak shares (W,) and the reference
    ref (W,) on windows every hop_s."""
    hr, share, ref = (np.asarray(x, np.float64) for x in (hr, share, ref))
    fin = ref[np.isfinite(ref)]
    spread = float(np.percentile(fin, 95) - np.percentile(fin, 5)) if fin.size else float("nan")
    ok = np.isfinite(hr) & np.isfinite(share)
    cut = np.quantile(share[ok], 1 - CONFIDENT_FRACTION) if ok.any() else np.inf
    conf = np.where(ok & (share >= cut), hr, np.nan)                         # (W,) the confident picks
    lags, agree, median, clipped, count = lag_scan(conf, ref, hop_s)
    z = int(np.flatnonzero(lags == 0)[0])
    out = ClockLag("undetermined", float("nan"), agree[z], float("nan"), median[z], float("nan"), int(count[z]),
                   spread, float(hop_s))
    if not np.isfinite(agree).any():
        out.why = "no window has both a confident classic reading and a reference value"
        return out
    top = np.nanmax(agree)
    tied = np.flatnonzero(agree >= top - TIE)
    best = min(tied, key=lambda j: (clipped[j], abs(lags[j])))
    out.lag_s, out.agree_lag, out.median_lag = float(lags[best]), float(agree[best]), float(median[best])
    if not spread >= SPREAD_MIN_BPM:
        out.why = f"the reference spans {spread:.1f} BPM (5th-95th percentile), under {SPREAD_MIN_BPM:g}: a flat heart " \
                  "rate looks alike at every lag"
    elif out.windows < MIN_WINDOWS:
        out.why = f"{out.windows} confident windows with a reference value, under {MIN_WINDOWS}"
    elif out.agree_lag < AGREE_MIN:
        out.why = f"the classic method agrees with the reference on {100 * out.agree_lag:.0f} % of the windows at " \
                  f"best, under {100 * AGREE_MIN:.0f} %: it cannot read this recording"
    elif (out.lag_s != 0 and out.agree_lag - out.agree_0 >= MARGIN
          and 1 - out.agree_lag <= MISS_RATIO * (1 - out.agree_0)):
        out.verdict = "lagged"
    else:
        out.verdict = "aligned"
    return out


def record_clock_lag(rec, label: str = "hr", hop_s: float | None = None) -> ClockLag | None:
    """`clock_lag` of a Record's per-window heart-rate label against its PPG (None: no such label with times, or no
    PPG). hop_s: the windows' step (a dataset file's hop_s; None: the label's row spacing)."""
    from sqtool.data.dataset_reader import row_step
    from sqtool.data.ecg import window_starts
    from sqtool.data.hr_baseline import baseline_hr
    from sqtool.data.hr_spectra import window_truth
    lab = rec.labels.get(label)
    if lab is None or lab.kind != "window" or lab.times is None or not any(c.startswith("ppg") for c in rec.signals):
        return None
    hop = max(float(hop_s or row_step(np.asarray(lab.times, np.float64)) or 2.0), MIN_HOP_S)
    ch = rec.primary_channel()
    t0 = window_starts(len(rec.signals[ch]), float(rec.fs[ch]), WINDOW_S, hop)          # (W,) s
    nan = float("nan")
    if len(t0) == 0:
        return ClockLag("undetermined", nan, nan, nan, nan, nan, 0, nan, hop, f"shorter than one {WINDOW_S:g} s window")
    try:
        b = baseline_hr(rec, t0, WINDOW_S, share=True)
    except SqtoolError as e:                     # a rate the classic cannot read (<= 8 Hz): said, not raised
        return ClockLag("undetermined", nan, nan, nan, nan, nan, 0, nan, hop, str(e))
    return clock_lag(b["raw"], b["share"], window_truth(rec, t0, WINDOW_S, label=label), hop)


def clock_lag_warning(record: str, lag: ClockLag | dict) -> str | None:
    """The one 'WARNING: ...' line of a recording whose reference looks lagged; None otherwise."""
    d = lag.as_dict() if isinstance(lag, ClockLag) else lag
    if d["verdict"] != "lagged":
        return None
    early = "early (its clock behind)" if d["lag_s"] > 0 else "late (its clock ahead)"
    return (f"WARNING: {record}: the hr reference looks {abs(d['lag_s']):g} s {early} against the PPG: the classic "
            f"heart rate agrees with it on {100 * d['agree_0']:.0f} % of the windows at lag 0, "
            f"{100 * d['agree_lag']:.0f} % at {d['lag_s']:+g} s (median |difference| {d['median_0']:.1f} -> "
            f"{d['median_lag']:.1f} BPM): if so, offset_s: {d['lag_s']:g} in labels.hr of dataset.yaml")


def clock_lag_lines(summary: dict, most: int = 5, indent: str = "") -> list[str]:
    """`data inspect`'s clock lines of one summary: a count line, then a WARNING line for each of the first `most`
    lagged recordings (the rest counted)."""
    rows = [(r["record"], r["clock_lag"]) for r in summary.get("recordings", ()) if r.get("clock_lag")]
    if not rows:
        return []
    by = {v: [rid for rid, d in rows if d["verdict"] == v] for v in ("aligned", "lagged", "undetermined")}
    und = by["undetermined"]
    lines = [f"{indent}  hr reference clock: {len(by['aligned'])} aligned, {len(by['lagged'])} lagged, {len(und)} "
             f"undetermined (of {len(rows)}; lag against the PPG's classic heart rate, +-{LAG_MAX_S:g} s)"
             + (f"; undetermined: {', '.join(und[:3])}{' ...' if len(und) > 3 else ''} (--json says why)" if und
                else "")]
    lines += [clock_lag_warning(rid, d) for rid, d in rows if d["verdict"] == "lagged"][:most]
    if len(by["lagged"]) > most:
        lines.append(f"WARNING: {len(by['lagged']) - most} more recordings' hr references look lagged (--json lists "
                     "them)")
    return lines
