"""A team's own device exports, in the layouts real ones have, read as the plain `time,ppg,acc_x` CSV: to the sample,
bare (as predict / bench / data inspect read a file) and through a dataset.yaml (`dataset_reader._csv_columns`).
Before, a separator ending every line added a channel `unnamed_3` (refused: "has no finite sample"), one ending
the data lines only shifted every column onto the time column, a units row under the header was "row 1 is not a
number", a '#' preamble hid the header (no time column) and a BOM before a header-less file made its first row
the header. A units row's time and accelerometer units are read as dataset.yaml's `time_unit:` / `unit:`."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.readers import iter_records, read_csv

FS, N = 64, 640                                   # 10 s at 64 Hz
T = np.arange(N) / FS
PPG = np.round(10 * np.sin(2 * np.pi * 1.2 * T), 4)
ACC = np.round(1 + 0.05 * np.cos(T), 4)           # g
PLAIN = "time,ppg,acc_x\n" + "".join(f"{t:.6f},{p:.4f},{a:.4f}\n" for t, p, a in zip(T, PPG, ACC))


def _rows(sep: str = ",", end: str = "", nl: str = "\n", t_scale: float = 1.0, a_scale: float = 1.0) -> list[str]:
    """The sample rows, time in s * t_scale, the accelerometer in g * a_scale (9.80665: m/s^2, 1000: mg)."""
    acc = (f"{a:.4f}" if a_scale == 1 else f"{a * a_scale:.10f}" for a in ACC)
    return [sep.join((f"{t * t_scale:.6f}", f"{p:.4f}", a)) + end + nl for t, p, a in zip(T, PPG, acc)]


LAYOUTS = {                      # each was refused or misread before (module docstring)
    "trailing comma": "time,ppg,acc_x,\n" + "".join(_rows(end=",")),
    "trailing semicolon": "time;ppg;acc_x;\n" + "".join(_rows(";", ";")),
    "trailing tab": "time\tppg\tacc_x\t\n" + "".join(_rows("\t", "\t")),
    "trailing comma, data lines only": "time,ppg,acc_x\n" + "".join(_rows(end=",")),
    "units row": "time,ppg,acc_x\ns,a.u.,g\n" + "".join(_rows()),
    "units row in ms": "time,ppg,acc_x\nms,counts,g\n" + "".join(_rows(t_scale=1000)),
    "units row in brackets, decimal commas": "time;ppg;acc_x\n[s];[mV];[g]\n" + "".join(
        r.replace(",", ".").replace(".", ",") for r in _rows(";")),
    "comment preamble": "# device: Wrist-7\n# firmware: 2.4.1\n#start: 2026-12-08T10:00:00Z\n\ntime,ppg,acc_x\n"
                        + "".join(_rows()),
    "all at once": "\ufeff# device: Wrist-7\r\n\"time\",\"ppg\",\"acc_x\",\r\n\"ms\",\"a.u.\",\"g\",\r\n"
                   + "".join(_rows(end=",", nl="\r\n", t_scale=1000)) + "\r\n",
}
KEPT = {                         # read right before too: kept so
    "BOM": "\ufeff" + PLAIN,
    "CRLF": PLAIN.replace("\n", "\r\n"),
    "quoted header": '"time","ppg","acc_x"\n' + PLAIN.split("\n", 1)[1],
    "blank last line": PLAIN + "\n",
    "semicolon, decimal comma": "time;ppg;acc_x\n" + "".join(r.replace(",", ";").replace(".", ",") for r in _rows()),
    "tab": "time\tppg\tacc_x\n" + "".join(_rows("\t")),
    "ISO 8601 times": "time,ppg,acc_x\n" + "".join(
        f"2026-12-08T10:00:{t:06.3f}Z,{p:.4f},{a:.4f}\n" for t, p, a in zip(T, PPG, ACC)),
}


def _both(tmp_path, text: str, yaml: str = "") -> list:
    """The file read bare and through a dataset.yaml naming its time column and channels."""
    f = tmp_path / "rec.csv"
    f.write_bytes(text.encode())
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n"
                                           + (yaml or "channels: {ppg: ppg, acc_x: acc_x}\n"))
    return [read_csv(f), next(iter_records(tmp_path / "dataset.yaml"))]


def _same_as_plain(got, acc_atol: float = 0.0) -> None:
    """`got` is the plain file's record: its channels, rates and samples (the accelerometer to `acc_atol` g, where a
    unit was converted to g)."""
    assert got.fs == {"ppg": FS, "acc_x": FS} and sorted(got.channels) == ["acc_x", "ppg"]
    np.testing.assert_array_equal(got.signals["ppg"], PPG)
    np.testing.assert_allclose(got.signals["acc_x"], ACC, rtol=0, atol=acc_atol)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_an_export_layout_reads_as_the_plain_file(tmp_path, layout):
    for got in _both(tmp_path, LAYOUTS[layout]):
        _same_as_plain(got)


@pytest.mark.parametrize("layout", list(KEPT))
def test_layouts_read_before_still_read_as_the_plain_file(tmp_path, layout):
    for got in _both(tmp_path, KEPT[layout]):
        _same_as_plain(got)


def test_a_bom_before_a_header_less_file_is_no_header(tmp_path):
    """Its first row was read as a header naming one channel '0_5000' (the row lost), not the ppg."""
    f = tmp_path / "rec.csv"
    f.write_bytes(("\ufeff" + "".join(f"{p:.4f}\n" for p in PPG)).encode())
    r = read_csv(f, fs=FS)
    assert r.channels == ["ppg"]
    np.testing.assert_array_equal(r.signals["ppg"], PPG)


def test_a_decimal_comma_after_a_first_row_of_whole_numbers_is_read(tmp_path):
    """`time;ppg` then `0;0`, `0,015625;0,9` (a spreadsheet's rows, its first whole): the decimal comma is sniffed
    from every row csv_head holds, not the first alone (was "neither numbers nor date-times (day is out of range
    for month: 0)")."""
    text = "time;ppg\n" + "".join(f"{t:g};{p:g}\n".replace(".", ",") for t, p in zip(T, PPG))
    assert text.split("\n")[1] == "0;0"
    f = tmp_path / "rec.csv"
    f.write_text(text)
    r = read_csv(f)
    assert r.fs == {"ppg": FS}
    np.testing.assert_array_equal(r.signals["ppg"], PPG)


def test_a_units_row_is_read_as_the_dataset_files_units(tmp_path):
    """m/s^2 (or mg) in a units row converts the accelerometer to g as `unit: m/s^2` does; the row's cells are the
    record's `units`, a PPG's unknown one (counts) kept as its label; a dataset.yaml saying the same is fine."""
    acc = ACC * 9.80665
    text = "time,ppg,acc_x\nms,counts,m/s^2\n" + "".join(
        f"{t * 1000:.3f},{p:.4f},{a:.10f}\n" for t, p, a in zip(T, PPG, acc))
    plain_yaml = "channels: {ppg: ppg, acc_x: acc_x}\n"
    said = "time_unit: ms\nchannels: {ppg: ppg, acc_x: {column: acc_x, unit: m/s^2}}\n"
    for yaml in (plain_yaml, said):
        for got in _both(tmp_path, text, yaml):
            assert got.fs == {"ppg": FS, "acc_x": FS} and got.meta["units"] == {"ppg": "counts", "acc_x": "m/s^2"}
            np.testing.assert_array_equal(got.signals["ppg"], PPG)
            np.testing.assert_allclose(got.signals["acc_x"], ACC, rtol=0, atol=1e-9)


@pytest.mark.parametrize("yaml, said", [
    ("time_unit: ms\nchannels: {ppg: ppg, acc_x: acc_x}\n", "its units row says s but dataset.yaml says time_unit: ms"),
    ("channels: {ppg: ppg, acc_x: {column: acc_x, unit: mg}}\n",
     "its units row says g but dataset.yaml says channels.acc_x.unit: mg"),
])
def test_a_units_row_disagreeing_with_the_dataset_file_is_one_line_naming_both(tmp_path, yaml, said):
    (tmp_path / "rec.csv").write_text(LAYOUTS["units row"])
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n" + yaml)
    with pytest.raises(SqtoolError, match=said) as e:
        next(iter_records(tmp_path / "dataset.yaml"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("ppg_head, acc_head, end, units", [
    ("time,ppg", "# logger 3\ntime,acc_x,\nms,mg,", ",", {"acc_x": "mg"}),        # a preamble and a units row
    ("time [s],ppg [a.u.]", "time [ms],acc_x [mg]", "", {"ppg": "a.u.", "acc_x": "mg"}),   # units in the names
], ids=["preamble and units row", "header units"])
def test_a_stream_files_layout_is_read_as_its_own(tmp_path, ppg_head, acc_head, end, units):
    """acc.csv beside ppg.csv (`file:`), named time and acc_x in the dataset.yaml, with a logger's preamble and a
    units row in mg, or `time [ms],acc_x [mg]` as its header: aligned on its clock in ms, read as the same stream
    written plain in g."""
    (tmp_path / "ppg.csv").write_text(f"{ppg_head}\n" + "".join(f"{t:.6f},{p:.4f}\n" for t, p in zip(T, PPG)))
    (tmp_path / "acc.csv").write_text(f"{acc_head}\n" + "".join(
        f"{t * 1000:.3f},{a * 1000:.1f}{end}\n" for t, a in zip(T, ACC)))
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: ppg.csv\ntime_column: time\n"
                                           "channels: {ppg: ppg, acc_x: {file: acc.csv, column: acc_x}}\n")
    r = next(iter_records(tmp_path / "dataset.yaml"))
    _same_as_plain(r, acc_atol=1e-12)
    assert r.fs["acc_x"] == FS and r.meta["units"] == units


@pytest.mark.parametrize("text, said", [
    ("time,ppg,acc_x,acc_y\n" + "".join(_rows(end=",")), "channel 'acc_y' has no finite sample"),   # named: kept
    ("time,ppg,acc_x\nmin,a.u.,g\n" + "".join(_rows()), "its units row says 'min', no time unit sqtool reads"),
    ("time,ppg,acc_x\n" + "".join(_rows(end=","))[:-2] + ",7\n", "a row has more fields than the header names"),
])
def test_what_no_layout_explains_stays_one_line(tmp_path, text, said):
    """A named column with no value is still refused (an empty channel, not a trailing separator); a units row's
    time unit sqtool cannot scale by, or a value past the header's last column, is one line."""
    f = tmp_path / "rec.csv"
    f.write_text(text)
    with pytest.raises(SqtoolError, match=said) as e:
        read_csv(f)
    assert "\n" not in str(e.value)


def test_data_inspect_says_the_accelerometer_unit_its_units_rows_gave(tmp_path, capsys):
    """`data inspect` of a dataset file whose acc.csv units row says mg (dataset.yaml silent): its accelerometer line
    says mg, from the units row, and the conversion to g (it said 'value in g, not converted': what the file did not
    do); one row in m/s^2 and one in mg: both named, each recording read in its own."""
    from sqtool.cli import main
    for i in range(2):
        d = tmp_path / f"s{i}_walk"
        d.mkdir()
        (d / "ppg.csv").write_text("time,ppg\n" + "".join(f"{t:.6f},{p:.4f}\n" for t, p in zip(T, PPG)))
        (d / "acc.csv").write_text("time,acc_x\ns,mg\n" + "".join(
            f"{t:.6f},{a * 1000:.1f}\n" for t, a in zip(T, ACC)))
    (tmp_path / "dataset.yaml").write_text(
        "format: csv\nfiles: '*/ppg.csv'\ntime_column: time\nchannels: {ppg: ppg, acc_x: {file: acc.csv, column: "
        "acc_x}}\nsubject: {pattern: '^(?P<subject>s\\d+)_'}\n")
    assert main(["data", "inspect", "--data", str(tmp_path / "dataset.yaml")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "accelerometer:" in ln)
    assert line.strip() == "accelerometer: acc_x: value in mg (as its CSV writes it), / 1000 -> g", line
    (tmp_path / "s1_walk" / "acc.csv").write_text("time,acc_x\ns,m/s^2\n" + "".join(
        f"{t:.6f},{a * 9.80665:.6f}\n" for t, a in zip(T, ACC)))
    assert main(["data", "inspect", "--data", str(tmp_path / "dataset.yaml")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "accelerometer:" in ln)
    said = "accelerometer: acc_x: value in m/s^2 or mg (as its CSV writes it), each recording's -> g"
    assert line.strip() == said, line


# A unit written at the end of a column's name, as device and lab exports write it: (the header, the time column's
# scale, the accelerometer's per g, the names a dataset.yaml gives without the units: time, ppg, acc_x, the units the
# record keeps). Before, the channels were ppg_a_u, acc_x_m_s_2, acc_x_mg (no model reads them; m/s^2 and mg never
# converted to g) and a dataset.yaml naming `ppg` did not find `ppg [a.u.]`.
HEADER_UNITS = {
    "brackets": ("time [s],ppg [a.u.],acc_x [g]", 1, 1, ("time", "ppg", "acc_x"), {"ppg": "a.u.", "acc_x": "g"}),
    "parentheses, ms, m/s^2": ("time (ms),ppg (counts),acc_x (m/s^2)", 1000, 9.80665, ("time", "ppg", "acc_x"),
                               {"ppg": "counts", "acc_x": "m/s^2"}),
    "no space, mg, a name mapped": ("Time[ms],PPG,ACC X [mg]", 1000, 1000, ("Time", "PPG", "ACC X"),
                                    {"acc_x": "mg"}),
    "common names": ("timestamp [ms],PLETH [a.u.],accx [g]", 1000, 1, ("timestamp", "PLETH", "accx"),
                     {"ppg": "a.u.", "acc_x": "g"}),
    "and a units row saying the same": ("time [s],ppg [a.u.],acc_x [m/s^2]\nsec,a.u.,m/s2", 1, 9.80665,
                                        ("time", "ppg", "acc_x"), {"ppg": "a.u.", "acc_x": "m/s2"}),
}


@pytest.mark.parametrize("layout", list(HEADER_UNITS))
def test_units_in_the_header_names_read_as_the_plain_file(tmp_path, layout):
    """Bare (predict / bench / data inspect on a file) and through a dataset.yaml naming the columns as written or
    without their units: the plain file's channels and samples, the accelerometer converted to g, time in its unit;
    the other units kept as labels."""
    head, t_scale, a_scale, (tname, pname, aname), units = HEADER_UNITS[layout]
    text = head + "\n" + "".join(_rows(t_scale=t_scale, a_scale=a_scale))
    as_written = [c.strip() for c in head.split("\n")[0].split(",")]
    for time_column, ppg, acc in ((tname, pname, aname), as_written):
        f = tmp_path / "rec.csv"
        f.write_text(text)
        (tmp_path / "dataset.yaml").write_text(f"format: csv\nfiles: rec.csv\ntime_column: '{time_column}'\n"
                                               f"channels: {{ppg: '{ppg}', acc_x: '{acc}'}}\n")
        for got in (read_csv(f), next(iter_records(tmp_path / "dataset.yaml"))):
            _same_as_plain(got, acc_atol=1e-9)
            assert got.meta["units"] == units


def test_data_inspect_names_the_channels_of_a_header_with_units(tmp_path, capsys):
    """`data inspect --data FILE.csv` of `time (ms),ppg (counts),acc_x (m/s^2)`: ppg and acc_x (it said ppg_counts,
    acc_x_m_s_2)."""
    from sqtool.cli import main
    f = tmp_path / "rec.csv"
    f.write_text("time (ms),ppg (counts),acc_x (m/s^2)\n" + "".join(_rows(t_scale=1000, a_scale=9.80665)))
    assert main(["data", "inspect", "--data", str(f)]) == 0
    assert "channels: ppg @ 64 Hz, acc_x @ 64 Hz" in capsys.readouterr().out


@pytest.mark.parametrize("head, yaml, said", [
    ("time [s],ppg,acc_x", "time_unit: ms\nchannels: {ppg: ppg, acc_x: acc_x}\n",
     r"time column 'time \[s\]': its name says s but dataset.yaml says time_unit: ms"),
    ("time,ppg,acc_x (g)", "channels: {ppg: ppg, acc_x: {column: acc_x, unit: mg}}\n",
     r"channel 'acc_x' \(column 'acc_x \(g\)'\): its name says g but dataset.yaml says channels.acc_x.unit: mg"),
    ("time,ppg,acc_x [g]\ns,a.u.,mg", "channels: {ppg: ppg, acc_x: acc_x}\n",
     r"column 'acc_x \[g\]': its name says g but its units row says mg"),
    ("time [ms],ppg,acc_x\ns,a.u.,g", "channels: {ppg: ppg, acc_x: acc_x}\n",
     r"column 'time \[ms\]': its name says ms but its units row says s"),
    ("time,ppg [a.u.],ppg [mV],acc_x", "channels: {ppg: ppg, acc_x: acc_x}\n",
     r"channel 'ppg': column 'ppg' names 2 columns once their units are left out \(ppg \[a.u.\], ppg \[mV\]\)"),
], ids=["time_unit", "acc unit", "units row, acc", "units row, time", "a bare name twice"])
def test_a_header_unit_disagreeing_is_one_line_naming_both(tmp_path, head, yaml, said):
    """A header's unit and the dataset.yaml's, or the header's and its units row's, that differ: one line naming
    both (read through the dataset.yaml, and bare where the file alone disagrees); a bare name that two columns'
    names without their units share: one line naming them."""
    more = ",1.0" * (head.split("\n")[0].count(",") - 2)               # a fourth column's values
    (tmp_path / "rec.csv").write_text(head + "\n" + "".join(r[:-1] + more + "\n" for r in _rows()))
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n" + yaml)
    with pytest.raises(SqtoolError, match=said) as e:
        next(iter_records(tmp_path / "dataset.yaml"))
    assert "\n" not in str(e.value)
    if "units row" in said:
        with pytest.raises(SqtoolError, match=said):
            read_csv(tmp_path / "rec.csv")


def test_a_parenthesised_word_that_is_no_unit_stays_in_the_name(tmp_path):
    """`ppg (green)`, `acc_x (wrist)`: no unit (parentheses hold one only when sqtool knows it), so the column keeps
    its name, read as ppg_green (the file's one PPG: its ppg) and acc_x_wrist, and a dataset.yaml names it as
    written; `acc_y (m/s^2)` beside them is a unit, read in g as acc_y."""
    f = tmp_path / "rec.csv"
    f.write_text("time,ppg (green),acc_x (wrist),acc_y (m/s^2)\n" + "".join(
        f"{t:.6f},{p:.4f},{a:.4f},{a * 9.80665:.10f}\n" for t, p, a in zip(T, PPG, ACC)))
    r = read_csv(f)
    assert r.channels == ["ppg", "acc_x_wrist", "acc_y"] and r.meta["ppg_from"] == "ppg (green)"
    assert r.meta["units"] == {"acc_y": "m/s^2"}
    np.testing.assert_allclose(r.signals["acc_y"], ACC, rtol=0, atol=1e-9)
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n"
                                           "channels: {ppg: 'ppg (green)', acc_x: 'acc_x (wrist)', acc_y: acc_y}\n")
    r = next(iter_records(tmp_path / "dataset.yaml"))
    np.testing.assert_array_equal(r.signals["ppg"], PPG)
    np.testing.assert_array_equal(r.signals["acc_x"], ACC)
    np.testing.assert_allclose(r.signals["acc_y"], ACC, rtol=0, atol=1e-9)
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n"
                                           "channels: {ppg: ppg, acc_x: acc_x}\n")
    with pytest.raises(SqtoolError, match=r"channel 'ppg': column 'ppg' missing \(has time, ppg \(green\)"):
        next(iter_records(tmp_path / "dataset.yaml"))


def test_an_acc_unit_its_csv_writes_wrong_is_fixed_in_the_csv_not_the_dataset_file(tmp_path, capsys):
    """A units row saying m/s^2 over an accelerometer in g (gravity reads 0.1 g): the warning names the CSV as where
    to write g. It said `set unit: g on the acc channels in dataset.yaml`, which then disagrees with the units row
    (one error line) instead of fixing anything."""
    rng = np.random.default_rng(0)
    acc = np.c_[0.1 * rng.standard_normal(N), 0.1 * rng.standard_normal(N), 1 + 0.1 * rng.standard_normal(N)]  # g
    (tmp_path / "rec.csv").write_text("time,ppg,ax,ay,az\ns,a.u.,m/s^2,m/s^2,m/s^2\n" + "".join(
        f"{t:.6f},{p:.4f},{x:.5f},{y:.5f},{z:.5f}\n" for t, p, (x, y, z) in zip(T, PPG, acc)))
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\n"
                                           "channels: {ppg: ppg, acc_x: ax, acc_y: ay, acc_z: az}\n")
    capsys.readouterr()
    next(iter_records(tmp_path / "dataset.yaml"))
    err = [ln for ln in capsys.readouterr().err.splitlines() if "gravity" in ln]
    assert len(err) == 1 and "looks like g, not m/s^2" in err[0], err
    assert "write g for the acc channels in the CSV (its units row or column name say otherwise) if so" in err[0], err


def test_a_preamble_of_any_length_is_skipped(tmp_path):
    """A logger's preamble of 1,200 '#' lines (a settings dump): its header and rows read as the plain file's (the
    first 1,000 lines were looked at: 'CSV has no data rows')."""
    for got in _both(tmp_path, "".join(f"# setting {i}: {i}\n" for i in range(1200)) + PLAIN):
        _same_as_plain(got)


@pytest.mark.parametrize("gap", ["NA,NA", ",NA", "N/A,null"])
def test_a_first_row_of_missing_values_is_a_gap_not_a_units_row(tmp_path, gap):
    """A file without a time column whose first row holds no values (NA, as R and pandas write them): that row is a
    gap sample (NaN), not a units row (it was dropped, every sample one row early, and 'NA' kept as the units)."""
    f = tmp_path / "rec.csv"
    f.write_text("ppg,acc_x\n" + gap + "\n" + "".join(f"{p:.4f},{a:.4f}\n" for p, a in zip(PPG, ACC)))
    r = read_csv(f, fs=FS)
    assert "units" not in r.meta and len(r.signals["ppg"]) == N + 1
    assert np.isnan(r.signals["ppg"][0]) and np.isnan(r.signals["acc_x"][0])
    np.testing.assert_array_equal(r.signals["ppg"][1:], PPG)


@pytest.mark.parametrize("delimiter", [",", " "])
def test_a_header_written_as_a_comment_names_the_columns(tmp_path, delimiter):
    """numpy.savetxt(..., header="time,ppg,acc_x") writes `# time,ppg,acc_x` above rows of numbers: read as the
    plain file (it was a header-less file, refused: 'the file has no header row'); a preamble's last line above
    header-less rows names nothing (one column: still the ppg)."""
    f = tmp_path / "rec.csv"
    np.savetxt(f, np.c_[T, PPG, ACC], delimiter=delimiter, header=delimiter.join(("time", "ppg", "acc_x")))
    _same_as_plain(read_csv(f))
    f.write_text("# device: Wrist-7\n" + "".join(f"{p:.4f}\n" for p in PPG))
    r = read_csv(f, fs=FS)
    assert r.channels == ["ppg"]
    np.testing.assert_array_equal(r.signals["ppg"], PPG)


@pytest.mark.parametrize("unit, scale", [("mg", 1000.0), ("m/s^2", 9.80665)])
def test_a_gain_that_converted_the_header_unit_by_hand_is_named(tmp_path, capsys, unit, scale):
    """A dataset.yaml written before header units were read, converting `acc_x (mg)` by hand (gain: 0.001): its
    CSV's unit and the gain now both convert (gravity 0.001 g). The warning names the gain to drop; it said to write
    g in the CSV (mg), or nothing at all (m/s^2: 0.1 g fits no unit)."""
    rng = np.random.default_rng(0)
    acc = np.c_[0.1 * rng.standard_normal(N), 0.1 * rng.standard_normal(N), 1 + 0.1 * rng.standard_normal(N)]  # g
    (tmp_path / "rec.csv").write_text(f"time,ppg,ax ({unit}),ay ({unit}),az ({unit})\n" + "".join(
        f"{t:.6f},{p:.4f},{x:.5f},{y:.5f},{z:.5f}\n" for t, p, (x, y, z) in zip(T, PPG, acc * scale)))
    by_hand = "{column: a%s (" + unit + "), gain: " + f"{1 / scale:.8g}" + "}"
    (tmp_path / "dataset.yaml").write_text("format: csv\nfiles: rec.csv\ntime_column: time\nchannels: {ppg: ppg, "
                                           + ", ".join(f"acc_{a}: " + by_hand % a for a in "xyz") + "}\n")
    capsys.readouterr()
    next(iter_records(tmp_path / "dataset.yaml"))
    err = [ln for ln in capsys.readouterr().err.splitlines() if "gravity" in ln]
    assert len(err) == 1 and f"the {unit} its CSV writes is read as such" in err[0], err
    assert f"gain: {1 / scale:.6g} in dataset.yaml converts it again" in err[0] and "drop that gain" in err[0], err


@pytest.mark.parametrize("head, scale", [("Time [UTC]", 1.0), ("Time [UTC]", 1000.0), ("timestamp [epoch ms]", 1000.0),
                                         ("time (unix)", 1.0)])
def test_a_time_columns_clock_in_its_name_is_no_unit(tmp_path, head, scale):
    """Epoch times under `Time [UTC]` read as before header units (s or ms by their size: 'its name says UTC, no
    time unit sqtool reads' refused them); `[epoch ms]` reads its ms; `time [min]` stays one line."""
    f = tmp_path / "rec.csv"
    f.write_text(f"{head},ppg,acc_x\n" + "".join(f"{(1.7e9 + t) * scale:.3f},{p:.4f},{a:.4f}\n"
                                                  for t, p, a in zip(T, PPG, ACC)))
    r = read_csv(f)
    _same_as_plain(r)
    assert r.meta["start_time"].startswith("2023-11-14T22:13:20")
    f.write_text("time [min],ppg\n" + "".join(f"{t / 60:.6f},{p:.4f}\n" for t, p in zip(T, PPG)))
    with pytest.raises(SqtoolError, match=r"its name says 'min', no time unit sqtool reads"):
        read_csv(f)
