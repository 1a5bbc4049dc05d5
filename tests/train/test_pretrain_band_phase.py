"""Pretraining sees the band-pass phase its model will be fed: `data pairs --band-phase causal` cuts the pairs from
one causal filter over each recording (the windows `train finetune --band-phase causal` trains on), index.json says
so (older pair folders, without the key, are zero-phase), `train pretrain --band-phase causal` saves it in the
encoder's checkpoint and refuses pairs of the other phase in one line, and a fine-tune whose phase differs from its
--init encoder's says so."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint
from sqtool.data.pairs import PairsConfig, models_reading, record_pairs
from sqtool.data.preprocess import make_windows
from sqtool.data.synthetic import synth_record
from sqtool.train.pretrain import PretrainConfig, ShardPairs, run_pretrain

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_pretrain import _write_pairs  # noqa: E402

TINY = dict(model="resnet1d_siamq_tiny", epochs=1, batch_size=16, lr=0.05, progress=False, val_fraction=0.0)


@pytest.mark.parametrize("phase", ["zero", "causal"])
def test_pairs_are_cut_from_the_training_windows_of_their_phase(phase):
    rec = synth_record(600, artifacts=0.3, seed=3, subject="s7")
    cfg = PairsConfig(model="resnet1d_siamq_tiny", band_phase=phase, dtype="float32", max_gap_s=600)
    from sqtool.data.pairs import apply_model_contract
    cfg = apply_model_contract(cfg)
    assert cfg.band_phase == phase                       # --model takes the window contract, not the phase
    p = record_pairs(rec, cfg)
    assert p["pairs"] > 0
    w = make_windows(rec, channels=["ppg"], fs=cfg.fs, window_s=cfg.window_s, hop_s=cfg.window_s, norm=cfg.norm,
                     band=(cfg.band_lo, cfg.band_hi), causal=phase == "causal")
    at = {round(float(t), 6): i for i, t in enumerate(w.t0)}
    i = [at[round(float(t), 6)] for t in p["t_good"]]
    np.testing.assert_allclose(p["x_good"], w.x[i], atol=1e-5)           # (P, C, T): the fine-tune's windows
    other = make_windows(rec, channels=["ppg"], fs=cfg.fs, window_s=cfg.window_s, hop_s=cfg.window_s,
                         norm=cfg.norm, band=(cfg.band_lo, cfg.band_hi), causal=phase != "causal")
    assert np.abs(p["x_good"] - other.x[i]).max() > 0.05                 # and not the other phase's


def test_causal_pairs_pretrain_a_causal_encoder_and_a_zero_phase_fine_tune_is_told(tmp_path, capsys):
    pairs = tmp_path / "pairs"
    assert main(["data", "pairs", "--data", "synthetic", "--model", "resnet1d_siamq_tiny", "--band-phase", "causal",
                 "--synthetic-subjects", "4", "--synthetic-duration-s", "600", "--workers", "1", "--out",
                 str(pairs)]) == 0
    out = capsys.readouterr().out
    index = json.loads((pairs / "index.json").read_text())
    assert index["band_phase"] == "causal"
    assert "--band-phase causal" in next(ln for ln in out.splitlines() if ln.startswith("next:"))
    assert "resnet1d_siamq_tiny" in models_reading(index)                # pretrain --band-phase sets the model's
    rc = main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(pairs), "--out",
               str(tmp_path / "zero")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and not (tmp_path / "zero").exists()
    assert "made with band_phase causal" in err[0] and "train pretrain --band-phase causal" in err[0]
    rc = main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(pairs), "--band-phase",
               "causal", "--epochs", "1", "--batch-size", "4", "--val-fraction", "0", "--progress", "false",
               "--out", str(tmp_path / "pre")])
    assert rc == 0, capsys.readouterr().err
    ck = load_checkpoint(tmp_path / "pre" / "model.pt", expect_kind="teacher_pretrain")
    assert ck["model_cfg"]["band_phase"] == "causal"
    capsys.readouterr()
    rc = main(["train", "finetune", "--task", "af", "--data", "synthetic", "--init", str(tmp_path / "pre"),
               "--epochs", "1", "--max-records", "4", "--folds", "2", "--bootstrap", "20", "--heldout-fraction", "0",
               "--progress", "false", "--out", str(tmp_path / "ft")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert ("note: the --init encoder was pretrained on causal-phase band-passed windows and this fine-tune feeds "
            "it zero-phase ones") in err


def test_older_pairs_are_zero_phase_and_a_causal_encoder_refuses_them(tmp_path):
    _write_pairs(tmp_path / "pairs", n=32)                              # an index.json without band_phase
    sp = ShardPairs(str(tmp_path / "pairs"), verify=False)
    m = run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs")}), tmp_path / "zero")
    assert np.isfinite(m["final_loss"])
    with pytest.raises(SqtoolError, match="made with band_phase zero but resnet1d_siamq_tiny is pretrained with "
                                          "band_phase causal"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs"), "band_phase": "causal"}),
                     tmp_path / "causal")
    assert sp.index.get("band_phase") is None


def test_synthetic_pairs_follow_the_phase(tmp_path):
    m = run_pretrain(PretrainConfig(**{**TINY, "synthetic_pairs": 32, "band_phase": "causal"}), tmp_path / "c")
    assert np.isfinite(m["final_loss"])
    assert load_checkpoint(tmp_path / "c" / "model.pt")["model_cfg"]["band_phase"] == "causal"


@pytest.mark.parametrize("argv, line", [
    (["--band-phase", "acausal"], "train pretrain --band-phase acausal: choose one of zero, causal"),
    (["--model", "spec_student_s", "--band-phase", "causal"],
     "spec_student_s is a spectral model, whose fixed-point front end runs a causal band-pass already"),
])
def test_a_bad_band_phase_is_one_line_before_any_folder(tmp_path, capsys, argv, line):
    rc = main(["train", "pretrain", "--out", str(tmp_path / "p"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and line in err[0] and not (tmp_path / "p").exists()
    assert main(["data", "pairs", "--data", "synthetic", "--band-phase", "acausal", "--out",
                 str(tmp_path / "q")]) == 2
    assert "data pairs --band-phase acausal: choose one of zero, causal" in capsys.readouterr().err
    assert main(["data", "pairs", "--data", "synthetic", "--model", "spec_student_s", "--band-phase", "causal",
                 "--out", str(tmp_path / "s")]) == 1                   # its pairs are spectra of its own front end
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "spec_student_s is a spectral model" in err[0] and not (tmp_path / "s").exists()
