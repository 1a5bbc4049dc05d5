"""`sqtool predict`: heart rate of recordings (labelled or not) through an exported spectral model.

    sqtool predict --model runs/export/<run> --data recording.csv --out runs/predict/mine
    sqtool predict --model EXPORT --data folder/ --runtime c|tflite|onnx|torch|c_pipeline|mcu

Each recording (a file or a folder; CSV / NPZ / WFDB / EDF and the datasets through
`sqtool.data.readers`) is turned into int16 device samples (robust per-recording gains; the model's
frontend ppg_sensors the recording has, whose spectra the front end averages into the ppg channel), then:

    c_pipeline  (default when the export has the C pipeline and gcc is there, and every recording is at the
                rate and has the PPG sensor count it was exported for) the export's whole C pipeline on the
                host, one sq_pipeline_push per recording (all its PPG sensors, e.g. ppg and ppg2 of SP Cup,
                interleaved): front end, network, decoder in C, integer only;
    c           (the default otherwise) the Python integer front end, the export's network C on the host
                (single rounding, as the pipeline), the fixed-point decoder (`decode_int`);
    tflite / onnx / torch   the same with LiteRT int8 / onnxruntime int8 / the PyTorch float student
                (`decode_float`);
    mcu         the same with the export's network C built for a Cortex-M4 and run on QEMU (single rounding,
                as `c` and the pipeline: the same heart rate); summary.json adds its `firmware` cost
                (instructions per window, flash, RAM, stack). Any bench runtime name (e.g. mcu_m4, mcu_m33)
                is accepted as well.

Writes into the run dir, per recording, `<record>.csv` (time_s = end of the window, i.e. when the device
reports it; hr_bpm; lo_bpm, hi_bpm = the central posterior interval (nominal mass calibrated to 90 % coverage
on inner out-of-fold windows); confidence = the decoder's conf (`DecoderCfg.conf_text`: for a model from
`sqtool quantize`, 1 - expected |error| / the grid's extent, so expected error = (1 - confidence) x extent);
expected_err_bpm = that expected error when the confidence is calibrated; flagged = 1 when more than half the window's samples were dropouts, so the network did not score it
and the value is the decoder's prediction; truth_bpm when the recording has heart-rate truth) and
`<record>.png` (HR with its 90 % band over time, and the truth when there is one), then `summary.json`.

A recording without the model's channels (e.g. no accelerometer), or at a sampling rate the front end cannot
take, is a one-line error naming the recording and the channel / rate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError

CHOICES = {"c_pipeline": "c_pipeline", "pipeline": "c_pipeline", "c": "c_host_single", "tflite": "litert_int8",
           "litert": "litert_int8", "tflm": "tflm_int8", "onnx": "onnx_int8", "torch": "torch_student",
           "mcu": "mcu_m4_single"}


@dataclass
class PredictConfig:
    model: str = field(default="", metadata={"help": "a `sqtool export` folder of a spectral heart-rate model "
                                                     "(metadata.json)", "required": True, "metavar": "EXPORT"})
    data: str = field(default="", metadata={"help": "a recording file or a folder of recordings (CSV, NPZ, WFDB, "
                                                    "EDF, a dataset folder or name)", "required": True})
    runtime: str = field(default="", metadata={"help": "c_pipeline | c | tflite | onnx | torch | mcu (Cortex-M4 "
                                                       "on QEMU) (default: the C pipeline when available, else c)"})
    max_seconds: float = field(default=0.0, metadata={"help": "use only the first seconds of each recording (0 = all)"})
    data_root: str = field(default="", metadata={"help": "where a dataset name given as --data is looked up "
                                                         "(default: $SQTOOL_DATA or ../shared/data)"})
    out: str | None = field(default=None, metadata={"help": "run dir (default: runs/predict/<stamp>-<model>)",
                                                    "metavar": "DIR"})
    force: bool = field(default=False, metadata={"help": "overwrite a non-empty --out"})


def register(sub, name: str, helptext: str) -> None:
    from sqtool.core import add_config_args
    p = sub.add_parser(name, help=helptext, description=__doc__.split("\n\n")[0])
    add_config_args(p, PredictConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from sqtool.core import resolve_config
    res = predict(resolve_config(PredictConfig, args))
    for w in res["warnings"]:
        print(w)
    for r in res["recordings"]:
        m = r.get("metrics") or {}
        acc = f", MAE {m['mae']:.2f} BPM vs truth" if m.get("mae") is not None else ""
        print(f"{r['record_id']}: {r['windows']} windows, HR {r['hr_median']:.1f} BPM median, "
              f"{r['flagged_windows']} flagged{acc} -> {r['csv']}")
    fw = res.get("firmware")
    if fw:
        print(f"firmware ({fw.get('cpu')}): {fw.get('instructions_per_inference', 0):,.0f} instructions / window, "
              f"flash {fw.get('flash_bytes', 0) / 1024:.1f} KB, RAM {fw.get('ram_bytes', 0) / 1024:.1f} KB")
    print(f"\npredict ({res['runtime']}) -> {res['run_dir']}")
    print(f"results: one <record>.csv and .png per recording, summary.json in {res['run_dir']}")
    return 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "recording"


def _plot(path: Path, rid: str, t: np.ndarray, o: dict, truth: np.ndarray | None, runtime: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.fill_between(t, o["lo"], o["hi"], color="tab:blue", alpha=0.2, lw=0, label="90 % interval")
    ax.plot(t, o["hr"], color="tab:blue", lw=1.2, label=f"HR ({runtime})")
    fl = o["flagged"].astype(bool)
    if fl.any():
        ax.plot(t[fl], o["hr"][fl], "x", color="tab:red", ms=4, label="flagged (not scored)")
    if truth is not None and np.isfinite(truth).any():
        ax.plot(t, truth, "k-", lw=1.0, label="truth")
    ax.set_xlabel("time (s, end of window)")
    ax.set_ylabel("BPM")
    ax.set_title(rid, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _choose(cfg: PredictConfig, art, recs) -> tuple[str, str]:
    """(runtime name, note)."""
    import shutil
    if cfg.runtime:
        name = CHOICES.get(cfg.runtime, cfg.runtime)
        from sqtool.firmware_bench.spectral import RUNTIMES
        if name not in RUNTIMES:
            raise SqtoolError(f"--runtime {cfg.runtime}: unknown (choose c_pipeline, c, tflite, onnx, torch or mcu)")
        return name, "asked for"
    if not art.has("c/sq_pipeline.c"):
        return "c_host_single", "the export has no C pipeline (c/sq_pipeline.c): C network + Python front end/decoder"
    if shutil.which("gcc") is None:
        return "c_host_single", "no gcc"
    m = re.search(r"SQ_PL_FS_IN_MHZ\s+(\d+)", art.file("c/sq_pipeline_cfg.h").read_text()) \
        if art.has("c/sq_pipeline_cfg.h") else None
    if m is not None:
        fs = int(m.group(1)) / 1000.0
        other = [r for r in recs if abs(r.fs_in - fs) > 1e-9]
        if other:
            return "c_host_single", (f"{other[0].record_id} is at {other[0].fs_in:g} Hz, the C pipeline was exported "
                                     f"for {fs:g} Hz: C network + Python front end/decoder")
    return "c_pipeline", "default"


def predict(cfg: PredictConfig, records=None) -> dict:
    """Run `sqtool predict`; `records` (a list of Record) replaces --data when given. Returns summary.json."""
    from sqtool.core import make_run_dir, save_config, write_metrics
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench import spectral as S

    if not cfg.model:
        raise SqtoolError("--model is required (an `sqtool export` dir of a spectral heart-rate model)")
    art = R.load_artifacts(cfg.model)
    md = art.metadata
    if md.get("task") != "hr" or not R.is_spectral(md):
        raise SqtoolError(f"sqtool predict needs a spectral heart-rate export; {art.export_dir} is "
                          f"'{md.get('model')}' (task {md.get('task')}, family {md['model_cfg'].get('family')})")
    if records is None:
        path = S.resolve_data(cfg.data, cfg.data_root)
        records = S.load_records(path, 0, cfg.max_seconds)
        data = str(getattr(path, "path", path))
    else:
        records, data = [S.cut(r, cfg.max_seconds) for r in records], "records"
    cache: dict = {}
    n_sensors = S.export_ppg_sensors(art)                              # replay on the exported device's sensors
    recs = [S.prepare(r, md["model_cfg"], cache, n_sensors) for r in records]   # one-line errors: channel, rate, length
    name, why = _choose(cfg, art, recs)
    dec, dec_note = S.decoder_dict(md)
    from sqtool.models.decoder import decoder_cfg
    dcfg = decoder_cfg(dec)

    run_dir = make_run_dir("predict", str(md.get("model", "model")), cfg.out, cfg.force)
    save_config(run_dir, cfg)
    work = run_dir / "build"
    outs, firmware = [], None
    if name == "c_pipeline":
        pl = S.CPipelineHost(art.c_dir("c/sq_pipeline.c"), work / "c_pipeline")
        for r in recs:
            res, _ = pl.run(r.x16, r.gap, r.fs_in, f"{r.record.dataset}/{r.record_id}", r.n_ppg)
            outs.append({"hr": res["hr_mbpm"] / 1000.0, "lo": res["lo_mbpm"] / 1000.0, "hi": res["hi_mbpm"] / 1000.0,
                         "conf": res["conf_q15"] / 32768.0, "flagged": 1 - res["valid"].astype(int)})
    else:
        rt = R.make_runtime(name, art, work)
        codes = np.concatenate([r.codes for r in recs])
        y, yq = S.run_window_runtime(rt, codes)
        scale = art.output_qparams[0] if yq is not None else None
        if name.startswith("mcu_"):                                    # what the network costs on the device
            info = rt.info()
            firmware = {k: info[k] for k in ("cpu", "board", "instructions_per_inference", "flash_bytes",
                                             "ram_bytes", "stack_high_water_bytes") if info.get(k) is not None}
        a = 0
        for r in recs:
            b = a + len(r.t0)
            o = S.decode(y[a:b], [r], dec, scale)
            o["flagged"] = (~r.valid).astype(int)
            outs.append(o)
            a = b

    win = float(md["window_s"])
    rows = []
    used: set[str] = set()
    for r, o in zip(recs, outs):
        stem = _safe(f"{r.record.dataset}_{r.record_id}" if len(recs) > 1 else r.record_id)
        while stem in used:
            stem += "_"
        used.add(stem)
        t = r.t0 + win
        truth = r.truth if np.isfinite(r.truth).any() else None
        cols = {"time_s": t, "hr_bpm": o["hr"], "lo_bpm": o["lo"], "hi_bpm": o["hi"], "confidence": o["conf"]}
        if dcfg.conf_error_span:
            cols["expected_err_bpm"] = (1 - np.asarray(o["conf"], np.float64)) * dcfg.conf_error_span
        cols["flagged"] = o["flagged"]
        if truth is not None:
            cols["truth_bpm"] = truth
        lines = [",".join(cols)]
        for i in range(len(t)):
            lines.append(",".join(("" if not np.isfinite(v[i]) else (str(int(v[i])) if k == "flagged" else
                                   f"{float(v[i]):.3f}")) for k, v in cols.items()))
        (run_dir / f"{stem}.csv").write_text("\n".join(lines) + "\n")
        _plot(run_dir / f"{stem}.png", r.record_id, t, o, truth, name)
        d = {"record_id": r.record_id, "subject": r.subject, "source": str(getattr(r.record, "source", "")),
             "fs_in": r.fs_in, "seconds": r.x16.shape[1] / r.fs_in, "windows": len(t),
             "flagged_windows": int(np.sum(o["flagged"])), "hr_median": float(np.median(o["hr"])),
             "hr_min": float(np.min(o["hr"])), "hr_max": float(np.max(o["hr"])),
             "confidence_median": float(np.median(o["conf"])), "csv": f"{stem}.csv", "plot": f"{stem}.png",
             "truth": truth is not None}
        if truth is not None:
            d["metrics"] = S.hr_scores(o["hr"], truth)
        rows.append(d)
    summary = {"model": md.get("model"), "model_dir": str(art.export_dir), "data": data, "runtime": name,
               "runtime_choice": why, "decoder": dec_note, "run_dir": str(run_dir), "recordings": rows,
               "columns": {"time_s": "end of the window (s from the recording start)", "hr_bpm": "heart rate",
                           "lo_bpm, hi_bpm": f"central {100 * dcfg.interval:.1f} % posterior interval (calibrated "
                           "nominal mass)", "confidence": dcfg.conf_text,
                           **({"expected_err_bpm": "expected |error| of hr_bpm, from the calibrated confidence"}
                              if dcfg.conf_error_span else {}), "flagged": "1 = over half the window's samples were dropouts: "
                           "not scored, decoder prediction only", "truth_bpm": "reference HR (labelled data only)"}}
    from sqtool.firmware_bench.provenance import provenance_warnings
    seen, warns = provenance_warnings(art, {r.subject for r in recs if np.isfinite(r.truth).any()},
                                      {r.subject for r in recs})
    summary["seen_in_training"], summary["warnings"] = seen, warns
    if firmware is not None:
        summary["firmware"] = firmware
    write_metrics(run_dir, summary, name="summary.json")
    return summary
