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
    p = write(tmp_path, SEED + "windows: &w {window_s: 8, hop_s: 2}\nsplit: {test: *w}\n")   # one alias: refused
    assert "aliases (&/*) are not supported" in one_line(p)
    p = write(tmp_path, SEED + "windows: &w {window_s: 8, hop_s: 2}\n")   # an anchor alone expands nothing
    assert load_dataset_file(p).windows.hop_s == 2


def test_deep_nesting_is_one_line(tmp_path):
    p = write(tmp_path, SEED + "name: " + "[" * 2000 + "]" * 2000 + "\n")
    assert "nested too deeply" in one_line(p)


# ----------------------------------------------------------------------------- values of the wrong kind

WRONG = [   # (the seed's lines replaced or added, the key the line must name)
    ("fs: 64 Hz\n", "fs"),
    ("fs: [64]\n", "fs"),
    ("fs: '64'\n", "fs"),
    ("channels: ppg\n", "channels"),
    ("channels: {ppg: [ppg]}\n", "channels.ppg"),
    ("channels: {ppg: {}}\n", "channels.ppg"),
    ("channels: {ppg: {column: [ppg]}}\n", "channels.ppg.column"),
    ("channels: {ppg: {column: ppg, fs: x}}\n", "channels.ppg.fs"),
    ("channels: {ppg: {column: ppg, gain: '0.001'}}\n", "channels.ppg.gain"),
    ("channels: {ppg: {column: ppg, offset: null}}\n", "channels.ppg.offset"),
    ("channels: {ppg: ppg, acc_x: {column: acc_x, unit: [g]}}\n", "channels.acc_x.unit"),
    ("labels: hr\n", "labels"),
    ("labels: [hr]\n", "labels"),
    ("labels: {hr: [hr]}\n", "labels.hr"),
    ("labels: {hr: {column: [hr]}}\n", "labels.hr.column"),
    ("labels: {hr: {file: 1}}\n", "labels.hr.file"),
    ("labels: {rhythm: AF}\n", "labels.rhythm"),                 # a column, as `hr: hr`: rhythm is a table's
    ("labels: {rhythm: {table: r.csv, af: {AF: 1}}}\n", "labels.rhythm.af"),
    ("labels: {quality: {file: 'q/{stem}.csv'}}\n", "labels.quality"),
    ("time_column: [time]\n", "time_column"),
    ("time_unit: [s]\n", "time_unit"),
    ("name: [a, b]\n", "name"),
    ("root: [.]\n", "root"),
    ("files: 1\n", "files"),
    ("subject: [s01]\n", "subject"),
    ("subject: {pattern: 1}\n", "subject.pattern"),
    ("subject: {column: {a: 1}}\n", "subject.column"),
    ("windows: x\n", "windows"),
    ("windows: {window_s: x, hop_s: 2}\n", "windows.window_s"),
    ("windows: {window_s: '8', hop_s: 2}\n", "windows.window_s"),
    ("windows: {window_s: 8, hop_s: x}\n", "windows.hop_s"),
    ("windows: {window_s: 8, hop_s: []}\n", "windows.hop_s"),
    ("windows: {window_s: null, hop_s: 2}\n", "windows.window_s"),
    ("windows: {window_s: 8, hop_s: null}\n", "windows.hop_s"),
    ("windows: {window_s: .inf, hop_s: 2}\n", "windows.window_s"),
    ("windows: {window_s: 8, hop_s: .nan}\n", "windows.hop_s"),
    ("windows: {window_s: nan, hop_s: 2}\n", "windows.window_s"),
    ("windows: {window_s: true, hop_s: 2}\n", "windows.window_s"),
    ("exclude: {rec1: [a, b]}\n", "exclude.rec1"),
    ("split: {test: 1}\n", "split.test"),
    ("split: {train: 1}\n", "split.train"),
    ("split: {test: s01}\n", "split.test"),                     # a list, not a name read one character at a time
    ("split: {test: [[s01]]}\n", "split.test"),
    ("split: {heldout_fraction: '25%'}\n", "split.heldout_fraction"),
    ("split: {heldout_fraction: 0.25, seed: x}\n", "split.seed"),
]


@pytest.mark.parametrize("change,key", WRONG, ids=[c.strip() for c, _ in WRONG])
def test_a_wrong_kind_of_value_is_one_line_naming_the_key(tmp_path, change, key):
    top = change.split(":")[0]
    seed = "".join(line + "\n" for line in SEED.splitlines() if not line.startswith(top + ":"))
    m = one_line(write(tmp_path, seed + change))
    assert f": {key}:" in m, m


def test_the_right_kinds_still_parse(tmp_path):
    """Numbers as names (subject 7, recording 101), a column by position, one af class for a list, ints for
    floats, null for an optional key: what the schema has always taken."""
    ds = load_dataset_file(write(tmp_path, SEED.replace("{ppg: ppg}", "{ppg: {column: 1, gain: 2, fs: 64}}") +
                                 "fs: null\nsubject: 7\nwindows: {window_s: 8, hop_s: 1}\nexclude: [101]\n"
                                 "labels: {hr: {column: 4}, rhythm: {table: r.csv, af: AF}}\n"
                                 "split: {test: [s1, 2], train: [s3]}\n"))
    assert (ds.channels["ppg"].column, ds.channels["ppg"].gain, ds.channels["ppg"].fs) == (1, 2.0, 64.0)
    assert ds.subject.value == "7" and ds.windows.hop_s == 1.0 and ds.exclude == {"101": "excluded by the dataset file"}
    assert ds.labels["hr"].column == 4 and ds.labels["rhythm"].af == ["AF"] and ds.fs is None
    assert ds.split.test == ["s1", "2"] and ds.split.train == ["s3"]


# ----------------------------------------------------------------------------- label windows: a floor on the hop

@pytest.mark.parametrize("windows,key", [
    ("{window_s: 8, hop_s: 0.000001}", "windows.hop_s"),      # 96 M label windows of 3 x 40 s recordings
    ("{window_s: 8, hop_s: 1.0e-9}", "windows.hop_s"),        # MemoryError: 238 GiB
    ("{window_s: 8, hop_s: 0.05}", "windows.hop_s"),
    ("{window_s: 8, hop_s: 0}", "windows.hop_s"),             # was "window_s and hop_s must be > 0", no file named
    ("{window_s: 8, hop_s: -2}", "windows.hop_s"),
    ("{window_s: 0, hop_s: 2}", "windows.window_s"),
    ("{window_s: 0.01, hop_s: 2}", "windows.window_s"),
    ("{window_s: 1000000, hop_s: 2}", "windows.window_s"),
    ("{window_s: 8, hop_s: 601}", "windows.hop_s"),
])
def test_label_windows_and_hops_are_0_1_to_600_s(tmp_path, windows, key):
    m = one_line(write(tmp_path, SEED + f"windows: {windows}\n"))
    assert f": {key}: " in m and "0.1" in m and "600" in m, m


def test_the_floor_itself_is_taken(tmp_path):
    ds = load_dataset_file(write(tmp_path, SEED + "windows: {window_s: 0.1, hop_s: 0.1}\n"))
    assert (ds.windows.window_s, ds.windows.hop_s) == (0.1, 0.1)


def test_an_exponent_without_a_sign_is_a_number(tmp_path):
    """PyYAML (YAML 1.1) reads 1e2 and 2.5e3 as text; YAML 1.2 and every other reader as numbers. Once text where
    a number belongs is refused, they must load as numbers (a quoted '1e2' stays text, and refused)."""
    ds = load_dataset_file(write(tmp_path, SEED.replace("{ppg: ppg}", "{ppg: {column: ppg, gain: 2.5e3}}") +
                                 "fs: 1e2\nwindows: {window_s: 8E0, hop_s: 2}\n"))
    assert (ds.fs, ds.channels["ppg"].gain, ds.windows.window_s) == (100.0, 2500.0, 8.0)
    assert ": fs: expected a number, got '1e2' (text)" in one_line(write(tmp_path, SEED + "fs: '1e2'\n"))
