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

from typing import Callable

from sqtool.core import ModelCfg, SqtoolError


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
    from sqtool.models import resnet1d, spectral, student  # noqa: F401


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
