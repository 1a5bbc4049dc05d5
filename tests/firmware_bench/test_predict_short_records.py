"""A model trained on recordings shorter than its window predicts on such recordings (audit find_clin 1).

`train finetune --task bp` tiles each 2.1 s PPG-BP segment end to end to fill the 8 s window; the exported model then
refused exactly such recordings ("no recording is as long as one 8 s window"). The export's metadata says what the
task's training data did with a short recording (short_records: "tile" for af / bp / quality, "refuse" for hr / rr),
and predict tiles a short recording with the same function (`sqtool.data.record.tile_record`) for a "tile" model: one
window per recording. An export from before the key keeps refusing them."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from fwb_helpers import write_wrist_npz

from sqtool.core import SqtoolError
from sqtool.firmware_bench.predict import PredictConfig, predict


def _bp_export(root: Path, monkeypatch=None) -> Path:
    from export_fixtures import make_int8_run

    from sqtool.data.tasks import task_model_cfg
    from sqtool.export.cli import ExportConfig, export
    from sqtool.models import get_model_cfg
    mc = task_model_cfg("bp", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)).replace(
        target_mean=(120.0, 80.0), target_std=(15.0, 10.0))
    run = make_int8_run(root / "quantize", mc, n_heldout=4)
    exp = export(ExportConfig(model=str(run), target=["c"], out=str(root / "export")))
    assert exp["failed"] == [], exp["summary"]
    return Path(exp["out"])


@pytest.fixture(scope="module")
def bp_export(tmp_path_factory):
    return _bp_export(tmp_path_factory.mktemp("bp"))


def _segments(folder: Path, n: int = 2, seconds: float = 2.1) -> Path:
    """PPG-BP-like segments: `seconds` of PPG at 1000 Hz, no accelerometer."""
    folder.mkdir()
    for i in range(n):
        write_wrist_npz(folder / f"subj{i:03d}_seg1.npz", seconds=seconds, fs=1000.0, hr_bpm=70 + 10 * i,
                        acc=False, seed=i)
    return folder


def _rows(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_the_export_says_what_training_did_with_a_short_recording(bp_export, export_dir):
    assert json.loads((bp_export / "metadata.json").read_text())["short_records"] == "tile"
    assert json.loads((export_dir / "metadata.json").read_text())["short_records"] == "refuse"      # hr


def test_a_bp_model_predicts_on_segments_like_its_training_ones(bp_export, tmp_path, capsys):
    from sqtool.cli import main
    from sqtool.data.readers import read_dataset
    from sqtool.data.record import tile_record
    data = _segments(tmp_path / "new")
    out = tmp_path / "p"
    assert main(["predict", "--model", str(bp_export), "--data", str(data), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "note: 2 recordings shorter than the 8 s window tiled to it" in stdout and "WARNING" not in stdout
    s = json.loads((out / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["subj000_seg1", "subj001_seg1"]
    for r in s["recordings"]:
        assert r["windows"] == 1 and r["tiled_from_s"] == pytest.approx(2.1) and r["seconds"] == pytest.approx(2.1)
        head, rows = _rows(out / r["csv"])
        assert head == ["time_s", "sbp", "dbp", "flagged"] and len(rows) == 1
    # the same numbers as the recording tiled by hand (the one tiling function, as training's `_Acc.filled`)
    by_hand = tmp_path / "by_hand"
    by_hand.mkdir()
    for rec in read_dataset(data):
        t = tile_record(rec, 8.0)
        np.savez(by_hand / f"{rec.record_id}.npz", ppg=t.signals["ppg"], fs=np.float64(t.fs["ppg"]))
    ref = predict(PredictConfig(model=str(bp_export), data=str(by_hand), out=str(tmp_path / "ref")))
    assert "notes" not in ref                                    # 8 s + one sample: nothing left to tile
    for r, q in zip(s["recordings"], ref["recordings"]):
        assert _rows(out / r["csv"])[1] == _rows(tmp_path / "ref" / q["csv"])[1]


def test_an_export_from_before_short_records_keeps_refusing(tmp_path, monkeypatch):
    import sqtool.export.metadata as M
    build = M.build_metadata

    def old(*a, **kw):                                           # metadata.json as exports wrote it before the key
        md = build(*a, **kw)
        md.pop("short_records")
        md.pop("short_records_note")
        return md
    monkeypatch.setattr(M, "build_metadata", old)
    export = _bp_export(tmp_path / "old")
    assert "short_records" not in json.loads((export / "metadata.json").read_text())
    data = _segments(tmp_path / "new")
    with pytest.raises(SqtoolError, match=r"no recording is as long as one 8 s window \(2 recordings"):
        predict(PredictConfig(model=str(export), data=str(data), out=str(tmp_path / "p")))


def test_a_long_recording_is_windowed_as_before(bp_export, tmp_path):
    """A recording of a window or longer is not tiled: its windows as before, no note."""
    rec = write_wrist_npz(tmp_path / "w.npz", seconds=30, acc=False)
    res = predict(PredictConfig(model=str(bp_export), data=str(rec), out=str(tmp_path / "p")))
    r = res["recordings"][0]
    assert r["windows"] > 1 and "tiled_from_s" not in r and "notes" not in res
