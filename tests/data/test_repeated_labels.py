"""A WFDB / EDF record whose signal labels repeat (EDF cuts them to 16 characters: an accelerometer's three axes
all 'wrist_low_noise_') gives each position its own column: acc_x, acc_y, acc_z by position read their own axes
(all three read the last one), and the repeated label by name is one line naming the positions."""
from __future__ import annotations

import numpy as np
import pytest
import wfdb

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file

FS = 64


def record(tmp_path):
    (tmp_path / "rec").mkdir()
    t = np.arange(60 * FS) / FS
    sig = np.column_stack([np.sin(2 * np.pi * 1.2 * t), 0.1 + 0.01 * t / 60, 0.2 + 0.0 * t, 0.9 + 0.0 * t])
    wfdb.wrsamp("s1_run", fs=FS, units=["au", "g", "g", "g"], sig_name=["PLETH", "accA", "accB", "accC"],
                p_signal=sig, fmt=["16"] * 4, adc_gain=[3000.0] * 4, baseline=[0] * 4, write_dir=str(tmp_path / "rec"))
    hea = tmp_path / "rec" / "s1_run.hea"             # wfdb writes unique names only; an EDF's cut labels repeat
    hea.write_text(hea.read_text().replace(" accA", " wrist_acc").replace(" accB", " wrist_acc")
                   .replace(" accC", " wrist_acc"))
    return sig


YAML = "format: wfdb\nroot: rec\nfiles: '*.hea'\nchannels:\n  ppg: 0\n"


def test_repeated_labels_are_read_by_position(tmp_path):
    sig = record(tmp_path)
    (tmp_path / "dataset.yaml").write_text(YAML + "  acc_x: 1\n  acc_y: 2\n  acc_z: 3\n")
    r = load_dataset_file(tmp_path / "dataset.yaml").records()[0]
    for k, ch in enumerate(("acc_x", "acc_y", "acc_z"), start=1):
        assert np.abs(r.signals[ch] - sig[:, k]).max() < 1e-3, ch


def test_a_repeated_label_by_name_is_one_line_naming_its_positions(tmp_path):
    record(tmp_path)
    (tmp_path / "dataset.yaml").write_text(YAML + "  acc_x: wrist_acc\n")
    with pytest.raises(SqtoolError, match=r"channel 'acc_x': column 'wrist_acc' names 3 columns \(positions 1, 2, 3\); "
                                          r"give the position instead, e.g. \{column: 1\}"):
        load_dataset_file(tmp_path / "dataset.yaml").records()
