"""Compact 1-D CNN students, float and Brevitas-quantized, from ONE block definition.

    input (B, C, T) -> [Conv1d + ReLU] x N -> mean over time -> Linear -> (B, n_outputs)

Only ops that ONNX int8, TFLite int8 and TFLite Micro all run: Conv1d (CONV_2D with H = 1), ReLU,
MEAN, FULLY_CONNECTED. Static shapes. Padding is chosen so PyTorch's symmetric padding equals TFLite's
SAME padding exactly (stride 2 -> even kernel, stride 1 -> odd kernel, pad = (k - s) / 2), so no PAD op
and no TRANSPOSE are needed after export to channels-last.

`cfg.quant = None` builds the float student (Conv + BN + ReLU). `cfg.quant = "<preset>"` builds the
Brevitas twin: the same blocks with BN folded away (conv with bias), QuantConv1d / QuantReLU /
QuantLinear with the preset's quantizers, the input quantized at the model's edge. `fold_bn_state`
turns a float student's state dict into its quantized twin's.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from sqtool.core import SqtoolError
from sqtool.models.registry import ModelCfg, get_model_cfg, list_models, register_model


def _check_conv(k: int, s: int, where: str, d: int = 1) -> int:
    if d > 1:                                           # dilated: stride 1, odd kernel, pad d (k - 1) / 2
        if s != 1 or k % 2 == 0:
            raise SqtoolError(f"{where}: a dilated conv (dilation {d}) needs stride 1 and an odd kernel, "
                              f"got kernel {k} stride {s}")
        return d * (k - 1) // 2
    if s not in (1, 2) or (k - s) % 2 or k < s:
        raise SqtoolError(f"{where}: kernel {k} with stride {s} cannot match TFLite SAME padding "
                          "(use an even kernel with stride 2, an odd kernel with stride 1)")
    return (k - s) // 2


class ConvBlock(nn.Module):
    """Conv1d (+ BN when float) + ReLU; `preset` switches to the Brevitas twin."""

    def __init__(self, cin: int, cout: int, k: int, s: int, preset=None, where: str = "conv", d: int = 1):
        super().__init__()
        pad = _check_conv(k, s, where, d)
        self.kernel, self.stride, self.pad, self.dilation = k, s, pad, d
        if preset is None:
            self.conv = nn.Conv1d(cin, cout, k, s, pad, dilation=d, bias=False)
            self.bn = nn.BatchNorm1d(cout)
            self.act = nn.ReLU()
        else:
            import brevitas.nn as qnn
            self.conv = qnn.QuantConv1d(cin, cout, k, s, pad, dilation=d, bias=True, weight_quant=preset.conv_weight,
                                        bias_quant=preset.bias, return_quant_tensor=True)
            self.bn = nn.Identity()
            self.act = qnn.QuantReLU(act_quant=preset.relu_act, return_quant_tensor=True)

    def forward(self, x):                                   # (B, Cin, T)
        return self.act(self.bn(self.conv(x)))              # (B, Cout, T / s)


def quant_input(cfg: ModelCfg, act_quant=None) -> tuple:
    """A model's quantization preset (None: float) and its input layer: identity in float; in the Brevitas twin
    a QuantIdentity with `act_quant` (default: the preset's io_act) that hands the blocks a QuantTensor."""
    if not cfg.quant:
        return None, nn.Identity()
    import brevitas.nn as qnn
    from sqtool.models.quant import get_preset
    p = get_preset(cfg.quant)
    return p, qnn.QuantIdentity(act_quant=p.io_act if act_quant is None else act_quant, return_quant_tensor=True)


class Student(nn.Module):
    def __init__(self, cfg: ModelCfg):
        super().__init__()
        convs = [tuple(c) for c in cfg.arch["convs"]]
        n_out = len(cfg.outputs)
        if n_out == 0:
            raise SqtoolError(f"{cfg.name}: a student needs at least one output (cfg.outputs)")
        check_window(cfg)
        self.preset, self.inp = quant_input(cfg)
        p = self.preset
        blocks, cin = [], cfg.in_channels
        for i, (cout, k, s) in enumerate(convs):
            blocks.append(ConvBlock(cin, cout, k, s, p, where=f"{cfg.name} conv {i}"))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        if p is None:
            self.pool_q = nn.Identity()
            self.fc = nn.Linear(cin, n_out)
        else:
            import brevitas.nn as qnn
            self.pool_q = qnn.QuantIdentity(act_quant=p.relu_act, return_quant_tensor=True)
            self.fc = qnn.QuantLinear(cin, n_out, bias=True, weight_quant=p.fc_weight, bias_quant=p.bias,
                                      output_quant=p.io_act, return_quant_tensor=True)
        self.out_features = cin

    def features(self, x):                                  # (B, C, T)
        x = self.blocks(self.inp(x))                        # (B, C', T')
        x = value(x).mean(dim=-1)                          # (B, C')
        return self.pool_q(x)                               # (B, C') requantized in the int8 twin

    def forward(self, x):                                   # (B, C, T)
        return value(self.fc(self.features(x)))            # (B, n_outputs), float (dequantized)


def value(x):
    """A Brevitas QuantTensor's dequantized value, or the tensor itself."""
    return x.value if hasattr(x, "value") and not isinstance(x, torch.Tensor) else x


# ----------------------------------------------------------------------------- BN folding

@torch.no_grad()
def fold_bn_state(float_student: Student) -> dict:
    """State dict for the quantized twin: each Conv+BN folded into one conv with bias."""
    sd = {}
    for i, blk in enumerate(float_student.blocks):
        w = blk.conv.weight                                 # (Cout, Cin, k)
        bn = blk.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        sd[f"blocks.{i}.conv.weight"] = w * scale[:, None, None]
        sd[f"blocks.{i}.conv.bias"] = bn.bias - bn.running_mean * scale
    sd["fc.weight"] = float_student.fc.weight.clone()
    sd["fc.bias"] = float_student.fc.bias.clone()
    return sd


# ----------------------------------------------------------------------------- budgets

def student_budget(cfg: ModelCfg) -> dict:
    """Static count of int8 weights, int32 biases and multiply-accumulates per window."""
    t, cin, weights, biases, macs = cfg.n_samples, cfg.in_channels, 0, 0, 0
    layers = []
    for cout, k, s in cfg.arch["convs"]:
        t_out = t // s
        w = cout * cin * k
        m = t_out * w
        layers.append({"op": "conv", "cin": cin, "cout": cout, "kernel": k, "stride": s, "t_out": t_out,
                       "weights": w, "macs": m})
        weights, biases, macs, cin, t = weights + w, biases + cout, macs + m, cout, t_out
    n_out = len(cfg.outputs)
    layers.append({"op": "mean", "t_in": t, "channels": cin})
    layers.append({"op": "fc", "cin": cin, "cout": n_out, "weights": cin * n_out, "macs": cin * n_out})
    weights, biases, macs = weights + cin * n_out, biases + n_out, macs + cin * n_out + t * cin
    return {"int8_weights": weights, "int32_biases": biases, "params": weights + biases, "macs": macs,
            "layers": layers}


# ----------------------------------------------------------------------------- registry

STUDENT_FAMILY = "cnn1d_student"
HR_DEFAULTS = dict(family=STUDENT_FAMILY, fs=40.0, window_s=8.0, hop_s=2.0,
                   channels=("ppg", "acc_x", "acc_y", "acc_z"), norm="minmax", task="hr",
                   outputs=("hr_bpm", "quality_logit"), units=("bpm", "logit"),
                   target_mean=(120.0, 0.0), target_std=(40.0, 1.0))

# (out_channels, kernel, stride) per conv; budgets for `s`: <= 16 k int8 weights, <= 1 M MACs / 8 s window.
# `s` spends weights on the receptive field: large early kernels with few channels (cheap at high T) and
# a 5th stride-2 stage (T 320 -> 10), RF 218 samples = 5.45 s (was 86 = 2.15 s with
# [[16,8,2],[24,6,2],[32,4,2],[40,4,2],[40,3,1]]); wrist-HR LOSO MAE 8.11 vs 9.20 BPM, labels only, PPG,
# 3 seeds x 4 folds, confirmed on the other 8 folds (benchmarks/results/student_arch_search.md).
# 15,488 int8 weights / 413,824 MACs (PPG), 15,872 / 475,264 (PPG + 3-axis acc).
# `s16` is `s` with its 5th stage at stride 1 (kernel 3: an even kernel needs stride 2 for TFLite's SAME padding),
# total stride 16, for windows `s`'s 32 does not divide (10 s at 40 Hz: 400 samples), held to `s`'s budget: 14,592
# int8 weights, 578,464 MACs (PPG, 10 s). It stands in for `s` there where `xs` (2,464 weights) did: on the af
# compress benchmark's 3 held-out patients the int8 student's AUROC is 0.864 against xs's 0.557 (teacher 0.881;
# benchmarks/results/compress_af.md, compress_af_xs.md), quality 0.996 against 0.997 (a design fixed before the
# measurement, `s`'s own with one stride fewer, not chosen on it).
STUDENT_ARCHS = {
    "cnn1d_student_xs": [[8, 8, 2], [12, 6, 2], [16, 4, 2], [16, 4, 2]],
    "cnn1d_student_s16": [[8, 16, 2], [16, 12, 2], [24, 8, 2], [28, 6, 2], [32, 3, 1], [32, 3, 1]],
    "cnn1d_student_s": [[8, 16, 2], [16, 12, 2], [24, 8, 2], [28, 6, 2], [32, 4, 2], [32, 3, 1]],
    "cnn1d_student_m": [[24, 8, 2], [32, 6, 2], [48, 4, 2], [64, 4, 2], [64, 3, 1], [96, 4, 2]],
}
STUDENT_BUDGETS = {name: {"int8_weights": 16_000, "macs": 1_000_000}     # s16 is held to s's own budget
                   for name in ("cnn1d_student_s", "cnn1d_student_s16")}

for _name, _convs in STUDENT_ARCHS.items():
    register_model(ModelCfg(name=_name, arch={"convs": _convs}, **HR_DEFAULTS), role="student")(Student)


def stride_of(convs) -> int:
    """The total stride of a student's convs [(out_channels, kernel, stride), ...]: its window must be a multiple."""
    return math.prod(int(s) for _, _, s in convs)


def check_window(cfg: ModelCfg) -> None:
    """One line where a student's total stride does not divide its window's samples (its convs as built, after
    any width/depth knob), naming the registry students that fit it."""
    total_stride = stride_of(cfg.arch["convs"])
    if cfg.n_samples % total_stride:
        fits = students_fitting(cfg.n_samples)
        raise SqtoolError(f"{cfg.name}: window of {cfg.n_samples} samples is not divisible by the "
                          f"total stride {total_stride}; "
                          + (f"--student {' or '.join(fits)} fits it" if fits else
                             f"no registry student fits it: a window of a multiple of {total_stride} samples"))


def students_fitting(n_samples: int) -> list[str]:
    """The registry students (family cnn1d_student, role student) whose total stride divides a window of
    `n_samples`, in the order they are registered (xs, s16, s, m). The default among them is quantize's
    (`compress.distill.default_student`)."""
    return [n for n in list_models(STUDENT_FAMILY, registered_order=True, role="student")
            if n_samples % stride_of(get_model_cfg(n).arch["convs"]) == 0]


def widen(cfg: ModelCfg, width_mult: float = 1.0, depth_delta: int = 0) -> ModelCfg:
    """The width/depth knob: scale every conv's channels, drop (<0) or repeat (>0) the last conv."""
    convs = [[max(4, int(round(c * width_mult))), k, s] for c, k, s in cfg.arch["convs"]]
    if depth_delta < 0:
        convs = convs[:max(1, len(convs) + depth_delta)]
    for _ in range(max(0, depth_delta)):
        c = convs[-1][0]
        convs.append([c, 3, 1])
    return cfg.replace(arch={"convs": convs})
