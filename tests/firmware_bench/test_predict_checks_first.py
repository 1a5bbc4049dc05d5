"""`sqtool predict` refuses what it can refuse cheaply (the model folder, --runtime) before it reads any recording, and
reads --data one file at a time, so a file at a rate the model cannot take stops it before the files after it are
read (it read the whole folder first, then refused the model's options or the first file's rate)."""
from __future__ import annotations

import pytest
from fwb_helpers import write_wrist_npz

import sqtool.data.readers as readers
from sqtool.cli import main


@pytest.fixture
def reads(monkeypatch):
    """The files the readers read (`readers.read_item`, one call per file of a folder), in order."""
    seen = []
    real = readers.read_item

    def counted(kind, item, *a, **kw):
        seen.append(str(item))
        return real(kind, item, *a, **kw)
    monkeypatch.setattr(readers, "read_item", counted)
    return seen


def _folder(tmp_path, rates=(125.0,)):
    data = tmp_path / "data"
    data.mkdir()
    for i, fs in enumerate(rates):
        write_wrist_npz(data / f"r{i}.npz", seconds=30, fs=fs)
    return data


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_a_bad_model_path_is_said_before_any_recording_is_read(tmp_path, capsys, reads):
    data = _folder(tmp_path)
    rc = main(["predict", "--model", str(tmp_path / "no_export"), "--data", str(data), "--out", str(tmp_path / "p")])
    assert rc == 1 and _one_line(capsys) == f"sqtool: error: export {tmp_path / 'no_export'} does not exist"
    assert reads == [] and not (tmp_path / "p").exists()


def test_an_unknown_runtime_is_said_before_any_recording_is_read(spec_export_dir, tmp_path, capsys, reads):
    data = _folder(tmp_path)
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--runtime", "gpu",
               "--out", str(tmp_path / "p"), "--no-progress"])
    assert rc == 1 and "--runtime gpu: unknown (choose c_pipeline, c, tflite" in _one_line(capsys)
    assert reads == [] and not (tmp_path / "p").exists()


def test_a_file_at_a_rate_the_model_cannot_take_stops_the_read_there(spec_export_dir, tmp_path, capsys, reads):
    """r0.npz at 10 Hz (the spectral front end cannot take it), then r1.npz at 125 Hz: one line naming r0 and its
    rate, and r1 never read."""
    data = _folder(tmp_path, rates=(10.0, 125.0))
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(tmp_path / "p"),
               "--no-progress"])
    line = _one_line(capsys)
    assert rc == 1 and "npz/r0: the front end cannot take 10 Hz" in line
    assert [p.rpartition("/")[2] for p in reads] == ["r0.npz"] and not (tmp_path / "p").exists()
