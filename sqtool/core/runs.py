"""Run directories (resolved config + provenance + metrics), seeds and the data root."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import random
import subprocess
from pathlib import Path

from sqtool import __version__
from sqtool.core.config import to_dict
from sqtool.core.errors import SqtoolError
from sqtool.core.io import atomic_write_text

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


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


def save_config(run_dir: str | os.PathLike, cfg, **extra) -> dict:
    """Write the resolved config (+ provenance) as config.yaml; returns what was written."""
    d = {"sqtool_version": __version__, "git_sha": git_sha(),
         "created": _dt.datetime.now().isoformat(timespec="seconds")}
    d.update(extra)
    d["config"] = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    import yaml                             # lazy: importing sqtool.core needs only the stdlib
    atomic_write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(d, sort_keys=False))
    return d
