"""`sqtool data inspect|download`: real help, correct summaries on every real folder, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io as sio

from sqtool.cli import main

# what `inspect` must report for each folder of ../shared/data (from the MANIFESTs)
EXPECTED = {
    "troika": dict(records=13, subjects=13, labels={"hr": ("window", 1875)}),
    "bidmc": dict(records=53, subjects=53, labels={"breaths_ann1": ("events", 7288)}),
    "ppg_bp": dict(records=659, subjects=219, labels={"sbp": ("value", 659)}),
    "ppg_arrhythmia": dict(records=2295, subjects=12, labels={"rhythm": ("class", 2295)}),
    "but_ppg": dict(records=51, subjects=13, labels={"quality": ("class", 51)}),
    "mw_ppg": dict(records=78, subjects=78, labels={"artifact": ("flags", 78 * 12000)}),
    "unlabeled": dict(records=10, subjects=6, labels={}),
    "wrist_exercise": dict(records=13, subjects=5, labels={"hr": ("window", 2024)}),
}


def _inspect_json(capsys, *args) -> dict:
    assert main(["data", "inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("sub", ["inspect", "download"])
def test_subcommand_help(sub):
    r = subprocess.run([sys.executable, "-m", "sqtool.cli", "data", sub, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) > 5 and "usage" in r.stdout


def test_data_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "inspect" in out and "download" in out


def test_inspect_whole_data_root(data_root, capsys):
    """One read of ../shared/data: every dataset folder summarised with the MANIFEST's counts."""
    s = _inspect_json(capsys, str(data_root))
    assert s["kind"] == "multiple"
    got = {d["kind"]: d for d in s["datasets"]}
    assert set(got) == set(EXPECTED)
    for kind, exp in EXPECTED.items():
        d = got[kind]
        assert d["records"] == exp["records"], kind
        assert d["subjects"] == exp["subjects"], kind
        for name, (lkind, n) in exp["labels"].items():
            assert d["labels"][name]["kind"] == lkind and d["labels"][name]["values"] == n, (kind, name)
    assert got["troika"]["rates"]["ppg"] == [125.0]
    assert got["mw_ppg"]["rates"]["ppg_660"] == [200.0]
    assert got["ppg_arrhythmia"]["labels"]["rhythm"]["classes"]["AF"] == 732
    assert got["but_ppg"]["labels"]["quality"]["classes"] == {"poor": 14, "good": 37}
    assert got["bidmc"]["hours"] == pytest.approx(53 * 480.008 / 3600)
    assert got["troika"]["duration_s"]["min"] == pytest.approx(27576 / 125)


def test_inspect_text_and_bare_name(data_root, capsys):
    assert main(["data", "inspect", "--data", "but_ppg", "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "[but_ppg]" in out and "records 51, subjects 13" in out and "ppg @ 30 Hz" in out
    assert "poor 14, good 37" in out


def test_inspect_sp_cup_test_layout(data_root, tmp_path, capsys):
    """The competition's test layout: TEST_Sxx_Tyy.mat (5 rows, no ECG) + TrueBPM/True_Sxx_Tyy.mat."""
    root = tmp_path / "spcup"
    (root / "TestData").mkdir(parents=True)
    (root / "TrueBPM").mkdir()
    n_win = 0
    for i, typ in (("03", 2), ("05", 2), ("01", 1)):
        sig = sio.loadmat(data_root / f"troika/Training_data/DATA_{i}_TYPE0{typ}.mat")["sig"]
        bpm = sio.loadmat(data_root / f"troika/Training_data/DATA_{i}_TYPE0{typ}_BPMtrace.mat")["BPM0"]
        sio.savemat(root / "TestData" / f"TEST_S{i}_T0{typ}.mat", {"sig": sig[1:]})
        sio.savemat(root / "TrueBPM" / f"True_S{i}_T0{typ}.mat", {"BPM0": bpm})
        assert bpm.size == (sig.shape[1] - 1000) // 250 + 1
        n_win += bpm.size
    s = _inspect_json(capsys, str(root))
    assert s["kind"] == "troika" and s["records"] == 3 and s["subjects"] == 3
    assert set(s["channels"]) == {"ppg", "ppg2", "acc_x", "acc_y", "acc_z"}          # no ECG in the test layout
    assert s["labels"]["hr"] == {"kind": "window", "unit": "bpm", "records": 3, "values": n_win,
                                 "windows": {"with_value": n_win, "of": n_win}}    # one row per window: both agree
    # a wrong truth length is refused with one line and exit code 1
    bpm = sio.loadmat(root / "TrueBPM/True_S03_T02.mat")["BPM0"]
    sio.savemat(root / "TrueBPM/True_S03_T02.mat", {"BPM0": np.vstack([bpm, bpm[:1]])})
    assert main(["data", "inspect", "--data", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "labels do not match" in err


@pytest.mark.parametrize("args,needle", [
    (["data", "inspect", "--data", "/no/such/place"], "no such file"),
    (["data", "inspect", "--data", "{tmp}"], "folder is empty"),
    (["data", "inspect", "--data", "{tmp}/x.csv"], "no sampling rate"),
    (["data", "download", "but_ppg"], "--out DIR is required"),
    (["data", "download", "nope", "--out", "{tmp}/o"], "unknown dataset"),
    (["data", "download", "but_ppg", "--out", "{tmp}/o", "--mirror", "{tmp}/none"], "not a folder"),
])
def test_errors_are_one_line(tmp_path, capsys, args, needle):
    if args[-1] == "{tmp}/x.csv":
        (tmp_path / "x.csv").write_text("1\n2\n3\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc != 0 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_download_cli_from_mirror(data_root, tmp_path, capsys):
    assert main(["data", "download", "but_ppg", "--to", str(tmp_path), "--mirror", str(data_root)]) == 0
    assert "4 files" in capsys.readouterr().out
    assert main(["data", "download", "--list"]) == 0
    out = capsys.readouterr().out
    assert "physionet.org" in out and "license" in out
    s = _inspect_json(capsys, str(tmp_path / "but_ppg"))
    assert s["records"] == 51


def test_positional_path_notice_once(data_root, capsys):
    """The old positional PATH still works, with its deprecation notice printed once (not once per use)."""
    assert main(["data", "inspect", str(data_root / "but_ppg")]) == 0
    cap = capsys.readouterr()
    assert "records 51" in cap.out
    assert cap.err.count("deprecated: use --data PATH instead of a positional PATH") == 1


def test_data_root_alone_reads_the_folder_as_data(data_root, capsys):
    """`--data-root FOLDER` without --data is what train / quantize / demo make of it: --data (one notice line),
    not 'data: --data PATH is required'; with --data NAME it stays where the name is looked up."""
    assert main(["data", "inspect", "--data-root", str(data_root / "but_ppg")]) == 0
    cap = capsys.readouterr()
    assert "records 51, subjects 13" in cap.out
    assert cap.err == "sqtool: deprecated: use --data instead of --data-root\n"
    assert main(["data", "inspect", "--data", "but_ppg", "--data-root", str(data_root)]) == 0
    assert "records 51" in capsys.readouterr().out


def test_data_help_recommends_current_options(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "is looked up): $SQTOOL_DATA, else ../shared/data" in out and "): --data-root" not in out


def _three_subjects(tmp_path, noise: float = 0.0):
    """Three subjects' 20 s PPG CSVs under rec/: the dataset.yaml path (not written) and its text without a split."""
    rng = np.random.default_rng(0)
    (tmp_path / "rec").mkdir()
    for s in ("s1", "s2", "s3"):
        t = np.arange(20 * 125) / 125
        ppg = np.sin(7.5 * t) + (noise * rng.standard_normal(t.size) if noise else 0.0)
        np.savetxt(tmp_path / "rec" / f"{s}_a.csv", np.column_stack([t, ppg]), delimiter=",", header="time,ppg",
                   comments="", fmt="%.6f")
    base = ("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\nchannels: {ppg: ppg}\n"
            "subject: {pattern: '^(s\\d)_'}\n")
    return tmp_path / "dataset.yaml", base


def test_inspect_shows_a_dataset_files_split_and_refuses_unknown_subjects(tmp_path, capsys):
    """A dataset file's split is shown (train / test subjects, text and JSON); one naming a subject the data does
    not have is refused in one line by inspect, the check quantize makes later (DatasetFile.split_subjects)."""
    p, base = _three_subjects(tmp_path, noise=0.05)
    p.write_text(base + "split: {test: [s3]}\n")
    assert main(["data", "inspect", "--data", str(p)]) == 0
    assert "split (by subject): train s1, s2 (2); test s3 (1)" in capsys.readouterr().out
    s = _inspect_json(capsys, "--data", str(p))
    assert s["dataset_file"]["split"] == {"train": ["s1", "s2"], "test": ["s3"]}
    p.write_text(base + "split: {test: [s99]}\n")
    assert main(["data", "inspect", "--data", str(p)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "split.test names 's99', neither a subject nor a recording" in err
    p.write_text(base)                                                   # no split: no split line
    assert main(["data", "inspect", "--data", str(p)]) == 0
    assert "split" not in capsys.readouterr().out


def test_inspect_shows_only_the_split_quantize_reads(tmp_path, capsys):
    """quantize reads a dataset file's split only when it names test subjects or a heldout_fraction: a train
    list alone is said to be unused (not shown as the split, its names not checked), and a heldout_fraction is
    shown as the fraction quantize draws, saying from which subjects (the two quantize paths differ under
    --max-records), not as a subject list that may differ."""
    p, base = _three_subjects(tmp_path)
    for train in ("s1", "s99"):                                         # s99: quantize accepts it, so does inspect
        p.write_text(base + f"split: {{train: [{train}]}}\n")
        assert main(["data", "inspect", "--data", str(p)]) == 0
        out = capsys.readouterr().out
        assert f"split: train {train} only: not used (quantize holds out by its default" in out
        assert "split (by subject)" not in out
    p.write_text(base + "split: {heldout_fraction: 0.3}\n")
    assert main(["data", "inspect", "--data", str(p)]) == 0
    assert ("  split (by subject): test fraction 0.3 of the labelled subjects, drawn by quantize: of the whole file "
            "for a time-domain teacher, of those --max-records keeps for a spectral heart-rate one\n"
            in capsys.readouterr().out)           # compress/cli draws from ds.records(), quantize_hr from its corpus
    assert _inspect_json(capsys, "--data", str(p))["dataset_file"]["split"] == {"heldout_fraction": 0.3}


def _hr_dataset(root, per_second: bool):
    """A 100 s recording (time column, 50 Hz) whose hr file has a row per 8 s window every 2 s (starts 0..92 s: 47
    rows) or a row per second (0..100 s: 93 inside the signal); the same 47 windows either way."""
    (root / "rec").mkdir(parents=True)
    (root / "hr").mkdir()
    t = np.arange(5000) / 50
    np.savetxt(root / "rec" / "s1_run.csv", np.column_stack([t, np.sin(2 * np.pi * 1.5 * t)]), delimiter=",",
               header="time,ppg", comments="", fmt="%.5f")
    starts = np.arange(101.0) if per_second else np.arange(0.0, 93.0, 2.0)
    (root / "hr" / "s1_run.csv").write_text("start,hr\n" + "".join(f"{s:g},{90 + s / 10:.2f}\n" for s in starts))
    (root / "dataset.yaml").write_text("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\n"
                                       "channels: {ppg: ppg}\nwindows: {window_s: 8, hop_s: 2}\n"
                                       "labels: {hr: {file: 'hr/{stem}.csv'}}\n")
    return root / "dataset.yaml"


def test_inspect_counts_the_windows_with_a_value_whatever_the_label_files_spacing(tmp_path, capsys):
    """`values` counted a per-second file's rows (93) but a per-window file's windows (47): the audit's 2498 vs 1251
    for the same recordings. `windows` counts the recording's windows with a value both ways (47 of 47), `values`
    keeps the rows the file holds, and the text line names both."""
    got = {}
    for per_second in (False, True):
        s = _inspect_json(capsys, "--data", str(_hr_dataset(tmp_path / str(per_second), per_second)))
        got[per_second] = s["labels"]["hr"]
    assert got[False]["values"] == 47 and got[True]["values"] == 93
    assert got[False]["windows"] == got[True]["windows"] == {"with_value": 47, "of": 47}
    assert main(["data", "inspect", "--data", str(tmp_path / "True" / "dataset.yaml"), "--no-progress"]) == 0
    assert "values 93; windows 47 of 47 with a value" in capsys.readouterr().out


def test_inspect_counts_windows_without_a_value(tmp_path, capsys):
    """A per-window file with empty cells (no or doubtful truth): those windows are not counted as with a value."""
    ds = _hr_dataset(tmp_path, per_second=False)
    f = tmp_path / "hr" / "s1_run.csv"
    rows = f.read_text().splitlines()
    f.write_text("\n".join(r if i not in (3, 4, 5) else r.split(",")[0] + "," for i, r in enumerate(rows)) + "\n")
    lab = _inspect_json(capsys, "--data", str(ds))["labels"]["hr"]
    assert lab["values"] == 47 and lab["nan"] == 3 and lab["windows"] == {"with_value": 44, "of": 47}


@pytest.mark.parametrize("step_s, shown, warned", [(1e6, "ppg @ 1e-06 Hz", True), (1 / 4, "ppg @ 4 Hz", True),
                                                   (1 / 64, "ppg @ 64 Hz", False)])
def test_inspect_shows_a_slow_rate_as_it_is_and_warns(tmp_path, capsys, step_s, shown, warned):
    """A time column in microseconds read as seconds gives 1e-06 Hz: shown so (it read '0 Hz'), with a warning naming
    the channel and the time_unit remedy; a real PPG rate gets no warning."""
    t = np.arange(400) * step_s
    rows = "\n".join(f"{a:.10g},{b:.4f}" for a, b in zip(t, np.sin(np.arange(400) / 5)))
    (tmp_path / "rec.csv").write_text("time,ppg\n" + rows + "\n")
    assert main(["data", "inspect", "--data", str(tmp_path / "rec.csv")]) == 0
    out = capsys.readouterr().out
    assert shown in out and ("warning: ppg at" in out and "time_unit" in out) == warned
