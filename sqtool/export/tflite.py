"""TFLite flatbuffers written directly from the model's parameters, float32 and full-integer int8.

Why not the TensorFlow converter: re-calibrating from a representative dataset throws the QAT scales
away, and a missing fake-quant op converts silently. Writing the flatbuffer with the published schema
(the `schema_py_generated` module ai-edge-litert ships + `flatbuffers`) puts Brevitas's int8
weights, int32 biases, scales and zero points into the file unchanged, and takes milliseconds.

Graph (channels-last, H = 1, so no TRANSPOSE and only builtin ops):

    input (1, 1, T, C) -> CONV_2D (1 x K, stride (1, s), SAME, fused RELU) x N -> (1, 1, T', C')
      -> MEAN over axes (1, 2), keep_dims -> (1, 1, 1, C') -> RESHAPE (1, C') -> FULLY_CONNECTED "fc" (1, k)
      -> SPLIT -> one output (1, 1) per name of the model's outputs ("hr_bpm", "quality_logit")

The float model's FC has target_std / target_mean folded into its weights and bias, so its outputs are in
units (BPM); the int8 model keeps Brevitas's integers (bit-exact with the C and TFLite Micro), its outputs'
code -> units map is in the metadata (`output_quantization`, and each output's description).

Spectral models (SpecNet), over F heart-rate bins instead of T samples:

    spectra (1, 1, F, C) -> CONV_2D (1 x K, dilation (1, d), SAME, fused RELU) x N -> (1, 1, F, C')
      -> CONV_2D 1 x 1 (head, no activation, int8 logits) -> (1, 1, F, 1) -> RESHAPE -> hr_logits (1, F)

TFLite's SAME padding of a dilated conv is d (K - 1) / 2 on each side for stride 1 and odd K, exactly
the PyTorch padding of the model, so no PAD op is needed either.

int8: input int8 (scale s_in, zp 0), activations after ReLU int8 zp -128 (Brevitas's uint8 with the
same scale), weights int8 symmetric (per output channel for convs: quantized_dimension 0; per tensor
for the FC), biases int32 with scale s_in * s_w, output int8. float32: the float student with BN
folded into each conv. Metadata: a buffer named "sqtool_metadata" holding metadata.json, and the standard
TFLite Metadata "TFLITE_METADATA" (a ModelMetadata flatbuffer, identifier M001, per-edge descriptions with
layout, normalisation and int8 scale / zero point). One SignatureDef "serving_default" maps the edge
tensors by their names (spectral `spectra` -> `hr_logits`, students `input` -> `hr_bpm`, `quality_logit`),
so LiteRT's get_signature_runner() works. `run_litert` / `run_tflm` concatenate the outputs in order, (N, k).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_write_bytes
from sqtool.core.io import dumps_json
from sqtool.export.metadata import TFLITE_METADATA_NAME


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as S
    except ImportError:  # pragma: no cover - the export extra installs ai-edge-litert
        raise SqtoolError("TFLite export needs ai-edge-litert (pip install 'sqtool[export]')")
    return S


SIGNATURE_KEY = "serving_default"
STANDARD_METADATA_NAME = "TFLITE_METADATA"       # the entry tflite-support's MetadataDisplayer reads
METADATA_IDENTIFIER = b"M001"


def model_metadata_bytes(name: str, description: str, version: str, inputs, outputs,
                         author: str = "sqtool") -> bytes:
    """A ModelMetadata flatbuffer (metadata_schema.fbs) with one SubGraphMetadata; `inputs` / `outputs`
    are [(tensor name, description)]. Written with the plain builder: ai-edge-litert does not ship the
    generated metadata module. Field slots follow the schema's declaration order:
    ModelMetadata{0 name, 1 description, 2 version, 3 subgraph_metadata, 4 author, 5 license,
    6 associated_files, 7 min_parser_version}, SubGraphMetadata{0 name, 1 description,
    2 input_tensor_metadata, 3 output_tensor_metadata, ...}, TensorMetadata{0 name, 1 description, ...}."""
    import flatbuffers
    b = flatbuffers.Builder(1024)

    def table(fields: dict[int, int]) -> int:             # slot -> offset of an already built string/vector
        b.StartObject(max(fields) + 1)
        for slot, off in fields.items():
            b.PrependUOffsetTRelativeSlot(slot, off, 0)
        return b.EndObject()

    def vector(offs) -> int:
        b.StartVector(4, len(offs), 4)
        for off in reversed(offs):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def tensor_list(items) -> int:
        return vector([table({0: b.CreateString(n), 1: b.CreateString(d)}) for n, d in items])

    ins, outs = tensor_list(inputs), tensor_list(outputs)
    sg = table({0: b.CreateString(name), 1: b.CreateString(description), 2: ins, 3: outs})
    root = table({0: b.CreateString(name), 1: b.CreateString(description), 2: b.CreateString(version),
                  3: vector([sg]), 4: b.CreateString(author), 7: b.CreateString("1.0.0")})
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def read_model_metadata_bytes(buf: bytes) -> dict:
    """Parse a ModelMetadata flatbuffer back (the tables model_metadata_bytes writes): {"name",
    "description", "version", "author", "min_parser_version", "inputs"/"outputs": [(name, description)]}."""
    import flatbuffers
    from flatbuffers.table import Table
    if len(buf) < 8 or buf[4:8] != METADATA_IDENTIFIER:
        raise SqtoolError(f"TFLite metadata: buffer lacks file identifier {METADATA_IDENTIFIER.decode()}")

    def tab(t: Table, at: int) -> Table:
        return Table(t.Bytes, at)

    def string(t: Table, slot: int):
        o = t.Offset(4 + 2 * slot)
        return t.String(o + t.Pos).decode() if o else None

    def tables(t: Table, slot: int) -> list[Table]:
        o = t.Offset(4 + 2 * slot)
        if not o:
            return []
        start = t.Vector(o)
        return [tab(t, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]

    root = Table(bytearray(buf), flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    sgs = tables(root, 3)
    pairs = lambda ts: [(string(x, 0), string(x, 1)) for x in ts]
    return {"name": string(root, 0), "description": string(root, 1), "version": string(root, 2),
            "author": string(root, 4), "min_parser_version": string(root, 7),
            "inputs": pairs(tables(sgs[0], 2)) if sgs else [], "outputs": pairs(tables(sgs[0], 3)) if sgs else []}


class _Writer:
    """Accumulates tensors, buffers and operators of one subgraph (object API of the schema)."""

    def __init__(self):
        S = self.S = _schema()
        self.buffers = [S.BufferT()]                      # buffer 0: the empty sentinel
        self.tensors, self.ops, self.opcodes = [], [], {}

    def buffer(self, data: bytes) -> int:
        b = self.S.BufferT()
        b.data = np.frombuffer(data, np.uint8).copy()
        self.buffers.append(b)
        return len(self.buffers) - 1

    def tensor(self, name, shape, ttype, data: np.ndarray | None = None, scale=None, zp=None, qdim=0) -> int:
        S = self.S
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(map(int, shape)), ttype
        t.buffer = self.buffer(np.ascontiguousarray(data).tobytes()) if data is not None else 0
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(v) for v in np.asarray(scale, np.float32).reshape(-1)]
            q.zeroPoint = [int(v) for v in np.asarray(zp, np.int64).reshape(-1)]
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs, outputs, opt_type=0, opt=None):
        S = self.S
        if code not in self.opcodes:
            oc = S.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.opcodes[code] = (len(self.opcodes), oc)
        o = S.OperatorT()
        o.opcodeIndex = self.opcodes[code][0]
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = opt_type, opt
        self.ops.append(o)

    def conv_options(self, stride: int, relu: bool, dilation: int = 1):
        S = self.S
        o = S.Conv2DOptionsT()
        o.padding, o.strideW, o.strideH = S.Padding.SAME, stride, 1
        o.dilationWFactor, o.dilationHFactor = dilation, 1
        o.fusedActivationFunction = S.ActivationFunctionType.RELU if relu else S.ActivationFunctionType.NONE
        return S.BuiltinOptions.Conv2DOptions, o

    def _tensor_map(self, i: int):
        tm = self.S.TensorMapT()
        tm.name, tm.tensorIndex = self.tensors[i].name, i
        return tm

    def _edge_description(self, i: int, md: dict, output: bool) -> str:
        """What a user must know to feed / read tensor i: layout, normalisation, int8 scale and zero point."""
        t = self.tensors[i]
        if output:
            text = f"{', '.join(map(str, md.get('outputs') or []))} ({', '.join(map(str, md.get('units') or []))}); " \
                   f"{md.get('output_note', '')}"
            mine = [o for o in md.get("output_quantization") or [] if o.get("name") == t.name]
            if mine:
                from sqtool.export.metadata import affine_text
                text += f"; in {mine[0]['unit'] or 'units'}: value = {affine_text(mine[0])}"
            elif t.type == self.S.TensorType.FLOAT32 and t.name in (md.get("outputs") or []):
                u = dict(zip(md.get("outputs") or [], md.get("units") or [])).get(t.name, "")
                text += f"; this tensor is {t.name} in {u or 'units'}"
        else:
            lay = md.get("input_layout")
            lay = lay.get("tflite", "") if isinstance(lay, dict) else "(1, 1, T, C) channels-last"
            text = f"{lay}; channels {md.get('channels')}, fs {md.get('fs')} Hz, window {md.get('window_s')} s, " \
                   f"band {md.get('band')}, normalisation {md.get('norm')}"
        q = t.quantization
        normalised = output and bool(md.get("output_quantization"))       # the tensor's own params: model units
        if q is not None and q.scale:
            text += (f"; int8: {'normalised' if normalised else 'real'} = scale * (q - zero_point), scale "
                     f"{q.scale[0]:.9g}, zero_point {q.zeroPoint[0]}")
        return f"shape {list(t.shape)}; " + text

    def model_metadata(self, md: dict, inputs, outputs) -> bytes:
        """The standard TFLite Metadata (tflite-support metadata_schema.fbs, identifier "M001")."""
        name = str(md.get("model", "sqtool model"))
        desc = f"sqtool {md.get('model')} ({md.get('quant_scheme')}: {md.get('quant_description', '')}); " \
               "full contract in the 'sqtool_metadata' JSON entry"
        tensors = lambda idx, out: [(self.tensors[i].name, self._edge_description(i, md, out)) for i in idx]
        return model_metadata_bytes(name, desc, str(md.get("sqtool_version", "")),
                                    tensors(inputs, False), tensors(outputs, True))

    def finish(self, inputs, outputs, md: dict, versions: dict[int, int]) -> bytes:
        import flatbuffers
        S = self.S
        sg = S.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = self.tensors, self.ops, inputs, outputs, "main"
        m = S.ModelT()
        m.version = 3
        m.description = f"sqtool {md['sqtool_version']} {md['model']} ({md['quant_scheme']})"
        codes = [None] * len(self.opcodes)
        for code, (i, oc) in self.opcodes.items():
            oc.version = versions.get(code, 1)
            codes[i] = oc
        m.operatorCodes, m.subgraphs = codes, [sg]
        sig = S.SignatureDefT()                       # LiteRT's get_signature_runner() needs one
        sig.signatureKey, sig.subgraphIndex = SIGNATURE_KEY, 0
        sig.inputs, sig.outputs = [self._tensor_map(i) for i in inputs], [self._tensor_map(i) for i in outputs]
        m.signatureDefs = [sig]
        metas = []
        for name, data in ((TFLITE_METADATA_NAME, dumps_json(md).encode()),
                           (STANDARD_METADATA_NAME, self.model_metadata(md, inputs, outputs))):
            meta = S.MetadataT()
            meta.name, meta.buffer = name, self.buffer(data)
            metas.append(meta)
        m.metadata, m.buffers = metas, self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _mean_tail(w: _Writer, x: int, t: int, c: int, ttype, mean_q, fc_in_q) -> int:
    """MEAN over (1, 2) keep_dims -> (1, 1, 1, C), RESHAPE -> (1, C); returns the (1, C) tensor."""
    S = w.S
    axes = w.tensor("mean/axes", [2], S.TensorType.INT32, np.array([1, 2], np.int32))
    m = w.tensor("pool_q/mean", [1, 1, 1, c], ttype, **mean_q)
    ro = S.ReducerOptionsT()
    ro.keepDims = True
    w.op(S.BuiltinOperator.MEAN, [x, axes], [m], S.BuiltinOptions.ReducerOptions, ro)
    shape = w.tensor("pool_q/shape", [2], S.TensorType.INT32, np.array([1, c], np.int32))
    r = w.tensor("pool_q", [1, c], ttype, **fc_in_q)
    rs = S.ReshapeOptionsT()
    rs.newShape = [1, c]
    w.op(S.BuiltinOperator.RESHAPE, [m, shape], [r], S.BuiltinOptions.ReshapeOptions, rs)
    return r


def _fc(w: _Writer, x: int, weight, bias, out_name, out_shape, ttype, wq, bq, oq) -> int:
    S = w.S
    wt = w.tensor("fc/weight", weight.shape, ttype, weight, **wq)
    bt = w.tensor("fc/bias", bias.shape, S.TensorType.INT32 if ttype == S.TensorType.INT8 else ttype, bias, **bq)
    y = w.tensor(out_name, out_shape, ttype, **oq)
    fo = S.FullyConnectedOptionsT()
    fo.fusedActivationFunction = S.ActivationFunctionType.NONE
    w.op(S.BuiltinOperator.FULLY_CONNECTED, [x, wt, bt], [y], S.BuiltinOptions.FullyConnectedOptions, fo)
    return y


def _reshape(w: _Writer, x: int, name: str, shape, ttype, q: dict) -> int:
    S = w.S
    st = w.tensor(f"{name}/shape", [len(shape)], S.TensorType.INT32, np.array(shape, np.int32))
    y = w.tensor(name, shape, ttype, **q)
    rs = S.ReshapeOptionsT()
    rs.newShape = list(shape)
    w.op(S.BuiltinOperator.RESHAPE, [x, st], [y], S.BuiltinOptions.ReshapeOptions, rs)
    return y


SPECTRAL_INPUT, SPECTRAL_OUTPUT = "spectra", "hr_logits"      # tensor names of the spectral models' edges


def output_names(md: dict, k: int) -> list[str]:
    """The output tensors' names of a time-domain model: its config's outputs, one per FC output."""
    names = [str(n) for n in md.get("outputs") or []]
    if len(names) != k or len(set(names)) != k:
        raise SqtoolError(f"tflite export: the model has {k} outputs but its config names {names}")
    return names


def _split(w: _Writer, x: int, names: list[str], ttype, q: dict) -> list[int]:
    """SPLIT the (1, k) FC output along axis 1 into one (1, 1) tensor per name (same quantization)."""
    S = w.S
    axis = w.tensor("split/axis", [1], S.TensorType.INT32, np.array([1], np.int32))
    outs = [w.tensor(n, [1, 1], ttype, **q) for n in names]
    so = S.SplitOptionsT()
    so.numSplits = len(names)
    w.op(S.BuiltinOperator.SPLIT, [axis, x], outs, S.BuiltinOptions.SplitOptions, so)
    return outs


# int8 needs newer op versions (per-channel conv = 3, int8 mean = 2, int8 FC = 4, int8 reshape = 1, int8 split = 2)
_INT8_VERSIONS = {3: 3, 40: 2, 9: 4, 22: 1, 49: 2}


def int8_bytes(graph, md: dict) -> bytes:
    """The full-integer flatbuffer from an IntGraph (student or spectral)."""
    w = _Writer()
    S = w.S
    I8 = S.TensorType.INT8
    T, C = graph.input_shape
    x = w.tensor(SPECTRAL_INPUT if graph.spectral else "input", [1, 1, T, C], I8, scale=[graph.input_scale],
                 zp=[graph.input_zp])
    inp = x
    for l in graph.layers:
        if l.op == "conv":
            cout, k, cin = l.weight.shape
            wt = w.tensor(f"{l.name}/weight", [cout, 1, k, cin], I8, l.weight.reshape(cout, 1, k, cin),
                          scale=l.weight_scale, zp=np.zeros(cout, np.int64), qdim=0)
            bscale = np.float32(l.in_scale) * np.asarray(l.weight_scale, np.float32)
            bt = w.tensor(f"{l.name}/bias", [cout], S.TensorType.INT32, l.bias.astype(np.int32),
                          scale=bscale, zp=np.zeros(cout, np.int64), qdim=0)
            y = w.tensor(l.name, [1, 1, l.out_shape[0], cout], I8, scale=[l.out_scale], zp=[l.out_zp])
            w.op(S.BuiltinOperator.CONV_2D, [x, wt, bt], [y], *w.conv_options(l.stride, l.relu, l.dilation))
            x = y
        elif l.op == "mean":
            q = dict(scale=[l.out_scale], zp=[l.out_zp])
            x = _mean_tail(w, x, l.in_shape[0], l.in_shape[1], I8, q, q)
        elif l.op == "fc":
            bscale = [np.float32(l.in_scale) * np.float32(l.weight_scale[0])]
            x = _fc(w, x, l.weight, l.bias.astype(np.int32), "fc", [1, l.out_shape[0]], I8,
                    dict(scale=l.weight_scale[:1], zp=[0]), dict(scale=bscale, zp=[0]),
                    dict(scale=[l.out_scale], zp=[l.out_zp]))
        else:  # pragma: no cover
            raise SqtoolError(f"tflite export: layer '{l.name}' op {l.op} is not supported")
    if graph.spectral:                                                     # (1, 1, F, 1) -> (1, F)
        last = graph.layers[-1]
        x = _reshape(w, x, SPECTRAL_OUTPUT, [1, graph.output_size], I8,
                     dict(scale=[last.out_scale], zp=[last.out_zp]))
        return w.finish([inp], [x], md, _INT8_VERSIONS)
    outs = _split(w, x, output_names(md, graph.output_size), I8,
                  dict(scale=[graph.output_scale], zp=[graph.output_zp]))
    return w.finish([inp], outs, md, _INT8_VERSIONS)


FLOAT_WRITABLE = ("Student", "SpecNet", "RrSpecNet")      # what float_bytes writes: conv blocks, then an FC or a head


def _folded_float_state(model) -> dict:
    kind = type(model).__name__
    if kind not in FLOAT_WRITABLE or getattr(model, "preset", None) is not None:
        raise SqtoolError(f"tflite float export: model {kind} is not a float student or spectral model")
    if kind in ("SpecNet", "RrSpecNet"):                   # the same conv blocks and 1 x 1 head
        from sqtool.models.spectral import fold_bn_state
    else:
        from sqtool.models.student import fold_bn_state
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in fold_bn_state(model).items()}


def float_bytes(model, md: dict) -> bytes:
    """float32 flatbuffer of a float student or spectral model (BN folded into each conv; a student's outputs
    in units, the de-normalisation folded into its FC)."""
    sd = _folded_float_state(model)
    spectral = hasattr(model, "n_bins")                                    # SpecNet, RrSpecNet: logits per bin
    w = _Writer()
    S = w.S
    F32 = S.TensorType.FLOAT32
    C, T = model.cfg.input_shape                                           # (C, T) samples or (C, F) spectra
    x = w.tensor(SPECTRAL_INPUT if spectral else "input", [1, 1, T, C], F32)
    inp = x
    t, c = T, C
    for i, blk in enumerate(model.blocks):
        wt = sd[f"blocks.{i}.conv.weight"]                                 # (Cout, Cin, K)
        cout, _, k = wt.shape
        t //= blk.stride
        wtt = w.tensor(f"blocks.{i}/weight", [cout, 1, k, c], F32, wt.transpose(0, 2, 1).reshape(cout, 1, k, c))
        bt = w.tensor(f"blocks.{i}/bias", [cout], F32, sd[f"blocks.{i}.conv.bias"])
        y = w.tensor(f"blocks.{i}", [1, 1, t, cout], F32)
        w.op(S.BuiltinOperator.CONV_2D, [x, wtt, bt], [y],
             *w.conv_options(blk.stride, True, int(getattr(blk, "dilation", 1))))
        x, c = y, cout
    if spectral:
        hw = sd["head.weight"]                                             # (1, Cin, 1)
        wtt = w.tensor("head/weight", [1, 1, 1, c], F32, hw.reshape(1, 1, 1, c))
        bt = w.tensor("head/bias", [1], F32, sd["head.bias"])
        y = w.tensor("head", [1, 1, t, 1], F32)
        w.op(S.BuiltinOperator.CONV_2D, [x, wtt, bt], [y], *w.conv_options(1, False))
        x = _reshape(w, y, (model.cfg.outputs or (SPECTRAL_OUTPUT,))[0], [1, t], F32, {})     # hr_logits, rr_logits
        return w.finish([inp], [x], md, {})
    x = _mean_tail(w, x, t, c, F32, {}, {})
    from sqtool.export.metadata import output_affine
    fw, fb = sd["fc.weight"], sd["fc.bias"]                                # (k, C'), (k,)
    scale, offset = output_affine(md, fw.shape[0])                        # units = std * y + mean, folded
    fw = (fw.astype(np.float64) * scale[:, None]).astype(np.float32)
    fb = (fb.astype(np.float64) * scale + offset).astype(np.float32)
    x = _fc(w, x, fw, fb, "fc", [1, fw.shape[0]], F32, {}, {}, {})
    return w.finish([inp], _split(w, x, output_names(md, fw.shape[0]), F32, {}), md, {})


def write_int8(graph, md: dict, path) -> int:
    data = int8_bytes(graph, md)
    atomic_write_bytes(path, data)
    return len(data)


def write_float(model, md: dict, path) -> int:
    data = float_bytes(model, md)
    atomic_write_bytes(path, data)
    return len(data)


# ----------------------------------------------------------------------------- reading back

def read_model(path):
    S = _schema()
    buf = Path(path).read_bytes()
    return S.ModelT.InitFromPackedBuf(buf, 0), S


def read_metadata(path) -> dict:
    m, _ = read_model(path)
    for meta in m.metadata or []:
        name = meta.name.decode() if isinstance(meta.name, bytes) else meta.name
        if name == TFLITE_METADATA_NAME:
            return json.loads(bytes(np.asarray(m.buffers[meta.buffer].data, np.uint8)).decode())
    raise SqtoolError(f"{path}: no '{TFLITE_METADATA_NAME}' metadata")


def read_standard_metadata(path) -> dict:
    """The standard TFLite Metadata entry ("TFLITE_METADATA", ModelMetadata, identifier M001), parsed."""
    m, _ = read_model(path)
    for meta in m.metadata or []:
        name = meta.name.decode() if isinstance(meta.name, bytes) else meta.name
        if name == STANDARD_METADATA_NAME:
            return read_model_metadata_bytes(bytes(np.asarray(m.buffers[meta.buffer].data, np.uint8)))
    raise SqtoolError(f"{path}: no '{STANDARD_METADATA_NAME}' metadata")


def tensors_by_name(path) -> dict:
    """name -> {"shape", "type", "data" (numpy, or None), "scale", "zero_point", "qdim"}; plus "__ops__"."""
    m, S = read_model(path)
    sg = m.subgraphs[0]
    dtypes = {S.TensorType.INT8: np.int8, S.TensorType.INT32: np.int32, S.TensorType.FLOAT32: np.float32}
    out = {}
    for t in sg.tensors:
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        data = m.buffers[t.buffer].data if t.buffer else None
        arr = None
        if data is not None and len(data):
            arr = np.frombuffer(bytes(np.asarray(data, np.uint8)), dtypes[t.type]).reshape(t.shape)
        q = t.quantization
        out[name] = {"shape": list(t.shape), "type": t.type, "data": arr,
                     "scale": None if q is None or q.scale is None else np.asarray(q.scale, np.float32),
                     "zero_point": None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64),
                     "qdim": None if q is None else q.quantizedDimension}
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    out["__ops__"] = [names[m.operatorCodes[o.opcodeIndex].builtinCode] for o in sg.operators]
    return out


S_INT8 = 9                                          # TensorType.INT8 in the schema


def check_int8_params(path, graph) -> None:
    """Read the written file back: int8 weights, int32 biases, scales and zero points equal the graph's."""
    t = tensors_by_name(path)
    allowed = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "AVERAGE_POOL_2D", "RESHAPE",
               "QUANTIZE", "DEQUANTIZE", "SPLIT"}
    bad = [o for o in t["__ops__"] if o not in allowed]
    if bad:
        raise SqtoolError(f"{path}: unexpected ops {bad}")

    def same(a, b):
        return a is not None and np.array_equal(np.asarray(a), np.asarray(b))
    for l in graph.layers:
        if l.weight is None:
            continue
        wn = f"{l.name}/weight" if l.op == "conv" else "fc/weight"
        bn = f"{l.name}/bias" if l.op == "conv" else "fc/bias"
        if not same(t[wn]["data"].reshape(l.weight.shape), l.weight) or not same(t[bn]["data"], l.bias):
            raise SqtoolError(f"{path}: layer '{l.name}' weights or biases differ from the integer graph")
        if not same(t[wn]["scale"], np.asarray(l.weight_scale, np.float32)[:t[wn]["scale"].size]):
            raise SqtoolError(f"{path}: layer '{l.name}' weight scales differ from the integer graph")
        if not same(t[l.name if l.op == "conv" else "fc"]["scale"], [np.float32(l.out_scale)]):
            raise SqtoolError(f"{path}: layer '{l.name}' output scale differs from the integer graph")
    if graph.spectral and (t.get(SPECTRAL_OUTPUT, {}).get("shape") != [1, graph.output_size]
                           or t.get(SPECTRAL_INPUT, {}).get("type") != S_INT8):
        raise SqtoolError(f"{path}: spectral model needs int8 input '{SPECTRAL_INPUT}' and output "
                          f"'{SPECTRAL_OUTPUT}' of shape (1, {graph.output_size})")


# ----------------------------------------------------------------------------- running

def litert_interpreter(path, **kwargs):
    """A LiteRT Interpreter on `path` (one thread), tensors allocated. LiteRT's C++ prints "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." on stderr when it applies its default delegate (in
    allocate_tensors); that line is dropped (core.noise.quiet_fd2), anything else it prints is kept."""
    from ai_edge_litert.interpreter import Interpreter
    from sqtool.core.noise import quiet_fd2
    with quiet_fd2():
        it = Interpreter(model_path=str(path), num_threads=1, **kwargs)
        it.allocate_tensors()
    return it


def run_litert(path, x: np.ndarray, reference: bool = False, graph=None):
    """Run every window (N, 1, T, C) through LiteRT, one thread; reference=True uses the builtin
    reference kernels (BUILTIN_REF). Outputs concatenated in order: (N, k) (spectral (N, F)). With `graph`,
    also returns each layer's int8 output."""
    from ai_edge_litert.interpreter import OpResolverType
    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    if graph is not None:
        kw["experimental_preserve_all_tensors"] = True
    it = litert_interpreter(path, **kw)
    i_in = it.get_input_details()[0]["index"]
    i_outs = [d["index"] for d in it.get_output_details()]
    names = {d["name"]: d["index"] for d in it.get_tensor_details()}
    outs, layers = [], {}
    for xi in x:
        it.set_tensor(i_in, xi[None].astype(it.get_input_details()[0]["dtype"]))
        it.invoke()
        outs.append(np.concatenate([it.get_tensor(i).reshape(-1) for i in i_outs]))
        if graph is not None:
            for l in graph.layers:
                layers.setdefault(l.name, []).append(it.get_tensor(names[l.name])[0].reshape(l.out_shape).copy())
    y = np.stack(outs)
    if graph is None:
        return y
    return y, {k: np.stack(v) for k, v in layers.items()}


def run_tflm(path, x: np.ndarray, arena_size: int = 64 * 1024) -> np.ndarray:
    """Run every window through TFLite Micro's host interpreter (the firmware's kernels); outputs concatenated
    in order, (N, k)."""
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=arena_size)
    n_out = n_outputs(path)
    outs = []
    for xi in x:
        it.set_input(xi[None], 0)
        it.invoke()
        outs.append(np.concatenate([np.array(it.get_output(i)).reshape(-1) for i in range(n_out)]))
    return np.stack(outs)


def n_outputs(path) -> int:
    """Number of output tensors of the model's main subgraph."""
    m, _ = read_model(path)
    return len(m.subgraphs[0].outputs)
