"""`sqtool bench` for spectral exports (family spec_cnn): one front end, every runtime, decoded heart rate.

    res = run_spectral_bench(cfg, art)        # cfg: cli.BenchConfig, art: runtimes.load_artifacts(...)

For every recording (a dataset folder, a built-in name such as `troika` / `wrist_exercise` resolved under
the data root, or one file):

 1. device samples ONCE: the float record -> int16 (`prepare`: robust per-recording gains, as
    `data.hr_spectra.device_samples`; NaN samples become gap flags holding the last good value; the model's
    ppg_sensors the recording has, e.g. ppg and ppg2 on SP Cup / TROIKA, as `hr_spectra.stream_channels`:
    their spectra are averaged into the ppg channel, in every runtime alike), then the
    fixed-point front end ONCE (`front_end`: the streaming `data.frontend.FrontEnd`, the Python integer reference of
    the firmware's, a chunk at a time, bit for bit `data.frontend.spectra` of the whole recording):
    int8 codes (W, F, C) channels-last, window starts t0, flagged_q15; truth per window: the label at the model
    window's centre (`hr_spectra.window_truth` with the model's window_s, as training takes it). A window is
    scored when flagged_q15 <= MAX_FLAGGED_Q15 and its PPG is not quiet (the pipeline's rule,
    `export.pipeline.scores`); the others only advance the decoder (valid = False), in every runtime alike.
 2. every window runtime gets the SAME codes: float runtimes (torch_student, onnx_float, litert_float) read
    codes / 127 and give real logits -> `decode_float`; int8 runtimes (brevitas_int8, onnx_int8, litert_int8,
    tflm_int8, c_host, c_host_single, mcu_m4, ...) give int8 logits -> `decode_int` with the int graph's
    output scale. The model cfg's decoder dict is used (else DecoderCfg defaults on the model's bins).
 3. c_pipeline: the export's C pipeline (c/sq_pipeline.c + front end + network + decoder) built on the host
    as a shared library, each WHOLE recording pushed in ONE `sq_pipeline_push` call (int16 in, all its PPG
    sensors interleaved, results out), compared field by field with the Python integer reference
    `export.pipeline.PipelineRef` at the same sensor count (exact hops %; left out, in one line, when the
    student_int8 checkpoint it is built from is not there: an export folder copied without its source run).
    Every recording is replayed at the export's sensor count (SQ_FE_N_PPG, `fit_sensors`), for every runtime
    alike: an extra sensor is left out, a missing second one repeats the first (said in one note line).
 4. scores per runtime: decoded HR and per-window argmax HR against truth (MAE, RMSE, bias, 95 % limits of agreement,
    95 % CI of the MAE: a t-interval over subjects, or batch means of windows when fewer than 3 (no interval from
    fewer than 3 batches), MAPE, > 10 BPM %), per subject, per recording and by activity condition
    (`record.window_conditions`: the window's centre; only where recordings have one); fidelity against a reference
    runtime (int8 logits: exact windows %, max LSB; decoded HR: mean / max difference); host latency per window;
    instructions / flash / RAM on the emulated MCU; the classic baseline (`baseline.py`) on the same windows at the
    notch and PPG sensors the model's quantize run chose on its training subjects (`baseline_setting`: metadata.json
    classic_baseline, the model card's baseline; an export without it: the default notch) and the sensors the runtimes
    read (`baseline_sensors`: with two, the mean of their spectra, as the front end averages them; bench.md names the
    setting and the sensors). Without truth, accuracy is reported as not measured and cost and fidelity still are.

A runtime named in --runtime (by name or through a group such as `torch`) that cannot run is an error
(reported after bench.json is written); a default runtime, or one of `all`, that cannot run is skipped with
its reason in the report. Artifacts and checkpoints are found only through the export's manifest.json
(`core.manifest`, sha256 checked).
"""
from __future__ import annotations

import ctypes
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, load_shared_lib
from sqtool.core.io import ScratchDir
from sqtool.core.manifest import MissingArtifact, TamperedArtifact
from sqtool.core.metrics import (batch_means, block_windows, mae_batch_ci, mape, ratio_t_interval,
                                 uncertainty_scores)
from sqtool.data.record import window_conditions
from sqtool.firmware_bench.report import (GT, HEART_RATE, _f, _table, as_markdown, condition_lines,  # one table format
                                          condition_scores, covers_all, floors_line, left_out_lines, left_out_note,
                                          long_enough, panels_note, primary_runtime, too_short, write_windows_csv)

FLOAT_RUNTIMES = ("torch_student", "onnx_float", "litert_float")
INT8_RUNTIMES = ("brevitas_int8", "onnx_int8", "litert_int8", "tflm_int8", "c_host", "c_host_single",
                 "mcu_m4", "mcu_m4_single", "mcu_m33", "mcu_m55")
RUNTIMES = FLOAT_RUNTIMES + INT8_RUNTIMES + ("c_pipeline",)
DEFAULT = ("torch_student", "brevitas_int8", "onnx_int8", "litert_int8", "tflm_int8", "c_host", "c_host_single",
           "mcu_m4", "c_pipeline")
ALIASES = {"torch": ("torch_student", "brevitas_int8"), "pytorch": ("torch_student", "brevitas_int8"),
           "brevitas": ("brevitas_int8",), "onnx": ("onnx_int8",), "litert": ("litert_int8",),
           "tflite": ("litert_int8",), "tflm": ("tflm_int8",),
           "c": ("c_host", "c_host_single"), "mcu": ("mcu_m4",), "pipeline": ("c_pipeline",), "all": RUNTIMES}
NOT_MEASURED = "accuracy not measured: no recording has heart-rate truth (labels['hr'])"


# ----------------------------------------------------------------------------- data

def resolve_data(data: str, data_root: str | None = None, command: str = "bench", recordings=()):
    """--data through the one resolver (`data.dataset_file.resolve_data`): a dataset file (a dataset.yaml, or a
    built-in name such as troika / wrist_exercise) -> its DatasetFile, reading only the recordings --recordings picks
    (`pick_recordings`); a recordings folder or file -> its Path; a data root (several datasets) is one line
    (`one_dataset`)."""
    from sqtool.data.dataset_file import one_dataset, pick_recordings, resolve_data as resolve
    ref = pick_recordings(one_dataset(resolve(data, data_root or None), command), recordings)
    return ref.dataset if ref.kind == "dataset" else ref.path


RECORDINGS_HELP = ("with a dataset file as --data: only the recordings these patterns pick, comma separated (shell "
                   "patterns on a recording's id, its path under the file's root without the extension, or a leading "
                   "folder of it: s6_walk, s6_*, */ppg); its labels and subjects read as for all")


def synthetic_records() -> list:
    """`--data synthetic`, the embedded default of bench and predict: 4 generated subjects, 120 s each of wrist PPG
    + accelerometer with known heart rate (`data.synthetic.synth_corpus`, seed 0), named eval000-eval003 and drawn
    from their own random stream: no training corpus of the generator (syn000, syn001, ...) holds them, so a model
    trained on generated PPG (sqtool demo's default) is scored on subjects it never saw, and bench's "seen in
    training" check, which compares subject names, is true of them (the training corpus's syn000 was another
    recording of the same name)."""
    from sqtool.data.synthetic import synth_corpus
    return synth_corpus(n_subjects=4, duration_s=120.0, seed=0, af_fraction=0.0, prefix="eval")


def cut(record, max_seconds: float):
    """The record's first max_seconds (signals; labels keep their times, windows past the end just vanish)."""
    if not max_seconds:
        return record
    import dataclasses
    sig = {c: np.asarray(v)[:int(round(max_seconds * float(record.fs[c])))] for c, v in record.signals.items()}
    return dataclasses.replace(record, signals=sig)




ACC_FS_HELP = ("a CSV recording's (or a folder of them, no dataset.yaml) accelerometer rate when slower than its "
               "rows': its acc_x, acc_y, acc_z columns hold one value every k-th row (k = the rows' rate / HZ, "
               "whole), blank between, read as a dataset.yaml's channels.acc_x.fs reads them (an NPZ states its own "
               "fs_acc_x; default: every column at the rows' rate)")


def reader_options(acc_fs: float | None, path) -> dict:
    """The CSV reader's options of --acc-fs (predict, bench; {} without it): a CSV's accelerometer columns at acc_fs,
    in every k-th row (`readers.generic.acc_rows`). For CSV recordings only, whose columns state no rate of their
    own; any other data (a dataset file, NPZ, WFDB, a built-in layout, 'synthetic' or 'records' handed in) is one
    line saying where its accelerometer's rate is said."""
    from sqtool.core import check_fs
    if acc_fs is None:
        return {}
    fs = check_fs(acc_fs, "--acc-fs")
    if hasattr(path, "records"):
        raise SqtoolError(f"--acc-fs {fs:g}: {path.path} is a dataset file: give the accelerometer's rate there "
                          "(channels: {acc_x: {column: acc_x, fs: HZ}, ...})")
    from sqtool.data.readers import list_items
    kind = list_items(path)[0] if isinstance(path, Path) else path
    if kind != "csv":
        raise SqtoolError(f"--acc-fs {fs:g}: for CSV recordings, whose columns state no rate; {path} "
                          + ("holds " + kind + " recordings, whose channels carry their own rates (an NPZ's "
                             "fs_acc_x, a WFDB header, an E4 file's header rows, a dataset.yaml's channels.acc_x.fs)"
                             if isinstance(path, Path) else "are not read from files"))
    return {"acc_fs": fs}


def load_records(path, max_records: int = 0, max_seconds: float = 0.0, log=None, left_out: list | None = None,
                 options: dict | None = None) -> list:
    """The recordings of a path, or of a DatasetFile (its exclusions reported through `log`), all read (the benches;
    predict takes them one at a time, `iter_load`). With `left_out` (a list), a file of a folder the readers refuse
    is left out, its one-line reason appended there (`_readable`), and none left is no error here (the caller says
    why). `options`: the generic readers' (`reader_options`)."""
    out = []
    for r in iter_load(path, max_seconds, log, left_out, whole=True, options=options):
        out.append(r)
        if max_records and len(out) >= max_records:
            break
    if not out and not left_out:
        raise SqtoolError(f"--data {path}: no usable recordings")
    return out


def iter_load(path, max_seconds: float = 0.0, log=None, left_out: list | None = None, whole: bool = False,
              options: dict | None = None):
    """`load_records`' recordings one at a time, each cut to `max_seconds`, read only as the caller asks for the
    next: a file the caller refuses (a rate its model cannot take) stops the read there, before the files after
    it. A DatasetFile: `iter_records` (its checks over every recording after the last), or its `records` read
    whole when `whole`. `options`: the generic readers' (predict --acc-fs: a CSV's acc_fs)."""
    from sqtool.data.readers import iter_records
    if hasattr(path, "records"):
        recs = path.records(log=log) if whole else path.iter_records(log=log)
    elif left_out is None:
        recs = iter_records(path, **(options or {}))
    else:
        recs = _readable(path, left_out, options or {})
    for r in recs:
        yield cut(r, max_seconds)
        del r                           # not held while the next file is read (a day-long one: GBs at its peak)


def _readable(path, left_out: list, options: dict):
    """iter_records(path), a folder's files the readers refuse left out, their reasons appended to left_out, as
    predict and bench leave out a recording too short or without the model's channels: off the wrist throughout
    (core.NoSignal: a PPG flat line, an hour on the charger in a folder of hourly files), no time column and no rate,
    a damaged file. One file given alone: only NoSignal is left out (the caller's line says why); any other refusal
    is raised, as iter_records would."""
    from sqtool.core import NoSignal
    from sqtool.data.readers import iter_records
    skip = SqtoolError if Path(path).is_dir() else NoSignal
    yield from iter_records(path, on_error="skip", skipped=left_out, skip_only=skip, **options)


@dataclass
class SpecRec:
    """One recording as the device sees it: int16 samples, front-end codes, truth per window."""
    record: object
    x16: np.ndarray | None         # (C_in, N) int16: the PPG sensors, then acc x, y, z (None: released, `predict`)
    gap: np.ndarray | None         # (N,) bool
    fs_in: float
    codes: np.ndarray              # (W, F, C) int8
    t0: np.ndarray                 # (W,) s
    flagged_q15: np.ndarray        # (W,)
    valid: np.ndarray              # (W,) bool: scored by the network
    truth: np.ndarray              # (W,) BPM, NaN = none
    n_ppg: int = 1                 # PPG sensors replayed (rows 0 .. n_ppg-1 of x16): the export's count
    sensors_recorded: int = 1      # PPG sensors the recording itself has
    channels: tuple = ()           # the recording's channels streamed (`hr_spectra.stream_channels`)
    n_samples: int = 0             # N, device samples streamed (what `seconds` counts once x16 is released)
    gaps: str | None = None        # `Record.gap_text`, said before the float signals are released (None: ask it)
    samples_file: Path | None = None   # x16 and gap written there once let go (`let_go`), read back by `samples`
    baseline: tuple | None = None  # bench: (PPG sensors, baseline_hr's dict or its SqtoolError), run before let_go

    @property
    def record_id(self) -> str:
        return str(self.record.record_id)

    @property
    def subject(self) -> str:
        return f"{self.record.dataset}:{self.record.subject}"

    @property
    def seconds(self) -> float:
        return (self.x16.shape[1] if self.x16 is not None else self.n_samples) / self.fs_in

    def let_go(self, scratch: Path | None = None, name: str = "samples") -> "SpecRec":
        """Keep the windows (codes, t0, valid, truth), not the samples: the record's float signals go (`no_signals`),
        and the int16 device samples and gap flags too, into a file in `scratch` that `samples` reads back when
        given (`name`.npz; the bench's C pipeline pushes them), so a folder of a thousand recordings is not held at
        once."""
        if scratch is not None and self.x16 is not None:
            self.samples_file = Path(scratch) / f"{name}.npz"
            np.savez(self.samples_file, x16=self.x16, **({} if self.gap is None else {"gap": self.gap}))
        self.record = no_signals(self.record)
        self.x16, self.gap = None, None
        return self

    def samples(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(x16 (C_in, N) int16, gap (N,) bool or None): held, or read back from the file `let_go` wrote."""
        if self.x16 is not None or self.samples_file is None:
            return self.x16, self.gap
        with np.load(self.samples_file) as z:
            return z["x16"], (z["gap"] if "gap" in z.files else None)


def no_signals(record):
    """The record without its float signals (each an empty array: its channels kept), its rates, meta and labels
    kept: what the reports read of it once its windows are made."""
    import dataclasses
    return dataclasses.replace(record, signals={c: np.zeros(0) for c in record.signals})


def check_rate(mc: dict, fs_in: float, where: str):
    """The front end for this device rate, or one line saying why the rate cannot work."""
    from sqtool.data.hr_spectra import design_at_rate, frontend_cfg
    top = float(mc["band"][1])
    if not fs_in >= 2 * top:
        raise SqtoolError(f"{where}: sampled at {fs_in:g} Hz, below 2x the model band's top {top:g} Hz: the heart-rate "
                          "band is not in the recording")
    fe = frontend_cfg(mc, fs_in)
    return fe, design_at_rate(fe, where)


def export_ppg_sensors(art) -> int | None:
    """PPG sensors the export's C pipeline was built for (<PREFIX>_PL_N_PPG), None when it has no pipeline (exports
    older than the key: 1)."""
    if not art.has(art.c_name("pipeline_cfg.h")):
        return None
    n = art.c_define("pipeline_cfg.h", "PL_N_PPG")
    return 1 if n is None else n


def has_acc_resampler(md: dict) -> bool:
    """Whether the export ships the kit's accelerometer resampler (`sqtool export --device-acc-fs`: metadata
    acc_resampler): the host then brings a slower (or faster) accelerometer to the PPG's rate with it, as the device
    does, not with the float filter."""
    return bool(md.get("acc_resampler"))


def acc_resampler_fs(md: dict) -> float | None:
    """The accelerometer rate the export's resampler was made for (metadata acc_resampler.fs_acc_in), else None."""
    return float(md["acc_resampler"]["fs_acc_in"]) if has_acc_resampler(md) else None


def fit_sensors(x16: np.ndarray, n_have: int, n_want: int | None) -> tuple[np.ndarray, int]:
    """Replay a recording on a device with n_want PPG sensors: extra sensors are left out (a 1-sensor device
    reads ppg), a missing second sensor repeats the first (both inputs see the one sensor: each sensor's
    spectrum is normalised to its own max before the average, so the codes equal the 1-sensor codes up to
    one rounding step). Rows: n_have sensors, then the other channels."""
    if not n_want or n_want == n_have:
        return x16, n_have
    sensors = [x16[j] for j in sensor_rows(n_have, n_want)]
    return np.ascontiguousarray(np.vstack([*sensors, x16[n_have:]])), n_want


def sensor_rows(n_have: int, n_want: int) -> list[int]:
    """The recorded PPG sensor (0-based) each of a device's n_want sensor inputs reads: sensor i, the last one
    recorded where the recording has fewer (`fit_sensors`' samples, predict's channels_fed)."""
    return [min(i, n_have - 1) for i in range(n_want)]


def prepare(record, mc: dict, cache: dict | None = None, n_sensors: int | None = None,
            acc_resampler: bool = False, gains="robust") -> SpecRec:
    """Float record -> int16 device samples -> front-end codes (the Python integer reference), once.
    n_sensors: replay at the device's PPG sensor count (`fit_sensors`); None = the sensors the record has.
    acc_resampler: an accelerometer at its own rate reaches the PPG's through the kit's integer resampler, as on a
    device whose export has one (`has_acc_resampler`; `hr_spectra.device_stream`); else the host's float filter.
    gains: "robust" (per recording), or fixed for the device (`hr_spectra.device_gains`: None, a number, one per
    channel), as `sqtool.api.HrStream` quantises a stream."""
    import dataclasses

    from sqtool.data.hr_spectra import (at_front_end_rate, device_gains, device_stream, shared_acc_gain,
                                        stream_channels, window_truth)
    from sqtool.export.pipeline import scores
    where = f"{record.dataset}/{record.record_id}"
    record = at_front_end_rate(record, mc)                              # a clock off its whole-Hz rate
    chans, n_ppg = stream_channels(record, mc)
    gains = device_gains(gains, mc, float(record.fs[chans[0]]), len(chans), n_ppg)
    x16, fs_in, gap = device_stream(record, chans, shared_acc_gain(mc), acc_resampler, gains)   # (C_in, N) int16
    recorded = n_ppg
    x16, n_ppg = fit_sensors(x16, n_ppg, n_sensors)
    n = x16.shape[1]
    cache = {} if cache is None else cache
    if fs_in not in cache:
        cache[fs_in] = check_rate(mc, fs_in, where)
    fe, tab = cache[fs_in]
    fe = dataclasses.replace(fe, n_ppg=n_ppg)                            # same tables, this device's sensors
    codes, t0, fq, quiet = front_end(fe, tab, x16, gap)
    if len(codes) == 0:
        raise too_short(where, n / fs_in, float(mc["window_s"]))
    return SpecRec(record, x16, gap, fs_in, codes, t0, fq, scores(fq, quiet),
                   window_truth(record, t0, fe.window_s), n_ppg, recorded, tuple(chans), n)


def front_end(fe, tab, x16: np.ndarray, gap: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """A recording's device samples x16 (C_in, N) int16 and gap flags (N,) through the streaming front end
    (`data.frontend.FrontEnd.push_block`, PUSH_SAMPLES at a time: bit for bit the whole recording's `spectra`, its
    temporaries a chunk's, not the recording's) -> (codes (W, F, C) int8, t0 (W,) s, flagged_q15 (W,), ppg_quiet
    (W,) bool)."""
    from sqtool.data.frontend import FrontEnd
    stream = FrontEnd(fe, tab)
    blocks = [stream.push_block(x16[:, a:a + PUSH_SAMPLES], None if gap is None else gap[a:a + PUSH_SAMPLES])
              for a in range(0, x16.shape[1], PUSH_SAMPLES)]
    codes = np.concatenate([b.spec for b in blocks]) if blocks else np.zeros((0, tab.n_bins, fe.n_channels), np.int8)
    t0 = np.arange(len(codes)) * tab.hop / float(fe.fs)                    # as `spectra` says each window's start
    return (codes, t0, np.concatenate([b.flagged_q15 for b in blocks] or [np.zeros(0, np.int64)]),
            np.concatenate([b.ppg_quiet for b in blocks] or [np.zeros(0, bool)]))


PUSH_SAMPLES = 1 << 18    # device samples `front_end` pushes at a time (68 min at 64 Hz); tests make it small


def baseline_sensors(r: SpecRec, model_cfg: dict) -> tuple[str, ...]:
    """The PPG sensors of r's recording that the runtimes read: the model's ppg_sensors the recording has (in that
    order), the first r.n_ppg of them (the device's count: an extra one is left out; a missing second repeats
    the first, i.e. the first alone)."""
    from sqtool.data.hr_spectra import ppg_sensors
    return tuple(c for c in ppg_sensors(model_cfg) if c in r.record.signals)[:r.n_ppg]


def baseline_setting(md: dict) -> tuple[float, tuple[str, ...] | None, str]:
    """(notch BPM, PPG sensors or None, the sentence saying so) of the classic baseline bench scores: the setting the
    model's quantize run chose on its training subjects (metadata.json classic_baseline, which export carries from
    the run's metrics.json), so bench's held-out comparison is against the baseline its model card quotes; an
    export without it (older, a final fit, a fine-tune) keeps BaselineCfg's default notch and the model's sensors."""
    from sqtool.data.hr_baseline import BaselineCfg
    cb = md.get("classic_baseline") or {}
    if cb.get("notch_bpm") is not None:
        return (float(cb["notch_bpm"]), tuple(cb.get("ppg_sensors") or ()) or None,
                f"classic baseline: notch +-{float(cb['notch_bpm']):g} BPM, chosen on the training subjects "
                "(metadata.json classic_baseline; the model card's baseline)")
    return (BaselineCfg.notch_bpm, None,
            f"classic baseline: notch +-{BaselineCfg.notch_bpm:g} BPM, the default (this export's metadata.json has no "
            "classic_baseline chosen on training subjects: the model card's baseline, if any, may differ)")


def chosen_sensors(r: SpecRec, chosen: tuple[str, ...] | None, model_cfg: dict) -> tuple[str, ...]:
    """The baseline's PPG sensors for r's recording: the chosen ones it has, the first r.n_ppg of them (as
    `baseline_sensors`); none chosen, or none of them recorded: `baseline_sensors`."""
    got = tuple(c for c in chosen or () if c in r.record.signals)[:r.n_ppg]
    return got or baseline_sensors(r, model_cfg)


def sensors_text(per_record: list[tuple[str, ...]]) -> str:
    """'ppg + ppg2', or per set when the recordings differ: 'ppg + ppg2 (3 recordings), ppg (1 recording)'."""
    sets = Counter(per_record)                          # in first-seen order
    if len(sets) == 1:
        return " + ".join(next(iter(sets)))
    return ", ".join(f"{' + '.join(s)} ({n} recording{'s' if n > 1 else ''})" for s, n in sets.items())


def decoder_dict(md: dict) -> tuple[dict, str]:
    """The model's decoder dict (DecoderCfg keys + temperature), bins filled in; and a note on its origin."""
    mc = md.get("model_cfg") or {}
    d = dict(md.get("decoder") or mc.get("decoder") or {})
    note = "decoder: the model's (cfg.decoder)" if d else "decoder: DecoderCfg defaults (the model has none)"
    if "bins_bpm" not in d:
        d["bins_bpm"] = list(md.get("bins_bpm") or (mc.get("frontend") or {}).get("bins_bpm"))
    return d, note


def bins_of(dec: dict) -> np.ndarray:
    """The decoder's bin centres (BPM)."""
    from sqtool.models.decoder import decoder_cfg
    return decoder_cfg(dec).centres


def decode(logits: np.ndarray, recs: list[SpecRec], dec: dict, int_scale: float | None) -> dict:
    """Per-recording causal decoding of stacked (N, F) logits -> hr, lo, hi, conf (N,) each."""
    from sqtool.models.decoder import decode_float, decode_int
    out = {k: [] for k in ("hr", "lo", "hi", "conf")}
    a = 0
    for r in recs:
        b = a + len(r.t0)
        if int_scale is None:
            o = decode_float(logits[a:b], dec, r.valid, r.codes)
        else:
            o = decode_int(np.asarray(logits[a:b], np.int8), dec, int_scale, r.valid, r.codes)
        for k in out:
            out[k].append(np.asarray(o[k], float))
        a = b
    return {k: np.concatenate(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- the C pipeline on the host

class _Result(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("hr_mbpm", ctypes.c_int32), ("lo_mbpm", ctypes.c_int32),
                ("hi_mbpm", ctypes.c_int32), ("conf_q15", ctypes.c_uint16), ("flagged_q15", ctypes.c_uint16),
                ("valid", ctypes.c_uint8), ("no_pulse", ctypes.c_uint8)]   # an older C leaves no_pulse 0 (padding)


@dataclass
class PipelineState:
    """One device's C pipeline state (`CPipelineHost.start`), pushed into chunk by chunk (`CPipelineHost.push`)."""
    buf: np.ndarray                # (ceil(state bytes / 8),) uint64: the C's <prefix>_pipeline_t, 8-byte aligned
    n_ppg: int                     # PPG sensors it was started for (interleaved in each push's ppg)


def pipeline_host(art, work: Path) -> "CPipelineHost":
    """The export's C pipeline (c/<prefix>_pipeline.c, under the export's own prefix) built on the host in `work`."""
    return CPipelineHost(art.c_dir(art.c_name("pipeline.c")), work, art.c_prefix)


class CPipelineHost:
    """The export's whole C pipeline as a host shared library; `run` pushes a recording in ONE call. `prefix`: the
    export's C prefix (`export --prefix hr2`: c/hr2_pipeline.c, hr2_pipeline_push)."""

    def __init__(self, c_dir: Path, work: Path, prefix: str = "sq"):
        import shutil
        import subprocess

        from sqtool.firmware_bench.mcu import MCU_DIR, prefix_flags
        from sqtool.firmware_bench.pipeline_fw import C_FLAGS, pipeline_sources
        c_dir = Path(c_dir)
        srcs = pipeline_sources(c_dir, prefix)
        if shutil.which("gcc") is None:
            raise SqtoolError("gcc not found: cannot build the C pipeline on the host")
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        self.lib_path = work / f"lib{prefix}_pipeline.so"
        cmd = ["gcc", *C_FLAGS, "-O2", "-fPIC", "-shared", f"-I{c_dir}", *prefix_flags(c_dir, prefix, work),
               *map(str, srcs), str(MCU_DIR / "pipeline_host.c"), "-o", str(self.lib_path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SqtoolError(f"the C pipeline in {c_dir} does not build on the host: "
                              f"{(r.stderr.strip().splitlines() or ['?'])[0]}")
        lib = load_shared_lib(self.lib_path)
        for f in ("sq_pl_host_state_bytes", "sq_pl_host_result_bytes", "sq_pl_host_channels",
                  "sq_pl_host_ppg_sensors"):
            getattr(lib, f).restype = ctypes.c_int
        lib.sq_pl_host_max_results.argtypes = [ctypes.c_int]
        lib.sq_pl_host_max_results.restype = ctypes.c_int
        lib.sq_pl_host_fs_in_mhz.restype = ctypes.c_long
        self._init_fs = getattr(lib, f"{prefix}_pipeline_init_fs")
        self._init_fs.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        self._init_fs.restype = ctypes.c_int
        self._init_device = getattr(lib, f"{prefix}_pipeline_init_device", None)   # None: an export older than it
        if self._init_device is not None:
            self._init_device.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
            self._init_device.restype = ctypes.c_int
        self._push = getattr(lib, f"{prefix}_pipeline_push")
        self._push.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        self._push.restype = ctypes.c_int
        if lib.sq_pl_host_result_bytes() != ctypes.sizeof(_Result):
            raise SqtoolError(f"{prefix}_result_t is {lib.sq_pl_host_result_bytes()} bytes, the bench expects "
                              f"{ctypes.sizeof(_Result)}: the pipeline header changed")
        self.lib, self.prefix = lib, prefix
        self.fs_in = lib.sq_pl_host_fs_in_mhz() / 1000.0
        self.channels = lib.sq_pl_host_channels()
        self.n_ppg = lib.sq_pl_host_ppg_sensors()
        self.state_bytes = lib.sq_pl_host_state_bytes()
        self.file = str(c_dir / f"{prefix}_pipeline.c")
        self.size_bytes = sum(p.stat().st_size for p in c_dir.glob(f"{prefix}_*.[ch]"))

    def run(self, x16: np.ndarray, gap: np.ndarray | None, fs_in: float, where: str = "",
            n_ppg: int = 1) -> tuple[dict, float]:
        """x16 (C_in, N) int16 (n_ppg PPG sensor rows, then acc x, y, z) -> (results dict of (W,) arrays per
        RESULT_KEYS, seconds of the one push call)."""
        return self.push(self.start(fs_in, n_ppg, where), x16, gap, where)

    def start(self, fs_in: float, n_ppg: int = 1, where: str = "") -> "PipelineState":
        """A fresh pipeline state for a device at fs_in with n_ppg PPG sensors (<prefix>_pipeline_init_device), for
        `push`: a stream keeps it and pushes its chunks into it (`sqtool.api.HrStream`)."""
        state = np.zeros((self.state_bytes + 7) // 8, np.uint64)                 # 8-byte aligned
        fs_mhz = int(round(fs_in * 1000))
        rc = (self._init_device(state.ctypes.data, fs_mhz, int(n_ppg)) if self._init_device is not None else
              self._init_fs(state.ctypes.data, fs_mhz))
        if rc == 0 and n_ppg != self.n_ppg:                 # an export older than init_device: 1 sensor
            rc = -6
        if rc != 0:
            raise SqtoolError(f"c_pipeline: {where} is sampled at {fs_in:g} Hz but the C pipeline was exported "
                              f"for {self.fs_in:g} Hz (re-export with --device-fs {fs_in:g})" if rc == -5 else
                              f"c_pipeline: {where} has {n_ppg} PPG sensor(s), the C pipeline was exported for "
                              f"{self.n_ppg} (re-export with --ppg-sensors {n_ppg})" if rc == -6 else
                              f"c_pipeline: {self.prefix}_pipeline_init_device returned {rc}")
        return PipelineState(state, int(n_ppg))

    def push(self, state: "PipelineState", x16: np.ndarray, gap: np.ndarray | None, where: str = ""
             ) -> tuple[dict, float]:
        """One chunk x16 (C_in, n) int16 (the n_ppg PPG sensor rows `start` was given, then acc x, y, z) into
        `state` -> (results dict of the windows it completed, (W,) arrays per RESULT_KEYS; seconds of the push)."""
        from sqtool.export.pipeline import RESULT_KEYS
        x16 = np.asarray(x16, np.int16)
        C, n = x16.shape
        n_ppg = state.n_ppg
        want = n_ppg + (3 if self.channels > 1 else 0)                          # the sensors, acc x, y, z
        if C != want:
            raise SqtoolError(f"c_pipeline: {where} has {C} input rows, the pipeline reads {want} "
                              f"({n_ppg} PPG sensor(s){', acc x, y, z' if self.channels > 1 else ''})")
        ppg = np.ascontiguousarray(x16[:n_ppg].T)                               # (n, n_ppg) interleaved
        acc = np.ascontiguousarray(x16[n_ppg:].T) if C > n_ppg else None       # (n, 3) interleaved x, y, z
        g = None if gap is None else np.ascontiguousarray(np.asarray(gap, bool).astype(np.uint8))
        max_out = self.lib.sq_pl_host_max_results(n)
        out = (_Result * max(max_out, 1))()
        t = time.perf_counter()
        k = self._push(state.buf.ctypes.data, ppg.ctypes.data, None if acc is None else acc.ctypes.data,
                       None if g is None else g.ctypes.data, n, out, max_out)
        dt = time.perf_counter() - t
        if k < 0:
            raise SqtoolError(f"c_pipeline: {self.prefix}_pipeline_push returned {k} on {where}")
        return {key: np.array([getattr(out[i], key) for i in range(k)]) for key in RESULT_KEYS}, dt


# ----------------------------------------------------------------------------- window runtimes

def run_window_runtime(rt, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """codes (N, F, C) int8 -> (logits (N, F): float for float runtimes, int8 for int8 ones, int8 or None).

    Int8 runtimes get the codes themselves (channels-last, what the firmware's network reads); float ones
    codes / 127 channels-first."""
    from sqtool.firmware_bench.runtimes import _Int8
    if isinstance(rt, _Int8):
        yq = np.asarray(rt._run_int8(np.ascontiguousarray(codes.reshape(len(codes), -1)))).astype(np.int8)
        rt.int8_outputs = yq
        return yq, yq
    y = rt.run_batch(float_inputs(codes))
    return (rt.int8_outputs if rt.int8_outputs is not None else y), rt.int8_outputs


def float_inputs(codes: np.ndarray) -> np.ndarray:
    """(N, F, C) int8 codes -> (N, C, F) float32 codes / 127: what the float runtimes read."""
    return np.ascontiguousarray(codes.astype(np.float32).transpose(0, 2, 1) / np.float32(127.0))


# ----------------------------------------------------------------------------- metrics

MIN_BATCHES = 3        # batch means: fewer give no interval (see _mae_ci)


def _mae_ci(err: np.ndarray, subjects: np.ndarray, recordings: np.ndarray, block: int = 1):
    """95 % CI of the MAE: the t-interval over subjects' MAEs weighted by their windows, jackknife variance (3 or
    more subjects: the independent units), else batch means of each recording's windows in batches of `block`
    (block 1: single windows, as if independent: too narrow, said so). Over a few subjects whose MAEs are skewed
    (one subject's error far above the rest's) even this interval covers ~80 % rather than 95 % in simulation, less
    where the worse subjects also have more windows: read it as a rough range. The method text states the batches
    the interval rests on (`core.metrics.batch_means` halves `block` for short recordings). Fewer than MIN_BATCHES
    batches give no interval, said so: 2 batches leave 1 degree of freedom, t = 12.7, an interval ~13 standard
    errors each side that says nothing (0-282 BPM on two minutes of TROIKA); 3 give t = 4.3, wide but readable."""
    err = np.abs(np.asarray(err, np.float64))
    ok = np.isfinite(err)
    if ok.sum() < 2:
        return None, "too few windows"
    us = np.unique(subjects[ok])
    if len(us) >= 3:
        maes = [err[ok & (subjects == u)].mean() for u in us]
        sizes = [(ok & (subjects == u)).sum() for u in us]
        lo, hi = ratio_t_interval(maes, sizes, jackknife=True)                # sizes may track errors
        return [max(0.0, lo), hi], f"t-interval over {len(us)} subjects"
    n_rec = len(np.unique(recordings[ok]))
    recs = f"{len(us)} subject{'s' if len(us) > 1 else ''}, {n_rec} recording{'s' if n_rec > 1 else ''}"
    if block <= 1:
        return (list(mae_batch_ci(err, 1, recordings)),
                f"t-interval over single windows ({recs}; windows are correlated: too narrow)")
    _, sizes, used = batch_means(err, block, recordings)
    n = len(sizes)
    span = f"{min(sizes)}" + (f"-{max(sizes)}" if max(sizes) > min(sizes) else "")
    batches = f"{n} batch{'es' if n != 1 else ''} of {span} windows"
    detail = recs + (f"; batches of {block} halved to {used}: too few windows" if used < block else "")
    if n < MIN_BATCHES:
        return None, f"too few batches for an interval ({batches}; {detail})"
    return list(mae_batch_ci(err, used, recordings)), f"batch means over windows, {batches} ({detail})"


def hr_scores(pred: np.ndarray, truth: np.ndarray, subjects: np.ndarray | None = None,
              recordings: np.ndarray | None = None, block: int = 1, gt: float | None = GT) -> dict:
    """MAE, MAPE (% of the reference, `core.metrics.mape`), RMSE, bias, 95 % limits of agreement, > 10 BPM % (beyond
    `gt`; None for a quantity without one), n, coverage; with each window's subject and recording, the 95 % CI of the
    MAE (`_mae_ci`: over subjects, or batches of `block` windows when they are few)."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    has = np.isfinite(truth)
    ok = has & np.isfinite(pred)
    if not ok.any():
        return {"n": int(has.sum()), "labelled": int(has.sum()), "coverage": 0.0 if has.any() else None,
                "mae": None, "mape": None, "rmse": None,
                "bias": None, "loa95": None, "mae_ci95": None, "gt10_pct": None}
    e = pred[ok] - truth[ok]
    sd = float(e.std(ddof=1)) if e.size > 1 else 0.0
    d = {"n": int(ok.sum()), "labelled": int(has.sum()), "coverage": float(ok.sum() / has.sum()),
         "mae": float(np.abs(e).mean()), "mape": mape(truth[ok], pred[ok]),
         "rmse": float(np.sqrt((e ** 2).mean())), "bias": float(e.mean()),
         "loa95": [float(e.mean() - 1.96 * sd), float(e.mean() + 1.96 * sd)],
         "gt10_pct": None if gt is None else float(100 * (np.abs(e) > gt).mean())}
    if subjects is not None:
        d["mae_ci95"], d["mae_ci95_method"] = _mae_ci(pred - truth, np.asarray(subjects),
                                                      np.asarray(subjects if recordings is None else recordings), block)
    return d


def held_out_scores(hr: np.ndarray, truth_held: np.ndarray, subj_key: np.ndarray, rec_key: np.ndarray, block: int,
                    unc: tuple | None, span: float | None, conditions: np.ndarray | None = None) -> dict:
    """A runtime's scores over the subjects the model was not trained on only (`truth_held`: NaN on the others'
    windows): pooled hr_scores, the mean of the subjects' MAEs, per subject, the interval and confidence, and by
    condition (`report.condition_scores`) where windows have one: the conditions of the held-out scored windows only."""
    per = {k: v for k, v in grouped(hr, truth_held, subj_key).items() if v.get("mae") is not None}
    out = {"subjects": len(per), "metrics": hr_scores(hr, truth_held, subj_key, rec_key, block),
           "mae_mean_of_subjects": float(np.mean([v["mae"] for v in per.values()])) if per else None,
           "per_subject": per}
    if unc is not None:
        out["uncertainty"] = uncertainty_scores(hr, *unc, truth_held, span=span)
    held = np.isfinite(truth_held)                    # the held-out subjects' scored windows: a condition none of
    if conditions is not None and (by := condition_scores(hr[held], truth_held[held], np.asarray(conditions)[held],
                                                          subj_key[held])) is not None:   # them did gets no row
        out["per_condition"] = by
    return out


def _wins(model: dict, base: dict) -> list[int]:
    """[subjects where the model's MAE is below the baseline's, subjects both have]."""
    both = [s for s in model if s in base and base[s].get("mae") is not None]
    return [sum(model[s]["mae"] < base[s]["mae"] for s in both), len(both)]


def grouped(pred: np.ndarray, truth: np.ndarray, keys: np.ndarray) -> dict:
    return {str(k): hr_scores(pred[keys == k], truth[keys == k]) for k in dict.fromkeys(keys.tolist())}


def fidelity(row_logits: np.ndarray, ref_logits: np.ndarray, hr: np.ndarray, ref_hr: np.ndarray,
             integer: bool) -> dict:
    n = min(len(row_logits), len(ref_logits))
    a, b = row_logits[:n], ref_logits[:n]
    d = {"windows": int(n)}
    if integer:
        diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
        d.update(exact_pct=float(100 * (diff == 0).all(axis=1).mean()), max_lsb=int(diff.max(initial=0)))
    else:
        d["max_abs_logit_diff"] = float(np.abs(a.astype(float) - b.astype(float)).max(initial=0.0))
    dh = np.abs(hr[:n] - ref_hr[:n])
    d.update(hr_diff_mean=float(np.nanmean(dh)) if n else None, hr_diff_max=float(np.nanmax(dh)) if n else None,
             hr_equal_pct=float(100 * (dh == 0).mean()) if n else None)
    return d


FLOAT_GAP_BPM = 1.0    # a subject whose decoded MAE int8 - float exceeds this is named (export's parity: 0.1 pooled)


def float_gap(rows: list[dict], art, work: Path, codes: np.ndarray, recs: list, dec: dict,
              truth: np.ndarray, subj_key: np.ndarray) -> dict | None:
    """int8 - float per subject (decoded MAE of the first int8 row beside torch_student's), and, where a subject's
    exceeds FLOAT_GAP_BPM, which part int8 rounding makes: the int8 checkpoint with quantization off
    (`BrevitasInt8.run_unquantized`) on the same codes, decoded as torch_student is. torch_student is the float
    student before QAT: QAT's epochs go on training the weights, so an undertrained student (few epochs) can read a
    subject far from its int8 twin while its rounding moves nothing. None without both rows; "warning": the line."""
    from sqtool.firmware_bench import runtimes as R
    ok = {r["runtime"]: r["per_subject"] for r in rows if r.get("status") == "ok" and r.get("per_subject")}
    int8 = next((n for n in ("brevitas_int8", *INT8_RUNTIMES, "c_pipeline") if n in ok), None)
    if "torch_student" not in ok or int8 is None:
        return None
    f, q = ok["torch_student"], ok[int8]
    diff = {s: q[s]["mae"] - f[s]["mae"] for s in f
            if s in q and f[s].get("mae") is not None and q[s].get("mae") is not None}
    far = [s for s in diff if abs(diff[s]) > FLOAT_GAP_BPM]
    out = {"int8": int8, "float": "torch_student", "threshold_bpm": FLOAT_GAP_BPM, "int8_minus_float": diff,
           "subjects": far}
    if not far:
        return out
    head = (f"WARNING: int8 and float read {len(far)} of {len(diff)} subjects more than {FLOAT_GAP_BPM:g} BPM apart "
            f"({int8} - torch_student MAE: " + ", ".join(f"{s} {diff[s]:+.2f}" for s in far) + " BPM): "
            "torch_student is the float student before QAT (student_float.pt), the int8 rows the network QAT went "
            "on training from it")
    try:
        rt = R.make_runtime("brevitas_int8", art, work)
        per = grouped(decode(rt.run_unquantized(float_inputs(codes)), recs, dec, None)["hr"], truth, subj_key)
    except SqtoolError as e:
        out["unquantized_error"] = str(e)
        out["warning"] = head + f"; the int8 network with quantization off could not run ({e})"
        return out
    unq = {s: per[s]["mae"] for s in far}
    rounding = {s: q[s]["mae"] - unq[s] for s in far}
    out.update(unquantized=unq, rounding=rounding)
    worst = max(abs(v) for v in rounding.values())
    said = ", ".join(f"{s} {unq[s]:.2f}" for s in far)
    if worst <= FLOAT_GAP_BPM:
        out["cause"] = "qat"
        out["warning"] = (head + f"; that network with quantization off reads them at {said} BPM, within {worst:.2f} "
                          f"of {int8}: QAT's training moved them, not int8 rounding (a float student of few "
                          "epochs is still far from where QAT ends; quantize's default --epochs and --qat-epochs "
                          "leave little to move)")
    else:
        out["cause"] = "rounding"
        out["warning"] = (head + f"; that network with quantization off reads them at {said} BPM, up to "
                          f"{worst:.2f} from {int8}: int8 rounding itself moves them (the activation ranges quantize "
                          "calibrated, or the weights' int8 steps, lose what these recordings need)")
    return out


# ----------------------------------------------------------------------------- the benchmark

def _select(cfg_runtimes: list[str]) -> tuple[list[str], set[str]]:
    names, explicit = [], set()
    for n in list(cfg_runtimes) or list(DEFAULT):
        members = ALIASES.get(n, (n,) if n in RUNTIMES else None)
        if members is None:
            raise SqtoolError(f"unknown runtime '{n}' for a spectral model (known: {', '.join(RUNTIMES)}; groups: "
                              f"{', '.join(ALIASES)})")
        names += [m for m in members if m not in names]
        if cfg_runtimes and n != "all":                # `all`: whatever the export allows
            explicit.update(members)
    return names, explicit


def prepare_all(cfg, md: dict, records=None, log=print, n_sensors: int | None = None, each=None,
                scratch: Path | None = None) -> tuple[list[SpecRec], list[str], str]:
    """Every usable record through the Python front end, replayed at n_sensors PPG sensors (the export's
    pipeline) so that every runtime, the C pipeline included, reads the same device stream. A --data path is read
    one recording at a time; each prepared recording goes to `each` (the bench's classic baseline) while its float
    signals are there, then keeps its windows, not its samples (`SpecRec.let_go`: into `scratch` when given), so
    the memory grows with the windows, not with the signals. Sorted by (dataset, recording) as read whole."""
    mc = md["model_cfg"]
    data = "records"                                   # recordings handed in by the caller
    left_out: list[str] = []                           # a folder's files the readers refuse: left out, listed
    acc_fs = getattr(cfg, "acc_fs", None)
    if records is None and cfg.data == "synthetic":     # the embedded default: wrist PPG + acc with known HR
        reader_options(acc_fs, "synthetic")
        resolve_data("synthetic", recordings=getattr(cfg, "recordings", ()))    # --recordings: one line
        records, data = synthetic_records(), "synthetic"
    if records is None:
        path = resolve_data(cfg.data, getattr(cfg, "data_root", ""), recordings=getattr(cfg, "recordings", ()))
        records = _or_none_usable(iter_load(path, getattr(cfg, "max_seconds", 0.0), log, left_out,
                                            options=reader_options(acc_fs, path)), path, left_out)
        data = str(getattr(path, "path", path))
    else:
        reader_options(acc_fs, "records")
        records = (cut(r, getattr(cfg, "max_seconds", 0.0)) for r in records)
    cache, numbers = {}, itertools.count()
    mine: list[tuple[tuple, str]] = []                  # (sort key, reason) of each recording left out here

    def prep(r):
        try:
            rec = prepare(r, mc, cache, n_sensors, has_acc_resampler(md))
        except SqtoolError as e:
            mine.append(((r.dataset, r.record_id), str(e)))
            raise
        if each is not None:
            each(rec)
        return rec.let_go(scratch, str(next(numbers)))
    recs, _ = long_enough(itertools.islice(records, cfg.max_records or None), prep, float(mc["window_s"]), data,
                          skip=SqtoolError, left=left_out)   # a recording without the model's channels too
    skipped = left_out + [why for _, why in sorted(mine, key=lambda m: m[0])]
    return sorted(recs, key=lambda r: (r.record.dataset, r.record.record_id)), skipped, data


def _or_none_usable(records, path, left_out: list):
    """`records` as they are read; none read and none refused is load_records' line."""
    n = 0
    for r in records:
        n += 1
        yield r
    if not n and not left_out:
        raise SqtoolError(f"--data {path}: no usable recordings")


def run_spectral_bench(cfg, art, records=None, log=print, warn_line=None) -> dict:
    """The spectral benchmark behind `sqtool bench` (see the module docstring). Returns the result dict. `log` gets
    each progress line, `warn_line` (default: `log`) each WARNING line, which `tables` also shows."""
    from sqtool.data.preprocess import whole_hz_note
    from sqtool.data.record import resampled_note
    from sqtool.export.pipeline import MAX_FLAGGED_Q15
    from sqtool.data import hr_baseline as B
    from sqtool.firmware_bench import mcu
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench.cli import (bench_run_dir, check_floor_metrics, check_floors, finish_bench,
                                           hr_reference, parse_floors)

    md = art.metadata
    floors = parse_floors(cfg.floor)
    check_floor_metrics(floors, HEART_RATE, f"{art.export_dir} is a heart-rate model")
    names, explicit = _select(cfg.runtime)
    dec, dec_note = decoder_dict(md)
    bins = bins_of(dec)
    from sqtool.models.decoder import decoder_cfg
    calib_span = decoder_cfg(dec).conf_error_span

    # the classic baseline (float record, its own tracker) on each recording's windows while its float signals are
    # there (prepare_all lets them go after), at the notch and PPG sensors the model's training chose
    # (`baseline_setting`), else the default notch and the sensors the runtimes read: the model's ppg_sensors the
    # recording has, as many as the device replays (the mean of their spectra, each scaled to its max, as the front
    # end averages them); a recording it refuses refuses the row (the first in order, after the runtimes)
    notch, chosen, bl_setting = baseline_setting(md)
    bl_s = [0.0]

    def classic(r: SpecRec) -> None:
        t_bl, sensors = time.perf_counter(), chosen_sensors(r, chosen, md["model_cfg"])
        try:
            r.baseline = sensors, B.baseline_hr(r.record, r.t0, float(md["window_s"]),
                                                B.BaselineCfg(ppg_sensors=sensors, notch_bpm=notch))
        except SqtoolError as e:
            r.baseline = sensors, e
        bl_s[0] += time.perf_counter() - t_bl

    t = time.perf_counter()
    n_sensors = export_ppg_sensors(art)
    scratch = ScratchDir("sqtool-bench-") if "c_pipeline" in names else None
    recs, skipped, data = prepare_all(cfg, md, records, log, n_sensors, each=classic,
                                      scratch=None if scratch is None else Path(scratch.name))  # the C pipeline's
    for line in left_out_lines(skipped, "bench"):
        log(line)
    if n_sensors is not None and any(r.sensors_recorded != n_sensors for r in recs):
        log(f"note: recordings replayed on the exported device's {n_sensors} PPG sensor(s) "
            f"(a missing second sensor repeats the first; an extra one is left out)")
    fe_s = time.perf_counter() - t - bl_s[0]
    codes = np.concatenate([r.codes for r in recs])                              # (N, F, C)
    truth = np.concatenate([r.truth for r in recs])
    valid = np.concatenate([r.valid for r in recs])
    rec_key = np.concatenate([[r.record_id] * len(r.t0) for r in recs])
    subj_key = np.concatenate([[r.subject] * len(r.t0) for r in recs])
    cond_key = np.concatenate([window_conditions(r.record, r.t0, float(md["window_s"])) for r in recs])   # "": none
    block = block_windows(float(md["model_cfg"]["hop_s"]))                      # of the MAE's CI, one-minute blocks
    N = len(codes)
    signal_s = float(sum(r.seconds for r in recs))
    labelled = bool(np.isfinite(truth).any())
    log(f"bench: front end (Python integer reference): {len(recs)} recordings, {N} windows, "
        f"{signal_s / 60:.1f} min of signal in {fe_s:.1f} s" + ("" if labelled else "; " + NOT_MEASURED))

    run_dir = bench_run_dir(cfg, str(md.get("model", "model")))
    work = run_dir / "build"

    rows, logits, hrs, uncs = [], {}, {}, {}          # uncs: each decoded runtime's (lo, hi, conf)
    for name in names:
        row = {"runtime": name, "status": "ok", "windows": N}
        t_start = time.perf_counter()
        try:
            if name == "c_pipeline":
                _pipeline_row(row, art, recs, md, dec, work, log)
                hrs[name] = row.pop("_hr")
            else:
                rt = R.make_runtime(name, art, work)
                if name.startswith("mcu_"):
                    rt.timeout_s = cfg.timeout
                xs = codes if not (name.startswith("mcu_") and cfg.mcu_windows) else codes[:cfg.mcu_windows]
                y, yq = run_window_runtime(rt, xs)
                row.update(rt.info())
                row["precision"] = "int8" if yq is not None else "float32"
                if len(y) < N:                                   # a subset on the MCU: pad with the rest undecoded
                    row["windows"] = int(len(y))
                integer = yq is not None
                if integer:
                    s, zp = art.output_qparams
                    if zp != 0:
                        raise SqtoolError(f"{name}: output zero point {zp} (the decoder expects 0)")
                full = np.zeros((N, y.shape[1]), y.dtype)
                full[:len(y)] = y
                o = decode(full, recs, dec, s if integer else None)
                hr = o["hr"]
                hr[len(y):] = np.nan
                row["_unc"] = (o["lo"], o["hi"], o["conf"])
                logits[name] = (y, integer)
                hrs[name] = hr
                am = np.full(N, np.nan)
                am[:len(y)] = bins[np.argmax(y, axis=1)]
                am[~valid] = np.nan
                row["argmax"] = hr_scores(am, truth)
                if rt.latencies_s:
                    ms = np.asarray(rt.latencies_s) * 1e3
                    row.update(latency_ms_mean=float(ms.mean()), latency_ms_p50=float(np.percentile(ms, 50)),
                               latency_ms_p99=float(np.percentile(ms, 99)))
                if name in ("c_host", "c_host_single") and cfg.callgrind_windows:
                    try:
                        n_cg = min(cfg.callgrind_windows, N)
                        v = rt.callgrind(codes[:n_cg].reshape(n_cg, -1))
                        if v is not None:
                            row["instructions_per_inference"] = v
                            row["instructions_tool"] = f"valgrind callgrind (x86-64, {art.c_prefix}_model_run only)"
                    except SqtoolError as e:
                        row["callgrind_error"] = str(e)
                if name.startswith("mcu_"):
                    row["instructions_tool"] = f"QEMU TCG plugin insn_count ({art.c_prefix}_model_run, network only)"
            hr = hrs[name]
            row["metrics"] = hr_scores(hr, truth, subj_key, rec_key, block)
            if "_unc" in row:                                  # the decoder's interval and confidence vs the truth
                uncs[name] = row.pop("_unc")
                row["uncertainty"] = uncertainty_scores(hr, *uncs[name], truth, span=calib_span)
            row["gt10_pct"] = row["metrics"]["gt10_pct"]                 # top level, for --floor gt10
            row["per_subject"] = grouped(hr, truth, subj_key)
            row["per_record"] = grouped(hr, truth, rec_key)
            if (by := condition_scores(hr, truth, cond_key, subj_key)) is not None:
                row["per_condition"] = by
            for k in ("flash_bytes", "ram_bytes"):
                if row.get(k) is not None:
                    row[k.replace("_bytes", "_kb")] = row[k] / 1024
        except TamperedArtifact:
            raise                                             # a changed file stops the bench: never a skipped row
        except SqtoolError as e:
            row = {"runtime": name, "status": "error" if name in explicit else "skipped", "error": str(e)}
            hrs.pop(name, None)
            logits.pop(name, None)
        row["seconds"] = time.perf_counter() - t_start
        rows.append(row)
        log(_progress(row))
    if scratch is not None:
        scratch.cleanup()                                 # the C pipeline's device samples

    # fidelity between runtimes
    present = set(logits)
    for row in rows:
        name = row["runtime"]
        if row["status"] != "ok" or name not in logits:
            continue
        ref = hr_reference(name, present)                 # logits and decoded HR against the same runtime
        if ref is None:
            continue
        (a, ia), (b, _) = logits[name], logits[ref]
        row["fidelity"] = {"ref": ref, **fidelity(a, b, hrs[name], hrs[ref], ia)}
        if ia:
            row["exact_pct"], row["max_lsb_diff"] = row["fidelity"]["exact_pct"], row["fidelity"]["max_lsb"]
            row["exact_ref"] = ref
    _pipeline_vs_single(rows, hrs)
    gap = float_gap(rows, art, work, codes, recs, dec, truth, subj_key)

    # the classic baseline on the same windows, run as each recording was read (`classic`)
    t = time.perf_counter()
    bl_sensors = [r.baseline[0] for r in recs]
    try:
        bl = [_raised(r.baseline[1]) for r in recs]
        bl_hr, bl_raw = np.concatenate([o["hr"] for o in bl]), np.concatenate([o["raw"] for o in bl])
        base = {"runtime": "baseline", "status": "ok", "precision": "float64",
                "method": "spectral + acc subtraction + peak tracking (TROIKA-like), tracked",
                "ppg_sensors": sensors_text(bl_sensors), "notch_bpm": notch, "setting": bl_setting,
                "metrics": hr_scores(bl_hr, truth, subj_key, rec_key, block),
                "metrics_untracked": hr_scores(bl_raw, truth),
                "per_subject": grouped(bl_hr, truth, subj_key), "per_record": grouped(bl_hr, truth, rec_key),
                **({"per_condition": by} if (by := condition_scores(bl_hr, truth, cond_key, subj_key)) else {}),
                "seconds": bl_s[0] + time.perf_counter() - t}
        hrs["baseline"] = bl_hr
    except SqtoolError as e:
        base = {"runtime": "baseline", "status": "skipped", "error": str(e)}

    model_file = "model_int8.tflite" if art.has("model_int8.tflite") else "metadata.json"
    emission = decoder_cfg(dec).emission_text
    notes = [dec_note + f" (temperature {float(dec.get('temperature', 1.0)):g}; it tracks {emission}); int8 logits decoded with "
             "decode_int at the int graph's output scale, float logits with decode_float.",
             f"windows with more than half their inputs flagged (flagged_q15 > {MAX_FLAGGED_Q15}) or every PPG "
             "sensor quiet (stuck, railed, zero) are not scored (decoder predicts only), in every runtime as in the "
             "C pipeline.",
             "argmax: the bin of the largest logit per window, undecoded, for reference.",
             "exact %: windows whose int8 logits (every bin) equal the reference's (double rounding vs TFLite Micro, "
             "single rounding vs Brevitas). onnxruntime's and LiteRT's default (XNNPACK) kernels round once, so each "
             "layer may differ from TFLite Micro by 1 LSB, 2-3 at the logits after the layers; one such bin of the "
             "window's many makes it inexact, so they match TFLite Micro on few windows and single rounding (c_host_single "
             "vs Brevitas) on nearly all; max dHR says what it moves. c_pipeline: every result field equal to the "
             "Python integer reference, per hop.",
             "MAE CI: 95 %, by the method the line under each table names (3 or more subjects: the t-interval over "
             "the subjects); loa95: bias +- 1.96 SD (Bland-Altman limits of agreement); MAPE %: the mean of "
             "|HR - truth| / truth x 100 over the scored windows (% of the reference heart rate).",
             f"in interval %: windows whose truth lies in the decoder's interval (lo..hi +- 0.5 BPM; nominal mass "
             f"{float(dec.get('interval', 0.9)):g}, calibrated for 90 % on the training subjects); top-80% conf MAE %: "
             "the MAE of the 80 % most confident windows (the decoder's conf output) relative to all windows' "
             "(-30 = 30 % lower)" + ("" if calib_span is None else
                                     f"; stated err: the expected error the calibrated conf states, (1 - conf) x "
                                     f"{calib_span:g} BPM, on average (beside MAE: calibration in the large)") + ".",
             "instructions are executed instructions (QEMU plugin / callgrind), never cycles.",
             f"{bl_setting}.",
             f"baseline: PPG sensors read: {sensors_text(bl_sensors)}, "
             + ("the sensors chosen with its notch that the recording has" if chosen else
                "the sensors the model's front end reads")
             + " (two or more: the mean of their spectra, each scaled to its max, as the front end averages them)."]
    if not labelled:
        notes.insert(0, NOT_MEASURED + "; cost and fidelity only.")
    if skipped:
        notes.append(left_out_note(skipped))
    streams = ((r.record, r.channels) for r in recs)
    for resampled in (resampled_note(streams, has_acc_resampler(md), acc_resampler_fs(md)), whole_hz_note([r.record for r in recs])):
        if resampled:                               # a slower accelerometer; a clock off its whole-Hz rate
            notes.append(resampled)
            log(resampled)
    from sqtool.firmware_bench.provenance import model_provenance, provenance_warnings
    scored = {r.subject for r in recs if np.isfinite(r.truth).any()}
    seen, warns = provenance_warnings(art, scored, {r.subject for r in recs})     # accuracy floors: on the others
    prov = {**model_provenance(art, model_file), "tools": mcu.tool_versions(), "data": data, "records": len(recs),
            "windows": N, "signal_hours": signal_s / 3600, "skipped_records": skipped,
            "frontend": f"{', '.join(sorted({f'{r.fs_in:g}' for r in recs}))} Hz int16 (robust gains) -> "
                        f"{float(md['fs']):g} Hz, {float(md['window_s']):g} s / {float(md['hop_s']):g} s windows, "
                        f"{len(bins)} bins {bins[0]:g}..{bins[-1]:g} BPM, Python integer reference",
            "frontend_seconds": fe_s, "frontend_ms_per_window": 1e3 * fe_s / max(N, 1),
            "max_seconds": getattr(cfg, "max_seconds", 0.0) or None}
    res = {"kind": "spectral", "window_s": float(md["window_s"]), "provenance": prov, "labelled": labelled,
           "accuracy": "measured" if labelled else NOT_MEASURED,
           "runtimes": rows, "baseline": base, "floor": check_floors(rows, floors, seen, cfg.floor_on_seen),
           "run_dir": str(run_dir), "decoder": dec, "notes": notes,
           "records": [{"record_id": r.record_id, "subject": r.subject, "fs_in": r.fs_in, "windows": len(r.t0),
                        "seconds": r.seconds, "truth_windows": int(np.isfinite(r.truth).sum()),
                        "unscored_windows": int((~r.valid).sum())} for r in recs]}
    res["primary"] = primary_runtime(rows, PRIMARY_ORDER)
    res["seen_in_training"] = seen
    if gap is not None:
        res["float_gap"] = gap
        warns = warns + [gap["warning"]] if "warning" in gap else warns
    if seen and scored - set(seen):          # a headline over both would mix them: the held-out subjects apart
        held = ~np.isin(subj_key, list(seen))
        truth_held = np.where(held, truth, np.nan)
        for r in rows + [base]:
            if r["status"] == "ok" and r["runtime"] in hrs:
                r["held_out"] = held_out_scores(hrs[r["runtime"]], truth_held, subj_key, rec_key, block,
                                                uncs.get(r["runtime"]), calib_span, cond_key)
        if base.get("held_out"):
            for r in rows:
                if r.get("held_out"):
                    r["held_out"]["better_than_baseline"] = _wins(r["held_out"]["per_subject"],
                                                                  base["held_out"]["per_subject"])
    for warn in reversed(warns):
        notes.insert(0, warn)
        (warn_line or log)(warn)
    write_spectral_report(run_dir, res, recs, hrs)
    finish_bench(res, {"runtimes": {r["runtime"]: {k: r.get(k) for k in ("status", "metrics", "uncertainty",
                                                                          "exact_pct", "instructions_per_inference",
                                                                          "flash_bytes", "ram_bytes",
                                                                          "latency_ms_p50")} for r in rows},
                       "baseline": base.get("metrics"), "labelled": labelled, "floor": res["floor"]})
    return res


def _raised(outcome):
    """A recording's baseline_hr result, or the SqtoolError it raised, raised here."""
    if isinstance(outcome, SqtoolError):
        raise outcome
    return outcome


def _pipeline_row(row: dict, art, recs: list[SpecRec], md: dict, dec: dict, work: Path, log=print) -> None:
    """c_pipeline: one push per whole recording, compared with the Python integer reference (PipelineRef) when
    the student_int8 checkpoint it is built from is there; without it (an export folder copied without its
    source run) the row keeps its accuracy and latency, and one line says the comparison is left out and why."""
    from sqtool.export.pipeline import PipelineRef, pulse_rule
    from sqtool.firmware_bench.runtimes import off_rate
    c = pipeline_host(art, work / "c_pipeline")
    if off := off_rate([(f"{r.record.dataset}/{r.record_id}", r.fs_in) for r in recs], c.fs_in, "c_pipeline: ",
                       "the C pipeline was exported for"):
        raise SqtoolError(off)
    why = "the export's manifest.json records no student_int8 checkpoint"
    try:
        p = art.checkpoint("student_int8")               # a changed one: TamperedArtifact, stops the bench
    except MissingArtifact as e:                         # listed but not there: a copied export folder
        p, why = None, str(e)
    ref_graph = _int_graph(p) if p is not None else None
    ref_dec = dict(dec)                               # its temperature folds into the logit scale, as in the C
    hr, exact, n_total, lat, fields_bad = [], 0, 0, [], {}
    unc = {"lo": [], "hi": [], "conf": []}
    refs = {}                                         # (fs_in, n_ppg) -> its PipelineRef: tables designed once
    for r in recs:
        x16, gap = r.samples()                        # read back from the scratch file prepare_all wrote
        res, dt = c.run(x16, gap, r.fs_in, f"{r.record.dataset}/{r.record_id}", r.n_ppg)
        if len(res["index"]) != len(r.t0):
            raise SqtoolError(f"c_pipeline: {r.record_id}: {len(res['index'])} results for {len(r.t0)} windows")
        lat.append(dt)
        hr.append(res["hr_mbpm"] / 1000.0)
        for k, v in zip(unc, (res["lo_mbpm"] / 1000.0, res["hi_mbpm"] / 1000.0, res["conf_q15"] / 32768.0)):
            unc[k].append(np.asarray(v, float))
        if p is not None:
            if (r.fs_in, r.n_ppg) not in refs:
                refs[r.fs_in, r.n_ppg] = PipelineRef(md["model_cfg"], ref_graph, decoder=ref_dec, fs_in=r.fs_in,
                                                     n_ppg=r.n_ppg, pulse_check=pulse_rule(md))   # the rule its C has
            want = refs[r.fs_in, r.n_ppg].run(x16, gap)                 # from a fresh state, as the C's push
            same = np.ones(len(r.t0), bool)
            for k, v in want.items():
                eq = np.asarray(res[k]).astype(np.int64) == np.asarray(v).astype(np.int64)
                if not eq.all():
                    fields_bad[k] = fields_bad.get(k, 0) + int((~eq).sum())
                same &= eq
            exact += int(same.sum())
        n_total += len(r.t0)
    row.update(precision="int8 + fixed point", file=c.file, size_bytes=c.size_bytes, state_bytes=c.state_bytes,
               device_fs=c.fs_in, calls=len(recs), latency_ms_mean=1e3 * sum(lat) / n_total,
               latency_note=f"one {c.prefix}_pipeline_push per whole recording; per window = call time / windows "
                            "(front end + network + decoder)")
    if p is not None:
        row["exact_hops_pct"] = 100.0 * exact / n_total
        row["exact_pct"] = row["exact_hops_pct"]
        row["exact_ref"] = "PipelineRef (Python integer reference)"
        if fields_bad:
            row["mismatched_fields"] = fields_bad
    else:
        row["exact_note"] = f"{why}: the Python integer reference cannot be built"
        log(f"bench: c_pipeline: exact hops vs the Python integer reference left out: {why} (its accuracy and "
            "latency are measured)")
    row["_hr"] = np.concatenate(hr)
    row["_unc"] = tuple(np.concatenate(unc[k]) for k in ("lo", "hi", "conf"))


def _int_graph(path):
    from sqtool.export.intgraph import extract_int_graph
    from sqtool.models import load_model
    return extract_int_graph(load_model(path, expect_kind="student_int8"))


def _pipeline_vs_single(rows: list[dict], hrs: dict) -> None:
    """The pipeline's HR against c_host_single + decode_int (same single rounding, same decoder)."""
    pr = next((r for r in rows if r["runtime"] == "c_pipeline" and r["status"] == "ok"), None)
    for other in ("c_host_single", "brevitas_int8"):
        if pr is not None and other in hrs and "c_pipeline" in hrs:
            a, b = hrs["c_pipeline"], hrs[other]
            pr["hr_vs_" + other] = {"hr_equal_pct": float(100 * (a == b).mean()),
                                    "hr_diff_max": float(np.nanmax(np.abs(a - b)))}
            return


PRIMARY_ORDER = ("c_pipeline", "mcu_m4", "c_host_single", "c_host", "tflm_int8", "litert_int8", "brevitas_int8",
                 "onnx_int8", "torch_student")                       # the runtime the spectral bench reports first


def _progress(row: dict) -> str:
    if row["status"] != "ok":
        return f"bench: {row['runtime']}: {row['status']}: {row.get('error')}"
    m = row.get("metrics") or {}
    mae = (f"MAE {m['mae']:.2f} BPM on {m['n']} windows with truth" if m.get("mae") is not None
           else "accuracy not measured")
    ex = f", exact {row['exact_pct']:.1f} %" if row.get("exact_pct") is not None else ""
    lat = f", {row['latency_ms_mean']:.3f} ms/window" if row.get("latency_ms_mean") is not None else ""
    return f"bench: {row['runtime']}: ok, {row['windows']} windows, {mae}{ex}{lat} ({row['seconds']:.1f} s)"


# ----------------------------------------------------------------------------- report

def tables(res: dict) -> str:
    p = res["provenance"]
    from sqtool.firmware_bench.provenance import model_id_text
    out = [f"sqtool {p['sqtool_version']} (git {p['git_sha']})  model {p['model']} {model_id_text(p)}"
           f"  quant {p['quant_scheme']}",
           f"data {p['data']}: {p['records']} recordings, {p['windows']} windows, {p['signal_hours']:.2f} h; "
           f"front end {p['frontend']}"]
    if not res["labelled"]:
        out.append(f"NOTE: {NOT_MEASURED}")
    seen = set(res.get("seen_in_training") or ())
    out += [n for n in res["notes"] if n.startswith("WARNING")]       # every one, here on stdout
    out.append("")
    rows = []
    for r in res["runtimes"] + [res["baseline"]]:
        m, a, fd = r.get("metrics") or {}, r.get("argmax") or {}, r.get("fidelity") or {}
        ci = m.get("mae_ci95")
        ex = _f(r.get("exact_pct"), "{:.1f}")
        u = r.get("uncertainty") or {}
        cov, gate, stated = u.get("interval_coverage"), u.get("gating_reduction"), u.get("expected_error_stated")
        scored = round((m.get("coverage") or 0) * m.get("labelled", 0))         # windows with an estimate
        name = r["runtime"] + (f" ({scored} of {m['labelled']} windows)" if m and not covers_all(r) else "")
        rows.append([name, r["status"], r.get("precision", ""), _f(m.get("mae")),
                     "-" if not ci else f"{ci[0]:.2f}-{ci[1]:.2f}", _f(m.get("mape")), _f(m.get("rmse")),
                     _f(m.get("bias")),
                     _f(m.get("gt10_pct"), "{:.1f}"), _f(None if cov is None else 100 * cov, "{:.1f}"),
                     _f(None if gate is None else -100 * gate, "{:+.0f}"), _f(stated), _f(a.get("mae")),
                     ex + (f" vs {r['exact_ref'].split(' ')[0]}" if r.get("exact_ref") else ""),
                     _f(r.get("max_lsb_diff"), "{:d}"), _f(fd.get("hr_diff_max"), "{:.3f}"),
                     _f(r.get("latency_ms_mean"), "{:.3f}")])
    out += _table(["runtime", "status", "prec", "MAE BPM", "MAE 95% CI", "MAPE %", "RMSE", "bias", ">10 BPM %",
                   "in interval %", "top-80% conf MAE %", "stated err", "argmax MAE", "exact %", "max LSB", "max dHR",
                   "ms/window"], rows)
    out += _ci_method([(r["runtime"], r.get("metrics")) for r in res["runtimes"] + [res["baseline"]]])
    held = [r for r in res["runtimes"] + [res["baseline"]] if r.get("held_out")]
    if held:
        h0 = held[0]["held_out"]
        out += ["", f"held-out subjects only ({h0['subjects']} subjects the model was not trained on, "
                    f"{h0['metrics']['n']} windows: the figures to ship on; the table above also scores "
                    f"{len(seen)} seen in training)"]
        hrows = []
        for r in held:
            h, m = r["held_out"], r["held_out"]["metrics"]
            u, ci, w = h.get("uncertainty") or {}, m.get("mae_ci95"), h.get("better_than_baseline")
            cov, gate = u.get("interval_coverage"), u.get("gating_reduction")
            hrows.append([r["runtime"], _f(m.get("mae")), _f(h.get("mae_mean_of_subjects")),
                          "-" if not ci else f"{ci[0]:.2f}-{ci[1]:.2f}", _f(m.get("bias")),
                          _f(None if cov is None else 100 * cov, "{:.1f}"),
                          _f(None if gate is None else -100 * gate, "{:+.0f}"), _f(u.get("expected_error_stated")),
                          "-" if not w else f"{w[0]} of {w[1]}"])
        out += _table(["runtime", "MAE pooled", "MAE mean of subjects", "MAE 95% CI", "bias", "in interval %",
                       "top-80% conf MAE %", "stated err", "subjects better than baseline"], hrows)
        out += _ci_method([(r["runtime"], r["held_out"]["metrics"]) for r in held])
    errs = [r for r in res["runtimes"] + [res["baseline"]] if r["status"] != "ok"]
    for r in errs:
        out.append(f"  {r['runtime']}: {r['status']}: {r.get('error')}")
    fw = [r for r in res["runtimes"] if r["status"] == "ok" and (r["runtime"].startswith("mcu_")
                                                               or r.get("instructions_per_inference"))]
    if fw:
        out += ["", "firmware (executed instructions, not cycles)"]
        out += _table(["runtime", "cpu", "insns / window", "flash KB", "RAM KB", "stack B"],
                      [[r["runtime"], r.get("cpu", "host x86-64"), _f(r.get("instructions_per_inference"), "{:,.0f}"),
                        _f(r.get("flash_kb"), "{:.1f}"), _f(r.get("ram_kb"), "{:.1f}"),
                        _f(r.get("stack_high_water_bytes"), "{:.0f}")] for r in fw])
    if res["labelled"]:
        primary = [r for r in res["runtimes"] if r["runtime"] == res.get("primary")] + [res["baseline"]]
        out += condition_lines(primary, seen=len(seen))
        if seen:                                      # the figures to ship on, by condition
            out += condition_lines(primary, held_out=True)
        cols = [r for r in res["runtimes"] + [res["baseline"]] if r["status"] == "ok" and r.get("per_subject")]
        subs = list((cols[0]["per_subject"] if cols else {}).keys())
        if subs:
            out += ["", "MAE per subject (BPM; windows with truth)"]
            out += _table(["subject", "windows"] + [r["runtime"] for r in cols],
                          [[s + (" (seen in training)" if s in seen else ""), str(cols[0]["per_subject"][s]["n"])]
                           + [_f(r["per_subject"][s]["mae"]) for r in cols] for s in subs])
    if res.get("floor"):
        out += ["", floors_line(res["floor"])]
    return "\n".join(out)


def _ci_method(rows: list[tuple[str, dict | None]]) -> list[str]:
    """The line under a table naming how its MAE 95% CI column was computed (each table its own: the held-out
    table's few subjects may give batch means where the table over every subject gives a t-interval over them);
    per runtime where their methods differ."""
    hows = {name: m["mae_ci95_method"] for name, m in rows if (m or {}).get("mae_ci95_method")}
    if not hows:
        return []
    if len(set(hows.values())) == 1:
        return [f"MAE 95% CI: {next(iter(hows.values()))}."]
    return ["MAE 95% CI: " + "; ".join(f"{name}: {how}" for name, how in hows.items()) + "."]


def write_spectral_report(run_dir, res: dict, recs: list[SpecRec], hrs: dict) -> None:
    """bench.json (everything), bench.md (tables, notes, a plot of HR over time per recording: the first
    `report.PANELS`)."""
    from sqtool.core import atomic_savefig, atomic_write_text, write_metrics
    run_dir = Path(run_dir)
    plots = []
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        show = [k for k in (res.get("primary"), "baseline") if k and k in hrs]
        if show and recs:
            n = panels_note(res, len(recs))                             # the first PANELS recordings
            ncol = min(3, n)
            nrow = -(-n // ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 2.6 * nrow), squeeze=False)
            a = 0
            for i, r in enumerate(recs[:n]):
                ax, b = axes[i // ncol][i % ncol], a + len(r.t0)
                tt = r.t0 + float(res["window_s"])                      # when the window's result exists
                if np.isfinite(r.truth).any():
                    ax.plot(tt, r.truth, "k-", lw=1.2, label="truth")
                for k in show:
                    ax.plot(tt, hrs[k][a:b], lw=0.9, label=k)
                ax.set_title(r.record_id, fontsize=9)
                ax.set_xlabel("s")
                ax.set_ylabel("BPM")
                a = b
            for j in range(n, nrow * ncol):
                axes[j // ncol][j % ncol].axis("off")
            axes[0][0].legend(fontsize=7)
            fig.tight_layout()
            atomic_savefig(fig, run_dir / "hr_over_time.png", dpi=100)
            plt.close(fig)
            plots.append("hr_over_time.png")
    except ImportError:
        pass
    res["plots"] = plots
    write_metrics(run_dir, res, name="bench.json")
    md = ["# sqtool bench (spectral model)", ""]
    if not res["labelled"]:
        md += [f"**{NOT_MEASURED}.** Cost and fidelity only.", ""]
    md += [*as_markdown(tables(res)), ""] + [f"![{p}]({p})" for p in plots]
    md += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    atomic_write_text(run_dir / "bench.md", "\n".join(md) + "\n")
    if recs:                                          # one row per window: record, subject, t0, condition, HRs
        write_windows_csv(run_dir, {
            "record": np.concatenate([[r.record_id] * len(r.t0) for r in recs]),
            "subject": np.concatenate([[r.subject] * len(r.t0) for r in recs]),
            "t0_s": np.concatenate([r.t0 for r in recs]).astype(float),
            "condition": np.concatenate([window_conditions(r.record, r.t0, float(res["window_s"])) for r in recs]),
            "truth": np.concatenate([r.truth for r in recs]).astype(float),
            "scored": np.concatenate([r.valid for r in recs]).astype(int), **hrs})
