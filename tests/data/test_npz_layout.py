"""The NPZ layout the readers take (`generic.read_npz`, a dataset file's format: npz): channels that must span the
same time, a logger's 2-D accelerometer, and the members left unread, named by `data inspect`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.readers import read_npz

FS = 50.0
N = 3000                                                    # 60 s at 50 Hz


def _ppg(n: int = N) -> np.ndarray:
    return np.sin(2 * np.pi * 1.5 * np.arange(n) / FS)


def _acc(n: int = N) -> np.ndarray:
    """(n, 3) x, y, z in g, as a logger writes them."""
    t = np.arange(n) / FS
    return np.stack([0.1 * np.sin(2 * np.pi * 1.3 * t + k) + (k == 2) for k in range(3)], axis=1)


def _one_line(fn) -> str:
    with pytest.raises(SqtoolError) as e:
        fn()
    assert "\n" not in str(e.value)
    return str(e.value)


def test_channels_of_unequal_length_are_one_line_naming_the_file_and_the_lengths(tmp_path):
    """The audit's mismatch.npz: acc 500 samples shorter than ppg at one rate was cut to the shortest without a word
    (predict: windows, exit 0), while the Python API refused the same arrays. Now one line naming the file, the
    lengths and the shortfall."""
    p = tmp_path / "mismatch.npz"
    a = _acc(N - 500)
    np.savez(p, ppg=_ppg(), acc_x=a[:, 0], acc_y=a[:, 1], acc_z=a[:, 2], fs=FS)
    m = _one_line(lambda: read_npz(p))
    assert m.startswith(f"{p}: channels of unequal length: 'ppg' has 3000 samples at 50 Hz (60 s), 'acc_") and \
        "2500 at 50 Hz (50 s): 'acc_x', 'acc_y', 'acc_z' are 500 samples short of 'ppg'; give every channel the " \
        "same span" in m


def test_the_short_channel_is_the_one_named_short(tmp_path):
    """The line says which channel is short (it said '337 s short' of none): the PPG when the accelerometer runs
    longer, one axis alone when only it is cut, in seconds at another rate."""
    p = tmp_path / "r.npz"
    a = _acc()
    np.savez(p, ppg=_ppg()[:N - 100], acc_x=a[:, 0], acc_y=a[:, 1], acc_z=a[:, 2], fs=FS)
    assert "(58 s): 'ppg' is 100 samples short of 'acc_x'; give" in _one_line(lambda: read_npz(p))
    np.savez(p, ppg=_ppg(), acc_x=a[:, 0], acc_y=a[:-50, 1], acc_z=a[:, 2], fs=FS)
    assert ": 'acc_y' is 50 samples short of 'ppg'; give" in _one_line(lambda: read_npz(p))
    a25 = a[::2]
    np.savez(p, ppg=_ppg(), acc_x=a25[:-25, 0], acc_y=a25[:-25, 1], acc_z=a25[:-25, 2], fs_ppg=FS, fs_acc_x=25.0,
             fs_acc_y=25.0, fs_acc_z=25.0)
    assert "(59 s): 'acc_x', 'acc_y', 'acc_z' are 1 s short of 'ppg'" in _one_line(lambda: read_npz(p))


def test_one_sample_apart_is_a_clock_phase_and_rates_compare_in_seconds(tmp_path):
    """Streams a logger stops at one instant end within a sample of each other: one sample more in one is taken
    (slack 1); at their own rates the durations compare in seconds: acc at 25 Hz over the same 60 s is whole,
    a second short of it is refused in seconds."""
    p = tmp_path / "r.npz"
    a = _acc(N - 1)
    np.savez(p, ppg=_ppg(), acc_x=a[:, 0], acc_y=a[:, 1], acc_z=a[:, 2], fs=FS)
    assert {len(x) for x in read_npz(p).signals.values()} == {N, N - 1}
    np.savez(p, ppg=_ppg(), acc_x=a[:, 0], acc_y=a[:, 1], acc_z=a[:, 2][:-1], fs=FS)          # 2 samples apart
    assert "2 samples short" in _one_line(lambda: read_npz(p))
    a25 = _acc(N)[::2]                                                                       # 1500 at 25 Hz: 60 s
    np.savez(p, ppg=_ppg(), acc_x=a25[:, 0], acc_y=a25[:, 1], acc_z=a25[:, 2], fs_ppg=FS, fs_acc_x=25.0,
             fs_acc_y=25.0, fs_acc_z=25.0)
    r = read_npz(p)
    assert r.fs == {"ppg": 50.0, "acc_x": 25.0, "acc_y": 25.0, "acc_z": 25.0}
    np.savez(p, ppg=_ppg(), acc_x=a25[:-25, 0], acc_y=a25[:-25, 1], acc_z=a25[:-25, 2], fs_ppg=FS, fs_acc_x=25.0,
             fs_acc_y=25.0, fs_acc_z=25.0)
    assert "'acc_x' 1475 at 25 Hz (59 s): 'acc_x', 'acc_y', 'acc_z' are 1 s short" in _one_line(lambda: read_npz(p))


@pytest.mark.parametrize("layout", ["N3", "3N"])
def test_a_2d_acc_is_read_as_its_three_axes(tmp_path, layout):
    """A logger's acc (N, 3) (and the channels-first (3, N)) was dropped without a word: inspect showed ppg only and
    predict said later 'the model needs channel(s) acc_x, acc_y, acc_z'. It is acc_x, acc_y, acc_z now, at the
    file's fs, or at fs_acc when the file gives the accelerometer its own rate."""
    p = tmp_path / "watch.npz"
    a = _acc()
    np.savez(p, ppg=_ppg(), acc=a if layout == "N3" else a.T, fs=FS)
    r = read_npz(p)
    assert list(r.signals) == ["ppg", "acc_x", "acc_y", "acc_z"] and set(r.fs.values()) == {FS}
    for k, ax in enumerate(("acc_x", "acc_y", "acc_z")):
        assert np.array_equal(r.signals[ax], a[:, k])
    assert "unread_arrays" not in r.meta
    np.savez(p, ppg=_ppg(), acc=a[::2] if layout == "N3" else a[::2].T, fs_ppg=FS, fs_acc=25.0)
    r = read_npz(p)
    assert r.fs == {"ppg": 50.0, "acc_x": 25.0, "acc_y": 25.0, "acc_z": 25.0} and len(r.signals["acc_z"]) == N // 2


def test_an_acc_given_twice_is_one_line(tmp_path):
    p = tmp_path / "twice.npz"
    a = _acc()
    np.savez(p, ppg=_ppg(), acc=a, acc_x=a[:, 0], fs=FS)
    assert "both a 2-D 'acc' (3000, 3) and acc_x: give the accelerometer once" in _one_line(lambda: read_npz(p))


def test_data_inspect_names_the_arrays_it_does_not_read(tmp_path, capsys):
    """A gyro (N, 3), a 3-D array and a text note were left out without a word; `data inspect` shows the three axes
    of acc and names each member not read, with how many files hold it, in one note line (exit 0)."""
    d = tmp_path / "watch"
    d.mkdir()
    for i in range(2):
        np.savez(d / f"s{i}.npz", ppg=_ppg(), acc=_acc(), gyro=_acc(), fs=FS,
                 **({"img": np.zeros((2, 2, 2)), "note": np.array(["left wrist", "fw 1.2"])} if i == 0 else {}))
    assert main(["data", "inspect", "--data", str(d), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "channels: ppg @ 50 Hz, acc_x @ 50 Hz, acc_y @ 50 Hz, acc_z @ 50 Hz" in out
    notes = [ln for ln in out.splitlines() if "note: not read:" in ln]
    assert len(notes) == 1 and "gyro (3000, 3) (2 files)" in notes[0] and "img (2, 2, 2) (1 file)" in notes[0]
    assert "note (2,) (1 file)" in notes[0]
    assert main(["data", "inspect", "--data", str(d), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["unread_arrays"] == {"gyro (3000, 3)": 2, "img (2, 2, 2)": 1, "note (2,)": 1}


def test_a_dataset_file_names_a_2d_accs_axes_as_columns(tmp_path):
    """format: npz in a dataset file reads the same layout: a 2-D acc's axes are the columns acc_x, acc_y, acc_z."""
    from sqtool.data.dataset_file import load_dataset_file
    (tmp_path / "rec").mkdir()
    np.savez(tmp_path / "rec" / "s1_walk.npz", ppg=_ppg(), acc=_acc(), fs=FS)
    (tmp_path / "dataset.yaml").write_text(
        "format: npz\nroot: rec\nfiles: '*.npz'\nchannels:\n  ppg: ppg\n  acc_x: {column: acc_x, unit: g}\n"
        "  acc_y: {column: acc_y, unit: g}\n  acc_z: {column: acc_z, unit: g}\n")
    r, = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert list(r.signals) == ["ppg", "acc_x", "acc_y", "acc_z"] and np.array_equal(r.signals["acc_y"], _acc()[:, 1])


def test_a_dataset_files_npz_with_a_shorter_channel_is_one_line(tmp_path):
    """format: npz through a dataset file: the same span check as the plain reader (it was cut to the shortest)."""
    from sqtool.data.dataset_file import load_dataset_file
    (tmp_path / "rec").mkdir()
    p = tmp_path / "rec" / "s1_walk.npz"
    np.savez(p, ppg=_ppg(), acc=_acc(N - 100), fs=FS)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nfiles: '*.npz'\nchannels: {ppg: ppg, acc_x: acc_x}\n")
    m = _one_line(lambda: load_dataset_file(tmp_path / "dataset.yaml").records())
    assert m.startswith(f"{p}: channels of unequal length: 'ppg' has 3000 samples at 50 Hz (60 s), 'acc_x' 2900")


def test_a_2d_ppg_is_one_line_saying_how_to_store_it(tmp_path):
    """Two PPG sensors stacked into one 'ppg' matrix read as "no PPG channel"; the error names the array's shape
    and the layout the reader takes. A matrix under another name (a gyro) is still left unread, as above."""
    p = tmp_path / "two.npz"
    np.savez(p, ppg=np.stack([_ppg(), _ppg()]), acc=_acc(), fs=FS)
    assert "'ppg' has the shape (2, 3000): store one 1-D array per channel (ppg, ppg2, acc_x, ...)" in \
        _one_line(lambda: read_npz(p))
    q = tmp_path / "gyro.npz"
    np.savez(q, ppg=_ppg(), acc=_acc(), gyro=_acc(), fs=FS)
    assert list(read_npz(q).signals)[0] == "ppg"


def test_a_dataset_files_npz_member_stored_as_a_matrix_says_its_shape(tmp_path, capsys):
    """The plain NPZ reader said a stacked 'ppg' (2, N) was a matrix; read through a dataset.yaml (`format: npz`,
    `channels: {ppg: ppg}`) the same file said "column 'ppg' missing (has )". Now the same line, with the file's fix."""
    np.savez(tmp_path / "a.npz", ppg=np.stack([_ppg(), _ppg()]), fs=FS)
    (tmp_path / "dataset.yaml").write_text("format: npz\nchannels:\n  ppg: ppg\n")
    assert main(["data", "inspect", "--data", str(tmp_path / "dataset.yaml"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'a.npz'}: 'ppg' has the shape (2, 3000): store one 1-D array per " \
        "channel and name each in dataset.yaml's channels" in err


def test_a_dataset_files_npz_member_no_key_names_is_named_by_inspect(tmp_path):
    """README: an NPZ's other arrays are not read and `data inspect` names them; through a dataset.yaml it said
    nothing of an `artifact` array its channels do not name."""
    import numpy as np

    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers.summary import format_summary, summarise
    (tmp_path / "rec").mkdir()
    t = np.arange(30 * 100) / 100
    np.savez(tmp_path / "rec" / "s1.npz", pleth=np.sin(2 * np.pi * 1.2 * t), artifact=np.zeros(t.size), fs=100.0)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nfiles: '*.npz'\nchannels: {ppg: pleth}\n")
    recs = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert recs[0].meta["unread_arrays"] == ["artifact (3000,)"] and list(recs[0].signals) == ["ppg"]
    assert "note: not read: artifact (3000,) (1 file)" in format_summary(summarise("mine", records=recs))
