"""dataset.yaml: bad input is one line naming the file; paths resolve from the yaml's folder; the resolver."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file, resolve_data

BASE = "format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\nchannels: {ppg: ppg, acc_x: 2}\n"


def write(folder: Path, name="s1_a.csv", seconds=20.0, fs=125.0, hr=True, seed=0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    cols = [t, np.sin(2 * np.pi * 1.2 * t) + 0.05 * rng.standard_normal(n), 0.01 * rng.standard_normal(n)]
    head = "time,ppg,acc_x"
    if hr:
        cols.append(np.full(n, 72.0))
        head += ",hr"
    p = folder / name
    np.savetxt(p, np.column_stack(cols), delimiter=",", header=head, comments="", fmt="%.6f")
    return p


def yaml(tmp_path: Path, text: str, make=True) -> Path:
    if make:
        write(tmp_path / "rec")
        write(tmp_path / "rec", "s2_b.csv", seed=1)
    p = tmp_path / "dataset.yaml"
    p.write_text(text)
    return p


def err(p, **kw) -> str:
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(p).records(**kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reads_channels_subjects_labels_and_positions(tmp_path):
    p = yaml(tmp_path, BASE + "subject: {pattern: '^(s\\d)_'}\nlabels: {hr: {column: hr}}\n")
    recs = load_dataset_file(p).records()
    assert [r.subject for r in recs] == ["s1", "s2"] and recs[0].fs == {"ppg": 125.0, "acc_x": 125.0}
    assert set(recs[0].signals) == {"ppg", "acc_x"}                     # acc_x by position 2
    lab = recs[0].labels["hr"]
    assert lab.kind == "window" and len(lab) == 7 and np.allclose(lab.values, 72.0)


def test_unknown_key_names_key_and_file(tmp_path):
    p = yaml(tmp_path, BASE + "sampling: 125\n")
    m = err(p)
    assert "unknown key 'sampling'" in m and str(p) in m
    p.write_text(BASE + "labels: {hr: {column: hr, smooth: 3}}\n")
    assert "unknown key 'smooth' in labels.hr" in err(p)


def test_missing_channel(tmp_path):
    p = yaml(tmp_path, BASE.replace("acc_x: 2", "acc_x: accx"))
    m = err(p)
    assert "channel 'acc_x': column 'accx' missing (has time, ppg, acc_x, hr)" in m and "s1_a.csv" in m
    p.write_text(BASE.replace("acc_x: 2", "acc_x: 9"))
    assert "column 9, but the file has 4 columns" in err(p)


def test_rate_disagrees_with_time_column(tmp_path):
    p = yaml(tmp_path, BASE + "fs: 100\n")
    m = err(p)
    assert "fs 100 Hz disagrees with the time column 'time' (125 Hz)" in m and "wrong sampling rate" in m
    p.write_text(BASE + "fs: 125\n")
    assert len(load_dataset_file(p).records()) == 2                    # agreeing: fine


def test_labels_past_the_signal(tmp_path):
    p = yaml(tmp_path, BASE + "labels: {hr: {file: 'hr/{stem}.csv'}}\n")
    (tmp_path / "hr").mkdir()
    for stem in ("s1_a", "s2_b"):
        (tmp_path / "hr" / f"{stem}.csv").write_text("start,hr\n" + "".join(f"{2 * i},{70 + i}\n" for i in range(20)))
    m = err(p)
    assert "label 'hr' rows run to 38.00 s, more than one 8 s window past the end of the 20.00 s signal" in m


def test_split_with_one_subject_on_both_sides(tmp_path):
    write(tmp_path / "rec", "s1_c.csv", seed=2)                        # a second recording of s1
    p = yaml(tmp_path, BASE + "subject: {pattern: '^(s\\d)_'}\nsplit: {train: [s1_a], test: [s1_c]}\n")
    ds = load_dataset_file(p)
    with pytest.raises(SqtoolError, match="subject s1 is on both sides of the split .train: recording s1_a, "
                                          "test: recording s1_c."):
        ds.split_subjects(ds.records())
    p.write_text(BASE + "subject: {pattern: '^(s\\d)_'}\nsplit: {test: [s2]}\n")
    ds = load_dataset_file(p)
    assert ds.split_subjects(ds.records()) == ({"s1"}, {"s2"})


def test_empty_folder_and_no_matches(tmp_path):
    (tmp_path / "rec").mkdir()
    p = yaml(tmp_path, BASE, make=False)
    assert "no recordings matching '*.csv' under" in err(p) and "(folder is empty)" in err(p)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(SqtoolError, match="folder is empty"):
        resolve_data(str(empty))


def test_relative_paths_resolve_from_the_yaml_not_the_cwd(tmp_path, monkeypatch):
    yaml(tmp_path / "proj", BASE + "labels: {hr: {column: hr}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ds = load_dataset_file(Path("..") / "proj" / "dataset.yaml")
    assert ds.root == (tmp_path / "proj" / "rec").resolve() and ds.path.is_absolute()
    assert len(ds.records()) == 2
    (tmp_path / "proj" / "dataset.yaml").write_text(BASE.replace("root: rec", "root: recs"))
    with pytest.raises(SqtoolError, match=r"root .*proj/recs does not exist"):
        load_dataset_file(tmp_path / "proj" / "dataset.yaml")


def test_resolver_kinds_and_builtin_refusals(tmp_path):
    assert resolve_data("synthetic").kind == "synthetic"
    p = yaml(tmp_path, BASE)
    assert resolve_data(str(p)).kind == "dataset" and resolve_data(str(tmp_path)).kind == "dataset"
    assert resolve_data(str(tmp_path / "rec")).kind == "path"
    with pytest.raises(SqtoolError, match="does not exist .no such file or folder, and not a built-in dataset"):
        resolve_data("no_such_name")
    p.write_text("format: troika\nroot: rec\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match="built-in layout whose reader knows its channels"):
        load_dataset_file(p)
    p.write_text("format: csv\nroot: rec\nfs: 125\nchannels: {ppg: ppg}\nexclude: {nope: typo}\n")
    with pytest.raises(SqtoolError, match="exclude names nope"):
        load_dataset_file(p).records()


def test_nan_samples_leave_their_windows_out_of_training(tmp_path, capsys):
    """Empty cells (NaN) in a recording are gaps, not an error: a time-domain task leaves out the windows holding
    one (counted: TaskData.meta, one warning line), the spectral heart-rate corpus gives them no truth (not trained
    on or scored, one log line); a recording without gaps gives the same windows as before."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import dataset_spectra, load_task_from_dataset
    from sqtool.data.tasks import task_model_cfg
    from sqtool.models import get_model_cfg
    fs, n = 125.0, 60 * 125
    t = np.arange(n) / fs
    rng = np.random.default_rng(0)
    for name, gap in (("s1_a.csv", True), ("s2_b.csv", False)):
        rows = [f"{a:.3f},{'' if gap and 21 <= a < 22 else f'{np.sin(2 * np.pi * 1.2 * a):.5f}'},"
                f"{0.01 * rng.standard_normal():.5f},{0.01 * rng.standard_normal():.5f},"
                f"{1 + 0.01 * rng.standard_normal():.5f},72" for a in t]
        (tmp_path / "rec").mkdir(exist_ok=True)
        (tmp_path / "rec" / name).write_text("time,ppg,acc_x,acc_y,acc_z,hr\n" + "\n".join(rows) + "\n")
    (tmp_path / "dataset.yaml").write_text(
        "format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg, acc_x: acc_x, acc_y: acc_y, acc_z: acc_z}\n"
        "subject: {pattern: '^(?P<subject>s[0-9])_'}\nlabels: {hr: {column: hr}}\n")
    ds = load_dataset_file(tmp_path / "dataset.yaml")
    recs = ds.records()
    assert [r.nonfinite_samples() for r in recs] == [125, 0]
    cfg = task_model_cfg("hr", ModelCfg(name="t", family="resnet1d"))
    td = load_task_from_dataset("hr", ds, cfg)
    assert td.meta["nonfinite_windows"] == 4 and np.isfinite(td.x).all()       # 8 s windows starting 14..20 s
    assert td.meta["split_test"] is None                                        # no split: the fine-tune's rule
    ds.split.test = ["s2"]                                                      # a test side: its subjects, from
    assert load_task_from_dataset("hr", ds, cfg).meta["split_test"] == ["s2"]   # the recordings read for the task
    ds.split.test = []
    assert (td.record_ids == "s1_a").sum() == 27 - 4 and (td.record_ids == "s2_b").sum() == 27
    assert not set(td.t0[td.record_ids == "s1_a"]) & {14.0, 16.0, 18.0, 20.0}
    assert "4 windows of 1 recording(s) hold NaN/Inf samples (gaps): left out" in capsys.readouterr().err
    said = []
    corpus = dataset_spectra(ds, get_model_cfg("spec_teacher_m"), log=said.append)
    a, b = corpus
    assert a.meta["nonfinite_windows"] == 4 and np.isnan(a.y[np.isin(a.t0, [14, 16, 18, 20])]).all()
    assert np.isfinite(a.y).sum() == len(a.y) - 4 and np.isfinite(b.y).all() and "nonfinite_windows" not in b.meta
    assert said == [f"{ds.name}/s1_a: 4 windows hold NaN/Inf samples (gaps): not trained on or scored"]
    assert ds.report["nonfinite_windows"] == 4


def test_an_inf_in_a_label_column_is_missing_for_its_windows_only(tmp_path):
    """One Inf sample in a per-sample label column (an ICU export's rr) counts as missing for the windows that
    touch it, like an empty cell: the other windows keep their means (a cumulative sum over the Inf used to make
    every later window NaN and leak numpy's overflow warning)."""
    import warnings
    fs, n = 125.0, 60 * 125
    t = np.arange(n) / fs
    rr = np.where(t < 30, 12.0, 18.0)
    rr_inf = rr.copy()
    rr_inf[(t >= 21) & (t < 22)] = np.inf
    for name, col in (("s1_a.csv", rr), ("s2_b.csv", rr_inf)):
        (tmp_path / "rec").mkdir(exist_ok=True)
        np.savetxt(tmp_path / "rec" / name, np.column_stack([t, np.sin(2 * np.pi * 1.2 * t), col]), delimiter=",",
                   header="time,ppg,rr", comments="", fmt="%.4f")
    (tmp_path / "dataset.yaml").write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg}\n"
                                           "labels: {rr: {column: rr}}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean, gap = (r.labels["rr"] for r in load_dataset_file(tmp_path / "dataset.yaml").records())
    assert np.isfinite(gap.values).all() and np.array_equal(gap.times, clean.times)
    touch = (gap.times <= 21) & (gap.times + 8 > 21)                  # windows holding the Inf second
    assert np.allclose(gap.values[~touch], clean.values[~touch])      # every other window as without it
    assert np.allclose(gap.values[touch], 12.0)                       # the finite samples' mean (as for NaN)


def write_acc(folder: Path, scale, gravity=True, seconds=20.0, fs=50.0) -> Path:
    """time,ppg,ax,ay,az with the acc in g times `scale` (9.80665: m/s^2, 1000: mg; three numbers: one per axis);
    gravity on z, or none."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    rng = np.random.default_rng(0)
    acc = 0.05 * rng.standard_normal((n, 3)) + ([0.0, 0.0, 1.0] if gravity else 0.0)      # (N, 3) in g
    p = folder / "s1_a.csv"
    np.savetxt(p, np.column_stack([t, np.sin(2 * np.pi * 1.2 * t), acc * scale]), delimiter=",",
               header="time,ppg,ax,ay,az", comments="", fmt="%.9g")
    return p


def acc_yaml(tmp_path: Path, unit: str | None) -> Path:
    u = "" if unit is None else f", unit: '{unit}'"
    p = tmp_path / "dataset.yaml"
    p.write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg, "
                 + ", ".join(f"acc_{a}: {{column: a{a}{u}}}" for a in "xyz") + "}\n")
    return p


@pytest.mark.parametrize("scale, unit", [(1.0, None), (1.0, "g"), (9.80665, "m/s^2"), (9.80665, "m/s2"),
                                         (1000.0, "mg"), (1000.0, "mG"), (64.0, "1/64 g"), (64.0, "g/64")])
def test_acc_in_a_declared_unit_is_read_in_g(tmp_path, capsys, scale, unit):
    """The models and the classic baseline's motion gate take acc in g (as the built-in readers give it): a declared
    m/s^2 or mg is converted, so the same motion in any unit gives the same record, and no warning."""
    write_acc(tmp_path / "rec", scale)
    rec = load_dataset_file(acc_yaml(tmp_path, unit)).records()[0]
    z = rec.signals["acc_z"]
    assert np.median(z) == pytest.approx(1.0, abs=0.01) and np.std(z) == pytest.approx(0.05, rel=0.1)
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("scale, unit, likely", [(9.80665, "g", "m/s^2"), (9.80665, None, "m/s^2"),
                                                 (1.0, "m/s^2", "g"), (1000.0, "g", "mg"), (64.0, None, "1/64 g")])
def test_acc_magnitude_that_says_another_unit_is_one_warning(tmp_path, capsys, scale, unit, likely):
    """m/s^2 data declared (or assumed) g, g data declared m/s^2: one warning line naming the file and the likely
    unit; the read goes on (the unit as declared)."""
    f = write_acc(tmp_path / "rec", scale)
    (tmp_path / "rec" / "s2_a.csv").write_text(f.read_text())          # a second recording: said once, counted
    ds = load_dataset_file(acc_yaml(tmp_path, unit))
    rec = ds.records()[0]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sqtool: warning:") and str(f) in err[0]
    assert f"looks like {likely}, not {unit or 'g'}" in err[0]
    assert len(rec.signals["acc_z"]) == 1000 and len(ds.report["acc_unit_suspect"]) == 2


G = 9.80665


@pytest.mark.parametrize("scale, units, axis, says", [
    ((G, G, 1.0), ("m/s^2",) * 3, "acc_z", "reads about 1/9.81 the scale of acc_x and acc_y"),   # z written in g
    ((1.0, G, G), ("m/s^2",) * 3, "acc_x", "reads about 1/9.81 the scale of acc_y and acc_z"),   # x: no gravity
    ((G, G, G), ("m/s^2", "m/s^2", "g"), "acc_z", "reads about 9.81 the scale of acc_x and acc_y")])  # a yaml typo
def test_one_acc_axis_in_another_unit_is_one_warning_naming_the_axis_and_the_unit_that_fits(tmp_path, capsys, scale,
                                                                                         units, axis, says):
    """One axis in g beside two in m/s^2 (a device that writes them so, or one unit: mistyped in dataset.yaml) read
    with no word: gravity on x and y measured 1 g whatever x's unit, and three units that differ skipped the check.
    After conversion the axis reads 9.81x off the others' scale: one warning line names it and the unit that fits
    (said for the first recording, the rest counted), and nothing about the three axes' unit."""
    f = write_acc(tmp_path / "rec", np.array(scale))
    (tmp_path / "rec" / "s2_a.csv").write_text(f.read_text())
    p = tmp_path / "dataset.yaml"
    p.write_text("format: csv\nroot: rec\ntime_column: time\nchannels: {ppg: ppg, "
                 + ", ".join(f"acc_{a}: {{column: a{a}, unit: '{u}'}}" for a, u in zip("xyz", units)) + "}\n")
    ds = load_dataset_file(p)
    ds.records()
    err = capsys.readouterr().err.strip().splitlines()
    fits = "m/s^2" if units[2] == "g" else "g"
    assert len(err) == 1 and err[0].startswith(f"sqtool: warning: {f}: {axis} {says}"), err
    assert f"read as {fits} instead of {'g' if fits == 'm/s^2' else 'm/s^2'}" in err[0]
    assert f"set unit: {fits} on {axis} in dataset.yaml if so" in err[0] and "looks like" not in err[0]
    assert len(ds.report["acc_axis_unit_suspect"]) == 2 and "acc_unit_suspect" not in ds.report


def test_a_still_accelerometer_is_no_axis_warning(tmp_path, capsys):
    """A device at rest writing the same m/s^2 every sample (0.12, 0.21, 9.79): no axis moves, so none reads off the
    others' scale. The rounding of each window's mean (1e-17 g) was read as motion: 'acc_y reads about 1/9.81 the
    scale of acc_x and acc_z ... set unit: g on acc_y'."""
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "s1_a.csv").write_text("time,ppg,ax,ay,az\n" + "".join(
        f"{i / 64:.6f},{np.sin(i / 8):.4f},0.12,0.21,9.79\n" for i in range(64 * 120)))
    acc = ", ".join(f"acc_{a}: {{column: a{a}, unit: m/s^2}}" for a in "xyz")
    (tmp_path / "dataset.yaml").write_text(f"format: csv\nroot: rec\ntime_column: time\n"
                                           f"channels: {{ppg: ppg, {acc}}}\n")
    ds = load_dataset_file(tmp_path / "dataset.yaml")
    ds.records()
    assert "warning" not in capsys.readouterr().err and "acc_axis_unit_suspect" not in ds.report


@pytest.mark.parametrize("unit", ["g", "m/s^2"])
def test_linear_acceleration_is_no_warning(tmp_path, capsys, unit):
    """A sensor that removes gravity (a phone's linear acceleration) measures no gravity however much it moves (here
    a median |acc| of 0.76 m/s^2, which alone would look like g): plausible in no unit, no warning."""
    write_acc(tmp_path / "rec", 9.80665 if unit == "m/s^2" else 1.0, gravity=False)
    load_dataset_file(acc_yaml(tmp_path, unit)).records()
    assert "warning" not in capsys.readouterr().err


def test_unknown_acc_unit_is_one_line(tmp_path):
    write_acc(tmp_path / "rec", 1.0)
    m = err(acc_yaml(tmp_path, "furlongs/fortnight^2"))
    assert "unknown accelerometer unit 'furlongs/fortnight^2'" in m and "channels.acc_x.unit" in m


def label_files(tmp_path: Path, starts) -> None:
    (tmp_path / "hr").mkdir(exist_ok=True)
    for stem in ("s1_a", "s2_b"):
        (tmp_path / "hr" / f"{stem}.csv").write_text("start,hr\n" + "".join(f"{t:g},{70 + i}\n"
                                                                            for i, t in enumerate(starts)))


@pytest.mark.parametrize("starts, spacing", [([4.0 * i for i in range(4)], "4"),          # another hop
                                             ([1.0 + 2 * i for i in range(7)], "2")])     # the hop, off its grid
def test_a_label_file_at_another_hop_than_the_windows_is_one_line(tmp_path, starts, spacing):
    """Rows every 4 s under windows.hop_s 2 left half the windows without truth (never trained on, 'doubtful truth
    (not scored)'); rows every 2 s starting at 1 s left them all: one line naming the file, its spacing, hop_s."""
    p = yaml(tmp_path, BASE + "windows: {window_s: 8, hop_s: 2}\nlabels: {hr: {file: 'hr/{stem}.csv'}}\n")
    label_files(tmp_path, starts)
    m = err(p)
    assert str(tmp_path / "hr" / "s1_a.csv") in m and f"label rows are {spacing} s apart" in m
    assert "windows.hop_s 2" in m
    assert ("Set windows.hop_s" in m) if spacing == "4" else m.endswith("shift the times by -1 s")   # a phase: no hop
    p.write_text(p.read_text().replace("hop_s: 2", "hop_s: 4"))
    if spacing == "4":                                     # the fix the line names
        assert np.array_equal(load_dataset_file(p).records()[0].labels["hr"].times, starts)


def test_label_starts_rounded_near_the_grid_find_their_windows(tmp_path):
    """Starts written as 2.001, 3.999 (rounded clocks) are the windows 2 s, 4 s: put on the grid, matched."""
    from sqtool.data.record import window_label
    p = yaml(tmp_path, BASE + "labels: {hr: {file: 'hr/{stem}.csv'}}\n")
    label_files(tmp_path, [0.0, 2.001, 3.999, 6.0, 8.0, 10.0, 12.0])
    rec = load_dataset_file(p).records()[0]
    assert np.array_equal(window_label(rec, [0.0, 2.0, 4.0, 6.0]), [70, 71, 72, 73])


def test_a_few_label_rows_off_the_grid_are_one_warning_and_left_out(tmp_path, capsys):
    """One row of seven at 3 s under hop_s 2 (the 4 s window then has no row of its own): said in one warning line
    per file (it went without a word); a per-second file (a row at every window start and between them)
    is read, silently, each window's truth its start's row (the spacing check refused it for a while)."""
    from sqtool.data.record import window_label
    p = yaml(tmp_path, BASE + "labels: {hr: {file: 'hr/{stem}.csv'}}\n")
    label_files(tmp_path, [0.0, 2.0, 3.0, 6.0, 8.0, 10.0, 12.0])
    capsys.readouterr()
    load_dataset_file(p).records()
    err = [ln for ln in capsys.readouterr().err.splitlines() if "window starts without a row" in ln]
    assert len(err) == 1 and err[0].startswith("sqtool: warning: ") and "2 of 2 label files" in err[0] \
        and "hr/s1_a.csv (1 of 7 starts)" in err[0]
    label_files(tmp_path, [float(t) for t in range(13)])
    rec = load_dataset_file(p).records()[0]
    assert "warning" not in capsys.readouterr().err
    assert np.array_equal(window_label(rec, [0.0, 2.0, 4.0, 12.0]), [70, 72, 74, 82])


def test_a_window_without_a_label_row_gets_interpolated_truth_as_the_warning_says(tmp_path, capsys):
    """The 4 s window of a file without a row at 4 s (hop_s 2, window_s 8) is not left without truth, as the warning
    said: both heart-rate paths take the label at the window centre (tasks._label_at_centres, hr_spectra.window_truth
    since 0c9598a), so its truth is interpolated between the rows around it (2 s: 71, 6 s: 72 -> 71.5), trained on
    and scored; the warning says so."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import load_task_from_dataset
    from sqtool.data.hr_spectra import window_truth
    from sqtool.data.tasks import task_model_cfg
    p = yaml(tmp_path, BASE + "windows: {window_s: 8, hop_s: 2}\nlabels: {hr: {file: 'hr/{stem}.csv'}}\n")
    label_files(tmp_path, [0.0, 2.0, 6.0, 8.0, 10.0, 12.0])
    capsys.readouterr()
    ds = load_dataset_file(p)
    rec = ds.records()[0]
    said = [ln for ln in capsys.readouterr().err.splitlines() if "window starts without a row" in ln]
    assert len(said) == 1 and "their truth interpolated between the rows around them" in said[0] \
        and "no truth" not in said[0]
    td = load_task_from_dataset("hr", ds, task_model_cfg("hr", ModelCfg(name="t", family="resnet1d")))
    mine = td.record_ids == rec.record_id
    time_domain = dict(zip(td.t0[mine].tolist(), np.ravel(td.y[mine]).tolist()))
    assert time_domain[4.0] == 71.5 and time_domain[2.0] == 71 and time_domain[6.0] == 72
    assert window_truth(rec, np.array([2.0, 4.0, 6.0]), 8.0).tolist() == [71.0, 71.5, 72.0]      # spectral


def test_acc_in_raw_counts_is_one_warning_asking_for_a_gain(tmp_path, capsys):
    """Acc written in sensor counts (4096 per g, a 16-bit sensor at +-8 g) fits no unit: one warning line asking
    for the channels' gain (no unit brought it into the gravity band, so it went unsaid). Counts of 64 per g (the
    Empatica E4's, PPG-DaLiA's wrist device) are a unit of their own, 1/64 g, named as the likely one (above)."""
    f = write_acc(tmp_path / "rec", 4096.0)
    load_dataset_file(acc_yaml(tmp_path, None)).records()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0] and "fits no unit: raw sensor counts?" in err[0] and "gain:" in err[0]
    assert "gravity as 4.09e+03 g, which fits no unit" in err[0]         # the value once, not "4.09e+03 g (...)"


def test_a_dataset_file_that_is_not_utf8_is_one_line_naming_it(tmp_path, capsys):
    """A binary (or latin-1) dataset.yaml is one line naming the file, as invalid YAML is; not a bare
    UnicodeDecodeError."""
    from sqtool.cli import main
    f = tmp_path / "ry" / "dataset.yaml"
    f.parent.mkdir()
    f.write_bytes(b"\x9cformat: csv\nroot: caf\xe9\n")
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(f)
    assert str(e.value) == (f"{f}: not UTF-8 text (byte 0x9c at offset 0): a dataset file is a UTF-8 YAML file")
    assert main(["data", "inspect", "--data", str(f)]) == 1
    err = capsys.readouterr().err
    assert err == f"sqtool: error: {e.value}\n"


def test_read_dataset_takes_a_dataset_file_and_gives_its_records(tmp_path):
    """readers.read_dataset / iter_records given the dataset.yaml itself read it (the records resolve_data(p)
    .dataset.records() gives), instead of asking the user to write the dataset.yaml they gave."""
    from sqtool.data.readers import iter_records, read_dataset
    p = yaml(tmp_path, BASE + "subject: {pattern: '^(s\\d)_'}\nlabels: {hr: {column: hr}}\n")
    want = resolve_data(p).dataset.records()
    got = read_dataset(p)
    assert [(r.record_id, r.subject) for r in got] == [(r.record_id, r.subject) for r in want]
    for a, b in zip(got, want):
        assert set(a.signals) == set(b.signals) and a.fs == b.fs
        assert all(np.array_equal(a.signals[c], b.signals[c]) for c in a.signals)
        assert np.array_equal(a.labels["hr"].values, b.labels["hr"].values)
    assert [r.record_id for r in iter_records(str(p), channels=["ppg"])] == [r.record_id for r in want]
    with pytest.raises(SqtoolError, match="channel 'acc_y' missing"):             # the folder checks apply too
        read_dataset(p, channels=["acc_y"])
    with pytest.raises(SqtoolError, match="names its own format and reading options; drop kind, fs"):
        read_dataset(p, kind="csv", fs=125.0)


def test_a_recording_shorter_than_one_window_is_left_out_of_a_time_domain_task(tmp_path, capsys):
    """A 5 s recording beside 20 s ones (8 s windows): the time-domain heart-rate task leaves it out with one
    warning line naming it, as the spectral fine-tune, predict and bench do (it stopped the whole fine-tune:
    'record is 5.00 s long, shorter than one 8 s window'); the others' windows are as before."""
    from sqtool.core import ModelCfg
    from sqtool.data.dataset_tasks import load_task_from_dataset
    from sqtool.data.tasks import task_model_cfg
    p = yaml(tmp_path, BASE + "windows: {window_s: 8, hop_s: 2}\nlabels: {hr: {column: 3}}\n")
    cfg = task_model_cfg("hr", ModelCfg(name="t", family="resnet1d", window_s=8.0, hop_s=2.0, channels=("ppg",)))
    before = load_task_from_dataset("hr", load_dataset_file(p), cfg)
    write(tmp_path / "rec", "s3_c.csv", seconds=5.0, seed=2)
    capsys.readouterr()
    td = load_task_from_dataset("hr", load_dataset_file(p), cfg)
    err = [ln for ln in capsys.readouterr().err.splitlines() if "s3_c" in ln]
    assert len(err) == 1 and err[0].startswith("sqtool: warning: left out ") and err[0].endswith(
        "s3_c: record is 5.00 s long, shorter than one 8 s window")
    assert "s3" not in set(td.groups) and np.array_equal(td.x, before.x) and np.array_equal(td.y, before.y)


def test_an_excluded_file_is_never_read_so_a_broken_one_can_be_left_out(tmp_path, capsys):
    """`exclude:` names the recording whose file is empty (or unreadable): it is left out before reading, reported
    with its reason, where every command used to stop on `CSV has no data rows`."""
    p = yaml(tmp_path, BASE)
    (tmp_path / "rec" / "s3_c.csv").write_text("")                                  # an empty file
    with pytest.raises(SqtoolError, match="s3_c"):
        load_dataset_file(p).records()
    p.write_text(BASE + "exclude: {s3_c: sensor off}\n")
    ds = load_dataset_file(p)
    recs = ds.records(log=print)
    assert sorted(r.record_id for r in recs) == ["s1_a", "s2_b"]
    assert ds.report["excluded"] == {"s3_c": "sensor off"}
    assert "s3_c: excluded, left out (sensor off)" in capsys.readouterr().out


def test_file_changes_names_the_key_and_matches_a_moved_file_by_its_document(tmp_path):
    """What a resume says of its inputs' dataset files (data pairs' state): an edited value by its dotted key, a file
    no longer read or read anew by its path; the same document at another path (a shipped file under a reinstalled
    sqtool) is no change, nor is a comment."""
    from sqtool.core.changes import file_changes
    from sqtool.data.dataset_file import file_record
    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "dataset.yaml"
    f.write_text("format: npz\nchannels: {ppg: green}\nexclude: {12: clipped}\n")
    then = [file_record(load_dataset_file(f))]
    assert then[0]["document"]["exclude"] == {"12": "clipped"}            # keys as text: plain JSON
    f.write_text("# a comment\nformat: npz\nchannels:\n  ppg: green\nexclude: {12: clipped}\n")
    assert file_changes(then, [file_record(load_dataset_file(f))]) is None
    f.write_text("format: npz\nchannels: {ppg: red}\nexclude: {12: clipped}\nfs: 64\n")
    assert file_changes(then, [file_record(load_dataset_file(f))]) == (
        f"its dataset file {f.resolve()} changed since it started (channels.ppg: green -> red, fs: (none) -> 64)")
    g = tmp_path / "b" / "dataset.yaml"                                   # the first document, elsewhere
    g.parent.mkdir()
    g.write_text("format: npz\nchannels: {ppg: green}\nexclude: {12: clipped}\n")
    assert file_changes(then, [file_record(load_dataset_file(g))]) is None
    g.write_text("format: npz\nchannels: {ppg: red}\n")
    other = [file_record(load_dataset_file(g))]
    assert file_changes(then, other) == f"its dataset file {f.resolve()} is no longer read"
    assert file_changes([], other) == f"the dataset file {g.resolve()} is read now, not when it started"
