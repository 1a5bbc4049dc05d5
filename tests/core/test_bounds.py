"""Absurd sizes are refused up front with one line: windows, rates, one-sample records, long quality windows."""
import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import FS_MAX_HZ, WINDOW_S_MAX, ModelCfg, SqtoolError, check_fs, check_window_s


def _one_line_error(capsys, argv, needle):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0, err
    assert needle in err and "\n" not in err and "Traceback" not in err, err
    return err


def test_bounds_live_in_core():
    assert check_fs(FS_MAX_HZ) == FS_MAX_HZ and check_window_s(WINDOW_S_MAX) == WINDOW_S_MAX
    assert check_fs("125") == 125.0 and check_fs(np.float32(64)) == 64.0      # text from YAML / CSV, numpy
    for bad in (0, -1, FS_MAX_HZ * 1.01, 1e12, float("nan"), float("inf"), "x", True, np.bool_(True), None):
        with pytest.raises(SqtoolError, match="fs"):
            check_fs(bad, "fs")
    for bad in (0, -3, WINDOW_S_MAX + 1, 1e6, float("nan")):
        with pytest.raises(SqtoolError, match="window"):
            check_window_s(bad, "window")
    with pytest.raises(SqtoolError, match="window_s"):
        ModelCfg(name="m", family="resnet1d", window_s=1e6)
    with pytest.raises(SqtoolError, match="fs"):
        ModelCfg(name="m", family="resnet1d", fs=1e12)


def test_finetune_huge_window_refused_before_anything(tmp_path, capsys):
    out = tmp_path / "ft"
    err = _one_line_error(capsys, ["train", "finetune", "--data", "synthetic", "--window-s", "1e6",
                                   "--out", str(out)], "--window-s")
    assert "600" in err and not out.exists()
    _one_line_error(capsys, ["train", "finetune", "--data", "synthetic", "--fs", "1e12", "--out", str(out)],
                    "sampling rate")
    assert not out.exists()


def test_inspect_absurd_rate_refused(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_text("ppg\n" + "\n".join(str(v) for v in np.sin(np.arange(200) / 5)) + "\n")
    _one_line_error(capsys, ["data", "inspect", "--data", str(csv), "--fs", "1e12"], "sampling rate must be in")
    npz = tmp_path / "y.npz"
    np.savez(npz, ppg=np.sin(np.arange(200) / 5), fs=1e12)              # a rate stored in the file
    _one_line_error(capsys, ["data", "inspect", "--data", str(npz)], "sampling rate must be in")
    assert main(["data", "inspect", "--data", str(csv), "--fs", "100"]) == 0


def test_one_sample_record_refused(tmp_path, capsys):
    npz = tmp_path / "one.npz"
    np.savez(npz, ppg=np.array([1.0]), fs=100.0)
    _one_line_error(capsys, ["data", "inspect", "--data", str(npz)], "1 sample(s)")


def test_quality_window_longer_than_record_refused(tmp_path, capsys):
    npz = tmp_path / "short.npz"
    np.savez(npz, ppg=np.sin(np.arange(500) / 5), fs=100.0)             # 5 s
    err = _one_line_error(capsys, ["data", "quality", "--data", str(npz), "--window-s", "10"], "shorter than one")
    assert "short.npz" in err
    _one_line_error(capsys, ["data", "quality", "--data", str(npz), "--window-s", "1e6"], "--window-s")
    assert main(["data", "quality", "--data", str(npz), "--window-s", "2"]) == 0


def test_pairs_absurd_sizes_refused(tmp_path, capsys):
    base = ["data", "pairs", "--data", "synthetic", "--out", str(tmp_path / "p")]
    _one_line_error(capsys, base + ["--window-s", "1e6"], "--window-s")
    _one_line_error(capsys, base + ["--fs", "1e12"], "--fs")
    assert not (tmp_path / "p").exists()
