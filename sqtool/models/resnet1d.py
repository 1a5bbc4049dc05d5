"""The SiamQuality teacher: a 1-D ResNet encoder, its SimSiam heads, and task heads.

Encoder (paper): stem Conv1d(C->48, k=80, s=4) + BN + ReLU, no max-pool; four stages of widths
48/96/192/384 with strides 1/2/2/2; bottleneck blocks (1x1, k3, 1x1, expansion 4) -> 1,536 channels;
mean over time. Layouts: 18/34 use basic blocks (k3, k3; expansion 1 -> 384 channels), 50/101/152 use
bottlenecks ([3, 8, 36, 3] for 152, the paper's default: 21.6 M backbone parameters).

SimSiam: projector 1536 -> 1536 -> 1536 -> 256 (BN after each, the last without affine), predictor
256 -> 512 -> 256.

Memory layout: `ResNet1d.channels_last_2d()` runs the same encoder as 2-D convolutions over (B, C, 1, T) in
channels-last (NHWC) memory. cuDNN's 1-D convolutions transpose NCHW <-> NHWC around every call and batch
norm then runs its slow NCL kernels: on an H200, resnet1d_siamq_152 pretrains 2.6x faster at batch 1,024 so
(benchmarks/gpu_pretrain.py --nhwc). Its state dict is the 1-D one (kernels (O, I, k)), whatever the layout.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from sqtool.models.registry import ModelCfg, register_model

WIDTHS = (48, 96, 192, 384)
STRIDES = (1, 2, 2, 2)
LAYOUTS = {  # depth -> (block kind, blocks per stage)
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv1d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x):                                   # (B, Cin, T)
        y = F.relu(self.bn1(self.conv1(x)))                 # (B, W, T/s)
        y = self.bn2(self.conv2(y))                         # (B, Cout, T/s)
        return F.relu(y + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv1d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(width)
        self.conv3 = nn.Conv1d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm1d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x):                                   # (B, Cin, T)
        y = F.relu(self.bn1(self.conv1(x)))                 # (B, W, T)
        y = F.relu(self.bn2(self.conv2(y)))                 # (B, W, T/s)
        y = self.bn3(self.conv3(y))                         # (B, 4W, T/s)
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet1d(nn.Module):
    """Encoder f: (B, C, T) -> (B, D) with D = 384 * expansion."""

    def __init__(self, depth: int = 152, in_channels: int = 1, stem_kernel: int = 80, stem_stride: int = 4,
                 width_mult: float = 1.0):
        super().__init__()
        kind, blocks = LAYOUTS[depth]
        block = Bottleneck if kind == "bottleneck" else BasicBlock
        widths = [max(8, int(round(w * width_mult))) for w in WIDTHS]
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, widths[0], stem_kernel, stem_stride, bias=False),
            nn.BatchNorm1d(widths[0]), nn.ReLU(inplace=True))
        layers, cin = [], widths[0]
        for w, s, n in zip(widths, STRIDES, blocks):
            stage = []
            for i in range(n):
                stage.append(block(cin, w, s if i == 0 else 1))
                cin = w * block.expansion
            layers.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*layers)
        self.out_dim = cin
        self.layout = "ncl"                                 # "nhwc" after channels_last_2d()

    def forward(self, x):                                   # (B, C, T)
        if self.layout == "nhwc":
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)    # (B, C, 1, T) NHWC
        x = self.stem(x)                                    # (B, 48, (T-80)/4+1) [NHWC: (B, 48, 1, T')]
        x = self.stages(x)                                  # (B, D, T')
        return x.mean(dim=-1).flatten(1)                    # (B, D)

    def channels_last_2d(self) -> "ResNet1d":
        """In place: every Conv1d becomes the Conv2d of kernel (1, k) with the same weights, every BatchNorm1d a
        BatchNorm2d with the same state, parameters and inputs in channels-last memory. The maths is unchanged;
        state_dict() and load_state_dict() keep the 1-D shapes, so checkpoints load into either layout. Call it
        before the optimizer is built (it makes new parameters)."""
        if self.layout == "nhwc":
            return self
        for parent in list(self.modules()):
            for name, m in list(parent.named_children()):
                if isinstance(m, nn.Conv1d):
                    c = nn.Conv2d(m.in_channels, m.out_channels, (1, m.kernel_size[0]), (1, m.stride[0]),
                                  (0, m.padding[0]), (1, m.dilation[0]), m.groups, m.bias is not None,
                                  device=m.weight.device, dtype=m.weight.dtype)
                    with torch.no_grad():
                        c.weight.copy_(m.weight.unsqueeze(2))       # (O, I, k) -> (O, I, 1, k)
                        if m.bias is not None:
                            c.bias.copy_(m.bias)
                    setattr(parent, name, c)
                elif isinstance(m, nn.BatchNorm1d):
                    like = m.running_mean if m.track_running_stats else m.weight
                    b = nn.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats,
                                       device=like.device, dtype=like.dtype)
                    b.load_state_dict(m.state_dict())
                    setattr(parent, name, b)
                else:
                    continue
                getattr(parent, name).train(m.training)
                for (_, new_p), (_, old_p) in zip(getattr(parent, name).named_parameters(), m.named_parameters()):
                    new_p.requires_grad_(old_p.requires_grad)           # a frozen encoder (linear probe) stays so
        self.to(memory_format=torch.channels_last)
        for prm in self.parameters():       # the stem's (48, 1, 1, 80) is both layouts: cuDNN gives its gradient
            if prm.dim() == 4 and prm.shape[1] == 1:        # plain strides (DDP's bucket warns and copies else)
                prm.data = torch.empty(prm.shape, dtype=prm.dtype, device=prm.device).copy_(prm.data)
        self.layout = "nhwc"
        self._register_state_dict_hook(_kernels_1d)
        self._register_load_state_dict_pre_hook(_kernels_2d, with_module=True)
        return self


def _kernels_1d(module, state, prefix, local_metadata):
    """state_dict hook of a channels-last encoder: its (O, I, 1, k) kernels saved as the 1-D (O, I, k)."""
    for k, v in state.items():
        if k.startswith(prefix) and k.endswith("weight") and v.dim() == 4:
            state[k] = v.squeeze(2)
    return state


def _kernels_2d(module, state, prefix, local_metadata, strict, missing, unexpected, error_msgs):
    """load_state_dict pre-hook of a channels-last encoder: 1-D (O, I, k) kernels loaded as (O, I, 1, k)."""
    for k in list(state):
        if k.startswith(prefix) and k.endswith("weight") and state[k].dim() == 3:
            state[k] = state[k].unsqueeze(2)


def projector(d_in: int, d_hidden: int = 1536, d_out: int = 256) -> nn.Sequential:
    """g: 3 linear layers, BN after each; the last BN has no affine parameters (SimSiam)."""
    return nn.Sequential(
        nn.Linear(d_in, d_hidden, bias=False), nn.BatchNorm1d(d_hidden), nn.ReLU(inplace=True),
        nn.Linear(d_hidden, d_hidden, bias=False), nn.BatchNorm1d(d_hidden), nn.ReLU(inplace=True),
        nn.Linear(d_hidden, d_out, bias=False), nn.BatchNorm1d(d_out, affine=False))


def predictor(d: int = 256, d_hidden: int = 512) -> nn.Sequential:
    """h: 256 -> 512 -> 256 bottleneck MLP."""
    return nn.Sequential(nn.Linear(d, d_hidden, bias=False), nn.BatchNorm1d(d_hidden), nn.ReLU(inplace=True),
                         nn.Linear(d_hidden, d))


class SiamQuality(nn.Module):
    """Encoder + optional SimSiam heads (task == "pretrain") or a linear task head.

    forward(x) -> (B, n_outputs) for a task model, (B, n_bins) logits when cfg.arch has bins_bpm (a time-domain
    heart-rate-bin teacher, benchmarks/hr_spectral.py --teacher resnet1d_siamq_18); for pretraining use
    `simsiam(x1, x2)`.
    Regression outputs are in normalised units: y = out * cfg.target_std + cfg.target_mean (cfg.units).
    """

    linear_probe = True     # encoder + head: `train finetune --mode linear` fits the head on frozen features

    def __init__(self, cfg: ModelCfg):
        super().__init__()
        a = cfg.arch
        self.encoder = ResNet1d(a.get("depth", 152), cfg.in_channels, a.get("stem_kernel", 80),
                                a.get("stem_stride", 4), a.get("width_mult", 1.0))
        d = self.encoder.out_dim
        self.proj = projector(d, a.get("proj_hidden", 1536), a.get("proj_dim", 256))
        self.pred = predictor(a.get("proj_dim", 256), a.get("pred_hidden", 512))
        n_out = cfg.n_bins or len(cfg.outputs)             # an HR-bin model (arch bins_bpm): one logit per bin
        self.head = nn.Linear(d, n_out) if cfg.task != "pretrain" and cfg.outputs else None

    def forward(self, x):                                   # (B, C, T)
        h = self.encoder(x)                                 # (B, D)
        return h if self.head is None else self.head(h)     # (B, D) or (B, n_outputs)

    def simsiam(self, x1, x2):
        """Returns (p1, p2, z1, z2): predictions and stop-gradient-ready projections."""
        z1, z2 = self.proj(self.encoder(x1)), self.proj(self.encoder(x2))   # (B, 256)
        p1, p2 = self.pred(z1), self.pred(z2)                               # (B, 256)
        return p1, p2, z1, z2


def _teacher_cfg(depth: int) -> ModelCfg:
    return ModelCfg(name=f"resnet1d_siamq_{depth}", family="resnet1d", fs=40.0, window_s=30.0, hop_s=30.0,
                    channels=("ppg",), norm="minmax", task="pretrain",
                    arch={"depth": depth, "stem_kernel": 80, "stem_stride": 4, "width_mult": 1.0,
                          "proj_hidden": 1536, "proj_dim": 256, "pred_hidden": 512})


for _depth in LAYOUTS:
    register_model(_teacher_cfg(_depth), role="teacher")(SiamQuality)

# a very small member of the family for tests and the 2-core demo (same code, narrower and shallower)
_TINY_ARCH = {"depth": 18, "stem_kernel": 80, "stem_stride": 4, "width_mult": 0.25,
              "proj_hidden": 128, "proj_dim": 64, "pred_hidden": 32}
register_model(ModelCfg(name="resnet1d_siamq_tiny", family="resnet1d", fs=40.0, window_s=30.0, hop_s=30.0,
                        channels=("ppg",), norm="minmax", task="pretrain", arch=dict(_TINY_ARCH)),
               role="teacher")(SiamQuality)
# the same tiny encoder pretrained on 10 s windows: short wrist recordings (SP Cup: 30 s of rest at each
# end) give real (rest, motion) pairs at 10 s that 30 s windows would blur; the encoder is convolutional
# with a mean over time, so it fine-tunes on 8-30 s task windows alike
register_model(ModelCfg(name="resnet1d_siamq_tiny_10s", family="resnet1d", fs=40.0, window_s=10.0, hop_s=10.0,
                        channels=("ppg",), norm="minmax", task="pretrain", arch=dict(_TINY_ARCH)),
               role="teacher")(SiamQuality)
