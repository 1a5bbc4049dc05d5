"""`sqtool predict`: heart rate (or another task's outputs) of recordings, labelled or not, through an export.

    sqtool predict --model runs/export/<run> --data recording.csv --out runs/predict/mine
    sqtool predict --model EXPORT --data folder/ --runtime c|tflite|onnx|torch|c_pipeline|mcu
    sqtool predict --model EXPORT --data synthetic    # the embedded recordings bench --data synthetic reads
    my_board_logger | sqtool predict --model EXPORT --data - --fs 64 --gains 1   # a live device (`predict_live`)

Each recording (a file or a folder; CSV / NPZ / WFDB / EDF and the datasets through
`sqtool.data.readers`) is turned into int16 device samples (robust per-recording gains, or a spectral model's
fixed --gains: device, 1 = the file holds int16 counts, counts per unit per channel; the model's
frontend ppg_sensors the recording has, whose spectra the front end averages into the ppg channel), then:

    c_pipeline  (default when the export has the C pipeline and gcc is there, and every recording is at the
                rate and has the PPG sensor count it was exported for) the export's whole C pipeline on the
                host, one sq_pipeline_push per recording (all its PPG sensors, e.g. ppg and ppg2 of SP Cup,
                interleaved): front end, network, decoder in C, integer only;
    c           (the default otherwise) the Python integer front end, the export's network C on the host
                (single rounding, as the pipeline), the fixed-point decoder (`decode_int`); an export without C
                (`export --target onnx,tflite`) runs on tflite by default, else onnx (`default_runtime`, said in
                one note line);
    tflite / onnx / torch   the same with LiteRT int8 / onnxruntime int8 / the PyTorch float student
                (`decode_float`);
    mcu         the same with the export's network C built for a Cortex-M4 and run on QEMU (single rounding,
                as `c` and the pipeline: the same heart rate); summary.json adds its `firmware` cost
                (instructions per window, flash, RAM, stack). Any bench runtime name (e.g. mcu_m4, mcu_m33)
                is accepted as well.

Writes into the run dir, per recording, `<record>.csv` (time_s = end of the window, i.e. when the device
reports it, in s from the recording's first sample; time = the same as an ISO 8601 wall-clock time, when the input
has one: an epoch / ISO time column, an NPZ's start_time; its UTC offset, Z for epoch numbers; summary.json gives
the recording's start_time); hr_bpm; lo_bpm, hi_bpm = the decoder's interval, calibrated to 90 % coverage on inner out-of-fold windows (the
central posterior interval, or hr -+ (c + k S) with S the recent |network's own argmax - hr|: `DecoderCfg.interval_text`); confidence = the decoder's conf (`DecoderCfg.conf_text`: for a model from
`sqtool quantize`, 1 - expected |error| / the grid's extent, so expected error = (1 - confidence) x extent);
expected_err_bpm = that expected error when the confidence is calibrated; flagged = 1 when the network did not
score the window: more than half its samples were dropouts, or its PPG is quiet (a flat line: stuck, railed, zero);
no_pulse = 1 where the PPG's spectrum has been as flat as noise for the last 32 windows (off the wrist, no perfusion:
a separate column, the window may still be scored);
truth_bpm when the recording has heart-rate truth) and `<record>.png` (HR with its 90 % band over time, and the
truth when there is one; by default only for up to PLOTS_AUTO recordings, a folder of more gets none and one note
line: `--plots all | none | N`, `plot_count`), then `summary.json` (with `provenance`, the block bench.json has:
model_sha256, the model's content id, the source checkpoint's hash, the sqtool version and git commit; `provenance.model_provenance`;
per recording channels_fed: which of its channels fed each model input row, `FED_NOTE`).
Every window has its row. On a flagged window hr_bpm, its interval and confidence are the decoder's prediction
only, no reading: the last heart rate held for a few minutes, then drifting to the middle of the grid (about 129
BPM at confidence 0.80 after an hour off the wrist); filter the CSV on flagged == 0. The summary (hr_median,
hr_min, hr_max, confidence_median, medians; the line printed per recording) is over the windows not flagged
(scored_windows of them; flagged_windows left out), in time-domain models too. The MAE vs truth (metrics, on a labelled
recording) is sqtool bench's: over every window with truth, flagged ones included (`METRICS_NOTE`, said beside it).

A time-domain model of any task (students `cnn1d_student_*`, resnet1d teachers fine-tuned on hr, rr, af, bp or
quality: windows of samples) is replayed through its stream as `sqtool bench` does (`firmware_bench.stream`: the
model's band-pass, resampling and normalisation per window) and run by `c` (the default: the network's C on the
host, rounding twice as the export's sq_model.h does by default, so the outputs are a firmware's built from it; an
export without C: tflite, else onnx), tflite, tflm, onnx, torch or mcu (the same C on an emulated Cortex-M4);
its CSV holds one column per model output, a logit as its class probability (hr_bpm, p_quality; rr_bpm; p_af;
sbp, dbp; p_good), for a heart-rate model also hr_tracked_bpm (the bench's tracker over the windows its quality
output calls good) and truth_bpm, and flagged (1 = 10 % or more of the window's samples were dropouts,
`tracker.MAX_FLAGGED`: where the bench's tracker holds). A regression model of another task gets truth_<output>
where the recording has its label (rr: truth_rr_bpm; bp: truth_sbp, truth_dbp; a custom label NAME of a dataset
file, `--data` that file: truth_NAME;
`window_targets`, as training takes them) and its MAE per recording (`target_scores`); a class model (af, quality) gets
truth_af / truth_good (1 / 0, `data.dataset_tasks.class_truth`, as training reads the rhythm or quality label) and
per recording its accuracy at p 0.5 (`report.class_metrics`), the AUROC and F1 over every window with truth and by
subject in summary.json pooled_class and one printed line (and pooled_class_held_out, its own line, over the subjects
the model was not trained on when some were, as pooled_held_out for a regression).

A recording at a sampling rate the front end cannot take is a one-line error naming the recording and the rate; one
without the model's channels (e.g. no accelerometer) is left out as `sqtool bench` leaves it out (`MissingChannel`:
one WARNING line naming it and the channels, summary.json skipped_records) and the others go on. Channels at
another rate than the PPG (an accelerometer sampled slower, as many wrist devices do) are resampled to the PPG's rate on the host, polyphase, as the
device would upsample them (`data.record.channel_matrix`; one note line, summary.json resampled_from_hz); an export
with the kit's accelerometer resampler (`export --device-acc-fs`, metadata acc_resampler) brings the accelerometer
there with that integer filter instead, from its counts at its own rate, as the device does
(`hr_spectra.acc_at_device_rate`: the samples c/<prefix>_acc_resampler.c gives); a CSV without a dataset.yaml
whose accelerometer fills every k-th row only says its rate with --acc-fs (`readers.generic.acc_rows`); channels
of a file that do not span the same time (one more than a sample short) are refused (`Record.check_spans`). NaN/Inf samples (an empty CSV cell) are
dropouts, held and flagged as the device's gaps (`hr_spectra.device_stream`, `stream.WindowStream`). A recording
shorter than one window is tiled to one (repeated end to end, `data.record.tile_record`) for a model whose export
metadata says short_records "tile" (af, bp, quality: as its training data were; summary.json tiled_from_s, one note
line); otherwise (hr, rr, exports from before that key) it, and a file of a folder the readers refuse (off the wrist
throughout: its PPG a flat line, or a channel without one finite sample, an hour on the charger, `core.NoSignal`; no
time column and no rate; a damaged file), is left out with one WARNING line naming it and why (summary.json: warnings,
skipped_records); an error, that line, only when no recording is left (more than one left out: their count and the
first reasons). One file given alone is read or refused as it is. (`sqtool.load_model(...).predict`,
handed arrays, returns a flat line's windows, all flagged.)
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_savefig, stream_filter
from sqtool.core.io import ScratchDir
from sqtool.core.metrics import CLASS_NAMES, sigmoid
from sqtool.core.progress import bar
from sqtool.core.runs import FORCE_HELP, drop_earlier, note_earlier, releases_run_dirs, shell_command, unfinish
from sqtool.core.say import also_on_stderr
from sqtool.data.tasks import PREDICT_COLUMNS
from sqtool.data.record import MissingChannel, TooShort, require_channels, resampled_note, stream_rate
from sqtool.data.preprocess import whole_hz_note
from sqtool.firmware_bench.spectral import ACC_FS_HELP, RECORDINGS_HELP
from sqtool.firmware_bench.report import class_metrics, left_out_lines, long_enough, subjects_auroc
from sqtool.data.hr_tracker import MAX_FLAGGED, track, tracker_ok

PLOTS_AUTO = 20    # by default a folder of more recordings gets no plots (`plot_count`): 2,295 took 8.7 min


def plot_count(plots: str, n: int) -> tuple[int, str | None]:
    """(how many of `n` recordings, the first ones, get a plot; the note line saying so, or None) for --plots: all,
    none, a count N, or "" (the default: all up to PLOTS_AUTO recordings, none above, with the note line). Anything
    else is a usage error (exit 2), before any recording is read (`n` 0: only checked)."""
    p = str(plots or "").strip().lower()
    if p in ("", "all", "none") or (p.isdigit() and int(p) >= 0):
        k = n if p == "all" or (p == "" and n <= PLOTS_AUTO) else 0 if p in ("", "none") else min(int(p), n)
        if p == "" and k < n:
            return k, (f"plots: none for these {n} recordings (more than {PLOTS_AUTO}: one each would take most of the "
                       "run); --plots all draws one <record>.png per recording, --plots N the first N")
        return k, None
    raise SqtoolError(f"--plots {plots}: choose all, none or a count N (the first N recordings)", code=2)


GAINS_NOTE = {"robust": "robust: each recording's samples scaled to int16 by its own spread (median, 99.9th "
                        "percentile -> 8000 counts); replay only, no device can",
              "device": "device: the export's default gains (PPG in SP Cup / TROIKA units, acc in g), fixed as on the "
                        "device",
              "counts": "1: the data are the device's int16 counts, fed as they are (what the board computes from "
                        "them)",
              "given": "counts per unit per channel (PPG sensors, then acc x, y, z), fixed as on the device"}


def parse_gains(text: str, where: str = "--gains"):
    """--gains -> `prepare_spectral`'s / `HrModel.stream`'s gains=: "robust", None (device: the export's defaults),
    a number (1: int16 counts) or a list of them, one per channel (PPG sensors, then acc x, y, z); else one line."""
    t = str(text if text is not None else "robust").strip().lower()
    if t in ("", "robust"):
        return "robust"
    if t == "device":
        return None
    try:
        g = [float(v) for v in t.split(",")]
    except ValueError:
        g = []
    if not g or not all(np.isfinite(v) and v > 0 for v in g):
        raise SqtoolError(f"{where} {text}: choose robust, device, 1 (the data are int16 device counts) or positive "
                          "numbers G,G,... (counts per unit of each channel: the PPG sensors, then acc x, y, z)",
                          code=2)
    return g[0] if len(g) == 1 else g


def check_gains_count(gains, text: str, md: dict, where: str = "--gains") -> None:
    """One line (a usage error) when --gains gives a number per channel and their count fits no recording the
    spectral model reads: its PPG sensors (1 up to the model's), then its other channels (acc x, y, z)."""
    from sqtool.data.hr_spectra import ppg_sensors, signal_channels
    if np.ndim(gains) == 0 or isinstance(gains, str):
        return
    sensors, other = ppg_sensors(md["model_cfg"]), signal_channels(md["model_cfg"]["channels"][1:])
    fits = [k + len(other) for k in range(1, len(sensors) + 1)]
    if len(gains) not in fits:
        raise SqtoolError(f"{where} {text}: {len(gains)} numbers; give one for every channel, or one per channel: "
                          f"{' or '.join(map(str, fits[::-1]))} ({', '.join(sensors + other)}: the PPG sensors the "
                          "data have, then " + (', '.join(other) if other else "nothing") + ")", code=2)


def gains_mode(gains) -> str:
    """The GAINS_NOTE key of parsed gains (`parse_gains`)."""
    return ("robust" if isinstance(gains, str) else "device" if gains is None else
            "counts" if np.ndim(gains) == 0 and float(gains) == 1.0 else "given")


CHOICES = {"c_pipeline": "c_pipeline", "pipeline": "c_pipeline", "c": "c_host_single", "tflite": "litert_int8",
           "litert": "litert_int8", "tflm": "tflm_int8", "onnx": "onnx_int8", "torch": "torch_student",
           "mcu": "mcu_m4_single"}


@dataclass
class PredictConfig:
    # what each number may be (core.config: a value outside is one line, before any work)
    RANGES: ClassVar[dict] = {"max_seconds": {"min": 0}, "acc_fs": {"above": 0}, "fs": {"above": 0}}
    model: str = field(default="", metadata={"help": "a `sqtool export` folder (metadata.json): a spectral "
                                                     "heart-rate model, or a time-domain model of any task",
                                             "required": True,
                                             "metavar": "EXPORT"})
    data: str = field(default="", metadata={"help": "a recording file or a folder of recordings (CSV, NPZ, WFDB, "
                                                    "Empatica E4 session folders; EDF through a dataset.yaml naming "
                                                    "format: edf), a dataset folder "
                                                    "or name, 'synthetic' (the embedded "
                                                    "wrist PPG with known HR that bench reads), or - (stdin: a live "
                                                    "device's CSV rows, a header first; with --fs, and fixed --gains "
                                                    "for a spectral heart-rate export)",
                                            "required": True})
    runtime: str = field(default="", metadata={"help": "c_pipeline | c | tflite (or litert) | tflm | onnx (int8; "
                                                       "onnx_float: the float ONNX) | torch | "
                                                       "mcu (Cortex-M4 on QEMU; c and mcu round as the export's "
                                                       "C as shipped: a spectral export's pipeline once, a "
                                                       "time-domain export's sq_model.h twice), or a bench runtime "
                                                       "name (e.g. "
                                                       "mcu_m33; c_window / mcu_m4_window: a time-domain export's C "
                                                       "front end too, from the device samples) (default: the C "
                                                       "pipeline when available, else c, else tflite (int8), else "
                                                       "onnx: what the export has)"})
    recordings: list[str] = field(default_factory=list, metadata={"help": RECORDINGS_HELP, "metavar": "PATTERN"})
    max_seconds: float = field(default=0.0, metadata={"help": "use only the first seconds of each recording (0 = all)"})
    gains: str = field(default="robust", metadata={
        "help": "how a spectral heart-rate model's samples become int16 device counts: robust (default: per "
                "recording, from its own spread; replay only, no device can) | device (the gains the export ships: "
                "PPG in SP Cup / TROIKA units, acc in g) | 1 (the data are the board's int16 counts already) | G,G,... "
                "(counts per unit per channel: the PPG sensors, then acc x, y, z)", "metavar": "robust|device|1|G,..."})
    fs: float | None = field(default=None, metadata={"help": "the rows' sampling rate with --data - (stdin: a live "
                                                             "device's CSV rows, no time grid to read it from)",
                                                     "metavar": "HZ"})
    acc_fs: float | None = field(default=None, metadata={"help": ACC_FS_HELP, "metavar": "HZ"})
    filter: str = field(default="", metadata={
        "help": "a time-domain model's band-pass as the stream runs it: window (zero phase over the window with its "
                "history and look-ahead) | causal (what a sample-by-sample device runs; run both to see what it "
                "costs) | none (default: the one the model was trained with, its band_phase); a spectral model's "
                "front end is fixed (window only)"})
    data_root: str = field(default="", metadata={"help": "where a bare dataset name given as --data is looked up "
                                                         "(default: $SQTOOL_DATA or ../shared/data); without "
                                                         "--data, read as --data (its old spelling, as in train)"})
    out: str | None = field(default=None, metadata={"help": "run dir (default: runs/predict/<stamp>-<model>)",
                                                    "metavar": "DIR"})
    force: bool = field(default=False, metadata={"help": FORCE_HELP})
    plots: str = field(default="", metadata={"help": f"all | none | N (the first N recordings): which recordings "
                                                     f"get a <record>.png (default: all up to {PLOTS_AUTO} "
                                                     f"recordings, none above, said in one note line: a plot "
                                                     f"takes longer than its recording's prediction)",
                                             "metavar": "all|none|N"})
    progress: bool = field(default=True, metadata={"help": "show progress bars on stderr (the front end and the "
                                                           "files, per recording; the one line per recording is "
                                                           "always printed)"})


def register(sub, name: str, helptext: str) -> None:
    from sqtool.core import add_config_args
    p = sub.add_parser(name, help=helptext, description=__doc__.split("\n\n")[0])
    add_config_args(p, PredictConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from sqtool.core import resolve_config
    from sqtool.firmware_bench.cli import data_from_flags
    from sqtool.core.runs import check_required
    cfg = data_from_flags(resolve_config(PredictConfig, args))   # --data-root alone: --data
    check_required("predict", cfg)                    # a usage error (exit 2), before anything is read
    if cfg.data == "-":                               # a live device's rows: each window printed as it completes
        from sqtool.firmware_bench.live import predict_live
        predict_live(cfg)
        return 0
    print_results(predict(cfg), cfg.recordings)
    return 0


def print_results(res: dict, recordings=()) -> None:
    """stdout of `sqtool predict`: warnings, one line per recording, the firmware's cost, where the files are,
    and the next command."""
    for w in res["warnings"] + res.get("notes", []):
        print(w)
    for w in res["warnings"]:                           # and where a CI log keeps what went wrong, as bench does
        also_on_stderr(w)
    for r in res["recordings"]:
        m = r.get("metrics") or {}
        acc = (f", MAE {_mae_text(m, res.get('truth_units') or {})} vs truth over {m['n']} windows" +
               (f" ({r['flagged_scored']} flagged included, as sqtool bench scores)" if r.get("flagged_scored")
                else "")
               if m.get("mae") is not None else
               f", {m['positives']} of {m['n']} windows {(res.get('pooled_class') or {}).get('positive')} by the "
               f"label, {100 * m['accuracy']:.1f} % right at p 0.5" if m.get("accuracy") is not None else "")
        what = ("every window flagged: nothing scored" if not r["scored_windows"] else
                f"HR {r['hr_median']:.1f} BPM median" if r.get("hr_median") is not None else
                ", ".join(f"{k} {v:.3g} median" for k, v in r["medians"].items()))
        left = " (left out of the medians)" if r["flagged_windows"] and r["scored_windows"] else ""
        gaps = f" (gaps: {r['gaps']})" if r.get("gaps") else ""
        nop = f", {r['no_pulse_windows']} no pulse" if r.get("no_pulse_windows") else ""
        print(f"{r['record_id']}: {r['windows']} windows, {what}, {r['flagged_windows']} flagged{left}{nop}{gaps}{acc} "
              f"-> {r['csv']}")
    pool = res.get("pooled")
    if pool:
        print(f"all {pool['recordings']} recordings with a MAE: MAE {_mae_text(pool['pooled'], res.get('truth_units') or {})} "
              f"pooled over {pool['windows']} windows (mean of recordings {_mae_text(pool['mean_of_recordings'], res.get('truth_units') or {})})")
    held = res.get("pooled_held_out")
    if held:
        units = res.get("truth_units") or {}
        print(f"held-out subjects only ({held['recordings']} recordings of subjects not seen in training): MAE "
              f"{_mae_text(held['pooled'], units)} pooled over {held['windows']} windows (mean of recordings "
              f"{_mae_text(held['mean_of_recordings'], units)}): the figure to judge the model by")
    pc = res.get("pooled_class")
    if pc:
        print(f"all {pc['recordings']} recordings with a '{pc['label']}' label: " + _class_text(pc))
    hc = res.get("pooled_class_held_out")
    if hc:
        print(f"held-out subjects only ({hc['recordings']} recordings of subjects not seen in training): "
              + _class_text(hc) + ": the figure to judge the model by")
    fw = res.get("firmware")
    if fw:
        fe = fw.get("front_end_instructions_per_window")
        print(f"firmware ({fw.get('cpu')}): {fw.get('instructions_per_inference', 0):,.0f} instructions / window"
              + (f" (front end {fe:,.0f})" if fe is not None else "") + ", "
              f"flash {fw.get('flash_bytes', 0) / 1024:.1f} KB, RAM {fw.get('ram_bytes', 0) / 1024:.1f} KB")
    print(f"\npredict ({res['runtime']}) -> {res['run_dir']}")
    if "decoder" in res and res["runtime"] != "c_pipeline" and res.get("runtime_choice") != "asked for":
        print(f"runtime {res['runtime']}, not the C pipeline (the default): {res['runtime_choice']}")
    n, k = len(res["recordings"]), res.get("plots", len(res["recordings"]))
    print(f"results: one <record>.csv {'and .png ' if k == n else ''}per recording"
          + ("" if k == n else " (no .png plots)" if not k else f" (the first {k} with a .png plot)")
          + f", summary.json in {res['run_dir']}")
    if res.get("task", "hr") == "hr":
        bench = shell_command("bench", "--model", res["model_dir"], "--data", res["data"],
                              *(("--recordings", ",".join(recordings)) if recordings else ()),
                              *(("--acc-fs", f"{res['acc_fs']:g}") if res.get("acc_fs") else ()))
        print(f"next: {bench}   (the same recordings on every "
              "runtime: accuracy, latency, memory)")
    elif (Path(res["model_dir"]) / "c" / "sq_window.c").is_file():   # its front end in C too: the whole loop
        print(f"next: build {res['model_dir']}/c/*.c into the firmware: device samples -> sq_window_push -> "
              "sq_model_run (the loop in sq_window.h)")
    elif "c/sq_model.c" in res.get("network_files", ["c/sq_model.c"]):   # another task's model ships as is
        print(f"next: build {res['model_dir']}/c/*.c into the firmware (API in sq_model.h; its accuracy: the "
              "quantize run's report.md)")
    elif res.get("model_family") in ("resp_spec", "beat_trees"):   # a Python front end: the app's to port
        print(f"next: deploy {' or '.join(str(Path(res['model_dir']) / f) for f in res['network_files'])} with the "
              f"preprocessing, front end and output reading of {Path(res['model_dir']) / 'INTEGRATION.md'} "
              "(steps 1-10: the network reads the front end's output, not the samples)")
    else:                                              # an export without C: its int8 files, or a C export
        print(f"next: deploy {' or '.join(str(Path(res['model_dir']) / f) for f in res['network_files'])}, or "
              "export with --target c for the firmware's C (its accuracy: the quantize run's report.md)")


def csv_cell(column: str, v) -> str:
    """One value of a predict CSV: empty where not finite, flagged / no_pulse as 0 / 1, the rest to 3 decimals."""
    return "" if not np.isfinite(v) else str(int(v)) if column in ("flagged", "no_pulse") else f"{float(v):.3f}"


def _mae_text(m: dict, units: dict) -> str:
    """'2.31 BPM' (heart rate), '1.80 breaths/min' (one output), 'sbp 8.10, dbp 5.20 mmHg' (more)."""
    outs = [k[len("mae_"):] for k in m if k.startswith("mae_") and f"n_{k[len('mae_'):]}" in m]   # target_scores
    if not outs:
        return f"{m['mae']:.2f} BPM"
    unit = units.get(outs[0], "")
    return ", ".join(f"{k} " * (len(outs) > 1) + f"{m['mae_' + k]:.2f}" for k in outs) + (f" {unit}" if unit else "")


def _safe(name: str) -> str:
    """A file stem: letters (any script), digits, _ . - kept; the rest one '_'."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_.") or "recording"


def _stems(recs) -> list[str]:
    """One file stem per recording: its id, with its dataset in front only where two recordings of the run share
    an id (two datasets' s01); a remaining clash gets '_'."""
    ids = [_safe(r.record_id) for r in recs]
    out, used = [], set()
    for r, stem in zip(recs, ids):
        if ids.count(stem) > 1:
            stem = _safe(f"{r.record.dataset}_{r.record_id}")
        while stem in used:
            stem += "_"
        used.add(stem)
        out.append(stem)
    return out


NO_PULSE_NOTE = ("1 = no pulse: the PPG's spectrum has been as flat as noise over the last 32 windows (70 s): off "
                 "the wrist or no perfusion, e.g. a watch lying on a table reading noise (the firmware's no_pulse, "
                 "`export.pipeline.flatness_q8`); a separate output: such a window may still be scored (flagged 0), "
                 "so drop no_pulse == 1 windows too before reading a heart rate; 0 in the first 31 windows; an "
                 "export older than the detector: 0")
METRICS_NOTE = ("metrics (MAE, RMSE, bias, ...) vs truth_bpm: over every window with truth, flagged windows included, "
                "as sqtool bench scores (bench.json per_record / per_subject of the same runtime: the same numbers): a "
                "flagged window's hr_bpm is the decoder's prediction (spectral) or the network's reading of held "
                "samples (time-domain); the medians leave flagged windows out")


FED_NOTE = ("channels_fed, per recording: {model input row: the recording's channel fed to it}; a spectral model's "
            "ppg rows read the model's frontend ppg_sensors the recording has, in that order, at the export's PPG "
            "sensor count (an extra sensor left out, a missing second repeating the first); the other rows the "
            "recording's channels of their names (acc_x, acc_y, acc_z as its reader names them)")


TARGETS_NOTE = ("metrics (mae_<output>, mae = their mean, n = windows with truth) vs the truth_<output> columns: over "
                "every window with truth, flagged windows included, as heart rate's; the medians leave flagged "
                "windows out")

CLASS_NOTE = ("metrics (a class: n = windows with truth, positives, accuracy and F1 at p 0.5, auroc where the "
              "recording's windows hold both classes) vs the truth_<class> column; pooled_class: over every window "
              "with truth, AUROC by subject over the subjects with both classes; pooled_class_held_out: the same over the "
              "subjects not seen in training (when some scored subjects were)")


TIME_NOTE = ("end of the window, ISO 8601 wall-clock time: the recording's start_time (its time column's first "
             "row: the input's UTC offset, Z for epoch numbers, none for naive local times) + time_s")


def wall_clock(start: str, t: np.ndarray) -> list[str]:
    """ISO 8601 times `t` seconds after `start` (an ISO 8601 time: Record.meta["start_time"]), in start's own form:
    its UTC offset ('Z'), or none."""
    import pandas as pd

    from sqtool.data.readers.generic import iso_time
    t0 = pd.Timestamp(start)
    return [iso_time(t0 + pd.Timedelta(microseconds=round(s * 1e6))) for s in np.asarray(t, np.float64)]


def _plot(path: Path, rid: str, t: np.ndarray, o: dict, truth: np.ndarray | None, runtime: str,
          columns: dict, start: str | None = None, targets: dict | None = None) -> None:
    """Heart rate (with the decoder's interval, or the tracked HR) and the truth; another task's outputs over time,
    each with its truth (`targets`) where the recording has one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 3.4))
    if "lo_bpm" in o or "hr_tracked_bpm" in o:                           # heart rate: spectral, or tracked
        if "lo_bpm" in o:                                                 # spectral: the decoder's interval
            ax.fill_between(t, o["lo_bpm"], o["hi_bpm"], color="tab:blue", alpha=0.2, lw=0, label="90 % interval")
        ax.plot(t, o["hr_bpm"], color="tab:blue", lw=1.2, label=f"HR ({runtime})")
        if "hr_tracked_bpm" in o:                                         # time-domain: the tracked HR beside it
            ax.plot(t, o["hr_tracked_bpm"], color="tab:orange", lw=1.0, label="tracked")
        fl = o["flagged"].astype(bool)
        if fl.any():
            ax.plot(t[fl], o["hr_bpm"][fl], "x", color="tab:red", ms=4,
                    label="flagged (not scored)" if "lo_bpm" in o else "flagged (dropouts: tracker held)")
        if truth is not None and np.isfinite(truth).any():
            ax.plot(t, truth, "k-", lw=1.0, label="truth")
        ax.set_ylabel("BPM")
    else:
        for k in columns:
            if k in o:
                ax.plot(t, o[k], lw=1.2, label=f"{k} ({runtime})")
            if k in (targets or {}):
                ax.plot(t, targets[k], "k--", lw=1.0, label=f"{k} truth")
        ax.set_ylabel(", ".join(k for k in columns if k in o))
    ax.set_xlabel(f"time (s from {start}, end of window)" if start else "time (s, end of window)")
    ax.set_title(rid, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)


def spectral_runtime(runtime: str, where: str = "--runtime") -> str:
    """The spectral runtime a user's name asks for (`CHOICES`: c -> c_host_single, ...); '' stays '' (the
    default, chosen per export); an unknown name is one line starting with `where`."""
    from sqtool.firmware_bench.spectral import RUNTIMES
    name = CHOICES.get(runtime, runtime) if runtime else ""
    if name and name not in RUNTIMES:
        raise SqtoolError(f"{where} {runtime}: unknown (choose c_pipeline, c, tflite (litert), tflm, onnx, "
                          "onnx_float, torch or mcu; none = the default)")
    return name


def choose_runtime(cfg: PredictConfig, art, rates: list[tuple[str, float]]) -> tuple[str, str]:
    """(runtime name, note) for recordings (or a stream, `sqtool.api.HrStream`) at these rates: [(name, Hz)]."""
    import shutil
    if cfg.runtime:
        return spectral_runtime(cfg.runtime), "asked for"
    if not art.has(art.c_name("pipeline.c")):
        name, what = default_runtime(art)
        return name, f"the export has no C pipeline ({art.c_name('pipeline.c')}): {what} + Python front end/decoder"
    if shutil.which("gcc") is None:
        return "c_host_single", "no gcc"
    fs_mhz = art.c_define("pipeline_cfg.h", "PL_FS_IN_MHZ")
    if fs_mhz is not None:
        fs = fs_mhz / 1000.0
        other = [(name, f) for name, f in rates if abs(f - fs) > 1e-9]
        if other:
            return "c_host_single", (f"{other[0][0]} is at {other[0][1]:g} Hz, the C pipeline was exported "
                                     f"for {fs:g} Hz: C network + Python front end/decoder")
    return "c_pipeline", "default"


NETWORK_DEFAULTS = (("c_host_single", "c/{prefix}_model.c", "C network"),       # export --prefix: its own
                    ("litert_int8", "model_int8.tflite", "LiteRT int8 network (no C in the export)"),
                    ("onnx_int8", "model_int8.onnx", "onnxruntime int8 network (no C, no TFLite in the export)"),
                    ("litert_float", "model_float.tflite", "LiteRT float network (a float-only export)"),
                    ("onnx_float", "model_float.onnx", "onnxruntime float network (a float-only export)"))


def network_defaults(art) -> list[tuple[str, str, str]]:
    """NETWORK_DEFAULTS with the export's C under its prefix (`Artifacts.c_prefix`)."""
    return [(name, f.format(prefix=art.c_prefix), what) for name, f, what in NETWORK_DEFAULTS]


def default_runtime(art, c: str = "c_host_single") -> tuple[str, str]:
    """(runtime, what it is) the network runs on when --runtime is not given and the C pipeline is not used: the
    first of `NETWORK_DEFAULTS` the export's manifest has (c, tflite int8, onnx int8, then a float-only export's
    tflite, onnx); else one line. `c`: the runtime of the export's C (a time-domain export's rounds twice)."""
    files = network_defaults(art)
    for name, f, what in files:
        if art.has(f):
            return (c if name == "c_host_single" else name), what
    raise SqtoolError(f"export {art.export_dir} has none of {', '.join(f for _, f, _ in files)} (its "
                      "manifest.json): export with --target c, tflite or onnx")


@releases_run_dirs
def predict(cfg: PredictConfig, records=None) -> dict:
    """Run `sqtool predict`; `records` (a list of Record) replaces --data when given. Writes the run folder
    (cfg.out, else runs/predict/<stamp>-<model>) and returns its summary.json: run_dir, runtime, and per recording
    (`recordings`) its csv file name, windows and medians. The run folder's lock is released when the call
    returns (as the CLI does), so another run may write there; per-window arrays without files:
    `sqtool.load_model(export).predict(ppg, acc, fs)`."""
    from sqtool.core import atomic_write_text, make_run_dir, save_config, write_metrics
    from sqtool.core.io import sync_all
    from sqtool.firmware_bench import spectral as S
    from sqtool.firmware_bench.cli import check_counts

    check_counts(cfg, "predict")
    if cfg.out:
        from sqtool.core.runs import check_out_dir
        check_out_dir("predict", cfg.out, cfg.force)      # before the data and the front end
    if not cfg.model:
        raise SqtoolError("predict: --model EXPORT is required (an `sqtool export` folder (any task's model)) "
                          "(see sqtool predict --help)", code=2)
    plot_count(cfg.plots, 0)                       # a wrong --plots: one line before the data
    from sqtool.firmware_bench.stream import FILTERS
    if cfg.filter and cfg.filter not in FILTERS:
        raise SqtoolError(f"--filter {cfg.filter}: choose one of {', '.join(FILTERS)}", code=2)
    art, md, spectral = load_export(cfg)
    gains = parse_gains(cfg.gains)                 # a wrong --gains: one line before the data
    if spectral:
        check_gains_count(gains, cfg.gains, md)
    if not spectral:                               # its stream normalises each window: no device gains to set
        time_domain_gains(gains, cfg.gains, art)
    if records is None and cfg.data != "-" and cfg.fs is not None:   # it was read nowhere: never silently
        raise SqtoolError(f"--fs {cfg.fs:g} is the rate of --data - (stdin) rows; a file's rate comes from its time "
                          "column or its own header (NPZ fs, WFDB, EDF, E4), or a dataset.yaml's fs: for a CSV "
                          "without a time column", code=2)
    if records is None and cfg.data == "-":        # stdin: a live device's rows (`live.predict_live`)
        from sqtool.firmware_bench.live import predict_live
        return predict_live(cfg)
    left_out: list[str] = []                       # a folder's files the readers refuse: left out, as a short one
    excluded: list[str] = []                       # a dataset file's exclude list (TROIKA's DATA_S04_T01): said
    if records is None:
        if not cfg.data:                           # as run_bench: --data-root only looks a --data name up
            raise SqtoolError("--data is required (a recording file or a folder of recordings)")
        if cfg.data == "synthetic":                # the embedded recordings `bench --data synthetic` reads
            S.reader_options(cfg.acc_fs, "synthetic")
            S.resolve_data("synthetic", recordings=cfg.recordings)             # --recordings: one line
            records, data = [S.cut(r, cfg.max_seconds) for r in S.synthetic_records()], "synthetic"
        else:
            path = S.resolve_data(cfg.data, cfg.data_root, "predict", cfg.recordings)
            records = S.iter_load(path, cfg.max_seconds, log=excluded.append, left_out=left_out,   # one at a time:
                                  options=S.reader_options(cfg.acc_fs, path))   # a file the model refuses (its
            data = str(getattr(path, "path", path))                             # rate) stops the read there
    else:                                          # made in code: checked here, as a reader checks its own
        S.reader_options(cfg.acc_fs, "records")
        records, data = [S.cut(checked_record(r), cfg.max_seconds) for r in records], "records"
    prepared = (prepare_spectral(cfg, art, records, left=left_out, gains=gains) if spectral else
                prepare_time_domain(cfg, art, records, left=left_out))
    run_dir = make_run_dir("predict", str(md.get("model", "model")), cfg.out, cfg.force, clear_result=False)
    # a --force'd folder's earlier predict: its CSVs and plots, kept (EARLIER) past a kill of this run
    earlier = note_earlier(run_dir, listed_outputs(run_dir), EARLIER, (".csv", ".png"))
    unfinish(run_dir, "predict")                   # its summary.json: it lists CSVs this run rewrites
    save_config(run_dir, cfg)
    # the runtimes' host builds (compiled C) go in a temporary folder, removed on return, error or Ctrl-C: the run
    # folder holds the results only
    with ScratchDir("sqtool-predict-") as work:
        outs, firmware, columns = (run_spectral(art, prepared, Path(work), progress=cfg.progress) if spectral else
                                   run_time_domain(art, prepared, Path(work)))
    name, why, recs = prepared["runtime"], prepared["why"], prepared["recs"]

    win = float(md["window_s"])
    plotted, plot_note = plot_count(cfg.plots, len(recs))          # the first `plotted` recordings get a PNG
    rows, scored, written, class_windows = [], set(), set(), []     # written: the CSVs' columns
    for r, o, stem, (_, chans), fed in bar(list(zip(recs, outs, _stems(recs), prepared["streams"], prepared["fed"])),
                                           desc="files", enabled=cfg.progress, unit="rec"):
        t = r.t0 + win
        truth = r.truth if r.truth is not None and np.isfinite(r.truth).any() else None
        targets = getattr(r, "targets", None) or {}                     # another regression task's truth
        classes = getattr(r, "classes", None)                           # a class task's 1 / 0 truth
        if classes is not None and not np.isfinite(classes).any():
            classes = None
        if classes is not None:                      # its probability column (p_af) beside truth_af, plotted with it
            prob = next(iter(columns))
            targets = {prob: classes}
        start = (getattr(r.record, "meta", None) or {}).get("start_time")      # the input's wall clock, if any
        cols = {"time_s": t, **({"time": wall_clock(start, t)} if start else {}), **output_values(o, columns)}
        if truth is not None:
            cols["truth_bpm"] = truth
        cols.update({f"truth_{k[len('p_'):] if classes is not None else k}": y for k, y in targets.items()})
        if truth is not None or targets:
            scored.add(r.subject)
        written.update(cols)
        lines = [",".join(cols)]
        for i in range(len(t)):
            lines.append(",".join((v[i] if k == "time" else csv_cell(k, v[i])) for k, v in cols.items()))
        atomic_write_text(run_dir / f"{stem}.csv", "\n".join(lines) + "\n", many=True)   # synced once, below
        plot = f"{stem}.png" if len(rows) < plotted else None
        if plot:
            _plot(run_dir / plot, r.record_id, t, o, truth, name, columns, start, targets)
        d = {"record_id": r.record_id, "subject": r.subject, "source": str(getattr(r.record, "source", "")),
             **({"start_time": start} if start else {}),
             "fs_in": r.fs_in, "channels_fed": fed, **resampled_from(r.record, chans), **gaps_of(r),
             "seconds": r.seconds,
             "windows": len(t),
             "flagged_windows": int(np.sum(o["flagged"])),
             **({"no_pulse_windows": int(np.sum(o["no_pulse"]))} if "no_pulse" in o else {}),
             **recording_gains(r, md, gains),
             "csv": f"{stem}.csv", "plot": plot,
             "truth": truth is not None or bool(targets), **window_summary(o, columns)}
        if getattr(r, "tiled_from_s", None) is not None:                 # shorter than the window: tiled to it
            d["tiled_from_s"] = r.tiled_from_s
        if truth is not None:
            d["metrics"] = S.hr_scores(o["hr_bpm"], truth)
        elif classes is not None:             # p - 0.5: a score ordered as p, its sign the class at p 0.5
            d["metrics"] = class_metrics(o[prob] - 0.5, classes)
            class_windows.append((d["subject"], o[prob] - 0.5, classes))
        elif targets:
            d["metrics"] = target_scores(o, targets)
        if truth is not None or (targets and classes is None):          # the flagged windows the MAE counts
            has = np.isfinite(truth) if truth is not None else np.any([np.isfinite(y) for y in targets.values()], 0)
            d["flagged_scored"] = int(np.sum(np.asarray(o["flagged"], bool) & has))
        rows.append(d)
    from sqtool.firmware_bench.provenance import model_provenance, provenance_warnings
    summary = {"model": md.get("model"), "task": md.get("task", "hr"),
               "model_family": (md.get("model_cfg") or {}).get("family"), "model_dir": str(art.export_dir), "data": data,
               **({"acc_fs": cfg.acc_fs} if cfg.acc_fs else {}),
               **({"gains": GAINS_NOTE[gains_mode(gains)]} if spectral else {}),
               "provenance": model_provenance(art), "runtime": name,
               **({} if spectral else {"filter": cfg.filter}),
               "runtime_choice": why, "run_dir": str(run_dir), "plots": plotted, "recordings": rows,
               "channels_fed": FED_NOTE,
               "columns": {"time_s": "end of the window (s from the recording start)",
                           **({"time": TIME_NOTE} if any("start_time" in d for d in rows) else {}), **columns,
                           "flagged": ("1 = not scored (over half the window's samples were dropouts, or its PPG "
                                       "quiet: off the wrist): hr_bpm, lo_bpm, hi_bpm and confidence are the "
                                       "decoder's prediction only, no reading (held a few minutes, then drifting "
                                       "to the middle of the grid); filter on flagged == 0; the medians leave "
                                       "these windows out" if spectral else flagged_note(columns)),
                           "no_pulse": NO_PULSE_NOTE,
                           "truth_bpm": "reference HR (labelled data only)",
                           **{f"truth_{k}": f"reference {k} (labelled data only: the recording's '{lab}' label per "
                                            "window, as the model's training takes it)"
                              for k, lab in truth_labels(md).items()},
                           **({f"truth_{next(iter(columns))[len('p_'):]}":
                               f"reference class (labelled data only: 1 = {CLASS_NAMES[md['task']][1]}, 0 = "
                               f"{CLASS_NAMES[md['task']][0]}, from the recording's '{CLASS_TRUTH[md['task']]}' label "
                               "per window, as the model's training takes it)"}
                              if md.get("task") in CLASS_TRUTH else {})}}
    summary["columns"] = {k: v for k, v in summary["columns"].items() if k in written}    # what the CSVs have
    summary["network_files"] = [f for _, f, _ in network_defaults(art) if art.has(f)]      # what the export ships
    if any(d["truth"] for d in rows):
        summary["metrics_note"] = (METRICS_NOTE if md.get("task", "hr") == "hr" or spectral else
                                   CLASS_NOTE if md.get("task") in CLASS_TRUTH else TARGETS_NOTE)
        truths = {k[len("truth_"):] for k in written if k.startswith("truth_")}
        summary["truth_units"] = {k: u for k, u in zip(md.get("outputs") or [], md.get("units") or [])
                                  if k in truths or (k == "hr_bpm" and "truth_bpm" in written)}
    if spectral:
        summary["decoder"] = prepared["decoder_note"]
    if md.get("training_data"):                                           # what the model saw (export metadata)
        summary["model_training_data"] = md["training_data"]
    pool = pooled_scores([d.get("metrics") or {} for d in rows])
    if pool:
        summary["pooled"] = pool
    if class_windows:                         # a class: AUROC over every window with truth, and by subject
        summary["pooled_class"] = pooled_class(class_windows, md["task"])
    seen, warns = provenance_warnings(art, scored, {r.subject for r in recs})
    summary["seen_in_training"], summary["warnings"] = seen, left_out_lines(prepared["short"]) + warns
    if seen and pool and (held := pooled_scores([d.get("metrics") or {} for d in rows if d["subject"] not in seen])):
        summary["pooled_held_out"] = held                  # the pool above mixes in subjects seen in training
    if seen and class_windows and (held_c := [p for p in class_windows if p[0] not in seen]):
        summary["pooled_class_held_out"] = pooled_class(held_c, md["task"])     # the same, for a class model
    if prepared["short"]:
        summary["skipped_records"] = prepared["short"]
    tiled = [d for d in rows if "tiled_from_s" in d]
    notes = ([tiled_line(tiled, win)] if tiled else []) + ([plot_note] if plot_note else [])
    if not spectral and why.startswith("default") and name != TIME_DOMAIN["c"]:      # the export has no C
        notes.append(f"runtime {name}: {why}")
    notes += [n for n in [resampled_note(prepared["streams"], S.has_acc_resampler(md), S.acc_resampler_fs(md))] if n]   # channels at
                                                                                  # another rate than the PPG
    notes += [n for n in [whole_hz_note([r for r, _ in prepared.get("streams", [])])] if n]  # a clock off its rate
    notes += [f"{line}; its dataset file's exclude list, for training: give the recording's file as --data to "
              "predict it" for line in excluded]
    written = {f for d in rows for f in (d["csv"], d["plot"]) if f}
    stale = sorted(earlier - written)
    if stale:
        notes.append(f"removed {len(stale)} file{'s' if len(stale) != 1 else ''} of the earlier predict run in "
                     f"{run_dir} that this one did not rewrite ({', '.join(stale[:4])}{', ...' if len(stale) > 4 else ''})"
                     ": every CSV there is this run's")
    if notes:
        summary["notes"] = notes
    if firmware is not None:
        summary["firmware"] = firmware
    sync_all()                                     # the CSVs on disk before the summary that lists them
    write_metrics(run_dir, summary, name="summary.json")
    drop_earlier(run_dir, written, EARLIER)        # after the new summary: a kill before leaves them in EARLIER
    return summary


def load_export(cfg: PredictConfig, art=None) -> tuple:
    """(Artifacts, metadata as predict reads it, spectral?) of cfg.model (`art`: its Artifacts, already loaded),
    checked before any recording is read: a model predict cannot run (a spectral one of another task than hr, a
    pretrained encoder), a --filter it does not take, an unknown --runtime: one line each. cfg.filter set to its
    default (as the model was trained) when ''."""
    from sqtool.firmware_bench import runtimes as R
    if art is None:                                # the exported files; a source only if a runtime reads it
        art = R.load_artifacts(cfg.model)
    md = R.resp_view(art.metadata)                 # rr_spec: read as its decoded rr_bpm (runtimes.FrontEnd)
    cfg.filter = cfg.filter or stream_filter(md)  # default: as the model was trained
    spectral = R.is_spectral(md)
    if spectral and cfg.filter != "window":
        raise SqtoolError(f"--filter {cfg.filter}: {art.export_dir} is a spectral model, whose fixed-point front end "
                          "(its causal band-pass included) is part of the model: --filter is for time-domain models")
    R.check_front_filter(md, cfg.filter, art.export_dir)
    if spectral and md.get("task") != "hr":
        raise SqtoolError(f"{art.export_dir} is a spectral '{md.get('task')}' model: sqtool predict reads heart "
                          "rate from spectral models")
    if md.get("task") == "pretrain":
        raise SqtoolError(f"{art.export_dir} is a pretrained encoder (task pretrain, no outputs): fine-tune it on a "
                          "task first (sqtool train finetune)")
    if spectral:                                   # an unknown --runtime: one line before any recording is read
        spectral_runtime(cfg.runtime)
    else:
        time_domain_runtime(cfg, art)
    return art, md, spectral


# a --force'd folder's earlier predict files (core.runs.note_earlier), from when this run removes that run's
# summary.json until it writes its own: what the --force run redoing a killed one removes too; hidden
EARLIER = ".earlier_predict.json"


def listed_outputs(run_dir: Path) -> set[str]:
    """The per-recording files (CSV, plot) an earlier predict run's summary.json in `run_dir` lists; empty without
    one (a new folder, another tool's files, an unreadable summary: nothing removed)."""
    try:
        rows = json.loads((run_dir / "summary.json").read_text()).get("recordings") or []
        return {str(d.get(k)) for d in rows if isinstance(d, dict) for k in ("csv", "plot") if d.get(k)}
    except (OSError, ValueError, AttributeError):
        return set()


def _class_text(pc: dict) -> str:
    """'AUROC a, F1 f, accuracy p % over n windows (k AF); AUROC by subject ...' of a `pooled_class` block."""
    by = pc.get("by_subject") or {}
    return (f"AUROC {'-' if pc['auroc'] is None else format(pc['auroc'], '.3f')}, F1 {pc['f1']:.3f}, accuracy "
            f"{100 * pc['accuracy']:.1f} % over {pc['n']} windows ({pc['positives']} {pc['positive']})"
            + (f"; AUROC by subject {by['mean']:.3f} over the {by['subjects']} of {by['of']} subjects with both "
               "classes" if by else ""))


def pooled_class(parts: list[tuple[str, np.ndarray, np.ndarray]], task: str) -> dict:
    """A class model over the recordings with its label, `parts` (subject, (W,) score, (W,) 1 / 0 truth) each:
    `report.class_metrics` over every window, and AUROC by subject (`report.subjects_auroc`), the label named."""
    subj = np.concatenate([[s] * len(y) for s, _, y in parts])
    score, y = np.concatenate([p for _, p, _ in parts]), np.concatenate([y for _, _, y in parts])
    per = {s: class_metrics(score[subj == s], y[subj == s]) for s in dict.fromkeys(subj.tolist())}
    return {"recordings": len(parts), "label": CLASS_TRUTH[task], "positive": CLASS_NAMES[task][1],
            **class_metrics(score, y), "by_subject": subjects_auroc(per)}


def resampled_from(record, channels) -> dict:
    """{"resampled_from_hz": {channel: its own rate}} for the streamed channels at another rate than the recording's
    PPG (`record.stream_rate`: resampled to fs_in on the host), else {}."""
    other = stream_rate(record, channels)[1]
    return {"resampled_from_hz": other} if other else {}


def gaps_of(rec) -> dict:
    """{"gaps": where} for a prepared recording whose Record holds NaN / Inf samples (`Record.gap_text`: by channel,
    and a slower stream written into a faster file's rows named as such, with the fix; said before its signals were
    `released`), else {}: why its windows were held or flagged."""
    text = getattr(rec, "gaps", None)
    if text is None:
        text = rec.record.gap_text() if hasattr(rec.record, "gap_text") else ""
    return {"gaps": text} if text else {}


def tiled_line(tiled: list[dict], window_s: float) -> str:
    """The note on the recordings shorter than one window that were tiled to it (an export whose metadata says
    short_records "tile", as its training data were)."""
    e = ", ".join(f"{d['record_id']} {d['tiled_from_s']:.1f} s" for d in tiled[:3])
    return (f"note: {len(tiled)} recording{'s' if len(tiled) > 1 else ''} shorter than the {window_s:g} s window "
            f"tiled to it (repeated end to end, one window each, as the model's training data were: metadata "
            f"short_records 'tile'; e.g. {e})")


def flagged_note(columns: dict) -> str:
    """What a time-domain model's flagged column says (summary.json "columns"), its columns `columns`."""
    return (f"1 = {100 * MAX_FLAGGED:g} % or more of the window's samples were dropouts (held at the last good sample)"
            + ("; hr_tracked_bpm holds there" if "hr_tracked_bpm" in columns else "")
            + "; the medians leave these windows out")


def time_domain_gains(gains, text: str, art) -> None:
    """One line (a usage error) for fixed --gains on a time-domain export: its stream normalises each window."""
    if gains != "robust":
        raise SqtoolError(f"--gains {text}: {art.export_dir} is a time-domain model, whose stream normalises "
                          "each window itself (the model's contract): the scale of the samples does not reach "
                          "it; --gains is for spectral heart-rate models", code=2)


def output_values(o: dict, columns: dict) -> dict:
    """A recording's per-window outputs as its CSV holds them, in the CSV's order: the model's columns (`columns`,
    run_spectral's or run_time_domain's), flagged, and no_pulse where the model has it; (W,) arrays each."""
    return {**{k: o[k] for k in columns if k in o}, "flagged": o["flagged"],
            **({"no_pulse": o["no_pulse"]} if "no_pulse" in o else {})}


def window_summary(o: dict, columns: dict) -> dict:
    """A recording's summary over its windows NOT flagged (a flagged window's value is no reading: the spectral
    decoder's prediction, which drifts to the middle of its grid over a long gap; a time-domain model's read of
    held samples): scored_windows, medians of the output columns, hr_median / hr_min / hr_max and
    confidence_median / p_quality_median where the model has them; None (medians: none) when every window is
    flagged."""
    ok = np.asarray(o["flagged"]) == 0                                    # (W,) the windows summarised
    kept = {}                                                             # column -> its finite scored values
    for k in (*columns, "hr_bpm", "confidence", "p_quality"):
        if k in o and k not in kept:
            v = np.asarray(o[k], np.float64)[ok]
            kept[k] = v[np.isfinite(v)]
    d = {"scored_windows": int(ok.sum()),
         "medians": {k: float(np.median(kept[k])) for k in columns if k in o and kept[k].size}}
    if "hr_bpm" in o:
        hr = kept["hr_bpm"]
        d.update({f"hr_{m}": (float(f(hr)) if hr.size else None) for m, f in
                  (("median", np.median), ("min", np.min), ("max", np.max))})
    for k in ("confidence", "p_quality"):
        if k in o:
            d[f"{k}_median"] = float(np.median(kept[k])) if kept[k].size else None
    return d


def recording_gains(rec, md: dict, gains) -> dict:
    """{"gains": counts per unit of each channel a spectral recording was fed with} for fixed gains (`parse_gains`:
    device, 1, numbers; `hr_spectra.device_gains`), else {} (robust: its own, or a time-domain model's)."""
    from sqtool.data.hr_spectra import device_gains
    if isinstance(gains, str) or not hasattr(rec, "sensors_recorded"):
        return {}
    g = device_gains(gains, md["model_cfg"], rec.fs_in, len(rec.channels), rec.sensors_recorded)
    return {"gains": dict(zip(rec.channels, (float(v) for v in g)))}


def checked_record(record):
    """A Record handed to predict() (not read by a reader, which checks its own): `Record.validate` (1-D real
    channels, rates, some finite sample) and `Record.check_spans` (channels of one length / duration)."""
    from sqtool.data.record import Record
    if not isinstance(record, Record):
        raise SqtoolError(f"predict: records must be sqtool.data.record.Record, got {type(record).__name__}")
    return record.validate().check_spans()


def _firmware(rt, name: str) -> dict | None:
    """What the network costs on the device (mcu runtimes; mcu_m4_window: with its C front end), from the runtime's
    info."""
    if not name.startswith("mcu_"):
        return None
    info = rt.info()
    return {k: info[k] for k in ("cpu", "board", "instructions_per_inference", "front_end_instructions_per_window",
                                 "flash_bytes", "ram_bytes", "stack_high_water_bytes") if info.get(k) is not None}


# ----------------------------------------------------------------------------- spectral models

def prepare_spectral(cfg: PredictConfig, art, records, tables: dict | None = None, left: list[str] = (),
                     gains="robust") -> dict:
    """Device samples and front-end codes per recording (one-line errors: channel, rate; a recording shorter than
    one window is left out with a warning), the runtime. With run_spectral, what predict does per recording of a
    spectral model; `sqtool.load_model(...).predict` runs the same two on arrays. tables: the front end's tables
    per input rate (`spectral.prepare`'s cache), shared by the recordings and kept there when given. left: the
    reasons of recordings already left out (a folder's files the readers refused), said first in "short". gains:
    `spectral.prepare`'s ("robust": per recording, as predict)."""
    from sqtool.data.hr_spectra import stream_channels
    from sqtool.firmware_bench import spectral as S
    md = art.metadata
    n_sensors = S.export_ppg_sensors(art)                              # replay on the exported device's sensors
    tables = {} if tables is None else tables
    def one(r):                                                        # without the model's channels: left out,
        require_channels(r, stream_channels(r, md["model_cfg"])[0])    # as the bench leaves it out
        counts_in_units(r, gains)
        rec = S.prepare(r, md["model_cfg"], tables, n_sensors, S.has_acc_resampler(md), gains)
        prog.update(1)
        return released(rec, pipeline_may_push(cfg, art, rec.fs_in))   # before the next recording is read
    # the bar counts what `one` did: a bar wrapping the records would hold each while the next one is read
    prog = bar(desc="front end", enabled=cfg.progress, unit="rec")
    recs, short = long_enough(records, one, float(md["window_s"]), cfg.data or "records",
                              skip=(TooShort, MissingChannel), left=left)
    prog.close()
    name, why = choose_runtime(cfg, art, [(r.record_id, r.fs_in) for r in recs])
    dec, note = S.decoder_dict(md)
    streams = [(r.record, r.channels) for r in recs]                   # what each streamed
    return {"recs": recs, "runtime": name, "why": why, "decoder": dec, "decoder_note": note, "short": short,
            "streams": streams, "fed": [fed_channels(r) for r in recs]}


def counts_in_units(rec, gains) -> None:
    """One line where --gains 1 (the file holds the device's int16 counts, fed as they are) meets an accelerometer
    its CSV writes in a unit the reader converts to g (its units row or column name: mg, m/s^2): g fed as counts
    (9.8 m/s^2 read as 1 count) otherwise, as `live.live_units` refuses it on stdin."""
    from sqtool.data.readers.generic import acc_to_g
    if gains_mode(gains) != "counts":
        return
    said = [f"{ch} in {u}" for ch, u in (rec.meta.get("units") or {}).items()
            if ch.startswith("acc") and (acc_to_g(u) or 1.0) != 1.0]
    if said:
        raise SqtoolError(f"{rec.source or rec.record_id}: --gains 1: its CSV says {', '.join(said)}, converted to g "
                          "as it is read, but --gains 1 feeds the values as the device's int16 counts: give --gains "
                          "device or counts per g, or write counts as the axes' unit")


def pipeline_may_push(cfg: PredictConfig, art, fs_in: float) -> bool:
    """Whether the C pipeline may run a recording at fs_in (`choose_runtime`: asked for, or the default where the export
    has it at that rate), so its int16 device samples are kept for it."""
    if cfg.runtime:
        return spectral_runtime(cfg.runtime) == "c_pipeline"
    if not art.has(art.c_name("pipeline.c")):
        return False
    fs_mhz = art.c_define("pipeline_cfg.h", "PL_FS_IN_MHZ")
    return fs_mhz is None or abs(fs_in - fs_mhz / 1000.0) <= 1e-9


def without_signals(rec):
    """A prepared recording (spectral or time-domain) without its record's float signals, their gaps said first
    (`gaps_of`); its channels, rates, meta and labels kept: what the summary reads of it."""
    from sqtool.firmware_bench.spectral import no_signals
    rec.gaps = gaps_of(rec).get("gaps", "")
    rec.record = no_signals(rec.record)
    return rec


def network_blocks(run, parts, prog=None) -> list:
    """run(block) over `parts` (each recording's windows, in order: a time-domain model's (W, C, T) inputs, a
    spectral model's (W, F, C) codes) in blocks of NET_WINDOWS windows, a block running on across recordings: the
    network's inputs and their temporaries stay in MBs for a day-long recording or a folder of a thousand, and a
    folder of short recordings makes one call per block, not per recording (the MCU's QEMU starts once a call). A
    part is let go once its last window's block has run. Returns run's result per block; `prog`: a bar of windows."""
    out, block, held = [], [], 0
    for x in parts:
        a = 0
        while a < len(x):
            take = min(NET_WINDOWS - held, len(x) - a)
            block.append(x[a:a + take])
            held, a = held + take, a + take
            if held == NET_WINDOWS:
                out.append(run(np.concatenate(block)))
                block, held = [], _counted(prog, held)
        del x
    if block:
        out.append(run(np.concatenate(block)))
        _counted(prog, held)
    return out


def _counted(prog, n: int) -> int:
    """A block of n windows run: counted on the bar (if any); 0, the windows a new block holds."""
    if prog is not None:
        prog.update(n)
    return 0


def released(rec, keep_samples: bool):
    """A prepared recording (`spectral.prepare`) without the arrays predict reads no more, so that a folder's
    recordings (or one long one: 5.5 M samples a day at 64 Hz) are not all held until the network runs: the float
    signals (`without_signals`) and, unless the C pipeline may push them (`keep_samples`), the int16
    device samples and gap flags. What is kept per window (codes, t0, valid, truth) is what the network, the decoder
    and the CSV read."""
    without_signals(rec)
    if not keep_samples:
        rec.x16, rec.gap = None, None
    return rec


def fed_channels(rec) -> dict:
    """{front-end input row: the recording's channel fed to it} of a `spectral.prepare` result: the model's
    ppg_sensors the recording has, in that order, fitted to the device's sensor count as `spectral.fit_sensors`
    fits the samples (rows ppg, ppg2: an extra sensor left out, a missing second repeating the first), then the
    recording's channels of the model's other rows by their names (acc_x, acc_y, acc_z)."""
    from sqtool.data.frontend import input_channels, FrontEndCfg
    from sqtool.firmware_bench.spectral import sensor_rows
    have = rec.channels[:rec.sensors_recorded]
    rows = input_channels(FrontEndCfg(n_channels=1, n_ppg=rec.n_ppg))            # ppg (, ppg2)
    fed = {row: have[j] for row, j in zip(rows, sensor_rows(len(have), len(rows)))}
    fed.update({c: c for c in rec.channels[rec.sensors_recorded:]})
    return fed


NET_WINDOWS = 4096    # windows the network runs per call (`run_spectral`): 2.3 h of 2 s hops; tests make it tiny


def built_runtime(art, name: str, work: Path, runners: dict):
    """runners[name], built into `work` on first use: the export's C pipeline on the host (`spectral.pipeline_host`)
    for c_pipeline, else `runtimes.make_runtime`."""
    from sqtool.firmware_bench import runtimes as R
    from sqtool.firmware_bench import spectral as S
    if name not in runners:
        runners[name] = S.pipeline_host(art, work / "c_pipeline") if name == "c_pipeline" else \
            R.make_runtime(name, art, work)
    return runners[name]


def pipeline_columns(res: dict) -> dict:
    """The C pipeline's results ((W,) integer arrays per RESULT_KEYS) -> predict's columns: hr_bpm, lo_bpm, hi_bpm,
    confidence, flagged (1 - valid), no_pulse."""
    return {"hr_bpm": res["hr_mbpm"] / 1000.0, "lo_bpm": res["lo_mbpm"] / 1000.0, "hi_bpm": res["hi_mbpm"] / 1000.0,
            "confidence": res["conf_q15"] / 32768.0, "flagged": 1 - res["valid"].astype(int),
            "no_pulse": res["no_pulse"].astype(int)}


def run_spectral(art, prep: dict, work: Path, runners: dict | None = None,
                 progress: bool = False) -> tuple[list[dict], dict | None, dict]:
    """Per recording {hr_bpm, lo_bpm, hi_bpm, confidence[, expected_err_bpm], flagged, no_pulse} ((W,) arrays),
    firmware, column notes. `prep` is prepare_spectral's; runtimes are built into `work` (the C pipeline, a
    network's C), and kept in `runners` (runtime name -> built runtime) when given, so a caller running many calls
    builds each once (`sqtool.api.HrModel`); `progress`: a bar of the windows the network has run."""
    from sqtool.firmware_bench import spectral as S
    from sqtool.export.pipeline import no_pulse_of, pulse_rule
    from sqtool.models.decoder import decoder_cfg
    recs, name, dec = prep["recs"], prep["runtime"], prep["decoder"]
    dcfg = decoder_cfg(dec)
    outs, firmware = [], None
    runners = {} if runners is None else runners
    if name == "c_pipeline":
        pl = built_runtime(art, name, work, runners)
        for r in recs:
            res, _ = pl.run(r.x16, r.gap, r.fs_in, f"{r.record.dataset}/{r.record_id}", r.n_ppg)
            outs.append(pipeline_columns(res))
    else:
        rt = built_runtime(art, name, work, runners)
        # the network NET_WINDOWS windows at a time, counted by a bar of windows; each recording's logits (small: F
        # int8 per window) decoded whole, causally
        prog = bar(total=sum(len(r.t0) for r in recs), desc="network", enabled=progress, unit="win")
        blocks = network_blocks(lambda codes: S.run_window_runtime(rt, codes), (r.codes for r in recs), prog)
        logits = np.concatenate([y for y, _ in blocks])                 # (N, F), the recordings' in order
        scale = art.output_qparams[0] if blocks[0][1] is not None else None
        a = 0
        for r in recs:
            y, a = logits[a:a + len(r.codes)], a + len(r.codes)        # (W, F) its logits
            o = S.decode(y, [r], dec, scale)                            # hr, lo, hi, conf -> the CSV's names
            outs.append({"hr_bpm": o["hr"], "lo_bpm": o["lo"], "hi_bpm": o["hi"], "confidence": o["conf"],
                         "flagged": (~r.valid).astype(int),
                         "no_pulse": no_pulse_of(r.codes, pulse_rule(art.metadata)).astype(int)})
        prog.close()
        firmware = _firmware(rt, name)
    for o in outs:
        if dcfg.conf_error_span:
            o["expected_err_bpm"] = (1 - np.asarray(o["confidence"], np.float64)) * dcfg.conf_error_span
    interval = (f"central {100 * dcfg.interval:.1f} % posterior interval (calibrated nominal mass)"
                if dcfg.interval_mode == "posterior" else f"interval {dcfg.interval_text}")
    columns = {"hr_bpm": "heart rate", "lo_bpm": f"lower end of the {interval}",
               "hi_bpm": f"upper end of the {interval}", "confidence": dcfg.conf_text}
    if dcfg.conf_error_span:
        columns["expected_err_bpm"] = "expected |error| of hr_bpm, from the calibrated confidence"
    return outs, firmware, columns


# ----------------------------------------------------------------------------- time-domain models

# c and mcu round twice, as the export's sq_model.h does by default (SQ_SINGLE_ROUNDING 0, TFLite's arithmetic),
# so the CSV is what a firmware built from the export's C computes (the spectral path's pipeline rounds once)
TIME_DOMAIN = {"c": "c_host", "tflite": "litert_int8", "litert": "litert_int8", "tflm": "tflm_int8",
               "onnx": "onnx_int8", "torch": "torch_student", "mcu": "mcu_m4"}


@dataclass
class _TdRec:
    """One recording replayed as the device's windows for a time-domain model."""
    record: object
    record_id: str
    subject: str
    fs_in: float
    seconds: float
    x: np.ndarray                  # (W, C, T) model inputs
    t0: np.ndarray                 # (W,) window starts, s
    flagged: np.ndarray            # (W,) dropout share
    truth: np.ndarray | None       # (W,) BPM (NaN where none): a heart-rate model's
    tiled_from_s: float | None = None   # shorter than the window: its own length, tiled to one window
    targets: dict | None = None    # another regression task's truth: {output: (W,) its label (NaN where none)}
    classes: np.ndarray | None = None   # a class task's truth: (W,) 1 (AF / good), 0, NaN where none
    gaps: str | None = None        # `Record.gap_text`, said before the float signals are released (None: ask it)


def prepare_time_domain(cfg: PredictConfig, art, records, left: list[str] = ()) -> dict:
    """Replay each recording through the model's stream (`firmware_bench.stream`, as `sqtool bench`); a missing
    channel is one line naming it; left: as prepare_spectral's. Each recording keeps its windows, not its float
    signals (`without_signals`), unless the runtime reads those (`runtimes.feeds_records`: c_window)."""
    from sqtool.data.dataset_tasks import class_truth
    from sqtool.data.record import subject_key, tile_record
    from sqtool.firmware_bench.runtimes import feeds_records
    from sqtool.firmware_bench.stream import StreamSpec, at_stream_rate, replay
    md = art.metadata
    spec = StreamSpec.from_model_cfg(md, filter=cfg.filter)
    name, what = time_domain_runtime(cfg, art)
    tile = md.get("short_records") == "tile"           # as the model's training data (export metadata)
    def prepared(r) -> _TdRec:                         # let go of the signals before the next recording is read
        rec = one(r)
        prog.update(1)
        return rec if feeds_records(name) else without_signals(rec)
    def one(r) -> _TdRec:
        require_channels(r, spec.channels, r.record_id)   # else left out, as the bench leaves it out
        r = at_stream_rate(r, spec)            # a clock off its whole-Hz rate: resampled to it
        seconds = r.duration(spec.channels[0])
        if tile:                               # shorter than the window: repeated end to end to fill it, one window
            r = tile_record(r, spec.window_s)
        rp = replay(r, spec)                   # in blocks (stream.REPLAY_CHUNK); truth: the heart rate of the
                                               # windows (an hr model's); TooShort
        hr, task = md.get("task") == "hr", md.get("task")
        return _TdRec(r, r.record_id, subject_key(r.dataset, r.subject), rp.fs_in,
                      seconds, rp.x, rp.t0, rp.flagged, rp.truth if hr else None, r.meta.get("tiled_from_s"),
                      None if hr else window_targets(r, truth_labels(md), rp.t0, spec.window_s),
                      class_truth(task, r, rp.t0, spec.window_s) if task in CLASS_TRUTH else None)
    # the bar counts what `prepared` did: a bar wrapping the records would hold each while the next one is read
    prog = bar(desc="stream", enabled=cfg.progress, unit="rec")
    recs, short = long_enough(records, prepared, spec.window_s, cfg.data or "records",
                              skip=(TooShort, MissingChannel), left=left)
    prog.close()
    why = "asked for" if cfg.runtime else f"default: the export's {what} on the host"
    return {"recs": recs, "runtime": name, "why": why, "short": short, "filter": cfg.filter,
            "streams": [(r.record, list(spec.channels)) for r in recs],
            "fed": [{c: c for c in spec.channels} for _ in recs]}


def windows_let_go(recs: list[_TdRec]):
    """Each recording's (W, C, T) windows in turn, r.x let go as it is handed on (`network_blocks` holds it until
    its last block has run): nothing of them is held once the network has run."""
    for r in recs:
        x, r.x = r.x, None
        yield x


def time_domain_runtime(cfg: PredictConfig, art) -> tuple[str, str]:
    """(runtime, what it is) a time-domain export runs on: --runtime (`TIME_DOMAIN`'s names, a front-end model's
    `front_runtime`), else the export's default (`default_runtime`); an unknown name is one line."""
    from sqtool.firmware_bench import runtimes as R
    if R.front_family(art.metadata):                   # rr_spec, af_beats: a float model over a Python front end
        name, what = front_runtime(cfg.runtime, art)
    else:
        name, what = (TIME_DOMAIN.get(cfg.runtime, cfg.runtime), "") if cfg.runtime else \
            default_runtime(art, TIME_DOMAIN["c"])
    if name not in R.RUNTIMES:
        raise SqtoolError(f"--runtime {cfg.runtime}: unknown for a time-domain model (choose c, tflite (litert), "
                          "tflm, onnx, torch or mcu; the C pipeline is the spectral models')")
    return name, what


FRONT_CHOICES = {"tflite": "litert_float", "litert": "litert_float", "onnx": "onnx_float", "torch": "torch_teacher"}


def front_runtime(asked: str, art) -> tuple[str, str]:
    """(runtime, what it is) of a front-end export (rr_spec, af_beats; float only): --runtime tflite / onnx / torch
    (or a bench name of `runtimes.front_runtimes`), else the export's default (`default_runtime`: its float TFLite,
    else its float ONNX); any other one line."""
    from sqtool.firmware_bench.runtimes import front_runtimes
    if not asked:
        return default_runtime(art)
    ok = front_runtimes(art.metadata)
    name = FRONT_CHOICES.get(asked, asked)
    if name not in ok:
        raise SqtoolError(f"--runtime {asked}: {art.export_dir} is {art.metadata.get('model')}, a float model over a "
                          f"Python front end (no int8, no C): choose "
                          f"{', '.join(k for k, v in FRONT_CHOICES.items() if v in ok and k != 'litert')}")
    return name, ""


TRUTH_LABELS = {"rr": {"rr_bpm": "rr"}, "bp": {"sbp": "sbp", "dbp": "dbp"}}   # task -> {output: record label}
CLASS_TRUTH = {"af": "rhythm", "quality": "quality"}      # class task -> the record label its truth is read from


def truth_labels(md: dict) -> dict:
    """{output: record label} whose truth predict compares: a built-in task's (TRUTH_LABELS), or a custom label's
    (`data.tasks.task_spec`: a model fine-tuned on its dataset file's label NAME outputs NAME, from that label)."""
    from sqtool.data.tasks import TASKS
    task = md.get("task")
    if task in TASKS or task is None:
        return TRUTH_LABELS.get(task, {})
    return {task: task} if (md.get("outputs") or [None])[0] == task else {}      # (a student adds quality_logit)


def window_targets(record, truth: dict, t0: np.ndarray, window_s: float) -> dict | None:
    """A regression task's truth per window [t0, t0 + window_s) (heart rate: `replay`'s), as its training takes it
    (`data.dataset_tasks`): {output: (W,) values, NaN where none}; None when the record has none of its labels.
    A built-in dataset's label is the reader label its shipped file names (`dataset_file.builtin_label`: bidmc's rr
    is annotator 1's breath marks, as training reads it, not the monitor's numerics rr). A windowed label at the window's centre (`stream.window_truth`), breath times as breaths/min in the window
    (`tasks.breaths_per_min_windows`, NaN under 3 breaths), a whole-record value (bp's sbp, dbp) on the first
    window only, the one window per recording that bp's training and quantize's held-out table score
    (`dataset_tasks._bp`)."""
    from sqtool.data.dataset_file import builtin_label
    from sqtool.data.tasks import breaths_per_min_windows
    from sqtool.firmware_bench.stream import window_truth
    out = {}
    for output, name in truth.items():                             # truth_labels(md)
        # a built-in dataset's label as its shipped file reads it (bidmc's rr: annotator 1's breaths, as training)
        name = next((n for n in builtin_label(str(getattr(record, "dataset", "")), name) if n in record.labels), name)
        lab = record.labels.get(name)
        if lab is None:
            continue
        if lab.times is None:                                     # one value for the whole recording
            y = np.full(len(t0), np.nan)
            y[:1] = float(np.atleast_1d(lab.values)[0])
        elif lab.kind == "events":                                # breath marks
            y = breaths_per_min_windows(lab.times, t0, window_s)
        else:
            y = window_truth(record, t0, window_s, name)
        if y is not None and np.isfinite(y).any():
            out[output] = np.asarray(y, np.float64)
    return out or None


def pooled_scores(per: list[dict]) -> dict | None:
    """Over the recordings whose metrics (`hr_scores` / `target_scores`) have a MAE: {recordings, windows, pooled:
    each MAE weighted by its windows, mean_of_recordings: their plain mean}, in the metrics' own keys: heart rate's
    mae / n; a target model's mae_<output> / n_<output> per output (each over the recordings that scored it) and mae,
    the mean of its outputs' (as each recording's), n the fewest windows of an output. None for fewer than 2 such
    recordings (the one line above says it)."""
    outs = list(dict.fromkeys(k[4:] for m in per for k in m if k.startswith("mae_") and f"n_{k[4:]}" in m))
    keys = [(f"mae_{o}", f"n_{o}") for o in outs] or [("mae", "n")]
    pooled, mean, used = {}, {}, set()
    for k, n_key in keys:
        got = [(i, m[k], m[n_key]) for i, m in enumerate(per) if m.get(k) is not None and m.get(n_key)]
        if got:
            used |= {i for i, _, _ in got}
            pooled[k] = float(sum(v * n for _, v, n in got) / sum(n for _, _, n in got))
            mean[k] = float(np.mean([v for _, v, _ in got]))
            pooled[n_key] = mean[n_key] = int(sum(n for _, _, n in got))
    if len(used) < 2 or not pooled:
        return None
    if outs:                                                   # a recording's own mae is its outputs' mean
        done = [o for o in outs if f"mae_{o}" in pooled]
        for d in (pooled, mean):
            d["mae"] = float(np.mean([d[f"mae_{o}"] for o in done]))
            d["n"] = min(d[f"n_{o}"] for o in done)
    return {"recordings": len(used), "windows": int(pooled["n"]), "pooled": pooled, "mean_of_recordings": mean}


def target_scores(o: dict, targets: dict) -> dict:
    """MAE per output over the windows with truth (flagged ones included, as heart rate's), `core.metrics`:
    mae (the mean over the outputs, bp's SBP and DBP), mae_<output>, n_<output>, n (windows with every truth)."""
    from sqtool.core.metrics import mae
    d = {}
    for k, y in targets.items():
        ok = np.isfinite(y) & np.isfinite(o[k])
        d[f"mae_{k}"], d[f"n_{k}"] = (mae(y[ok], o[k][ok]) if ok.any() else None), int(ok.sum())
    each = [d[f"mae_{k}"] for k in targets]
    d["mae"] = float(np.mean(each)) if None not in each else None
    d["n"] = min(d[f"n_{k}"] for k in targets)
    return d


def output_columns(outputs, units) -> list[tuple[str, str, bool]]:
    """The model's outputs -> (CSV column, what it holds, is a probability): a logit output becomes the probability
    of its class (logit_af -> p_af, quality_logit -> p_quality); a value keeps its name, its unit noted."""
    cols = []
    for n, u in zip(outputs, list(units) + [""] * len(outputs)):
        if u == "logit":
            base = n[len("logit_"):] if n.startswith("logit_") else n[:-len("_logit")] if n.endswith("_logit") else n
            cols.append((f"p_{base}", f"probability of '{base}' (sigmoid of the model's {n})", True))
        else:
            cols.append((n, f"{n} ({u})" if u else n, False))
    names = [c for c, _, _ in cols]
    clash = [c for i, c in enumerate(names) if c in PREDICT_COLUMNS or c.startswith("truth_") or c in names[:i]]
    if clash:
        raise SqtoolError(f"the model's output '{clash[0]}' is also a column sqtool predict writes (outputs "
                          f"{', '.join(names)}): one would overwrite the other in its CSV; fine-tune on a label "
                          f"of another name (e.g. my_{clash[0]})")
    return cols


def run_time_domain(art, prep: dict, work: Path,
                    runners: dict | None = None) -> tuple[list[dict], dict | None, dict]:
    """Per recording one column per model output (`output_columns`), for a heart-rate model hr_tracked_bpm too
    (the bench's tracker over the windows its quality output calls good), and flagged; firmware, column notes.
    `prep` is prepare_time_domain's; the runtime is built into `work`, and kept in `runners` when given (as
    run_spectral's: `sqtool.api.TaskModel` builds it once)."""
    from sqtool.firmware_bench import runtimes as R
    md = R.resp_view(art.metadata)                  # rr_spec: its decoded rr_bpm (runtimes.FrontEnd)
    recs, name = prep["recs"], prep["runtime"]
    rt = built_runtime(art, name, work, {} if runners is None else runners)
    if getattr(rt, "fed_records", False):          # the export's C front end on each recording's device samples
        from sqtool.firmware_bench.stream import StreamSpec, record_matrix
        spec = StreamSpec.from_model_cfg(md, filter=prep["filter"])
        rt.check_stream([(r.record_id, r.fs_in) for r in recs], spec.filter if spec.band else "none")
        T = recs[0].x.shape[-1]
        for r in recs:
            r.x = None                                                      # it makes its own windows
        y, _ = rt.run_records([record_matrix(r.record, list(md["channels"]))[0] for r in recs], T)
    else:
        y = np.concatenate(network_blocks(rt.run_batch, windows_let_go(recs)))   # (N, outputs)
    y = np.asarray(y, np.float64)
    y = y.reshape(len(y), -1)                                               # (N, outputs) in units
    table = TdColumns.of(md)
    outs, a = [], 0
    for r in recs:
        b = a + len(r.t0)
        outs.append(table.windows(y[a:b], r.flagged, table.tracker()))
        a = b
    return outs, _firmware(rt, name), table.columns


@dataclass
class TdColumns:
    """A time-domain model's CSV columns (`output_columns` of its outputs, hr_tracked_bpm for a heart-rate model)
    and how a run of one recording's consecutive windows fills them (`windows`): predict's per recording, and
    `sqtool.api.TaskStream`'s chunk by chunk, one tracker carried over the chunks."""
    outputs: list[str]             # the model's outputs, in order (`runtimes.resp_view`'s for rr_spec)
    cols: list                     # (CSV column, what, is a probability) per output (`output_columns`)
    columns: dict                  # CSV column -> what it holds, in the CSV's order (flagged not included)
    tracked: bool                  # a heart-rate model: hr_tracked_bpm, the bench's tracker over hr_bpm

    @classmethod
    def of(cls, md: dict) -> "TdColumns":
        from sqtool.firmware_bench.runtimes import HR_OUTPUT
        outputs = list(md.get("outputs") or [])
        cols = output_columns(outputs, list(md.get("units") or []))
        tracked = md.get("task") == "hr" and HR_OUTPUT in [c for c, _, _ in cols]       # by name, in any column
        columns = {c: what for c, what, _ in cols}
        if tracked:
            columns = {"hr_bpm": "heart rate the network reads in the window (BPM)",
                       "hr_tracked_bpm": "hr_bpm tracked over the recording (sqtool bench's tracker" +
                       (", windows with p_quality <= 0.5 skipped)" if "p_quality" in columns else ")"),
                       **{k: v for k, v in columns.items() if k != "hr_bpm"}}
        return cls(outputs, cols, columns, tracked)

    def tracker(self):
        """A fresh tracker for a recording's hr_tracked_bpm (None: the model has none)."""
        from sqtool.data.hr_tracker import HrTracker
        return HrTracker() if self.tracked else None

    def windows(self, y: np.ndarray, flagged: np.ndarray, tracker=None) -> dict:
        """y (W, outputs) the network's outputs in units of W consecutive windows of one recording, flagged (W,)
        their dropout shares -> {column: (W,)}: the outputs (a logit as its probability), flagged (the tracker's
        dropout rule), hr_tracked_bpm stepped on `tracker` (the recording's, carried over its runs of windows)."""
        o = {c: (sigmoid(y[:, j]) if prob else y[:, j]) for j, (c, _, prob) in enumerate(self.cols)}
        o["flagged"] = (np.asarray(flagged) >= MAX_FLAGGED).astype(int)      # the tracker's dropout rule
        if self.tracked:                                                     # the bench's tracker, gate on
            o["hr_tracked_bpm"] = track(o["hr_bpm"], tracker_ok(y, flagged, self.outputs, quality_gate=True),
                                        tracker=tracker)
        return o
