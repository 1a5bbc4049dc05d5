"""The metadata every exported artifact carries, and the refusal of checkpoints that lack it.

One dict, built once from the checkpoint (its ModelCfg is the preprocessing contract) and the integer
graph, written as `metadata.json` and embedded in each artifact: ONNX `metadata_props`, a TFLite
metadata buffer named "sqtool_metadata", and the C header's comment block and `#define`s. A file
found alone on a device therefore still says how to feed it and how to read its output.

Units (time-domain models, students `cnn1d_student_*` and resnet1d teachers): the networks learn regression
targets normalised, (y - target_mean) / target_std. The exported artifacts speak units instead: the float
ONNX / TFLite fold the affine into their last layer and the int8 ONNX applies it after its last
DequantizeLinear, so every float-valued output is in `units` (hr_bpm in BPM), one output tensor per name
in `outputs`. int8 codes (TFLite int8, C) keep the network's quantization; `output_quantization` gives,
per output, the scale and (fractional) zero point with value = scale * (code - zero_point) in its unit.
`output_affine` / `to_units` / `from_units` are the one place that conversion lives.

Short recordings: `short_records` says what the model's training data did with a recording shorter than one
window, by its task (`sqtool.data.tasks.SHORT_RECORDS`): "tile" (af, bp, quality: repeated end to end to fill the
window, `sqtool.data.record.tile_record`; PPG-BP's 2.1 s segments) or "refuse" (hr, rr); `sqtool predict` reads it
from here. The task decides it at the data stage, so an export writes it for every checkpoint of the task (the
quantized student's model_cfg included, which is built from the registry's student, not the teacher's cfg).

Training data: `training_data` lists the datasets and the subjects the checkpoint was trained and held out on
(recorded by `sqtool quantize`), each subject by its id or, per `sqtool export --subjects` (`export.subjects`), as a
pseudonym; `training_data.pseudonymised` then names the datasets so written (absent: every subject by its id).

Identity: `model_sha256` names the model by its content (`model_sha256()`: the checkpoint's weights and its
model_cfg, the front end and the decoder with its calibration tables included); two exports of the same weights
carry the same one, whichever run, folder or day made them. `source_sha256` is the hash of the source checkpoint
FILE, which holds its creation time and paths: it differs between two rebuilds of one model. `git_sha` is the
sqtool commit that exported it ("-dirty": with uncommitted changes) and `created` the export time; these
three change from build to build (IDENTITY_NOTE, written next to them).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from sqtool import __version__
from sqtool.core import SqtoolError, git_sha, stream_filter
from sqtool.core.io import created_stamp, dumps_json

REQUIRED = ("name", "fs", "window_s", "hop_s", "channels", "norm", "task")
TFLITE_METADATA_NAME = "sqtool_metadata"
IDENTITY_NOTE = ("model_sha256: the model's content (weights + model_cfg, front end and decoder tables included), "
                 "the same for every rebuild of the same model; source_sha256: the source checkpoint file's bytes "
                 "(the file holds its creation time and paths, so it changes with every run); git_sha: the sqtool "
                 "commit that exported it (-dirty: with uncommitted changes); created: the export time")


def _canonical(obj) -> str:
    """JSON with sorted keys and no spaces; tensors / arrays as nested lists."""
    def plain(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"not JSON: {type(o).__name__}")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=plain)


def model_sha256(ckpt: dict) -> str:
    """The model's content id (hex sha256): its model_cfg as canonical JSON (architecture, preprocessing
    contract, quantization preset, front end, decoder and its calibration tables), then every state_dict entry
    in name order (name, dtype, shape, raw bytes). Nothing a rebuild changes enters it (the checkpoint's
    `created`, paths, teacher hashes, the export time): the same weights give the same id."""
    h = hashlib.sha256(b"sqtool-model-sha256/1\n")
    h.update(_canonical(ckpt.get("model_cfg")).encode())
    sd = ckpt.get("state_dict") or {}
    for name in sorted(sd):
        v = sd[name]
        h.update(b"\n" + str(name).encode() + b"\n")
        if hasattr(v, "detach"):                                 # a tensor: (dtype, shape) then its bytes
            v = v.detach().cpu()
            h.update(f"{v.dtype} {tuple(v.shape)}\n".encode())
            h.update(v.numpy().tobytes())                      # (tobytes: C order, whatever the strides)
        else:                                                    # plain data (e.g. a module's extra state)
            h.update(_canonical(v).encode())
    return h.hexdigest()


def check_model_cfg(cfg: dict, where: str) -> None:
    """Refuse a checkpoint whose model_cfg cannot say how to feed and read the model."""
    if not isinstance(cfg, dict):
        raise SqtoolError(f"{where} lacks metadata: model_cfg is not a mapping")
    for k in REQUIRED:
        v = cfg.get(k)
        if v is None or v == "" or v == [] or v == ():
            raise SqtoolError(f"{where} lacks metadata: model_cfg has no '{k}' (sampling rate, window, hop, "
                              "channels, normalisation and task are required for export)")
    if cfg.get("task") != "pretrain":
        outs, units = list(cfg.get("outputs") or []), list(cfg.get("units") or [])
        if not outs or len(units) != len(outs):
            raise SqtoolError(f"{where} lacks metadata: a '{cfg.get('task')}' model needs output names and "
                              f"one unit per output (has outputs={outs}, units={units})")
    if not _positive(cfg["fs"]) or not _positive(cfg["window_s"]):
        raise SqtoolError(f"{where} lacks metadata: fs and window_s must be positive numbers")
    if "band" not in cfg:                         # None is a valid band (no filter); a missing one is not
        raise SqtoolError(f"{where} lacks metadata: model_cfg has no 'band' (the input band-pass, or null "
                          "for none); the artifact cannot say how to filter its input")
    band = cfg["band"]
    if band is not None and (not isinstance(band, (list, tuple)) or len(band) != 2):
        raise SqtoolError(f"{where}: model_cfg band must be [lo, hi] Hz or null, got {band!r}")
    stream_filter(cfg)                            # a band_phase other than zero / causal: one line

def _positive(v) -> bool:
    """A number (not a bool, not text) above 0."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


# what metadata.json holds at its top level, besides model_cfg, that every reader of an export (bench, predict,
# load_model) takes from there: a number above 0, text, or a non-empty list of channel names
EXPORT_FORMAT = "sqtool-export/1"   # what metadata.json says it is; check_metadata refuses any other
READ_BACK = {"fs": "number", "window_s": "number", "hop_s": "number", "task": "name", "model": "name",
             "channels": "list"}
_KIND_TEXT = {"number": "a number above 0", "name": "a name", "list": "a list of channel names"}


def check_metadata(md, where: str) -> None:
    """Refuse an export's metadata.json (`where`: its path) that a reader cannot use: not a mapping, without model_cfg
    (`check_model_cfg`), or without one of READ_BACK's keys or with another type there (an export of an older sqtool,
    a file edited by hand): one line naming the file and the key, never a KeyError or ValueError later."""
    if not isinstance(md, dict) or "model_cfg" not in md:
        raise SqtoolError(f"{where} lacks sqtool metadata (model_cfg): not written by sqtool export")
    if md.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:      # no key: an export from before it, read as this one
        raise SqtoolError(f"{where}: format {md['format']!r}, this sqtool {__version__} reads {EXPORT_FORMAT!r} (an "
                          "export of another sqtool version): export the model again with this one, or use the "
                          "sqtool that wrote it")
    for k, kind in READ_BACK.items():
        v = md.get(k)
        ok = (_positive(v) if kind == "number" else isinstance(v, str) and v != "" if kind == "name" else
              isinstance(v, list) and v != [] and all(isinstance(c, str) for c in v))
        if not ok:
            raise SqtoolError(f"{where}: '{k}' is {'missing' if k not in md else f'{v!r}'}, not {_KIND_TEXT[kind]} "
                              "(an export of an older sqtool, or an edited file): export the model again "
                              "(sqtool export --model RUN --force)")
    check_model_cfg(md["model_cfg"], where)
    check_grid(md, where)


def check_grid(md: dict, where: str) -> None:
    """A spectral export's bin grid as the hosts decode with it (metadata's bins_bpm, n_bins, a decoder's bins_bpm)
    must be the network's own (model_cfg's arch.bins_bpm, else frontend.bins_bpm, as `decoder_spec` reads it): an
    edited grid of as many bins shifts every heart rate without a word (LiteRT's 10 BPM off where the C pipeline,
    its tables compiled, is not). One line naming the key."""
    mc = md["model_cfg"]
    own = next((d.get("bins_bpm") for d in (mc.get("arch"), mc.get("frontend")) if isinstance(d, dict)
                and d.get("bins_bpm") is not None), None)
    if not (isinstance(own, list) and len(own) == 3 and all(_positive(v) for v in own)):
        return                                      # no heart-rate grid (a time-domain regression): nothing to match
    said = {"bins_bpm": md.get("bins_bpm")}
    for name, dec in (("decoder", md.get("decoder")), ("model_cfg.decoder", mc.get("decoder"))):
        said[f"{name}.bins_bpm"] = dec.get("bins_bpm") if isinstance(dec, dict) else None
    n_own = int(round((own[1] - own[0]) / own[2])) + 1
    for key, v in [*said.items(), ("n_bins", md.get("n_bins") if "bins_bpm" in md else None)]:
        same = (v == n_own and not isinstance(v, bool) if key == "n_bins" else isinstance(v, list) and len(v) == 3
                and all(_positive(a) and abs(float(a) - float(b)) <= 1e-9 * float(b) for a, b in zip(v, own)))
        if v is not None and not same:
            raise SqtoolError(f"{where}: '{key}' is {v!r}, not the network's grid (model_cfg's bins_bpm {own}: "
                              f"{n_own} bins; an edited file): export the model again (sqtool export --model "
                              "RUN --force)")


SHORT_RECORDS_NOTE = ("a recording shorter than one window: 'tile' = repeated end to end to fill the window "
                      "(sqtool.data.record.tile_record), one window, as the task's training data were; 'refuse' = "
                      "no window (left out); exports without this key: refuse")


def build_metadata(ckpt: dict, source_sha256: str, graph=None, names: dict[str, str] | None = None,
                   subjects_mode: str = "names", fs_in: float | None = None, n_ppg: int | None = None) -> dict:
    """metadata.json content: model_cfg + quantization scheme + edges' scales/zero points + provenance
    (model_sha256 of `ckpt`, source_sha256 = the hash of the checkpoint file it was read from, git_sha).
    `names` (`export.subjects.subject_names` under `subjects_mode`): the subjects written as pseudonyms.
    Spectral models: `fs_in` / `n_ppg` are the device's rate and PPG sensors (None: the model's training rate and
    its ppg_sensors count) the front-end contract is resolved for (`spectral_contract`)."""
    cfg = ckpt["model_cfg"]
    check_model_cfg(cfg, f"checkpoint {ckpt.get('path', '')}".strip())
    quant = cfg.get("quant")
    desc = "float32"
    if quant:
        from sqtool.models.quant import get_preset
        desc = get_preset(quant).description
    elif cfg.get("family") == "beat_trees":                  # float64 features and thresholds end to end
        quant = desc = "float64"
    outputs = list(cfg.get("outputs") or []) or ["embedding"]
    md = {
        "format": EXPORT_FORMAT,
        "model": cfg["name"],
        "checkpoint_kind": ckpt.get("kind"),
        "task": cfg["task"],
        "fs": float(cfg["fs"]),
        "window_s": float(cfg["window_s"]),
        "hop_s": float(cfg["hop_s"]),
        "n_samples": int(round(float(cfg["fs"]) * float(cfg["window_s"]))),
        "channels": list(cfg["channels"]),
        "input_layout": {"float": "(B, C, T) channels-first (ONNX, PyTorch)",
                         "tflite": "(1, 1, T, C) channels-last", "c": "in[t * C + c] channels-last"},
        "norm": cfg["norm"],
        "band": None if cfg["band"] is None else list(cfg["band"]),
        "band_phase": str(cfg.get("band_phase", "zero")),   # how training ran the band-pass (core.stream_filter)
        "outputs": outputs,
        "units": list(cfg.get("units") or []),
        "target_mean": list(cfg.get("target_mean") or []),
        "target_std": list(cfg.get("target_std") or []),
        "arch": dict(cfg.get("arch") or {}),
        "output_note": "one output tensor per name in outputs, in units (float ONNX / TFLite, int8 ONNX: the "
                       "de-normalisation y * target_std + target_mean is folded into the graph); int8 codes "
                       "(TFLite int8, C): value = scale * (code - zero_point) with output_quantization's "
                       "per-output scale and zero point",
        "quant_scheme": quant or "float32",
        "quant_description": desc,
        "sqtool_version": __version__,
        "model_sha256": model_sha256(ckpt),
        "source_sha256": source_sha256,
        "git_sha": git_sha(),
        "created": created_stamp(),
        "identity_note": IDENTITY_NOTE,
        "model_cfg": cfg,
    }
    if cfg.get("family") == "spec_cnn":                     # spectral: F bins instead of T samples
        lo, hi, step = (float(v) for v in (cfg.get("arch") or {}).get("bins_bpm", (0.0, 0.0, 1.0)))
        n_bins = int(round((hi - lo) / step)) + 1
        md.update({
            "bins_bpm": [lo, hi, step], "n_bins": n_bins,
            "input_layout": {"float": "(B, C, F) spectra, int8 codes / 127, channels-first (ONNX, PyTorch)",
                             "tflite": "(1, 1, F, C) channels-last, tensor 'spectra'",
                             "c": "in[f * C + c] channels-last"},
            "output_note": f"{n_bins} logits, one per heart-rate bin lo + i * step BPM (bins_bpm); "
                           "tflite output tensor 'hr_logits' (1, F)"})
    if cfg.get("family") == "resp_spec":                    # respiratory spectra (B, 4, F) -> breaths/min logits
        from sqtool.models.rr_spec import rr_grid
        fe, bins = cfg.get("frontend") or {}, rr_grid(cfg)
        md.update({
            "bins_rpm": list(fe.get("bins_rpm") or []), "n_bins": int(len(bins)),
            "input_channels": list(fe.get("channels") or []),
            "input_layout": {"float": f"(B, {len(fe.get('channels') or [])}, F) respiratory spectra (rows: "
                                      f"{', '.join(fe.get('channels') or [])}; each scaled to max 1), channels-first "
                                      "(ONNX, PyTorch), tensor 'spectra'",
                             "tflite": "(1, 1, F, 4) channels-last, tensor 'spectra'"},
            "output_note": f"{len(bins)} logits, one per breaths/min bin lo + i * step (bins_rpm); the rate: the "
                           f"softmax-weighted mean of the bins within +-{cfg['arch'].get('local_rpm', 3.0):g} breaths/min "
                           "of the arg-max (arch.local_rpm; INTEGRATION.md); output tensor 'rr_logits' (B, F)"})
        if ckpt.get("train_target_mean"):                   # the training rates' mean: the trivial predictor
            md["train_target_mean"] = [float(v) for v in ckpt["train_target_mean"]]
    if cfg.get("family") == "beat_trees":                   # beat features (B, 1, K) -> the logit of AF
        features = list((cfg.get("frontend") or {}).get("features") or [])   # not `names`: the pseudonym map
        md.update({
            "input_features": features, "n_features": len(features),
            "input_layout": {"float": f"(B, 1, {len(features)}) float64 features in input_features' order "
                                      "(sqtool.data.beats; NaN where a feature is undefined), tensor 'features'"},
            "output_note": "logit_af (B, 1): the log-odds of AF; p(AF) = 1 / (1 + exp(-logit))"})
    from sqtool.data.tasks import short_records
    md["short_records"] = short_records(cfg["task"])         # as training filled a recording shorter than a window
    md["short_records_note"] = SHORT_RECORDS_NOTE
    md["frontend"] = dict(cfg.get("frontend") or {})
    md["decoder"] = dict(cfg.get("decoder") or {})
    if (cfg.get("frontend") or {}).get("type") == "spectrum":          # what must run around the network
        md.pop("n_samples")                                 # the network reads spectra, not T samples
        md.update(spectral_contract(cfg, graph, fs_in, n_ppg))
    if ckpt.get("teacher_skill"):                           # the fine-tune's verdict against the trivial predictor
        md["teacher_skill"] = dict(ckpt["teacher_skill"])
    train, held = list(ckpt.get("train_subjects") or []), list(ckpt.get("heldout_subjects") or [])
    if train or held:                                       # what the model saw (written by `sqtool quantize`)
        from sqtool.core.checkpoint import datasets_of
        from sqtool.export.subjects import PSEUDONYM_NOTE, pseudonymised, renamed
        md["training_data"] = {"datasets": datasets_of(train + held),
                               "train_subjects": renamed([str(s) for s in train], names or {}),
                               "heldout_subjects": renamed([str(s) for s in held], names or {})}
        # a built-in layout read under a name of its own (wrist_troika -> troika): the card's licence and terms
        if layouts := ckpt.get("dataset_layouts") or (ckpt.get("train_cfg") or {}).get("dataset_layouts"):
            md["training_data"]["dataset_layouts"] = dict(layouts)
        if names:                                           # absent: every subject by its id (as before the option)
            md["training_data"].update(subjects_mode=subjects_mode, pseudonymised=pseudonymised(names),
                                       pseudonym_note=PSEUDONYM_NOTE)
    if graph is not None:
        if "bins_bpm" not in md:
            md["output_quantization"] = output_quantization(md, graph.output_scale, graph.output_zp)
        md["quantization"] = graph.quant_params()
        md["int8_layers"] = graph.summary()
        md["macs"] = graph.macs
        md["weight_bytes"] = graph.weight_bytes
    return md


# ----------------------------------------------------------------------------- spectral models: what runs around it

FS_NOTE = ("fs is the front end's MODEL rate: the device signal is resampled to it and the spectra are computed from "
           "windows of it. It is not the network's input rate: the network reads one (C, F) spectrum per hop_s "
           "(`input`); the device's sampling rate is frontend.fs_in")
TAPS_RULE = ("taps_per_phase 0 = auto: P = min(256, ceil(3 M / L)) = ceil(3 fs_in / fs) (24 at 125 Hz, 48 at 256 Hz); "
             "the value here is resolved for fs_in")
DECODER_INT8_ONLY = ("int8_logit_scale", "fixed_point_steps", "fixed_point_tables")   # for int8 codes only
LOGIT_SCALE_NOTE = ("decoder.logit_scale is not read by sqtool (the model's training-time value): the likelihood is "
                    "exp((z_k - max z) / temperature) over REAL-valued logits z: the float ONNX / TFLite and int8 ONNX "
                    "outputs as they come, and for int8 codes (TFLite int8, C) z = code x quantization.output_scale "
                    "(int8_logit_scale = output_scale / temperature per code; c/<prefix>_decoder_tables.h's "
                    "logit_scale). Raw int8 codes with logit_scale 1 make the decoder over-confident")
FLOAT_LOGIT_NOTE = ("decoder.logit_scale is not read by sqtool (the model's training-time value): the likelihood is "
                    "exp((z_k - max z) / temperature) over REAL-valued logits z, the float model's outputs as they "
                    "come (this export holds no int8 model)")


def spectral_contract(cfg: dict, graph=None, fs_in: float | None = None, n_ppg: int | None = None) -> dict:
    """The metadata of a spectral model that says what must run around its network, for an integrator without
    sqtool: `fs_in`, `fs_note`, `input`, `frontend` (the model's frontend keys + the full front-end contract
    resolved at the device rate: every FrontEndCfg field, taps_per_phase resolved, and its steps in words),
    `gating` (when a window is not scored) and `decoder_spec` (the HMM decoder's equations and numbers). The
    numbers come from the same objects the C kit is rendered from (`export.pipeline.frontend_config`,
    `data.frontend.design`, `models.decoder.DecoderCfg`)."""
    from sqtool.data.frontend import QUIET, design, taps_per_phase
    from sqtool.data.hr_spectra import ppg_sensors
    from sqtool.export.pipeline import MAX_FLAGGED_Q15, NO_PULSE_MAX_Q8, NO_PULSE_WINDOWS, frontend_config
    fe = frontend_config(cfg, fs_in, int(n_ppg or len(ppg_sensors(cfg))))
    tab = design(fe)
    C, F = fe.n_channels, tab.n_bins
    contract = {**dict(cfg.get("frontend") or {}), **fe.to_dict(), "taps_per_phase": taps_per_phase(fe),
                "taps_per_phase_rule": TAPS_RULE, "up_L": tab.up, "down_M": tab.down, "window_samples_T": tab.T,
                "hop_samples": tab.hop, "quiet_counts": QUIET, "steps": frontend_steps(fe, tab)}
    gating = {"max_flagged_q15": MAX_FLAGGED_Q15, "quiet_counts": QUIET, "rule": (
        f"a window is scored (valid = 1) when flagged_q15 <= {MAX_FLAGGED_Q15} (at most half of its inputs flagged) "
        f"and not every PPG sensor is quiet (its resampled samples over the window span <= {QUIET} counts: stuck, "
        "railed, all zero, absent); otherwise the network is not run, the decoder only predicts (likelihood 1 in "
        "every bin) and the result has valid = 0 (show the last valid HR)"),
        "flagged": ("model sample m owns the inputs (n_{m-1}, n_m] (n_m = floor(m M / L), n_{-1} = -1); of a window's "
                    "T model samples, cnt inputs in all, nf of them flagged: flagged_q15 = (32768 nf + cnt // 2) // "
                    "cnt, its flagged fraction in Q15"),
        "no_pulse": {"windows": NO_PULSE_WINDOWS, "max_q8": NO_PULSE_MAX_Q8, "rule": (
            "a separate output, valid unchanged: per window the ppg channel's flatness g = max(0, F (L(A) - L(F)) - S) "
            "// F over its F codes, v = code + 128, A = sum v, S = sum L(v), L(x) = 256 (bit length of x - 1) + "
            "round(256 log2(1 + j / 128)) at x's top 8 bits 128 + j (log2 of the arithmetic over the geometric mean, "
            f"Q8); no_pulse = 1 when the last {NO_PULSE_WINDOWS} windows' g sum to at most {NO_PULSE_WINDOWS} * "
            f"{NO_PULSE_MAX_Q8} (a spectrum as flat as noise: off the wrist, no perfusion), 0 before "
            f"{NO_PULSE_WINDOWS} windows")}}
    inp = {"kind": "spectra", "shape_float": [1, C, F], "shape_tflite": [1, 1, F, C],
           "values": ("the front end's int8 codes (-127..127), one per bin and channel "
                      f"({', '.join(cfg['channels'])}); float ONNX / TFLite and int8 ONNX take codes / 127 as float32 "
                      "(1, C, F) channels-first (TFLite float: (1, 1, F, C)); TFLite int8 takes the codes themselves "
                      "(1, 1, F, C), input scale 1/127, zero point 0"),
           "rate": f"one spectrum per hop_s = {float(cfg['hop_s']):g} s per stream, each of the last "
                   f"window_s = {float(cfg['window_s']):g} s of signal"}
    return {"fs_in": float(fe.fs_in), "fs_note": FS_NOTE, "input": inp, "frontend": contract, "gating": gating,
            "decoder_spec": decoder_spec(cfg, graph)}


def frontend_steps(fe, tab) -> list[str]:
    """The front end's steps in words with this export's numbers, each with its integer arithmetic (the reference:
    sqtool.data.frontend), enough for a port bit-exact with its codes; a float implementation of the float
    equations differs where a row is weak (the integer band-pass's dead band)."""
    from sqtool.data.frontend import NORM_BITS, NORM_FRAC, QUIET
    L, M, P = tab.up, tab.down, tab.fir.shape[1]
    taps = (f"P = taps_per_phase = {P}, fixed by the model" if fe.taps_per_phase else
            f"P = min(256, ceil(3 fs_in / fs)) = {P} here: another device rate changes L, M and P")
    sensors = ("the PPG sensor's power P itself" if fe.n_ppg == 1 else
               f"the sum over the {fe.n_ppg} PPG sensors of P_s / max_b P_s (each sensor normalised to its own "
               f"maximum; a silent sensor adds 0; integer: per sensor q = max(0, bitlen(Pmax_s) - {NORM_BITS}), Pm = "
               f"Pmax_s >> q, Pb = P_s >> q, u_s = ((Pb << {NORM_FRAC}) + (Pm >> 1)) // Pm (0 when Pmax_s = 0), "
               "P_ppg = sum_s u_s)")
    acc = {1: "no accelerometer channel", 4: "acc_x, acc_y, acc_z: each axis its own channel, its own power",
           2: "one acc channel: the three axes' powers summed on one scale, |X|^2 + |Y|^2 + |Z|^2 (integer: per "
              "axis e = 2 (r - s) from step 7's shifts, an all-zero axis taking no part, emax = the largest e, "
              "P_acc = (sum_axes (P_axis >> (emax - e)) + 2) >> 2, a shift of 32 or more giving 0)"}[fe.n_channels]
    return [
        f"inputs: int16 counts at fs_in = {fe.fs_in:g} Hz, rows {', '.join(fe.to_dict()['inputs'])}; PPG "
        f"{fe.gain_ppg:g} counts per unit of an AC-coupled wrist PPG (TROIKA units), accelerometer {fe.gain_acc:g} "
        "counts per g (a device's fixed gains; sqtool predict and bench replay a float recording with robust gains "
        "per recording and row instead: INTEGRATION.md, 'Check your implementation'); one gap flag per time step "
        "(dropout, saturation, FIFO overrun: never drop a sample)",
        "gaps: a flagged time step holds every row's last good sample (0 before any)",
        f"resample fs_in -> fs = {fe.fs:g} Hz: polyphase FIR, L / M = {L} / {M} (fs / fs_in reduced), prototype "
        f"h = scipy.signal.firwin({L * P}, {fe.fir_cutoff_hz:g}, window=('kaiser', {fe.kaiser_beta:g}), "
        f"fs={L} * fs_in) x {L} (L x P taps, {taps}); output m (time m / fs) = sum_i h[p + i L] "
        "x[n_m - i], n_m = floor(m M / L), p = m M mod L, x[<0] = 0 (= scipy.signal.upfirdn(h, x, L, M)); "
        "integer: g[p, i] = round(32768 h[p + i L]) (int16), then each phase's DC gain made exactly 32768: its "
        "residual 32768 - sum_i g[p, i] is added one LSB at a time (its sign) to the phase's taps in order of "
        "decreasing |h[p + i L]| (a stable sort: ties in tap order), cycling when it exceeds P; y[m] = "
        "sat16((sum_i g[p, i] x[n_m - i] + 2^14) >> 15) (int32 sum; >> is the arithmetic shift, i.e. floor); "
        "outputs m = 0, 1, ... while n_m <= the last input",
        f"band-pass: causal Butterworth scipy.signal.butter({fe.filter_order}, {list(fe.band)}, 'bandpass', "
        f"fs={fe.fs:g}, output='sos'), run forward from zero state at the stream's start (sosfilt, never "
        f"filtfilt); integer: Q{fe.iir_frac_bits} Direct Form I biquads, coefficients c = round(2^{fe.iir_frac_bits} "
        "sos[s, [b0, b1, b2, a1, a2]]) (int32, a0 = 1), per section from zero state: y = (b0 x + b1 x1 + b2 x2 - "
        f"a1 y1 - a2 y2 + 2^{fe.iir_frac_bits - 1}) >> {fe.iir_frac_bits} (int64), clamped to [-2^24, 2^24 - 1] "
        "(an inner section) or [-32768, 32767] (the last), the clamped y being the section's y1 next and the next "
        "section's x; unlike the float filter this one does not settle at 0 on a constant input (the rounding "
        "leaves a dead band of up to about 12 counts), so a float implementation's codes of a weak row (a resting "
        "accelerometer axis) differ from the integer ones by several codes",
        f"windows: T = {tab.T} model samples ({fe.window_s:g} s), hop {tab.hop} ({fe.hop_s:g} s); window i = model "
        "samples [i hop, i hop + T) since the stream's start, emitted when its last sample is computed",
        f"silence: a row whose RESAMPLED samples (the band-pass's input) span <= {QUIET} counts (max - min) over "
        "the window is coded as all-zero: power 0 in every bin",
        f"spectrum per window and row: periodic Hann w[n] = 0.5 - 0.5 cos(2 pi n / T) (scipy.signal.get_window"
        "('hann', T), not the symmetric numpy.hanning), DFT at the bin frequencies only, X_b = sum_n x[n] w[n] "
        "exp(-2 pi i (bpm_b / 60) n / fs), bpm_b = the bins_bpm centres; POWER P_b = |X_b|^2 (not the magnitude); "
        f"integer, per window and row (a silent row: x = 0): block floating point to XMAX = {tab.xmax}: mx = max_n "
        f"|x[n]|; mx <= XMAX: x = x << s, s the largest with mx << s <= XMAX (0 for mx = 0); else x = (x + 2^(r-1)) "
        f">> r, r the smallest with (mx + 2^(r-1)) >> r <= XMAX; xw = (x hann + 2^14) >> 15, hann[n] = min(round(32768 "
        f"w[n]), 32767); cos[j] = round({1 << fe.cos_frac_bits} cos(2 pi j / N)), N = 60 fs / (the bins' step) = {tab.N}; k_b = "
        f"bpm_b N / (60 fs) ({int(tab.k[0])}..{int(tab.k[-1])}); re = sum_n xw[n] cos[(k_b n) mod N], im = sum_n "
        f"xw[n] cos[(k_b n + 3 N / 4) mod N] (int32, exact); re' = (re + 2^{fe.power_shift - 1}) >> "
        f"{fe.power_shift}, im' likewise; P_b = re'^2 + im'^2 (uint32)",
        f"channels: ppg = {sensors}; {acc}",
        "codes per window and channel: code_b = floor(254 P_b / Pmax + 1/2) - 127 (round half up), Pmax = max_b P_b: "
        "-127..127, the strongest bin 127 (NOT 127 P / Pmax, 0..127); Pmax = 0 -> every code -127; integer: q = "
        "max(0, bitlen(Pmax) - 22), Pb = P >> q, Pm = Pmax >> q, code = (508 Pb + Pm) // (2 Pm) - 127",
        f"network input: the codes (F = {tab.n_bins}, C = {fe.n_channels}) channels-last, as `input` says",
    ]


FIXED_POINT_PORT = ("to show exactly the firmware's and sqtool predict's numbers on int8 codes, port the fixed-point "
                    "decoder instead: decoder_spec.fixed_point_steps with decoder_spec.fixed_point_tables (an int8 "
                    "export's metadata.json; the integer arithmetic of c/<prefix>_decoder.c, every step and table), "
                    "hr, lo, hi and conf bit for bit")
FIXED_POINT_NONE = ("this export holds no int8 model: sqtool predict runs this float decoder on its float logits (an "
                    "int8 export's decoder_spec states the fixed-point one in fixed_point_steps / fixed_point_tables)")


def decoder_spec(cfg: dict, graph=None) -> dict:
    """The HMM decoder of a spectral model as equations and numbers (`sqtool.models.decoder`: `forward` /
    `summarise` in float, `IntDecoder` and c/<prefix>_decoder.c in fixed point, bit-exact with each other)."""
    from sqtool.models.decoder import decoder_cfg, transition_taps
    d = dict(cfg.get("decoder") or {})
    d.setdefault("bins_bpm", list((cfg.get("arch") or {}).get("bins_bpm") or (cfg.get("frontend") or {})["bins_bpm"]))
    dec = decoder_cfg(d)
    temperature = float(d.get("temperature", 1.0))
    lo, _, step = dec.bins_bpm
    F, R = dec.n_bins, dec.radius
    start = ("uniform: pi_k = 1 / F (start_bpm and start_sigma_bpm are not used)" if dec.start == "uniform" else
             f"gaussian: pi_k proportional to exp(-0.5 ((b_k - {dec.start_bpm:g}) / {dec.start_sigma_bpm:g})^2), "
             "normalised")
    like = "L_k = exp((z_k - max_j z_j) / temperature)"
    if dec.uses_evidence:                              # normalised by the max of the SUM (matters with the floor)
        like = ("L_k = exp(x_k - max_j x_j), x_k = z_k / temperature + mu ln((eps + n_k / 254) / (1 + eps)), mu = "
                f"evidence_weight = {dec.evidence_weight:g}, eps = evidence_floor = {dec.evidence_floor:g}, n_k = "
                "clip(ppg code_k - max over the acc channels of code_k, 0, 254) from the window's front-end codes")
    if dec.emission_floor > 0:
        like += f", then L_k = (L_k + kappa) / (1 + kappa), kappa = emission_floor = {dec.emission_floor:g}"
    if dec.conf_measure == "width":
        raw = f"raw = max(0, 1 - (hi - lo) / span), span = step F = {dec.span_bpm:g} BPM"
    else:
        raw = (f"raw = sum of p_k over k = a - W .. a + W (clipped to the grid), W = floor(conf_halfwidth_bpm / step) "
               f"= {dec.conf_bins}")
    cal = ("conf = raw (no calibration knots)" if not dec.conf_calib_x else
           "conf = y(32768 raw) / 32768: y = piecewise-linear interpolation through the knots (conf_calib_x, "
           "conf_calib_y), both Q15, constant outside them (numpy.interp); expected |error| = (1 - conf) x "
           f"{dec.span_bpm:g} BPM")
    spec = {
        "format": "sqtool.decoder/v1",
        "grid": f"F = {F} bins, centres b_k = {lo:g} + {step:g} k BPM, k = 0..{F - 1}",
        "logits": "z_k, real-valued: " + (LOGIT_SCALE_NOTE if graph is not None else FLOAT_LOGIT_NOTE),
        "temperature": temperature,
        "start": f"posterior before the first window: pi, {start}",
        "first_window": "no transition before the first window after a reset: p = normalise(pi x L)",
        "transition_radius_bins": R,
        "transition_kernel": [float(v) for v in transition_taps(dec)[R:]],
        "transition": (f"g_d = exp(-0.5 (d step / sigma_bpm)^2) for d = -R..R, R = min(ceil(3 sigma_bpm / step), F - 1)"
                       f" = {R} (sigma_bpm = {dec.sigma_bpm:g}), normalised so that sum_d g_d = 1 (transition_kernel:"
                       f" g_0..g_R, symmetric); prior_j = (1 - floor) sum_d g_d p_(j-d) + floor / F, floor = "
                       f"{dec.floor:g}, p_(j-d) = 0 off the grid (mass carried off the grid is dropped)"),
        "likelihood": like,
        "update": ("p_k = prior_k L_k / sum_j prior_j L_j; a window not scored (gating, valid = 0): L_k = 1, "
                   "p = normalise(prior)"),
        "hr": (f"a = argmax_k p_k (the first on ties); hr = b_a + step sum_k (k - a) p_k / sum_k p_k over k = a - r .. "
               f"a + r clipped to 0..F-1, r = refine_bins = {dec.refine_bins}"),
        ("interval" if dec.interval_mode == "posterior" else "posterior_interval"): (
            f"lo, hi = the quantiles q_lo = (1 - interval) / 2, q_hi = (1 + interval) / 2 (interval = "
            f"{dec.interval:g}) of p, each bin's mass spread uniformly over [b_k - step/2, b_k + step/2]: "
            "k = the first bin with CDF_k >= q (CDF_k = sum_(j<=k) p_j), value = b_k - step / 2 + step "
            "(q - CDF_(k-1)) / p_k; then lo = min(lo, hr), hi = max(hi, hr) (the interval holds the reported hr)"
            + ("" if dec.interval_mode == "posterior" else
                                       " (not reported: the width confidence reads it)")),
        **({} if dec.interval_mode == "posterior" else {"interval": (
            f"lo, hi = hr -+ h clamped to the grid's extent [b_0 - step/2, b_(F-1) + step/2] = [{dec.edges_bpm[0]:g}, "
            f"{dec.edges_bpm[1]:g}] BPM, h = {dec.spread_c_bpm:g} + {dec.spread_k:g} S BPM; S = the recent distance "
            f"of the network's own reading from hr: on each scored window (valid = 1) d = |b_n - hr| with n the first "
            f"argmax of the window's logits z (not of p), S = d on the first scored window after a reset, else "
            f"S = S + (d - S) / {1 << dec.spread_shift}; held on a window not scored, 0 before the first one")}),
        "confidence": f"{raw}; {cal}",
        "fixed_point": ("c/<prefix>_decoder.c (C kit) is bit-exact with sqtool.models.decoder.IntDecoder: Q20 "
                        "posterior, Q15 taps, Q24 likelihood table; a float implementation of these equations reads "
                        "the same HR to about 0.01 BPM on average (see that module's docstring), but where two bins "
                        "nearly tie the argmax can pick the other: one bin apart, a window's HR differs by up to one "
                        f"bin ({step:g} BPM); on the two peaks of a two-peaked posterior (a harmonic, a motion peak) "
                        "by the distance between them, tens of BPM (an audit of sqtool's real-data demo model, its "
                        "front end ported bit-exact, this float decoder against sqtool predict on TROIKA and "
                        "wrist_exercise, 3792 windows: HR within 0.001 BPM on 99.8 %, 7 windows up to 1.44 BPM off, "
                        "one 88.5 BPM off (peaks at 78 and 166 BPM), lo / hi up to 1.6 BPM off); "
                        + (FIXED_POINT_PORT if graph is not None else FIXED_POINT_NONE)),
    }
    if graph is not None:                                  # the int8 codes' decoder, as the C kit and predict run it
        from sqtool.export.decoder_fixed import fixed_point_contract
        from sqtool.export.pipeline import decoder_config
        spec["int8_logit_scale"] = float(graph.output_scale) / temperature
        spec.update(fixed_point_contract(decoder_config(cfg, graph, d)))
    return spec


INT8_ONLY = ("quantization", "int8_layers", "macs", "weight_bytes", "output_quantization")


# ----------------------------------------------------------------------------- units

def output_affine(md: dict, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset), float64 (k,): value in units = scale * network output + offset, per output column:
    target_std / target_mean of the model config, 1 / 0 where it has none (logits, spectral bins, an
    embedding). `md` is export metadata or a model_cfg dict; k defaults to the number of outputs."""
    mc = md.get("model_cfg") or md
    mean = list(md.get("target_mean") or mc.get("target_mean") or [])
    std = list(md.get("target_std") or mc.get("target_std") or [])
    k = len(md.get("outputs") or mc.get("outputs") or []) if k is None else int(k)
    scale, offset = np.ones(k), np.zeros(k)
    n = min(k, len(mean), len(std))
    scale[:n], offset[:n] = np.asarray(std[:n], np.float64), np.asarray(mean[:n], np.float64)
    if np.any(scale <= 0):
        raise SqtoolError(f"model '{md.get('model') or mc.get('name')}': target_std must be positive, got {std}")
    return scale, offset


def to_units(y: np.ndarray, md: dict) -> np.ndarray:
    """Network outputs (N, k) in normalised model units -> units (float64)."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    scale, offset = output_affine(md, y.shape[1])
    return y * scale + offset


def from_units(y: np.ndarray, md: dict) -> np.ndarray:
    """Outputs in units (N, k) -> the network's normalised model units (float64)."""
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    scale, offset = output_affine(md, y.shape[1])
    return (y - offset) / scale


def output_quantization(md: dict, out_scale: float, out_zp: int) -> list[dict]:
    """Per output, the int8 code -> units map: value = scale * (code - zero_point). The network's int8 output
    tensor has one scale s and zero point z in normalised units; in units, scale = s * target_std and
    zero_point = z - target_mean / (s * target_std) (fractional: an int8 graph cannot hold it, so it is
    documented here rather than folded into the tensor's integer zero point)."""
    scale, offset = output_affine(md)
    units = list(md.get("units") or [])
    out = []
    for i, name in enumerate(md.get("outputs") or []):
        s = float(out_scale) * float(scale[i])
        out.append({"name": name, "unit": units[i] if i < len(units) else "", "scale": s,
                    "zero_point": float(out_zp) - float(offset[i]) / s,
                    "formula": "value = scale * (code - zero_point)"})
    return out


def affine_text(o: dict, var: str = "q") -> str:
    """One output_quantization entry as text: "0.0389 * (q - (-3086.24))"."""
    z = f"{o['zero_point']:.9g}"
    return f"{o['scale']:.9g} * ({var} - {'(' + z + ')' if z.startswith('-') else z})"


def codes_to_units(q: np.ndarray, md: dict) -> np.ndarray:
    """int8 output codes (N, k) -> units through metadata's output_quantization (what a user of the C or
    TFLite int8 model does); falls back to quantization.output_scale / zero point + the target affine."""
    q = np.asarray(q, np.float64).reshape(len(q), -1)
    oq = md.get("output_quantization")
    if oq and len(oq) == q.shape[1]:
        s = np.array([o["scale"] for o in oq], np.float64)
        z = np.array([o["zero_point"] for o in oq], np.float64)
        return s * (q - z)
    qp = md.get("quantization") or {}
    if "output_scale" not in qp:
        raise SqtoolError(f"metadata of '{md.get('model')}' has no int8 output quantization")
    return to_units((q - int(qp["output_zero_point"])) * float(qp["output_scale"]), md)


def float_metadata(md: dict) -> dict:
    """The metadata a float artifact carries: no int8 scales / zero points / layer table, quant_scheme float32
    (what it is; float64 for a float64 model, af_beats), and `int8_twin` naming the int8 scheme it was exported next to, when there is one."""
    out = {k: v for k, v in md.items() if k not in INT8_ONLY}
    if "decoder_spec" in out:                               # its int8 line is for int8 codes only
        out["decoder_spec"] = {k: v for k, v in out["decoder_spec"].items() if k not in DECODER_INT8_ONLY}
    if md.get("quant_scheme") not in (None, "float32", "float64"):
        out["int8_twin"] = md["quant_scheme"]
    scheme = "float64" if md.get("quant_scheme") == "float64" else "float32"    # af_beats' trees: float64
    out.update(quant_scheme=scheme, quant_description=scheme, precision="float")
    return out


def flat_props(md: dict) -> dict[str, str]:
    """String key/values for ONNX metadata_props (nested values as JSON)."""
    out = {}
    for k, v in md.items():
        if k in ("int8_layers", "model_cfg"):
            continue
        out[k] = v if isinstance(v, str) else dumps_json(v)
    out["sqtool_metadata"] = dumps_json(md)
    return out
