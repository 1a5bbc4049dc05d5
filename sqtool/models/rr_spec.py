"""Respiratory rate as a distribution over breaths/min bins: a small fully-convolutional network over the
respiratory spectra of `sqtool.data.resp` (the HR recipe of `models.spectral`, applied to breathing).

    net = create_model("rr_spec")                 # registry model, family "resp_spec"; float only
    z = net(S)                                    # S (B, 4, F) spectra on the cfg's bins -> (B, F) logits
    rr = decode(z.numpy(), rr_grid(net.cfg))      # (B,) breaths/min

    input  (B, 4, F)  baseline / RIIV / RIAV / RIFV power on the bins (4..40 breaths/min, 0.5 step), max 1:
                      the front end `data.resp.resp_spectra` of 30 s PPG windows (40 Hz, band 0.05-8 Hz)
    blocks [Conv1d(k=7, dilation d, 'same') + BN + ReLU] x 4, d = 1, 2, 4, 8, 32 channels
    head   Conv1d(k=1) -> (B, F) logits, one per breaths/min bin

The model's cfg carries the whole contract: the PPG window (fs, window_s, hop_s, band, norm) the front end
reads, the front end itself (`frontend`: type "resp_spectrum", its bins, channels and resampling rate) and the
decoding (`arch["local_rpm"]`). Training (`sqtool train finetune --task rr --model rr_spec`,
`train.finetune_rr`): cross-entropy against a Gaussian-smoothed target (sigma `arch["sigma_rpm"]` around the
reference rate), shift augmentation (input and target moved together by up to +-`arch["shift_rpm"]` along the
bins, zero fill: the network learns to read WHERE the respiratory peaks agree, not the training set's rates).
Prediction: the softmax-weighted mean of the bins within +-`local_rpm` of the argmax. Every hyperparameter is
fixed here a priori (not tuned on the test subjects).
"""
from __future__ import annotations

import numpy as np
import torch.nn as nn

from sqtool.core import ModelCfg, SqtoolError
from sqtool.core.model_cfg import RR_FAMILY, is_resp_spec  # noqa: F401 - torch-free, for predict / bench
from sqtool.models.registry import Shipped, float_only, register_model
from sqtool.models.student import ConvBlock

# The front end's numbers, those of `sqtool.data.resp` (models import core only; tests/models/test_rr_spec.py
# checks that the two agree): breaths/min bins lo, hi, step; its rows; the series' resampling rate; the shortest window.
BINS_RPM = (4.0, 40.0, 0.5)
RR_BINS = np.arange(BINS_RPM[0], BINS_RPM[1] + 1e-9, BINS_RPM[2])
RESP_CHANNELS = ("baseline", "riiv", "riav", "rifv")
RESAMPLE_HZ = 4.0
MIN_WINDOW_S = 10.0
FRONTEND = {"type": "resp_spectrum", "bins_rpm": list(BINS_RPM), "channels": list(RESP_CHANNELS),
            "resample_hz": RESAMPLE_HZ, "min_window_s": MIN_WINDOW_S}


def rr_grid(cfg: ModelCfg | dict) -> np.ndarray:
    """The breaths/min bins of a resp_spec model's cfg (or its dict, e.g. an export's model_cfg)."""
    fe = cfg.get("frontend") if isinstance(cfg, dict) else cfg.frontend
    lo, hi, step = (float(v) for v in (fe or {}).get("bins_rpm", ()))
    return np.arange(lo, hi + 1e-9, step)


def check_frontend(cfg: ModelCfg | dict, where: str) -> None:
    """A resp_spec model's front end must be the one `data.resp` computes (its channels, resampling rate): a file
    made by another front end is refused in one line naming `where`."""
    fe = (cfg.get("frontend") if isinstance(cfg, dict) else cfg.frontend) or {}
    if (fe.get("type") != "resp_spectrum" or list(fe.get("channels") or []) != list(RESP_CHANNELS)
            or float(fe.get("resample_hz", 0)) != RESAMPLE_HZ):
        raise SqtoolError(f"{where}: its respiratory front end ({fe.get('type')}, channels {fe.get('channels')}, "
                          f"{fe.get('resample_hz')} Hz) is not this sqtool's (resp_spectrum, {list(RESP_CHANNELS)}, "
                          f"{RESAMPLE_HZ:g} Hz)")


class RrSpecNet(nn.Module):
    """The conv blocks of the spectral HR network (`models.student.ConvBlock`: Conv1d + BN + ReLU, 'same' padding)
    and a 1 x 1 head; `n_bins` and the block layout are what the float ONNX / TFLite writers read."""

    def __init__(self, cfg: ModelCfg):
        super().__init__()
        self.cfg = float_only(cfg)
        a = cfg.arch
        cin, self.n_bins = cfg.input_shape
        blocks = []
        for i, d in enumerate(a["dilations"]):
            blocks.append(ConvBlock(cin, a["width"], a["kernel"], 1, None, where=f"{cfg.name} conv {i}", d=d))
            cin = a["width"]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv1d(cin, 1, 1)

    def forward(self, x):                                   # (B, 4, F)
        if x.shape[-2:] != (self.blocks[0].conv.in_channels, self.n_bins):
            raise SqtoolError(f"{self.cfg.name} expects respiratory spectra of shape (B, "
                              f"{self.blocks[0].conv.in_channels}, {self.n_bins}), got {tuple(x.shape)}")
        return self.head(self.blocks(x))[:, 0]              # (B, F) logits


def decode(logits: np.ndarray, bins: np.ndarray = RR_BINS, local_rpm: float = 3.0) -> np.ndarray:
    """(N, F) logits -> (N,) breaths/min: softmax-weighted mean within +-local_rpm of the argmax."""
    z = np.asarray(logits, float)
    if z.ndim != 2 or z.shape[1] != len(bins):
        raise SqtoolError(f"rr decode: logits must be (N, {len(bins)}), got {z.shape}")
    p = np.exp(z - z.max(1, keepdims=True))
    top = bins[np.argmax(p, 1)]
    p = p * (np.abs(bins[None, :] - top[:, None]) <= local_rpm)
    return (p * bins[None, :]).sum(1) / p.sum(1)


# ----------------------------------------------------------------------------- registry

register_model(ModelCfg(name="rr_spec", family=RR_FAMILY, fs=40.0, window_s=30.0, hop_s=10.0, channels=("ppg",),
                        norm="minmax", band=(0.05, 8.0), task="rr", outputs=("rr_logits",), units=("logit",),
                        arch={"width": 32, "kernel": 7, "dilations": [1, 2, 4, 8], "sigma_rpm": 1.0,
                              "shift_rpm": 4.0, "local_rpm": 3.0},
                        frontend=dict(FRONTEND)), role="teacher",
               shipped=Shipped("onnx,tflite", "a float network over respiratory spectra"))(RrSpecNet)
