"""MODEL_CARD.md and INTEGRATION.md of a model whose input a fixed front end computes from the PPG window: `rr_spec`
(family resp_spec: respiratory spectra) and `af_beats` (family beat_trees: beat features -> boosted trees).

    paths = write_front_docs(out_dir, model_cfg, md, run_dir=None)

INTEGRATION.md (templates/INTEGRATION_front.md) states the window's preprocessing (the time-domain models' steps
1-7, `time_docs.preprocessing_steps`, this model's numbers resolved), then the front end step by step with its
numbers (rr_spec: `frontend` of its cfg, `data.resp` the reference; af_beats: `data.beats.interval_features`, the
features by name), then how the output is read (rr_spec: the decoding, `arch.local_rpm`; af_beats: a logit).
MODEL_CARD.md is the time-domain card (`time_docs.time_model_card`: task, model, data, the fine-tune's figures, its
held-out subjects scored by the final model, limitations).
"""
from __future__ import annotations

from pathlib import Path

from sqtool.core import SqtoolError, atomic_write_text
from sqtool.data.resp import RESAMPLE_HZ
from sqtool.export.kit import TEMPLATES, _fill, shipped_parity
from sqtool.export.time_docs import edge_text, preprocessing_steps, task_text, time_model_card, window_samples

MODEL_FILES = ("model_float.onnx", "model_float.tflite")


def resp_front_text(md: dict) -> str:
    """rr_spec's step 8: data.resp's front end in words, with the model's numbers."""
    fe = md.get("frontend") or {}
    lo, hi, step = (float(v) for v in fe["bins_rpm"])
    fs, win = float(md["fs"]), float(md["window_s"])
    r = float(fe.get("resample_hz", RESAMPLE_HZ))
    return (
        f"On the window x' of step 6 (T samples at {fs:g} Hz), four rows over the bins b_i = {lo:g} + {step:g} i "
        f"breaths/min, i = 0..{md['n_bins'] - 1} ({lo:g}-{hi:g}), on the time grid g = 0, {1 / r:g}, {2 / r:g}, ... < "
        f"{win:g} s ({r:g} Hz):\n"
        f"   - **baseline**: x' low-passed, `scipy.signal.sosfiltfilt(scipy.signal.butter(2, 1.0, \"lowpass\", "
        f"fs={fs:g}, output=\"sos\"), x')`, interpolated linearly (`numpy.interp`) onto g.\n"
        f"   - **beats**: x' band-passed, `sosfiltfilt(butter(2, [0.5, {min(5.0, 0.45 * fs):g}], \"bandpass\", "
        f"fs={fs:g}, output=\"sos\"), x')` = xf; peaks `scipy.signal.find_peaks(xf, distance={max(1, int(0.33 * fs))}, "
        "prominence=0.3 * numpy.std(xf))`. Fewer than 4 peaks: the RIIV, RIAV and RIFV rows are all zero. Each peak's "
        "time is refined by the parabola through xf at the peak and its two neighbours (offset 0.5 (a - c) / (a - 2b + "
        "c), clipped to +-0.5 sample; 0 when the denominator is 0); its height is x' at the peak; its amplitude the "
        "height minus the minimum of x' from the previous peak (the first: 0.6 s before it) to the peak.\n"
        "   - **RIIV / RIAV / RIFV**: the heights and the amplitudes at the beat times, and the beat intervals at the "
        "midpoints of consecutive beats, interpolated linearly onto the points of g between the first and the last "
        "beat.\n"
        f"   - **power** of each series v (n samples at {r:g} Hz; fewer than 8, or a non-finite value: a zero row): "
        "subtract its least-squares line (`numpy.polyfit(k, v, 1)`), multiply by `numpy.hanning(n)`, P(b_i) = |sum_k "
        f"v_k exp(-2 pi j (b_i / 60) k / {r:g})|^2 at every bin (a direct Fourier sum, no FFT grid). Each row is "
        "divided by its own maximum (a row of zeros stays zero).")


def beats_front_text(md: dict) -> str:
    """af_beats' step 8: the features by name, data.beats the reference (their definitions are its docstring's)."""
    names = md.get("input_features") or []
    return (
        f"`sqtool.data.beats.interval_features(x', {float(md['fs']):g})` of the window x' of step 6: beats are the "
        "peaks of its 0.5-5 Hz band (at least 0.33 s apart, prominence 0.3 std, refined by a parabola); from their "
        "intervals, the waveform and the pulse shapes it computes the features `data.beats` defines (its module "
        "documentation gives each one's formula). The network reads these "
        f"{len(names)}, in this order (`input_features`): " + ", ".join(f"`{n}`" for n in names) + ". A feature "
        "that is undefined on a window (too few beats) is NaN: keep it NaN, the trees send it where training sent "
        "missing values. Port the features from the Python reference and compare them with it (below) before "
        "anything else: a tree splits on a threshold, so a small difference near one changes the output.")


def front_values(md: dict, files: set[str]) -> dict:
    """The family's parts of INTEGRATION.md."""
    fam = (md.get("model_cfg") or {}).get("family")
    if fam == "resp_spec":
        chans, F = md.get("input_channels") or [], int(md["n_bins"])
        tensors = [f"{f} `spectra` {shape}" for f, shape in
                   (("model_float.onnx", f"(1, {len(chans)}, {F}) channels-first"),
                    ("model_float.tflite", f"(1, 1, {F}, {len(chans)}) channels-last")) if f in files]
        local = float((md.get("arch") or {}).get("local_rpm", 3.0))
        return {"READS": "four respiratory spectra of a PPG window", "FRONT_REF": "`sqtool.data.resp.resp_window`",
                "FRONT_END": resp_front_text(md),
                "INPUT_TEXT": "the spectra of step 8: " + ("; ".join(tensors) or "(no model file)") + ", float32",
                "OUTPUT_TEXT": f"`{(md.get('outputs') or ['rr_logits'])[0]}` ({F}) logits, one per bin (step 10 "
                               "turns them into the rate)",
                "NETWORK": f"The spectra of step 8 as one (1, {len(chans)}, {F}) float32 tensor (rows in the order "
                           f"{', '.join(chans)}) -> {F} logits z.",
                "READ": f"p = softmax(z); m = the bin of the largest p; rate = sum(p_i b_i) / sum(p_i) over the bins "
                        f"with |b_i - b_m| <= {local:g} breaths/min (`arch.local_rpm`): the rate in breaths/min "
                        "(`sqtool.models.rr_spec.decode`).",
                "COLUMN": "`rr_bpm`", "X_TEXT": f"spectra (`x`, (N, {len(chans)}, {F}) float32)"}
    if fam == "beat_trees":
        K = len(md.get("input_features") or [])
        trees = (md.get("arch") or {})
        n = trees.get("trees", "?")
        ensemble = (f"a forest of {n} trees (scikit-learn's, `arch.trees_cfg`) whose leaves' AF shares are averaged "
                    "into p(AF), clipped to [1e-6, 1 - 1e-6] and turned into the log-odds"
                    if trees.get("combine") == "mean_probability" else
                    f"{n} boosted trees (scikit-learn's, `arch.trees_cfg`) summed onto a baseline")
        return {"READS": "a vector of beat features of a PPG window", "FRONT_REF": "`sqtool.data.beats`",
                "FRONT_END": beats_front_text(md),
                "INPUT_TEXT": f"model_float.onnx `features` (1, 1, {K}) float64, the features of step 8 in order",
                "OUTPUT_TEXT": "`logit_af` (1, 1): the log-odds of AF",
                "NETWORK": f"The features of step 8 as one (1, 1, {K}) float64 tensor -> `logit_af`: {ensemble}, as "
                           "ONNX Gather / Where operations (no tree operator needed).",
                "READ": "p(AF) = 1 / (1 + exp(-logit_af)). sqtool's metrics (F1, accuracy) call a window AF where p > "
                        "0.5 (logit > 0); AUROC needs no threshold. Choose your operating point on data of your own "
                        "device.",
                "COLUMN": "`p_af`", "X_TEXT": f"feature vectors (`x`, (N, 1, {K}) float64)"}
    raise SqtoolError(f"export of {md.get('model')}: no front-end document for family {fam}")


def write_front_docs(out_dir, model_cfg: dict, md: dict, run_dir=None, names: dict | None = None) -> list[Path]:
    """MODEL_CARD.md and INTEGRATION.md of a front-end model's export (after its model files are written)."""
    out = Path(out_dir)
    mc = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    if not md.get("frontend") or "fs" not in md:
        raise SqtoolError(f"export of {mc.get('name')}: the metadata lacks the front end (frontend, fs) the "
                          "integration document is written from")
    files = {f for f in MODEL_FILES if (out / f).is_file()}
    parity = shipped_parity(out)
    atomic_write_text(out / "MODEL_CARD.md", time_model_card(mc, md, None, run_dir, names, files, parity))
    fam = front_values(md, files)
    runtimes = [f"`--runtime {r}` ({f})" for r, f in (("onnx", "model_float.onnx"), ("tflite", "model_float.tflite"))
                if f in files]
    values = {"MODEL": mc["name"], "VERSION": md.get("sqtool_version", "?"), "MODEL_SHA": md.get("model_sha256"),
              "TASK": md["task"], "TASK_TEXT": task_text(md), "FS": f"{float(md['fs']):g}",
              "WINDOW_S": f"{float(md['window_s']):g}", "HOP_S": f"{float(md['hop_s']):g}", "T": window_samples(md),
              "TFLITE_META": ", the TFLite metadata buffer `sqtool_metadata`" if "model_float.tflite" in files else "",
              "STEPS": "\n".join(preprocessing_steps(md)), "EDGES": edge_text(md),
              "RUNTIMES": ", ".join(runtimes) or "its default runtime", **fam,
              "PARITY": (f"`{parity}` here holds network inputs after step 8 ({fam['X_TEXT']}) and their labels (`y`): "
                         "fed to your runtime, they check the network and step 10 (the export's parity rows in "
                         "`export_report.md` were measured on them), not your steps 1-8." if parity else
                         "This folder holds no parity windows: `sqtool predict` above is the check.")}
    path = out / "INTEGRATION.md"
    atomic_write_text(path, _fill((TEMPLATES / "INTEGRATION_front.md").read_text(), values))
    return [out / "MODEL_CARD.md", path]
