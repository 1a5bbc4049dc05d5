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
from sqtool.core import SqtoolError, git_sha
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
    if not float(cfg["fs"]) > 0 or not float(cfg["window_s"]) > 0:
        raise SqtoolError(f"{where} lacks metadata: fs and window_s must be positive")
    if "band" not in cfg:                         # None is a valid band (no filter); a missing one is not
        raise SqtoolError(f"{where} lacks metadata: model_cfg has no 'band' (the input band-pass, or null "
                          "for none); the artifact cannot say how to filter its input")
    band = cfg["band"]
    if band is not None and (not isinstance(band, (list, tuple)) or len(band) != 2):
        raise SqtoolError(f"{where}: model_cfg band must be [lo, hi] Hz or null, got {band!r}")


SHORT_RECORDS_NOTE = ("a recording shorter than one window: 'tile' = repeated end to end to fill the window "
                      "(sqtool.data.record.tile_record), one window, as the task's training data were; 'refuse' = "
                      "no window (left out); exports without this key: refuse")


def build_metadata(ckpt: dict, source_sha256: str, graph=None, names: dict[str, str] | None = None,
                   subjects_mode: str = "names") -> dict:
    """metadata.json content: model_cfg + quantization scheme + edges' scales/zero points + provenance
    (model_sha256 of `ckpt`, source_sha256 = the hash of the checkpoint file it was read from, git_sha).
    `names` (`export.subjects.subject_names` under `subjects_mode`): the subjects written as pseudonyms."""
    cfg = ckpt["model_cfg"]
    check_model_cfg(cfg, f"checkpoint {ckpt.get('path', '')}".strip())
    quant = cfg.get("quant")
    desc = "float32"
    if quant:
        from sqtool.models.quant import get_preset
        desc = get_preset(quant).description
    outputs = list(cfg.get("outputs") or []) or ["embedding"]
    md = {
        "format": "sqtool-export/1",
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
    from sqtool.data.tasks import short_records
    md["short_records"] = short_records(cfg["task"])         # as training filled a recording shorter than a window
    md["short_records_note"] = SHORT_RECORDS_NOTE
    md["frontend"] = dict(cfg.get("frontend") or {})
    md["decoder"] = dict(cfg.get("decoder") or {})
    if ckpt.get("teacher_skill"):                           # the fine-tune's verdict against the trivial predictor
        md["teacher_skill"] = dict(ckpt["teacher_skill"])
    train, held = list(ckpt.get("train_subjects") or []), list(ckpt.get("heldout_subjects") or [])
    if train or held:                                       # what the model saw (written by `sqtool quantize`)
        from sqtool.core.checkpoint import datasets_of
        from sqtool.export.subjects import PSEUDONYM_NOTE, pseudonymised, renamed
        md["training_data"] = {"datasets": datasets_of(train + held),
                               "train_subjects": renamed([str(s) for s in train], names or {}),
                               "heldout_subjects": renamed([str(s) for s in held], names or {})}
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
    (what it is), and `int8_twin` naming the int8 scheme it was exported next to, when there is one."""
    out = {k: v for k, v in md.items() if k not in INT8_ONLY}
    if md.get("quant_scheme") not in (None, "float32"):
        out["int8_twin"] = md["quant_scheme"]
    out.update(quant_scheme="float32", quant_description="float32", precision="float")
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
