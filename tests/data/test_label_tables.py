"""Label tables of a dataset file (rhythm, bp, quality: one row per recording or rhythm segment): a table that does
not fit its recordings is one line naming the table, never a traceback or a silently wrong label."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file

FS = 50.0
RECS = ("s1_a", "s1_b", "s2_a", "s2_b", "s3_a", "s3_b")


def project(tmp_path: Path, label: str, table: str, extra: str = "") -> Path:
    """Six 20 s PPG recordings of three subjects and a dataset.yaml whose `label` comes from `table` (CSV text)."""
    rec = tmp_path / "rec"
    rec.mkdir(exist_ok=True)
    t = np.arange(int(20 * FS)) / FS
    for i, name in enumerate(RECS):
        np.savetxt(rec / f"{name}.csv", np.sin(2 * np.pi * (1.0 + 0.1 * i) * t), header="ppg", comments="",
                   fmt="%.5f")
    (tmp_path / "table.csv").write_text(table)
    y = tmp_path / "dataset.yaml"
    y.write_text(f"format: csv\nroot: rec\nfs: {FS:g}\nchannels: {{ppg: ppg}}\n"
                 f"subject: {{pattern: '^(s[0-9])_'}}\nlabels: {{{label}: {{table: table.csv{extra}}}}}\n")
    return y


def rows(col: str, values) -> str:
    return f"recording,{col}\n" + "".join(f"{r},{v}\n" for r, v in zip(RECS, values))


def err(y: Path) -> str:
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_missing_column_is_one_line_naming_table_and_column(tmp_path):
    y = project(tmp_path, "rhythm", "recording,rhythm,start_s\n" + "".join(f"{r},AF,0\n" for r in RECS))
    m = err(y)
    assert str(tmp_path / "table.csv") in m and "'start_s' but no 'end_s' column" in m
    (tmp_path / "table.csv").write_text(rows("sbp", [120] * 6))
    m = err(project(tmp_path, "bp", rows("sbp", [120] * 6)))
    assert "the bp table has no 'dbp' column (needs recording, sbp, dbp; has recording, sbp)" in m
    m = err(project(tmp_path, "quality", rows("good", [1] * 6)))
    assert "the quality table has no 'quality' column" in m
    m = err(project(tmp_path, "bp", "recording,sbp,dbp\n" + "".join(f"{r},120,high\n" for r in RECS)))
    assert "column 'dbp' row 1 is not a number ('high')" in m
