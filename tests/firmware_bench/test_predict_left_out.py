"""predict leaves a recording without the model's channels out of a folder, as `sqtool bench` does (README "Your
own data": "left out as predict leaves it out"): an audit saw `sqtool predict --data folder` stop on one file
without an accelerometer (`csv/no_acc: the model needs channel(s) acc_x, acc_y, acc_z; the recording has ppg`,
exit 1) where the bench left it out and went on. One WARNING line names it and why, summary.json lists it in
skipped_records, the others are predicted; none left: one error line."""
from __future__ import annotations

import json

import pytest
from fwb_helpers import write_wrist_npz

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.firmware_bench.predict import PredictConfig, predict


def test_a_folder_goes_on_without_the_recording_lacking_channels(spec_export_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_wrist_npz(data / "good.npz", seconds=30, ppg2=True)
    write_wrist_npz(data / "noacc.npz", seconds=30, acc=False, seed=1)
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--runtime", "torch",
               "--out", str(tmp_path / "p"), "--progress", "false"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    left = [line for line in out if "noacc" in line]
    assert left == ["WARNING: left out npz/noacc: the model needs channel(s) acc_x, acc_y, acc_z; the recording "
                    "has ppg"]
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["good"]
    assert s["skipped_records"] == [left[0][len("WARNING: left out "):]] and left[0] in s["warnings"]


def test_no_recording_with_the_channels_is_one_error_line(spec_export_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        write_wrist_npz(data / f"noacc{i}.npz", seconds=30, acc=False, seed=i)
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(tmp_path / "p"),
               "--progress", "false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "no recording the model can use (2 recordings" in err[0]
    assert "noacc0: the model needs channel(s) acc_x, acc_y, acc_z" in err[0]
    assert not (tmp_path / "p" / "summary.json").exists()


def test_a_time_domain_model_leaves_out_a_recording_without_its_channel(export_dir, tmp_path):
    from sqtool.data.synthetic import synth_record
    good = synth_record(duration_s=30.0, fs=125.0, hr_bpm=80.0, seed=0, subject="a")
    noppg = synth_record(duration_s=30.0, fs=125.0, hr_bpm=80.0, seed=1, subject="b")
    noppg.record_id += "_noppg"
    noppg.signals.pop("ppg")
    noppg.fs.pop("ppg", None)
    res = predict(PredictConfig(model=str(export_dir), data="unused", out=str(tmp_path / "n"), progress=False),
                  records=[good, noppg])
    assert [r["record_id"] for r in res["recordings"]] == [good.record_id]
    assert res["skipped_records"] == [f"{noppg.record_id}: the model needs channel(s) ppg; the recording has "
                                      f"{', '.join(noppg.signals)}"]
    with pytest.raises(SqtoolError, match=r"needs channel\(s\) ppg; the recording has acc_x"):
        predict(PredictConfig(model=str(export_dir), data="unused", out=str(tmp_path / "m"), progress=False),
                records=[noppg])


def test_a_forced_rerun_removes_the_earlier_runs_csvs_it_did_not_rewrite(spec_export_dir, tmp_path, capsys):
    """`predict --force` into an earlier predict's folder kept that run's CSVs of recordings this run did not read,
    beside a summary.json that no longer listed them: a glob of *.csv mixed two runs. They are now removed (after
    the new summary is written) with one note line; other files in the folder are left alone."""
    data, out = tmp_path / "data", tmp_path / "p"
    data.mkdir()
    write_wrist_npz(data / "a.npz", seconds=30)
    write_wrist_npz(data / "b.npz", seconds=30, seed=1)
    args = ["predict", "--model", str(spec_export_dir), "--runtime", "torch", "--out", str(out), "--progress", "false"]
    assert main(args + ["--data", str(data)]) == 0
    assert {p.name for p in out.glob("*.csv")} == {"a.csv", "b.csv"}
    (out / "mine.csv").write_text("kept\n")                          # not the earlier run's: never removed
    (data / "b.npz").unlink()
    capsys.readouterr()
    assert main(args + ["--data", str(data), "--force"]) == 0
    assert {p.name for p in out.glob("*.csv")} == {"a.csv", "mine.csv"} and not (out / "b.png").exists()
    assert f"removed 2 files of the earlier predict run in {out} that this one did not rewrite (b.csv, b.png)" \
        in capsys.readouterr().out


def test_a_recording_the_dataset_file_excludes_is_said(spec_export_dir, tmp_path, capsys):
    """An audit: `predict --data troika` left out DATA_S04_T01 (the dataset file's exclude list, kept out of
    training) without a word, where bench said it. predict now says it in one note line and summary.json notes."""
    data = tmp_path / "ds"
    (data / "rec").mkdir(parents=True)
    write_wrist_npz(data / "rec" / "a.npz", seconds=30)
    write_wrist_npz(data / "rec" / "b.npz", seconds=30, seed=1)
    (data / "dataset.yaml").write_text("name: mine\nformat: npz\nroot: rec\nchannels: {ppg: ppg, acc_x: acc_x, "
                                       "acc_y: acc_y, acc_z: acc_z}\nexclude: {b: test subject}\n")
    assert main(["predict", "--model", str(spec_export_dir), "--data", str(data / "dataset.yaml"), "--runtime",
                 "torch", "--out", str(tmp_path / "p"), "--progress", "false"]) == 0
    out = capsys.readouterr().out
    assert "mine/b: excluded, left out (test subject); its dataset file's exclude list" in out, out
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert [r["record_id"] for r in s["recordings"]] == ["a"] and any("mine/b: excluded" in n for n in s["notes"])


def test_predict_pools_the_held_out_subjects_apart(spec_export_dir, tmp_path, monkeypatch, capsys):
    """An audit: predict's 'MAE ... pooled over N windows' line mixed subjects the model was trained on with new
    ones (11.1 against 22.2 BPM held out). With some seen, a second line and summary.json pooled_held_out give the
    held-out subjects alone."""
    import numpy as np
    from sqtool.firmware_bench import provenance
    monkeypatch.setattr(provenance, "training_subjects", lambda art: {"synthetic:eval000", "synthetic:eval001"})
    assert main(["predict", "--model", str(spec_export_dir), "--data", "synthetic", "--runtime", "torch",
                 "--out", str(tmp_path / "p"), "--progress", "false"]) == 0
    out = capsys.readouterr().out
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    held = [r for r in s["recordings"] if r["subject"] not in ("synthetic:eval000", "synthetic:eval001")]
    h = s["pooled_held_out"]
    assert h["recordings"] == len(held) == 2 and h["windows"] == sum(r["metrics"]["n"] for r in held)
    assert h["pooled"]["mae"] == pytest.approx(np.average([r["metrics"]["mae"] for r in held],
                                                          weights=[r["metrics"]["n"] for r in held]))
    assert "held-out subjects only (2 recordings of subjects not seen in training): MAE" in out
