"""ONNX: the float model (torch.onnx, TorchScript path) and the int8 student (Brevitas QCDQ).

The int8 model is exported with `brevitas.export.export_onnx_qcdq(..., dynamo=False, opset 17)`:
QuantizeLinear/Clip/DequantizeLinear around every quantized tensor, int32 biases. Because the
biases are quantized and the activations after ReLU unsigned, onnxruntime fuses the Q/DQ pairs into
integer kernels (QLinearConv, QGemm / QLinearMatMul); `ort_optimized_ops` shows which ones it chose.
Static shapes: batch 1; the float model also comes with a dynamic batch axis. Inputs (B, C, T) for
time-domain models, input "x", one output (B, 1) per name of the model's `outputs` (students: "hr_bpm",
"quality_logit"), in units: the float model's last Linear has target_std / target_mean folded into its
weights and bias, the int8 model multiplies and adds them after its last DequantizeLinear (`units_head`).
Spectral models: (B, C, F) spectra, "spectra" -> "hr_logits" (B, F). `run` concatenates the outputs in
order, (N, k). The metadata goes into `metadata_props` (flat keys + the whole dict as JSON under
"sqtool_metadata").

x86 saturation, measured: with Brevitas's int8 weights, onnxruntime's fused U8S8 kernels on AVX2
without VNNI (VPMADDUBSW) add pairs of uint8 x int8 products in saturating int16 (255 * 127 * 2 >
32767): outputs were off by up to ~50 LSB, and a numpy emulation with int16 pair saturation matched
onnxruntime on every element. `export_int8` therefore stores each weight tensor as uint8 with zero
point 128 (w + 128, Clip [1, 255]): the same real weights, bit for bit the same model, but
onnxruntime then picks its U8U8 kernels, which do not saturate; its outputs equalled Brevitas's
integers on every held-out window. `u8_weights=False` keeps Brevitas's file unchanged.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_write_bytes
from sqtool.export.metadata import flat_props


def _add_metadata(path, md: dict) -> None:
    import onnx
    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in flat_props(md).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.doc_string = f"sqtool {md['sqtool_version']} {md['model']} ({md['quant_scheme']})"
    onnx.checker.check_model(m)
    atomic_write_bytes(path, m.SerializeToString())


def _tmp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.onnx")
    os.close(fd)
    return Path(tmp)


def io_names(model, md: dict | None = None) -> tuple[str, list[str]]:
    """ONNX input name and output names: ("spectra", [its logits: "hr_logits", rr_spec's "rr_logits"]) for spectral
    models, ("x", md's outputs, e.g. ["hr_bpm", "quality_logit"]) for time-domain models."""
    if hasattr(model, "n_bins"):
        return "spectra", [model.cfg.outputs[0] if model.cfg.outputs else "hr_logits"]
    if hasattr(model, "input_name"):                                   # af_beats: "features"
        return model.input_name, list(model.cfg.outputs)
    return "x", list((md or {}).get("outputs") or []) or ["y"]


def _last_linear(model):
    """The float model's output layer: a student's `fc`, a resnet1d teacher's `head` (None: an encoder)."""
    import torch.nn as nn
    for attr in ("fc", "head"):
        m = getattr(model, attr, None)
        if isinstance(m, nn.Linear):
            return m
    return None


def units_head(model, md: dict, fold: bool):
    """A time-domain model wrapped for export: outputs in units, one tensor (B, 1) per output name.

    fold=True (float models): a copy of the model with target_std / target_mean folded into its last Linear
    (W' = std * W, b' = std * b + mean, per output row). fold=False (the int8 model, whose integer weights
    must stay Brevitas's): y * std + mean after the dequantized output, as float Mul / Add. A model without
    a task head (an encoder) keeps its one output, the embedding."""
    import copy

    import torch
    import torch.nn as nn
    from sqtool.export.metadata import output_affine
    names = io_names(model, md)[1]
    lin = _last_linear(model)
    k = 1 if lin is None else lin.out_features
    if lin is not None and len(names) != k:
        raise SqtoolError(f"ONNX export: the model has {k} outputs but its config names {len(names)} "
                          f"({', '.join(names)})")
    scale = offset = None
    if lin is not None and fold:
        model = copy.deepcopy(model).eval()
        lin = _last_linear(model)
        s, o = (torch.as_tensor(v, dtype=lin.weight.dtype) for v in output_affine(md, k))
        with torch.no_grad():
            lin.weight.mul_(s[:, None])
            if lin.bias is None:
                lin.bias = nn.Parameter(torch.zeros(k, dtype=lin.weight.dtype))
            lin.bias.mul_(s).add_(o)
    elif lin is not None:
        scale, offset = (torch.as_tensor(v, dtype=torch.float32) for v in output_affine(md, k))

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):                                            # (B, C, T)
            y = self.model(x)                                            # (B, k) normalised (unless folded)
            if scale is not None:
                y = y * scale + offset                                   # units
            return y if k == 1 else tuple(y[:, i:i + 1] for i in range(k))   # k x (B, 1)

    return Named().eval()


def _dummy_input(model):
    import torch
    from sqtool.export.intgraph import input_shape
    return torch.zeros(1, *input_shape(model), dtype=getattr(model, "input_dtype", torch.float32))   # (1, C, T|F)


@contextlib.contextmanager
def _quiet_tracer():
    """Tracing warns (torch.jit.TracerWarning) at every Python-level shape check in forward(); the graph is
    checked against the model by parity afterwards, so these warnings are dropped, and only these."""
    import torch
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def export_float(model, md: dict, path, dynamic_batch: bool = False) -> None:
    """torch.onnx.export (TorchScript exporter), input "x" (B, C, T), one output (B, 1) per name in
    md["outputs"], in units (de-normalisation folded into the last Linear); spectral: "spectra" (B, C, F) ->
    "hr_logits" (B, F)."""
    import torch
    path = Path(path)
    x = _dummy_input(model)
    i_name, o_names = io_names(model, md)
    net = model.eval() if hasattr(model, "n_bins") else units_head(model, md, fold=True)
    tmp = _tmp_path(path)
    try:
        kw = {"dynamic_axes": {n: {0: "batch"} for n in [i_name, *o_names]}} if dynamic_batch else {}
        with torch.no_grad(), _quiet_tracer():
            torch.onnx.export(net, (x,), str(tmp), dynamo=False, opset_version=17, input_names=[i_name],
                              output_names=o_names, do_constant_folding=True, **kw)
        _add_metadata(tmp, md)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _weights_to_uint8(m) -> int:
    """Rewrite every `int8 weight -> Clip -> DequantizeLinear(scale, zp 0)` as uint8 with zero point 128."""
    from onnx import numpy_helper
    producers = {o: n for n in m.graph.node for o in n.output}
    inits = {i.name: i for i in m.graph.initializer}

    def value(name):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        n = producers.get(name)
        if n is None or n.op_type != "Constant":
            return None
        return numpy_helper.to_array(n.attribute[0].t)

    def const(name, arr):
        m.graph.initializer.append(numpy_helper.from_array(arr, name))
        return name

    done = 0
    for n in list(m.graph.node):
        if n.op_type != "Clip" or "weight_quant" not in n.output[0]:
            continue
        w = value(n.input[0])
        dqs = [d for d in m.graph.node if d.op_type == "DequantizeLinear" and d.input[0] == n.output[0]]
        if w is None or w.dtype != np.int8 or len(dqs) != 1:
            continue
        zp = value(dqs[0].input[2]) if len(dqs[0].input) > 2 else np.zeros((), np.int8)
        lo, hi = value(n.input[1]), value(n.input[2])
        if zp is None or np.any(zp != 0) or lo is None or hi is None:
            continue
        base = n.output[0].strip("/").replace("/", "_")
        n.input[0] = const(base + "_u8", (w.astype(np.int16) + 128).astype(np.uint8))
        n.input[1] = const(base + "_u8_min", np.array(int(lo) + 128, np.uint8))
        n.input[2] = const(base + "_u8_max", np.array(int(hi) + 128, np.uint8))
        zp_u8 = np.full(zp.shape, 128, np.uint8)
        if len(dqs[0].input) > 2:
            dqs[0].input[2] = const(base + "_u8_zp", zp_u8)
        else:
            dqs[0].input.append(const(base + "_u8_zp", zp_u8))
        done += 1
    used = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    for n in [n for n in m.graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        m.graph.node.remove(n)
    for t in [t for t in m.graph.initializer if t.name not in used]:     # the replaced int8 weights
        m.graph.initializer.remove(t)
    return done


def export_int8(qmodel, md: dict, path, u8_weights: bool = True) -> None:
    """Brevitas QCDQ export of the quantized student or spectral model (batch 1, static shapes); students'
    outputs named and in units (see the module doc), and why weights are stored as uint8 with zero point
    128 by default."""
    import torch
    from sqtool.core.noise import quiet_library_warnings
    quiet_library_warnings()                       # brevitas.export imports brevitas.graph: hadamard notice
    from brevitas.export import export_onnx_qcdq
    path = Path(path)
    x = _dummy_input(qmodel)
    i_name, o_names = io_names(qmodel, md)
    net = qmodel.eval() if hasattr(qmodel, "n_bins") else units_head(qmodel, md, fold=False)
    tmp = _tmp_path(path)
    try:
        with torch.no_grad(), _quiet_tracer():
            export_onnx_qcdq(net, args=x, export_path=str(tmp), dynamo=False, opset_version=17,
                             keep_initializers_as_inputs=False, input_names=[i_name], output_names=o_names)
        if u8_weights:
            import onnx
            m = onnx.load(str(tmp))
            n_layers = sum(1 for mod in qmodel.modules() if hasattr(mod, "quant_weight"))
            if _weights_to_uint8(m) != n_layers:
                raise SqtoolError("ONNX int8 export: could not re-express every int8 weight as uint8 zp 128")
            onnx.save(m, str(tmp))
        _add_metadata(tmp, md)
        os.replace(tmp, path)
    except SqtoolError:
        raise
    except Exception as e:  # noqa: BLE001 - Brevitas/torch exporter errors become one line
        raise SqtoolError(f"ONNX int8 export failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        if tmp.exists():
            tmp.unlink()


def session(path, threads: int = 1, optimized_out: str | None = None, optimize: bool = True):
    """onnxruntime CPU session; optimize=False runs the graph op by op (no Q/DQ fusion into integer kernels)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3                      # errors only: no "Removing initializer ..." warnings
    ort.set_default_logger_severity(3)             # the graph-level ones go to the default logger
    if optimized_out:
        so.optimized_model_filepath = str(optimized_out)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run(path, x: np.ndarray, batch: int = 1, optimize: bool = True) -> np.ndarray:
    """Run windows (N, C, T) (spectral: (N, C, F)) float32 through onnxruntime (one thread) in batches;
    the graph's outputs concatenated in order: (N, k) (time-domain: in units), spectral (N, F)."""
    s = session(path, optimize=optimize)
    name = s.get_inputs()[0].name
    dtype = np.float64 if s.get_inputs()[0].type == "tensor(double)" else np.float32     # af_beats' features: double
    outs = [join_outputs(s.run(None, {name: np.ascontiguousarray(x[i:i + batch], dtype)}))
            for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def join_outputs(outs: list) -> np.ndarray:
    """onnxruntime's list of outputs (each (B, ...)) -> one (B, k) array, outputs in graph order."""
    return np.concatenate([np.asarray(o).reshape(len(o), -1) for o in outs], axis=1)


def ort_optimized_ops(path) -> list[str]:
    """Op types of the graph onnxruntime actually executes (after its Q/DQ fusions)."""
    import onnx
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "optimized.onnx"
        session(path, optimized_out=out)
        return [n.op_type for n in onnx.load(str(out)).graph.node]


def read_metadata(path) -> dict:
    import json
    import onnx
    m = onnx.load(str(path))
    props = {p.key: p.value for p in m.metadata_props}
    if "sqtool_metadata" not in props:
        raise SqtoolError(f"{path}: no sqtool_metadata in metadata_props")
    return json.loads(props["sqtool_metadata"])
