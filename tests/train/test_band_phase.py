"""A time-domain model can be trained with the band-pass a sample-by-sample device runs (`train finetune
--band-phase causal`): the phase is part of the model contract (ModelCfg.band_phase, in every checkpoint, older ones
mean "zero"), training's windows are then cut from one causal filter over each recording, which is what the stream's
"causal" filter (predict, bench) and the C front end compute, and a distilled student inherits it."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from sqtool.core import ModelCfg, SqtoolError, stream_filter
from sqtool.core.checkpoint import load_checkpoint
from sqtool.data.synthetic import synth_corpus
from sqtool.data.tasks import _windows, task_model_cfg
from sqtool.export.time_docs import CAUSAL_TOL
from sqtool.firmware_bench.stream import StreamSpec, replay
from sqtool.models import get_model_cfg


def _cfg(phase: str) -> ModelCfg:
    return task_model_cfg("af", get_model_cfg("cnn1d_student_xs"), channels=("ppg",)).replace(band_phase=phase)


def test_the_phase_is_part_of_the_contract_and_older_files_mean_zero_phase():
    d = _cfg("causal").to_dict()
    assert d["band_phase"] == "causal" and ModelCfg.from_dict(d) == _cfg("causal")
    old = {k: v for k, v in d.items() if k != "band_phase"}           # a checkpoint written before the field
    assert ModelCfg.from_dict(old).band_phase == "zero"
    assert [stream_filter(c) for c in (_cfg("zero"), _cfg("causal"), old, d)] == ["window", "causal", "window",
                                                                                    "causal"]
    assert stream_filter({"fs": 40.0, "model_cfg": d}) == "causal"      # an export's metadata, the cfg inside
    with pytest.raises(SqtoolError, match="band_phase: choose one of zero, causal, got 'acausal'"):
        _cfg("acausal")


@pytest.mark.parametrize("task", ["af", "rr"])
def test_causal_training_windows_are_the_causal_stream_and_not_the_zero_phase_one(task):
    rec = synth_corpus(n_subjects=1, duration_s=150, seed=3)[0]
    base = task_model_cfg(task, get_model_cfg("cnn1d_student_xs"), channels=("ppg",))
    causal, zero = _windows(rec, base.replace(band_phase="causal")), _windows(rec, base)
    streamed = replay(rec, StreamSpec.from_model_cfg(base.replace(band_phase="causal")), chunk=25)
    assert StreamSpec.from_model_cfg(base).filter == "window"            # the default follows the model
    n = len(causal.x)
    assert np.allclose(causal.t0, streamed.t0[:n])
    # the ends differ (training's resampler removed the whole recording's mean and zero-padded; the stream removes
    # its first sample), for as long as the filter remembers them: rr's 0.05 Hz band about 30 s
    inner = (causal.t0 >= 30.0) & (causal.t0 + causal.window_s <= causal.t0[-1] + causal.window_s - 1e-9)
    inner[-1] = False
    assert inner.sum() >= 3
    assert np.abs(causal.x[inner] - streamed.x[:n][inner]).max() < CAUSAL_TOL         # what INTEGRATION.md says
    assert np.abs(zero.x[inner] - streamed.x[:n][inner]).max() > 0.1      # the phase lag the zero-phase model lacks


def test_train_finetune_band_phase_causal_writes_it_into_the_checkpoint_and_its_student_inherits_it(tmp_path):
    from sqtool.cli import main
    from sqtool.compress.distill import student_cfg_from_teacher
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        rc = main(["train", "finetune", "--task", "af", "--data", "synthetic", "--model", "resnet1d_siamq_tiny",
                   "--band-phase", "causal", "--epochs", "1", "--max-records", "4", "--folds", "2", "--bootstrap",
                   "20", "--heldout-fraction", "0", "--progress", "false", "--out", str(tmp_path / "ft")])
    assert rc == 0, said.getvalue()[-2000:]
    ck = load_checkpoint(tmp_path / "ft" / "model.pt", expect_kind="teacher_task")
    teacher = ModelCfg.from_dict(ck["model_cfg"])
    assert teacher.band_phase == "causal"
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["input"]["band_phase"] == "causal"
    assert student_cfg_from_teacher(teacher, "").band_phase == "causal"


@pytest.mark.parametrize("argv, line", [
    (["--task", "af", "--band-phase", "acausal"], "--band-phase acausal: choose one of zero, causal"),
    (["--task", "hr", "--model", "spec_student_s", "--band-phase", "causal"],
     "is a spectral model, whose fixed-point front end runs a causal band-pass already"),
])
def test_a_bad_band_phase_is_one_line_before_any_folder(tmp_path, capsys, argv, line):
    from sqtool.cli import main
    out = tmp_path / "ft"
    rc = main(["train", "finetune", "--data", "synthetic", "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and line in err[0] and "Traceback" not in err[0]
    assert not out.exists()
