"""Real pairs only: no synthetic partner without the explicit flag, statistics written, clear bad input."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.pairs import PairsConfig, mine_pairs, register_cli
from sqtool.data.shards import read_index
from sqtool.data.synthetic import synth_record


def _npz_folder(path, n, artifacts, seed=0):
    path.mkdir()
    for i in range(n):
        rec = synth_record(300, artifacts=artifacts, seed=seed + i, subject=f"s{i}")
        np.savez(path / f"s{i}.npz", ppg=rec.signals["ppg"], fs=rec.fs["ppg"], subject=f"s{i}",
                 record_id=f"s{i}", dataset=path.name)
    return path


def _synthetic_flags(out):
    root, index = read_index(out)
    return np.concatenate([np.load(root / s["meta"])["synthetic"] for s in index["shards"]])


def test_corpus_without_the_flag_has_zero_synthetic_partners(tmp_path):
    out = tmp_path / "real"
    cfg = PairsConfig(data_root="synthetic", synthetic_subjects=3, synthetic_duration_s=300, out=str(out),
                      workers=1, window_s=10, max_gap_s=20)
    m = mine_pairs(cfg, progress=False)
    assert m["pairs"] == m["real_pairs"] > 0 and m["synthetic_pairs"] == 0 and m["synthetic_partners"] is False
    assert not _synthetic_flags(out).any()
    _, index = read_index(out)
    assert index["synthetic_partners"] is False and index["synthetic_pairs"] == 0

    out2 = tmp_path / "with_flag"
    m2 = mine_pairs(PairsConfig(**{**cfg.__dict__, "out": str(out2), "synthetic_fallback": True}), progress=False)
    flags = _synthetic_flags(out2)
    assert m2["synthetic_partners"] is True and m2["synthetic_pairs"] == int(flags.sum()) > 0
    assert m2["real_pairs"] == m["real_pairs"]                       # the flag adds partners, never replaces


def test_pair_statistics_are_written(tmp_path):
    out = tmp_path / "stats"
    m = mine_pairs(PairsConfig(data_root="synthetic", synthetic_subjects=3, synthetic_duration_s=300,
                               out=str(out), workers=1, window_s=10), progress=False)
    st = json.loads((out / "pair_stats.json").read_text())
    d = st["datasets"]["synthetic"]
    assert st["synthetic_partners"] is False and st["total"]["real_pairs"] == m["real_pairs"]
    assert d["subjects"] == 3 and 1 <= d["subjects_with_pairs"] <= 3 and d["pairs"] == m["pairs"]
    assert 0 < d["quality_gap_mean"] <= 1 and d["quality_gap_median"] > 0           # good minus poor
    assert 0 < d["time_gap_s_mean"] <= 300 and 1 <= d["poor_used"] <= d["poor"]
    md = (out / "pair_stats.md").read_text()
    assert "real pairs only" in md and "| synthetic |" in md and "| total |" in md
    assert json.loads((out / "metrics.json").read_text())["datasets"]["synthetic"]["quality_gap_mean"] is not None


def test_dataset_with_no_poor_window_is_a_clear_message(tmp_path, capsys):
    clean = _npz_folder(tmp_path / "clean", 2, artifacts=0.0)
    out = tmp_path / "out"
    with pytest.raises(SqtoolError, match=r"no \(good, poor\) pair.*clean \d+ windows, \d+ good, 0 poor.*"
                                          r"--synthetic-partners") as e:
        mine_pairs(PairsConfig(input=[str(clean)], out=str(out), workers=1, window_s=10), progress=False)
    assert "\n" not in str(e.value) and not out.exists()             # one line, nothing half-written
    # next to a dataset that has pairs: the run goes on and says why the clean one gave none
    noisy = _npz_folder(tmp_path / "noisy", 2, artifacts=0.4, seed=10)
    m = mine_pairs(PairsConfig(input=[str(clean), str(noisy)], out=str(out), workers=1, window_s=10), progress=True)
    assert m["datasets"]["clean"]["pairs"] == 0 and m["datasets"]["noisy"]["pairs"] > 0
    assert m["datasets"]["clean"]["no_pairs_reason"].startswith("no poor window")
    assert "clean gives no pair (no poor window" in capsys.readouterr().err


def test_model_flag_sets_the_window_contract_and_cli_spelling(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(["pairs", "--data", "synthetic", "--synthetic-subjects", "2", "--synthetic-duration-s",
                              "300", "--out", str(out), "--workers", "1", "--model", "resnet1d_siamq_tiny_10s",
                              "--synthetic-partners", "--no-progress"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "with a synthetic partner" in text and "pair_stats.md" in text
    # the hint names the model the pairs were made for (pretrain's default model reads another window)
    assert text.strip().splitlines()[-1] == f"next: sqtool train pretrain --pairs {out} --model resnet1d_siamq_tiny_10s"
    _, index = read_index(out)
    assert index["window_s"] == 10 and index["pair_shape"] == [2, 1, 400] and index["synthetic_partners"] is True


def test_synthetic_corpus_flags_beside_real_data_are_refused(tmp_path, capsys):
    """--synthetic-subjects / --synthetic-duration-s shape the synthetic corpus only: beside real --data they were
    silently ignored (every recording mined, exit 0). Now one line naming them, before any folder is made; a
    --config file's keys (a run's own config.yaml holds every field) are not refused."""
    from sqtool.cli import main
    ward = _npz_folder(tmp_path / "ward", 2, artifacts=0.5)
    out = tmp_path / "pairs"
    assert main(["data", "pairs", "--data", str(ward), "--synthetic-subjects", "3", "--workers", "1",
                 "--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: data pairs --synthetic-subjects: it shapes the synthetic corpus of --data "
                   f"synthetic only; --data {ward} mines every recording there (drop --synthetic-subjects, or give "
                   f"--data synthetic)"]
    assert not out.exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synthetic_subjects: 3\nsynthetic_duration_s: 60\n")
    assert main(["data", "pairs", "--data", str(ward), "--config", str(cfg), "--synthetic-partners", "--workers", "1",
                 "--no-progress", "--out", str(out)]) == 0
