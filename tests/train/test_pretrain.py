"""Pretraining: the loss falls, --resume is bit-exact, bad input and NaN are one clear error, checkpoints
are atomic."""
import json
import math
import os

import numpy as np
import pytest
import torch

from sqtool.cli import main
from sqtool.core import SqtoolError, save_config
from sqtool.train import loop
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
from sqtool.train.pretrain import ArrayPairs, PretrainConfig, ShardPairs, run_pretrain

TINY = dict(model="resnet1d_siamq_tiny", synthetic_pairs=128, epochs=1, batch_size=32, lr=0.05,
            progress=False, val_fraction=0.0)


def test_loss_decreases_on_synthetic_pairs(tmp_path):
    cfg = PretrainConfig(**{**TINY, "synthetic_pairs": 192, "epochs": 3, "val_fraction": 0.1})
    m = run_pretrain(cfg, tmp_path)
    losses = [h["loss"] for h in m["history"]]
    assert len(losses) == 3 * m["steps_per_epoch"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.05        # SimSiam loss in [-1, 1]
    assert m["val_loss"] is not None and math.isfinite(m["val_loss"])
    assert 0 < m["val_z_std"] <= 1 and m["z_std_healthy"] == pytest.approx(1 / math.sqrt(64))
    ck = load_checkpoint(tmp_path, expect_kind="teacher_pretrain")
    assert ck["model_cfg"]["name"] == "resnet1d_siamq_tiny" and ck["model_cfg"]["fs"] == 40.0
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "metrics.json").is_file()


def test_resume_is_bit_exact_and_refuses_changed_config(tmp_path, capsys):
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "128", "--epochs", "2",
            "--batch-size", "32", "--lr", "0.05", "--val-fraction", "0", "--progress", "false", "--seed", "3"]
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    io = capsys.readouterr()
    assert io.out.strip().splitlines()[-1] == f"next: sqtool train finetune --task hr --model {tmp_path / 'full'}"
    assert "synthetic pairs (a smoke run)" in io.err                      # never silently synthetic
    # the "killed" run: stops after 3 of 8 steps; the same command with a larger --max-steps goes on from there,
    # to 5 of 8, inside epoch 2, with last.pt on disk; its next: line is the plain resume (the rest of its epochs)
    cut_dir = tmp_path / "cut"
    assert main(args + ["--out", str(cut_dir), "--max-steps", "3"]) == 0
    assert main(["train", "pretrain", "--resume", str(cut_dir), "--max-steps", "5"]) == 0
    cut = load_checkpoint(cut_dir, name="last.pt")
    assert cut["train_state"]["global_step"] == 5 and cut["train_state"]["step_in_epoch"] == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"next: sqtool train pretrain --resume {cut_dir}   (")
    # the identical command again: one note, exit 0, nothing rewritten (it trained the 5 steps, no further)
    files = {f: (cut_dir / f).read_bytes() for f in ("last.pt", "model.pt", "metrics.json", "config.yaml")}
    assert main(["train", "pretrain", "--resume", str(cut_dir), "--max-steps", "5"]) == 0
    io = capsys.readouterr()
    assert io.out == "" and io.err.splitlines() == [
        f"sqtool: note: {cut_dir} is at global step 5, --max-steps 5 reached; nothing to resume (continue with: "
        f"sqtool train pretrain --resume {cut_dir}; or give --max-steps N above 5)"], io.err
    assert {f: (cut_dir / f).read_bytes() for f in files} == files
    # without --max-steps: the rest of the schedule, ending as the uninterrupted run did
    assert main(["--debug", "train", "pretrain", "--resume", str(cut_dir)]) == 0
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())["history"]
    res = json.loads((tmp_path / "cut" / "metrics.json").read_text())["history"]
    assert [h["loss"] for h in res] == [h["loss"] for h in full]           # exactly, not approximately
    a = load_checkpoint(tmp_path / "full")["state_dict"]
    b = load_checkpoint(tmp_path / "cut")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SqtoolError, match="changed config.*lr"):
        main(["--debug", "train", "pretrain", "--resume", str(tmp_path / "cut"), "--lr", "0.1"])
    with pytest.raises(SqtoolError, match="last.pt not found"):
        main(["--debug", "train", "pretrain", "--resume", str(tmp_path / "nothing")])


def poison_loss(monkeypatch, at_call: int) -> None:
    """The `at_call`-th SimSiam loss of the process is NaN (a bad pair, a diverged step)."""
    real, calls = loop.simsiam_loss, {"n": 0}

    def poisoned(*a):
        calls["n"] += 1
        out = real(*a)
        return out * float("nan") if calls["n"] == at_call else out
    monkeypatch.setattr(loop, "simsiam_loss", poisoned)


def ctrl_c_at(monkeypatch, at_call: int):
    """The `at_call`-th SimSiam loss of the process raises KeyboardInterrupt (a Ctrl-C mid-step); returns the real
    loss, to put back."""
    real, calls = loop.simsiam_loss, {"n": 0}

    def interrupted(*a):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return real(*a)
    monkeypatch.setattr(loop, "simsiam_loss", interrupted)
    return real


def test_a_run_killed_before_its_max_steps_resumes_to_them(tmp_path, monkeypatch):
    """`--max-steps 6` killed at step 5 (last.pt of step 4, --ckpt-every 2): `--resume RUN` stops at step 6, as the
    uninterrupted command did, with its losses and weights; only a run its own --max-steps stopped goes on past it."""
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "128", "--epochs", "2",
            "--batch-size", "32", "--lr", "0.05", "--val-fraction", "0", "--progress", "false", "--seed", "3",
            "--max-steps", "6", "--ckpt-every", "2"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    real = ctrl_c_at(monkeypatch, 5)
    assert main(args + ["--out", str(tmp_path / "killed")]) == 130
    monkeypatch.setattr(loop, "simsiam_loss", real)
    assert load_checkpoint(tmp_path / "killed", name="last.pt")["train_state"]["global_step"] == 4
    assert main(["train", "pretrain", "--resume", str(tmp_path / "killed")]) == 0
    whole, res = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "killed"))
    assert res["global_step"] == 6 and res["status"] == "stopped (max_steps)"
    assert [h["loss"] for h in res["history"]] == [h["loss"] for h in whole["history"]]
    a, b = load_checkpoint(tmp_path / "whole")["state_dict"], load_checkpoint(tmp_path / "killed")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    poison_loss(monkeypatch, 4)
    cfg = PretrainConfig(**{**TINY, "ckpt_every": 1})
    with pytest.raises(SqtoolError, match=r"loss is nan .*last good checkpoint kept"):
        run_pretrain(cfg, tmp_path)
    ck = load_checkpoint(tmp_path, name="last.pt")
    assert ck["train_state"]["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values() if v.is_floating_point())
    assert not list(tmp_path.glob(".*tmp"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "last.pt"
    save_checkpoint(p, kind="teacher_pretrain", model_cfg={"name": "a"}, state_dict={"w": torch.ones(3)})
    import sqtool.core.io as config

    def crash(*a, **k):                       # the process dies between writing the temp file and renaming
        raise KeyboardInterrupt
    monkeypatch.setattr(config.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(p, kind="teacher_pretrain", model_cfg={"name": "b"}, state_dict={"w": torch.zeros(3)})
    monkeypatch.undo()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["last.pt"]          # no temp file left
    ck = load_checkpoint(p)
    assert ck["model_cfg"]["name"] == "a" and torch.equal(ck["state_dict"]["w"], torch.ones(3))
    p.write_bytes(p.read_bytes()[:100])                                       # truncated by hand
    with pytest.raises(SqtoolError, match="corrupt"):
        load_checkpoint(p)


def _write_pairs(d, n=64, T=1200, dtype="float32", **contract):
    from sqtool.core import DEFAULT_BAND
    from sqtool.data.shards import ShardWriter
    rng = np.random.default_rng(0)
    header = {"fs": 40.0, "window_s": T / 40.0, "channels": ["ppg"], "norm": "minmax", "band": list(DEFAULT_BAND),
              **contract}
    w = ShardWriter(d, channels=1, samples=T, shard_mb=0.2, dtype=dtype, header=header)
    good, poor = rng.random((n, 1, T), dtype=np.float32), rng.random((n, 1, T), dtype=np.float32)
    w.add(good, poor, dataset="test", subjects=[f"s{i % 8}" for i in range(n)], t_good=np.zeros(n),
          t_poor=np.zeros(n), q_good=np.ones(n), q_poor=np.zeros(n), synthetic=np.zeros(n, bool))
    w.close()
    return good, poor


def test_pair_shards_random_access_and_training(tmp_path):
    good, poor = _write_pairs(tmp_path / "pairs")
    sp = ShardPairs(str(tmp_path / "pairs"))
    assert len(sp) == 64 and sp.input_shape == (1, 1200) and len(sp.arrs) > 1      # several shards
    idx = np.array([63, 0, 17, 40])
    a, b = sp.get(idx)
    assert np.array_equal(a, good[idx]) and np.array_equal(b, poor[idx])
    assert sp.groups.dtype == np.int32 and sorted(sp.subjects[np.unique(sp.groups)]) == [f"s{i}" for i in range(8)]
    m = run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs"), "batch_size": 16,
                                      "val_fraction": 0.25}), tmp_path / "run")
    assert m["train_pairs"] + m["val_pairs"] == 64 and m["global_step"] == m["train_pairs"] // 16


@pytest.mark.parametrize("extra, said", [
    (["--max-steps", "1"], "val not measured: the run stopped before the first epoch's end, where validation runs "
                           "(--val-every N: every N steps); {n} validation pairs"),
    (["--max-steps", "1", "--val-every", "2"], "val not measured: the run stopped before its first validation "
                                               "(every 2 steps); {n} validation pairs"),
    (["--val-fraction", "0"], "val n/a (no validation pairs: --val-fraction 0)"),
    ([], "val loss {loss}, val z std {z} (healthy ~0.125)"),
])
def test_summary_says_why_validation_has_no_number(tmp_path, capsys, extra, said):
    """A run stopped by --max-steps before an epoch's end never validated: the summary said 'val loss None,
    val z std n/a (validation set < 2 pairs)' beside metrics.json's hundreds of validation pairs."""
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "128", "--epochs", "1",
                 "--batch-size", "32", "--val-fraction", "0.25", "--progress", "false", "--out", str(tmp_path / "r"),
                 *extra]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    line = capsys.readouterr().out.splitlines()[1]
    z = None if m["val_z_std"] is None else round(m["val_z_std"], 4)
    want = said.format(n=m["val_pairs"], loss=None if m["val_loss"] is None else round(m["val_loss"], 4), z=z)
    assert f"epochs): loss " in line and line.endswith(f"{want} -> {tmp_path / 'r'}/model.pt"), line
    assert "None" not in line and (m["val_pairs"] > 1 or "fraction" in said)


def test_subjects_are_int_codes_and_the_split_is_unchanged(tmp_path):
    """Subjects stay int32 codes into a small sorted name table (no per-pair strings: 18 M pairs took 52 s and
    4 GB to split as strings), and the validation subjects are those the string split picked: the expected
    indices below were computed with the string version (sqtool before this change). index.json lists the
    subjects in first-seen order (s0, s7, s2, ...), so a split over those raw indices would pick others."""
    from sqtool.data.shards import ShardWriter
    from sqtool.train.pretrain import split_pairs
    n = 48
    w = ShardWriter(tmp_path, channels=1, samples=8, shard_mb=0.0005, dtype="float16", header={})
    x = np.zeros((n, 1, 8), np.float32)
    w.add(x, x, dataset="a", subjects=[f"s{(7 * i) % 12}" for i in range(n)], t_good=np.zeros(n), t_poor=np.zeros(n),
          q_good=np.ones(n), q_poor=np.zeros(n), synthetic=np.zeros(n, bool))
    index = w.close()
    sp = ShardPairs(str(tmp_path))
    assert len(sp.arrs) == 3 and sp.groups.dtype == np.int32 and sp.subjects.dtype.kind == "U"
    assert list(sp.subjects[sp.groups]) == [f"s{(7 * i) % 12}" for i in range(n)]
    expected = {0: [4, 7, 9, 16, 19, 21, 28, 31, 33, 40, 43, 45], 1: [6, 8, 10, 18, 20, 22, 30, 32, 34, 42, 44, 46],
                2: [7, 9, 11, 19, 21, 23, 31, 33, 35, 43, 45, 47]}
    raw = np.array([index["subjects"].index(f"s{(7 * i) % 12}") for i in range(n)])
    for seed, val in expected.items():
        tr, va = split_pairs(sp.groups, n, 0.25, seed)
        assert va.tolist() == val and tr.tolist() == sorted(set(range(n)) - set(val))
        assert split_pairs(sp.subjects[sp.groups], n, 0.25, seed)[1].tolist() == val      # names: the same split
        assert split_pairs(raw, n, 0.25, seed)[1].tolist() != val                          # (the test can tell)
    ap = ArrayPairs(np.zeros((n, 1, 8), np.float32), np.zeros((n, 1, 8), np.float32),
                    np.array([f"s{(7 * i) % 12}" for i in range(n)]))
    assert ap.groups.dtype == np.int32 and split_pairs(ap.groups, n, 0.25, 0)[1].tolist() == expected[0]


def test_bad_pairs_are_one_clear_error(tmp_path):
    with pytest.raises(SqtoolError, match="not found"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "missing")}), tmp_path / "r1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SqtoolError, match="index.json"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "empty")}), tmp_path / "r2")
    _write_pairs(tmp_path / "bad")
    shard = sorted((tmp_path / "bad" / "shards").glob("pairs-*.npy"))[0]
    shard.write_bytes(shard.read_bytes()[:1000])                          # truncated shard
    with pytest.raises(SqtoolError, match="corrupt|truncated"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "bad")}), tmp_path / "r3")
    _write_pairs(tmp_path / "short", T=400)                               # 10 s windows for a 30 s model
    with pytest.raises(SqtoolError, match="expects"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "short")}), tmp_path / "r4")
    pairs = ArrayPairs(np.zeros((8, 1, 1200), np.float32), np.zeros((8, 1, 1200), np.float32), np.arange(8))
    with pytest.raises(SqtoolError, match="fewer than one batch"):
        run_pretrain(PretrainConfig(**TINY), tmp_path / "r5", pairs=pairs)
    with pytest.raises(SqtoolError, match="fp16 needs a CUDA"):
        run_pretrain(PretrainConfig(**{**TINY, "amp": "fp16"}), tmp_path / "r6")
    assert not list(tmp_path.rglob("*.pt"))                               # nothing half written
    assert main(["train", "pretrain", "--pairs", str(tmp_path / "missing"), "--out", str(tmp_path / "cli")]) == 1
    assert not (tmp_path / "cli").exists()                                # refused before the run dir is made


@pytest.mark.parametrize("contract, what", [
    ({"fs": 20.0, "window_s": 60.0}, "fs 20, window_s 60"),          # same 1200 samples, other rate
    ({"norm": "zscore"}, "norm zscore"),
    ({"band": [0.1, 3.0]}, "band 0.1-3"),
    ({"channels": ["acc_x"]}, "channels acc_x"),
])
def test_pairs_made_under_another_contract_are_refused(tmp_path, contract, what):
    _write_pairs(tmp_path / "pairs", **contract)
    cfg = PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs")})
    with pytest.raises(SqtoolError, match="were made with") as e:
        run_pretrain(cfg, tmp_path / "run")
    assert what in str(e.value) and "resnet1d_siamq_tiny expects" in str(e.value)
    assert not (tmp_path / "run" / "model.pt").exists()
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(tmp_path / "pairs"),
                 "--out", str(tmp_path / "cli")]) == 1
    assert not (tmp_path / "cli").exists()                                # refused before the run dir is made


def test_modified_shard_is_refused_once_verified(tmp_path):
    from sqtool.core import sha256_file_cached
    _write_pairs(tmp_path / "pairs")
    sp = ShardPairs(str(tmp_path / "pairs"))                              # hashes (and caches) every shard
    shard = sorted((tmp_path / "pairs" / "shards").glob("pairs-*.npy"))[-1]
    before = sha256_file_cached(shard)
    b = bytearray(shard.read_bytes())
    b[-1] ^= 0xFF                                                         # same size, same shape: only the hash sees it
    shard.write_bytes(bytes(b))
    assert sha256_file_cached(shard) != before                            # the cache saw the write
    with pytest.raises(SqtoolError, match="sha256 differs") as e:
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs")}), tmp_path / "run")
    assert str(shard) in str(e.value) and len(sp) == 64
    assert main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(tmp_path / "pairs"),
                 "--out", str(tmp_path / "cli")]) == 1
    assert not (tmp_path / "cli").exists()

def test_shards_are_hashed_once_per_machine(tmp_path, monkeypatch):
    """verify_pairs: local rank 0 hashes every shard; another rank of the machine hashes none and trusts the
    verdict the ranks agree on (loop.first_error, faked here: no process group), so a changed shard stops it
    with rank 0's line. The CLI's pre-check hashes nothing (it runs on every rank before the process group)."""
    from sqtool.cli import main as cli_main
    from sqtool.data import shards
    from sqtool.train.pretrain import verify_pairs
    _write_pairs(tmp_path / "pairs")
    sp = ShardPairs(str(tmp_path / "pairs"), verify=False)
    shard = sorted((tmp_path / "pairs" / "shards").glob("pairs-*.npy"))[-1]
    b = bytearray(shard.read_bytes())
    b[-1] ^= 0xFF                                                         # same size and shape: only the hash sees it
    shard.write_bytes(bytes(b))
    hashed, verdicts = [], []
    real_hash = shards.sha256_file_cached
    monkeypatch.setattr(shards, "sha256_file_cached", lambda p: hashed.append(p) or real_hash(p))
    rank0_line = None

    def agree(d, msg):                          # what all_reduce + all_gather give (rank 0 fails the last shard)
        verdicts.append(msg)
        return msg if d.local_rank == 0 else rank0_line if len(verdicts) == len(sp.arrs) else None
    monkeypatch.setattr(loop, "first_error", agree)
    monkeypatch.setattr(loop, "barrier", lambda d: None)     # stop_together's, before every rank stops with the line
    with pytest.raises(SqtoolError, match="sha256 differs") as e:
        verify_pairs(sp, loop.Dist(rank=0, world=2, local_rank=0))
    assert len(hashed) == len(sp.arrs) and str(shard) in str(e.value)
    rank0_line, hashed[:], verdicts[:] = str(e.value), [], []
    with pytest.raises(SqtoolError) as e1:
        verify_pairs(sp, loop.Dist(rank=1, world=2, local_rank=1))
    assert not hashed and str(e1.value) == rank0_line and verdicts == [None] * len(sp.arrs)
    rank0_line = None
    verify_pairs(sp, loop.Dist(rank=1, world=2, local_rank=1))             # nothing wrong said: trusted, no read
    assert not hashed
    assert cli_main(["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--pairs", str(tmp_path / "pairs"),
                     "--out", str(tmp_path / "cli"), "--progress", "false"]) == 1
    assert hashed and not (tmp_path / "cli").exists()                      # hashed by run_pretrain, refused


def test_pairs_without_a_contract_are_refused(tmp_path):
    from sqtool.data.shards import ShardWriter
    w = ShardWriter(tmp_path / "pairs", channels=1, samples=1200, shard_mb=0.2, dtype="float32")
    w.add(np.zeros((8, 1, 1200)), np.zeros((8, 1, 1200)), dataset="t", subjects=["a"] * 8, t_good=np.zeros(8),
          t_poor=np.zeros(8), q_good=np.ones(8), q_poor=np.zeros(8), synthetic=np.zeros(8, bool))
    w.close()
    with pytest.raises(SqtoolError, match="lacks fs, window_s, channels, norm, band"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "pairs")}), tmp_path / "run")


def test_bf16_autocast_runs_on_cpu(tmp_path):
    m = run_pretrain(PretrainConfig(**{**TINY, "amp": "bf16", "synthetic_pairs": 64}), tmp_path)
    assert m["amp"] == "bfloat16" and all(math.isfinite(h["loss"]) for h in m["history"])


def test_a_derived_model_cfg_pretrains_on_its_own_windows_and_is_saved(tmp_path):
    from sqtool.core.checkpoint import load_checkpoint
    from sqtool.models import get_model_cfg
    mc = get_model_cfg("resnet1d_siamq_tiny", fs=25.0, window_s=8.0, channels=("ppg", "acc_x"), norm="zscore")
    rng = np.random.default_rng(0)
    pairs = ArrayPairs(rng.standard_normal((16, 2, 200)).astype(np.float32),
                       rng.standard_normal((16, 2, 200)).astype(np.float32), np.repeat(np.arange(4), 4))
    cfg = PretrainConfig(model="resnet1d_siamq_tiny", pairs="in-memory", epochs=1, batch_size=8, val_fraction=0.0,
                         progress=False)
    with pytest.raises(SqtoolError, match="input_shape|expects"):
        run_pretrain(cfg, tmp_path / "registry", pairs=pairs)                    # the registry's 40 Hz x 30 s PPG
    m = run_pretrain(cfg, tmp_path / "derived", pairs=pairs, model_cfg=mc)
    assert np.isfinite(m["final_loss"])
    saved = load_checkpoint(tmp_path / "derived" / "model.pt", expect_kind="teacher_pretrain")["model_cfg"]
    assert saved["fs"] == 25.0 and saved["channels"] == ["ppg", "acc_x"] and saved["task"] == "pretrain"
    with pytest.raises(SqtoolError, match="is not the model"):
        run_pretrain(cfg, tmp_path / "other", pairs=pairs, model_cfg=get_model_cfg("resnet1d_siamq_tiny_10s"))


def test_a_model_without_simsiam_is_refused_before_the_pairs_are_read(tmp_path, capsys):
    """`train pretrain --model cnn1d_student_xs` is refused by the registry's `pretrains`, in the words of `data
    pairs --model`, before its --pairs folder is opened (an empty folder here: opening it would say 'no shards')."""
    from sqtool.models import no_simsiam_reason
    (tmp_path / "pairs").mkdir()
    assert main(["train", "pretrain", "--model", "cnn1d_student_xs", "--pairs", str(tmp_path / "pairs"),
                 "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: train pretrain --model cnn1d_student_xs: {no_simsiam_reason('cnn1d_student_xs')}"], err
    assert "give a resnet1d or spec_cnn model" in err[0] and not (tmp_path / "run").exists()
    with pytest.raises(SqtoolError, match="cnn1d_student model has no SimSiam encoder"):   # the library call too
        run_pretrain(PretrainConfig(**{**TINY, "model": "cnn1d_student_xs", "pairs": str(tmp_path / "pairs")}),
                     tmp_path / "lib")


def test_nan_before_any_checkpoint_does_not_point_at_an_earlier_runs_last_pt(tmp_path, monkeypatch):
    """--force into a folder that holds an earlier run's last.pt: a NaN before this run's first checkpoint says
    none of this run's was written (it named the earlier run's file as 'last good checkpoint kept')."""
    run_pretrain(PretrainConfig(**TINY), tmp_path)                       # an earlier run: its last.pt stays
    poison_loss(monkeypatch, 2)
    with pytest.raises(SqtoolError, match=r"loss is nan .*no checkpoint of this run written yet \(the last.pt "
                                          r"there is an earlier run's\)"):
        run_pretrain(PretrainConfig(**{**TINY, "lr": 0.2}), tmp_path)


def sigterm_at_step(monkeypatch, step: int) -> None:
    """This process sends itself a SIGTERM during its `step`-th training step (as a preemption would)."""
    import signal
    real, calls = loop.simsiam_loss, {"n": 0}

    def loss(*a):
        if torch.is_grad_enabled():                                  # training steps, not validation
            calls["n"] += 1
            if calls["n"] == step:
                os.kill(os.getpid(), signal.SIGTERM)
        return real(*a)
    monkeypatch.setattr(loop, "simsiam_loss", loss)


@pytest.mark.parametrize("where", ["mid-epoch", "epoch end"])
def test_a_sigterm_saves_the_step_it_stops_at_and_the_resume_continues_bit_for_bit(tmp_path, monkeypatch, capsys,
                                                                                    where):
    """A SIGTERM (a preemption) in the first epoch, with last.pt written only at epoch ends (the default): the run
    ends the step it is in, writes last.pt at that step, keeps its folder, names the resume command and exits 143
    (it saved nothing and the folder went). The resume then equals an uninterrupted run: every loss, every
    validation, the weights. The SIGTERM handler is the caller's again afterwards."""
    import signal
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "192", "--epochs", "2",
            "--batch-size", "32", "--lr", "0.05", "--lr-step-epochs", "1", "--val-fraction", "0.2", "--progress",
            "false", "--seed", "5"]                                   # the lr halves at the epoch's end
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    at = 2 if where == "mid-epoch" else full["steps_per_epoch"]
    assert 2 <= at <= full["steps_per_epoch"] and full["val_pairs"] > 0
    capsys.readouterr()

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    sigterm_at_step(monkeypatch, at)
    run = tmp_path / "cut"
    assert main(args + ["--out", str(run)]) == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL                 # put back
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"sqtool: terminated (SIGTERM); continue with: sqtool train pretrain --resume {run}", err
    assert f"SIGTERM: stopped after global step {at} (epoch 1, step {at} of {full['steps_per_epoch']}); " \
           f"{run / 'last.pt'} saved" in err
    st = load_checkpoint(run, name="last.pt")["train_state"]
    assert (st["epoch"], st["step_in_epoch"], st["global_step"], len(st["history"])) == (0, at, at, at)
    assert not (run / "metrics.json").exists() and not (run / "model.pt").exists()
    monkeypatch.undo()

    assert main(["train", "pretrain", "--resume", str(run)]) == 0
    res = json.loads((run / "metrics.json").read_text())
    assert [h["loss"] for h in res["history"]] == [h["loss"] for h in full["history"]]        # exactly
    assert res["history"] == full["history"] and len({h["lr"] for h in res["history"]}) == 2
    assert res["val_history"] == full["val_history"] and res["status"] == "done"
    a, b = load_checkpoint(tmp_path / "full")["state_dict"], load_checkpoint(run)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_sigterm_handler_is_installed_only_while_the_loop_runs(tmp_path, monkeypatch):
    """The library call: a run that ends normally leaves the caller's SIGTERM handler as it was, and one that a
    SIGTERM stops hands the signal on to it (here a handler that records it) after writing last.pt; the metrics
    then say why the run stopped."""
    import signal
    got = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        mine = signal.getsignal(signal.SIGTERM)
        seen = []
        real_step = loop.SigtermStop.__enter__

        def enter(self):
            out = real_step(self)
            seen.append(signal.getsignal(signal.SIGTERM))
            return out
        monkeypatch.setattr(loop.SigtermStop, "__enter__", enter)
        run_pretrain(PretrainConfig(**TINY), tmp_path / "a")
        assert signal.getsignal(signal.SIGTERM) is mine and got == [] and seen and seen[0] is not mine
        sigterm_at_step(monkeypatch, 2)
        m = run_pretrain(PretrainConfig(**{**TINY, "epochs": 2}), tmp_path / "b")
        assert got == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is mine
        assert m["status"] == "stopped (SIGTERM)" and m["global_step"] == 2
        assert load_checkpoint(tmp_path / "b", name="last.pt")["train_state"]["global_step"] == 2
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_loss_headline_compares_the_first_and_the_last_epochs_means(tmp_path, capsys):
    """`loss A -> B` set step 1's single batch against the last epoch's mean (-0.0132 -> -0.0109 read as rising
    while the epoch means fell): now both are epoch means, and step 1's loss is `first_step_loss`."""
    assert main(["train", "pretrain", "--synthetic-pairs", "128", "--epochs", "3", "--batch-size", "32", "--lr",
                 "0.05", "--val-fraction", "0", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    losses, n = [h["loss"] for h in m["history"]], m["steps_per_epoch"]
    assert len(losses) == 3 * n and n > 1
    assert m["first_loss"] == pytest.approx(np.mean(losses[:n]), abs=1e-12) and m["first_step_loss"] == losses[0]
    assert m["final_loss"] == pytest.approx(np.mean(losses[-n:]), abs=1e-12)
    assert m["first_loss"] != losses[0]
    out = capsys.readouterr().out
    assert f"loss {m['first_loss']:.4f} -> {m['final_loss']:.4f} (first and last epoch's mean)," in out


def test_a_stopped_torchrun_run_offers_its_torchrun_form(tmp_path, capsys):
    """A run stopped by --max-steps under torchrun (config.yaml: world_size 2) is offered the torchrun command that
    continues it bit for bit, not the one-process line (which continues it on one process, not bit for bit)."""
    from sqtool.core.runs import save_resolved
    from sqtool.train.cli import _print_pretrain
    from sqtool.train.pretrain import PretrainConfig
    cfg = PretrainConfig(**TINY)
    save_config(tmp_path, cfg)
    save_resolved(tmp_path, world_size=2, nproc_per_node=2)
    _print_pretrain(cfg, tmp_path, {"status": "stopped", "first_loss": None, "epochs_done": 0})
    nxt = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next:")]
    assert len(nxt) == 1 and nxt[0].startswith("next: torchrun --standalone --nproc_per_node 2 -m sqtool.cli train "
                                               f"pretrain --resume {tmp_path}   ("), nxt


@pytest.mark.parametrize("subjects, noted", [(1, True), (2, True), (3, False)])
def test_a_random_validation_split_says_so(tmp_path, capsys, subjects, noted):
    """Fewer than 3 subjects: the validation pairs are random pairs, which may share windows with training
    pairs; one note line says so (the help promised a split by subject, and nothing said it was not)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 1200)).astype(np.float32)
    pairs = ArrayPairs(x, x[::-1].copy(), np.arange(64) % subjects)
    run_pretrain(PretrainConfig(**{**TINY, "val_fraction": 0.25, "batch_size": 16}), tmp_path / "r", pairs=pairs)
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "validation pairs are random" in ln]
    if not noted:
        assert notes == []
        return
    assert len(notes) == 1 and notes[0].startswith("sqtool: note: the 16 validation pairs are random pairs, not "
                                                   f"held-out subjects (the pairs hold {subjects} subject")
    assert "may share a window" in notes[0]
    run_pretrain(PretrainConfig(**{**TINY, "batch_size": 16}), tmp_path / "none", pairs=pairs)   # no validation
    assert "validation pairs are random" not in capsys.readouterr().err


def _write_spectral_pairs(d, n: int = 32):
    """Pairs as `data pairs --model spec_student_s` writes them: (4, 134) front-end spectra."""
    from sqtool.data.shards import ShardWriter
    from sqtool.models import get_model_cfg
    mc = get_model_cfg("spec_student_s")
    header = {"fs": mc.fs, "window_s": mc.window_s, "channels": list(mc.channels), "norm": mc.norm,
              "band": list(mc.band), "model": mc.name}
    w = ShardWriter(d, channels=4, samples=134, shard_mb=1, dtype="float16", header=header)
    x = np.zeros((n, 4, 134), np.float32)
    w.add(x, x, dataset="t", subjects=[f"s{i % 4}" for i in range(n)], t_good=np.zeros(n), t_poor=np.zeros(n),
          q_good=np.ones(n), q_poor=np.zeros(n), synthetic=np.zeros(n, bool))
    w.close()


def test_pairs_another_model_reads_are_refused_naming_the_models_that_read_them(tmp_path, capsys):
    """The default time-domain model on spectral pairs said to remake the pairs with --fs/--window-s/.../--norm,
    which cannot make spectral norm: the line names the registry models that read the pairs (their front end), and
    remaking them for the model asked for is `data pairs --model` (which makes either kind)."""
    _write_spectral_pairs(tmp_path / "spairs")
    assert main(["train", "pretrain", "--pairs", str(tmp_path / "spairs"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "norm spectrum_max" in err[0] and "resnet1d_siamq_tiny expects" in err[0], err
    assert err[0].endswith("(these pairs are read by spec_student_s, spec_student_xs, spec_teacher_m: give one as "
                           "--model, or remake them for resnet1d_siamq_tiny from their data with `sqtool data pairs "
                           "--model resnet1d_siamq_tiny`)"), err
    assert "--norm" not in err[0] and not (tmp_path / "r").exists()
    assert main(["train", "pretrain", "--model", "spec_student_xs", "--pairs", str(tmp_path / "spairs"),
                 "--epochs", "1", "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "ok")]) == 0
    _write_pairs(tmp_path / "short", T=400)                               # 10 s windows for the 30 s default
    with pytest.raises(SqtoolError, match=r"read by resnet1d_siamq_tiny_10s: give one as --model"):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "short")}), tmp_path / "r4")
    _write_pairs(tmp_path / "odd", T=280)                                 # 7 s: no registered model
    with pytest.raises(SqtoolError, match=r"\(no registered model reads these pairs: remake them for "):
        run_pretrain(PretrainConfig(**{**TINY, "pairs": str(tmp_path / "odd")}), tmp_path / "r5")


def test_a_forced_run_stopped_before_its_first_checkpoint_does_not_resume_the_earlier_run(tmp_path, monkeypatch,
                                                                                          capsys):
    """`--force` into a folder holding an earlier run's last.pt, stopped before this run's first checkpoint (a
    kill or Ctrl-C in its first epoch, hours at hospital scale with the default epoch-end checkpoints): `--resume`
    continued the EARLIER run (a sweep asked for --lr 0.001 and got 5 more steps at the earlier run's 0.0001, from its
    step 45, and config.yaml rewritten to say 0.0001), with no word. The earlier last.pt is not this run's: it goes
    when the run starts, so the resume says there is nothing of this run to continue."""
    out = str(tmp_path / "pt")
    args = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "128", "--epochs", "1",
            "--batch-size", "32", "--val-fraction", "0", "--no-progress", "--out", out]
    assert main(args + ["--lr", "0.05"]) == 0                             # the earlier run, finished
    real = ctrl_c_at(monkeypatch, 2)
    assert main(args + ["--lr", "0.01", "--force"]) == 130               # stopped in its first epoch
    monkeypatch.setattr(loop, "simsiam_loss", real)
    capsys.readouterr()
    assert main(["train", "pretrain", "--resume", out]) == 1
    assert "last.pt not found" in capsys.readouterr().err


def test_a_long_runs_step_history_is_thinned_and_its_epoch_means_stay_exact(tmp_path, monkeypatch):
    """A million-step run kept every step's record on every rank, in last.pt and in metrics.json (320 MB, 136 MB):
    past HISTORY_CAP records every other one is kept, the stride doubled (`history_every`), while the epochs' mean
    losses (first_loss, final_loss, the curve) and step 1's loss are those of every step. Here the cap is 4 steps."""
    import sqtool.train.pretrain as P
    cfg = PretrainConfig(**{**TINY, "epochs": 3})                                  # 4 steps per epoch, 12 in all
    full = run_pretrain(cfg, tmp_path / "full")
    monkeypatch.setattr(P, "HISTORY_CAP", 4)
    thin = run_pretrain(cfg, tmp_path / "thin")
    losses, n = [h["loss"] for h in full["history"]], full["steps_per_epoch"]
    assert len(losses) == 12 and n == 4 and full["history_every"] == 1
    assert thin["history_every"] == 4 and [h["step"] for h in thin["history"]] == [4, 8, 12]
    assert thin["history"] == [h for h in full["history"] if h["step"] % 4 == 0]
    assert thin["first_loss"] == pytest.approx(np.mean(losses[:n]), abs=1e-12) == full["first_loss"]
    assert thin["final_loss"] == pytest.approx(np.mean(losses[-n:]), abs=1e-12) == full["final_loss"]
    assert thin["first_step_loss"] == losses[0] == full["first_step_loss"]
    st = load_checkpoint(tmp_path / "thin", name="last.pt")["train_state"]
    assert len(st["history"]) == 3 and st["epoch_loss"][2][1] == 4


def test_a_last_pt_of_before_the_thinned_history_resumes_to_the_same_metrics(tmp_path):
    """A last.pt written before record_step (its train_state holds the whole history, no epoch sums) resumes to the
    epoch means and step-1 loss of an uninterrupted run."""
    cfg = PretrainConfig(**{**TINY, "epochs": 2})
    full = run_pretrain(cfg, tmp_path / "full")
    run_pretrain(PretrainConfig(**{**TINY, "epochs": 2, "max_steps": 6}), tmp_path / "cut")
    ck = load_checkpoint(tmp_path / "cut", name="last.pt")
    for k in ("epoch_loss", "history_every", "first_step_loss"):
        del ck["train_state"][k]
    saved = {k: v for k, v in ck.items() if k not in ("sqtool_version", "path", "created")}   # load_checkpoint's
    save_checkpoint(tmp_path / "cut" / "last.pt", **saved)
    res = run_pretrain(cfg, tmp_path / "cut", resume=True)
    assert res["global_step"] == 8 and res["history"] == full["history"]
    assert (res["first_loss"], res["final_loss"], res["first_step_loss"]) == \
        (full["first_loss"], full["final_loss"], full["first_step_loss"])


def test_a_torchrun_run_resumed_in_one_process_keeps_no_launcher_in_its_config(tmp_path):
    """config.yaml's resolved `launcher: sqtool-torchrun` (what its next: and resume lines are spelled from) stayed after
    a plain one-process resume, which resolved world_size 1: the file said two launches at once."""
    import yaml

    from sqtool.core.runs import save_resolved
    run_pretrain(PretrainConfig(**{**TINY, "epochs": 2, "max_steps": 2}), tmp_path)
    save_resolved(tmp_path, launcher="sqtool-torchrun", world_size=2, nproc_per_node=2)     # as a 2-rank part wrote
    run_pretrain(PretrainConfig(**{**TINY, "epochs": 2}), tmp_path, resume=True)
    res = yaml.safe_load((tmp_path / "config.yaml").read_text())["resolved"]
    assert "launcher" not in res and res["world_size"] == 1 and res["nproc_per_node"] == 1
