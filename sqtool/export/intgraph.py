"""The integer model inside a Brevitas student or SpecNet, as plain numpy: what every int8 artifact is built from.

Brevitas computes in float with integers hidden inside QuantTensors. Export needs the integers
themselves, in TFLite's conventions (int8 everywhere, channels-last):

    input   int8, scale s_in, zero point 0                  (QuantIdentity, Int8ActPerTensorFloat)
    conv_i  int8 weights (Cout, K, Cin) per-channel scales, int32 bias (scale s_in * s_w),
            output int8 with zero point -128                (QuantReLU, Uint8ActPerTensorFloat:
                                                             uint8 q with scale s == int8 q - 128)
    mean    over time, requantized to its own scale, zero point -128   (pool_q, uint8)
    fc      int8 weights (Cout, Cin) per-tensor scale, int32 bias, output int8 zero point 0
            (QuantLinear output_quant, Int8ActPerTensorFloat)

The spectral family (`models.spectral.SpecNet`, family "spec_cnn") has the same input and conv blocks
(stride 1, with a `dilation`, 'same' padding d (k - 1) / 2) over F heart-rate bins instead of T samples
(input (F, C) channels-last, constant scale 1/127: the front end's codes), no mean and no FC; its head
is one more conv layer:

    head    conv k = 1, Cout = 1, per-tensor weight scale, int32 bias, NO ReLU, output int8 zero point 0
            (QuantConv1d output_quant, Int8ActPerTensorFloat), out_shape (F, 1): the graph's output is
            F logits, one per bin.

`extract_int_graph(model)` reads these from a calibrated/trained Brevitas twin by running one
forward pass with hooks (the activation scales of a Brevitas model are only materialised by a
forward). `brevitas_int_outputs(model, x)` returns Brevitas's own integer outputs per layer, in the
same int8 channels-last convention, the ground truth every int8 artifact is compared with.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from sqtool.core import SqtoolError

SPECTRAL_FAMILY = "spec_cnn"          # == sqtool.models.spectral.SPECTRAL_FAMILY (not imported: no torch here)


@dataclass
class IntLayer:
    name: str                       # module name in the Brevitas model, e.g. "blocks.0", "head"
    op: str                         # "conv" | "mean" | "fc"
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    in_shape: tuple                 # (T, C) for conv/mean inputs (T = bins for spectral models), (C,) for fc
    out_shape: tuple                # (T', C') for conv (the spectral head: (F, 1)), (C,) for mean and fc
    weight: np.ndarray | None = None        # int8: conv (Cout, K, Cin) channels-last, fc (Cout, Cin)
    weight_scale: np.ndarray | None = None  # float32 (Cout,) per channel, or (1,) per tensor
    bias: np.ndarray | None = None          # int32 (Cout,), scale in_scale * weight_scale
    kernel: int = 1
    stride: int = 1
    pad: int = 0                    # symmetric zero padding (in real units) before and after
    relu: bool = False              # output clamped at the real zero (fused RELU)
    dilation: int = 1               # conv taps at t * stride - pad + j * dilation, j = 0 .. kernel - 1

    @property
    def macs(self) -> int:
        if self.op == "conv":
            return int(np.prod(self.out_shape)) * self.kernel * self.in_shape[1]
        if self.op == "fc":
            return int(self.weight.size)
        return int(np.prod(self.in_shape))


@dataclass
class IntGraph:
    layers: list[IntLayer]
    input_scale: float
    input_zp: int
    input_shape: tuple              # (T, C) channels-last; (F, C) for spectral models
    model_cfg: dict = field(default_factory=dict)
    quant: str = ""

    @property
    def spectral(self) -> bool:
        return self.model_cfg.get("family") == SPECTRAL_FAMILY

    @property
    def output_name(self) -> str:
        """Name of the last layer, whose int8 output is the model's ("fc" or "head")."""
        return self.layers[-1].name

    @property
    def output_scale(self) -> float:
        return self.layers[-1].out_scale

    @property
    def output_zp(self) -> int:
        return self.layers[-1].out_zp

    @property
    def output_size(self) -> int:
        return int(np.prod(self.layers[-1].out_shape))

    @property
    def macs(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(l.weight.size + 4 * l.bias.size for l in self.layers if l.weight is not None)

    def summary(self) -> list[dict]:
        return [{"name": l.name, "op": l.op, "in": list(l.in_shape), "out": list(l.out_shape),
                 "in_scale": l.in_scale, "in_zp": l.in_zp, "out_scale": l.out_scale, "out_zp": l.out_zp,
                 "kernel": l.kernel, "stride": l.stride, "pad": l.pad, "dilation": l.dilation, "relu": l.relu,
                 "macs": l.macs} for l in self.layers]

    def quant_params(self) -> dict:
        """Scales and zero points of the model's edges (metadata.json, C header, TFLite tensors)."""
        return {"input_scale": float(self.input_scale), "input_zero_point": int(self.input_zp),
                "output_scale": float(self.output_scale), "output_zero_point": int(self.output_zp),
                "input_dtype": "int8", "output_dtype": "int8",
                "layout": "channels-last (F, C)" if self.spectral else "channels-last (T, C)"}


# ----------------------------------------------------------------------------- checks

_TOP = {"Student": {"inp": "QuantIdentity", "blocks": "Sequential", "pool_q": "QuantIdentity", "fc": "QuantLinear"},
        "SpecNet": {"inp": "QuantIdentity", "blocks": "Sequential", "head": "QuantConv1d"}}
_BLOCK = {"conv": "QuantConv1d", "bn": "Identity", "act": "QuantReLU"}
_OPS = {"Student": "conv1d + relu blocks, mean over time, linear",
        "SpecNet": "conv1d (dilated) + relu blocks, 1x1 conv head"}


def check_supported(model, target: str = "int8") -> None:
    """Name the first layer whose op the integer targets cannot express (SqtoolError).

    Supported: quantized time-domain students (`Student`) and quantized spectral models (`SpecNet`)."""
    kind = type(model).__name__
    if kind not in _TOP or getattr(model, "preset", None) is None:
        first = next(((n, type(m).__name__) for n, m in model.named_modules() if n and not list(m.children())),
                     ("<model>", type(model).__name__))
        raise SqtoolError(f"{target} export supports only quantized students and spectral models: layer "
                          f"'{first[0]}' op {first[1]} is not supported (export float targets only for this model)")
    top = _TOP[kind]
    for name, m in model.named_children():
        want = top.get(name)
        if type(m).__name__ != want:
            raise SqtoolError(f"{target} export: layer '{name}' op {type(m).__name__} is not supported "
                              f"(supported: {_OPS[kind]})")
    for i, blk in enumerate(model.blocks):
        for name, m in blk.named_children():
            if type(m).__name__ != _BLOCK.get(name):
                raise SqtoolError(f"{target} export: layer 'blocks.{i}.{name}' op {type(m).__name__} is not "
                                  f"supported (a block is QuantConv1d + QuantReLU)")
        c = blk.conv
        if c.groups != 1 or (c.dilation[0] != 1 and c.stride[0] != 1):
            raise SqtoolError(f"{target} export: layer 'blocks.{i}.conv' op Conv1d with groups={c.groups} "
                              f"stride={c.stride[0]} dilation={c.dilation[0]} is not supported (groups 1; "
                              "a dilated conv needs stride 1)")
    if kind == "SpecNet":
        h = model.head
        if h.kernel_size[0] != 1 or h.stride[0] != 1 or h.groups != 1 or h.out_channels != 1:
            raise SqtoolError(f"{target} export: layer 'head' op Conv1d with kernel {h.kernel_size[0]}, stride "
                              f"{h.stride[0]}, groups {h.groups}, {h.out_channels} outputs is not supported "
                              "(the head is a 1x1 conv to one channel)")


# ----------------------------------------------------------------------------- extraction

def _scalar(t) -> float:
    return float(np.asarray(t.detach().cpu(), dtype=np.float32).reshape(-1)[0])


def _act_int8(qt) -> tuple[float, int, bool]:
    """(scale, int8 zero point, was unsigned) for a per-tensor activation QuantTensor."""
    scale = _scalar(qt.scale)
    zp = _scalar(qt.zero_point)
    if zp != 0:
        raise SqtoolError(f"activation with zero point {zp}: only symmetric activation quantizers export")
    if int(_scalar(qt.bit_width)) != 8:
        raise SqtoolError(f"activation with {int(_scalar(qt.bit_width))} bits: only 8-bit activations export")
    unsigned = not bool(qt.signed)
    return scale, (-128 if unsigned else 0), unsigned


def _weights(layer, where: str):
    qw = layer.quant_weight()
    if int(_scalar(qw.bit_width)) != 8 or not bool(qw.signed):
        raise SqtoolError(f"layer '{where}': only signed 8-bit weights export")
    if float(qw.zero_point.abs().max()) != 0:
        raise SqtoolError(f"layer '{where}': only symmetric weights (zero point 0) export")
    w = qw.int().detach().cpu().numpy()
    if w.min() < -127 or w.max() > 127:
        raise SqtoolError(f"layer '{where}': weights outside the narrow int8 range [-127, 127]")
    scale = np.asarray(qw.scale.detach().cpu(), dtype=np.float32).reshape(-1)
    return w.astype(np.int8), scale


def _capture(model, x):
    """One forward pass with hooks: QuantTensors of the input quantizer, every block, the tail (pool_q + fc,
    or the spectral head) and the quantized biases."""
    import torch
    got: dict[str, object] = {}
    handles = []

    def keep(name):
        def h(_m, _i, o):
            got[name] = o
        return h

    handles.append(model.inp.register_forward_hook(keep("inp")))
    for i, blk in enumerate(model.blocks):
        handles.append(blk.register_forward_hook(keep(f"blocks.{i}")))
        handles.append(blk.conv.bias_quant.register_forward_hook(keep(f"blocks.{i}.bias")))
    tail = ["head"] if hasattr(model, "head") else ["pool_q", "fc"]
    for name in tail:
        mod = getattr(model, name)
        handles.append(mod.register_forward_hook(keep(name)))
        if hasattr(mod, "bias_quant"):
            handles.append(mod.bias_quant.register_forward_hook(keep(f"{name}.bias")))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return got


def _bias(qt, n: int, where: str) -> np.ndarray:
    if qt is None or not hasattr(qt, "int"):
        raise SqtoolError(f"layer '{where}': bias is not quantized (use a preset with Int32Bias)")
    if int(_scalar(qt.bit_width)) > 32:
        raise SqtoolError(f"layer '{where}': bias wider than 32 bits")
    b = qt.int().detach().cpu().numpy().reshape(-1).astype(np.int64)
    if b.size != n:
        raise SqtoolError(f"layer '{where}': {b.size} biases for {n} channels")
    return b.astype(np.int32)


def input_shape(model) -> tuple[int, int]:
    """(C, T) of a model's float input: T samples for students, (C, F) spectra for spectral models (the
    respiratory ones: one row per front-end channel; `ModelCfg.input_shape`)."""
    return tuple(int(v) for v in model.cfg.input_shape)


def extract_int_graph(model) -> IntGraph:
    """Read the integer model out of an eval-mode Brevitas student or SpecNet (see module docstring)."""
    import torch
    check_supported(model)
    model.eval()
    cfg = model.cfg
    C, T = input_shape(model)
    got = _capture(model, torch.zeros(1, C, T))
    s_in, zp_in, unsigned = _act_int8(got["inp"])
    if unsigned:
        raise SqtoolError("layer 'inp': the model input must be signed int8 (Int8ActPerTensorFloat)")
    layers: list[IntLayer] = []
    cur_s, cur_zp, t, c = s_in, zp_in, T, C
    for i, blk in enumerate(model.blocks):
        where = f"blocks.{i}"
        w, ws = _weights(blk.conv, where + ".conv")                      # (Cout, Cin, K)
        cout = w.shape[0]
        if ws.size not in (1, cout):
            raise SqtoolError(f"layer '{where}.conv': weight scale of shape {ws.size} for {cout} channels")
        s_out, zp_out, uns = _act_int8(got[where])
        if not uns:
            raise SqtoolError(f"layer '{where}.act': ReLU output must be unsigned (Uint8ActPerTensorFloat)")
        t_out = t // blk.stride
        layers.append(IntLayer(
            name=where, op="conv", in_scale=cur_s, in_zp=cur_zp, out_scale=s_out, out_zp=zp_out,
            in_shape=(t, c), out_shape=(t_out, cout), weight=np.ascontiguousarray(w.transpose(0, 2, 1)),
            weight_scale=ws if ws.size == cout else np.repeat(ws, cout).astype(np.float32),
            bias=_bias(got.get(where + ".bias"), cout, where + ".conv"),
            kernel=blk.kernel, stride=blk.stride, pad=blk.pad, relu=True,
            dilation=int(getattr(blk, "dilation", blk.conv.dilation[0]))))
        cur_s, cur_zp, t, c = s_out, zp_out, t_out, cout
    if hasattr(model, "head"):                                          # spectral: 1x1 conv -> F int8 logits
        w, ws = _weights(model.head, "head")                            # (1, C, 1)
        s_o, zp_o, uns = _act_int8(got["head"])
        if uns:
            raise SqtoolError("layer 'head': the model output must be signed int8 (Int8ActPerTensorFloat)")
        cout = w.shape[0]
        layers.append(IntLayer(
            name="head", op="conv", in_scale=cur_s, in_zp=cur_zp, out_scale=s_o, out_zp=zp_o,
            in_shape=(t, c), out_shape=(t, cout), weight=np.ascontiguousarray(w.transpose(0, 2, 1)),
            weight_scale=ws if ws.size == cout else np.repeat(ws, cout).astype(np.float32),
            bias=_bias(got.get("head.bias"), cout, "head"), kernel=1, stride=1, pad=0, relu=False))
        return IntGraph(layers=layers, input_scale=s_in, input_zp=zp_in, input_shape=(T, C),
                        model_cfg=cfg.to_dict(), quant=cfg.quant or "")
    s_p, zp_p, uns = _act_int8(got["pool_q"])
    layers.append(IntLayer(name="pool_q", op="mean", in_scale=cur_s, in_zp=cur_zp, out_scale=s_p, out_zp=zp_p,
                           in_shape=(t, c), out_shape=(c,), relu=uns))
    w, ws = _weights(model.fc, "fc")                                    # (n_out, C)
    if ws.size != 1:
        raise SqtoolError("layer 'fc': per-channel weights on the fully connected layer are not supported "
                          "by TFLite int8 (use a per-tensor FC weight quantizer)")
    s_o, zp_o, uns = _act_int8(got["fc"])
    if uns:
        raise SqtoolError("layer 'fc': the model output must be signed int8 (Int8ActPerTensorFloat)")
    layers.append(IntLayer(name="fc", op="fc", in_scale=s_p, in_zp=zp_p, out_scale=s_o, out_zp=zp_o,
                           in_shape=(c,), out_shape=(w.shape[0],), weight=w, weight_scale=ws,
                           bias=_bias(got.get("fc.bias"), w.shape[0], "fc")))
    return IntGraph(layers=layers, input_scale=s_in, input_zp=zp_in, input_shape=(T, C),
                    model_cfg=cfg.to_dict(), quant=cfg.quant or "")


# ----------------------------------------------------------------------------- Brevitas ground truth

def quantize_input(graph: IntGraph, x: np.ndarray) -> np.ndarray:
    """Float windows (N, C, T) (spectral: (N, C, F)) -> int8 channels-last (N, T, C), as Brevitas's input
    quantizer does."""
    q = np.round(np.asarray(x, np.float32) / np.float32(graph.input_scale)) + graph.input_zp  # half-even
    return np.clip(q, -128, 127).astype(np.int8).transpose(0, 2, 1).copy()


def brevitas_int_outputs(model, x: np.ndarray, batch: int = 1) -> dict[str, np.ndarray]:
    """Brevitas's integer outputs per layer, int8 channels-last: {"input": (N,T,C), "blocks.i": (N,T',C'),
    "pool_q": (N,C), "fc": (N,k)} for students, {"input": (N,F,C), "blocks.i": (N,F,C'), "head": (N,F,1)}
    for spectral models. Batch 1 by default; a larger batch gives the same integers (`window_by_window`)."""
    import torch
    model.eval()
    outs: dict[str, list] = {}
    xs = torch.as_tensor(np.asarray(x, np.float32))
    with window_by_window(model, batch > 1):
        for i in range(0, len(xs), batch):
            got = _capture(model, xs[i:i + batch])
            for name, qt in got.items():
                if not name.endswith("bias"):
                    outs.setdefault("input" if name == "inp" else name, []).append(int8_codes(qt))
    return {k: np.concatenate(v) for k, v in outs.items()}


def brevitas_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Brevitas forward of a batch of windows x (B, C, T) (spectral: (B, C, F)): (its float outputs (B, k), its
    last layer's int8 codes (B, k): a student's fc, the spectral head's F logits), each window's bits those of a
    forward of that window alone (`window_by_window`)."""
    import torch
    model.eval()
    out: list = []
    hook = model.register_forward_hook(lambda _m, _i, o: out.append(o))
    try:
        with window_by_window(model):
            got = _capture(model, torch.as_tensor(np.asarray(x, np.float32)))
    finally:
        hook.remove()
    last = got["head"] if "head" in got else got["fc"]
    return out[0].detach().cpu().numpy(), int8_codes(last).reshape(len(x), -1)


def unquantized_outputs(model, x: np.ndarray) -> np.ndarray:
    """The float outputs (B, k) of a Brevitas model on windows x (B, C, T) with every quantizer off (weights, biases
    and activations in float: `brevitas.graph.calibrate.quantization_status_manager`): the network its QAT trained,
    before int8 rounding. Beside `brevitas_outputs` it splits an int8 reading's distance from the float student's into
    QAT's training (this network) and the rounding (this network vs its int8 outputs)."""
    import torch
    from brevitas.graph.calibrate import quantization_status_manager
    model.eval()
    with torch.no_grad(), quantization_status_manager(model, disable_act_quant=True, disable_weight_quant=True,
                                                      disable_bias_quant=True):
        y = model(torch.as_tensor(np.asarray(x, np.float32)))
    return getattr(y, "value", y).detach().cpu().numpy()


def int8_codes(qt) -> np.ndarray:
    """A QuantTensor's integers as int8 channels-last: uint8 (a ReLU's) shifted to zero point -128, (B, C, T) ->
    (B, T, C)."""
    v = qt.int().detach().cpu().numpy().astype(np.int32)
    if not bool(qt.signed):
        v = v - 128
    if v.ndim == 3:                                              # (B, C, T) -> (B, T, C)
        v = v.transpose(0, 2, 1)
    return v.astype(np.int8)


@contextmanager
def window_by_window(model, on: bool = True):
    """Within it, each weight layer of `model` (Brevitas's QuantWBIOL: QuantConv1d, QuantLinear) takes a batch's
    windows one at a time, and the rest of the forward (quantizers, activations: elementwise) the batch at once.
    Brevitas computes in float, and a convolution or GEMM over a batch sums in another order than over one window
    (oneDNN above a batch size, a batched im2col): at batch 7 or more, 2 of 436 TROIKA windows of a spectral student
    moved by one LSB. Window by window, each window's integers and float outputs are those of a batch of one."""
    from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer
    layers = [m for m in model.modules() if isinstance(m, QuantWeightBiasInputOutputLayer)] if on else []
    for m in layers:
        m.inner_forward_impl = _one_window_at_a_time(m.inner_forward_impl)
    try:
        yield
    finally:
        for m in layers:
            del m.inner_forward_impl                              # the class's method again


def _one_window_at_a_time(inner):
    def run(x, quant_weight, quant_bias):                        # x (B, C, T): a QuantTensor or a tensor
        import torch
        if x.shape[0] <= 1:
            return inner(x, quant_weight, quant_bias)
        one = (lambda i: x.set(value=x.value[i:i + 1])) if hasattr(x, "set") else (lambda i: x[i:i + 1])
        return torch.cat([inner(one(i), quant_weight, quant_bias) for i in range(x.shape[0])], dim=0)
    return run


def layer_names(graph: IntGraph) -> list[str]:
    return ["input"] + [l.name for l in graph.layers]


def graph_to_dict(graph: IntGraph) -> dict:
    """JSON-friendly description (no weights)."""
    d = dataclasses.asdict(graph)
    for l in d["layers"]:
        for k in ("weight", "weight_scale", "bias"):
            l.pop(k, None)
    return d
