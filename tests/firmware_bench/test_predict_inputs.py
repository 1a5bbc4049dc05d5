"""What `sqtool predict` / `sqtool bench` / `sqtool.load_model(...).predict` do with a wearable's own files: a channel
shorter than the others (refused, never cut to), an accelerometer at half the PPG's rate (resampled to it on the
host, one note line), the progress flags every command takes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz
from test_api import _csv_rows

import sqtool
from sqtool.cli import main

AXES = ("acc_x", "acc_y", "acc_z")


def _half_rate_acc(src, dst):
    """`src`'s recording with its accelerometer at half the rate (every other sample, `fs_acc_*` = fs / 2), as a
    device whose accelerometer samples slower than its PPG writes it."""
    z = dict(np.load(src))
    fs = float(z.pop("fs"))
    d = {k: v for k, v in z.items() if k not in AXES}
    d.update({f"fs_{k}": fs for k in d}, **{a: z[a][::2] for a in AXES}, **{f"fs_{a}": fs / 2 for a in AXES})
    np.savez(dst, **d)
    return dst


def api_hr(export, half) -> list[str]:
    """`sqtool.load_model(export).predict` of a `_half_rate_acc` file given its accelerometer's rate (acc_fs): the
    heart rate per window as predict's CSV writes it."""
    z = np.load(half)
    m = sqtool.load_model(export)
    try:
        res = m.predict(np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[a] for a in AXES], 1), fs=125.0,
                        acc_fs=62.5)
    finally:
        m.close()
    return [f"{v:.3f}" for v in res.hr_bpm]


def _bench_a_half_rate_file(model, runtime, tmp_path, capsys, ppg2: bool):
    """`sqtool bench` of one recording whose accelerometer runs at half the PPG's rate: its resampling note (in
    bench.json and bench.md, asserted here), the run's stderr, and (the data folder, the full-rate file)."""
    data = tmp_path / "data"
    data.mkdir()
    full = write_wrist_npz(tmp_path / "full.npz", seconds=30, ppg2=ppg2)
    _half_rate_acc(full, data / "half.npz")
    out = tmp_path / "b"
    rc = main(["bench", "--model", str(model), "--data", str(data), "--runtime", runtime, "--no-progress",
               "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((out / "bench.json").read_text())
    note = next(n for n in res["notes"] if n.startswith("note: 1 recording with channels at another rate"))
    assert note.endswith("e.g. half: acc_x, acc_y, acc_z 62.5 Hz -> 125 Hz") and note in (out / "bench.md").read_text()
    return note, cap.err, (data, full)


def test_predict_refuses_a_file_whose_accelerometer_is_shorter(spec_export_dir, tmp_path, capsys):
    """The audit's mismatch.npz (acc 500 samples shorter than the PPG at one rate): windows and exit 0, every channel
    cut to the shortest without a word. Now exit 1, one line naming the file and the lengths, no run folder."""
    p = write_wrist_npz(tmp_path / "mismatch.npz", seconds=30, ppg2=True)
    z = dict(np.load(p))
    np.savez(p, **{k: (v[:-500] if k in AXES else v) for k, v in z.items()})
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(p), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert f"{p}: channels of unequal length: 'ppg' has 3750 samples at 125 Hz (30 s)" in err
    assert "3250 at 125 Hz (26 s): 'acc_x', 'acc_y', 'acc_z' are 500 samples short of 'ppg'" in err and not (tmp_path / "p" / "summary.json").exists()


def test_predict_resamples_a_slower_accelerometer_to_the_ppgs_rate(spec_export_dir, tmp_path, capsys):
    """PPG at 125 Hz, accelerometer at 62.5 Hz: `data inspect` took it, predict refused it ('have different rates;
    a stream needs one device rate', no fix). Now the accelerometer is resampled to 125 Hz on the host (one note line,
    summary.json names the rates), the C pipeline runs at the PPG's rate, the windows are the one-rate file's, and
    `--no-progress` (unrecognised before) is taken. The Python API, given acc_fs, gives the CSV's numbers."""
    full = write_wrist_npz(tmp_path / "full.npz", seconds=30, ppg2=True)
    data = tmp_path / "data"
    data.mkdir()
    half = _half_rate_acc(full, data / "half.npz")
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(tmp_path / "p"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    notes = [ln for ln in out.splitlines() if ln.startswith("note:")]
    assert notes == ["note: 1 recording with channels at another rate than the PPG: resampled to the PPG's rate on "
                     "the host (polyphase, as a device upsamples a slower accelerometer), e.g. half: acc_x, acc_y, "
                     "acc_z 62.5 Hz -> 125 Hz"]
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    r = s["recordings"][0]
    assert s["runtime"] == "c_pipeline" and r["fs_in"] == 125.0 and r["windows"] == 12
    assert r["resampled_from_hz"] == {a: 62.5 for a in AXES} and s["notes"] == notes

    assert api_hr(spec_export_dir, half) == [row["hr_bpm"] for row in _csv_rows(tmp_path / "p" / r["csv"])]


def test_the_progress_flags_are_the_same_in_predict(spec_export_dir, tmp_path, capsys):
    """`--progress` / `--no-progress` / `--quiet` (the old spelling), as in bench."""
    p = write_wrist_npz(tmp_path / "a.npz", seconds=20, ppg2=True)
    for i, flag in enumerate(("--progress", "--quiet")):
        rc = main(["predict", "--model", str(spec_export_dir), "--data", str(p), "--out", str(tmp_path / str(i)),
                   flag])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        assert ("deprecated: use --no-progress instead of --quiet" in cap.err) == (flag == "--quiet")


def test_the_time_domain_bench_resamples_and_says_so(export_dir, tmp_path, capsys):
    """The time-domain stream (`stream.replay` -> `record.channel_matrix`) takes the half-rate accelerometer too,
    and bench.json / bench.md carry the note."""
    note, err, _ = _bench_a_half_rate_file(export_dir, "litert_int8", tmp_path, capsys, ppg2=False)
    assert note in err


def test_the_api_without_acc_fs_names_it(spec_export_dir, tmp_path):
    """`HrModel.predict` takes the PPG's fs and, for an accelerometer at its own rate, acc_fs: an acc of other
    length without it says so; a bad acc_fs, or an acc_fs acc that does not span the PPG's seconds, is one line."""
    from sqtool.core import SqtoolError
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=20, ppg2=True))
    m = sqtool.load_model(spec_export_dir)
    try:
        with pytest.raises(SqtoolError, match=r"acc must be \(N, 3\) = \(2500, 3\).*\(ppg has 2500 samples: give "
                                              r"both the same length, or acc's own rate as acc_fs\)"):
            m.predict(np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[a][:2000] for a in AXES], 1), fs=125.0)
        with pytest.raises(SqtoolError, match=r"acc_fs must be the sampling rate in Hz \(a number\), got 'x'"):
            m.predict(np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[a] for a in AXES], 1), fs=125.0, acc_fs="x")
        with pytest.raises(SqtoolError, match=r"channels of unequal length: .* 'acc_x' 1200 at 62.5 Hz"):
            m.predict(np.stack([z["ppg"], z["ppg2"]], 1), np.stack([z[a][:2400:2] for a in AXES], 1), fs=125.0,
                      acc_fs=62.5)
    finally:
        m.close()


def test_the_spectral_bench_resamples_says_so_and_its_baseline_reads_the_accelerometer(spec_export_dir, tmp_path,
                                                                                        capsys):
    """The spectral bench (the shipped monitor) streams the half-rate accelerometer resampled to the PPG's rate and
    says so in bench.json / bench.md as the time-domain bench does; its classic baseline reads that accelerometer
    too (it read acc only at the PPG's rate, so ran without motion subtraction on such a file)."""
    from sqtool.data.readers import read_dataset
    from sqtool.data.hr_baseline import record_windows
    _, _, (data, full) = _bench_a_half_rate_file(spec_export_dir, "c_pipeline", tmp_path, capsys, ppg2=True)
    rec = next(iter(read_dataset(data)))
    ref = next(iter(read_dataset(full)))
    t0 = np.arange(0, 20, 2.0)
    _, acc, fs, full_ok = record_windows(rec, t0, 8.0, ("ppg", "ppg2"))
    _, acc_ref, _, _ = record_windows(ref, t0, 8.0, ("ppg", "ppg2"))
    assert fs == 125.0 and acc is not None and acc.shape == acc_ref.shape == (10, 3, 1000) and full_ok.all()
    inner = (slice(None), slice(None), slice(50, -50))                  # away from the resampler's edges
    assert np.corrcoef(acc[inner].ravel(), acc_ref[inner].ravel())[0, 1] > 0.95


def test_predict_reads_a_watch_exports_lone_green_column_as_its_ppg(spec_export_dir, tmp_path, capsys):
    """A watch's CSV names its only optical channel "PPG Green": `data inspect` showed it, predict refused it ('the
    model needs a PPG channel (ppg or ppg2)'). Now it is the ppg: the same windows and HR as the file named ppg."""
    z = np.load(write_wrist_npz(tmp_path / "w.npz", seconds=20))
    t = np.arange(z["ppg"].size) / float(z["fs"])
    rows = ["time,PPG Green,acc_x,acc_y,acc_z"] + [
        f"{t[i]:.4f},{z['ppg'][i]:.4f},{z['acc_x'][i]:.5f},{z['acc_y'][i]:.5f},{z['acc_z'][i]:.5f}"
        for i in range(t.size)]
    green = tmp_path / "green.csv"
    green.write_text("\n".join(rows) + "\n")
    (tmp_path / "plain.csv").write_text("\n".join([rows[0].replace("PPG Green", "ppg"), *rows[1:]]) + "\n")
    hr = {}
    for name in ("green", "plain"):
        rc = main(["predict", "--model", str(spec_export_dir), "--data", str(tmp_path / f"{name}.csv"),
                   "--out", str(tmp_path / f"p_{name}"), "--no-progress"])
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        s = json.loads((tmp_path / f"p_{name}" / "summary.json").read_text())
        hr[name] = [r["hr_bpm"] for r in _csv_rows(tmp_path / f"p_{name}" / s["recordings"][0]["csv"])]
    assert len(hr["green"]) > 0 and hr["green"] == hr["plain"]


def test_predict_says_why_its_windows_are_flagged_a_slower_stream_in_a_files_rows(spec_export_dir, tmp_path,
                                                                                  capsys):
    """A watch's CSV whose 31.25 Hz accelerometer fills every 4th row of its 125 Hz rows (blank between): every
    window over half gap, flagged, and predict said only 'every window flagged: nothing scored' (data inspect alone
    named the cause). Its line and summary.json now give the gaps by channel, the slower stream and the fix."""
    import pandas as pd
    z = dict(np.load(write_wrist_npz(tmp_path / "w.npz", seconds=30)))
    rows = np.arange(z["ppg"].size)
    df = pd.DataFrame({"time": rows / 125.0, "ppg": z["ppg"],
                       **{a: np.where(rows % 4 == 0, z[a], np.nan) for a in AXES}})
    df.to_csv(tmp_path / "watch.csv", index=False, na_rep="")
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(tmp_path / "watch.csv"), "--no-progress",
               "--out", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("watch: "))
    rec, = json.loads((tmp_path / "p" / "summary.json").read_text())["recordings"]
    assert rec["flagged_windows"] == rec["windows"] and "every window flagged" in line
    assert rec["gaps"].startswith("acc_x 2,812 of 3,750 samples;")
    assert rec["gaps"].endswith("acc_x, acc_y, acc_z: one value every 4 rows, a 31.25 Hz stream in 125 Hz rows? fill "
                                "the blanks, or say its rate in the dataset file (channels.acc_x: {column: ..., "
                                "fs: 31.25}) or, for a CSV without one, with predict / bench --acc-fs 31.25")
    assert f"flagged (gaps: {rec['gaps']}) -> watch.csv" in line


def _data_root_of_two(tmp_path):
    """A folder of two dataset folders (watch/dataset.yaml, ring/dataset.yaml; each a recording and a label file of
    one stem, as `labels: {hr: {file: "labels/{stem}.csv"}}` has them) and the same two linked into another folder."""
    root = tmp_path / "corpus"
    for name in ("watch", "ring"):
        (root / name / "rec").mkdir(parents=True)
        (root / name / "labels").mkdir()
        (root / name / "dataset.yaml").write_text(f"name: {name}\nformat: csv\nroot: rec\nfs: 64\n"
                                                  "labels: {hr: {file: 'labels/{stem}.csv'}}\n")
        (root / name / "rec" / "s1_walk.csv").write_text("ppg\n" + "0.1\n" * 640)
        (root / name / "labels" / "s1_walk.csv").write_text("start,bpm\n0,70\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("watch", "ring"):
        (linked / name).symlink_to(root / name, target_is_directory=True)
    return root, linked


def test_predict_and_bench_refuse_a_data_root_of_dataset_folders(spec_export_dir, tmp_path, capsys):
    """`predict` / `bench --data corpus` (a data root, as `data inspect` takes): read as one folder of CSVs, the
    label files were recordings ("... would be one subject"), or, the dataset folders linked in, "folder is empty".
    Now one line naming its datasets and how to give one, as the built-in data root gets."""
    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import resolve_data
    from sqtool.firmware_bench.cli import BenchConfig, _records
    for root in _data_root_of_two(tmp_path):
        rc = main(["predict", "--model", str(spec_export_dir), "--data", str(root), "--out", str(tmp_path / "p")])
        err = capsys.readouterr().err
        assert rc == 1 and err.count("\n") == 1, err
        assert (f"--data {root.resolve()}: a data root of 2 datasets (ring/dataset.yaml, watch/dataset.yaml); predict "
                f"reads one dataset at a time: give one of them, e.g. --data {root.resolve() / 'ring/dataset.yaml'}"
                in err)
        with pytest.raises(SqtoolError, match=r"a data root of 2 datasets .*; bench reads one dataset at a time"):
            _records(BenchConfig(model="m", data=str(root)), ["ppg"])      # the time-domain bench's reader
    assert resolve_data(str(root)).kind == "root"                       # data inspect / pairs still take it
