"""The metadata every exported artifact carries, and the refusal of checkpoints that lack it.

One dict, built once from the checkpoint (its ModelCfg is the preprocessing contract) and the integer
graph, written as `metadata.json` and embedded in each artifact: ONNX `metadata_props`, a TFLite
metadata buffer named "sqtool_metadata", and the C header's comment block and `#define`s. A file
found alone on a device therefore still says how to feed it and how to read its output.
"""
from __future__ import annotations

import datetime as _dt
import json

from sqtool import __version__
from sqtool.core import SqtoolError

REQUIRED = ("name", "fs", "window_s", "hop_s", "channels", "norm", "task")
TFLITE_METADATA_NAME = "sqtool_metadata"


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


def build_metadata(ckpt: dict, source_sha256: str, graph=None) -> dict:
    """metadata.json content: model_cfg + quantization scheme + edges' scales/zero points + provenance."""
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
        "output_note": "regression outputs are (y - target_mean) / target_std; multiply by std, add mean",
        "quant_scheme": quant or "float32",
        "quant_description": desc,
        "sqtool_version": __version__,
        "source_sha256": source_sha256,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
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
    md["frontend"] = dict(cfg.get("frontend") or {})
    md["decoder"] = dict(cfg.get("decoder") or {})
    if graph is not None:
        md["quantization"] = graph.quant_params()
        md["int8_layers"] = graph.summary()
        md["macs"] = graph.macs
        md["weight_bytes"] = graph.weight_bytes
    return md


INT8_ONLY = ("quantization", "int8_layers", "macs", "weight_bytes")


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
        out[k] = v if isinstance(v, str) else json.dumps(v)
    out["sqtool_metadata"] = json.dumps(md)
    return out
