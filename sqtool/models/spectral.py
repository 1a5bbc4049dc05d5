"""Heart rate as a distribution: a fully convolutional network over the spectrum, one logit per HR bin.

    input  (B, C, F)  per-channel power spectra on the HR bin grid (30..229.5 BPM, 1.5 BPM: F = 134): PPG, acc_x,
                      acc_y, acc_z (the `_accsum` twins: PPG, acc = the three axes' power summed, orientation-free),
                      each scaled by the front end to int8 codes in [-127, 127] (float input = code / 127)
    blocks [Conv1d(k, dilation d, 'same') + ReLU] x N over the bin axis
    head   Conv1d(k=1) -> (B, F) logits, one per heart-rate bin

Convolving along frequency makes the network read WHERE the pulse peak is relative to the motion
peaks, instead of memorising the heart rates of the training set (a regression head learns the
training distribution; /work/shared/docs/hr_facts.md). A decoder (`models.decoder`) turns the sequence
of per-window distributions into the reported HR.

SiamQuality pretraining (`cfg.task == "pretrain"`, `sqtool train pretrain --model spec_teacher_m`): the same
conv blocks are the encoder f, pooled over the bins (mean and max per channel: WHAT peaks the spectra hold,
not where, since the two windows of a pair are minutes apart at different heart rates), with SimSiam's
projector g and predictor h on top (`simsiam(x1, x2)`); `load_encoder` copies a pretrained encoder into a
heart-rate model of the same architecture and front end before fine-tuning.

`cfg.quant = None` builds the float model (Conv + BN + ReLU); `cfg.quant = "<preset>"` its Brevitas twin
from the same `ConvBlock`s as the time-domain students: BN folded away, int8 weights per channel, int32
biases, uint8 activations, the input quantizer fixed at scale 1/127 (the front end's codes pass
through unchanged) and int8 logits at the output. `fold_bn_state` maps a float state dict onto the twin.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from sqtool.core import ModelCfg, SqtoolError
from sqtool.models.registry import register_model
from sqtool.models.student import ConvBlock, quant_input, value

SPECTRAL_FAMILY = "spec_cnn"


def bin_grid(cfg: ModelCfg) -> np.ndarray:
    """The HR bins (BPM) of a spectral model: lo, lo + step, ..., hi."""
    lo, _, step = (float(v) for v in cfg.arch["bins_bpm"])
    return lo + step * np.arange(cfg.n_bins)


def _input_quant():
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import Int8ActPerTensorFloat

    class Int8ActUnitRange(Int8ActPerTensorFloat):
        """Signed int8, narrow range, constant scale 1/127: the front end's codes, unchanged."""
        scaling_impl_type = ScalingImplType.CONST
        scaling_init = 1.0
        narrow_range = True
    return Int8ActUnitRange


class SpecNet(nn.Module):
    def __init__(self, cfg: ModelCfg):
        super().__init__()
        convs = [tuple(c) for c in cfg.arch["convs"]]           # (out_channels, kernel, dilation)
        self.n_bins = len(bin_grid(cfg))
        self.preset, self.inp = quant_input(cfg, _input_quant() if cfg.quant else None)
        p = self.preset
        blocks, cin = [], cfg.in_channels
        for i, (cout, k, d) in enumerate(convs):
            blocks.append(ConvBlock(cin, cout, k, 1, p, where=f"{cfg.name} conv {i}", d=d))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        if cfg.task == "pretrain":                              # SimSiam heads over the pooled encoder
            if p is not None:
                raise SqtoolError(f"{cfg.name}: pretrain the float model, not its quantized twin")
            from sqtool.models.resnet1d import predictor, projector
            a = cfg.arch
            self.proj_dim = int(a.get("proj_dim", 64))
            self.proj = projector(2 * cin, int(a.get("proj_hidden", 128)), self.proj_dim)
            self.pred = predictor(self.proj_dim, int(a.get("pred_hidden", 32)))
        if p is None:
            self.head = nn.Conv1d(cin, 1, 1, bias=True)
            if cfg.task == "pretrain":                          # SimSiam never reads it: no gradient, which DDP
                self.head.requires_grad_(False)                 # (torchrun) refuses in a trained parameter
        else:
            import brevitas.nn as qnn
            self.head = qnn.QuantConv1d(cin, 1, 1, bias=True, weight_quant=p.fc_weight, bias_quant=p.bias,
                                        output_quant=p.io_act, return_quant_tensor=True)

    def forward(self, x):                                       # (B, C, F)
        if x.shape[-1] != self.n_bins:
            raise SqtoolError(f"spectral model expects {self.n_bins} bins, got input of shape {tuple(x.shape)}")
        h = self.blocks(self.inp(x))                            # (B, C', F)
        return value(self.head(h))[:, 0, :]                     # (B, F) logits

    def encode(self, x):                                        # (B, C, F)
        h = self.blocks(self.inp(x))                            # (B, C', F)
        return torch.cat([h.mean(dim=-1), h.amax(dim=-1)], 1)   # (B, 2 C')

    def simsiam(self, x1, x2):
        """(p1, p2, z1, z2) of a pair of spectra windows (pretraining only)."""
        z1, z2 = self.proj(self.encode(x1)), self.proj(self.encode(x2))   # (B, proj_dim)
        return self.pred(z1), self.pred(z2), z1, z2


ENCODER_CONTRACT = ("in_channels", "channels", "fs", "window_s", "hop_s", "norm", "band", "frontend")


def _contract(cfg: ModelCfg, key: str):
    """One input-contract entry; the front end's ppg_sensors aside: the encoder reads the same averaged spectrum
    whether a device has one PPG sensor or two (a model trained on one-sensor recordings lists one)."""
    v = cfg.to_dict().get(key)
    return {k: x for k, x in v.items() if k != "ppg_sensors"} if key == "frontend" and isinstance(v, dict) else v


def check_encoder(cfg: ModelCfg, ck: dict, where: str = "--init") -> None:
    """Refuse a pretrained checkpoint whose encoder is not `cfg`'s: another family, convs, bins or input contract."""
    mc = ModelCfg.from_dict(ck["model_cfg"])
    if mc.family != SPECTRAL_FAMILY:
        raise SqtoolError(f"{where}: {mc.name} is not a spectral model; {cfg.name} needs a spectral encoder")
    if [list(c) for c in mc.arch["convs"]] != [list(c) for c in cfg.arch["convs"]]:
        raise SqtoolError(f"{where}: encoder {mc.name} has convs {mc.arch['convs']}, {cfg.name} {cfg.arch['convs']}")
    diff = [k for k in ENCODER_CONTRACT if _contract(mc, k) != _contract(cfg, k)]
    if diff or list(mc.arch["bins_bpm"]) != list(cfg.arch["bins_bpm"]):
        raise SqtoolError(f"{where}: encoder {mc.name} was pretrained on other inputs than {cfg.name} reads "
                          f"({', '.join(diff or ['bins_bpm'])} differ)")


def load_encoder(model: SpecNet, cfg: ModelCfg, ck: dict, where: str = "--init") -> int:
    """Copy the conv blocks of a pretrained checkpoint (`sqtool train pretrain --model <spectral>`) into `model`
    (built from `cfg`), after `check_encoder`. Returns the number of tensors copied."""
    check_encoder(cfg, ck, where)
    enc = {k: v for k, v in ck["state_dict"].items() if k.startswith("blocks.")}
    own = {k for k in model.state_dict() if k.startswith("blocks.")}
    if set(enc) != own:
        raise SqtoolError(f"{where}: the checkpoint's encoder tensors do not match {cfg.name}'s")
    model.load_state_dict(enc, strict=False)
    return len(enc)


@torch.no_grad()
def fold_bn_state(float_model: SpecNet) -> dict:
    """State dict for the quantized twin: each Conv+BN folded into one conv with bias."""
    sd = {}
    for i, blk in enumerate(float_model.blocks):
        bn = blk.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        sd[f"blocks.{i}.conv.weight"] = blk.conv.weight * scale[:, None, None]
        sd[f"blocks.{i}.conv.bias"] = bn.bias - bn.running_mean * scale
    sd["head.weight"] = float_model.head.weight.clone()
    sd["head.bias"] = float_model.head.bias.clone()
    return sd


def spectral_budget(cfg: ModelCfg) -> dict:
    """Static count of int8 weights, int32 biases and multiply-accumulates per window."""
    F, cin, layers = len(bin_grid(cfg)), cfg.in_channels, []
    for cout, k, d in [*cfg.arch["convs"], [1, 1, 1]]:
        w = cout * cin * k
        layers.append({"op": "conv", "cin": cin, "cout": cout, "kernel": k, "dilation": d, "weights": w,
                       "macs": F * w})
        cin = cout
    weights = sum(l["weights"] for l in layers)
    biases = sum(l["cout"] for l in layers)
    return {"int8_weights": weights, "int32_biases": biases, "params": weights + biases,
            "macs": sum(l["macs"] for l in layers), "layers": layers}


# ----------------------------------------------------------------------------- registry

# 1.5 BPM bins: the 8 s Hann window resolves ~11 BPM, the decoder refines below a bin, and the front end's
# DFT and the network cost scale with the bins: 134 bins keep the whole monitor within the M4 budget.
BINS_BPM = (30.0, 229.5, 1.5)
# ppg_sensors: the PPG sensors whose spectra the front end averages (each normalised to its own max) into
# the ppg channel when a recording / device has them (SP Cup / TROIKA: two; a one-sensor device uses its
# one); the network's channels stay the same. See data.hr_spectra.stream_channels.
FRONTEND = {"type": "spectrum", "bins_bpm": list(BINS_BPM),
            "ppg_sensors": ["ppg", "ppg2"]}                    # the rest: data.frontend.FrontEndCfg
SPEC_DEFAULTS = dict(family=SPECTRAL_FAMILY, fs=16.0, window_s=8.0, hop_s=2.0,
                     channels=("ppg", "acc_x", "acc_y", "acc_z"), norm="spectrum_max", band=(0.5, 4.0),
                     task="hr", outputs=("hr_logits",), units=("logit",))

# (out_channels, kernel, dilation) per conv. Receptive field 1 + 8 (1 + 2 + 4 + 8) = 121 bins = 180 BPM:
# wide enough to see a pulse peak and its harmonic, or a motion peak and the cadence's harmonic, together
# (chosen a priori, as the teacher's, not tuned on evaluated subjects). The student is half the teacher's
# width and fits the Cortex-M4 budget with the front end and decoder (<= 1 M instructions per 2 s hop).
SPEC_ARCHS = {
    "spec_student_s": [[12, 9, 1], [12, 9, 2], [12, 9, 4], [12, 9, 8]],
    "spec_student_xs": [[8, 9, 1], [8, 9, 2], [8, 9, 4], [8, 9, 8]],
    "spec_teacher_m": [[24, 9, 1], [24, 9, 2], [24, 9, 4], [24, 9, 8]],
}
SPEC_ROLES = {"spec_student_s": "student", "spec_student_xs": "student", "spec_teacher_m": "teacher"}

# The `_accsum` twins read the accelerometer as ONE channel, `acc`: the three axes' power spectra put on one
# scale and summed by the front end (data.frontend, n_channels = 2). The sum does not change when the sensor's
# axes are turned, so a swing along the watch face, which leaves one axis still, shows as plainly as any other,
# whatever a device's axis convention (per-axis channels normalise a still axis to its own noise). Measured
# against the per-axis default on the same folds (README, hr_*_accsum results): the synthetic recordings whose
# swing one axis missed are read, but the student loses on real wrists (SP Cup subject 10, wrist_exercise), so
# the default stays per axis.
ACC_CHANNELS = {"": ("ppg", "acc_x", "acc_y", "acc_z"), "_accsum": ("ppg", "acc")}

for _name, _convs in SPEC_ARCHS.items():
    for _suffix, _channels in ACC_CHANNELS.items():
        register_model(ModelCfg(name=_name + _suffix, arch={"convs": _convs, "bins_bpm": list(BINS_BPM)},
                                frontend=dict(FRONTEND), **{**SPEC_DEFAULTS, "channels": _channels}),
                       role=SPEC_ROLES[_name])(SpecNet)
