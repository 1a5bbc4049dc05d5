"""Typed configs, run directories, seeds and the user-facing error type.

Every command has a `@dataclass` config. Values come, lowest priority first, from the dataclass
defaults, then `--config file.yaml`, then CLI flags. Unknown keys in the YAML are an error naming the
key. A command that produces something writes a run directory

    runs/<command>/<YYYYmmdd-HHMMSS>-<name>/    (or --out DIR)
        config.yaml      the resolved config (plus sqtool version, git SHA, seed)
        metrics.json     what the command measured
        ...              its outputs

`SqtoolError` is the one exception the CLI turns into a one-line message and a non-zero exit.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import random
import subprocess
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from sqtool import __version__


class SqtoolError(Exception):
    """An error caused by the user's input: printed as one line, exit code `code`."""

    def __init__(self, msg: str, code: int = 1):
        super().__init__(msg)
        self.code = code


class NotBuiltYet(SqtoolError):
    def __init__(self, what: str):
        super().__init__(f"{what} is not built yet in this version of sqtool", code=2)


# ----------------------------------------------------------------------------- data root

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def resolve_data_root(arg: str | os.PathLike | None = None, required: bool = False) -> Path | None:
    """--data-root, else $SQTOOL_DATA, else ../shared/data (next to the project or the cwd) if present."""
    if arg:
        p = Path(arg).expanduser()
        if not p.is_dir():
            raise SqtoolError(f"data root {p} does not exist or is not a directory")
        return p
    env = os.environ.get("SQTOOL_DATA")
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise SqtoolError(f"SQTOOL_DATA={env} does not exist or is not a directory")
        return p
    for base in (Path.cwd(), PROJECT_ROOT):
        p = (base / ".." / "shared" / "data").resolve()
        if p.is_dir():
            return p
    if required:
        raise SqtoolError("no data root: pass --data-root DIR or set SQTOOL_DATA")
    return None


# ----------------------------------------------------------------------------- dataclass configs

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


# ----------------------------------------------------------------------------- runs

def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def set_seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % (2**32))
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:
        pass


def make_run_dir(command: str, name: str, out: str | os.PathLike | None = None,
                 force: bool = False, root: str | os.PathLike = "runs") -> Path:
    """runs/<command>/<timestamp>-<name>/ unless `out` is given (refused if non-empty without force)."""
    if out:
        d = Path(out)
        if d.exists() and any(d.iterdir()) and not force:
            raise SqtoolError(f"output directory {d} exists and is not empty (use --force to overwrite)")
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        d = Path(root) / command / f"{stamp}-{name}"
        i = 1
        while d.exists():
            d = Path(root) / command / f"{stamp}-{name}-{i}"
            i += 1
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_config(run_dir: str | os.PathLike, cfg, **extra) -> dict:
    """Write the resolved config (+ provenance) as config.yaml; returns what was written."""
    d = {"sqtool_version": __version__, "git_sha": git_sha(),
         "created": _dt.datetime.now().isoformat(timespec="seconds")}
    d.update(extra)
    d["config"] = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(d, sort_keys=False))
    return d


def write_metrics(run_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> None:
    atomic_write_text(Path(run_dir) / name, json.dumps(metrics, indent=2, default=_json_default) + "\n")


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
