"""Heart-rate windows as the device computes them: recordings -> int16 -> fixed-point front end -> spectra.

    corpus = hr_corpus(data_root, ("troika", "wrist_exercise"), model_cfg)
    for r in corpus:                   # one recording each, windows in time order
        r.x        int8 (W, F, C)       front-end codes (what the network reads, channels-last)
        r.y        float (W,) BPM       ECG truth per window (NaN = no truth or doubtful truth)
        r.t0       float (W,) s         window starts; r.flagged (W,) dropout fraction
        r.subject, r.dataset, r.record_id

Every model that reads spectra is trained and evaluated on exactly these codes: the numpy integer
reference of the firmware front end (`data.frontend`), not a float approximation. A float recording is
replayed as a device would sample it: `to_int16` with per-recording robust gains (the front end's
per-window block floating point and per-channel max make the codes insensitive to the gain, up to
saturation).

PPG sensors: a device (recording) may carry two PPG sensors (SP Cup / TROIKA: ppg, ppg2); the model's
frontend["ppg_sensors"] lists the sensors whose spectra the front end averages into the ppg channel when a
recording has them (default: the model's first channel alone, as models older than the key were trained).
`stream_channels` picks those present, in that order, then the other channels: n_ppg is the RECORDING's
(device's) property, the network reads the same channels either way.

Loading: a data root (a folder of dataset folders) resolves each dataset through its shipped dataset file
(`data.dataset_file.load_builtin`, `sqtool/data/datasets/<name>.yaml`), exactly as `--data troika` or a
user's dataset.yaml does (`data.dataset_tasks.hr_corpus_from_dataset`): one loading path.

Subjects: TROIKA's `Extra_TrainingData/DATA_S04_T01` is most likely subject S04 of the SP Cup test set;
the shipped troika.yaml leaves it out (`exclude`, the one place that says so; `EXCLUDED` reads it) so
results stay comparable with published test-set figures, and its exclusion is reported, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import ModelCfg, SqtoolError, signal_channels
from sqtool.core.model_cfg import ACC_AXES, ACC_SUM
from sqtool.data.frontend import MAX_PPG, FrontEndCfg, default_gains, design, spectra, to_int16
from sqtool.data.record import MissingChannel

HR_DATASETS = ("troika", "wrist_exercise")
SYNTHETIC_HR_SUBJECTS = 8           # the synthetic heart-rate corpus's subjects (hr_corpus "synthetic")


def default_datasets(root) -> tuple[str, ...]:
    """The heart-rate datasets (HR_DATASETS) present under data root `root`: what the fine-tune trains on, and the
    demo lists held-out subjects of, without --datasets."""
    return tuple(d for d in HR_DATASETS if (Path(root) / d).is_dir())


def _troika_excluded() -> tuple[str, ...]:
    from sqtool.data.dataset_file import builtin_exclude
    return tuple(builtin_exclude("troika"))


EXCLUDED = _troika_excluded()       # troika.yaml's exclude (likely SP Cup test subject S04), read, not repeated


@dataclass
class HrRecording:
    dataset: str
    subject: str
    record_id: str
    x: np.ndarray           # int8 (W, F, C)
    y: np.ndarray           # (W,) BPM, NaN = no truth
    t0: np.ndarray          # (W,) s
    flagged: np.ndarray     # (W,)
    meta: dict
    source: object = field(default=None, repr=False, compare=False)   # the raw Record (the classic baseline reads it)

    @property
    def key(self) -> str:
        """Subject id unique across datasets (folds are by subject)."""
        return f"{self.dataset}:{self.subject}"

    @property
    def valid(self) -> np.ndarray:
        """(W,) bool: the windows the device scores (its front end flagged under half the window: the network
        runs); the decoder holds its belief over the others."""
        return self.flagged < 0.5


def ppg_sensors(model_cfg: ModelCfg | dict) -> list[str]:
    """The PPG sensors a spectral model averages when a recording has them: frontend["ppg_sensors"], else
    the model's first channel alone (models older than the key)."""
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    sensors = list((mc.get("frontend") or {}).get("ppg_sensors") or [mc["channels"][0]])
    if not 1 <= len(sensors) <= MAX_PPG or len(set(sensors)) != len(sensors):
        raise SqtoolError(f"model {mc.get('name')}: frontend ppg_sensors {sensors} must name 1 to {MAX_PPG} "
                          "different PPG channels")
    return sensors


def frontend_cfg(model_cfg: ModelCfg | dict, fs_in: float, n_ppg: int = 1) -> FrontEndCfg:
    """The front end of a spectral model contract at a device rate, for a device with n_ppg PPG sensors
    (at most as many as the model's ppg_sensors)."""
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    fe = dict(mc.get("frontend") or {})
    if fe.get("type") != "spectrum":
        raise SqtoolError(f"model {mc.get('name')} has no spectral front end (frontend: {fe or 'none'})")
    sensors = ppg_sensors(mc)
    if not (isinstance(n_ppg, (int, np.integer)) and 1 <= n_ppg <= len(sensors)):
        raise SqtoolError(f"model {mc.get('name')} averages at most {len(sensors)} PPG sensor(s) "
                          f"(frontend ppg_sensors {sensors}); a device with {n_ppg} does not fit it")
    keep = {k: v for k, v in fe.items() if k in FrontEndCfg.__dataclass_fields__}
    keep.update(fs_in=float(fs_in), fs=float(mc["fs"]), window_s=float(mc["window_s"]),
                hop_s=float(mc["hop_s"]), n_channels=len(mc["channels"]), band=tuple(mc["band"]),
                n_ppg=int(n_ppg))
    return FrontEndCfg.from_dict(keep)


def stream_channels(record, model_cfg: ModelCfg | dict) -> tuple[list[str], int]:
    """(the record's channels in front-end input order, n_ppg): the model's ppg_sensors the record has
    (in their order), then the model's other channels. None of its PPG sensors: MissingChannel, one line."""
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    sensors = ppg_sensors(mc)
    present = [c for c in sensors if c in record.signals]
    if not present:
        from sqtool.data.dataset_reader import described_above
        raise MissingChannel(f"{record.dataset}/{record.record_id}: the model needs a PPG channel "
                          f"({' or '.join(sensors)}); the recording has {', '.join(record.signals) or 'none'} "
                          + (described_above(getattr(record, "source", "")) or
                             f"(name yours in a dataset.yaml, e.g. channels: {{{sensors[0]}: <column>}}, and give "
                             "that file as --data)"))
    return present + signal_channels(mc["channels"][1:]), len(present)


def device_gains(gains, model_cfg: ModelCfg | dict, fs_in: float, n_rows: int, n_ppg: int) -> str | np.ndarray:
    """The gains `device_stream` quantises a recording's n_rows channels with (its n_ppg PPG sensors, then acc x, y,
    z): "robust" as given (per recording, from its median and 99.9th percentile: replay only, no device can); None =
    the device's default gains (`frontend.default_gains`: PPG in SP Cup / TROIKA units, acc in g); a number = that
    many counts per unit on every row (1: the samples are int16 device counts already); a sequence = one per row.
    -> "robust" or (n_rows,) float64; anything else one line."""
    if isinstance(gains, str):
        if gains != "robust":
            raise SqtoolError(f"gains '{gains}': choose 'robust', None (the device's default gains), a number or one "
                              "per channel (counts per unit: the PPG sensors, then acc x, y, z)")
        return gains
    if gains is None:
        return np.array(default_gains(frontend_cfg(model_cfg, fs_in, n_ppg))[:n_rows], np.float64)
    try:
        g = np.asarray(gains, np.float64).reshape(-1)
    except (TypeError, ValueError):
        g = np.zeros(0)
    if g.size not in (1, n_rows) or not (np.isfinite(g).all() and (g > 0).all()):
        raise SqtoolError(f"gains {gains!r}: one positive number, or {n_rows} (counts per unit of each channel: "
                          f"{n_ppg} PPG sensor(s){', then acc x, y, z' if n_rows > n_ppg else ''})")
    return np.broadcast_to(g, (n_rows,)).copy()


SATURATED = 0.01     # of a row's samples past int16 under fixed gains: said (`saturation_note`), not only flagged


def saturation_note(x: np.ndarray, gains, rows, where: str) -> str | None:
    """One note line when fixed `gains` (C,) put more than SATURATED of a row's samples of x (C, N) float past
    int16's +-32767 (quantised to the rail: a flat PPG, its windows flagged, said nowhere else); None otherwise."""
    g = np.asarray(gains, np.float64)
    with np.errstate(invalid="ignore"):                                   # row by row: (N,) temporaries
        frac = [float((np.abs(np.asarray(r, np.float64) * g[c]) > 32767).mean()) if len(r) else 0.0
                for c, r in enumerate(x)]
    over = {r: f for r, f in zip(rows, frac) if f > SATURATED}         # row -> its fraction past int16
    if not over:
        return None
    bad = [f"{100 * f:.0f} % of {r}'s" for r, f in over.items()]
    advice = []                                  # per channel kind: an optical front end's counts, or acceleration
    if any(r not in ACC_AXES for r in over):
        advice.append("a flat PPG's windows are flagged: PPG counts wider than int16 (an 18-bit optical front end?) "
                      "need counts per unit below 1, or their DC removed, as the device's int16 input would")
    if any(r in ACC_AXES for r in over):
        advice.append("a railed axis loses the motion the model reads: acceleration is read in g (gravity alone is "
                      "1 g on some axis), so m/s^2 needs dividing by 9.80665 (or its counts per unit by 9.80665)")
    return (f"sqtool: note: {where}: with gains {', '.join(f'{g:g}' for g in gains)}, {', '.join(bad)} samples "
            "are past int16's +-32767 and read as the rail: " + "; ".join(advice))


def device_stream(record, channels, shared_acc_gain: bool = False, acc_resampler: bool = False,
                  gains: str | np.ndarray = "robust") -> tuple[np.ndarray, float, np.ndarray | None]:
    """(C, N) int16 device samples of a float record (robust per-recording gains, or `gains`: one per channel,
    `device_gains`), the device rate, and the
    per-sample gap flags (None when there is none): NaN/Inf samples are gaps holding the last good value.
    shared_acc_gain: the three accelerometer axes get ONE gain (the largest axis' robust amplitude -> 8000
    counts), as one sensor's full scale does, so their powers compare (a model reading the axes' summed power);
    else each row its own (the per-axis codes are scale-free per channel anyway).
    Channels at another rate than the PPG reach its rate through the host's float polyphase filter
    (`record.channel_matrix`), or, with acc_resampler (an export with the kit's accelerometer resampler: metadata
    acc_resampler, `sqtool export --device-acc-fs`), accelerometer axes as on that device: int16 counts at their own
    rate, then the kit's integer filter (`acc_at_device_rate`)."""
    from sqtool.data.record import channel_rows, stream_rate
    where = f"{record.dataset}/{record.record_id}"
    other = stream_rate(record, channels)[1]
    own = [c for c in channels if c in ACC_AXES and c in other] if acc_resampler else []
    rows = [c for c in channels if c not in own]                           # at the PPG's rate, or float-resampled
    x, fs = channel_rows(record, rows)                                     # C - A rows (N,): the record's own,
    x, gap = held(x, where, rows)                                          # not a (C, N) copy of them
    share = [i for i, c in enumerate(rows) if c in ACC_AXES] if shared_acc_gain else []
    fixed = not isinstance(gains, str)
    by_row = dict(zip(channels, gains)) if fixed else {}
    note = saturation_note(x, [by_row[c] for c in rows], rows, where) if fixed else None
    if note:
        from sqtool.core.progress import item
        item(note)
    x16 = to_int16(x, [by_row[c] for c in rows] if fixed else "robust", share=share)   # robust: a saturating level
    del x                                                                  # dropped (wrist_exercise's PPG DC)
    if not own:
        return x16, fs, gap
    a16, a_gap = acc_at_device_rate(record, own, fs, shared_acc_gain,      # (A, K) at fs
                                    [by_row[c] for c in own] if fixed else "robust")
    n = min(x16.shape[1], a16.shape[1])
    by = {**dict(zip(rows, x16[:, :n])), **dict(zip(own, a16[:, :n]))}
    gaps = [g[:n] for g in (gap, a_gap) if g is not None]
    return np.stack([by[c] for c in channels]), fs, np.logical_or.reduce(gaps) if gaps else None


def held(x, where: str, channels, last: np.ndarray | None = None) -> tuple[np.ndarray | list, np.ndarray | None]:
    """(C, N) float samples with their NaN/Inf gaps holding the last good value (the first good one before it), and
    the gap flags (N,) (None: none); no sample finite in every channel is one line. last: a stream's chunk, (C,)
    the values held before its first good one (the previous chunk's last), and a chunk of gaps only is no error.
    x: a (C, N) array, held in place, or a list of (N,) rows (`record.channel_rows`: the record's own arrays), each
    row with a gap replaced by a held copy in a new list (the record's samples untouched). Row by row, a block of
    HOLD_BLOCK samples at a time: the temporaries stay in MBs for a day-long recording."""
    bad = [None if np.isfinite(r).all() else ~np.isfinite(r) for r in x]   # (N,) bool per row with a gap
    if all(b is None for b in bad):
        return x, None
    gap = np.logical_or.reduce([b for b in bad if b is not None])
    if gap.all() and last is None:
        raise SqtoolError(f"{where}: no sample has every channel finite ({', '.join(channels)}): all are NaN/Inf gaps")
    in_place = isinstance(x, np.ndarray)
    x = x if in_place else list(x)
    for c, b in enumerate(bad):
        if b is None:
            continue
        row = x[c] if in_place else np.array(x[c], dtype=np.float64)
        prev = last[c] if last is not None else row[np.argmax(~b)] if (~b).any() else 0.0
        for a in range(0, len(row), HOLD_BLOCK):                          # hold the last good value
            seg, bb = row[a:a + HOLD_BLOCK], b[a:a + HOLD_BLOCK]
            if bb.any():
                idx = np.maximum.accumulate(np.where(~bb, np.arange(len(seg)), -1))
                seg[:] = np.where(idx >= 0, seg[np.maximum(idx, 0)], prev)
            prev = seg[-1]
        x[c] = row
    return x, gap


HOLD_BLOCK = 1 << 20     # samples `held` fills at a time (16 s of temporaries at 64 Hz: 8 MB each); tests make it tiny


def acc_at_device_rate(record, axes, fs: float, shared_gain: bool = False, gains="robust"
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Accelerometer `axes` at their own rate brought to the device rate fs as the C kit does: int16 counts at that
    rate (robust gains, one for the axes with shared_gain, or `gains`, one per axis; gaps held), then `acc_resampler.resample_acc` (the
    integer polyphase filter of c/<prefix>_acc_resampler.c, bit-exact, from a fresh state: its outputs lag the PPG by
    the filter's delay). Returns (A, K) int16 at fs and the gap flags at fs (`preprocess.gaps_at_rate`; None: none);
    axes at two rates, or a rate ratio the kit's filter cannot take, are one line."""
    from sqtool.data.acc_resampler import resample_acc
    from sqtool.data.preprocess import gaps_at_rate
    where = f"{record.dataset}/{record.record_id}"
    rates = sorted({float(record.fs[c]) for c in axes})
    if len(rates) > 1:
        raise SqtoolError(f"{where}: accelerometer axes at {' and '.join(f'{f:g}' for f in rates)} Hz; the device's "
                          "resampler takes one accelerometer rate")
    m = min(len(record.signals[c]) for c in axes)
    a, gap = held([np.asarray(record.signals[c], np.float64)[:m] for c in axes], where, axes)   # A rows (M,)
    a16 = to_int16(a, gains, share=range(len(axes)) if shared_gain else [])
    xyz = np.zeros((m, 3), np.int16)                                       # (M, 3): the resampler's x, y, z
    xyz[:, :len(axes)] = a16.T
    try:
        y = resample_acc(xyz, rates[0], fs)[:, :len(axes)].T                # (A, K)
    except SqtoolError as e:
        raise SqtoolError(f"{where}: {e}") from None
    return y, None if gap is None else gaps_at_rate(gap, y.shape[1], rates[0], fs)


def device_samples(record, channels, shared_acc_gain: bool = False) -> tuple[np.ndarray, float]:
    """(C, N) int16 device samples and the device rate (see `device_stream`)."""
    x16, fs, _ = device_stream(record, channels, shared_acc_gain)
    return x16, fs


def shared_acc_gain(model_cfg: ModelCfg | dict) -> bool:
    """Whether a model's replay gives the accelerometer axes one gain: when it reads their summed power."""
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    return ACC_SUM in mc["channels"]


def window_truth(record, t0: np.ndarray, window_s: float | None = None, label: str = "hr") -> np.ndarray:
    """Truth per model window [t0, t0 + window_s): the label at the window's centre, as the time-domain path takes
    it (`tasks._label_at_centres`: exact where a label window has the same centre, else interpolated between the
    label windows' centres); NaN outside the label's span or where the record has none. window_s None: windows as
    long as the label's own."""
    from sqtool.data.tasks import _label_at_centres
    lab = record.labels.get(label)
    if lab is None or lab.times is None or np.size(lab.times) == 0:
        return np.full(len(t0), np.nan)
    y, inside = _label_at_centres(lab, t0, float(window_s if window_s is not None else (lab.window_s or 0.0)))
    return np.where(inside, y, np.nan)


def with_truth(corpus, window_s: float) -> tuple[list, list[str]]:
    """(the recordings with a window that has heart-rate truth, in order; why each other one is left out): shorter
    than one model window (no window at all), or every window without truth (a gap, no label value). A recording
    with none is neither trained on nor a subject of the folds."""
    kept, left = [], []
    for r in corpus:
        if np.isfinite(r.y).any():
            kept.append(r)
        elif len(r.y) == 0:
            left.append(f"{r.dataset}/{r.record_id}: shorter than one {window_s:g} s window")
        elif r.meta.get("nonfinite_windows", 0) == len(r.y):
            left.append(f"{r.dataset}/{r.record_id}: every one of its {len(r.y)} windows holds NaN/Inf samples (gaps"
                        + (f": {r.meta['gaps']}" if r.meta.get("gaps") else "") + "), so none has heart-rate truth")
        else:
            left.append(f"{r.dataset}/{r.record_id}: none of its {len(r.y)} windows has heart-rate truth (gaps or "
                        "no label value)")
    return kept, left


def design_at_rate(fe: FrontEndCfg, where: str):
    """The front end's tables for fe's device rate, or one line naming `where` (a file) and a rate that works."""
    try:
        return design(fe)
    except SqtoolError as e:
        raise SqtoolError(f"{where}: the front end cannot take {fe.fs_in:g} Hz ({e}); resample the recording to a "
                          "rate such as 25, 50, 64, 100, 125 or 256 Hz") from None


def at_front_end_rate(record, model_cfg: ModelCfg | dict):
    """`record` as the device front end takes it: itself, or, when the front end cannot resample from its PPG's rate
    and that rate is off a whole number of Hz whose rate it can (a clock measured from a file's timestamps: 19.58 Hz
    for a nominal 20), `preprocess.at_whole_hz(record)`. Any other rate stays, for `design_at_rate` to refuse."""
    from sqtool.data.frontend import takes_rate
    from sqtool.data.preprocess import at_whole_hz_where
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    fs = float(record.fs[stream_channels(record, mc)[0][0]])
    return at_whole_hz_where(record, fs, lambda f: takes_rate(frontend_cfg(mc, f)))


def record_spectra(record, model_cfg: ModelCfg | dict, tables_cache: dict | None = None) -> HrRecording:
    """One recording through the front end (its PPG sensors of the model's ppg_sensors averaged, see
    `stream_channels`); NaN/Inf samples are the device's gaps, and the windows holding one get no truth (y NaN:
    left out of training and scoring, counted in meta["nonfinite_windows"]). `tables_cache` ({device rate: tables}, for ONE model config)
    saves designing the front end again for every recording at the same rate."""
    mc = model_cfg.to_dict() if isinstance(model_cfg, ModelCfg) else dict(model_cfg)
    record = at_front_end_rate(record, mc)                                 # a clock off its whole-Hz rate
    chans, n_ppg = stream_channels(record, mc)
    x16, fs_in, gap = device_stream(record, chans, shared_acc_gain(mc))   # (C_in, N): sensors, then acc
    fe = frontend_cfg(mc, fs_in, n_ppg)
    cache = tables_cache if tables_cache is not None else {}
    if fs_in not in cache:                                                 # the tables do not depend on n_ppg
        where = getattr(record, "source", "") or f"{record.dataset}/{record.record_id}"
        cache[fs_in] = design_at_rate(fe, where)
    codes, t0, flagged = spectra(fe, x16, gap, tables=cache[fs_in])
    y, meta = window_truth(record, t0, fe.window_s), {**record.meta, "ppg_sensors_recorded": int(n_ppg)}
    if gap is not None:                                                    # windows holding a NaN/Inf sample:
        from sqtool.data.preprocess import nonfinite_windows               # no truth, never trained on or scored
        bad = nonfinite_windows(record, chans, t0, fe.window_s)
        y, meta["nonfinite_windows"] = np.where(bad, np.nan, y), int(bad.sum())
        if bad.any():
            meta["gaps"] = record.gap_text()                            # by channel, for with_truth's line
    return HrRecording(record.dataset, str(record.subject), str(record.record_id), codes, y, t0, flagged, meta,
                       source=record)


def hr_corpus(data_root, datasets=HR_DATASETS, model_cfg: ModelCfg | dict | None = None,
              exclude=(), log=None, synthetic_subjects: int = SYNTHETIC_HR_SUBJECTS,
              seed: int = 0) -> list[HrRecording]:
    """Every labelled recording of `datasets` under data_root, as front-end spectra, each dataset read through
    its shipped dataset file (its `exclude` left out and reported; `exclude` here: further record ids to
    leave out). data_root "synthetic" (asked for explicitly, never a fallback) is the embedded generator:
    `synthetic_subjects` 5-minute wrist recordings at 125 Hz with known HR and accelerometer-correlated motion."""
    from sqtool.data.dataset_file import load_builtin
    from sqtool.data.dataset_tasks import dataset_spectra
    out, cache = [], {}
    if str(data_root) == "synthetic":
        from sqtool.data.synthetic import synth_corpus
        recs = synth_corpus(n_subjects=synthetic_subjects, duration_s=300.0, seed=seed, fs=125.0, af_fraction=0.0)
        return [record_spectra(r, model_cfg, cache) for r in recs]
    root = Path(data_root)
    for name in datasets:
        folder = root / name
        if not folder.is_dir():
            raise SqtoolError(f"heart-rate data: no folder {folder}")
        out += dataset_spectra(load_builtin(name, root), model_cfg, log, cache, skip=set(map(str, exclude or ())))
    if not out:
        raise SqtoolError(f"heart-rate data: no labelled recording in {', '.join(datasets)} under {root}")
    return out


def as_model_input(codes: np.ndarray) -> np.ndarray:
    """int8 (W, F, C) channels-last codes -> float32 (W, C, F) model input (code / 127)."""
    return np.ascontiguousarray(np.asarray(codes, np.float32).transpose(0, 2, 1) / np.float32(127.0))


def record_waveforms(record, t0: np.ndarray, model_cfg: ModelCfg, extra_s: float = 0.0) -> np.ndarray:
    """float32 (W, C, T + extra) time-domain windows of a recording for a time-domain HR-bin model (the
    `resnet1d_siamq_18` teacher of benchmarks/hr_spectral.py), starting at the spectral windows' `t0`: the
    model's PPG sensors averaged (as the front end does) then its other channels, NaN gaps interpolated,
    resampled to model_cfg.fs, band-passed (model_cfg.band), each window and channel normalised
    (model_cfg.norm). `extra_s` seconds more per window (edge-padded at the recording's end) leave room for
    a time stretch (train.augment.stretch_windows)."""
    from sqtool.data.preprocess import bandpass, fill_gaps, normalise, resample
    from sqtool.data.record import channel_matrix
    chans, n_ppg = stream_channels(record, model_cfg)
    x, fs = channel_matrix(record, chans)                                  # (C_in, N)
    for c in range(len(x)):                                                # NaN gaps: linear across
        if not np.isfinite(x[c]).all():
            x[c] = fill_gaps(x[c], f"{record.dataset}/{record.record_id}: channel {chans[c]}")
    x = np.concatenate([x[:n_ppg].mean(axis=0, keepdims=True), x[n_ppg:]])  # (C, N)
    x = bandpass(resample(x, fs, model_cfg.fs), model_cfg.fs, *model_cfg.band)   # (C, N') at the model rate
    n = model_cfg.n_samples + int(round(extra_s * model_cfg.fs))
    start = np.round(np.asarray(t0, float) * model_cfg.fs).astype(np.int64)
    x = np.pad(x, ((0, 0), (0, max(0, int(start.max(initial=0)) + n - x.shape[1]))), mode="edge")
    w = np.stack([x[:, s:s + n] for s in start]) if len(start) else np.zeros((0, len(x), n))
    return normalise(w, model_cfg.norm).astype(np.float32)                 # (W, C, T + extra)
