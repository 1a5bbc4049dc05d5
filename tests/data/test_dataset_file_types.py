"""dataset.yaml values of the wrong kind, YAML aliases and deep nesting: one line naming the file (and the key), at
parse time, before a recording is read (fuzzing audit: each escaped as a bare Python exception or ate gigabytes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file

SEED = "format: csv\nroot: .\nfiles: '*.csv'\ntime_column: time\nchannels: {ppg: ppg}\n"


def one_line(p: Path) -> str:
    """The error of parsing dataset file `p` (nothing is read: the root holds no recording)."""
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg, msg
    return msg


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dataset.yaml"
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- loading

def test_aliases_are_refused_before_they_expand(tmp_path):
    """A 'billion laughs' file (9 levels of 9 aliases: 9^9 strings, gigabytes) is one line, not a MemoryError."""
    levels = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    p = write(tmp_path, "exclude:\n" + "".join(f"  {x}\n" for x in levels) + SEED + "name: *i\n")
    assert "aliases (&/*) are not supported" in one_line(p)
    p = write(tmp_path, SEED + "windows: &w {window_s: 8, hop_s: 2}\nsplit: {test: *w}\n")   # one alias is one too many
    assert "aliases (&/*) are not supported" in one_line(p)
    p = write(tmp_path, SEED + "windows: &w {window_s: 8, hop_s: 2}\n")                  # an anchor alone expands nothing
    assert load_dataset_file(p).windows.hop_s == 2


def test_deep_nesting_is_one_line(tmp_path):
    p = write(tmp_path, SEED + "name: " + "[" * 2000 + "]" * 2000 + "\n")
    assert "nested too deeply" in one_line(p)
