"""Rendering C sources from the template files: one prefix rule and one writer for every C exporter.

Every C symbol and macro in `templates/` starts with `sq_` / `SQ_`; `rename(text, "hr2")` turns them into
`hr2_` / `HR2_` (file names too), so two models link into one image. `write_sources` writes a set of
named texts under a prefix, atomically, and returns the paths.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

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


def c_number(v: float) -> str:
    """A C double literal of v (always with a '.' or an exponent, so C reads it as floating point)."""
    s = repr(float(v))
    return s if any(ch in s for ch in ".e") else s + ".0"


def c_int(v: int) -> str:
    """A C integer literal; INT32_MIN spelt so that no compiler reads it as the negation of an unsigned."""
    return "(-2147483647 - 1)" if v == -2**31 else str(v)


def c_array(ctype: str, name: str, values, per_line: int = 12, fmt=c_int) -> str:
    """A const C array definition (`name` carries its dimensions); a 2-D `values` gets one brace block per row."""
    a = np.asarray(values)
    rows = a.reshape(a.shape[0], -1) if a.ndim == 2 else a.reshape(1, -1)

    def block(row, indent):
        vals = [fmt(int(v)) for v in row]
        lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
        return (",\n" + indent).join(lines)

    if a.ndim == 2:
        body = ",\n    ".join("{ " + block(r, "      ") + " }" for r in rows)
    else:
        body = block(rows[0], "    ")
    return f"static const {ctype} {name} = {{\n    {body}\n}};\n"


def define_block(defines) -> str:
    """`#define NAME value   /* comment */` lines, names aligned, from (name, value, comment) triples (an empty
    comment writes none): the constants part of every generated tables / config header."""
    w = max(len(n) for n, _, _ in defines)
    return "\n".join(f"#define {n:<{w}} {v}" + (f"   /* {c} */" if c else "") for n, v, c in defines)


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
