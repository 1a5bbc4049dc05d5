"""MODEL_CARD.md and INTEGRATION.md of a time-domain model: windows of samples, any task.

    paths = write_time_docs(out_dir, model_cfg, graph, md, run_dir=None, names=None)

Time-domain models (students `cnn1d_student_*`, resnet1d teachers fine-tuned on hr, rr, af, bp, quality or a label
of your dataset file) read a window of resampled, band-passed, normalised samples. Unlike the spectral heart-rate
models (`export.kit.write_docs`: their front end and decoder ship in C), their preprocessing runs outside the
network in floating point, on the integrator's side. INTEGRATION.md (templates/INTEGRATION_time.md) states it step
by step with this model's numbers resolved: the streaming path `sqtool predict` and `sqtool bench` run
(`firmware_bench.stream.WindowStream`, filter "window"), which equals training's whole-recording windows away from
a recording's ends; then the input tensors (names, layouts, the int8 input quantization) and how to read each
output (units, int8 codes, a logit's probability and the threshold the metrics used).

MODEL_CARD.md: the task, the model, `kit.data_sections` (training data, licences, subject split; shared with the
spectral card), the held-out figures of the source run: a quantize run's table of every model beside the trivial
predictor and the task's classic method with the skill verdicts (`core.metrics.skill_line` / `classic_text`: NO
SKILL said where it holds), a final fit's estimate run said to be an estimate, a fine-tune's out-of-fold figures
said to be out of fold; then the limitations.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePath

import numpy as np

from sqtool.core import SqtoolError, atomic_write_text
from sqtool.core.io import nan_if_none
from sqtool.core.tracking import MAX_FLAGGED, TrackerCfg
from sqtool.export.c_tracker import TRACKED_OUTPUT
from sqtool.core.metrics import (CLASS_NAMES, CLASSIFICATION_TASKS, FEW_SUBJECTS, QUANTIZE_MODELS, classic_text,
                                 clip_interval, skill_line, skill_unit, swap_test_cannot_show, too_few_subjects,
                                 worse_by_ci)
from sqtool.data.preprocess import DEFAULT_BAND, _sos, filtfilt_padlen, resample_ratio, zero_phase_context
from sqtool.data.tasks import QUALITY_OUTPUT
from sqtool.export.kit import (MODEL_FILES, TEMPLATES, _fill, data_sections, identity_lines, n_subjects, parity_lines,
                               shipped_parity, teacher_saw)

TASK_TEXT = {"hr": "heart rate in BPM per window (regression)",
             "rr": "respiratory rate in breaths/min per window (regression)",
             "af": "atrial fibrillation against every other rhythm, per window (a logit)",
             "bp": "systolic and diastolic blood pressure in mmHg per window (regression)",
             "quality": "signal quality, good against poor, per window (a logit)",
             "pretrain": "an encoder's embedding per window (self-supervised; no task head)"}
CAUSAL_TOL = 0.002                  # tests/train/test_band_phase.py: a causal model's windows vs the causal stream
STREAM_TOL = 0.03                    # tests/firmware_bench/test_stream.py: "window" stream vs make_windows
FLAGGED = MAX_FLAGGED                # the tracker's rule (core.tracking), predict's `flagged`


def window_samples(md: dict) -> int:
    """T: samples per channel of the model's window (fs x window_s)."""
    return int(round(float(md["fs"]) * float(md["window_s"])))


def task_text(md: dict) -> str:
    task = md["task"]
    if task in TASK_TEXT:
        return TASK_TEXT[task]
    unit = (md.get("units") or ["?"])[0]
    return f"{task} in {unit} per window (regression on a label of the training dataset file)"


# ----------------------------------------------------------------------------- INTEGRATION.md

def _filter_call(band, fs: float) -> tuple[str, int]:
    """scipy's design call of the model's Butterworth and sosfiltfilt's padding for it."""
    lo, hi = band
    sos = _sos(fs, lo, hi, 2)
    kind, arg = (("bandpass", f"[{lo:g}, {hi:g}]") if lo and hi else ("highpass", f"{lo:g}") if lo
                 else ("lowpass", f"{hi:g}"))
    return f'scipy.signal.butter(2, {arg}, "{kind}", fs={fs:g}, output="sos")', filtfilt_padlen(sos)


def preprocessing_steps(md: dict) -> list[str]:
    """INTEGRATION.md's steps 1-7, this model's numbers resolved (the order `firmware_bench.stream` runs them)."""
    fs, win, hop = float(md["fs"]), float(md["window_s"]), float(md["hop_s"])
    T, H = window_samples(md), int(round(fs * hop))
    band, norm = md.get("band"), md.get("norm", "minmax")
    steps = [
        "**Gaps.** A missing or non-finite sample takes the channel's last good value (0 before the first); the "
        f"window it falls in counts it (predict's `flagged`: {100 * FLAGGED:g} % or more of a window's samples). "
        "Training left out "
        "every window that held a gap.",
        "**Offset.** Subtract the channel's first sample from every sample before step 3 and add it back after (a "
        "large DC level, raw ADC counts, would otherwise ring at the start). Training took the whole recording's "
        "mean instead: with the resampler's zero padding at a recording's ends, the two differ in the windows "
        "nearest its start and end (below).",
        f"**Resample to {fs:g} Hz.** The polyphase FIR of `scipy.signal.resample_poly(x, up, down)` with its defaults "
        "(Kaiser window, beta 5, 20 max(up, down) + 1 taps) and up / down = the reduced fraction of "
        f"{fs:g} / fs_device (e.g. 125 Hz: {_ratio(125.0, fs)}, 256 Hz: {_ratio(256.0, fs)}, 100 Hz: "
        f"{_ratio(100.0, fs)}); output sample m lies at time m / {fs:g} s. Streamed, it needs the FIR's half "
        "length of look-ahead; over a whole recording resample_poly itself gives the same samples.",
    ]
    if band and md.get("band_phase") == "causal":
        call, _ = _filter_call(band, fs)
        steps.append(
            f"**Band-pass {band[0] or 0:g}-{band[1] or fs / 2:g} Hz, causal** (the model was trained so: "
            f"`band_phase` causal). `sos = {call}`, one running `scipy.signal.sosfilt(sos, x, zi=sosfilt_zi(sos) * "
            "x[0])` over the model-rate stream from the recording's first sample (started in that sample's steady "
            "state), its state carried from one sample to the next: no look-ahead, no extra delay.")
    elif band:
        call, padlen = _filter_call(band, fs)
        pre, post = zero_phase_context(band)
        steps.append(
            f"**Band-pass {band[0] or 0:g}-{band[1] or fs / 2:g} Hz.** `sos = {call}`, run forward and backward "
            f"(zero phase): `scipy.signal.sosfiltfilt(sos, seg, padlen=min({padlen}, len(seg) - 1))` over the "
            f"window plus the {int(round(pre * fs))} samples ({pre:g} s) before it and the {int(round(post * fs))} "
            f"samples ({post:g} s) after it, then cropped to the window; near the recording's start and end with "
            "what there is (the last windows are filtered when the recording ends). The look-ahead delays each "
            f"result by {post:g} s, plus the resampler's look-ahead (step 3).")
    else:
        steps.append("**No band-pass** (`band` null): the resampled samples go on as they are.")
    steps += [
        f"**Windows.** Window i = model-rate samples [{H} i, {H} i + {T}), i.e. seconds [{hop:g} i, {hop:g} i + "
        f"{win:g}) of the recording.",
        {"minmax": "**Normalise** each window and channel: x' = (x - min) / (max - min), in [0, 1]; a flat window "
                   "(max - min < 1e-8) is 0.5 everywhere.",
         "zscore": "**Normalise** each window and channel: x' = (x - mean) / std (numpy's std, ddof 0); a flat window "
                   "(std < 1e-8) is 0 everywhere.",
         "none": "**No normalisation** (`norm` none): the window's values go in as they are, so the device's "
                 "scale must be the training data's."}.get(norm, f"**Normalise**: `{norm}` (sqtool.data.preprocess)"),
        ("**A recording shorter than one window** is repeated end to end at the device rate (numpy.tile of its "
         f"samples, cut to ceil({win:g} x fs_device) + 1 samples: `sqtool.data.record.tile_record`), as training "
         "filled the task's short segments, then goes through steps 1-6 as any recording: one window."
         if md.get("short_records") == "tile" else
         "**A recording shorter than one window** gives no result (training left such recordings out)."),
    ]
    return [f"{i}. {t}" for i, t in enumerate(steps, 1)]


def _ratio(fs_in: float, fs: float) -> str:
    try:
        up, down = resample_ratio(fs_in, fs)
    except SqtoolError:
        return "not representable"
    return f"{up} / {down}"


def input_text(md: dict, files: set[str]) -> str:
    """The network input row: the tensors of the model files this folder holds, the int8 ones with their codes."""
    C, T = len(md["channels"]), window_samples(md)
    parts = [f"{' and '.join(f for f in ('model_float.onnx', 'model_int8.onnx') if f in files)} `x` (1, {C}, {T}) "
             "channels-first float32" + (" (the int8 ONNX quantizes inside)" if "model_int8.onnx" in files else "")
             if {"model_float.onnx", "model_int8.onnx"} & files else "",
             f"model_float_batch.onnx `x` (B, {C}, {T}): the float ONNX with a batch axis, many windows per call"
             if "model_float_batch.onnx" in files else "",
             f"model_float.tflite `input` (1, 1, {T}, {C}) channels-last float32" if "model_float.tflite" in files
             else ""]
    int8 = [f for f, there in ((f"model_int8.tflite `input` (1, 1, {T}, {C})", "model_int8.tflite" in files),
                               (f"C (c/sq_model.h) `in[t * {C} + c]`", "c/sq_model.h" in files)) if there]
    text = "x' of step 6: " + "; ".join(t for t in parts if t)
    if not int8:
        return text
    q = md["quantization"]
    return (text + f"; {' and '.join(int8)} take int8 codes q = clip(round(x' / {q['input_scale']:.9g}) + "
            f"{q['input_zero_point']}, -128, 127) (`quantization.input_scale`, `input_zero_point`; round half to even, "
            "as training's quantizer)")


def output_text(md: dict) -> str:
    names = md.get("outputs") or ["embedding"]
    return (", ".join(f"`{n}` ({u})" for n, u in zip(names, md.get("units") or [""] * len(names)))
            + ": one tensor per name, shape (1, 1) (ONNX / TFLite float: in units; TFLite int8 / C: int8 codes, "
              "below)")


def code_range(q: dict) -> tuple[float, float]:
    """The values an int8 output code can take: scale x (code - zero_point) at code -128 and 127."""
    return q["scale"] * (-128 - q["zero_point"]), q["scale"] * (127 - q["zero_point"])


def output_lines(md: dict) -> list[str]:
    """How to read each output: its unit, an int8 code's affine and the range the codes span (a value beyond it
    saturates), a logit's probability and threshold; then why the TFLite tensors' own quantization parameters are
    not the unit's where the model learned normalised targets."""
    quant = {o["name"]: o for o in md.get("output_quantization") or []}
    out = []
    for name, unit in zip(md.get("outputs") or [], md.get("units") or []):
        q = quant.get(name)
        code = ""
        if q:
            lo, hi = code_range(q)
            code = (f"; from an int8 code (TFLite int8, C): value = {q['scale']:.9g} x (code - {q['zero_point']:.6g}), "
                    f"so the int8 model can report {lo:.4g} to {hi:.4g}{'' if unit == 'logit' else ' ' + unit} only "
                    "(a value beyond saturates there)")
        if name == QUALITY_OUTPUT:                  # a regression student's quality head
            out.append(f"- `{name}`: a logit; p(good) = 1 / (1 + exp(-logit)){code}: how far this window's "
                       f"`{md['outputs'][0]}` can be trusted, as the student learned it (a training window was poor "
                       "where the teacher erred by more than quantize's --quality-err and / or its signal-quality "
                       "index was low); MODEL_CARD.md says what it did on the held-out windows."
                       + (" `sqtool predict`'s hr_tracked_bpm (and `sqtool bench --quality-gate`) hold their tracker "
                          "where p <= 0.5." if md["task"] == "hr" else ""))
        elif unit == "logit":
            neg, pos = CLASS_NAMES.get(md["task"], ("negative", "positive"))
            out.append(f"- `{name}`: a logit; p({pos}) = 1 / (1 + exp(-logit)){code}. sqtool's metrics (F1, "
                       f"accuracy) call a window {pos} where p > 0.5 (logit > 0), {neg} otherwise; AUROC needs no "
                       "threshold. Choose your operating point on data of your own device.")
        else:
            out.append(f"- `{name}`: in {unit} (ONNX and TFLite float give it so; int8 ONNX too){code}.")
    if md.get("task") == "pretrain" or not out:
        out.append("- `embedding`: the encoder's features, no unit: a task head is yours to train on them.")
    folded = [n for n, m, sd in zip(md.get("outputs") or [], md.get("target_mean") or [], md.get("target_std") or [])
              if (m, sd) != (0.0, 1.0) and n in quant]
    if folded:
        out.append(f"- The int8 TFLite's output tensors carry the network's own quantization (scale, integer zero "
                   f"point), which reads {', '.join(f'`{n}`' for n in folded)} as the network learned it, (value - "
                   "target_mean) / target_std (`metadata.json`), not in the unit: read the codes with the affine "
                   "above (`output_quantization`), whose zero point is fractional and may lie outside -128..127.")
    return out


ZERO_PHASE_TEXT = ("This model was trained with the causal band-pass of step 4. A zero-phase one instead (sqtool's "
                   "default for models trained with `band_phase` zero: `scipy.signal.sosfiltfilt` over the window and "
                   "its context, seconds of look-ahead, more RAM; `export --device-filter window` writes it in C) "
                   "feeds the network an input it did not see: `sqtool predict --filter window` beside the default "
                   "on your labelled recordings measures what it costs.")


def band_text(md: dict) -> str:
    """The model card's words for its band-pass and the phase it was trained with."""
    band = md.get("band")
    if not band:
        return "not band-passed"
    lo, hi = band
    what = f"band-passed {lo or 0:g}-{hi or float(md['fs']) / 2:g} Hz"
    return what + (" causally (one running filter, as a sample-by-sample device runs it: `band_phase` causal)"
                   if md.get("band_phase") == "causal" else " zero-phase")


def edge_text(md: dict) -> str:
    """What the document says of the streamed windows against training's whole-recording ones."""
    band = tuple(md["band"]) if md.get("band") else None
    if band and md.get("band_phase") == "causal":
        return (f"Its windows equal the streamed ones above within {CAUSAL_TOL:g} normalised units but near a "
                "recording's start and end, where training's resampler removed the whole recording's mean and "
                "zero-padded (step 2), for as long as the filter remembers them (seconds; some 30 s with a 0.05 Hz "
                "cut-off). Windows "
                "beside a gap differ (training interpolates across a gap before it filters, and scores no window "
                "that holds one). The held-out figures in MODEL_CARD.md are of training's windows.")
    pre, post = zero_phase_context(band)
    tested = (f"within {STREAM_TOL:g} normalised units farther than {pre:g} s from them, tested for this default "
              f"{DEFAULT_BAND[0]:g}-{DEFAULT_BAND[1]:g} Hz band" if band == tuple(DEFAULT_BAND) else
              f"farther than the filter's context, {pre:g} s / {post:g} s, from them; the {STREAM_TOL:g} normalised "
              f"units tested for the default {DEFAULT_BAND[0]:g}-{DEFAULT_BAND[1]:g} Hz band are not measured for "
              "this one")
    example = (" For example, on 10 s arrhythmia segments read by a 10 s model, an audit of one af model measured "
               "up to 0.1 normalised units, p(AF) up to 0.10 apart, one patient's AUROC 0.845 (training's windows) "
               "against 0.828 (streamed)." if md.get("short_records") == "tile" else "")
    return (f"Away from a recording's ends its windows equal the streamed ones above ({tested}). Nearer its ends "
            f"they differ, and a recording not much longer than one window is all ends.{example} Windows beside a gap "
            "differ too (training interpolates across a gap before it filters, and scores no window that holds one). "
            "The held-out figures in MODEL_CARD.md are of training's windows.")


def c_front_end_text(out: Path, md: dict) -> str:
    """What the C of this folder holds: the network only, or (`--device-fs HZ`) the preprocessing too."""
    from sqtool.export.c_window import front_end_info
    info = front_end_info(out / "c")
    if info is None:
        return ("A C export (`--target c`) holds the network only: run the preprocessing on the device yourself, in "
                "floating point, or export with `--device-fs HZ` (your sensor's rate) for `c/sq_window.{h,c}`, which "
                "runs steps 1-6 in C.")
    rate = f"{info['fs_in']:g} Hz"
    causal = info["filter"] == "causal"
    trained_causal = md.get("band_phase") == "causal"
    how = ("" if causal == trained_causal else
           " with the causal band-pass of step 4's last paragraph (`--device-filter causal`: no look-ahead, little "
           "RAM, a phase lag the network was not trained with; `sqtool predict --filter causal` measures it)"
           if causal else
           " with the zero-phase band-pass of step 4's last paragraph (`--device-filter window`: look-ahead and more "
           "RAM, an input the causal-trained network did not see; `sqtool predict --filter window` measures it)")
    return (f"This C export holds them too: `c/sq_window.{{h,c}}` (with `c/sq_window_tables.h`) runs steps 1-6 below "
            f"on the device from {rate} samples{how}, in float32, and hands `sq_model_run` its int8 input every hop "
            "(the header shows the loop). Its codes equal sqtool's stream but where float32 and float64 round a value to "
            "either side of a code (one code apart at most); `sqtool bench` runs it as runtime `c_window` on "
            f"recordings at {rate} and compares its inputs with the stream's, and `sqtool predict --runtime c_window` "
            "writes its outputs per window, to check your device's against. The folder's `Makefile` builds the loop "
            "with `example/main.c` (a recording file in, one line per window out) on the host (`make check`), as "
            "`example/selftest.c` with the vectors compiled in for a board without files (`make selftest`), and for "
            "the MPS2 AN386 Cortex-M4 board (`make check-mps2`, under QEMU; `check-an505` and `check-an547` for the "
            "Cortex-M33 and M55 boards), each compared with "
            "`test_vectors/expected.txt` (a synthetic recording, no subject data): built in ISO C99 with "
            "`-ffp-contract=off` (no fused or reordered float operations), a port must reproduce it bit for bit; a "
            "firmware that compiles `c/*.c` with its own flags adds `-ffp-contract=off` too (GCC's default GNU modes "
            "fuse multiply-adds on an FPU core) and leaves out `-ffast-math`. The steps are written out below for "
            "any other runtime." + (
                " A heart-rate model's folder adds `c/sq_tracker.{h,c}`: the tracker `sqtool predict` writes as "
                "hr_tracked_bpm and `sqtool bench` scores, on the int8 hr_bpm (and quality) outputs and the window's "
                "dropout share, float64 in the same order, so bit for bit (`sq_tracker_push(&trk, y, w.flagged)` "
                "after each `sq_model_run`); the example ends each line with it."
                if (out / "c" / "sq_tracker.c").is_file() else ""))


def tracking_text(out: Path, md: dict) -> str:
    """INTEGRATION.md's tracker section for a heart-rate model (hr_bpm): the steps of `data.hr_tracker`, with
    `core.tracking`'s numbers, for a runtime other than the C (whose c/sq_tracker.c runs them); "" otherwise."""
    outputs = list(md.get("outputs") or [])
    if TRACKED_OUTPUT not in outputs:
        return ""
    c, gate = TrackerCfg(), (f" and its `{QUALITY_OUTPUT}` is > 0" if QUALITY_OUTPUT in outputs else "")
    in_c = ("`c/sq_tracker.{h,c}` runs them in C, float64, bit for bit with sqtool's (`sq_tracker_push` per window)."
            if (out / "c" / "sq_tracker.c").is_file() else
            "With `--target c --device-fs HZ` the export ships them in C (`c/sq_tracker.{h,c}`).")
    return "\n".join([
        "", "## Tracking (`hr_tracked_bpm`)", "",
        "What `sqtool predict` writes as hr_tracked_bpm and `sqtool bench` scores: a causal, slew-limited tracker over "
        "a recording's windows in order, in float64. State: the tracked rate s (none at the recording's start) and a "
        f"signed count k = 0. Per window, with est = its `{TRACKED_OUTPUT}`:", "",
        f"1. ok: fewer than {100 * MAX_FLAGGED:g} % of the window's samples were gaps (step 1){gate}; finite: est is a "
        f"number within {c.lo_bpm:g}-{c.hi_bpm:g} BPM.",
        "2. Not (ok and finite): report s unchanged; before any state, report est if finite, else nothing.",
        "3. No state yet: s = est, report it.",
        f"4. d = est - s. If |d| > {c.max_step_bpm:g}: g = the sign of d; k = k + g if k has g's sign, else k = g; if "
        f"|k| >= {c.reset_after}, s = est and k = 0 (re-acquired), report s; otherwise d = {c.max_step_bpm:g} g. "
        "If |d| <= that, k = 0.",
        f"5. s = s + {c.alpha:g} d, report s.", "", in_c, ""])


def write_integration(out: Path, model_cfg: dict, md: dict, files: set[str], parity_file: str | None) -> Path:
    """INTEGRATION.md (templates/INTEGRATION_time.md) filled for this model and the model files `files` it ships."""
    T = window_samples(md)
    runtimes = [(r, f) for r, f in (("onnx_float", "model_float.onnx"), ("litert_float", "model_float.tflite"),
                                    ("onnx", "model_int8.onnx"), ("tflite", "model_int8.tflite"),
                                    ("c", "c/sq_model.h")) if f in files]
    values = {"MODEL": model_cfg["name"], "VERSION": md.get("sqtool_version", "?"), "MODEL_SHA": md.get("model_sha256"),
              "TASK": md["task"], "TASK_TEXT": task_text(md), "FS": f"{float(md['fs']):g}",
              "WINDOW_S": f"{float(md['window_s']):g}", "HOP_S": f"{float(md['hop_s']):g}", "T": T,
              "CHANNELS": ", ".join(md["channels"]), "INPUT_TEXT": input_text(md, files), "OUTPUT_TEXT": output_text(md),
              "STEPS": "\n".join(preprocessing_steps(md)), "OUTPUTS": "\n".join(output_lines(md)),
              "EDGES": edge_text(md), "FLAGGED": f"{100 * FLAGGED:g}",
              "RUNTIMES": ", ".join(f"`--runtime {r}` ({f})" for r, f in runtimes) or "its default runtime",
              "PARITY": (f"`{parity_file}` here holds input windows after step 6 (`x`, (N, {len(md['channels'])}, "
                         f"{T}) float32, made by training's whole-recording path) and their labels (`y`): fed to your "
                         "runtime, they check the network and the output reading (the export's parity rows in "
                         "`export_report.md` were measured on them), not your steps 1-6." if parity_file else
                         "This folder holds no parity windows (the export was given none): `sqtool predict` above is "
                         "the check."),
              "C_FRONT_END": c_front_end_text(out, md), "TRACKING": tracking_text(out, md),
              "PROB_COLUMNS": " (a logit as its probability, e.g. `p_af`)" if any(
                  u == "logit" for u in md.get("units") or []) else "",
              "CAUSAL_TEXT": (ZERO_PHASE_TEXT if md.get("band_phase") == "causal" and md.get("band") else
                              "A causal filter instead of step 4 (one running `scipy.signal.sosfilt` over the "
                              "model-rate stream, started in its first sample's steady state, `zi = sosfilt_zi(sos) "
                              "* x[0]`; no look-ahead, what a sample-by-sample device runs; `export --device-filter "
                              "causal` writes it in C) feeds the network another input, with a phase lag: "
                              "`sqtool predict --filter causal` beside the default `--filter window` on your labelled "
                              "recordings measures what it costs (outputs window by window; a regression label's MAE "
                              "per recording)."
                              if md.get("band") else "")}
    path = out / "INTEGRATION.md"
    atomic_write_text(path, _fill((TEMPLATES / "INTEGRATION_time.md").read_text(), values))
    return path


# ----------------------------------------------------------------------------- MODEL_CARD.md

def _cell(v, fmt: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def _test(t: dict | None) -> dict | None:
    """A paired test's dict (`core.metrics.skill_test`) read back from a metrics.json, its NaNs (written as null)
    NaN again, as the verdict functions take it, its CI clipped to the metric's range (`clip_interval`: a file from
    before the clip)."""
    if not t:
        return t
    return {**t, **{k: nan_if_none(t.get(k)) for k in ("model", "reference", "diff", "p")},
            "diff_ci95": list(clip_interval(*(t.get("diff_ci95") or [None, None]), t.get("metric"), diff=True))}


def _metric_names(task: str, sample: dict) -> list[str]:
    """The table's metric columns: a classifier's AUROC, F1, accuracy; a regression's MAE, per output where it has
    several (bp: sbp, dbp and their mean)."""
    if task in CLASSIFICATION_TASKS:
        return [k for k in ("auroc", "f1_weighted", "accuracy") if k in sample]
    per = [k for k in sample if k.startswith("mae_")]
    return per + ["mae"] if len(per) > 1 else ["mae"]


def _header(names: list[str], units) -> str:
    """Column heads, a MAE with its unit (`skill_unit`: one shared by every output)."""
    u = skill_unit("mae", units)
    return " | ".join(f"{n} ({u})" if n.startswith("mae") and u else n for n in names)


def _row_files(key: str, kind: str | None, files: set[str]) -> str:
    """The model files of this folder a quantize run's row is: the int8 student's and the float student's (an int8
    export ships both), or none ("")."""
    if key == "student_int8" and kind == "student_int8":
        mine = [f for f in files if "int8" in f or f.startswith("c/")]
    elif key == "student_float" and kind in ("student_int8", "student_float"):
        mine = [f for f in files if "float" in f]
    else:
        return ""
    return ", ".join(sorted(mine))


def quantize_sections(m: dict, held: list[str], md: dict, files: set[str], estimate: bool = False) -> list[str]:
    """A time-domain quantize run's held-out table: trivial, classic, teacher, float and int8 student, each with
    its task metrics (pooled over the held-out windows), its skill against the trivial predictor (over subjects)
    and its prediction spread; the rows this folder's files are marked; the verdict lines; what the fine-tune said of
    the teacher; the quality head's effect. `estimate`: the run is a final fit's estimate run (its rows are that
    run's models, of this model's recipe)."""
    task, sk = m["task"], m.get("skill") or {}
    units = m.get("units") or []
    models = [(k, label) for k, label in QUANTIZE_MODELS if isinstance(m.get(k), dict) and m[k].get("metrics")]
    names = _metric_names(task, m[models[-1][0]]["metrics"] if models else {})
    tests = {k: _test((sk.get("models", {}).get(k) or {}).get("skill")) for k, _ in models}
    n_subj = next((t.get("subjects") for t in tests.values() if t and t.get("subjects")), len(held))
    metric = next((t["metric"] for t in tests.values() if t), "metric")
    spread = (sk.get("models", {}).get("student_int8") or {}).get("spread") or {}
    saw = teacher_saw(m)
    lines = ["## Held-out metrics", "",
             f"Held-out subjects ({len(held)}: {', '.join(held)}; {m.get('heldout_windows', '?')} windows), "
             + (f"never in quantization; {saw}." if saw else "never in fine-tuning or quantization.")
             + " The task metrics are pooled over their windows; \"vs trivial\" is each model's "
             f"{metric} minus the trivial predictor's (fitted on the training subjects only), its 95 % t-interval and "
             "paired p over the held-out subjects"
             + (f" (the targets' std on these windows: {', '.join(_cell(v, '.3g') for v in spread['target_std'])})"
                if spread.get("target_std") else "") + "."
             + (f" With {n_subjects(n_subj)} held out that interval is wide: NO SKILL below means skill was not "
                "shown, not that the model has none; hold out more subjects to know."
                if n_subj and (too_few_subjects(n_subj) or swap_test_cannot_show(metric, n_subj)) else "")
             + (f" **These figures are no measure of skill: {m['heldout_one_class']}.**" if m.get("heldout_one_class")
                else ""), "",
             "| model | " + _header(names, units) + " | vs trivial (95 % CI, p) | prediction std |",
             "|---|" + "---|" * (len(names) + 2)]
    triv, classic = sk.get("trivial") or {}, sk.get("classic") or {}
    lines.append(f"| trivial predictor (the training subjects' {'base rate' if task in CLASSIFICATION_TASKS else 'mean'})"
                 " | " + " | ".join(_cell(triv.get(n)) for n in names) + " | - | 0 |")
    if classic.get("name"):
        lines.append(f"| classic: {classic['name']} | "
                     + " | ".join(_cell((classic.get("metrics") or {}).get(n)) for n in names) + " | - | - |")
    for k, label in models:
        t = tests[k] or {}
        vs = ("-" if not t else "not measurable" if not np.isfinite(t["diff"]) else
              f"{_cell(t['diff'], '+.3f')} [{_cell(t['diff_ci95'][0], '+.3f')}, {_cell(t['diff_ci95'][1], '+.3f')}], "
              f"p {_cell(t['p'], '.3g')}: " + ("skill" if t.get("skill") and not too_few_subjects(t.get("subjects"))
                                                else "**NO SKILL**"))
        std = ", ".join(_cell(v, ".3g") for v in ((sk.get("models", {}).get(k) or {}).get("spread") or {})
                        .get("pred_std") or []) or "-"
        mine = _row_files(k, md.get("checkpoint_kind"), files)
        name = (f"**{label}** (that run's; this model's recipe)" if estimate and k != "teacher" and mine else
                f"**{label}** (this folder: {mine})" if mine else label)
        lines.append(f"| {name} | " + " | ".join(_cell((m[k]["metrics"] or {}).get(n)) for n in names)
                     + f" | {vs} | {std} |")
    lines.append("")
    for k, label in models:
        if tests[k]:
            u = skill_unit(tests[k]["metric"], units)
            lines.append(f"- {skill_line(task, tests[k], f'{label} ' + tests[k]['metric'], u, few=FEW_SUBJECTS)}"
                         + classic_text(_test((sk['models'][k] or {}).get('vs_classic')), f"{label} {metric}", unit=u))
    f1 = {k: (m[k]["metrics"] or {}).get("f1_weighted") for k, _ in models}
    if task in CLASSIFICATION_TASKS and f1.get("student_int8") is not None and triv.get("f1_weighted") is not None \
            and f1["student_int8"] <= triv["f1_weighted"] + 1e-9 and ((m["student_int8"]["metrics"] or {}).get(
                "auroc") or 0) > 0.5:
        lines.append(f"- **At the p > 0.5 threshold the int8 student's F1 ({f1['student_int8']:.3f}) is no better than "
                     f"the trivial predictor's ({triv['f1_weighted']:.3f})** although its AUROC is "
                     f"{m['student_int8']['metrics']['auroc']:.3f}: its probabilities are not centred on 0.5. Do not "
                     "ship it with that threshold; choose one on data of your own device.")
    ts = _test(md.get("teacher_skill")) if not estimate else None
    if ts and np.isfinite(ts.get("model", float("nan"))):
        worse = not ts.get("skill") and worse_by_ci(ts)
        lines.append(f"- The teacher's fine-tune scored its fold models out of fold over its {ts.get('subjects', '?')} "
                     f"training subjects (`metadata.json` teacher_skill): {ts['metric']} {ts['model']:.3f} against the "
                     f"trivial {ts['reference']:.3f}, "
                     + ("skill" if ts.get("skill") else "**worse than the trivial predictor** (the 95 % CI of the "
                        "difference excludes 0)" if worse else "NO SKILL")
                     + "; the teacher row above is its final model on the held-out subjects: two measurements on "
                     "different subjects, each with its own interval.")
    lines += quality_lines(m, md)
    return lines


def quality_lines(m: dict, md: dict) -> list[str]:
    """What a regression student's quality head did on the held-out windows (quantize's `coverage`: the int8
    student's error keeping the windows it trusts most, and at p > 0.5), and the rule it was trained on."""
    cov, qh = m.get("coverage") or {}, m.get("quality_head") or {}
    if QUALITY_OUTPUT not in (md.get("outputs") or []) or not cov.get("by_coverage"):
        return []
    unit = (md.get("units") or [""])[0]
    by = {round(r["coverage"], 2): r["mae"] for r in cov["by_coverage"] if r.get("mae") is not None}
    at = next((r for r in cov.get("by_threshold") or [] if abs(r.get("threshold", 0) - 0.5) < 1e-9), None)
    rule = {"both": "the teacher's error above {e:g} {u} or a signal-quality index <= 0.5 (where the data has one)",
            "teacher_error": "the teacher's error above {e:g} {u}", "sqi": "a signal-quality index <= 0.5"}.get(
        qh.get("label"), "quantize's --quality-label rule").format(e=qh.get("teacher_err_threshold") or 0, u=unit)
    poor = qh.get("poor_fraction_train")
    verdict = ("" if by.get(0.8) is None or by.get(1.0) is None else
               ". **Here the windows it trusts most are no better than all of them: do not gate on it.**"
               if by[0.8] >= by[1.0] else ". Keeping the windows it trusts most lowers the error here.")
    return ["", f"The int8 student's `{QUALITY_OUTPUT}` (trained to call a window poor on {rule}; "
            + (f"{100 * poor:.1f} % of the training windows were" if poor is not None else "how many were: not "
               "recorded") + f") on the held-out windows, its `{md['outputs'][0]}` MAE keeping the windows it trusts "
            "most: " + ", ".join(f"{100 * c:.0f} % {by[c]:.3g}" for c in sorted(by, reverse=True))
            + (f" {unit}; at p(good) > 0.5 it keeps {100 * at['coverage']:.0f} % (MAE {at['mae']:.3g} {unit})"
               if at and at.get("mae") is not None else f" {unit}") + (verdict or ".")]


def finetune_sections(m: dict) -> list[str]:
    """A fine-tune's figures (a teacher's export): out of fold over its training subjects, said so, with its skill
    verdict; its held-out subjects are scored by `sqtool quantize`, not here."""
    task, pm = m["task"], m.get("primary_metric")
    names = _metric_names(task, m.get("metrics") or {})
    held = [str(h) for h in m.get("heldout_subjects") or []]
    lines = ["## Out-of-fold metrics (the training subjects)", "",
             f"This folder's model is the fine-tune's final fit on its {m.get('subjects', '?')} training subjects; "
             f"the figures are of its fold models ({m.get('folds', 'subject folds')}, {m.get('windows', '?')} "
             "windows): each window scored by the fold model that did not train on its subject, pooled. "
             + (heldout_text(m, held) if held else ""), "",
             "| | " + _header(names, m.get("units") or []) + " |", "|---|" + "---|" * len(names),
             "| model (out of fold) | " + " | ".join(_cell((m.get("metrics") or {}).get(n)) for n in names) + " |"]
    sk = m.get("skill") or {}
    if sk.get("trivial"):
        lines.append("| trivial predictor | " + " | ".join(_cell(sk["trivial"].get(n)) for n in names) + " |")
    if (sk.get("classic") or {}).get("name"):
        lines.append(f"| classic: {sk['classic']['name']} | "
                     + " | ".join(_cell((sk["classic"].get("metrics") or {}).get(n)) for n in names) + " |")
    if sk.get("skill"):
        u = skill_unit(sk["skill"]["metric"], m.get("units") or [])
        lines += ["", f"- {skill_line(task, _test(sk['skill']), unit=u)}" + classic_text(_test(sk.get("vs_classic")),
                                                                                         unit=u)]
    if pm:
        lines.append(f"- primary metric {pm} (95 % CI over subjects: "
                     f"{', '.join(_cell(v) for v in (m.get('ci95') or {}).get(pm) or [])})")
    return lines


def heldout_text(m: dict, held: list[str]) -> str:
    """The card's sentence on a fine-tune's held-out subjects: scored by its final model (a model that ships from
    the fine-tune, rr_spec: metrics["heldout"]), else by `sqtool quantize` beside its students."""
    h = m.get("heldout")
    if isinstance(h, dict) and h.get(h.get("metric", "")) is not None:
        ci = h.get("ci95") or []
        return (f"The subjects held out of the fine-tuning ({', '.join(held)}), scored by this model (never trained on "
                f"them): {h['metric'].upper()} {h[h['metric']]:.3f} over {h.get('windows', '?')} windows"
                + (f" (95 % CI over subjects {ci[0]:.3f}, {ci[1]:.3f})." if len(ci) == 2 and len(held) > 1
                   and None not in ci else f" ({h['ci_note']})." if h.get("ci_note")
                   else " (no CI: one subject)." if len(held) == 1 else ".")
                + (f" **These figures are no measure of skill: {h['one_class']}.**" if h.get("one_class") else ""))
    return f"The subjects held out of the fine-tuning ({', '.join(held)}) are scored by `sqtool quantize`, beside its students."


def metric_sections(m: dict, held: list[str], md: dict, files: set[str]) -> list[str]:
    """The card's figures from the source run's metrics.json, by what the run was."""
    if m.get("final_fit"):
        est = m.get("estimate") or {}
        if not est.get("metrics"):
            return ["## Held-out metrics", "", "- none: this model is a final fit on every subject (`sqtool quantize "
                    "--heldout-fraction 0`) and no run of its recipe with held-out subjects was given "
                    "(`--estimate-from`)"]
        e = est["metrics"]
        sec = quantize_sections(e, [str(h) for h in e.get("heldout_subjects") or []], md, files, estimate=True)
        return (["## Held-out estimate (the same recipe, run with subjects held out)", "",
                 f"This model was trained on every subject, these too. The figures below were measured by the "
                 f"quantize run `{PurePath(str(est['run'])).name}` (its folder name), the same recipe run with them "
                 "held out: an estimate of this model's error on new subjects, not a measurement of it."] + sec[1:])
    if isinstance(m.get("student_int8"), dict):
        return quantize_sections(m, held, md, files)
    if m.get("metrics") and m.get("task"):
        return finetune_sections(m)
    return ["## Held-out metrics", "", "- no metrics.json of a quantize or fine-tune run beside the source "
            "checkpoint: none reported here."]


def time_model_card(model_cfg: dict, md: dict, graph, run_dir=None, names: dict | None = None,
                    files: set[str] = frozenset(), parity: str | None = None) -> str:
    """MODEL_CARD.md of a time-domain model (module docstring); `files`: the model files of the folder, `parity`:
    its parity windows' file name (None: none)."""
    data, ctx = data_sections(md, run_dir, names, "reference heart rate" if md["task"] == "hr" else "labels")
    held = [str(h) for h in (ctx.held if "training_data" in md else ctx.metrics.get("heldout_subjects") or [])]
    int8 = graph is not None
    size = (f"- {graph.macs} MACs per window, {graph.weight_bytes} bytes of int8 weights and int32 biases" if int8
            else "- float64 tree thresholds and leaf values (a float-only export: no int8 model)"
            if model_cfg.get("family") == "beat_trees" else "- float32 weights (a float-only export: no int8 model)")
    lines = [f"# Model card: {model_cfg['name']} ({md['task']}: {task_text(md)})", "",
             "## Task", "",
             f"{task_text(md)[0].upper()}{task_text(md)[1:]}, from {float(md['window_s']):g} s windows of "
             f"{', '.join(md['channels'])} resampled to {float(md['fs']):g} Hz and {band_text(md)}, one every "
             f"{float(md['hop_s']):g} s (INTEGRATION.md: the preprocessing that must run before the network, and how "
             "to read its outputs).", "",
             "## Model", "",
             f"- family `{model_cfg.get('family')}`, arch `{json.dumps(model_cfg.get('arch'))}`",
             f"- quantization `{md.get('quant_scheme')}`: {md.get('quant_description')}", size,
             *identity_lines(md, "weights and model config with its preprocessing contract"), ""] + data
    try:                                               # a metrics.json of another layout never fails the export
        lines += [""] + metric_sections(ctx.metrics, held, md, files)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        lines += ["", "## Held-out metrics", "", f"- the source run's metrics.json could not be read as a quantize or "
                  f"fine-tune run's ({type(e).__name__}: {e}): none reported here; see that run's report.md."]
    lines += ["", "## Limitations", ""]
    if ctx.synthetic_only:
        lines.append("- **Trained on synthetic PPG only**: its outputs on real recordings are not validated. Train on "
                     "real recordings before using it.")
    who = (f" (trained on {n_subjects(len(ctx.seen))}; age, sex and skin tone are not recorded in sqtool's datasets, "
           "so the card cannot say which groups they cover)" if ctx.seen else "")
    quality = QUALITY_OUTPUT in (md.get("outputs") or [])
    lines += [f"- Trained and evaluated on the data above only{who}; not validated for clinical use or diagnosis, "
              "nor on sensors, body sites or populations outside the training data.",
              f"- The input contract is INTEGRATION.md's: {float(md['fs']):g} Hz after resampling, "
              f"{float(md['window_s']):g} s windows, band-pass {md.get('band')}, `{md.get('norm')}` normalisation; "
              "another preprocessing gives another input and unmeasured results.",
              (f"- Its `{QUALITY_OUTPUT}` is the student's own guess of how far a window's `{md['outputs'][0]}` can be "
               "trusted (above: what it did on the held-out windows), not a detector of noise or of a sensor off "
               "the skin: such windows still give an output." if quality else
               "- No signal-quality gate is part of this model: a window of noise or of a sensor off the skin still "
               "gives an output.") + " Gaps are the integrator's to flag (INTEGRATION.md step 1)."]
    for r in md.get("output_quantization") or [] if int8 else []:
        if r.get("unit") != "logit":
            lo, hi = code_range(r)
            lines.append(f"- The int8 model reports `{r['name']}` between {lo:.4g} and {hi:.4g} {r.get('unit', '')} "
                         "only (its output codes' range): a value beyond saturates there.")
    lines += parity_lines(md, parity)
    lines.append("")
    return "\n".join(lines)


def write_time_docs(out_dir, model_cfg: dict, graph, md: dict, run_dir=None, names: dict | None = None) -> list[Path]:
    """MODEL_CARD.md and INTEGRATION.md of a time-domain model, for every export target, after its model files are
    written (the documents name those the folder holds); `graph` None: a float-only export. Returns their paths."""
    out = Path(out_dir)
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    if "fs" not in md or "channels" not in md:
        raise SqtoolError(f"export of {mc.get('name')}: the metadata lacks the input contract (fs, channels) the "
                          "integration document is written from")
    parity = shipped_parity(out)
    files = {f for f in MODEL_FILES if (out / f).is_file()}
    atomic_write_text(out / "MODEL_CARD.md", time_model_card(mc, md, graph, run_dir, names, files, parity))
    return [out / "MODEL_CARD.md", write_integration(out, mc, md, files, parity)]
