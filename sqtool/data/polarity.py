"""Does a recording's PPG look upside down? A detector for a warning only: it never changes the data.

A pulse rises faster than it falls (systolic upstroke, slower diastolic run-off), so the first derivative of a
clean PPG is positively skewed (BIDMC fingertip PPG: +0.6..+1.8 per recording); a sensor that gives its PPG
inverted (light intensity instead of absorbance: camera PPG, raw red/IR of a pulse oximeter, many AFEs) gives the
mirror image, a negative skew. Motion breaks this (an arm swing has its own asymmetry: wrist_exercise s5_run, running
throughout, read -0.40 on its least-moving windows), so the statistic is read on still windows only, and a verdict
needs a clear majority of them:

    windows   WINDOW_S (4 s: a rest of 30 s, as TROIKA's, holds 7), back to back, of the PPG band-passed BAND
              (0.5-15 Hz: 8 Hz rounds the upstroke off and left more of TROIKA's wrist PPG undecided); a window
              holding a NaN/Inf sample is left out
    still     the STILL_FRACTION (1/4) of them with the least accelerometer energy (`quality.motion_energy`), and of
              those only the ones at most STILL_G (0.2 g, where the quality index's motion factor
              1 / (1 + (e / 0.1 g)^2) has fallen to 0.2), when the recording has three axes at the PPG's rate;
              else the quarter with the most periodic pulse (spectral concentration,
              `quality.statistical_indices`). At least MIN_WINDOWS (5), else undetermined. Both choices read x and
              -x alike, so a flipped recording uses the same windows and its statistic is exactly the negative.
    verdict   the median derivative skew of those windows: "inverted" when it is <= -MIN_SKEW and at least
              MIN_AGREE (2/3) of the windows are negative; "normal" when >= +MIN_SKEW with 2/3 positive; else
              "undetermined".

MIN_SKEW = 0.35 is not fitted to any recording: it is above the 99.9th percentile of |median skew| over 5 windows of
band-passed Gaussian noise (no pulse) at 25-256 Hz (0.22-0.34; 0.46 at 20 Hz), so that noise alone is
"undetermined". benchmarks/ppg_polarity.py measures every shipped recording as delivered and flipped
(benchmarks/results/ppg_polarity.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BAND = (0.5, 15.0)        # Hz; the upper edge is kept below 0.45 fs
WINDOW_S = 4.0
STILL_FRACTION = 0.25
MIN_WINDOWS = 5
MIN_AGREE = 2.0 / 3.0
MIN_SKEW = 0.35
STILL_G = 0.2             # motion energy (g) above which a window is not still, whatever its rank
ACC = ("acc_x", "acc_y", "acc_z")


@dataclass
class Polarity:
    verdict: str          # "normal", "inverted" or "undetermined"
    skew: float           # median derivative skew of the windows used (NaN: none)
    agree: float          # share of those windows whose skew has the median's sign
    windows: int          # windows used (the stillest)
    of: int               # windows without a gap in the recording
    chosen_by: str        # "motion" (accelerometer) or "periodicity"

    def as_dict(self) -> dict:
        return asdict(self)


def derivative_skew(xf: np.ndarray) -> np.ndarray:
    """xf (W, T) band-passed windows -> (W,) skewness of their first difference (0 for a flat window)."""
    d = np.diff(xf, axis=1)                               # (W, T-1)
    d = d - d.mean(axis=1, keepdims=True)
    m2 = (d ** 2).mean(axis=1)                            # (W,)
    m3 = (d ** 3).mean(axis=1)
    return np.where(m2 > 0, m3 / np.where(m2 > 0, m2, 1.0) ** 1.5, 0.0)


def ppg_polarity(ppg: np.ndarray, fs: float, acc: np.ndarray | None = None) -> Polarity:
    """ppg (N,) raw samples at fs Hz; acc (3, N) the accelerometer's axes at the same rate, or None."""
    from sqtool.data.preprocess import bandpass, sliding_windows
    from sqtool.data.quality import motion_energy, statistical_indices

    x = np.asarray(ppg, dtype=np.float64)                 # (N,)
    win = int(round(WINDOW_S * fs))
    n_win = len(x) // win if win >= 8 else 0
    if n_win < MIN_WINDOWS:
        return Polarity("undetermined", float("nan"), 0.0, 0, n_win, "")
    finite = np.isfinite(x)
    fill = float(np.median(x[finite])) if finite.any() else 0.0
    xf = bandpass(np.where(finite, x, fill), fs, BAND[0], min(BAND[1], 0.45 * fs))      # (N,)
    w = sliding_windows(xf[: n_win * win], win, win)      # (W, T)
    ok = sliding_windows(finite[: n_win * win], win, win).all(axis=1)                  # (W,) no gap inside
    if acc is not None:
        a = np.asarray(acc, dtype=np.float64)[:, : n_win * win]                         # (3, W*T)
        ok &= sliding_windows(np.isfinite(a).all(axis=0), win, win).all(axis=1)
        a = np.moveaxis(sliding_windows(np.nan_to_num(a), win, win), 0, 1)              # (W, 3, T)
        rank, by = motion_energy(a, fs), "motion"                                       # (W,) low = still
    else:
        rank, by = -statistical_indices(w, fs)["spec_conc"], "periodicity"              # (W,) low = periodic
    idx = np.flatnonzero(ok)
    if idx.size < MIN_WINDOWS:
        return Polarity("undetermined", float("nan"), 0.0, 0, int(idx.size), by)
    k = max(MIN_WINDOWS, int(np.ceil(STILL_FRACTION * idx.size)))
    use = idx[np.argsort(rank[idx], kind="stable")[:k]]   # (k,) the stillest / most periodic
    if by == "motion":
        use = use[rank[use] <= STILL_G]                   # a run without a still moment: none
        if use.size < MIN_WINDOWS:
            return Polarity("undetermined", float("nan"), 0.0, int(use.size), int(idx.size), by)
    s = derivative_skew(w[use])                           # (k,)
    med = float(np.median(s))
    agree = float(np.mean(np.sign(s) == np.sign(med))) if med != 0 else 0.0
    verdict = "undetermined"
    if abs(med) >= MIN_SKEW and agree >= MIN_AGREE:
        verdict = "normal" if med > 0 else "inverted"
    return Polarity(verdict, med, agree, int(use.size), int(idx.size), by)


def record_polarity(record, channel: str) -> Polarity:
    """`ppg_polarity` of one PPG channel of a Record, with its accelerometer when all three axes share its rate and
    length."""
    x, fs = record.signals[channel], float(record.fs[channel])
    acc = None
    if all(a in record.signals and float(record.fs[a]) == fs and len(record.signals[a]) == len(x) for a in ACC):
        acc = np.stack([np.asarray(record.signals[a], dtype=np.float64) for a in ACC])   # (3, N)
    return ppg_polarity(x, fs, acc)


def ppg_channels(record) -> list[str]:
    return [c for c in record.signals if c.startswith("ppg")]


def polarity_warning(record: str, channel: str, p: Polarity | dict) -> str | None:
    """The one 'WARNING: ...' line for a PPG channel that looks inverted; None otherwise."""
    p = p.as_dict() if isinstance(p, Polarity) else p
    if p["verdict"] != "inverted":
        return None
    agree = int(round(p["agree"] * p["windows"]))
    kind = "still" if p["chosen_by"] == "motion" else "periodic"
    return (f"WARNING: {record}{'' if channel == 'ppg' else ' ' + channel} PPG looks inverted (derivative skew "
            f"{p['skew']:+.2f}, {agree} of {p['windows']} {kind} windows agree): if so, gain: -1 in dataset.yaml")


def polarity_lines(summary: dict, most: int = 5, indent: str = "") -> list[str]:
    """`data inspect`'s polarity lines of one summary: a count line, then a WARNING line for each of the first `most`
    inverted channels (the rest counted)."""
    pol = summary.get("polarity")
    if not pol:
        return []
    bad = pol["inverted"]
    n = pol["normal"] + pol["undetermined"] + len(bad)
    lines = [f"{indent}  PPG polarity: {pol['normal']} normal, {len(bad)} inverted, {pol['undetermined']} "
             f"undetermined (of {n} channels)"] if n else []
    lines += [polarity_warning(b["record"], b["channel"], b) for b in bad[:most]]
    if len(bad) > most:
        lines.append(f"WARNING: {len(bad) - most} more PPG channels look inverted (--json lists them)")
    return lines
