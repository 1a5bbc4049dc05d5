"""Reader faults found by fuzzing the input readers (notes s36 find_fuzz): each one line naming the file."""
import os

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.readers import read_dataset


def _one_line_error(capsys, args) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sqtool: error: ") and "\n" not in err
    return err


# ----------------------------------------------------------------------------- --data not a file or folder

@pytest.mark.parametrize("kind", ["symlink_to_dev_null", "fifo"])
def test_device_or_pipe_as_data_is_not_a_permission_problem(tmp_path, capsys, kind):
    p = tmp_path / "z.csv"
    if kind == "fifo":
        os.mkfifo(p)
    else:
        p.symlink_to("/dev/null")                  # a character device, as /dev/zero
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(p)])
    assert f"{p}: not a regular file or folder" in err and "permission" not in err


def test_require_file_names_a_device(tmp_path):
    from sqtool.data.readers._common import require_file
    p = tmp_path / "rec.csv"
    p.symlink_to("/dev/null")
    with pytest.raises(SqtoolError, match="not a regular file") as e:
        require_file(p)
    assert "folder" not in str(e.value)


# ----------------------------------------------------------------------------- WFDB header rate field

def _wfdb(d, fs=125):
    import wfdb
    d.mkdir(exist_ok=True)
    x = np.sin(np.arange(20 * fs) * 2 * np.pi * 1.3 / fs)[:, None]
    wfdb.wrsamp("rec", fs=fs, units=["NU"], sig_name=["PLETH"], p_signal=x, fmt=["16"], write_dir=str(d))
    return d / "rec.hea"


def _set_rate(hea, field):
    lines = hea.read_text().splitlines()
    tok = lines[0].split()
    tok[2] = field
    hea.write_text("\n".join([" ".join(tok), *lines[1:]]) + "\n")


@pytest.mark.parametrize("field, said", [
    ("abc", "is not a number"), ("12five", "is not a number"), ("nan", "is not a finite positive number"),
    ("inf", "is not a finite positive number"), ("-125", "is not a finite positive number"),
    ("1e9", "read as 1 Hz by the wfdb package, not 1e+09"), ("1.25e2", "read as 1.25 Hz"),
])
def test_wfdb_rate_field_that_wfdb_misreads_is_one_line(tmp_path, capsys, field, said):
    hea = _wfdb(tmp_path / "rec")
    _set_rate(hea, field)
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(hea)])
    assert f"{hea}: sampling rate field '{field}' " in err and said in err


@pytest.mark.parametrize("field, fs", [("125", 125.0), ("125.0/1000(0)", 125.0), ("62.5", 62.5)])
def test_wfdb_plain_rate_fields_still_read(tmp_path, field, fs):
    from sqtool.data.readers import read_wfdb
    hea = _wfdb(tmp_path / "rec")
    _set_rate(hea, field)
    assert read_wfdb(hea).fs["ppg"] == fs


def test_wfdb_header_without_rate_keeps_the_wfdb_default(tmp_path):
    from sqtool.data.readers import read_wfdb
    hea = _wfdb(tmp_path / "rec", fs=250)
    lines = hea.read_text().splitlines()
    hea.write_text("# a comment line first\n" + " ".join(lines[0].split()[:2]) + "\n" + "\n".join(lines[1:]) + "\n")
    assert read_wfdb(hea).fs["ppg"] == 250.0


def test_wfdb_rate_field_checked_through_a_dataset_yaml(tmp_path):
    from sqtool.data.dataset_file import load_dataset_file
    hea = _wfdb(tmp_path / "rec")
    (tmp_path / "dataset.yaml").write_text("format: wfdb\nroot: rec\nchannels: {ppg: PLETH}\n")
    assert load_dataset_file(tmp_path / "dataset.yaml").records()[0].fs["ppg"] == 125.0
    _set_rate(hea, "abc")
    with pytest.raises(SqtoolError, match=r"rec\.hea: sampling rate field 'abc' is not a number"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


# ----------------------------------------------------------------------------- built-in labels: plausible range

def _troika(root, bpm, n=2000):
    import scipy.io as sio
    from sqtool.data.readers import troika
    root.mkdir()
    rng = np.random.default_rng(0)
    sio.savemat(root / "DATA_01_TYPE01.mat", {"sig": rng.standard_normal((6, n))})
    w = troika.n_windows(n)
    bpm = np.full(w, 80.0) if bpm is None else np.array(list(bpm) if isinstance(bpm, str) else bpm)
    sio.savemat(root / "DATA_01_TYPE01_BPMtrace.mat", {"BPM0": bpm.reshape(-1, 1)})
    return root


@pytest.mark.parametrize("bad", [1e9, 0.0, -5.0])
def test_troika_folder_refuses_implausible_bpm(tmp_path, capsys, bad):
    from sqtool.data.readers import troika
    root = _troika(tmp_path / "troika", [80.0] * (troika.n_windows(2000) - 1) + [bad])
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(root)])
    assert f"DATA_01_TYPE01_BPMtrace.mat: BPM0: 1 hr value(s) outside the plausible 20-300 BPM, e.g. {bad:g} " \
           f"(window {troika.n_windows(2000)})" in err
    assert "hr" in read_dataset(_troika(tmp_path / "ok", None))[0].labels          # 80 BPM reads


def test_but_ppg_folder_refuses_implausible_reference_hr(data_root, tmp_path):
    import shutil
    root = tmp_path / "but_ppg"
    shutil.copytree(data_root / "but_ppg", root)
    f = root / "database" / "myData.csv"
    lines = f.read_text().splitlines(keepends=True)
    head, first = lines[1].split(" ", 2)[:2], lines[1].split(" ", 2)[2]
    lines[1] = f"{head[0]} 1000000000 {first}"                     # RefHR of the first record
    f.write_text("".join(lines))
    with pytest.raises(SqtoolError, match=rf"myData\.csv: record {head[0]}: label 'hr': 1 hr value\(s\) outside "
                                          r"the plausible 20-300 BPM, e.g. 1e\+09 \(its value\)"):
        read_dataset(root)


def test_plausible_labels_refuse_swapped_bp():
    from sqtool.data.readers._common import check_plausible_labels
    from sqtool.data.record import Label
    ok = {"sbp": Label(values=np.array(120.0), unit="mmHg"), "dbp": Label(values=np.array(80.0), unit="mmHg")}
    check_plausible_labels(ok, "f.xlsx: subject 1")
    with pytest.raises(SqtoolError, match="f.xlsx: subject 1: labels 'sbp', 'dbp': 1 row"):
        check_plausible_labels({"sbp": ok["dbp"], "dbp": ok["sbp"]}, "f.xlsx: subject 1")
    with pytest.raises(SqtoolError, match="label 'dbp': 1 dbp value"):
        check_plausible_labels({"dbp": Label(values=np.array(0.0), unit="mmHg")}, "f.xlsx: subject 1")


# ----------------------------------------------------------------------------- MATLAB variables holding text

def test_troika_bpm0_holding_text_is_one_line(tmp_path, capsys):
    from sqtool.data.readers import troika
    root = _troika(tmp_path / "troika", "x" * troika.n_windows(2000))
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(root)])
    assert f"{root / 'DATA_01_TYPE01_BPMtrace.mat'}: variable 'BPM0' is not numeric (dtype <U" in err
    assert "ValueError" not in err


def test_troika_sig_holding_text_is_one_line(tmp_path):
    import scipy.io as sio
    root = _troika(tmp_path / "troika", None)
    sio.savemat(root / "DATA_01_TYPE01.mat", {"sig": np.array(["a" * 2000] * 6)})
    with pytest.raises(SqtoolError, match=r"DATA_01_TYPE01\.mat: variable 'sig' is not numeric \(dtype <U2000\)"):
        read_dataset(root)


def test_ppg_arrhythmia_segments_holding_text_are_one_line(data_root, tmp_path):
    import scipy.io as sio
    from sqtool.data.readers import ppg_arrhythmia
    src = next(p for p in (data_root / "ppg_arrhythmia").rglob("*.mat"))
    d = {k: v for k, v in sio.loadmat(src).items() if not k.startswith("__")}
    d["ppgseg"] = np.array(["abc"] * 3)
    bad = tmp_path / src.name
    sio.savemat(bad, d)
    with pytest.raises(SqtoolError, match=rf"{bad.name}: variable 'ppgseg' is not numeric"):
        ppg_arrhythmia.read_item(bad, {"root": tmp_path})


# ----------------------------------------------------------------------------- complex samples

def _complex_ppg(n=2000):
    return (np.sin(np.arange(n) / 5) + 1j * np.cos(np.arange(n) / 5)).astype(np.complex128)


def test_npz_complex_samples_are_refused(tmp_path, capsys):
    p = tmp_path / "rec.npz"
    np.savez(p, ppg=_complex_ppg(), fs=64.0)
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(p)])
    assert f"{p}: array 'ppg' must hold real numbers, got complex128 samples" in err


def test_npz_complex_samples_are_refused_through_a_dataset_yaml(tmp_path):
    from sqtool.data.dataset_file import load_dataset_file
    (tmp_path / "rec").mkdir()
    np.savez(tmp_path / "rec" / "a.npz", ppg=_complex_ppg(), fs=64.0)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match=r"a\.npz: array 'ppg' must hold real numbers, got complex128 samples"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


def test_npz_complex_rate_is_refused_through_a_dataset_yaml(tmp_path):
    """A complex `fs` was a bare TypeError (float() of a complex) on the dataset.yaml path."""
    from sqtool.data.dataset_file import load_dataset_file
    (tmp_path / "rec").mkdir()
    np.savez(tmp_path / "rec" / "a.npz", ppg=_complex_ppg().real, fs=np.complex128(64 + 1j))
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match=r"a\.npz: array 'fs' must hold real numbers, got complex128 samples"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


@pytest.mark.parametrize("fs", [np.array("abc"), np.array([64.0, 32.0])])
def test_npz_rate_that_is_no_number_is_one_line_through_a_dataset_yaml(tmp_path, fs):
    """fs 'abc' or two numbers was a bare ValueError (float() / .item()) on the dataset.yaml path."""
    from sqtool.data.dataset_file import load_dataset_file
    (tmp_path / "rec").mkdir()
    np.savez(tmp_path / "rec" / "a.npz", ppg=_complex_ppg().real, fs=fs)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match=r"a\.npz: 'fs': sampling rate .* is not a number"):
        load_dataset_file(tmp_path / "dataset.yaml").records()


def test_npz_rates_rule():
    """An array's own fs_<name> wins over the file's fs, which wins over the default; a one-element array is its
    number; the rate that applies is checked and its error names what `said` says; one that applies to nothing is
    not read."""
    from sqtool.data.readers._common import npz_rates
    said = lambda name, key: f"f.npz: {name} from {key}"                     # noqa: E731
    stored = {"fs": np.float64(64.0), "fs_acc_x": np.array([32.0]), "fs_gone": np.array("abc")}
    assert npz_rates(stored, ["ppg", "acc_x"], said) == {"ppg": 64.0, "acc_x": 32.0}
    assert npz_rates({"fs_acc_x": np.array(32.0)}, ["ppg", "acc_x"], said) == {"acc_x": 32.0}    # ppg: none
    assert npz_rates({}, ["ppg"], said, default=100) == {"ppg": 100.0}
    with pytest.raises(SqtoolError, match=r"^f\.npz: ppg from fs: sampling rate must be in \(0, "):
        npz_rates({"fs": np.float64(0.0)}, ["ppg"], said)
    with pytest.raises(SqtoolError, match=r"^f\.npz: acc_x from fs_acc_x: sampling rate array\(\[64\., 32\.\]\) is "
                                          r"not a number"):
        npz_rates({"fs": np.float64(64.0), "fs_acc_x": np.array([64.0, 32.0])}, ["ppg", "acc_x"], said)
    with pytest.raises(SqtoolError, match=r"^f\.npz: ppg from None: sampling rate must be in"):
        npz_rates({}, ["ppg"], said, default=-1.0)


@pytest.mark.parametrize("rates", [dict(fs=np.array("abc"), fs_ppg=64.0), dict(fs=64.0, fs_other=np.array("abc"))])
def test_npz_rate_no_array_uses_is_left_alone_on_both_paths(tmp_path, rates):
    """One rule (npz_rates) for --data a.npz and a dataset.yaml: a stored rate no array takes (`fs` where every array
    has its own fs_<name>, an fs_<name> without its array) is not read on either; the dataset.yaml path refused it."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_npz
    (tmp_path / "rec").mkdir()
    np.savez(tmp_path / "rec" / "a.npz", ppg=np.sin(np.arange(2000) / 5), **rates)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n")
    assert read_npz(tmp_path / "rec" / "a.npz").fs == {"ppg": 64.0}
    assert load_dataset_file(tmp_path / "dataset.yaml").records()[0].fs == {"ppg": 64.0}


def test_npz_channel_whose_name_starts_with_fs_is_a_channel(tmp_path):
    """Only `fs` and `fs_<name>` are rates: an array named like a force-sensing resistor ('fsr') is a channel on
    both paths (the dataset.yaml path dropped every name starting with 'fs')."""
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.readers import read_npz
    (tmp_path / "rec").mkdir()
    x = np.sin(np.arange(2000) / 5)
    np.savez(tmp_path / "rec" / "a.npz", ppg=x, fsr=x + 1, fs=64.0)
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg, acc_x: fsr}\n")
    assert set(read_npz(tmp_path / "rec" / "a.npz").signals) == {"ppg", "fsr"}
    rec = load_dataset_file(tmp_path / "dataset.yaml").records()[0]
    assert rec.fs == {"ppg": 64.0, "acc_x": 64.0} and np.allclose(rec.signals["acc_x"], x + 1)


def test_troika_complex_sig_is_refused(tmp_path):
    import scipy.io as sio
    root = _troika(tmp_path / "troika", None)
    sio.savemat(root / "DATA_01_TYPE01.mat", {"sig": np.tile(_complex_ppg(), (6, 1))})
    with pytest.raises(SqtoolError, match=r"DATA_01_TYPE01\.mat: variable 'sig' must hold real numbers, got complex"):
        read_dataset(root)


# ----------------------------------------------------------------------------- NPZ zip bomb

def _bomb(p, n=4_000_000):
    """A 64 Hz recording plus an unused 1-D member of n zeros: 32 MB inflated from about 30 kB."""
    np.savez_compressed(p, ppg=np.sin(np.arange(2000) / 5), fs=64.0, ppg2=np.zeros(n))
    return p


def test_npz_zip_bomb_is_refused_before_inflating(tmp_path, capsys, monkeypatch):
    from sqtool.data.readers import _common
    monkeypatch.setattr(_common, "MAX_NPZ_BYTES", 16 * 1024 ** 2, raising=False)      # 16 MiB instead of 2 GiB
    p = _bomb(tmp_path / "bomb.npz")
    assert p.stat().st_size < 100_000
    inflated = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: inflated.append(1))
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(p)])
    assert f"{p}: .npz members inflate to 31 MiB, over the 16 MiB sqtool reads from one file (a zip bomb?)" in err
    assert inflated == []                                                           # nothing was inflated


def test_npz_zip_bomb_is_refused_through_a_dataset_yaml(tmp_path, monkeypatch):
    from sqtool.data import dataset_file
    from sqtool.data.readers import _common
    monkeypatch.setattr(_common, "MAX_NPZ_BYTES", 16 * 1024 ** 2, raising=False)
    (tmp_path / "rec").mkdir()
    _bomb(tmp_path / "rec" / "a.npz")
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\n")
    with pytest.raises(SqtoolError, match=r"a\.npz: \.npz members inflate to 31 MiB, over the 16 MiB"):
        dataset_file.load_dataset_file(tmp_path / "dataset.yaml").records()


def test_npz_members_that_are_never_used_are_not_read(tmp_path):
    """A 2-D array nobody reads (here a pickled object array np.load would refuse to load) is left alone."""
    from sqtool.data.readers import read_npz
    p = tmp_path / "rec.npz"
    np.savez(p, ppg=np.sin(np.arange(2000) / 5), fs=64.0, junk=np.array([[{"a": 1}]], dtype=object))
    r = read_npz(p)
    assert list(r.signals) == ["ppg"] and r.fs["ppg"] == 64.0
    np.savez(p, ppg=np.array([{"a": 1}] * 3, dtype=object), fs=64.0)     # a 1-D one is read: one line saying so
    with pytest.raises(SqtoolError, match=r"rec.npz: member 'ppg' is an object \(pickled\) array; save it as a "
                                          r"numeric array"):
        read_npz(p)


def test_npz_members_are_opened_once(tmp_path, monkeypatch):
    """Each member is opened once: a kept array is read on from the header that decided to keep it (it was opened
    a second time for its data), an unused one is left after its header."""
    import zipfile
    from sqtool.data.readers import read_npz
    p = tmp_path / "rec.npz"
    np.savez_compressed(p, ppg=np.sin(np.arange(2000) / 5), fs=64.0, junk=np.ones((3, 4)))
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: (
        opened.append(getattr(name, "filename", name)), real_open(self, name, *a, **k))[1])
    r = read_npz(p)
    assert sorted(opened) == ["fs.npy", "junk.npy", "ppg.npy"]
    assert r.fs == {"ppg": 64.0} and np.allclose(r.signals["ppg"], np.sin(np.arange(2000) / 5))


def test_npz_member_claiming_more_than_it_holds_is_one_line(tmp_path):
    import zipfile
    from sqtool.data.readers import read_npz
    p = tmp_path / "rec.npz"
    np.savez(p, ppg=np.sin(np.arange(2000) / 5), fs=64.0)
    with zipfile.ZipFile(p) as z:
        raw = z.read("ppg.npy")
    raw = raw.replace(b"(2000,)", b"(9000,)")                           # the header lies about the length
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("ppg.npy", raw)
        z.writestr("fs.npy", _npy_bytes(np.float64(64.0)))
    with pytest.raises(SqtoolError, match=r"corrupt or truncated \.npz \(member 'ppg' claims shape \(9000,\)"):
        read_npz(p)


def _npy_bytes(a):
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()
