"""SiamQuality pretraining of spectral heart-rate models: spectral pairs, SimSiam heads, --init into fine-tuning."""
import json

import numpy as np
import pytest
import torch
import yaml

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint
from sqtool.data.pairs import PairsConfig, mine_pairs, spectral_record_pairs
from sqtool.data.quality import record_quality
from sqtool.data.synthetic import synth_record
from sqtool.models import create_model, get_model_cfg
from sqtool.models.spectral import load_encoder
from sqtool.train.pretrain import ArrayPairs, PretrainConfig, run_pretrain

MODEL = "spec_student_xs"


@pytest.fixture(scope="module")
def rec():
    return synth_record(240, artifacts=0.4, seed=3, subject="s3")          # ppg + acc, motion bursts


def test_spectral_pairs_are_front_end_windows_of_one_record_good_with_poor(rec):
    mc = get_model_cfg(MODEL)
    p = spectral_record_pairs(rec, PairsConfig(model=MODEL, max_gap_s=30), mc)
    assert p["pairs"] > 0 and p["unusable"] == 0 and p["synthetic"] == 0
    assert p["x_good"].shape == p["x_poor"].shape == (p["pairs"], mc.in_channels, mc.n_bins)
    assert np.all(np.abs(p["x_good"]) <= 1) and not np.array_equal(p["x_good"], p["x_poor"])
    assert np.all(p["q_good"] > 0.5) and np.all(p["q_poor"] <= 0.5)        # good vs poor by the quality index
    assert np.all(np.abs(p["t_good"] - p["t_poor"]) <= 30)
    # the score of a pair's window is the quality index of the raw window with the same start
    q = record_quality(rec, window_s=mc.window_s, hop_s=mc.hop_s)
    i = np.searchsorted(q["t0"], p["t_good"][0])
    assert q["t0"][i] == p["t_good"][0] and q["score"][i] == pytest.approx(p["q_good"][0])


def test_spectral_overlap_false_gives_partners_at_least_a_window_away(rec):
    """8 s windows every 2 s: the nearest poor window mostly overlaps the good one (the recipe the benchmarks
    measured); spectral_overlap=False takes the nearest one at least a window away and counts those given up."""
    mc = get_model_cfg(MODEL)
    near = spectral_record_pairs(rec, PairsConfig(model=MODEL, max_gap_s=120), mc)
    apart = spectral_record_pairs(rec, PairsConfig(model=MODEL, max_gap_s=120, spectral_overlap=False), mc)
    gap_near, gap_apart = (np.abs(p["t_good"] - p["t_poor"]) for p in (near, apart))
    assert (gap_near < mc.window_s).any() and near["overlap_rejected"] == 0
    assert apart["pairs"] > 0 and np.all(gap_apart >= mc.window_s - 1e-6)
    assert apart["overlap_rejected"] == int(np.count_nonzero(gap_near < mc.window_s)) > 0
    assert set(apart["t_good"]) <= set(near["t_good"])                  # the same good windows, farther partners


def test_a_record_without_the_accelerometer_is_unusable_not_an_error(rec):
    import dataclasses
    ppg_only = dataclasses.replace(rec, signals={"ppg": rec.signals["ppg"]}, fs={"ppg": rec.fs["ppg"]})
    p = spectral_record_pairs(ppg_only, PairsConfig(model=MODEL), get_model_cfg(MODEL))
    assert p["unusable"] == 1 and p["pairs"] == 0


def test_spectral_pairs_refuse_synthetic_partners(tmp_path):
    with pytest.raises(SqtoolError, match="real only"):
        mine_pairs(PairsConfig(data_root="synthetic", model=MODEL, synthetic_fallback=True, out=str(tmp_path / "p"),
                               workers=1), progress=False)


def test_simsiam_heads_only_for_pretraining_and_the_encoder_loads_into_the_task_model():
    pre = create_model(get_model_cfg(MODEL, task="pretrain"))
    x = torch.rand(5, pre.blocks[0].conv.in_channels, 134) * 2 - 1
    p1, p2, z1, z2 = pre.simsiam(x, x.flip(0))
    assert p1.shape == z1.shape == (5, pre.proj_dim)
    task_cfg = get_model_cfg(MODEL)
    task = create_model(task_cfg)
    assert not hasattr(task, "proj") and task(x).shape == (5, 134)
    ck = {"model_cfg": pre_cfg_dict(), "state_dict": pre.state_dict()}
    assert load_encoder(task, task_cfg, ck) == len([k for k in task.state_dict() if k.startswith("blocks.")])
    for k, v in task.state_dict().items():
        if k.startswith("blocks."):
            assert torch.equal(v, pre.state_dict()[k])
    other = get_model_cfg("spec_teacher_m")                                   # wider convs: refused
    with pytest.raises(SqtoolError, match="convs"):
        load_encoder(create_model(other), other, ck)
    moved = {**pre_cfg_dict(), "frontend": {**pre_cfg_dict()["frontend"], "bins_bpm": [40.0, 239.5, 1.5]}}
    with pytest.raises(SqtoolError, match="other inputs"):
        load_encoder(task, task_cfg, {"model_cfg": moved, "state_dict": pre.state_dict()})


def pre_cfg_dict():
    return get_model_cfg(MODEL, task="pretrain").to_dict()


def test_pretrain_a_spectral_encoder_on_real_pairs(tmp_path, rec):
    p = spectral_record_pairs(rec, PairsConfig(model=MODEL, max_gap_s=120), get_model_cfg(MODEL))
    pairs = ArrayPairs(p["x_good"], p["x_poor"], np.array(["s3"] * p["pairs"]), desc="real spectral pairs")
    cfg = PretrainConfig(model=MODEL, epochs=2, batch_size=8, lr=0.05, val_fraction=0.0, progress=False)
    m = run_pretrain(cfg, tmp_path / "pt", pairs=pairs)
    assert np.isfinite(m["final_loss"]) and m["global_step"] == 2 * (p["pairs"] // 8)
    ck = load_checkpoint(tmp_path / "pt" / "model.pt", expect_kind="teacher_pretrain")
    assert ck["model_cfg"]["task"] == "pretrain" and any(k.startswith("proj.") for k in ck["state_dict"])
    with pytest.raises(SqtoolError, match="data pairs --model"):                 # the time-domain smoke pairs
        run_pretrain(PretrainConfig(**{**cfg.__dict__, "pairs": "synthetic"}), tmp_path / "smoke")
    with pytest.raises(SqtoolError, match="time-domain"):
        run_pretrain(PretrainConfig(**{**cfg.__dict__, "pair_mode": "augment"}), tmp_path / "aug", pairs=pairs)


def test_cli_pairs_pretrain_finetune_quantize_from_the_pretrained_encoders(tmp_path, capsys, monkeypatch):
    pairs, pt, ft, q = tmp_path / "pairs", tmp_path / "pt", tmp_path / "ft", tmp_path / "q"
    assert main(["data", "pairs", "--data", "synthetic", "--model", MODEL, "--synthetic-subjects", "3",
                 "--workers", "1", "--out", str(pairs)]) == 0
    stats = json.loads((pairs / "pair_stats.json").read_text())
    assert stats["total"]["real_pairs"] > 0 and stats["total"]["synthetic_pairs"] == 0
    assert main(["train", "pretrain", "--model", MODEL, "--pairs", str(pairs), "--epochs", "1", "--batch-size", "8",
                 "--val-fraction", "0", "--no-progress", "--out", str(pt)]) == 0
    # the printed next command runs as printed: --model RUN of a spectral encoder, --data its pairs' data
    nxt = capsys.readouterr().out.strip().splitlines()[-1]
    assert nxt == f"next: sqtool train finetune --task hr --model {pt} --data synthetic"
    import sqtool.core.checkpoint as C
    real, read = C.load_checkpoint, []
    monkeypatch.setattr(C, "load_checkpoint", lambda *a, **kw: read.append(real(*a, **kw)) or read[-1])
    assert main(nxt.split()[2:] + ["--folds", "2", "--epochs", "1", "--max-records", "3", "--out",
                                   str(tmp_path / "ft_next")]) == 0
    assert [ck["path"] for ck in read] == [str(pt / "model.pt")]             # the pretrained encoder, read once
    monkeypatch.setattr(C, "load_checkpoint", real)
    saved = yaml.safe_load((tmp_path / "ft_next" / "config.yaml").read_text())["config"]
    assert saved["model"] == MODEL and saved["init"] == str(pt)
    # --init alone: the model is the checkpoint's (the help's default), a spectral encoder's too (was refused)
    assert main(["train", "finetune", "--task", "hr", "--init", str(pt / "model.pt"), "--data",
                 "synthetic", "--folds", "2", "--epochs", "1", "--max-records", "3", "--out", str(ft)]) == 0
    assert str(pt / "model.pt") in (ft / "config.yaml").read_text()           # the run says what it started from
    assert yaml.safe_load((ft / "config.yaml").read_text())["config"]["model"] == MODEL
    assert main(["quantize", "--model", str(ft), "--student", MODEL, "--student-init", str(pt / "model.pt"),
                 "--data", "synthetic", "--epochs", "1", "--qat-epochs", "1", "--no-progress", "--out", str(q)]) == 0
    assert str(pt / "model.pt") in (q / "config.yaml").read_text()
    # a spectral encoder into another architecture: one line, non-zero, nothing written
    capsys.readouterr()
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_teacher_m", "--init", str(pt / "model.pt"),
                 "--data", "synthetic", "--folds", "2", "--epochs", "1", "--out", str(tmp_path / "bad")]) != 0
    err = capsys.readouterr().err
    assert "convs" in err and "Traceback" not in err
    assert main(["quantize", "--model", str(ft), "--student", "spec_student_s", "--student-init",
                 str(pt / "model.pt"), "--data", "synthetic", "--no-progress", "--out", str(tmp_path / "bad2")]) != 0
    err = capsys.readouterr().err
    assert "--student-init" in err and "convs" in err and "Traceback" not in err
    assert not (tmp_path / "bad2").exists()                                    # refused before a run folder


def test_the_steady_pace_counts_each_step_once(tmp_path, monkeypatch):
    """A 3-step run's headline said 119,481 pairs/s (metrics.json pairs_per_s 120): the read that flushes the last
    step at an epoch's end follows the read before it at once, and was timed as a step done in no time. On a clock
    that moves 1 s per step (and not otherwise), every run's steady pace is now exactly one batch per second."""
    import sqtool.train.loop as L
    import sqtool.train.pretrain as P
    clock = [0.0]
    real_loss = L.simsiam_loss

    def one_second_step(*a):
        clock[0] += 1.0
        return real_loss(*a)
    monkeypatch.setattr(L, "simsiam_loss", one_second_step)
    monkeypatch.setattr(P.time, "perf_counter", lambda: clock[0])
    x = np.random.default_rng(0).standard_normal((80, 4, 134)).astype(np.float32)
    pairs = ArrayPairs(x, x[::-1].copy(), np.array(["s1"] * 80))
    for epochs, batch, steps in ((1, 10, 8), (3, 20, 12)):        # 8 steps in one epoch; 4 in each of three
        cfg = PretrainConfig(model=MODEL, epochs=epochs, batch_size=batch, lr=0.05, val_fraction=0.0, progress=False)
        m = run_pretrain(cfg, tmp_path / f"pt{epochs}", pairs=pairs)
        assert m["global_step"] == steps and m["steady_pairs_per_s"] == pytest.approx(cfg.batch_size), m
