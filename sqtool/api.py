"""sqtool from Python: heart rate from arrays through an export, the numbers `sqtool predict` writes.

    import sqtool
    model = sqtool.load_model("runs/export/<run>")     # a `sqtool export` folder of a spectral heart-rate model
    res = model.predict(ppg, acc, fs=125.0)             # ppg (N,) or (N, S); acc (N, 3) in g; fs in Hz
    res = model.predict(ppg, acc25, fs=50.0, acc_fs=25.0)   # an accelerometer at its own rate: resampled to fs
    res.t_end_s, res.hr_bpm, res.lo_bpm, res.hi_bpm, res.confidence, res.flagged, res.no_pulse   # (W,) float64

`HrModel.predict` runs predict's own path for one recording (`firmware_bench.predict`: the Record checks,
`prepare_spectral`, `run_spectral`): robust int16 device samples per call (as per recording file), the front end,
the network on the runtime, the decoder; so it gives the heart rate per window that `sqtool predict` writes into
its CSV for the same samples. It writes no run folder, takes no lock and leaves torch's thread count and the
warning filters as it found them; the runtimes it builds (the C pipeline's host library, a network's C) live in a
private temporary folder, removed with the model (or `close()`).

Only spectral heart-rate exports (`spec_*` students); another export is one error line saying what to use.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path

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


def _rate(name: str, fs) -> float:
    """A sampling rate argument in Hz, or one line naming it."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real):     # None, text, arrays too
        raise SqtoolError(f"HrModel.predict: {name} must be the sampling rate in Hz (a number), got {fs!r}")
    return check_fs(fs, f"HrModel.predict: {name}")


def _samples(name: str, x) -> np.ndarray:
    """x as a real-valued array, or one line naming it."""
    if x is None:
        raise SqtoolError(f"HrModel.predict: {name} is required (samples as a numpy array)")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):                                # a ragged list: numpy's own many-line story
        raise SqtoolError(f"HrModel.predict: {name} is not an array of samples (rows of unequal length?), got a "
                          f"{type(x).__name__}") from None
    if a.dtype.kind not in "iuf":
        raise SqtoolError(f"HrModel.predict: {name} must hold real numbers, got {a.dtype} samples")
    if a.size == 0:
        raise SqtoolError(f"HrModel.predict: {name} is empty (shape {a.shape})")
    return a


class HrModel:
    """A spectral heart-rate export, loaded once; `predict` on arrays as many times as wanted. Use
    `sqtool.load_model`."""

    def __init__(self, export_dir, runtime: str = ""):
        from sqtool.data.hr_spectra import ppg_sensors, signal_channels
        from sqtool.firmware_bench import runtimes as R
        from sqtool.firmware_bench.predict import PredictConfig, spectral_runtime
        art = R.load_artifacts(export_dir)
        md = art.metadata
        if not R.is_spectral(md) or md.get("task", "hr") != "hr":
            what = "spectral" if R.is_spectral(md) else "time-domain"
            raise SqtoolError(f"sqtool.load_model: {art.export_dir} is a {what} '{md.get('task')}' model; it reads "
                              "spectral heart-rate exports only: for this one use `sqtool predict --model "
                              f"{art.export_dir}` (or firmware_bench.predict.predict(PredictConfig(...), "
                              "records=[Record(...)]))")
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

    def __repr__(self) -> str:
        return (f"HrModel({str(self.export_dir)!r}, runtime={self._cfg.runtime or 'default'!r}, "
                f"ppg sensors {len(self.sensors)}, acc {'yes' if self.needs_acc else 'no'})")

    def close(self) -> None:
        """Remove the built runtimes' temporary folder now (else when the model is garbage-collected)."""
        self._runners.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def predict(self, ppg, acc=None, fs=None, acc_fs=None) -> HrResult:
        """Heart rate per window of one recording: ppg (N,) or (N, S) for S PPG sensors (the model's, in its order:
        `self.sensors`), acc (N, 3) accelerometer x, y, z in g (None for a model without one), fs the PPG's
        sampling rate in Hz, acc_fs the accelerometer's when it differs (None: fs): acc is then (M, 3) over the same
        seconds (M = N acc_fs / fs), resampled to fs on the host as `sqtool predict` does (`record.channel_matrix`;
        an export with the kit's accelerometer resampler, `export --device-acc-fs`: that integer filter, as the device).
        NaN samples are gaps (held; a window over half gaps is flagged). Any unit works for the PPG (each call gets
        its own robust gain, as each recording does in `sqtool predict`)."""
        from sqtool.data.record import Record
        from sqtool.firmware_bench import predict as P
        fs = _rate("fs", fs)
        acc_fs = fs if acc_fs is None else _rate("acc_fs", acc_fs)
        ppg = _samples("ppg", ppg)
        if ppg.ndim == 1:
            ppg = ppg[:, None]
        if ppg.ndim != 2 or ppg.shape[1] > ppg.shape[0]:
            raise SqtoolError(f"HrModel.predict: ppg must be (N,) or (N, S) for S sensors, got shape {ppg.shape}"
                              + (" (channels-first? pass ppg.T)" if ppg.ndim == 2 else ""))
        n, k = ppg.shape
        if k > len(self.sensors):
            raise SqtoolError(f"HrModel.predict: ppg has {k} sensor columns, the model reads {len(self.sensors)} "
                              f"({', '.join(self.sensors)}): pass ppg[:, :{len(self.sensors)}]")
        sig = {self.sensors[i]: ppg[:, i] for i in range(k)}
        if acc is None:
            if self.needs_acc:
                raise SqtoolError("HrModel.predict: this model reads the accelerometer: pass acc, (N, 3) x, y, z in g")
        else:
            acc = _samples("acc", acc)
            m = int(round(n * acc_fs / fs))                            # acc's rows over the PPG's seconds
            if acc.ndim != 2 or acc.shape[1] != 3 or (acc_fs == fs and acc.shape != (n, 3)):
                hint = (" (channels-first? pass acc.T)" if acc.shape == (3, m) else
                        f" (ppg has {n} samples: give both the same length, or acc's own rate as acc_fs)"
                        if acc.ndim == 2 and acc.shape[1] == 3 else "")
                raise SqtoolError(f"HrModel.predict: acc must be (N, 3) = ({m}, 3), x, y, z in g, got shape "
                                  f"{acc.shape}{hint}")
            sig.update({f"acc_{a}": acc[:, j] for j, a in enumerate("xyz")})
        rec = Record("arrays", "arrays", "input", sig, {c: acc_fs if c.startswith("acc_") else fs for c in sig})
        with warnings.catch_warnings():          # predict's own path, one recording; filters as found (the torch
                                                 # runtimes put torch's thread count back themselves)
            prep = P.prepare_spectral(self._cfg, self._art, [P.checked_record(rec)], self._tables)
            if self._tmp is None:
                self._tmp = ScratchDir("sqtool-hrmodel-")
            outs, _, _ = P.run_spectral(self._art, prep, Path(self._tmp.name), self._runners)
        r, o = prep["recs"][0], outs[0]

        def col(v) -> np.ndarray:
            a = np.array(v, dtype=np.float64)
            a.setflags(write=False)
            return a
        return HrResult(t_end_s=col(r.t0 + self.window_s), hr_bpm=col(o["hr_bpm"]), lo_bpm=col(o["lo_bpm"]),
                        hi_bpm=col(o["hi_bpm"]), confidence=col(o["confidence"]), flagged=col(o["flagged"]),
                        no_pulse=col(o.get("no_pulse", np.zeros(len(o["flagged"])))),
                        model_sha256=self.model_sha256, runtime=prep["runtime"])


def load_model(export_dir, runtime: str = "") -> HrModel:
    """A `sqtool export` folder of a spectral heart-rate model as an HrModel (`HrModel.predict(ppg, acc, fs)`).
    runtime: as `sqtool predict --runtime` (c_pipeline, c, tflite, onnx, torch, mcu); '' = predict's default (the
    export's C pipeline when it has one, gcc is there and fs is the rate it was exported for; else c)."""
    return HrModel(export_dir, runtime)


__all__ = ["load_model", "HrModel", "HrResult"]
