"""sqtool from Python: heart rate (or any other task's outputs) from arrays through an export, the numbers
`sqtool predict` writes.

    import sqtool
    model = sqtool.load_model("runs/export/<run>")     # a `sqtool export` folder of a spectral heart-rate model
    res = model.predict(ppg, acc, fs=125.0)             # ppg (N,) or (N, S); acc (N, 3) in g; fs in Hz
    res = model.predict(ppg, acc25, fs=50.0, acc_fs=25.0)   # an accelerometer at its own rate: resampled to fs
    res.t_end_s, res.hr_bpm, res.lo_bpm, res.hi_bpm, res.confidence, res.flagged, res.no_pulse   # (W,) float64
    res = model.predict(ppg, acc, fs=125.0, gains=None)     # the device's fixed gains, not the recording's robust ones

    with model.stream(fs=125.0) as s:                       # a live device (HrStream): its state, not its history
        for ppg_chunk, acc_chunk in chunks:                 # any sizes; NaN = gaps
            res = s.push(ppg_chunk, acc_chunk)              # the windows this chunk completed (maybe none)

`HrModel.predict` runs predict's own path for one recording (`firmware_bench.predict`: the Record checks,
`prepare_spectral`, `run_spectral`): robust int16 device samples per call (as per recording file), the front end,
the network on the runtime, the decoder; so it gives the heart rate per window that `sqtool predict` writes into
its CSV for the same samples. It writes no run folder, takes no lock and leaves torch's thread count and the
warning filters as it found them; the runtimes it builds (the C pipeline's host library, a network's C) live in a
private temporary folder, removed with the model (or `close()`).

`HrModel.stream` is the device itself: the export's C pipeline state, or the Python integer front end, the int8
network and the fixed-point decoder stepped window by window; whatever the chunks, its windows are
`predict(..., gains=G)`'s on the whole recording, to the bit.

Any other export (a time-domain model of any task: af, rr, bp, quality, hr, a custom label; rr_spec, af_beats) is
a TaskModel, run on predict's time-domain path (`prepare_time_domain`, `run_time_domain`: the model's stream, the
network on the runtime, built once per model):

    model = sqtool.load_model("runs/export/<af run>")
    res = model.predict(ppg, fs=125.0)                      # acc too where the model reads it (model.needs_acc)
    res.t_end_s, res.p_af, res.flagged                      # predict's CSV columns (res.columns), (W,) float64

    with model.stream(fs=125.0) as s:                       # a live device (TaskStream): the window, not the history
        for ppg_chunk in chunks:                            # any sizes; NaN = gaps; acc at fs where the model reads it
            res = s.push(ppg_chunk)                         # the rows of the windows this chunk completed
        res = s.finish()                                    # the end: the last ones (the band-pass's look-ahead)

`TaskModel.stream` is predict's own window stream (`firmware_bench.stream.WindowStream`) and columns
(`predict.TdColumns`): whatever the chunks, its rows are `predict`'s on the whole recording, to the bit.
"""
from __future__ import annotations

import numbers
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from sqtool.core import SqtoolError, check_fs
from sqtool.core.io import ScratchDir


@dataclass(frozen=True)
class HrResult:
    """Heart rate per window of one call: (W,) float64 arrays, window w ending at t_end_s[w] (s from the first
    sample: when the device reports it)."""
    t_end_s: np.ndarray            # (W,) s, end of each window
    hr_bpm: np.ndarray             # (W,) heart rate, BPM
    lo_bpm: np.ndarray             # (W,) lower end of the decoder's central interval (calibrated mass), BPM
    hi_bpm: np.ndarray             # (W,) upper end, BPM
    confidence: np.ndarray         # (W,) 0..1, the decoder's confidence (predict's `confidence` column)
    flagged: np.ndarray            # (W,) 1.0 = not scored (over half the window's samples were NaN gaps, or its
                                   #      PPG quiet: a flat line): hr_bpm, lo/hi, confidence are the decoder's
                                   #      prediction only, no reading (held, then drifting to the grid's middle):
                                   #      leave these windows out of any median; else 0.0
    no_pulse: np.ndarray           # (W,) 1.0 = no pulse: the PPG's spectrum as flat as noise over the last 32
                                   #      windows (off the wrist, no perfusion; predict's no_pulse column): the
                                   #      window may still be scored, leave it out too; 0.0 in the first 31 windows
    model_sha256: str | None       # the model's content id (export metadata; None for an export older than it)
    runtime: str                   # the runtime that ran: c_pipeline, c_host_single, litert_int8, ...

    def __len__(self) -> int:
        return len(self.hr_bpm)


def _frozen(v) -> np.ndarray:
    """A result's column: a read-only float64 copy."""
    a = np.array(v, dtype=np.float64)
    a.setflags(write=False)
    return a


def _rate(name: str, fs, where: str = "HrModel.predict") -> float:
    """A sampling rate argument in Hz, or one line naming it."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real):     # None, text, arrays too
        raise SqtoolError(f"{where}: {name} must be the sampling rate in Hz (a number), got {fs!r}")
    return check_fs(fs, f"{where}: {name}")


def _samples(name: str, x, where: str = "HrModel.predict", empty: bool = False) -> np.ndarray:
    """x as a real-valued array, or one line naming it; empty: a zero-length one allowed (a stream's chunk)."""
    if x is None:
        raise SqtoolError(f"{where}: {name} is required (samples as a numpy array)")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):                                # a ragged list: numpy's own many-line story
        raise SqtoolError(f"{where}: {name} is not an array of samples (rows of unequal length?), got a "
                          f"{type(x).__name__}") from None
    if a.dtype.kind not in "iuf":
        raise SqtoolError(f"{where}: {name} must hold real numbers, got {a.dtype} samples")
    if a.size == 0 and not empty:
        raise SqtoolError(f"{where}: {name} is empty (shape {a.shape})")
    return a


def _record(ppg, acc, fs, acc_fs, sensors: list[str], needs_acc: bool, where: str, every_sensor: bool = False):
    """The arrays of one `predict` call as the Record `sqtool predict` reads from a recording file: ppg (N,) or
    (N, S), column i the model's sensors[i] (every_sensor: all of them, a time-domain model's channels; else at
    most as many), acc (N, 3) x, y, z at fs, or (M, 3) at acc_fs; or one SqtoolError line starting with `where`."""
    from sqtool.data.record import Record
    if isinstance(acc, numbers.Real) and not isinstance(acc, bool):   # predict(ppg, 125.0): the rate in acc's place
        raise SqtoolError(f"{where}: acc is the number {acc!r}, not samples: give the rate by name, "
                          f"predict(ppg, fs={acc!r}) (acc, the second argument, is the accelerometer's (N, 3) samples)")
    fs = _rate("fs", fs, where)
    acc_fs = fs if acc_fs is None else _rate("acc_fs", acc_fs, where)
    ppg = _samples("ppg", ppg, where)
    if ppg.ndim == 1:
        ppg = ppg[:, None]
    if ppg.ndim != 2 or ppg.shape[1] > ppg.shape[0]:
        raise SqtoolError(f"{where}: ppg must be (N,) or (N, S) for S sensors, got shape {ppg.shape}"
                          + (" (channels-first? pass ppg.T)" if ppg.ndim == 2 else ""))
    n, k = ppg.shape
    if k > len(sensors) or (every_sensor and k < len(sensors)):
        raise SqtoolError(f"{where}: ppg has {k} sensor column{'s' * (k != 1)}, the model reads {len(sensors)} "
                          f"({', '.join(sensors)})" + (f": pass ppg[:, :{len(sensors)}]" if k > len(sensors) else
                                                       ": one column each, in that order"))
    sig = {sensors[i]: ppg[:, i] for i in range(k)}
    if acc is None:
        if needs_acc:
            raise SqtoolError(f"{where}: this model reads the accelerometer: pass acc, (N, 3) x, y, z in g")
    else:
        acc = _samples("acc", acc, where)
        m = int(round(n * acc_fs / fs))                            # acc's rows over the PPG's seconds
        if acc.ndim != 2 or acc.shape[1] != 3 or (acc_fs == fs and acc.shape != (n, 3)):
            hint = (" (channels-first? pass acc.T)" if acc.shape == (3, m) else
                    f" (ppg has {n} samples: give both the same length, or acc's own rate as acc_fs)"
                    if acc.ndim == 2 and acc.shape[1] == 3 else "")
            raise SqtoolError(f"{where}: acc must be (N, 3) = ({m}, 3), x, y, z in g, got shape {acc.shape}{hint}")
        sig.update({f"acc_{a}": acc[:, j] for j, a in enumerate("xyz")})
    return Record("arrays", "arrays", "input", sig, {c: acc_fs if c.startswith("acc_") else fs for c in sig})


def _chunk_arrays(ppg, acc, where: str, sensors: list[str], needs_acc: bool, fs: float, every_sensor: bool = False,
                  acc_own_rate: bool = False, acc_unit: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """A stream's chunk (`HrStream.push`, `TaskStream.push`) as (ppg (n, k), acc (n, 3), or (m, 3) checked only as
    samples where `acc_own_rate`; None where the model reads none, a given one checked still), or one SqtoolError
    line starting with `where`: ppg (n,) or (n, k), its columns the model's `sensors` (every_sensor: all of them;
    else at most as many), acc one row per ppg sample at `fs` (`acc_unit`: what the line says its unit is)."""
    n_s = len(sensors)
    ppg = _samples("ppg", ppg, where, empty=True)
    ppg = ppg[:, None] if ppg.ndim == 1 else ppg
    if ppg.ndim != 2 or (ppg.shape[1] != n_s if every_sensor else ppg.shape[1] > n_s):
        what = f"the model's S = {n_s} sensor column(s)" if every_sensor else f"S <= {n_s} sensors"
        raise SqtoolError(f"{where}: ppg must be (n,) or (n, S) for {what} ({', '.join(sensors)}), got shape "
                          f"{ppg.shape}" + (" (channels-first? pass ppg.T)" if ppg.ndim == 2 and ppg.shape[0] <= n_s
                                            else ""))
    n = ppg.shape[0]
    if acc is None:
        if needs_acc:
            raise SqtoolError(f"{where}: this model reads the accelerometer: pass acc, ({n}, 3) x, y, z{acc_unit}")
        return ppg, None
    acc = _samples("acc", acc, where, empty=True)                   # checked where given, read where the model does
    if not acc_own_rate and acc.shape != (n, 3):
        hint = (" (channels-first? pass acc.T)" if acc.shape == (3, n) else
                f" (one row per ppg sample: the stream's acc is at fs, {fs:g} Hz)"
                if acc.ndim == 2 and acc.shape[1] == 3 else "")
        raise SqtoolError(f"{where}: acc must be ({n}, 3), x, y, z for the chunk's {n} ppg samples, got "
                          f"shape {acc.shape}{hint}")
    return ppg, acc if needs_acc else None


def _artifacts(export_dir):
    """An export folder's Artifacts (`runtimes.load_artifacts`: its manifest and metadata checked), or the Artifacts
    given (`load_model` has read them already)."""
    from sqtool.firmware_bench import runtimes as R
    return export_dir if isinstance(export_dir, R.Artifacts) else R.load_artifacts(export_dir)


def _spectral_hr(art) -> bool:
    """Whether an export is a spectral heart-rate model (an HrModel's; any other is a TaskModel's)."""
    from sqtool.firmware_bench.runtimes import is_spectral
    return is_spectral(art.metadata) and art.metadata.get("task", "hr") == "hr"


class _Built:
    """A loaded export's runtimes, built on first use into a private temporary folder (`_runners`, `_tmp`). One
    runtime runs one call at a time (the C network's and pipeline's buffers are the library's own): `_lock` holds
    every predict and push of the model, its streams' too, so threads sharing a model wait for each other instead
    of reading each other's windows (4 threads on one C pipeline read up to 19 BPM off). Pickled (multiprocessing),
    a model is its export folder and runtime, loaded again where it is unpickled."""
    _runners: dict
    _tmp: ScratchDir | None
    _lock: threading.RLock
    export_dir: Path
    _cfg: object

    def __reduce__(self):
        return type(self), (str(self.export_dir), self._cfg.runtime)

    def _work(self) -> Path:
        """The folder the runtimes are built into, made on first use (a ScratchDir: gone with the model)."""
        if self._tmp is None:
            self._tmp = ScratchDir(f"sqtool-{type(self).__name__.lower()}-")
        return Path(self._tmp.name)

    @contextmanager
    def _running(self) -> Iterator[None]:
        """One call on the model's runtimes (a predict, a stream's push): `_lock` held; after it, the latency of each
        window they ran let go (`runtimes.Runtime.forget_latencies`: kept for bench's report, read by no one here), so
        a server calling predict per request, or a stream pushed for a week, keeps its memory flat."""
        from sqtool.firmware_bench.runtimes import Runtime
        with self._lock:
            try:
                yield
            finally:
                for rt in self._runners.values():                   # the C pipeline (CPipelineHost) times nothing
                    if isinstance(rt, Runtime):
                        rt.forget_latencies()

    def close(self) -> None:
        """Remove the built runtimes' temporary folder now (else when the model is garbage-collected)."""
        self._runners.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class HrModel(_Built):
    """A spectral heart-rate export, loaded once; `predict` on arrays as many times as wanted. Use
    `sqtool.load_model`."""

    def __init__(self, export_dir, runtime: str = ""):
        from sqtool.data.hr_spectra import ppg_sensors, signal_channels
        from sqtool.firmware_bench import runtimes as R
        from sqtool.firmware_bench.predict import PredictConfig, spectral_runtime
        art = _artifacts(export_dir)
        md = art.metadata
        if not _spectral_hr(art):
            what = "spectral" if R.is_spectral(md) else "time-domain"
            raise SqtoolError(f"HrModel: {art.export_dir} is a {what} '{md.get('task')}' model; HrModel reads "
                              "spectral heart-rate exports only: sqtool.load_model loads this one (a TaskModel)")
        spectral_runtime(runtime, "sqtool.load_model: runtime")         # an unknown name: one line, before any build
        self.export_dir = Path(art.export_dir)
        self.model_sha256 = md.get("model_sha256")
        self.window_s = float(md["window_s"])
        self.sensors = ppg_sensors(md["model_cfg"])                     # PPG column i -> this channel
        self.needs_acc = any(c.startswith("acc_") for c in signal_channels(md["model_cfg"]["channels"][1:]))
        self._art, self._cfg = art, PredictConfig(model=str(self.export_dir), runtime=runtime, progress=False)
        self._runners: dict = {}                                        # runtime name -> built once
        self._tables: dict = {}                                         # input rate -> front-end tables, designed once
        self._tmp: ScratchDir | None = None
        self._lock = threading.RLock()                                  # one call at a time on the runtimes

    def __repr__(self) -> str:
        return (f"HrModel({str(self.export_dir)!r}, runtime={self._cfg.runtime or 'default'!r}, "
                f"ppg sensors {len(self.sensors)}, acc {'yes' if self.needs_acc else 'no'})")

    def predict(self, ppg, acc=None, fs=None, acc_fs=None, gains="robust") -> HrResult:
        """Heart rate per window of one recording: ppg (N,) or (N, S) for S PPG sensors (the model's, in its order:
        `self.sensors`), acc (N, 3) accelerometer x, y, z in g (None for a model without one), fs the PPG's
        sampling rate in Hz, acc_fs the accelerometer's when it differs (None: fs): acc is then (M, 3) over the same
        seconds (M = N acc_fs / fs), resampled to fs on the host as `sqtool predict` does (`record.channel_matrix`;
        an export with the kit's accelerometer resampler, `export --device-acc-fs`: that integer filter, as the device).
        NaN samples are gaps (held; a window over half gaps is flagged). Any unit works for the PPG (each call gets
        its own robust gain, as each recording does in `sqtool predict`). gains: "robust" (that), or the device's
        fixed gains, as a stream has them (`stream`): None = the export's defaults (PPG in SP Cup / TROIKA units,
        acc in g), a number or one per column (PPG sensors, then acc x, y, z) in counts per unit; 1 = the arrays
        are int16 device counts already."""
        from sqtool.firmware_bench import predict as P
        rec = _record(ppg, acc, fs, acc_fs, self.sensors, self.needs_acc, "HrModel.predict")
        # predict's own path, one recording, one call at a time; warning filters as found (the torch runtimes put
        # torch's thread count back themselves)
        with self._running(), warnings.catch_warnings():
            prep = P.prepare_spectral(self._cfg, self._art, [P.checked_record(rec)], self._tables, gains=gains)
            outs, _, _ = P.run_spectral(self._art, prep, self._work(), self._runners)
        r, o = prep["recs"][0], outs[0]
        return self._result(r.t0 + self.window_s, o, prep["runtime"])

    def _result(self, t_end_s, o: dict, runtime: str) -> HrResult:
        """An HrResult of windows ending at t_end_s with predict's columns `o` (run_spectral's, one recording's)."""
        col = _frozen
        return HrResult(t_end_s=col(t_end_s), hr_bpm=col(o["hr_bpm"]), lo_bpm=col(o["lo_bpm"]),
                        hi_bpm=col(o["hi_bpm"]), confidence=col(o["confidence"]), flagged=col(o["flagged"]),
                        no_pulse=col(o.get("no_pulse", np.zeros(len(o["flagged"])))),
                        model_sha256=self.model_sha256, runtime=runtime)

    def _runner(self, name: str):
        """The runtime `name`, built once into the model's temporary folder (`predict.built_runtime`)."""
        from sqtool.firmware_bench.predict import built_runtime
        with self._lock:
            return built_runtime(self._art, name, self._work(), self._runners)

    def stream(self, fs, acc_fs=None, gains=None) -> "HrStream":
        """A live stream of one device at fs Hz: `HrStream.push(ppg, acc)` chunk by chunk, each 8 s window's
        reading (every 2 s hop) as soon as its last sample arrived. gains are the device's, fixed for the stream:
        None = the export's defaults (PPG in SP Cup / TROIKA units, acc in g), a number or one per column (PPG
        sensors, then acc x, y, z) in counts per unit; 1 = the chunks are int16 device counts already. The same
        samples through `predict(..., gains=G)` give the same readings, to the bit, whatever the chunks."""
        return HrStream(self, fs, acc_fs, gains)


# the runtimes a stream runs (the export's C pipeline, or the Python integer front end and decoder around an int8
# network on the host); a float network (torch, onnx_float, litert_float) has no window-by-window decoder here, and
# the MCU's QEMU starts once a call
STREAMED = ("c_pipeline", "c_host_single", "c_host", "litert_int8", "onnx_int8", "tflm_int8")


class HrStream:
    """One device's live stream through an HrModel (`HrModel.stream`): `push` chunks of any size as they arrive,
    get the windows each completes. It holds the device's state only (the front end's ring buffers, the decoder's
    belief, the no-pulse run; or the C pipeline's state), never the history: memory stays flat over a week.

    Runtime: the model's (`load_model(..., runtime)`; default the export's C pipeline where it has one at this rate
    and gcc is there, else its int8 network on the host between the Python integer front end and decoder), one of
    STREAMED. A chunk is quantised with the stream's fixed gains (`hr_spectra.device_gains`), its NaN samples are
    gaps (held by the front end, flagged), then pushed: the front end (`data.frontend.FrontEnd.push`), the network
    on the windows it completed (`spectral.run_window_runtime`), the decoder step by step (`IntDecoder.step`,
    `export.pipeline.no_pulse_next`); or `CPipelineHost.push` into the stream's C state."""

    def __init__(self, model: HrModel, fs, acc_fs=None, gains=None):
        from sqtool.data.hr_spectra import device_gains
        from sqtool.firmware_bench import spectral as S
        from sqtool.firmware_bench.predict import choose_runtime
        where = "HrModel.stream"
        self.fs = _rate("fs", fs, where)
        self.acc_fs = self.fs if acc_fs is None else _rate("acc_fs", acc_fs, where)
        self.acc_rs = None                                              # the kit's accelerometer resampler, if any
        if self.acc_fs != self.fs and model.needs_acc:
            self.acc_rs = self._acc_resampler(model, where)
        if isinstance(gains, str):
            raise SqtoolError(f"{where}: gains {gains!r}: a stream's gains are the device's, fixed: None (the "
                              "export's defaults), a number or one per channel in counts per unit (1: int16 counts); "
                              "'robust' needs the whole recording (HrModel.predict)")
        md = model._art.metadata
        if gains is None or np.ndim(gains) == 0:                        # checked now; per channel: at the first push
            device_gains(gains, md["model_cfg"], self.fs, 1, 1)
        self.model, self.gains_given = model, gains
        self.source = "HrModel.stream"                                  # named in its note lines (predict: --data -)
        self.runtime, _ = choose_runtime(model._cfg, model._art, [("the stream", self.fs)])
        if self.runtime not in STREAMED:
            raise SqtoolError(f"{where}: runtime {self.runtime} does not stream; streams run on the C pipeline "
                              "(c_pipeline) or an int8 network on the host (c, tflite, onnx, tflm): "
                              "load_model(export, runtime=...)")
        if self.fs not in model._tables:                                # the front end at this rate, or one line
            model._tables[self.fs] = S.check_rate(md["model_cfg"], self.fs, where)
        self.n_sensors = S.export_ppg_sensors(model._art)               # the device's PPG sensors (None: as given)
        self.dec, _ = S.decoder_dict(md)
        self.run = model._runner(self.runtime)
        self.reset()

    def _acc_resampler(self, model: HrModel, where: str):
        """The export's accelerometer resampler from acc_fs to fs (`acc_resampler.AccResampler`, the kit's C bit for
        bit), or one line: an export without one."""
        from sqtool.data.acc_resampler import AccResampler, design_acc
        from sqtool.firmware_bench.spectral import has_acc_resampler
        if not has_acc_resampler(model._art.metadata):
            raise SqtoolError(f"{where}: acc_fs {self.acc_fs:g} Hz differs from fs {self.fs:g} Hz: only an export "
                              "with the kit's accelerometer resampler streams it, as the device does (sqtool export "
                              f"--device-acc-fs {self.acc_fs:g}); else resample acc to fs first")
        try:
            return AccResampler(design_acc(self.acc_fs, self.fs))
        except SqtoolError as e:
            raise SqtoolError(f"{where}: {e}") from None

    def reset(self) -> None:
        """Start over: a fresh device state, the next sample counted as the stream's first."""
        from sqtool.data.preprocess import GapsAtRate
        self.k = None                                                   # PPG columns, fixed by the first push
        self.gains = None                                               # (rows,) counts per unit, by the first push
        self.n = self.n_acc = 0                                         # samples pushed: PPG, accelerometer
        self.state = self.fe = self.decoder = None
        self.flat: list[int] = []                                       # no_pulse's run (`no_pulse_next`)
        self.closed = False
        self.saturation_said = False                                    # `_say_saturation`: once a stream
        if self.acc_rs is not None:                                     # the accelerometer at its own rate:
            self.acc_rs.reset()
            self.acc_gaps = GapsAtRate(self.acc_fs, self.fs)            # its gap flags brought to fs
            self.acc_last = np.zeros(3)                                 # its last good sample (gaps hold it)
            self.queue: list[np.ndarray] = []                           # `_paired`'s, made by `_start`

    def __reduce__(self):
        raise SqtoolError("HrStream: a live stream does not pickle (its device state lives in the loaded runtime): "
                          "pickle the model (sqtool.load_model's, reloaded from its export folder) and open a stream "
                          "there, or push from one process")

    def close(self) -> None:
        """Let the device state go; a push after it is one line."""
        self.state = self.fe = self.decoder = None
        self.closed = True

    def __enter__(self) -> "HrStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, k: int) -> None:
        """The device state for k PPG columns (the first push's): gains per row, the C state or the front end and
        decoder."""
        import dataclasses

        from sqtool.data.frontend import FrontEnd
        from sqtool.data.hr_spectra import device_gains
        from sqtool.models.decoder import int_decoder
        md = self.model._art.metadata
        rows = k + (3 if self.model.needs_acc else 0)
        self.k, self.gains = k, device_gains(self.gains_given, md["model_cfg"], self.fs, rows, k)
        self.n_ppg = self.n_sensors or k                                # after `spectral.fit_sensors`
        if self.acc_rs is not None:                                     # PPG rows, gaps; acc rows at fs, gaps
            self.queue = [np.zeros((k, 0), np.int16), np.zeros(0, bool), np.zeros((3, 0), np.int16), np.zeros(0, bool)]
        if self.runtime == "c_pipeline":
            self.state = self.run.start(self.fs, self.n_ppg, "the stream")
        else:
            fe, tab = self.model._tables[self.fs]
            self.fe = FrontEnd(dataclasses.replace(fe, n_ppg=self.n_ppg), tab)
            self.decoder = int_decoder(self.dec, self.model._art.output_qparams[0])

    def _chunk(self, ppg, acc) -> tuple[np.ndarray, np.ndarray | None]:
        """ppg (n,) or (n, k), acc (n, 3) or None -> ((k [+ 3], n) float64 rows at fs, None), or with the
        accelerometer at its own rate ((k, n) at fs, (3, m) at acc_fs); or one line naming what is wrong."""
        where = "HrStream.push"
        ppg, acc = _chunk_arrays(ppg, acc, where, self.model.sensors, self.model.needs_acc, self.fs,
                                 acc_own_rate=self.acc_rs is not None)
        n, k = ppg.shape
        if self.k is not None and k != self.k:
            raise SqtoolError(f"{where}: ppg has {k} sensor column(s), the stream's first chunk had {self.k}")
        if acc is not None and self.acc_rs is not None:                 # its own rate: a running count
            return ppg.T.astype(np.float64), self._acc_rows(acc, n, where)
        return np.concatenate([ppg.T, *([] if acc is None else [acc.T])]).astype(np.float64), None   # (k [+ 3], n)

    def _acc_rows(self, acc: np.ndarray, n: int, where: str) -> np.ndarray:
        """An accelerometer chunk at acc_fs beside n PPG samples -> (3, m) float64: any m that keeps the stream's
        accelerometer samples within one of the PPG's at the two rates (a chunk carries its share, whole samples),
        or one line."""
        m = acc.shape[0] if acc.ndim == 2 else -1
        want = (self.n + n) * self.acc_fs / self.fs                     # the stream's acc samples after this chunk
        if acc.ndim != 2 or acc.shape[1] != 3 or abs(self.n_acc + m - want) >= 1 + 1e-9:
            hint = (" (channels-first? pass acc.T)" if acc.ndim == 2 and acc.shape[0] == 3 and acc.shape[1] != 3 else
                    f" (with this chunk the stream would have {self.n_acc + m} acc samples for {self.n + n} ppg "
                    f"samples: about {want:g} at acc_fs {self.acc_fs:g} Hz, fs {self.fs:g} Hz)" if m >= 0 and
                    acc.shape[1] == 3 else "")
            raise SqtoolError(f"{where}: acc must be (m, 3), x, y, z at {self.acc_fs:g} Hz, m about "
                              f"{want - self.n_acc:g} beside the chunk's {n} ppg samples; got shape {acc.shape}{hint}")
        return acc.T.astype(np.float64)

    def _acc_at_fs(self, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3, m) acc at acc_fs -> ((3, j) int16 at fs, (j,) its gap flags) as predict's host path makes them
        (`hr_spectra.acc_at_device_rate`): gaps held, the fixed gains, the kit's resampler, the flags brought over
        (`preprocess.GapsAtRate`)."""
        from sqtool.data.frontend import to_int16
        from sqtool.data.hr_spectra import held
        a, gap = held(acc, "HrStream.push", ("acc_x", "acc_y", "acc_z"), last=self.acc_last)
        if a.shape[1]:
            self.acc_last = a[:, -1].copy()
        y = self.acc_rs.push(to_int16(a, self.gains[self.k:]).T).T       # (3, j) int16 at fs
        self.n_acc += a.shape[1]
        return y, self.acc_gaps.push(np.zeros(a.shape[1], bool) if gap is None else gap, y.shape[1])

    def _paired(self, p16: np.ndarray, pgap: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's PPG rows (k, n) int16 and gaps beside its accelerometer (3, m) at acc_fs -> (C_in, j) int16
        and (j,) gaps of the samples that now have both (predict pairs them by index: the resampler's delay stays);
        the rest of either waits for the next chunk (at most a sample or two when chunks carry their share)."""
        a16, agap = self._acc_at_fs(acc)
        q = [np.concatenate([self.queue[0], p16], axis=1), np.concatenate([self.queue[1], pgap]),
             np.concatenate([self.queue[2], a16], axis=1), np.concatenate([self.queue[3], agap])]
        j = min(q[0].shape[1], q[2].shape[1])
        self.queue = [v[..., j:] for v in q]
        return np.concatenate([q[0][:, :j], q[2][:, :j]]), q[1][:j] | q[3][:j]

    def push(self, ppg, acc=None) -> HrResult:
        """The next chunk: ppg (n,) or (n, S) (S sensors, the model's order: `model.sensors`; S fixed by the first
        chunk), acc (n, 3) x, y, z at the same rate (None for a model without one; at acc_fs: (m, 3), the chunk's
        share, m about n acc_fs / fs, the stream's count kept within a sample); NaN samples are gaps. Returns the
        windows this chunk completed (possibly none), t_end_s counted from the stream's first sample."""
        from sqtool.data.frontend import to_int16
        from sqtool.firmware_bench.spectral import fit_sensors
        if self.closed:
            raise SqtoolError("HrStream.push: the stream is closed (HrModel.stream(...) opens another)")
        x, acc = self._chunk(ppg, acc)                                  # (C, n) at fs; (3, m) at acc_fs or None
        if self.k is None and x.shape[1] == 0 and (acc is None or acc.shape[1] == 0):
            none = np.zeros(0)                                          # an empty first chunk (a callback before
            return self.model._result(none, {c: none for c in          # data) fixes no sensor count
                                             ("hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged")}, self.runtime)
        if self.k is None:
            with self.model._lock:
                self._start(x.shape[0] - (3 if self.model.needs_acc and acc is None else 0))
        bad = ~np.isfinite(x)
        gap = bad.any(axis=0)                                           # (n,) a sample with any channel missing
        self._say_saturation(x, 0)
        if acc is not None:                                             # the accelerometer's rows at acc_fs
            self._say_saturation(acc, self.k)
        x16 = to_int16(np.where(bad, 0.0, x), self.gains[:len(x)])      # gap samples: the device holds them
        if acc is not None:                                             # beside the resampled accelerometer
            x16, gap = self._paired(x16, gap, acc)
        x16, _ = fit_sensors(x16, self.k, self.n_sensors)               # (C_in, n) the device's sensor inputs
        self.n += x.shape[1]
        gap = gap if gap.any() else None
        with self.model._running():                                     # the runtime: one call at a time
            o, index = self._windows(x16, gap)
        fe, tab = self.model._tables[self.fs]
        return self.model._result(index * tab.hop / float(fe.fs) + self.model.window_s, o, self.runtime)

    def _say_saturation(self, x: np.ndarray, row: int) -> None:
        """One note line, the first time the fixed gains put over 1 % of a row's samples of chunk x (C, n), the
        stream's rows from `row` on (0: the PPG's, then acc x, y, z), past int16 (`hr_spectra.saturation_note`): a
        PPG read as the rail, every window flagged, as predict says it (a stream's default gains on an 18-bit front
        end's counts flagged every window, said nowhere; so did acc in m/s^2 for g)."""
        import sys

        from sqtool.core.model_cfg import ACC_AXES
        from sqtool.data.hr_spectra import saturation_note
        if self.saturation_said:
            return
        rows = [*self.model.sensors[:self.k], *ACC_AXES][row:row + len(x)]
        note = saturation_note(x, self.gains[row:row + len(x)], rows, f"{self.source} sample {self.n + 1}")
        if note:
            print(note, file=sys.stderr, flush=True)
            self.saturation_said = True

    def _windows(self, x16: np.ndarray, gap) -> tuple[dict, np.ndarray]:
        """(predict's columns of the windows this chunk completed, their indices)."""
        from sqtool.export.pipeline import no_pulse_next, pulse_rule, scores
        from sqtool.firmware_bench.predict import pipeline_columns
        from sqtool.firmware_bench.spectral import run_window_runtime
        from sqtool.models.decoder import evidence_codes
        if self.runtime == "c_pipeline":
            res, _ = self.run.push(self.state, x16, gap, "the stream")
            return pipeline_columns(res), np.asarray(res["index"], np.int64)
        wins = self.fe.push(x16, gap)
        cols = {k: np.zeros(len(wins)) for k in ("hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse")}
        if not wins:
            return cols, np.zeros(0, np.int64)
        codes = np.stack([w.spec for w in wins])                        # (w, F, C) int8
        valid = scores([w.flagged_q15 for w in wins], [w.ppg_quiet for w in wins])
        logits, _ = run_window_runtime(self.run, codes)                 # (w, F) int8
        ev = self.decoder.cfg.uses_evidence
        outs = [self.decoder.step(np.asarray(y, np.int8), bool(v), evidence_codes(c[None])[0] if ev and v else None)
                for y, v, c in zip(logits, valid, codes)]
        no_pulse, self.flat = no_pulse_next(self.flat, codes, pulse_rule(self.model._art.metadata))
        cols.update(hr_bpm=np.array([o.hr_mbpm for o in outs], np.int32) / 1000.0,
                    lo_bpm=np.array([o.lo_mbpm for o in outs], np.int32) / 1000.0,
                    hi_bpm=np.array([o.hi_mbpm for o in outs], np.int32) / 1000.0,
                    confidence=np.array([o.conf_q15 for o in outs], np.uint16) / 32768.0,
                    flagged=(~valid).astype(int), no_pulse=no_pulse.astype(int))
        return cols, np.array([w.index for w in wins], np.int64)


@dataclass(frozen=True)
class TaskResult:
    """A TaskModel's outputs per window of one call: the columns `sqtool predict` writes into its CSV for the same
    samples, in its order, each a (W,) float64 array, read as attributes (res.p_af) or by name (res["p_af"]): the
    model's outputs, a logit as its class's probability (p_af, p_quality; rr_bpm; sbp, dbp; a custom label's own
    name; a heart-rate model's hr_bpm and hr_tracked_bpm), then flagged (1.0 = 10 % or more of the window's samples
    were gaps: leave it out of any summary). Window w ends at t_end_s[w], s from the first sample."""
    t_end_s: np.ndarray            # (W,) s, end of each window
    columns: Mapping[str, np.ndarray]   # CSV column -> (W,) float64, read-only
    model_sha256: str | None       # the model's content id (export metadata; None for an export older than it)
    runtime: str                   # the runtime that ran: c_host, litert_int8, onnx_float, torch_teacher, ...

    def __len__(self) -> int:
        return len(self.t_end_s)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __getattr__(self, name: str) -> np.ndarray:             # only for names that are not fields
        cols = self.__dict__.get("columns") or {}
        if name in cols:
            return cols[name]
        raise AttributeError(f"TaskResult has no column {name!r} (columns: {', '.join(cols)})")


class TaskModel(_Built):
    """Any other export (a time-domain model of any task: af, rr, bp, quality, hr, a custom label; rr_spec, af_beats),
    loaded once; `predict` on arrays as many times as wanted. Use `sqtool.load_model`."""

    def __init__(self, export_dir, runtime: str = "", filter: str = ""):
        from sqtool.firmware_bench.predict import PredictConfig, load_export
        art = _artifacts(export_dir)                  # filter: predict's --filter ('' = as the model was trained)
        self._cfg = PredictConfig(model=str(art.export_dir), runtime=runtime, filter=filter, progress=False)
        try:                                          # predict's checks: filter default, runtime name, task
            self._art, md, spectral = load_export(self._cfg, art)
        except SqtoolError as e:
            raise SqtoolError(f"sqtool.load_model: {e}") from None
        self.export_dir = Path(art.export_dir)
        self.model_sha256 = md.get("model_sha256")
        self.task, self.window_s = md.get("task"), float(md["window_s"])
        self.sensors = [c for c in md["channels"] if not c.startswith("acc_")]    # ppg column i -> this channel
        self.needs_acc = any(c.startswith("acc_") for c in md["channels"])
        self._runners: dict = {}                                        # runtime name -> built once
        self._tmp: ScratchDir | None = None
        self._lock = threading.RLock()                                  # one call at a time on the runtimes

    def __repr__(self) -> str:
        return (f"TaskModel({str(self.export_dir)!r}, task {self.task!r}, runtime={self._cfg.runtime or 'default'!r}, "
                f"channels {', '.join(self.sensors)}{', acc' if self.needs_acc else ''})")

    def predict(self, ppg, acc=None, fs=None, acc_fs=None) -> TaskResult:
        """The model's outputs per window of one recording, as `sqtool predict` writes them: ppg (N,) or (N, S) for
        the model's S PPG channels (`self.sensors`, in that order), acc (N, 3) x, y, z in g where the model reads it
        (else None), fs the PPG's rate in Hz (any: resampled to the model's, as predict does), acc_fs the
        accelerometer's when it differs (acc then (M, 3) over the same seconds). NaN samples are gaps (held at the
        last good sample; a window of 10 % or more flagged). Checks as `HrModel.predict`'s, one line each."""
        from sqtool.firmware_bench import predict as P
        rec = _record(ppg, acc, fs, acc_fs, self.sensors, self.needs_acc, "TaskModel.predict", every_sensor=True)
        with self._running(), warnings.catch_warnings():    # predict's own path, one recording; filters as found
            prep = P.prepare_time_domain(self._cfg, self._art, [P.checked_record(rec)])
            outs, _, columns = P.run_time_domain(self._art, prep, self._work(), self._runners)
        return self._result(prep["recs"][0].t0 + self.window_s, outs[0], columns, prep["runtime"])

    def _result(self, t_end_s, o: dict, columns: dict, runtime: str) -> TaskResult:
        """A TaskResult of windows ending at t_end_s with predict's columns `o` (run_time_domain's, one recording's)."""
        from sqtool.firmware_bench.predict import output_values
        cols = {k: _frozen(v) for k, v in output_values(o, columns).items()}
        return TaskResult(t_end_s=_frozen(t_end_s), columns=MappingProxyType(cols), model_sha256=self.model_sha256,
                          runtime=runtime)

    def stream(self, fs, acc_fs=None) -> "TaskStream":
        """A live stream of one device at fs Hz: `TaskStream.push(ppg, acc)` chunk by chunk, each window's outputs
        as soon as the model's band-pass has what it needs (the "window" filter's look-ahead: seconds after the
        window's last sample), `finish()` at the end of the recording for the last ones. The rows of every push and
        finish, concatenated, are `predict(...)`'s on the whole recording, to the bit, whatever the chunks.
        acc_fs: the accelerometer's rate, for a model reading it only fs (see TaskStream)."""
        return TaskStream(self, fs, acc_fs)


class TaskStream:
    """One device's live stream through a TaskModel (`TaskModel.stream`): `push` chunks of any size as they arrive,
    get the rows (a TaskResult) of the windows each completes; `finish()` at the end of the recording gives the
    last ones, whose band-pass look-ahead ran past its end. It holds the stream's state only (the window, the
    band-pass's context, the resampler's taps, the tracker: `firmware_bench.stream.WindowStream`), never the
    history: memory stays flat over a week.

    It is predict's own stream: `prepare_time_domain` replays a recording through the same `WindowStream` (dropout
    repair, the streaming polyphase resampler to the model's rate, the band-pass, the per-window normalisation), the
    network runs window by window on the model's runtime, and `predict.TdColumns` turns its outputs into the CSV's
    columns (a heart-rate model's tracker carried over the chunks). So the rows equal `TaskModel.predict` on the
    whole recording (np.array_equal, every column and t_end_s), with two limits where predict reads the whole
    recording, which a stream cannot:
      - the accelerometer at the PPG's rate fs only: predict resamples one at its own rate over the whole recording
        (its mean removed first, gaps interpolated across), so acc_fs other than fs is refused for a model reading
        it (resample it to fs on the device); the PPG itself may come at any rate the model takes;
      - a recording shorter than one window: `finish()` gives predict's row for it (a model whose training tiled
        short recordings, metadata short_records "tile": af, quality, bp) from the samples it held, else none (predict
        refuses it).
    Runtimes: the model's (`load_model(..., runtime)`) but the MCU's (QEMU starts once a call) and c_window's (fed
    whole recordings)."""

    def __init__(self, model: TaskModel, fs, acc_fs=None):
        from sqtool.firmware_bench import predict as P
        from sqtool.firmware_bench.runtimes import feeds_records, resp_view
        from sqtool.firmware_bench.stream import StreamSpec
        where = "TaskModel.stream"
        self.fs = _rate("fs", fs, where)
        self.acc_fs = self.fs if acc_fs is None else _rate("acc_fs", acc_fs, where)
        if self.acc_fs != self.fs and model.needs_acc:
            raise SqtoolError(f"{where}: acc_fs {self.acc_fs:g} Hz differs from fs {self.fs:g} Hz: predict resamples "
                              "such an accelerometer over the whole recording, which a stream cannot match; resample "
                              f"acc to {self.fs:g} Hz on the device and push it beside the PPG, one row per sample")
        md = model._art.metadata
        self.model, self.where = model, where
        self.spec = StreamSpec.from_model_cfg(resp_view(md), filter=model._cfg.filter)
        self.runtime, _ = P.time_domain_runtime(model._cfg, model._art)
        if feeds_records(self.runtime) or self.runtime.startswith("mcu_"):
            raise SqtoolError(f"{where}: runtime {self.runtime} does not stream ("
                              + ("it is fed whole recordings" if feeds_records(self.runtime) else
                                 "its QEMU starts once a call") + "): load_model(export, runtime='c') (predict "
                              "--data -: --runtime c; or tflite, onnx, torch)")
        with model._lock:                                               # built now: a runtime the export lacks is
            P.built_runtime(model._art, self.runtime, model._work(), model._runners)   # one line here, not mid-stream
        self.table = P.TdColumns.of(resp_view(md))
        self.tile = md.get("short_records") == "tile"
        self.reset()                                                    # a rate the model cannot take: one line
        self.columns = tuple(self._rows([]).columns)                    # its rows' columns, in predict's order

    def reset(self) -> None:
        """Start over: a fresh stream, the next sample counted as the stream's first."""
        from sqtool.firmware_bench.stream import WindowStream
        try:
            self.windows = WindowStream(self.spec, self.fs)
        except SqtoolError as e:                                        # the rate: Nyquist, ratio, whole samples
            why = str(e).removeprefix("stream: ")
            fix = (" (predict resamples such a recording to whole Hz over all of it, which a stream cannot): resample "
                   "it to a whole-Hz rate on the device" if why.startswith(f"{self.spec.window_s:g} s /") else "")
            raise SqtoolError(f"{self.where}: fs {self.fs:g} Hz: {why}{fix}; at the model's own {self.spec.fs:g} Hz "
                              "a device streams as is") from None
        self.tracker = self.table.tracker()
        self.held: list[np.ndarray] | None = [] if self.tile else None  # a tiling model's raw chunks until the
                                                                        # first window (a short recording's)
        self.closed = self.finished = False

    def __enter__(self) -> "TaskStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Let the stream's state go; a push after it is one line."""
        self.windows = self.held = None
        self.closed = True

    def _open(self, where: str) -> None:
        """One line when the stream is closed or finished."""
        if self.closed or self.finished:
            raise SqtoolError(f"{where}: the stream is " + ("closed (TaskModel.stream(...) opens another)"
                              if self.closed else "finished (reset() starts the next recording)"))

    def _chunk(self, ppg, acc) -> np.ndarray:
        """ppg (n,) or (n, S), acc (n, 3) or None -> (C, n) float64 rows in the model's channel order, or one line
        naming what is wrong."""
        ppg, acc = _chunk_arrays(ppg, acc, "TaskStream.push", self.model.sensors, self.model.needs_acc, self.fs,
                                 every_sensor=True, acc_unit=" in g")
        n = ppg.shape[0]
        rows = dict(zip(self.model.sensors, ppg.T))
        if acc is not None:
            rows.update({f"acc_{a}": acc[:, j] for j, a in enumerate("xyz")})
        return np.array([rows[c] for c in self.spec.channels], np.float64).reshape(len(self.spec.channels), n)

    def push(self, ppg, acc=None) -> TaskResult:
        """The next chunk: ppg (n,) or (n, S) (the model's S PPG columns: `model.sensors`, in that order), acc (n, 3)
        x, y, z at the same rate where the model reads it (else None); NaN samples are gaps. Returns the rows of the
        windows this chunk completed (possibly none), t_end_s counted from the stream's first sample."""
        self._open("TaskStream.push")
        x = self._chunk(ppg, acc)                                       # (C, n) in spec.channels order
        if self.held is not None:                                       # until the first window: a short recording
            self.held.append(x)                                         # is predict's to tile at finish
        return self._rows(self.windows.push(x))

    def finish(self) -> TaskResult:
        """The end of the recording: the rows of its last windows (the band-pass's look-ahead cut at the end, the
        resampler's tail zero-padded, as predict); a recording shorter than one window: predict's row of it (a model
        that tiles such recordings, see the class) or none. The stream then takes no more chunks (reset())."""
        self._open("TaskStream.finish")
        self.finished = True
        rows = self._rows(self.windows.finish())
        held, self.held = self.held, None
        if len(rows) or not held:
            return rows
        x = np.concatenate(held, axis=1)                                # (C, n) less than one window
        if not np.isfinite(x).any():
            return rows
        acc = x[[self.spec.channels.index(f"acc_{a}") for a in "xyz"]].T if self.model.needs_acc else None
        return self.model.predict(x[[self.spec.channels.index(c) for c in self.model.sensors]].T, acc, fs=self.fs)

    def _rows(self, wins: list) -> TaskResult:
        """The TaskResult of the windows the stream emitted: the network window by window, predict's columns."""
        from sqtool.firmware_bench.predict import built_runtime
        if wins:
            self.held = None                                            # a window: no longer a short recording
            with self.model._running():                                 # the runtime: one call at a time
                rt = built_runtime(self.model._art, self.runtime, self.model._work(), self.model._runners)
                y = rt.run_batch(np.stack([w.x for w in wins]))         # (W, C, T) -> (W, outputs) in units
            y = np.asarray(y, np.float64).reshape(len(wins), -1)
        else:
            y = np.zeros((0, len(self.table.outputs)))
        o = self.table.windows(y, np.array([w.flagged for w in wins], np.float64), self.tracker)
        t_end = np.array([w.t0 for w in wins], np.float64) + self.model.window_s
        return self.model._result(t_end, o, self.table.columns, self.runtime)


def load_model(export_dir, runtime: str = "") -> HrModel | TaskModel:
    """A `sqtool export` folder as a model to `predict` on arrays: a spectral heart-rate model as an HrModel
    (`HrModel.predict(ppg, acc, fs)` -> HrResult; `stream`), any other (af, rr, bp, quality, a time-domain hr
    model, a custom label; rr_spec, af_beats) as a TaskModel (`TaskModel.predict(ppg, acc, fs)` -> TaskResult: the
    columns `sqtool predict` writes). runtime: as `sqtool predict --runtime` (c_pipeline, c, tflite, onnx, torch,
    mcu); '' = predict's default (the export's C pipeline when it has one, gcc is there and fs is the rate it was
    exported for; else c; a float-only export: its TFLite, else its ONNX)."""
    art = _artifacts(export_dir)
    return (HrModel if _spectral_hr(art) else TaskModel)(art, runtime)


__all__ = ["load_model", "HrModel", "HrResult", "HrStream", "TaskModel", "TaskResult", "TaskStream"]
