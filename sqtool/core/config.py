"""Typed dataclass configs: defaults < `--config file.yaml` < CLI flags; unknown keys are an error.

Also the flag vocabulary every command shares (`add_config_args`): one help line per option with at most
one default, BoolFlag (`--progress, --no-progress`; `--force` / `--force true`), and deprecated aliases
(old spellings keep working, hidden from help, with one `deprecated: use NEW` line on stderr)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
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


def yaml_error_text(e: Exception) -> str:
    """A PyYAML error as one line naming where it is: "line 4, column 6: expected ',' or '}', but got ':'
    (while parsing a flow mapping opened at line 3)" (1-based marks; PyYAML's own message spans lines)."""
    problem, context = getattr(e, "problem", None), getattr(e, "context", None)
    mark, opened = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
    if not problem or mark is None:
        return (str(e).splitlines() or [type(e).__name__])[0]
    where = f" opened at line {opened.line + 1}" if opened is not None and opened.line != mark.line else ""
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context}{where})" if context else "")


class _Uncoercible(ValueError):
    """A value (or one element of a list) that is not of the type it must be."""

    def __init__(self, value, tp):
        super().__init__(value)
        self.value, self.type = value, getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, key: str):
    """Coerce a YAML/CLI value to the field's annotated type, or raise SqtoolError naming the key."""
    try:
        return _convert(value, tp)
    except _Uncoercible as e:
        raise SqtoolError(f"config key '{key}': cannot use {e.value!r} as {e.type}")


def _convert(value: Any, tp):
    """`value` as type `tp` (bool from true/false/1/0/yes/no/on/off, lists from "a,b"), or _Uncoercible. None
    only for an Optional (or untyped) field, a number never from a bool (`epochs: true` is a mistake)."""
    if value is None:                  # an Optional field is a Union: neither a plain type nor a list / dict
        if tp in (bool, int, float, str, list, tuple, dict) or typing.get_origin(tp) in (list, tuple, dict):
            raise _Uncoercible(value, tp)
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
            if tp is not str and isinstance(value, bool):
                raise ValueError(value)
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return tp(value)
        if origin in (list, tuple):
            (inner, *_) = typing.get_args(tp) or (str,)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v != ""]
            out = [_convert(v, inner) for v in value]
            return tuple(out) if origin is tuple else out
        if origin is dict or tp is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except _Uncoercible:
        raise
    except (TypeError, ValueError):
        raise _Uncoercible(value, tp)
    return value


def key_names(cls) -> dict[str, str]:
    """Every key a config file may use for a field of `cls` -> the field: the flag's name (`data` for
    `--data`, `synthetic_partners` for `--synthetic-partners`), the field's own name, and the old
    spellings (`data_root` for `--data-root`). One vocabulary: a config file says what the flag says."""
    names = {f.name: f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        flag = f.metadata.get("flag")
        for spelling in ([flag] if isinstance(flag, str) else []) + list(f.metadata.get("aliases", ())):
            names.setdefault(spelling.lstrip("-").replace("-", "_"), f.name)   # a field's own name wins
    return names


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass `cls` from a dict; unknown keys are an error naming the key. Keys may be the flags'
    names or the fields' (`key_names`); two keys for one field are an error."""
    if not isinstance(data, dict):
        raise SqtoolError(f"{where}: expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    known = key_names(cls)
    seen: dict[str, str] = {}
    for k in data:
        if k not in known:
            raise SqtoolError(f"{where}: unknown key '{k}' (known: {', '.join(sorted(known))})")
        if known[k] in seen:
            raise SqtoolError(f"{where}: '{seen[known[k]]}' and '{k}' both set {known[k]}; give one")
        seen[known[k]] = k
    data = {known[k]: v for k, v in data.items()}
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            tp = hints[f.name]
            inner = _unwrap_optional(tp)
            if dataclasses.is_dataclass(inner) and isinstance(data[f.name], dict):
                kwargs[f.name] = from_dict(inner, data[f.name], f"{where}.{f.name}")
            else:
                kwargs[f.name] = _coerce(data[f.name], tp, f.name)
                _check_range(cls, f, kwargs[f.name], where)
    return cls(**kwargs)


def _check_range(cls, f: dataclasses.Field, value, where: str) -> None:
    """A number given for a field the class's `RANGES` names ({field: {"min": 0}}, a ClassVar beside the fields):
    finite (NaN and inf are never a setting) and inside "min" / "max" (inclusive) and "above" (exclusive: a rate, a
    temperature), else one line naming the flag (a config file's key is the flag's name), e.g. `--chunk must be >= 1,
    got 0`. The training numbers (learning rates, epochs, seed...) are core.optim.check_training_numbers'."""
    m = getattr(cls, "RANGES", {}).get(f.name)
    if not m or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    name = flag_of(cls, f.name) if f.metadata.get("cli") is not False else f.name
    prefix = "" if where == "config" else f"{where}: "
    if not math.isfinite(value):
        raise SqtoolError(f"{prefix}{name} must be a finite number, got {value}")
    for key, bad, word in (("min", lambda v, b: v < b, ">="), ("above", lambda v, b: v <= b, ">"),
                           ("max", lambda v, b: v > b, "<=")):
        if key in m and bad(value, m[key]):
            raise SqtoolError(f"{prefix}{name} must be {word} {m[key]:g}, got {value:g}")


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return json.loads(json.dumps(d, default=str))  # tuples -> lists, paths -> str


# ----------------------------------------------------------------------------- flags

def default_text(default) -> str | None:
    """How a default reads in help: None / empty = not shown (the help text says what it means)."""
    if default is None or (isinstance(default, (str, list, tuple, dict)) and len(default) == 0):
        return None
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)


def option_help(text: str, default=None, required: bool = False) -> str:
    """One help line with at most one default: `text (required)`, `text (default: X)`, or `text` alone when
    the text already explains its default or the default is None / empty."""
    text = (text or "").strip()
    if required:
        out = f"{text} (required)" if text else "(required)"
    elif re.search(r"\bdefault\b", text, re.IGNORECASE) or default_text(default) is None:
        out = text
    else:
        out = f"{text} (default: {default_text(default)})" if text else f"(default: {default_text(default)})"
    return out.replace("%%", "%").replace("%", "%%")            # argparse formats help with %


class BoolFlag(argparse.Action):
    """A boolean option: `--x` (true), `--x true|false|1|0|yes|no`, and `--no-x` (false) when negatable.

    Flags that are on by default are negatable (`--progress, --no-progress`); flags off by default are
    plain switches (`--force`) that also take an explicit value (`--force true`), as YAML configs do."""

    def __init__(self, option_strings, dest, default=None, help=None, **kwargs):
        kwargs.pop("nargs", None)
        kwargs.pop("metavar", None)
        super().__init__(option_strings, dest, nargs="?", default=default, metavar="BOOL", help=help, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string and option_string.startswith("--no-"):
            if values is not None:
                parser.error(f"{option_string} takes no value")
            setattr(namespace, self.dest, False)
            return
        if values is None:
            setattr(namespace, self.dest, True)
            return
        s = str(values).lower()
        if s not in _TRUE + _FALSE:
            parser.error(f"{option_string}: expected true or false, got {values!r}")
        setattr(namespace, self.dest, s in _TRUE)

    def format_invocation(self) -> str:
        return ", ".join(self.option_strings)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def add_bool_flag(parser, flag: str, dest: str, help: str, default: bool = False, stored_default=None):
    """Add a BoolFlag: `flag` plus `--no-<name>` when `default` is True. The namespace holds
    `stored_default` until the flag is given (None = "not given", so a config file can still set it)."""
    strings = [flag] + ([f"--no-{flag[2:]}"] if default else [])
    action = parser.add_argument(*strings, dest=dest, action=BoolFlag, default=stored_default,
                                 help=option_help(help, default if default else None))
    if flag == "--progress":                 # the old spelling of --no-progress, in every command that has it
        add_deprecated_alias(parser, "--quiet", "--no-progress", dest, nargs=0, const=False)
    return action


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: hidden from help, prints one `deprecated: use NEW` line, keeps working."""

    def __init__(self, option_strings, dest, new: str = "", nargs=None, const=None, target=None, **kwargs):
        kwargs.pop("help", None)
        super().__init__(option_strings, dest, nargs=nargs, const=const, help=argparse.SUPPRESS, **kwargs)
        self.new = new
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"sqtool: deprecated: use {self.new} instead of {option_string}", file=sys.stderr)
        if self.target is not None:                           # alias of a bool flag: parse like it
            self.target(parser, namespace, values, self.target.option_strings[0])
            return
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_deprecated_alias(parser, old: str, new: str, dest: str, nargs=None, const=None, target=None, **kwargs):
    """`old` keeps working as `new` (same dest) with a one-line deprecation notice on stderr. `target`: the
    BoolFlag action `old` stands for (`--old`, `--old false` then parse exactly as the new flag does);
    else `nargs=0` stores `const`, and any other nargs stores the value(s) given."""
    if target is not None:
        nargs, const = "?", None                              # a bare `--old` gives None: the flag's "true"
    return parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, nargs=nargs, const=const,
                               target=target, default=argparse.SUPPRESS, **kwargs)


def help_formatter(base=argparse.HelpFormatter):
    """`base` that prints a BoolFlag as `--x, --no-x` in the option list and `[--x | --no-x]` in usage."""
    if base in _FORMATTERS:
        return _FORMATTERS[base]

    class Formatter(base):
        def _format_action_invocation(self, action):
            if isinstance(action, BoolFlag):
                return action.format_invocation()
            return super()._format_action_invocation(action)

        def _format_args(self, action, default_metavar):
            if isinstance(action, BoolFlag):               # usage: [--force], [--progress | --no-progress]
                return " ".join(f"| {o}" for o in action.option_strings[1:])
            return super()._format_args(action, default_metavar)

    Formatter.__name__ = f"Sqtool{base.__name__}"
    _FORMATTERS[base] = _FORMATTERS[Formatter] = Formatter
    return Formatter


_FORMATTERS: dict = {}


def add_config_args(parser, cls, skip: tuple[str, ...] = ()) -> None:
    """Add one flag for every field of dataclass `cls` (defaults None = not given) and `--config`.

    Field metadata: "help" (one line), "flag" (its spelling, default `--field-name`; False = only its
    aliases), "aliases" (old spellings: hidden, deprecated, still working), "required" (the help says so;
    the stage checks it, since a --config file may give it), "metavar". Bool fields are BoolFlags."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli") is False:
            continue
        tp = _unwrap_optional(hints[f.name])
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        helptext = f.metadata.get("help", "")
        required = bool(f.metadata.get("required"))
        action = None
        if flag and tp is bool:
            action = add_bool_flag(parser, flag, f.name, helptext, default=bool(default))
            if required:
                action.help = option_help(helptext, required=True)
        elif flag:
            action = parser.add_argument(flag, dest=f.name, default=None,
                                         metavar=f.metadata.get("metavar", f.name.upper()),
                                         help=option_help(helptext, default, required))
        for old in f.metadata.get("aliases", ()):
            new = flag or f.metadata.get("alias_of", "")
            if tp is bool:
                add_deprecated_alias(parser, old, new, f.name, target=action or BoolFlag([old], f.name))
            else:
                add_deprecated_alias(parser, old, new, f.name, metavar=f.name.upper())
    parser.add_argument("--config", dest="config_file", default=None, metavar="FILE.yaml",
                        help="YAML file of config values; CLI flags override it")


RUN_CONFIG_KEYS = ("sqtool_version", "git_sha", "created")      # the bookkeeping a run's config.yaml starts with
RUN_LOCATION_KEYS = ("out", "force", "resume")     # where that run went: never the new run's (no overwrite)


def load_config_file(path: str | os.PathLike) -> dict:
    """The config values of a `--config` YAML file: a plain mapping of keys to values, or a run's own
    config.yaml (its `config:` section without where that run went, RUN_LOCATION_KEYS, so that feeding it back
    makes a new run instead of overwriting it; the bookkeeping around it, `resolved:` included, is not config)."""
    p = Path(path)
    if not p.exists():
        raise SqtoolError(f"config file {p} not found")
    if p.is_dir():
        raise SqtoolError(f"config file {p} is a folder; give a YAML file (a run's config.yaml: {p / 'config.yaml'})")
    import yaml                         # lazy: importing sqtool.core needs only the stdlib
    try:
        loaded = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise SqtoolError(f"config file {p} is not valid YAML: {yaml_error_text(e)}")
    except (OSError, UnicodeDecodeError) as e:
        raise SqtoolError(f"config file {p} cannot be read ({type(e).__name__})")
    if not isinstance(loaded, dict):
        raise SqtoolError(f"config file {p}: expected a mapping of keys to values")
    if isinstance(loaded.get("config"), dict) and any(k in loaded for k in RUN_CONFIG_KEYS):
        return {k: v for k, v in loaded["config"].items() if k not in RUN_LOCATION_KEYS}   # a run's, fed back
    return loaded


def _given(cls, args=None, config_file: str | None = None) -> tuple[dict, str | None]:
    """The values a command line gives (its --config file, then its flags over it; None = not given)."""
    data: dict = {}
    config_file = config_file or (getattr(args, "config_file", None) if args is not None else None)
    if config_file:
        data.update(load_config_file(config_file))
    if args is not None:
        known, hints = key_names(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            _check_flag_value(cls, args, f.name, hints[f.name])
            _set_field(known, data, f.name, getattr(args, f.name, None))  # the flag overrides the file's key
    return data, config_file


def _check_flag_value(cls, args, name: str, tp) -> None:
    """A value typed on the command line that is not of its field's type: a usage error (exit 2) naming the flag,
    `demo: --seed: expected int, got 'abc' (see sqtool demo --help)`, as argparse's own; a --config file's
    value is named by its key instead (from_dict). `tp`: the field's type hint."""
    value = getattr(args, name, None)
    if value is None:
        return
    try:
        _convert(value, tp)
    except _Uncoercible as e:
        prog = getattr(args, "_sqtool_prog", None) or "sqtool"
        where = prog.split(" ", 1)[1] + ": " if " " in prog else ""
        got = f"got {e.value!r}" + ("" if e.value == value else f" in {value!r}")
        raise SqtoolError(f"{where}{flag_of(cls, name)}: expected {e.type}, {got} (see {prog} --help)", code=2)


def _set_field(known: dict[str, str], data: dict, name: str, value) -> None:
    """data[name] = value unless value is None, dropping the keys that set the same field (`known`: key_names)."""
    if value is None:
        return
    for k in [k for k, field in known.items() if field == name and k in data]:
        del data[k]
    data[name] = value


def resolve_config(cls, args=None, config_file: str | None = None, run_keys: tuple[str, ...] = (), **overrides):
    """defaults < YAML file < CLI flags (args namespace, None = not given) < explicit overrides.
    Path fields (metadata "path") naming an existing file or folder come out absolute (`absolute_paths`).
    run_keys: a command's flags beside its config (train's `out`, `force`): the file's keys of those names set
    them on `args` where the command line did not, and are no config field."""
    data, config_file = _given(cls, args, config_file)
    for k in run_keys:
        if k in data:
            v = data.pop(k)
            if args is not None and getattr(args, k, None) in (None, False):
                setattr(args, k, v if isinstance(v, bool) or v is None else str(v))
    known = key_names(cls)
    for k, v in overrides.items():
        _set_field(known, data, k, v)
    return absolute_paths(from_dict(cls, data, where=str(config_file) if config_file else "config"))


# ----------------------------------------------------------------------------- paths

def path_fields(cls) -> tuple[str, ...]:
    """The fields of `cls` that name files or folders (metadata "path": True)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("path"))


NAMES_NOT_PATHS = ("synthetic", "none")     # values of path fields that name no file, even beside a folder so named


def absolute_path(value):
    """A file or folder named relative to the working directory -> its absolute path. Anything that is not
    an existing path (a registry or built-in name, '', a missing file, whose error then names what was typed)
    and the reserved NAMES_NOT_PATHS ('synthetic', 'none': even with a folder of that name in the working
    directory) are returned as given; lists element by element."""
    if isinstance(value, (list, tuple)):
        return type(value)(absolute_path(v) for v in value)
    if not isinstance(value, str) or not value or value in NAMES_NOT_PATHS:
        return value
    p = Path(value).expanduser()
    try:
        return str(p.resolve()) if p.exists() else value
    except (OSError, RuntimeError):
        return value


def absolute_paths(cfg):
    """`cfg` with its path fields absolute (`absolute_path`): a run records where its inputs are, so its
    `--resume`, the next stage and its config.yaml read them from any working directory."""
    return dataclasses.replace(cfg, **{k: absolute_path(getattr(cfg, k)) for k in path_fields(type(cfg))})


def same_path(a, b) -> bool:
    """Whether two values of a path field name the same thing: equal, or the same existing file or folder
    spelled differently (`pairs`, `./pairs`, `/abs/pairs`); lists element by element."""
    if a == b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_path(x, y) for x, y in zip(a, b))
    if not (isinstance(a, str) and isinstance(b, str) and a and b):
        return False
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except (OSError, RuntimeError):
        return False


def flag_of(cls, name: str) -> str:
    """The option that sets field `name` of `cls` (`--data` for data_root), for messages."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    flag = f.metadata.get("flag", "--" + name.replace("_", "-"))
    return flag if isinstance(flag, str) else (list(f.metadata.get("aliases", ())) or ["--" + name.replace("_", "-")])[0]


def check_resume_out(run_dir, out) -> None:
    """`--resume RUN --out OTHER`: one line (the run goes on in its own folder; --out was ignored without a word)."""
    if out and not same_path(str(run_dir), str(out)):
        raise SqtoolError(f"--resume {run_dir} continues that run in its own folder: drop --out {out} (a run "
                          "elsewhere is a new run, without --resume)")


def resume_config(cls, saved, args=None, run_dir: str | os.PathLike | None = None,
                  may_change: tuple[str, ...] | dict[str, str] | None = None, why: str = ""):
    """(cfg, changed) for `--resume RUN`: `saved` (the run's config, a `cls`) with what the command line
    gives now (its --config file and flags; or a whole `cls`, a library resume: every field given) over it. A
    path given that names the same file or folder as the saved one is no change (the saved spelling is kept,
    so keys hashed from the config stay the same); `changed` maps each field that does change to (saved, now).

    `may_change`: the fields that may differ on resume (a dict adds a note to a field's flag in the message);
    any other change is refused in one line naming each changed key (`refuse_resume`, `why` saying why).
    None: the caller decides.

    A run made before configs held absolute paths may name an input relative to the folder it was started
    in: resumed from another folder, that is one error saying where to resume it from, whatever path is
    given now (a path that merely ends like the saved one may be other data, and the finished folds' keys
    hash the saved spelling)."""
    if args is not None and not dataclasses.is_dataclass(args) and run_dir is not None:
        check_resume_out(run_dir, getattr(args, "out", None))
    given, config_file = _given(cls, args)
    given = {key_names(cls).get(k, k): v for k, v in given.items()}
    given.pop("out", None)                       # the run's own folder, checked above
    typed = from_dict(cls, {**to_dict(saved), **given}, where=str(config_file) if config_file else "config")
    if run_dir is not None:
        _check_saved_paths(cls, saved, run_dir)
    data = {}
    for k in given:
        now, before = getattr(typed, k), getattr(saved, k)
        if k in path_fields(cls) and same_path(before, now):
            data[k] = before
        else:
            data[k] = absolute_path(now) if k in path_fields(cls) else now
    cfg = dataclasses.replace(saved, **data)
    old, new = to_dict(saved), to_dict(cfg)
    changed = {k: (old[k], new[k]) for k in new if old.get(k) != new[k]}
    if may_change is not None:
        refuse_resume(cls, run_dir, {k: v for k, v in changed.items() if k not in may_change}, may_change, why)
    return cfg, changed


def refuse_resume(cls, run_dir, refused: dict, may_change: tuple[str, ...] | dict[str, str], why: str = "") -> None:
    """One line refusing to resume `run_dir` with the changes in `refused` (field -> (saved, now)), if any:
    `cannot resume RUN with a changed config (lr: 0.1 -> 0.2): WHY; on resume only --a, --b and --c (NOTE) may
    change (start a new run for any other)`: the fields with a note last. The fields saying where a run goes
    (RUN_LOCATION_KEYS) are not listed."""
    if not refused:
        return
    notes = may_change if isinstance(may_change, dict) else dict.fromkeys(may_change, "")
    notes = {k: note for k, note in notes.items() if k not in RUN_LOCATION_KEYS}
    parts = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
    plain = ", ".join(flag_of(cls, k) for k, note in notes.items() if not note)
    noted = " and ".join(f"{flag_of(cls, k)} ({note})" for k, note in notes.items() if note)
    may = " and ".join(t for t in (plain, noted) if t)
    raise SqtoolError(f"cannot resume {run_dir} with a changed config ({parts}): " + (f"{why}; " if why else "")
                      + f"on resume only {may} may change (start a new run for any other)")


def _check_saved_paths(cls, saved, run_dir) -> None:
    """Refuse, in one line, a saved relative path that does not exist from here but does from a folder
    above the run (the folder the run was started in): resuming there reads the same files."""
    here = Path.cwd()
    for k in path_fields(cls):
        v = getattr(saved, k)
        if (not isinstance(v, str) or not v or v in NAMES_NOT_PATHS or Path(v).expanduser().is_absolute()
                or Path(v).exists()):
            continue
        for base in Path(run_dir).resolve().parents:
            if base != here and (base / v).exists():
                raise SqtoolError(f"cannot resume {run_dir} from {here}: its {flag_of(cls, k)} '{v}' is relative to "
                                  f"the folder the run was started in (a run made before sqtool stored absolute "
                                  f"paths): resume it from {base} (cd {base})")
