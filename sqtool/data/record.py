"""The one record type every reader returns.

A `Record` is one continuous recording of one subject: signals by channel name, each with its own
sampling rate, plus labels with their own time base. Canonical channel names:

    ppg, ppg2, ...        PPG (first/second sensor); ppg_red, ppg_ir, ppg_green for wavelengths
    acc_x, acc_y, acc_z   accelerometer (g)
    ecg, ecg_ii, ...      ECG leads
    resp                  respiration (impedance)

A `Label` is either a value per event (`times` in seconds, `values` per time: e.g. BPM per window
centre, breath times, per-sample artifact flags) or a single value for the whole record (`times`
None, `values` a 0-d or 1-d array: e.g. systolic BP, rhythm class, quality good/poor).

The activity a recording was made in (its condition: sit, walk, run, bike, ...) is record meta, not a label: no task
learns it, a report groups its windows by it (`sqtool bench`'s table by condition). meta["condition"]: the whole
recording's (the wrist_exercise reader's file stem, a dataset file's `conditions: {pattern}`);
meta["condition_segments"]: [[start_s, end_s, condition], ...], a protocol of timed segments (`conditions: {table}`
with start_s, end_s). `window_conditions` reads them for windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sqtool.core import MIN_RECORD_SAMPLES, NoSignal, SqtoolError, check_fs
from sqtool.core.model_cfg import ACC_AXES


PPG_WAVELENGTHS = ("ppg_green", "ppg_red", "ppg_ir")    # a PPG channel named by its wavelength (no plain ppg)


class TooShort(SqtoolError):
    """A recording shorter than one model window: an error for one recording; a command that reads many (sqtool
    predict on a folder) leaves it out with a warning and goes on with the rest."""


class MissingChannel(SqtoolError):
    """A recording without a channel the model reads: an error for one recording; a command that reads many (sqtool
    predict on a folder, as the bench) leaves it out with a warning and goes on with the rest, as a TooShort one."""


def require_channels(record, channels, where: str = "") -> None:
    """MissingChannel naming the recording (`where`, else dataset/record_id), the channels it lacks and those it has."""
    miss = [c for c in channels if c not in record.signals]
    if miss:
        from sqtool.data.dataset_reader import described_above      # a recording of a dataset file, given alone
        above = described_above(getattr(record, "source", ""))
        raise MissingChannel(f"{where or f'{record.dataset}/{record.record_id}'}: the model needs channel(s) "
                             f"{', '.join(miss)}; the recording has {', '.join(record.signals) or 'none'}"
                             + (f" {above}" if above else ""))


def subject_key(dataset: str, subject) -> str:
    """"dataset:subject", the subject id unique across datasets (kept as is when it already names its
    dataset, e.g. the quality task's "but_ppg:12"). Training provenance and the bench compare these."""
    s = str(subject)
    return s if ":" in s else f"{dataset}:{s}"


@dataclass
class Label:
    values: np.ndarray                  # (n,) per event, or () / (k,) for a whole-record label
    times: np.ndarray | None = None     # (n,) seconds from record start, None = whole record
    unit: str = ""                      # "bpm", "breaths/min", "mmHg", "class", "flag", ...
    kind: str = "value"                 # "value" | "class" | "events" | "flags" | "window"
    classes: tuple[str, ...] | None = None  # names for kind == "class"
    positive: tuple[str, ...] | None = None  # kind "class" read through a dataset file: the classes its af list
                                        # (rhythm) or good list (quality) names, as the data spells them
    window_s: float | None = None       # for kind == "window": each time is a window's START
    fs: float | None = None             # for kind == "flags": per-sample flags at this rate

    def __len__(self) -> int:
        return int(np.size(self.values))


@dataclass
class Record:
    dataset: str                        # "troika", "bidmc", "ppg_bp", "ppg_arrhythmia", "but_ppg", "mw_ppg", ...
    subject: str                        # subject id, unique within the dataset
    record_id: str                      # unique within the dataset (subject + session/segment)
    signals: dict[str, np.ndarray]      # channel -> (N_c,) float64
    fs: dict[str, float]                # channel -> Hz
    labels: dict[str, Label] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    source: str = ""                    # file path the record came from

    @property
    def channels(self) -> list[str]:
        return list(self.signals)

    def duration(self, channel: str | None = None) -> float:
        ch = channel or self.primary_channel()
        return len(self.signals[ch]) / self.fs[ch]

    def span_s(self) -> float:
        """Seconds of the longest channel: what a label's rows and windows are checked against."""
        return max(len(x) / self.fs[c] for c, x in self.signals.items())

    def primary_channel(self) -> str:
        for ch in self.signals:
            if ch.startswith("ppg"):
                return ch
        raise SqtoolError(f"{self.dataset}/{self.record_id}: no PPG channel (has {', '.join(self.signals)})")

    def channel(self, name: str) -> np.ndarray:
        if name not in self.signals:
            raise SqtoolError(f"{self.dataset}/{self.record_id}: channel '{name}' missing "
                              f"(has {', '.join(self.signals)})")
        return self.signals[name]

    def validate(self) -> "Record":
        """Refuse records no stage can use: empty, a channel without one finite sample, missing rate, shape
        mismatch. NaN/Inf samples are gaps, not errors (see `nonfinite_samples`)."""
        where = f"{self.dataset}/{self.record_id}"
        if not isinstance(self.signals, dict) or not isinstance(self.fs, dict):
            raise SqtoolError(f"{where}: signals and fs must be dicts (channel -> samples, channel -> Hz), got "
                              f"{type(self.signals).__name__} and {type(self.fs).__name__}")
        if not self.signals:
            raise SqtoolError(f"{where}: record has no signals")
        for ch, x in self.signals.items():
            if ch not in self.fs or self.fs[ch] is None:
                raise SqtoolError(f"{where}: channel '{ch}' has no valid sampling rate")
            if isinstance(self.fs[ch], (str, bytes)):
                raise SqtoolError(f"{where}: channel '{ch}': sampling rate {self.fs[ch]!r} is text, not a number")
            check_fs(self.fs[ch], f"{where}: channel '{ch}'")
            x = np.asarray(x)
            if x.dtype.kind not in "biuf":                # complex, text, objects: not samples
                raise SqtoolError(f"{where}: channel '{ch}' must hold real numbers, got {x.dtype} samples")
            if x.ndim != 1:
                raise SqtoolError(f"{where}: channel '{ch}' must be 1-D, got shape {x.shape}")
            if x.size == 0:
                raise SqtoolError(f"{where}: channel '{ch}' is empty")
            if x.size < MIN_RECORD_SAMPLES:
                raise SqtoolError(f"{where}: channel '{ch}' has {x.size} sample(s); a record needs at least "
                                  f"{MIN_RECORD_SAMPLES}")
            if not np.isfinite(x).any():              # NaN/Inf samples are gaps; a channel of gaps only is none
                raise NoSignal(f"{where}: channel '{ch}' has no finite sample (all {x.size} are NaN/Inf)")
        return self

    def check_spans(self, slack: int = 0) -> "Record":
        """Refuse channels that do not span the same time: durations (samples / rate) that differ by `slack` + 1
        samples of the slower channel or more (at one rate: lengths more than `slack` samples apart), one line naming
        the file (or the record) and the lengths. slack 0, for records made from arrays (predict(records=...),
        `sqtool.load_model`): a stream cuts its channels to the shortest (`channel_matrix`), which for a shorter
        array handed in is a mistake to say, not a file's tail to drop. slack 1, for a file (`read_npz`): two
        streams a logger stops at one instant end within one sample period of each other, so one sample more in
        one of them is its clock's phase, not a lost tail (500 samples are)."""
        spans = {ch: (np.size(x), float(self.fs[ch])) for ch, x in self.signals.items()}
        a, b = (f(spans, key=lambda ch: spans[ch][0] / spans[ch][1]) for f in (min, max))   # shortest, longest
        (na, fa), (nb, fb) = spans[a], spans[b]
        if (nb / fb - na / fa) * min(fa, fb) >= slack + 1 - 1e-6:        # the difference in slower-channel samples
            short = f"{nb - na} samples" if fa == fb else f"{nb / fb - na / fa:.3g} s"
            with_a = [f"'{ch}'" for ch, (n, f) in spans.items() if abs(n / f - na / fa) * f < 0.5]   # a's span
            raise SqtoolError(f"{self.source or f'{self.dataset}/{self.record_id}'}: channels of unequal length: "
                              f"'{b}' has {nb} samples at {fb:g} Hz ({nb / fb:g} s), '{a}' {na} at {fa:g} Hz "
                              f"({na / fa:g} s): {', '.join(with_a)} {'is' if len(with_a) == 1 else 'are'} {short} "
                              f"short of '{b}'; give every channel the same span")
        return self

    def nonfinite_samples(self) -> int:
        """NaN/Inf samples over all channels: gaps (predict and bench hold them as the device does; training and
        the pair miner leave out the windows that hold one)."""
        return int(sum(np.size(x) - np.count_nonzero(np.isfinite(x)) for x in self.signals.values()))

    def gap_text(self) -> str:
        """Where the gaps are, by channel: 'acc_x 7,587 of 15,175 samples, ...'; channels that hold a value every
        k-th row only (k > 1, regular) are named as what they likely are, a slower stream written into the faster
        rows of one file (blank cells between its values): every window then holds a gap, and training leaves
        them all out. '' without gaps."""
        parts, sparse = [], {}
        for c, x in self.signals.items():
            fin = np.isfinite(x)
            if fin.all():
                continue
            parts.append(f"{c} {np.size(x) - np.count_nonzero(fin):,} of {np.size(x):,} samples")
            steps = np.diff(np.flatnonzero(fin))
            if steps.size > 1 and (k := int(np.median(steps))) > 1 and np.mean(steps == k) > 0.9:
                sparse.setdefault((k, float(self.fs[c])), []).append(c)
        for (k, fs), chans in sparse.items():
            parts.append(f"{', '.join(chans)}: one value every {k} rows, a {fs / k:g} Hz stream in {fs:g} Hz rows? "
                         f"fill the blanks, or say its rate in the dataset file (channels.{chans[0]}: "
                         f"{{column: ..., fs: {fs / k:g}}})"
                         + (f" or, for a CSV without one, with predict / bench --acc-fs {fs / k:g}"
                            if all(c.startswith("acc_") for c in chans) else ""))
        return "; ".join(parts)


def tile_record(rec: Record, min_s: float) -> Record:
    """A copy of `rec` whose signals are repeated periodically (end to end) until they last at least `min_s` seconds,
    meta["tiled_from_s"] = its own duration; `rec` itself when it is that long already. How a recording shorter than
    a model window is filled to one: training does it (`data.tasks`: PPG-BP's 2.1 s segments, short arrhythmia and
    quality segments), and an export whose metadata says short_records "tile" has predict do the same."""
    import dataclasses
    if rec.duration() >= min_s:
        return rec
    sig = {}
    for ch, x in rec.signals.items():
        n_need = int(np.ceil(min_s * rec.fs[ch])) + 1
        sig[ch] = np.tile(x, int(np.ceil(n_need / len(x))))[:n_need]
    return dataclasses.replace(rec, signals=sig, meta={**rec.meta, "tiled_from_s": rec.duration()})


def stream_rate(record: Record, channels) -> tuple[float, dict[str, float]]:
    """The one rate a stream of `channels` runs at, its first PPG channel's (else its first channel's), and the
    channels at another rate (channel -> Hz), which `channel_matrix` resamples to it: as a device whose
    accelerometer samples slower than its PPG upsamples it to the PPG's rate. A missing channel is one line
    (`require_channels`)."""
    channels = list(channels)
    require_channels(record, channels)
    lead = next((c for c in channels if c.startswith("ppg")), channels[0])
    rate = float(record.fs[lead])
    return rate, {c: float(record.fs[c]) for c in channels if float(record.fs[c]) != rate}


def channel_matrix(record: Record, channels) -> tuple[np.ndarray, float]:
    """(C, N) float64 samples of `channels` at their one stream rate (`stream_rate`: the PPG's; a channel at
    another rate resampled to it on the host, polyphase, its gaps kept: `preprocess.resample_keeping_gaps`), cut
    to the shortest. A missing channel, or a rate ratio no polyphase filter takes, is one clear error naming the
    recording (and the fix)."""
    rows, fs = channel_rows(record, channels)
    return np.stack(rows), fs


def channel_rows(record: Record, channels) -> tuple[list[np.ndarray], float]:
    """`channel_matrix`'s rows as a list of (N,) float64 arrays, not stacked: a channel already float64 at the
    stream rate is the record's own array (a view, not a copy: a day at 64 Hz is 44 MB a channel), so a caller
    that works row by row holds one copy of the recording, not two. The rows are read only."""
    from sqtool.data.preprocess import resample_keeping_gaps
    where = f"{record.dataset}/{record.record_id}"
    fs, other = stream_rate(record, channels)
    rows = []
    for c in channels:
        x = np.asarray(record.signals[c], dtype=np.float64)
        if c in other:
            try:
                x = resample_keeping_gaps(x, other[c], fs, f"{where}: channel '{c}'")
            except SqtoolError as e:
                raise SqtoolError(f"{where}: channel '{c}' at {other[c]:g} Hz cannot be resampled to the PPG's "
                                  f"{fs:g} Hz ({e}); resample '{c}' to {fs:g} Hz before (or give the recording "
                                  "one rate)") from None
        rows.append(x)
    n = min(len(x) for x in rows)
    return [x[:n] for x in rows], fs


def resampled_note(pairs, integer: bool = False, device_acc_fs: float | None = None) -> str | None:
    """One note line on the recordings whose streamed channels were at another rate than their PPG (`pairs`:
    (record, its streamed channels) each), resampled to it by `channel_matrix` (integer: the accelerometer axes by
    the kit's integer accelerometer resampler, `hr_spectra.acc_at_device_rate`; any other channel still by the
    float filter); None when there is none. device_acc_fs: the rate that resampler was exported for (metadata
    acc_resampler.fs_acc_in): an accelerometer at another rate gets a WARNING sentence (the host designs the same
    integer filter for the recording's own rates, a filter that device does not run)."""
    hits = [(r, stream_rate(r, ch)) for r, ch in pairs]
    hits = [(r, rate, other) for r, (rate, other) in hits if other]
    if not hits:
        return None
    r, rate, other = hits[0]
    rates = "; ".join(f"{', '.join(c for c in other if other[c] == f)} {f:g} Hz"        # acc_x, acc_y, acc_z 25 Hz
                      for f in dict.fromkeys(other.values()))
    acc = integer and any(c in ACC_AXES for _, _, o in hits for c in o)
    floated = any(c not in ACC_AXES for _, _, o in hits for c in o)
    how = ("(polyphase, as a device upsamples a slower accelerometer)" if not acc else
           "by the export's integer accelerometer resampler (bit-exact with its C, as the device does)" if not floated
           else "the accelerometer by the export's integer resampler (bit-exact with its C, as the device does), "
                "other channels by the float polyphase filter")
    line = (f"note: {len(hits)} recording{'s' if len(hits) > 1 else ''} with channels at another rate than the PPG: "
            f"resampled to the PPG's rate on the host {how}, e.g. {r.record_id}: {rates} -> {rate:g} Hz")
    off = sorted({f for _, _, o in hits for c, f in o.items() if c in ACC_AXES and device_acc_fs
                  and abs(f - float(device_acc_fs)) > 1e-6})
    if integer and off:
        line += (f". WARNING: the export's device resamples an accelerometer at {float(device_acc_fs):g} Hz "
                 f"(export --device-acc-fs); these recordings' {', '.join(f'{f:g}' for f in off)} Hz go through the "
                 "integer filter designed for their own rate, one that device does not run: export for this rate")
    return line


def window_label(record: Record, t0, label: str = "hr") -> np.ndarray | None:
    """The value of a per-window label (kind "window": times = window starts) for the windows starting at
    t0 (exact match; NaN where the label has no such window); None when the record has no such label."""
    lab = record.labels.get(label)
    if lab is None or lab.times is None:
        return None
    return values_at(lab.times, lab.values, t0)


def values_at(times, values, t, tol: float = 1e-6) -> np.ndarray:
    """(n,) float: for each time t, the value whose time is nearest to it (a tie: the earlier) when that is within
    `tol` seconds, else NaN. How per-window values (labels, quality scores) are matched to windows by start time:
    never by position, so a window left out on one side does not shift every later one onto its neighbour's value."""
    times, values, t = np.asarray(times, float), np.asarray(values, float), np.asarray(t, float)
    if times.size == 0:
        return np.full(t.shape, np.nan)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    j = np.clip(np.searchsorted(times, t), 1, max(len(times) - 1, 1))
    j = np.minimum(j, len(times) - 1)
    left = np.maximum(j - 1, 0)
    j = np.where(np.abs(times[left] - t) <= np.abs(times[j] - t), left, j)     # the nearest time
    return np.where(np.abs(times[j] - t) <= tol, values[j], np.nan)


NO_CONDITION = ""           # a window outside every condition (`window_conditions`)


def window_conditions(record: Record, t0, window_s: float) -> np.ndarray:
    """(W,) str: the condition of each window starting at `t0` (seconds from the record's start), window_s long: the
    segment of meta["condition_segments"] holding the window's CENTRE (start_s <= centre < end_s; a window across two
    segments is its centre's), else meta["condition"], else NO_CONDITION (module docstring)."""
    centre = np.asarray(t0, float) + float(window_s) / 2
    out = np.full(centre.shape, str(record.meta.get("condition") or NO_CONDITION), dtype=object)
    for start, end, name in record.meta.get("condition_segments") or ():
        out[(centre >= float(start)) & (centre < float(end))] = str(name)
    return out
