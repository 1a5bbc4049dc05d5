"""A recording whose only PPG is one wavelength ("PPG Green" from a watch's export, ppg_ir in an NPZ) reads that
channel as its ppg (`generic._lone_wavelength`), and `data inspect` says which column it took; several wavelengths
stay as they are, the choice the user's (a dataset.yaml), and inspect warns that no model finds a ppg."""
from __future__ import annotations

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.data.readers import read_csv, read_npz

FS = 50.0
T = np.arange(int(60 * FS)) / FS
PULSE = np.sin(2 * np.pi * 1.5 * T)


def _csv(path, cols: dict) -> str:
    names = ["time", *cols]
    rows = [",".join(names)] + [",".join([f"{T[i]:.2f}", *(f"{c[i]:.5f}" for c in cols.values())])
                                for i in range(T.size)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.mark.parametrize("column", ["PPG Green", "ppg_ir", "RED"])
def test_a_lone_wavelength_column_is_the_ppg(tmp_path, column):
    rec = read_csv(_csv(tmp_path / "w.csv", {column: PULSE, "acc_x": 0 * T}))
    assert list(rec.signals) == ["ppg", "acc_x"] and rec.meta["ppg_from"] == column
    np.testing.assert_allclose(rec.signals["ppg"], PULSE, atol=1e-5)


def test_a_plain_ppg_or_several_wavelengths_stay_as_named(tmp_path):
    rec = read_csv(_csv(tmp_path / "a.csv", {"ppg": PULSE, "ppg_red": PULSE}))
    assert set(rec.signals) == {"ppg", "ppg_red"} and "ppg_from" not in rec.meta
    rec = read_csv(_csv(tmp_path / "b.csv", {"PPG Green": PULSE, "PPG Red": PULSE}))
    assert set(rec.signals) == {"ppg_green", "ppg_red"} and "ppg_from" not in rec.meta
    rec = read_csv(_csv(tmp_path / "c.csv", {"PPG Green": PULSE}), channels={"PPG Green": "ppg_green"})
    assert list(rec.signals) == ["ppg_green"]                        # named explicitly: kept as named


def test_an_npz_lone_wavelength_is_the_ppg(tmp_path):
    p = tmp_path / "w.npz"
    np.savez(p, ppg_ir=PULSE, acc_x=0 * T, fs=FS)
    rec = read_npz(p)
    assert list(rec.signals) == ["ppg", "acc_x"] and rec.meta["ppg_from"] == "ppg_ir" and rec.fs["ppg"] == FS


def test_inspect_names_the_column_it_took_and_warns_on_several(tmp_path, capsys):
    one = _csv(tmp_path / "one.csv", {"PPG Green": PULSE})
    assert main(["data", "inspect", "--data", one]) == 0
    out = capsys.readouterr().out
    assert "channels: ppg @ 50 Hz" in out and "note: ppg read from 'PPG Green' (1/1)" in out
    two = _csv(tmp_path / "two.csv", {"PPG Green": PULSE, "PPG Red": PULSE})
    assert main(["data", "inspect", "--data", two]) == 0
    out = capsys.readouterr().out
    assert "warning: no ppg channel but 2 PPG wavelengths (ppg_green, ppg_red)" in out
    assert "channels: {ppg: <column>}" in out
