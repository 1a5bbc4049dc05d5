"""A dataset.yaml recording keeps its first sample's wall-clock time (Record.meta['start_time']), as the plain
CSV / NPZ readers do, so `sqtool predict --data dataset.yaml` writes the absolute time column too."""
from __future__ import annotations

import numpy as np

from sqtool.data.dataset_file import load_dataset_file


def _csv(folder, t, n_cols=2):
    folder.mkdir(parents=True, exist_ok=True)
    x = np.sin(2 * np.pi * 1.2 * np.arange(len(t)) / 64.0)
    lines = ["time_ms,ppg"] + [f"{a},{b:.5f}" for a, b in zip(t, x)]
    (folder / "s1.csv").write_text("\n".join(lines) + "\n")


def test_an_epoch_ms_time_column_gives_the_start_time(tmp_path):
    t0 = 1_774_728_000_000                                      # 2026-03-28T20:00:00Z in ms
    _csv(tmp_path / "rec", t0 + np.round(np.arange(64 * 30) * 1000 / 64).astype(np.int64))
    (tmp_path / "dataset.yaml").write_text("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time_ms\n"
                                           "time_unit: ms\nchannels: {ppg: ppg}\n")
    (rec,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert rec.meta["start_time"] == "2026-03-28T20:00:00.000Z" and rec.fs["ppg"] == 64.0


def test_seconds_from_a_start_give_no_wall_clock(tmp_path):
    _csv(tmp_path / "rec", np.arange(64 * 30) / 64.0)
    (tmp_path / "dataset.yaml").write_text("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time_ms\n"
                                           "time_unit: s\nchannels: {ppg: ppg}\n")
    (rec,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert "start_time" not in rec.meta


def test_an_npz_start_time_is_kept(tmp_path):
    (tmp_path / "rec").mkdir()
    x = np.sin(2 * np.pi * 1.2 * np.arange(64 * 30) / 64.0)
    np.savez(tmp_path / "rec" / "s1.npz", ppg=x, fs=64.0, start_time="2026-03-29T01:30:00+01:00")
    (tmp_path / "dataset.yaml").write_text("format: npz\nroot: rec\nfiles: '*.npz'\nchannels: {ppg: ppg}\n")
    (rec,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert rec.meta["start_time"] == "2026-03-29T01:30:00.000+01:00"


def test_a_wfdb_header_base_date_and_time_is_kept(tmp_path):
    import datetime

    import wfdb
    (tmp_path / "rec").mkdir()
    x = np.sin(2 * np.pi * 1.2 * np.arange(64 * 30) / 64.0)
    wfdb.wrsamp("s1", fs=64, units=["NU"], sig_name=["PLETH"], p_signal=x[:, None], fmt=["16"],
                base_time=datetime.time(8, 15, 30), base_date=datetime.date(2026, 3, 28), write_dir=str(tmp_path / "rec"))
    (tmp_path / "dataset.yaml").write_text("format: wfdb\nroot: rec\nchannels: {ppg: PLETH}\n")
    (rec,) = load_dataset_file(tmp_path / "dataset.yaml").records()
    assert rec.meta["start_time"] == "2026-03-28T08:15:30.000"          # the header's naive local time
    from sqtool.data.readers import read_wfdb
    assert read_wfdb(tmp_path / "rec" / "s1.hea").meta["start_time"] == "2026-03-28T08:15:30.000"   # read directly too
