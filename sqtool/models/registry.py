"""A small model registry in the spirit of timm.

Every registered model has a `ModelCfg`: its architecture AND its preprocessing contract (sampling
rate, window length and hop, channels and their order, normalisation, band-pass, task, output names and
units).
The cfg is attached to the module as `model.cfg`, saved in every checkpoint (`cfg.to_dict()`), and
written into every exported artifact, so a file always says how to feed it.

    create_model("resnet1d_siamq_18")                          # pretraining teacher, 40 Hz, 30 s
    create_model("resnet1d_siamq_18", task="hr", window_s=8)   # the same family, fine-tuned for HR
    create_model("cnn1d_student_s", quant="int8_w_per_channel_a_per_tensor")   # Brevitas twin
    load_model("runs/quantize/<run>")                          # a checkpoint's model, with its weights

`load_model` is the one way a stage turns a checkpoint into a model: it reads the file with
`core.checkpoint.load_checkpoint` (tensors and plain data only), builds the model from the checkpoint's
model_cfg and loads its weights strictly; a model_cfg that names no registered model, or weights that
do not fit it, is one SqtoolError line naming the file.
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple

from sqtool.core import ModelCfg, SqtoolError


_BUILDERS: dict[str, Callable] = {}
_CFGS: dict[str, ModelCfg] = {}
_ROLES: dict[str, str] = {}
_SHIPPED: dict[str, "Shipped"] = {}   # name -> how a model over a fixed front end ships (export targets, what it is)
ROLES = ("teacher", "student")      # teacher: pretrained / fine-tuned, distilled from; student: what quantize
                                    # distils into and export ships


class Shipped(NamedTuple):
    targets: str                    # what `sqtool export` writes of it, e.g. "onnx,tflite"
    what: str                       # the model in a few words, for its one-line refusals


def register_model(cfg: ModelCfg, role: str, shipped: Shipped | None = None):
    """Decorator: register `builder(cfg) -> nn.Module` under cfg.name with its default cfg and its `role` (ROLES,
    required: a student without one would never be offered by quantize's fitting students nor be its default).
    `shipped`: a model over a fixed front end that ships as it is, float (rr_spec, af_beats): the targets `sqtool
    export` writes of it and what it is (`shipped_as`); no student distils from it, its fine-tune is
    `train.finetune_<its task>`."""
    if role not in ROLES:
        raise ValueError(f"model {cfg.name}: role must be one of {', '.join(ROLES)}, got '{role}'")

    def deco(builder):
        if cfg.name in _CFGS:
            raise ValueError(f"model {cfg.name} registered twice")
        _BUILDERS[cfg.name] = builder
        _CFGS[cfg.name] = cfg
        _ROLES[cfg.name] = role
        if shipped is not None:
            _SHIPPED[cfg.name] = shipped
        return builder
    return deco


_LOADED = False


def _ensure_families_loaded() -> None:
    """Import every module of sqtool.models once: importing a family module runs its register_model calls, so a
    family in a new module is registered without being listed anywhere."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True                                      # set first: a module asking the registry while imported
    import importlib
    import pkgutil

    import sqtool.models as pkg
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{m.name}")


def list_models(family: str | None = None, registered_order: bool = False, role: str | None = None) -> list[str]:
    """The registered names (of `family`, of `role`), sorted; `registered_order`: in the order their modules
    register them (a family lists its members smallest first, e.g. cnn1d_student_xs, _s, _m)."""
    _ensure_families_loaded()
    names = [n for n, c in _CFGS.items()
             if (family is None or c.family == family) and (role is None or _ROLES[n] == role)]
    return names if registered_order else sorted(names)


def float_only(cfg: ModelCfg) -> ModelCfg:
    """`cfg` of a family without an int8 twin (rr_spec, af_beats); a cfg asking for a quantization preset is one line."""
    if cfg.quant:
        raise SqtoolError(f"{cfg.name} is float only (a {cfg.family} model has no int8 twin)")
    return cfg


def shipped_as(name_or_cfg) -> Shipped | None:
    """How a model over a fixed front end ships (rr_spec: onnx,tflite; af_beats: onnx; given at registration), None
    for any other model. Takes a registry name, a ModelCfg or a model_cfg dict (a checkpoint's, an export's)."""
    name = name_or_cfg.get("name") if isinstance(name_or_cfg, dict) else getattr(name_or_cfg, "name", name_or_cfg)
    if isinstance(name_or_cfg, str):
        get_model_cfg(name)                             # an unknown name: one line
    _ensure_families_loaded()
    return _SHIPPED.get(name)


def front_model(task: str) -> str | None:
    """The registry model over a fixed front end that a task has (rr: rr_spec, af: af_beats), None for another."""
    _ensure_families_loaded()
    return next((n for n in _SHIPPED if _CFGS[n].task == task), None)


def pretrains(name: str) -> bool:
    """Whether `sqtool train pretrain` can train `name`: its builder has SimSiam heads (`simsiam(x1, x2)`)."""
    get_model_cfg(name)                                 # an unknown name: one line
    return callable(getattr(_BUILDERS[name], "simsiam", None))


def no_simsiam_reason(name: str) -> str:
    """Why `sqtool train pretrain` cannot train `name` (a model `pretrains` says no to), naming the families that
    it can: the one wording of `data pairs --model` and `train pretrain --model`, each prefixing its command."""
    fams = sorted({_CFGS[n].family for n in list_models() if pretrains(n)})
    return (f"a {get_model_cfg(name).family} model has no SimSiam encoder, so `sqtool train pretrain` cannot train "
            f"it on pairs; give a {' or '.join(fams)} model")


def probes_linearly(name: str) -> bool:
    """Whether `sqtool train finetune --mode linear` can fine-tune `name`: its builder declares `linear_probe =
    True`, i.e. the model has an `encoder` (frozen) and a `head` (the only part fitted)."""
    get_model_cfg(name)                                 # an unknown name: one line
    return bool(getattr(_BUILDERS[name], "linear_probe", False))


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


def load_model(src: str | os.PathLike | dict, expect_kind: str | tuple[str, ...] | None = None):
    """A checkpoint's model with its weights, in eval mode (`model.cfg` = its ModelCfg).

    `src` is a checkpoint file, a run dir (-> its model.pt) or a checkpoint dict already read by
    `load_checkpoint`; `expect_kind` refuses another checkpoint kind. Every mismatch is one SqtoolError line."""
    from sqtool.core.checkpoint import load_checkpoint
    if isinstance(src, dict):
        ck = src
        if expect_kind is not None:
            kinds = (expect_kind,) if isinstance(expect_kind, str) else tuple(expect_kind)
            if ck.get("kind") not in kinds:
                raise SqtoolError(f"checkpoint {ck.get('path')} is a {ck.get('kind')} checkpoint; expected "
                                  f"{' or '.join(kinds)}")
    else:
        ck = load_checkpoint(src, expect_kind=expect_kind)
    where = f"checkpoint {ck.get('path', '(in memory)')}"
    try:
        cfg = ModelCfg.from_dict(ck["model_cfg"])
    except SqtoolError as e:
        raise SqtoolError(f"{where}: {e}")
    except (TypeError, ValueError) as e:
        raise SqtoolError(f"{where}: its model_cfg is not valid ({str(e).splitlines()[0]})")
    try:
        model = create_model(cfg)
    except SqtoolError as e:
        raise SqtoolError(f"{where}: {e}")
    try:
        model.load_state_dict(ck["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SqtoolError(f"{where}: weights do not fit its model_cfg ({cfg.name}): {first}")
    return model.eval()
