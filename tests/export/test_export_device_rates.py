"""The rates an export of a spectral quantize run is built for, said against the rates its recordings had (the run's
metrics.json `recorded_rates`): a watch whose accelerometer runs at 32 Hz beside a 64 Hz PPG, exported as the README's
own-data chain does (`--device-fs 64` alone), gets a kit that takes one accelerometer sample per PPG sample; the note
names `--device-acc-fs 32`, which adds the kit's resampler."""
from __future__ import annotations

import json

import pytest

from export_fixtures import make_run
from sqtool.cli import main


@pytest.fixture(scope="module")
def watch_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("rates") / "quantize", "spec_student_xs", n_heldout=4)
    (run / "metrics.json").write_text(json.dumps({"task": "hr", "recorded_rates": {"ppg": 64.0, "acc": 32.0},
                                                  "device_fs": 125.0}))
    return run


def notes(capsys) -> list[str]:
    return [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("note:")]


def test_device_fs_alone_names_the_recordings_accelerometer_rate(watch_run, tmp_path, capsys):
    assert main(["export", "--model", str(watch_run), "--target", "c", "--device-fs", "64",
                 "--out", str(tmp_path / "kit")]) == 0
    said = [n for n in notes(capsys) if "accelerometer" in n]
    assert len(said) == 1, said
    assert "one accelerometer sample per PPG sample (64 Hz)" in said[0] and "at 32 Hz" in said[0]
    assert "--device-acc-fs 32" in said[0]


def test_no_device_fs_names_the_recordings_rates(watch_run, tmp_path, capsys):
    assert main(["export", "--model", str(watch_run), "--target", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    said = [n for n in notes(capsys) if n.startswith("note: built for a 125 Hz device")]
    assert len(said) == 1 and said[0].endswith("(the source run's recordings: --device-fs 64 --device-acc-fs 32)")


def test_rates_as_recorded_say_nothing_more(watch_run, tmp_path, capsys):
    assert main(["export", "--model", str(watch_run), "--target", "c", "--device-fs", "64", "--device-acc-fs", "32",
                 "--out", str(tmp_path / "kit_acc")]) == 0
    assert not [n for n in notes(capsys) if "accelerometer" in n or "built for" in n]
