"""One recording of a dataset described by a dataset.yaml (a stream-file layout: a folder per session, ppg.csv and
acc.csv with the device's column names): `predict --data its ppg.csv` is refused naming the dataset.yaml above it
and the --recordings that picks it (it said "name yours in a dataset.yaml" of a file one already describes), and
`--data dataset.yaml --recordings PATTERN` predicts that recording alone (it predicted every one); bench alike."""
from __future__ import annotations

import json

from sqtool.cli import main
from tests.data.test_dataset_stream_files import _streams


def test_predict_one_recording_of_a_dataset_file(spec_export_dir, tmp_path, monkeypatch, capsys):
    y = _streams(tmp_path / "watch")
    monkeypatch.chdir(tmp_path)
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "watch/rec/s02/ppg.csv", "--out", "p0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].endswith("(watch/dataset.yaml in a folder above describes it: give --data "
                                        "watch/dataset.yaml --recordings s02/ppg)"), err
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "watch/dataset.yaml", "--recordings", "s02",
               "--out", "p1"])
    assert rc == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "p1" / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["s02/ppg"], s["recordings"]
    assert sorted(p.name for p in (tmp_path / "p1").glob("*.csv")) == ["s02_ppg.csv"]
    nxt = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: ")]
    assert nxt and "/watch/dataset.yaml --recordings s02 " in nxt[0], nxt     # bench on the same recording
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(y), "--recordings", "s9", "--out", "p2"])
    assert rc == 1 and "--recordings s9: no recording of" in capsys.readouterr().err


def test_a_ppg_under_the_devices_own_column_name_names_the_dataset_file_above(spec_export_dir, tmp_path, monkeypatch,
                                                                           capsys):
    """The audit's my_watch: the PPG column is green1 (no PPG name), so the model finds no PPG in ppg.csv alone."""
    y = _streams(tmp_path / "watch")
    for f in (tmp_path / "watch" / "rec").glob("*/ppg.csv"):
        f.write_text(f.read_text().replace("t,green,hr", "t,led1,hr", 1))
    y.write_text(y.read_text().replace("ppg: green", "ppg: led1"))
    monkeypatch.chdir(tmp_path / "watch")
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "rec/s03/ppg.csv", "--out", "p0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "the model needs a PPG channel (ppg or ppg2); the recording has led1, hr" in err[-1], err
    assert err[-1].endswith("(dataset.yaml in a folder above describes it: give --data dataset.yaml --recordings "
                            "s03/ppg)") and "name yours in a dataset.yaml" not in err[-1]


def test_bench_one_recording_of_a_dataset_file(spec_export_dir, tmp_path):
    y = _streams(tmp_path / "watch")
    rc = main(["bench", "--model", str(spec_export_dir), "--data", str(y), "--recordings", "s01,s03",
               "--runtime", "onnx_int8", "--out", str(tmp_path / "b")])
    assert rc == 0
    res = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [r["record_id"] for r in res["records"]] == ["s01/ppg", "s03/ppg"]


def test_recordings_with_stdin_is_one_line_not_ignored(spec_export_dir, tmp_path, capsys):
    """--data - is one live stream: a --recordings beside it picks nothing and is refused before stdin is read."""
    rc = main(["predict", "--model", str(spec_export_dir), "--data", "-", "--fs", "64", "--gains", "device",
               "--recordings", "s02", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--recordings does not apply to --data - (stdin)" in err[0], err
    assert not (tmp_path / "p").exists()
