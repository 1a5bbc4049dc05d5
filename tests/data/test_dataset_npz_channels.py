"""A dataset.yaml of NPZ recordings may leave `channels:` out: the members' names say them, as the plain NPZ reader
(`readers.read_npz`, what predict and bench read a folder with) reads them. `data inspect`, and every command that
takes the dataset file, refused such a file ('channels' is required for format npz); a file the plain reader refuses
is refused with its one line."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.dataset_file import data_records, load_dataset_file, resolve_data
from sqtool.data.readers import read_npz

FS = 64.0


def _dataset(tmp_path, **members):
    root = tmp_path / "rec"
    root.mkdir()
    t = np.arange(int(60 * FS)) / FS
    for s in ("s1", "s2"):
        np.savez(root / f"{s}_walk.npz", **{k: (v(t) if callable(v) else v) for k, v in members.items()})
    (tmp_path / "dataset.yaml").write_text('name: mine\nformat: npz\nroot: rec\nfiles: "*.npz"\n'
                                           'labels:\n  hr: {column: hr}\n' if "hr" in members else
                                           'name: mine\nformat: npz\nroot: rec\nfiles: "*.npz"\n')
    return tmp_path / "dataset.yaml", root


WRIST = dict(PLETH=lambda t: np.sin(2 * np.pi * 1.5 * t), accx=lambda t: 0 * t, accy=lambda t: 0 * t,
             accz=lambda t: 1 + 0 * t, fs=FS, hr=lambda t: 90 + 0 * t)


def test_an_npz_dataset_file_without_channels_reads_them_from_the_members(tmp_path, capsys):
    yml, root = _dataset(tmp_path, **WRIST)
    rc = main(["data", "inspect", "--data", str(yml), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "channels: ppg @ 64 Hz, acc_x @ 64 Hz, acc_y @ 64 Hz, acc_z @ 64 Hz" in out
    recs = data_records(resolve_data(str(yml)))                       # what train and bench read
    plain = read_npz(root / "s1_walk.npz")
    assert list(recs[0].signals) == ["ppg", "acc_x", "acc_y", "acc_z"]           # hr: the label, no channel
    assert set(plain.signals) - {"hr"} == set(recs[0].signals)
    np.testing.assert_array_equal(recs[0].signals["ppg"], plain.signals["ppg"])
    assert np.nanmean(recs[0].labels["hr"].values) == pytest.approx(90.0)


def test_a_signals_matrix_with_its_names_reads_as_the_plain_reader_reads_it(tmp_path, capsys):
    t = np.arange(int(60 * FS)) / FS
    yml, root = _dataset(tmp_path, signals=np.stack([np.sin(2 * np.pi * 1.5 * t), 0 * t]),
                         channels=np.array(["PPG Green", "ecg"]), fs=FS)
    rec = load_dataset_file(yml).records()[0]
    assert set(rec.signals) == set(read_npz(root / "s1_walk.npz").signals) == {"ppg", "ecg"}


def test_an_npz_without_a_signal_member_is_the_plain_readers_one_line(tmp_path, capsys):
    yml, root = _dataset(tmp_path, fs=FS, note=np.array("no signal here"))
    with pytest.raises(SqtoolError) as plain:
        read_npz(root / "s1_walk.npz")
    with pytest.raises(SqtoolError) as ours:
        data_records(resolve_data(str(yml)))                          # train, bench, predict --data the file
    assert str(ours.value) == str(plain.value).split(" (not read")[0]
    assert "no 1-D numeric signal arrays in the .npz" in str(ours.value)
    rc = main(["data", "inspect", "--data", str(yml), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err and cap.err.count("\n") == 1
    assert f"{root / 's1_walk.npz'}: no 1-D numeric signal arrays in the .npz" in cap.out + cap.err


def test_csv_still_needs_its_channels(tmp_path):
    (tmp_path / "dataset.yaml").write_text("format: csv\n")
    with pytest.raises(SqtoolError, match="'channels' is required for format csv"):
        load_dataset_file(tmp_path / "dataset.yaml")
