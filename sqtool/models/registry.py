"""A small model registry in the spirit of timm.

Every registered model has a `ModelCfg`: its architecture AND its preprocessing contract (sampling
rate, window length and hop, channels and their order, normalisation, band-pass, task, output names and
units).
The cfg is attached to the module as `model.cfg`, saved in every checkpoint (`cfg.to_dict()`), and
written into every exported artifact, so a file always says how to feed it.

    create_model("resnet1d_siamq_18")                          # pretraining teacher, 40 Hz, 30 s
    create_model("resnet1d_siamq_18", task="hr", window_s=8)   # the same family, fine-tuned for HR
    create_model("cnn1d_student_s", quant="int8_w_per_channel_a_per_tensor")   # Brevitas twin
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from sqtool.config import SqtoolError


@dataclass
class ModelCfg:
    name: str                                  # registry name, e.g. "resnet1d_siamq_18"
    family: str                                # "resnet1d" | "cnn1d_student"
    fs: float = 40.0                           # model input sampling rate, Hz
    window_s: float = 30.0                     # window length, s
    hop_s: float = 30.0                        # hop between consecutive windows, s
    channels: tuple[str, ...] = ("ppg",)       # input channels, in order (see data.record)
    norm: str = "minmax"                       # per-window, per-channel: "minmax" | "zscore"
    band: tuple[float | None, float | None] | None = (0.5, 8.0)  # Butterworth band-pass (lo, hi) Hz at fs
                                               # before windowing; None = no filter, lo/hi None = low/high-pass
    task: str = "pretrain"                     # "pretrain" | "hr" | "rr" | "af" | "bp" | "quality"
    outputs: tuple[str, ...] = ()              # output names, e.g. ("hr_bpm",), ("sbp", "dbp"), ("logit_af",)
    units: tuple[str, ...] = ()                # one per output: "bpm", "mmHg", "logit", ...
    target_mean: tuple[float, ...] = ()        # regression targets are learned as (y - mean) / std
    target_std: tuple[float, ...] = ()
    arch: dict = field(default_factory=dict)   # family-specific hyper-parameters
    quant: str | None = None                   # quantization preset name (students), None = float

    @property
    def n_samples(self) -> int:
        n = self.fs * self.window_s
        if abs(n - round(n)) > 1e-6:
            raise SqtoolError(f"{self.name}: fs * window_s = {n} is not a whole number of samples")
        return int(round(n))

    @property
    def in_channels(self) -> int:
        return len(self.channels)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.in_channels, self.n_samples)  # (C, T)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCfg":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SqtoolError(f"model config has unknown keys: {', '.join(sorted(unknown))}")
        d = dict(d)
        for k in _TUPLE_KEYS:
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)            # a key missing (e.g. "band" in checkpoints older than it) takes its default

    def replace(self, **kw) -> "ModelCfg":
        names = {f.name for f in dataclasses.fields(self)}
        for k in kw:
            if k not in names:
                raise SqtoolError(f"model config has no key '{k}'")
        for k in _TUPLE_KEYS:
            if k in kw and kw[k] is not None:
                kw[k] = tuple(kw[k])
        if "arch" in kw:
            kw["arch"] = {**self.arch, **kw["arch"]}
        return dataclasses.replace(self, **kw)


_TUPLE_KEYS = ("channels", "outputs", "units", "target_mean", "target_std", "band")   # lists in to_dict()

_BUILDERS: dict[str, Callable] = {}
_CFGS: dict[str, ModelCfg] = {}


def register_model(cfg: ModelCfg):
    """Decorator: register `builder(cfg) -> nn.Module` under cfg.name with its default cfg."""
    def deco(builder):
        if cfg.name in _CFGS:
            raise ValueError(f"model {cfg.name} registered twice")
        _BUILDERS[cfg.name] = builder
        _CFGS[cfg.name] = cfg
        return builder
    return deco


def _ensure_families_loaded() -> None:
    # importing the family modules runs their @register_model decorators
    from sqtool.models import resnet1d, student  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    _ensure_families_loaded()
    return sorted(n for n, c in _CFGS.items() if family is None or c.family == family)


def get_model_cfg(name: str, **overrides) -> ModelCfg:
    _ensure_families_loaded()
    if name not in _CFGS:
        raise SqtoolError(f"unknown model '{name}' (known: {', '.join(sorted(_CFGS))})")
    return _CFGS[name].replace(**overrides) if overrides else _CFGS[name]


def create_model(name: str | ModelCfg, **overrides):
    """Build a model from its registry name (plus cfg overrides) or from a full ModelCfg."""
    _ensure_families_loaded()
    cfg = name if isinstance(name, ModelCfg) else get_model_cfg(name, **overrides)
    if isinstance(name, ModelCfg) and overrides:
        cfg = cfg.replace(**overrides)
    if cfg.name not in _BUILDERS:
        raise SqtoolError(f"unknown model '{cfg.name}' (known: {', '.join(sorted(_BUILDERS))})")
    model = _BUILDERS[cfg.name](cfg)
    model.cfg = cfg
    return model
