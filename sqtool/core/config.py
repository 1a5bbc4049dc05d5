"""Typed dataclass configs: defaults < `--config file.yaml` < CLI flags; unknown keys are an error."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from sqtool.core.errors import SqtoolError


def _unwrap_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(value: Any, tp, key: str):
    """Coerce a YAML/CLI value to the field's annotated type, or raise SqtoolError naming the key."""
    if value is None:
        return None
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            s = str(value).lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return tp(value)
        if origin in (list, tuple):
            (inner, *_) = typing.get_args(tp) or (str,)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v != ""]
            out = [_coerce(v, inner, key) for v in value]
            return tuple(out) if origin is tuple else out
        if origin is dict or tp is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError):
        raise SqtoolError(f"config key '{key}': cannot use {value!r} as {getattr(tp, '__name__', tp)}")
    return value


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass `cls` from a dict; unknown keys are an error naming the key."""
    if not isinstance(data, dict):
        raise SqtoolError(f"{where}: expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise SqtoolError(f"{where}: unknown key '{k}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            tp = hints[f.name]
            inner = _unwrap_optional(tp)
            if dataclasses.is_dataclass(inner) and isinstance(data[f.name], dict):
                kwargs[f.name] = from_dict(inner, data[f.name], f"{where}.{f.name}")
            else:
                kwargs[f.name] = _coerce(data[f.name], tp, f.name)
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return json.loads(json.dumps(d, default=str))  # tuples -> lists, paths -> str


def add_config_args(parser, cls, skip: tuple[str, ...] = ()) -> None:
    """Add `--field-name` flags for every field of dataclass `cls` (defaults None = not given)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        tp = _unwrap_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        helptext = f"{helptext} (default: {default})" if helptext else f"(default: {default})"
        helptext = helptext.replace("%%", "%").replace("%", "%%")  # argparse formats help with %
        if tp is bool:
            parser.add_argument(flag, dest=f.name, default=None, nargs="?", const="true",
                                metavar="BOOL", help=helptext)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=helptext)
    parser.add_argument("--config", dest="config_file", default=None, metavar="FILE.yaml",
                        help="YAML file of config values; CLI flags override it")


def resolve_config(cls, args=None, config_file: str | None = None, **overrides):
    """defaults < YAML file < CLI flags (args namespace, None = not given) < explicit overrides."""
    data: dict = {}
    config_file = config_file or (getattr(args, "config_file", None) if args is not None else None)
    if config_file:
        p = Path(config_file)
        if not p.is_file():
            raise SqtoolError(f"config file {p} not found")
        import yaml                         # lazy: importing sqtool.core needs only the stdlib
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise SqtoolError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}")
        if not isinstance(loaded, dict):
            raise SqtoolError(f"config file {p}: expected a mapping of keys to values")
        data.update(loaded)
    if args is not None:
        for f in dataclasses.fields(cls):
            v = getattr(args, f.name, None)
            if v is not None:
                data[f.name] = v
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where=str(config_file) if config_file else "config")
