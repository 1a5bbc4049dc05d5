"""`sqtool predict --gains` and `--data -`: a board's own counts and a live device's rows.

--gains device | 1 | G,... feeds a spectral export's recordings with the device's fixed gains (the export's defaults,
int16 counts as they are, counts per unit per channel): the windows of `HrModel.predict(..., gains=G)` and of a
stream, not robust's. --data - reads CSV rows on stdin through one HrStream: each window printed (and appended to
RUN/stdin.csv) as soon as its last row is in, before EOF; the rows give the stream's windows; Ctrl-C keeps them (exit
130, summary.json); bad --gains, a bad header or row: one line."""
from __future__ import annotations

import csv
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

import sqtool
from sqtool.cli import main
from sqtool.data.frontend import to_int16

FIELDS = ("t_end_s", "hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse")
COLUMNS = ("time_s", "hr_bpm", "lo_bpm", "hi_bpm", "confidence", "flagged", "no_pulse")
CHANNELS = ("ppg", "ppg2", "acc_x", "acc_y", "acc_z")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")


@pytest.fixture(scope="module")
def wrist(tmp_path_factory):
    """(x (N, 5) ppg, ppg2, acc x, y, z; fs) of 40 s with a 6 s PPG dropout (NaN)."""
    z = np.load(write_wrist_npz(tmp_path_factory.mktemp("wrist") / "w.npz", seconds=40.0, ppg2=True))
    x = np.stack([z[c] for c in CHANNELS], 1)
    x[2000:2750, 0] = np.nan
    return x, float(z["fs"])


@pytest.fixture(scope="module")
def model(spec_export_dir):
    m = sqtool.load_model(spec_export_dir)
    yield m
    m.close()


def rows_csv(x: np.ndarray, fs: float | None = None, names=CHANNELS) -> str:
    """CSV text of rows x (N, C): a header, a time column when fs is given; NaN as an empty cell; floats as repr
    (read back to the bit)."""
    head = (["time"] if fs else []) + list(names)
    out = [",".join(head)]
    for i, r in enumerate(x):
        out.append(",".join(([f"{i / fs:.6f}"] if fs else []) + ["" if np.isnan(v) else repr(float(v)) for v in r]))
    return "\n".join(out) + "\n"


def cells(res) -> list[list[str]]:
    """An HrResult as predict's CSV writes its columns (`predict.csv_cell`)."""
    from sqtool.firmware_bench.predict import csv_cell
    return [[csv_cell(c, getattr(res, f)[i]) for c, f in zip(COLUMNS, FIELDS)] for i in range(len(res.hr_bpm))]


def written(path: Path) -> list[list[str]]:
    """A predict CSV's rows, its COLUMNS only."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [[r[c] for c in COLUMNS] for r in rows]


def streamed(model, x, fs, gains, step: int = 333):
    """HrStream over x in chunks: its windows as one HrResult-like namespace."""
    from types import SimpleNamespace
    with model.stream(fs, gains=gains) as s:
        res = [s.push(x[a:a + step, :2], x[a:a + step, 2:]) for a in range(0, len(x), step)]
    return SimpleNamespace(**{f: np.concatenate([getattr(r, f) for r in res]) for f in FIELDS})


# ----------------------------------------------------------------------------- --gains on files


def test_gains_1_reads_a_boards_int16_counts_as_the_device(spec_export_dir, model, wrist, tmp_path):
    """A CSV of int16 counts (a board's log) with --gains 1: the windows of predict(gains=1) and of the stream on the
    same counts; robust (the default) rescales them and reads otherwise."""
    x, fs = wrist
    g = np.array([40.0, 90.0, 2000.0, 2000.0, 2000.0])
    counts = to_int16(np.nan_to_num(x).T, g).T.astype(np.float64)           # (N, 5) what the board logged
    counts[np.isnan(x)] = np.nan                                           # the dropout kept
    f = tmp_path / "board.csv"
    f.write_text(rows_csv(counts, fs))
    for gains in ("1", "robust"):
        assert main(["predict", "--model", str(spec_export_dir), "--data", str(f), "--gains", gains, "--out",
                     str(tmp_path / gains), "--plots", "none"]) == 0
    got = written(tmp_path / "1" / "board.csv")
    ref = model.predict(counts[:, :2], counts[:, 2:], fs, gains=1)
    assert got == cells(ref) == cells(streamed(model, counts, fs, 1))
    assert any(r[5] == "1" for r in got) and any(r[5] == "0" for r in got)  # the dropout flagged, the rest scored
    assert got != written(tmp_path / "robust" / "board.csv")
    s = json.loads((tmp_path / "1" / "summary.json").read_text())
    assert s["gains"].startswith("1: the data are the device's int16 counts")
    assert s["recordings"][0]["gains"] == dict.fromkeys(CHANNELS, 1.0)
    cfg = (tmp_path / "1" / "config.yaml").read_text()
    assert "gains: '1'" in cfg or 'gains: "1"' in cfg or "gains: 1" in cfg
    assert "gains" not in json.loads((tmp_path / "robust" / "summary.json").read_text())["recordings"][0]


def test_gains_device_and_numbers_are_the_streams(spec_export_dir, model, wrist, tmp_path):
    """--gains device: the export's default gains (predict(gains=None), a stream's default); numbers: counts per
    unit per channel."""
    x, fs = wrist
    f = tmp_path / "w.csv"
    f.write_text(rows_csv(x, fs))
    for gains, g in (("device", None), ("40,90,2000,2000,2000", [40.0, 90.0, 2000.0, 2000.0, 2000.0])):
        out = tmp_path / gains.replace(",", "_")
        assert main(["predict", "--model", str(spec_export_dir), "--data", str(f), "--gains", gains, "--out",
                     str(out), "--plots", "none"]) == 0
        got = written(out / "w.csv")
        assert got == cells(model.predict(x[:, :2], x[:, 2:], fs, gains=g)) == cells(streamed(model, x, fs, g))
        assert got != cells(model.predict(x[:, :2], x[:, 2:], fs))           # robust's
    s = json.loads((tmp_path / "device" / "summary.json").read_text())
    assert s["gains"].startswith("device: the export's default gains")
    assert s["recordings"][0]["gains"]["acc_x"] == 4096.0


@pytest.mark.parametrize("gains, match", [
    ("abc", r"--gains abc: choose robust, device, 1 \(the data are int16 device counts\) or positive numbers"),
    ("0", r"--gains 0: choose robust, device, 1"),
    ("1,-2,1,1,1", r"--gains 1,-2,1,1,1: choose robust"),
    ("40,90", r"--gains 40,90: 2 numbers; give one for every channel, or one per channel: 5 or 4 \(ppg, ppg2, "
              r"acc_x, acc_y, acc_z"),
], ids=["text", "zero", "negative", "count"])
def test_a_bad_gains_is_one_line(spec_export_dir, tmp_path, capsys, gains, match):
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "synthetic", "--gains", gains, "--out",
               str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert pytest.importorskip("re").search(match, err), err
    assert not (tmp_path / "p").exists()


def test_a_time_domain_export_refuses_gains_on_a_file_and_on_stdin(export_dir, tmp_path, capsys):
    """A time-domain stream normalises each window: --gains has nothing to set, on a file as on --data -."""
    for data in (["synthetic"], ["-", "--fs", "125"]):
        rc = main(["predict", "--model", str(export_dir), "--data", *data, "--gains", "1"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "is a time-domain model, whose stream normalises each " \
            "window itself" in err, err


def test_stdin_rows_through_a_time_domain_export_are_predicts(export_dir, wrist, tmp_path, monkeypatch, capsys):
    """Any other export's rows on stdin go through one TaskStream (before: 'a live stream runs spectral heart-rate
    exports'): the time-domain hr student's columns (hr_bpm, hr_tracked_bpm, p_quality, flagged) as
    `TaskModel.predict` gives them for the same samples, its last windows at EOF; a header without the accelerometer
    the model reads is one line."""
    x, fs = wrist
    x = x[:, [0, 2, 3, 4]]                                              # ppg, acc x, y, z: the student's channels
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(rows_csv(x, fs, ("ppg", "acc_x", "acc_y",
                                                                                    "acc_z")).encode())))
    assert main(["predict", "--model", str(export_dir), "--data", "-", "--fs", "125",
                 "--out", str(tmp_path / "p")]) == 0
    cap = capsys.readouterr()
    from sqtool.firmware_bench.predict import csv_cell
    m = sqtool.load_model(export_dir)
    ref = m.predict(x[:, 0], x[:, 1:], fs=fs)
    m.close()
    lines = cap.out.splitlines()
    assert lines[0] == ",".join(["time_s", *ref.columns]) and "hr_tracked_bpm" in ref.columns
    assert [ln.split(",") for ln in lines[1:]] == [
        [csv_cell("time_s", ref.t_end_s[i]), *(csv_cell(c, ref[c][i]) for c in ref.columns)] for i in range(len(ref))]
    assert (tmp_path / "p" / "stdin.csv").read_text() == cap.out
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    r = s["recordings"][0]
    assert s["task"] == "hr" and s["runtime"] == ref.runtime and s["filter"] == "window" and "gains" not in s
    assert r["windows"] == len(ref) == 17 and r["flagged_windows"] == int(ref.flagged.sum()) > 0
    assert list(s["columns"]) == ["time_s", *ref.columns]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(rows_csv(x, fs, ("ppg", "acc_x", "acc_y",
                                                                                    "acc_z")).encode())))
    assert main(["predict", "--model", str(export_dir), "--data", "-", "--fs", "125", "--filter", "causal", "--out",
                 str(tmp_path / "c")]) == 0                              # --filter reaches the stream, as predict's
    causal = sqtool.api.TaskModel(export_dir, filter="causal")
    got = [ln.split(",")[1] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert got == [csv_cell("hr_bpm", v) for v in causal.predict(x[:, 0], x[:, 1:], fs=fs).hr_bpm] != \
        [csv_cell("hr_bpm", v) for v in ref.hr_bpm]
    causal.close()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ppg,acc_x\n1,2\n")))
    assert main(["predict", "--model", str(export_dir), "--data", "-", "--fs", "125",
                 "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the header (ppg,acc_x) has no acc_y, acc_z: this model reads ppg, acc_x, " \
        "acc_y, acc_z" in err, err


# ----------------------------------------------------------------------------- --data - (stdin)


def live(spec_export_dir, text: str, out: Path, *extra: str, monkeypatch=None) -> int:
    """`sqtool predict --data - --fs 125 --gains device` in-process, `text` on stdin."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    return main(["predict", "--model", str(spec_export_dir), "--data", "-", "--fs", "125", "--gains", "device",
                 "--out", str(out), *extra])


def test_stdin_rows_give_the_streams_windows(spec_export_dir, model, wrist, tmp_path, monkeypatch, capsys):
    """Rows on stdin (a time column skipped, names read as a CSV's: PLETH -> ppg, accx -> acc_x) print the stream's
    windows on stdout, the same rows in RUN/stdin.csv; summary.json says what was read."""
    x, fs = wrist
    text = rows_csv(x, fs, names=("PLETH", "ppg2", "accx", "accy", "accz"))
    assert live(spec_export_dir, text, tmp_path / "p", monkeypatch=monkeypatch) == 0
    cap = capsys.readouterr()
    ref = streamed(model, x, fs, None)
    lines = cap.out.splitlines()
    assert lines[0] == ",".join(COLUMNS) and [ln.split(",") for ln in lines[1:]] == cells(ref)
    assert (tmp_path / "p" / "stdin.csv").read_text() == cap.out
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    r = s["recordings"][0]
    assert s["data"] == "-" and s["fs"] == 125.0 and s["interrupted"] is False and s["runtime"] == "c_pipeline"
    assert r["rows"] == len(x) and r["windows"] == len(ref.hr_bpm) == 17 and r["flagged_windows"] == int(
        ref.flagged.sum()) > 0
    assert r["channels_fed"] == {"ppg": "PLETH", "ppg2": "ppg2", "acc_x": "accx", "acc_y": "accy", "acc_z": "accz"}
    assert "-> " in cap.err and "17 windows from 5,000 rows" in cap.err


@pytest.mark.parametrize("sep, decimal", [("\t", "."), (";", ",")], ids=["tab", "semicolon_decimal_comma"])
def test_tab_or_semicolon_rows_read_as_a_csv_files(spec_export_dir, model, wrist, tmp_path, monkeypatch, capsys, sep,
                                                   decimal):
    """A logger's tab-separated rows, or a European one's `;` with decimal commas (as a CSV file is read:
    `generic.sniff_csv`), a serial terminal's CRLF: the comma rows' windows, not a header 'read as none of the
    model's channels'."""
    x, fs = wrist
    text = rows_csv(x, fs)
    other = text.replace(",", "\0").replace(".", decimal).replace("\0", sep).replace("\n", "\r\n")
    assert live(spec_export_dir, other, tmp_path / "p", monkeypatch=monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(",") for ln in lines[1:]] == cells(streamed(model, x, fs, None))


def export_layouts(x: np.ndarray, fs: float, names=CHANNELS) -> dict[str, str]:
    """Rows x (N, C: PPG sensors, then acc x, y, z in g) as a device's serial log or export writes them, in the layouts
    a CSV file is read in (`generic.csv_head`, tests/data/test_csv_layouts.py); the accelerometer in m/s^2 or mg where
    a unit says so."""
    ppg = names[:-3]
    head, rows = rows_csv(x, fs, names).split("\n", 1)

    def acc_in(scale: float) -> str:
        y = x.copy()
        y[:, -3:] *= scale
        return rows_csv(y, fs, names).split("\n", 1)[1]
    au = ",".join(["a.u."] * len(ppg))
    return {
        "BOM and preamble": "\ufeff# device: Wrist-7\n# firmware: 2.4.1\n\n" + head + "\n" + rows,
        "trailing comma": (head + "\n" + rows).replace("\n", ",\n"),
        "trailing comma, rows only": head + "\n" + rows.replace("\n", ",\n"),
        "units row": f"{head}\ns,{au},g,g,g\n{rows}",
        "units row of labels": f"{head}\ns,{','.join(['counts'] * len(ppg))},lsb,lsb,lsb\n{rows}",
        "units row in m/s^2": f"{head}\ns,{au},m/s^2,m/s^2,m/s^2\n" + acc_in(9.80665),
        "units in the names, mg": ",".join(["Time[s]", *(f"{c} [a.u.]" for c in ppg), "ACC X [mg]", "ACC Y [mg]",
                                            "ACC Z [mg]"]) + "\n" + acc_in(1000.0),
        "all at once": "\ufeff# device: Wrist-7\r\n" + ",".join(f'"{c}"' for c in head.split(",")) + ",\r\n"
                       + f'"s",{au},"m/s^2","m/s^2","m/s^2",\r\n' + acc_in(9.80665).replace("\n", ",\r\n"),
    }


LAYOUT_UNITS = {"units row of labels": {"ppg": "counts", "ppg2": "counts", "acc_x": "lsb", "acc_y": "lsb",
                                        "acc_z": "lsb"},
                "units in the names, mg": {"ppg": "a.u.", "ppg2": "a.u.", "acc_x": "mg", "acc_y": "mg", "acc_z": "mg"}}


def as_a_file_reads_it(text: str, path: Path, names=CHANNELS) -> np.ndarray:
    """(N, C) the rows of `text` as `sqtool.data` reads it from a file (`generic.read_csv`: the accelerometer in g)."""
    from sqtool.data.readers import read_csv
    path.write_bytes(text.encode())
    rec = read_csv(path)
    return np.stack([rec.signals[c] for c in names], 1)


@pytest.mark.parametrize("layout", list(export_layouts(np.zeros((1, 5)), 1.0)))
def test_an_export_layout_piped_in_gives_the_plain_headers_rows(spec_export_dir, wrist, tmp_path, monkeypatch, capsys,
                                                               layout):
    """A device's serial log in a real export's layout (a BOM, a '#' preamble, a separator ending every line, a units
    row, units at the end of the names; m/s^2 or mg converted to g, as a file's, before the gains quantise it; other
    units kept as labels, in summary.json) prints the rows of the plain header over the same samples as a file reads
    them, to the byte. Before: 'read as none of the model's channels' (a preamble, a trailing separator, a unit in
    a name) or "'a.u.' in column ppg is not a number" (a units row)."""
    x, fs = wrist
    x = x[:1500]
    text = export_layouts(x, fs)[layout]
    ref = as_a_file_reads_it(text, tmp_path / "export.csv")
    np.testing.assert_allclose(ref, x, rtol=1e-12, atol=0)       # in g, whatever the unit written
    assert live(spec_export_dir, rows_csv(ref, fs), tmp_path / "plain", monkeypatch=monkeypatch) == 0
    plain = capsys.readouterr().out
    assert live(spec_export_dir, text, tmp_path / "p", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == plain and len(plain.splitlines()) == 4
    r = json.loads((tmp_path / "p" / "summary.json").read_text())["recordings"][0]
    assert r["rows"] == 1500
    if layout in LAYOUT_UNITS:                                       # as written, a label or converted
        assert r["units"] == LAYOUT_UNITS[layout]


@pytest.mark.parametrize("layout", ["all at once", "units in the names, mg"])
def test_an_export_layout_piped_into_a_time_domain_export_gives_the_plain_headers_rows(export_dir, wrist, tmp_path,
                                                                                       monkeypatch, capsys, layout):
    """The same through a TaskStream (any other export: here the time-domain hr student)."""
    names = ("ppg", "acc_x", "acc_y", "acc_z")
    x, fs = wrist
    x = x[:2500, [0, 2, 3, 4]]
    text = export_layouts(x, fs, names)[layout]
    outs = []
    for i, t in enumerate((rows_csv(as_a_file_reads_it(text, tmp_path / "export.csv", names), fs, names), text)):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(t.encode())))
        assert main(["predict", "--model", str(export_dir), "--data", "-", "--fs", "125", "--out",
                     str(tmp_path / str(i))]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[1] == outs[0] and len(outs[0].splitlines()) == 8


@pytest.mark.parametrize("stdin", [True, False], ids=["stdin", "file"])
def test_counts_wider_than_int16_at_gains_1_are_said(spec_export_dir, wrist, tmp_path, monkeypatch, capsys, stdin):
    """An 18-bit optical front end's counts (DC ~120,000) given as --gains 1: every PPG sample saturates int16, its
    windows flagged; one note line says why and what to give (before: flagged windows, said nowhere)."""
    x, fs = wrist
    x = x[:1500].copy()
    x[:, :2] = 120000 + 40 * np.nan_to_num(x[:, :2])
    text = rows_csv(x, fs)
    if stdin:
        rc = live(spec_export_dir, text, tmp_path / "p", "--gains", "1", monkeypatch=monkeypatch)
    else:
        (tmp_path / "w.csv").write_text(text)
        rc = main(["predict", "--model", str(spec_export_dir), "--data", str(tmp_path / "w.csv"), "--gains", "1",
                   "--out", str(tmp_path / "p")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if "past int16" in ln]
    assert rc == 0 and len(err) == 1, err
    assert "100 % of ppg's, 100 % of ppg2's samples are past int16's +-32767" in err[0] and "below 1" in err[0]


@pytest.mark.parametrize("edit, extra, match", [
    (lambda t: t.replace("\n0.000000,", "\n0.000000,abc", 1), (), r"--data - line 2: '.*abc.*' in column ppg is not a "
                                                                   r"number \(an empty cell is a gap\)$"),
    (lambda t: t.replace("\n0.000000,", "\n0.000000,1,", 1), (), r"--data - line 2: 7 values, the header has 6 "
                                                                 r"columns \(time, ppg, ppg2, acc_x, acc_y, acc_z\)$"),
    (lambda t: t.replace(",acc_z\n", ",foo\n", 1), (), r"--data - line 1: column 'foo' read as none of the model's "
                                                       r"channels \(ppg, ppg2, acc_x, acc_y, acc_z; a time column"),
    (lambda t: t.split("\n", 1)[1], (), r"--data - line 1 \(0.000000,.*\) is no header: the first row names the "
                                         r"columns, e.g. ppg,acc_x,acc_y,acc_z$"),
    (lambda t: "", (), r"--data - \(stdin\): nothing was read \(EOF before a header row\)"),
    (lambda t: t, ("--gains", "robust"), r"--data - \(stdin\) needs fixed gains: --gains device"),
    (lambda t: t, ("--acc-fs", "25"), r"--acc-fs does not apply to --data - \(stdin\)"),
    (lambda t: t.replace("acc_z\n", "acc_z\ns,a.u.,a.u.,m/s^2,m/s^2,mg\n", 1), ("--gains", "1"),
     r"--data - --gains 1: the header says acc_x in m/s\^2, acc_y in m/s\^2, acc_z in mg, but --gains 1 feeds the rows "
     r"as the device's int16 counts, no unit converted: give --gains device or counts per g"),
    (lambda t: t.replace(",acc_x,", ",acc_x [g],", 1).replace("acc_z\n", "acc_z\ns,a.u.,a.u.,mg,g,g\n", 1), (),
     r"--data - line 1: column 'acc_x \[g\]': its name says g but its units row says mg; make them agree"),
], ids=["not_a_number", "column_count", "unknown_column", "no_header", "empty", "robust", "acc_fs", "gains_1_unit",
        "units_disagree"])
def test_bad_stdin_is_one_line(spec_export_dir, wrist, tmp_path, monkeypatch, capsys, edit, extra, match):
    import re
    x, fs = wrist
    rc = live(spec_export_dir, edit(rows_csv(x[:200], fs)), tmp_path / "p", *extra, monkeypatch=monkeypatch)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and re.search(match, err), err


def test_a_files_acc_unit_at_gains_1_is_one_line_as_on_stdin(spec_export_dir, wrist, tmp_path, capsys):
    """A CSV file whose units row says m/s^2 given with --gains 1: the reader converts the axes to g, which were then
    fed as int16 counts (9.8 m/s^2 -> 1 count, the run finishing as if nothing were wrong); now the line stdin gets."""
    x, fs = wrist
    units = "acc_z\ns,a.u.,a.u.,m/s^2,m/s^2,m/s^2\n"
    (tmp_path / "w.csv").write_text(rows_csv(x[:1500], fs).replace("acc_z\n", units, 1))
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(tmp_path / "w.csv"), "--gains", "1",
               "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1, err
    assert err[0].endswith("w.csv: --gains 1: its CSV says acc_x in m/s^2, acc_y in m/s^2, acc_z in m/s^2, converted "
                           "to g as it is read, but --gains 1 feeds the values as the device's int16 counts: give "
                           "--gains device or counts per g, or write counts as the axes' unit"), err


def test_garbled_rows_after_a_good_one_are_gaps_said_once(spec_export_dir, model, wrist, tmp_path, monkeypatch,
                                                          capsys):
    """A live device's line cut by a reconnect (too few values, a torn number) after the first good row does not end
    the run: each is a gap sample (the windows are those of NaN rows there), one note line names the first, and
    summary.json counts them; a bad first row stays one error line (above)."""
    x, fs = wrist
    x = x[:1500].copy()
    lines = rows_csv(x, fs).splitlines()
    lines[300] = lines[300][:9]                                  # cut mid-row: fewer values
    lines[700] = lines[700].replace(",", ",1.2.3", 1)            # a torn number in column ppg
    assert live(spec_export_dir, "\n".join(lines) + "\n", tmp_path / "p", monkeypatch=monkeypatch) == 0
    cap = capsys.readouterr()
    notes = [ln for ln in cap.err.splitlines() if "read as a gap" in ln]
    assert len(notes) == 1 and notes[0].startswith("sqtool: note: --data - line 301: "), notes
    assert "2 garbled rows read as gaps" in cap.err.splitlines()[-1]
    gapped = x.copy()
    gapped[[299, 699]] = np.nan                                  # rows 300 and 700 of the CSV (line 1 the header)
    ref = streamed(model, gapped, fs, None)
    out = cap.out.splitlines()
    assert [ln.split(",") for ln in out[1:]] == cells(ref)
    s = json.loads((tmp_path / "p" / "summary.json").read_text())["recordings"][0]
    assert s["rows"] == 1500 and s["garbled_rows"] == 2 and s["first_garbled"].startswith("--data - line 301: ")


def test_stdin_needs_fs(spec_export_dir, capsys):
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "-", "--gains", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == ("sqtool: error: --data - (stdin) needs --fs HZ: the rows' sampling rate (a live pipe "
                               "has no time grid to read it from)")


def read_lines(p: subprocess.Popen, n: int, timeout: float = 240.0) -> list[str]:
    """The first n lines of p's stdout (unbuffered bytes), waiting at most `timeout` s; fewer if it ends first."""
    buf, t0 = b"", time.monotonic()
    while buf.count(b"\n") < n and time.monotonic() - t0 < timeout:
        if select.select([p.stdout], [], [], 1.0)[0]:
            got = os.read(p.stdout.fileno(), 4096)
            if not got:
                break
            buf += got
    return buf.decode().splitlines()[:n]


def start(spec_export_dir, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sqtool.cli", "predict", "--model", str(spec_export_dir), "--data",
                             "-", "--fs", "125", "--gains", "device", "--out", str(out)], env=env, bufsize=0,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)            # only our signal


def test_a_line_by_line_feed_prints_each_window_before_eof_and_ctrl_c_keeps_them(spec_export_dir, model, wrist,
                                                                                   tmp_path):
    """A live pipe delivering one row at a time: the first window's line is on stdout once its 1000th row is in,
    stdin still open; Ctrl-C then ends it with exit 130, the rows printed kept in stdin.csv and summary.json."""
    x, fs = wrist
    lines = rows_csv(x[:1100], fs).splitlines(keepends=True)
    p = start(spec_export_dir, tmp_path / "p")
    try:
        for ln in lines[:1 + 1000]:                                       # the header and 8 s of rows
            p.stdin.write(ln.encode())
        got = read_lines(p, 2)
        assert got[0] == ",".join(COLUMNS) and got[1].split(",") == cells(streamed(model, x[:1000], fs, None))[0]
        assert p.poll() is None                                           # still reading: stdin open
        for ln in lines[1001:]:
            p.stdin.write(ln.encode())
        time.sleep(1.0)
        os.kill(p.pid, signal.SIGINT)
        try:
            rc = p.wait(timeout=120)
        except subprocess.TimeoutExpired:                                 # say where it hung (seen once in CI)
            p.kill()
            rc = p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    err = p.stderr.read().decode()
    assert rc == 130 and "sqtool: interrupted" in err, f"exit {rc} 120 s after SIGINT; stderr: {err[-3000:]}"
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["interrupted"] is True and s["recordings"][0]["rows"] == 1100 and s["recordings"][0]["windows"] == 1
    assert (tmp_path / "p" / "stdin.csv").read_text().splitlines() == got


@pytest.mark.realdata
def test_a_troika_recording_piped_in_gives_the_streams_windows(spec_export_dir, model, data_root, tmp_path):
    """TROIKA DATA_01_TYPE01 (5 min, two PPG sensors, running) as CSV rows through a subprocess's stdin: the windows
    of HrStream on the same rows, and of predict(gains=None)."""
    from sqtool.data.readers import iter_records
    rec = next(r for r in iter_records(data_root / "troika" / "Training_data") if r.record_id == "DATA_01_TYPE01")
    x = np.stack([rec.signals[c] for c in CHANNELS], 1)
    p = start(spec_export_dir, tmp_path / "p")
    out, err = p.communicate(rows_csv(x, 125.0).encode(), timeout=600)
    assert p.returncode == 0, err.decode()
    got = [ln.split(",") for ln in out.decode().splitlines()[1:]]
    assert len(got) == 148 and got == cells(streamed(model, x, 125.0, None))
    assert got == cells(model.predict(x[:, :2], x[:, 2:], 125.0, gains=None))


def test_fs_on_a_file_is_refused_not_ignored(spec_export_dir, wrist, tmp_path, capsys):
    """--fs is stdin's: given with a recording file it was read nowhere (the file's time column set the rate)."""
    x, fs = wrist
    (tmp_path / "w.csv").write_text(rows_csv(x[:1500], fs))
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(tmp_path / "w.csv"), "--fs", "64",
               "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--fs 64 is the rate of --data - (stdin) rows" in err, err
    assert not (tmp_path / "p").exists()
