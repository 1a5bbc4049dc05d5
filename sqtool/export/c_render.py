"""Rendering C sources from the template files: one prefix rule and one writer for every C exporter.

Every C symbol and macro in `templates/` starts with `sq_` / `SQ_`; `rename(text, "hr2")` turns them into
`hr2_` / `HR2_` (file names too), so two models link into one image. `write_sources` writes a set of
named texts under a prefix, atomically, and returns the paths.
"""
from __future__ import annotations

import re
from pathlib import Path

from sqtool.core import SqtoolError, atomic_write_text

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


PREFIX_MAX = 32    # characters: it starts every kit file name and C symbol (the longest symbol adds 24 to it)


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9]*", prefix or ""):
        raise SqtoolError(f"C prefix {prefix!r} must be lower-case letters and digits, starting with a letter "
                          "(e.g. 'hr2')")
    if len(prefix) > PREFIX_MAX:          # (a 300-letter one failed after the parity checks: 'file name too long')
        raise SqtoolError(f"C prefix '{prefix[:12]}...' is {len(prefix)} characters: at most {PREFIX_MAX} (it starts "
                          "every file name and C symbol of the kit)")
    return prefix


def rename(text: str, prefix: str) -> str:
    """sq_* -> <prefix>_*, SQ_* -> <PREFIX>_* everywhere (also inside -DSQ_... build flags in comments)."""
    if prefix == "sq":
        return text
    return text.replace("sq_", f"{prefix}_").replace("SQ_", f"{prefix.upper()}_")


def template(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text()


def write_sources(files: dict[str, str], out_dir, prefix: str = "sq") -> list[Path]:
    """Write {template-style name: text} into out_dir under `prefix`; returns the paths written."""
    check_prefix(prefix)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        p = out / rename(name, prefix)
        atomic_write_text(p, rename(text, prefix))
        paths.append(p)
    return paths
