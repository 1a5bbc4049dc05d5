"""What the spectral heart-rate fine-tune takes as input: a recording with no window to train on (shorter than one
window) is left out with one note line and is no subject; --channels, --fs, --window-s and --hop-s other than the
spectral model's own are one line before any work (time-domain models still take them)."""
import json
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.train.finetune import FinetuneConfig

YAML = """name: mine
format: csv
root: rec
files: "*.csv"
time_column: time
channels: {ppg: ppg, acc_x: acc_x, acc_y: acc_y, acc_z: acc_z}
subject:
  pattern: "^(?P<subject>s\\\\d+)_"
windows: {window_s: 8, hop_s: 2}
labels:
  hr: {column: hr}
"""


def _own_data(root: Path, seconds: dict[str, float]) -> str:
    """A dataset.yaml over CSV recordings at 50 Hz (time, ppg, acc_x/y/z, hr), one per subject: {subject: seconds}."""
    from sqtool.data.synthetic import synth_record
    (root / "rec").mkdir(parents=True)
    for i, (s, dur) in enumerate(seconds.items()):
        r = synth_record(duration_s=dur, fs=50.0, hr_bpm=70.0 + 12 * i, seed=i, subject=s)
        t = np.arange(len(r.signals["ppg"])) / 50.0
        cols = {"time": t, **{c: r.signals[c] for c in ("ppg", "acc_x", "acc_y", "acc_z")}, "hr": 70.0 + 12 * i}
        rows = np.column_stack([np.broadcast_to(v, t.shape) for v in cols.values()])
        np.savetxt(root / "rec" / f"{s}_walk.csv", rows, delimiter=",", header=",".join(cols), comments="", fmt="%.6f")
    (root / "dataset.yaml").write_text(YAML)
    return str(root / "dataset.yaml")


FT = ["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--folds", "0", "--epochs", "1",
      "--heldout-fraction", "0", "--final-fit", "false", "--bootstrap", "50", "--progress", "false"]


def test_a_recording_shorter_than_one_window_is_left_out_with_one_note(tmp_path, capsys):
    """s03 (5 s) has no 8 s window: the fine-tune trains on the others (it stopped with 'argmax of an empty
    sequence'), says so in one note line naming it and why, and does not count it as a subject."""
    data = _own_data(tmp_path / "w", {"s01": 30.0, "s02": 30.0, "s03": 5.0})
    assert main(FT + ["--data", data, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [ln for ln in err if "s03" in ln] == ["note: left out mine/s03_walk: shorter than one 8 s window"]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["subjects"] == 2 and [p["subject"] for p in m["per_subject"]] == ["mine:s01", "mine:s02"]


def test_no_recording_long_enough_is_one_error_line(tmp_path, capsys):
    data = _own_data(tmp_path / "w", {"s01": 5.0, "s02": 6.0})
    assert main(FT + ["--data", data, "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sqtool: error: --data {data}: no training recording has a window "
                                               "with heart-rate truth (2 left out, e.g. mine/s01_walk: shorter than "
                                               "one 8 s window; mine/s02_walk: ")


def test_predict_logits_of_no_window_has_the_bins_axis():
    """An empty input keeps the model's bins: (0, F), so a per-window argmax over it is empty, not an error."""
    from sqtool.models import create_model, get_model_cfg
    from sqtool.models.hr_bins import predict_logits
    m = create_model(get_model_cfg("spec_student_xs"))
    assert predict_logits(m, np.zeros((0, 4, 134), np.float32)).shape == (0, 134)


def test_the_decoder_choice_ignores_a_subject_without_a_window():
    """quantize's corpus still holds a recording shorter than one window: its subject has no error to average, so
    the decoder chosen is the one chosen without it (its NaN mean made every candidate's mean of subjects NaN)."""
    from sqtool.models import get_model_cfg
    from sqtool.models.hr_bins import select_decoder
    from sqtool.models.spectral import bin_grid
    cfg = get_model_cfg("spec_student_xs")
    bins, rng = bin_grid(cfg), np.random.default_rng(0)
    logits, truth, groups = [], [], []
    for s in range(3):
        hr = 90 + np.cumsum(rng.normal(0, 1.0, 40))
        logits.append((-0.5 * ((bins[None] - hr[:, None] - rng.normal(0, 4, (40, 1))) / 4.0) ** 2).astype(np.float32))
        truth.append(hr)
        groups.append(f"s{s}")
    base = {"bins_bpm": list(cfg.arch["bins_bpm"]), "sigma_bpm": 1.0, "floor": 1e-3, "logit_scale": 1.0}
    grid = dict(sigmas=(1.0, 8.0), floors=(1e-3,), temperatures=(1.0, 4.0), calibrate=False)
    want = select_decoder(logits, truth, groups, base, **grid)
    got = select_decoder(logits + [np.zeros((0, len(bins)), np.float32)], truth + [np.zeros(0)], groups + ["s3"],
                         base, **grid)
    assert np.isfinite(got["inner_mae"]) and got == want


SYN = ["train", "finetune", "--task", "hr", "--data", "synthetic", "--folds", "2", "--epochs", "1", "--max-records",
       "4", "--final-fit", "false", "--progress", "false"]


@pytest.mark.parametrize("given, says", [
    (["--channels", "ppg"], "train finetune --channels ppg: spec_student_xs is a spectral model, whose fixed-point "
                            "front end reads channels ppg,acc_x,acc_y,acc_z; the spectral heart-rate models need the "
                            "accelerometer; it is for time-domain models: leave it out"),
    (["--fs", "25", "--window-s", "10", "--hop-s", "1"],
     "train finetune --fs 25 --window-s 10 --hop-s 1: spec_student_xs is a spectral model, whose fixed-point front "
     "end reads 16 Hz, 8 s windows, 2 s hops; they are for time-domain models: leave them out"),
    (["--hop-s", "1"], "train finetune --hop-s 1: spec_student_xs is a spectral model, whose fixed-point front end "
                       "reads 2 s hops; it is for time-domain models: leave it out"),
])
def test_options_the_spectral_front_end_sets_are_refused_before_any_work(given, says, tmp_path, capsys):
    """They were ignored: config.yaml resolved the model's 16 Hz, 8 s, 2 s and its four channels."""
    assert main(SYN + ["--model", "spec_student_xs", *given, "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"sqtool: error: {says}"]
    assert not (tmp_path / "o").exists()


def test_the_spectral_models_own_values_pass_and_time_domain_models_take_any(tmp_path):
    from sqtool.train.cli import _precheck_finetune
    from sqtool.train.finetune_hr import check_spectral_options, run_finetune_hr
    own = dict(fs=16.0, window_s=8.0, hop_s=2.0, data_root="synthetic")
    for model, channels in (("spec_student_xs", ["ppg", "acc_x", "acc_y", "acc_z"]),
                            ("spec_student_xs_accsum", ["ppg", "acc"]),
                            ("spec_student_xs_accsum", ["ppg", "acc_x", "acc_y", "acc_z"])):  # the signals it reads
        check_spectral_options(FinetuneConfig(model=model, channels=channels, **own))
    cfg, _ = _precheck_finetune(FinetuneConfig(task="hr", model="resnet1d_siamq_tiny", channels=["ppg"], fs=25.0,
                                               window_s=10.0, hop_s=1.0, data_root="synthetic"))
    assert (cfg.channels, cfg.fs, cfg.window_s, cfg.hop_s) == (["ppg"], 25.0, 10.0, 1.0)
    with pytest.raises(SqtoolError, match=r"^train finetune --fs 25: spec_student_xs is a spectral model"):
        run_finetune_hr(FinetuneConfig(model="spec_student_xs", fs=25.0, data_root="synthetic"), tmp_path / "lib")
    assert not (tmp_path / "lib").exists()                                # the library entry: before any work
