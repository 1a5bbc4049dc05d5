"""Pair mining and the streaming shard dataset."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqtool.core import SqtoolError
from sqtool.data.pairs import PairsConfig, match_pairs, mine_pairs, record_pairs, register_cli
from sqtool.data.shards import PairShardDataset, ShardWriter, read_index
from sqtool.data.synthetic import synth_record


# ----------------------------------------------------------------------------- the matcher

@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_match_pairs_properties(data):
    n = data.draw(st.integers(0, 60))
    t0 = np.sort(np.asarray(data.draw(st.lists(st.floats(0, 3600), min_size=n, max_size=n)), dtype=np.float64))
    good = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    gap = data.draw(st.floats(0, 1200))
    gi, pi = match_pairs(t0, good, gap)
    assert gi.shape == pi.shape
    assert np.all(good[gi]) and not np.any(good[pi])            # good first, poor second
    assert np.all(np.abs(t0[gi] - t0[pi]) <= gap)               # within the max gap
    assert len(set(gi.tolist())) == gi.size                     # each good window used once
    poor_t = t0[~good]
    for g, p in zip(gi, pi):                                    # the partner is the nearest poor window
        assert abs(t0[g] - t0[p]) <= np.min(np.abs(poor_t - t0[g])) + 1e-12
    paired = set(gi.tolist())
    for g in np.flatnonzero(good):                              # nobody within reach is left out
        if poor_t.size and np.min(np.abs(poor_t - t0[g])) <= gap:
            assert g in paired


def test_match_pairs_tie_prefers_the_earlier_poor_window():
    gi, pi = match_pairs(np.array([0.0, 30.0, 60.0]), np.array([False, True, False]), 300)
    assert gi.tolist() == [1] and pi.tolist() == [0]


# ----------------------------------------------------------------------------- one record

def test_record_pairs_on_synthetic():
    rec = synth_record(600, artifacts=0.3, seed=3, subject="s7")
    cfg = PairsConfig(channels=["ppg", "acc_x"], max_gap_s=120)
    r = record_pairs(rec, cfg)
    assert r["windows"] == 20 and r["good"] + r["poor"] == 20 and r["pairs"] > 0
    assert r["x_good"].shape == (r["pairs"], 2, 1200) and r["x_good"].dtype == np.float16
    assert np.all(r["q_good"] > 0.5) and np.all(r["q_poor"] <= 0.5)
    assert np.all(np.abs(r["t_good"] - r["t_poor"]) <= 120)
    assert float(r["x_good"].min()) >= 0 and float(r["x_good"].max()) <= 1       # min-max normalised
    short = record_pairs(synth_record(20, seed=1), cfg)
    assert short["short"] == 1 and short["pairs"] == 0


def test_synthetic_fallback_only_when_asked():
    rec = synth_record(300, artifacts=0.0, seed=5)             # clean: every window good, no poor partner
    r = record_pairs(rec, PairsConfig())
    assert r["good"] == 10 and r["pairs"] == 0
    r = record_pairs(rec, PairsConfig(synthetic_fallback=True), np.random.default_rng(0))
    assert r["pairs"] == 10 and r["synthetic"] == 10 and r["synth"].all()
    assert not np.array_equal(r["x_good"], r["x_poor"])


# ----------------------------------------------------------------------------- the run and the dataset

@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "pairs"
    cfg = PairsConfig(data_root="synthetic", synthetic_subjects=4, synthetic_duration_s=600, out=str(out),
                      workers=2, shard_mb=0.05, max_gap_s=300)
    m = mine_pairs(cfg, progress=False)
    return out, m


def test_mine_pairs_outputs(pairs_dir):
    out, m = pairs_dir
    for f in ("config.yaml", "metrics.json", "index.json"):
        assert (out / f).is_file()
    root, index = read_index(out)
    assert index["n_pairs"] == m["pairs"] == sum(s["n"] for s in index["shards"]) > 0
    assert len(index["shards"]) > 1                                     # 0.05 MB shards: several
    for s in index["shards"]:
        assert s["bytes"] <= 0.05 * 2**20 + 1024                        # at most --shard-mb (+ npy header)
        a = np.load(root / s["file"], mmap_mode="r")
        assert a.shape == (s["n"], 2, 1, 1200) and a.dtype == np.float16
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["datasets"]["synthetic"]["records"] == 4 and metrics["windows_per_s"] > 0
    assert metrics["peak_rss_mb_main"] > 0


def test_every_pair_is_same_subject_within_gap(pairs_dir):
    out, _ = pairs_dir
    root, index = read_index(out)
    for s in index["shards"]:
        meta = np.load(root / s["meta"])
        assert np.all(np.abs(meta["t_good"] - meta["t_poor"]) <= index["max_gap_s"])
        assert np.all(meta["q_good"] > index["threshold"]) and np.all(meta["q_poor"] <= index["threshold"])
        assert set(meta["subject"].tolist()) <= set(range(len(index["subjects"])))


def _ids(ds):
    return sorted((m["subject"], m["t_good"]) for _, _, m in ds)


def test_dataset_streams_every_pair_once_across_ranks_and_workers(pairs_dir):
    import torch

    out, m = pairs_dir
    full = PairShardDataset(out, rank=0, world_size=1, return_meta=True, shuffle_buffer=16)
    items = list(full)
    assert len(items) == len(full) == m["pairs"]
    g, p, meta = items[0]
    assert g.dtype == torch.float32 and g.shape == (1, 1200) and p.shape == (1, 1200)
    everything = _ids(items)
    assert len(set(everything)) == len(everything)
    # two ranks x two DataLoader workers: disjoint, equal per rank, and together everything (drop_last)
    seen = []
    for rank in (0, 1):
        ds = PairShardDataset(out, rank=rank, world_size=2, return_meta=True, seed=1)
        dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        got = [(int(mm["subject"]), float(mm["t_good"])) for _, _, mm in dl]
        assert len(got) == len(ds) == m["pairs"] // 2
        seen += got
    assert len(set(seen)) == len(seen) == 2 * (m["pairs"] // 2)
    assert set(seen) <= set(everything)


def test_dataset_shuffle_is_seeded_by_epoch(pairs_dir):
    out, _ = pairs_dir
    ds = PairShardDataset(out, return_meta=True, seed=3, shuffle_buffer=32)
    a = [(m["subject"], m["t_good"]) for _, _, m in ds]
    b = [(m["subject"], m["t_good"]) for _, _, m in ds]
    ds.set_epoch(1)
    c = [(m["subject"], m["t_good"]) for _, _, m in ds]
    assert a == b and a != c and sorted(a) == sorted(c)
    plain = [(m["subject"], m["t_good"]) for _, _, m in PairShardDataset(out, shuffle=False, return_meta=True)]
    assert plain != a and sorted(plain) == sorted(a)


def test_corrupt_or_missing_shard_is_one_line_error(pairs_dir, tmp_path):
    import shutil

    out, _ = pairs_dir
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    _, index = read_index(bad)
    shard = bad / index["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:1000])                         # truncated
    with pytest.raises(SqtoolError, match="corrupt|truncated"):
        PairShardDataset(bad)
    shard.unlink()
    with pytest.raises(SqtoolError, match="missing"):
        PairShardDataset(bad)
    (bad / "index.json").write_text("{not json")
    with pytest.raises(SqtoolError, match="corrupt"):
        PairShardDataset(bad)
    with pytest.raises(SqtoolError, match="no index.json"):
        PairShardDataset(tmp_path / "nothing")


@pytest.mark.parametrize("key, name", [("file", "../../../../etc/passwd"), ("file", "/etc/passwd"),
                                       ("meta", "../outside_meta.npz"), ("file", "..\\..\\x.npy"), ("file", 7)])
def test_an_index_naming_a_file_outside_its_folder_is_refused(pairs_dir, tmp_path, key, name):
    """A pairs index.json (a colleague's corpus, a downloaded one) whose shard entry names a file outside its
    folder is refused before anything is opened, in one line naming the index (as an export manifest is)."""
    import shutil

    out, _ = pairs_dir
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    index = json.loads((bad / "index.json").read_text())
    index["shards"][0][key] = name
    (bad / "index.json").write_text(json.dumps(index))
    with pytest.raises(SqtoolError, match="not a file inside the pairs directory") as e:
        read_index(bad)
    assert str(bad / "index.json") in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SqtoolError, match="not a file inside the pairs directory"):
        PairShardDataset(bad)


def test_verify_detects_a_flipped_byte(pairs_dir, tmp_path):
    import shutil

    out, _ = pairs_dir
    bad = tmp_path / "flip"
    shutil.copytree(out, bad)
    _, index = read_index(bad)
    shard = bad / index["shards"][-1]["file"]
    b = bytearray(shard.read_bytes())
    b[-1] ^= 0xFF
    shard.write_bytes(bytes(b))
    PairShardDataset(bad, verify=False)                                  # shape still fine
    with pytest.raises(SqtoolError, match="sha256 differs") as e:
        PairShardDataset(bad)                                            # verified by default
    assert str(shard) in str(e.value)


def test_shard_writer_refuses_tiny_shards(tmp_path):
    with pytest.raises(SqtoolError):
        ShardWriter(tmp_path, 1, 1200, shard_mb=0.001)


def test_bad_input_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SqtoolError):
        mine_pairs(PairsConfig(input=[str(tmp_path / "missing")], out=str(out)), progress=False)
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SqtoolError, match="empty"):
        mine_pairs(PairsConfig(input=[str(empty)], out=str(out)), progress=False)
    with pytest.raises(SqtoolError, match="no record is as long"):
        mine_pairs(PairsConfig(data_root="synthetic", synthetic_subjects=1, synthetic_duration_s=20,
                               out=str(out), workers=1), progress=False)
    assert not out.exists()
    with pytest.raises(SqtoolError, match="Nyquist"):
        mine_pairs(PairsConfig(data_root="synthetic", fs=10, out=str(out)), progress=False)


def test_cli_pairs(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(["pairs", "--data-root", "synthetic", "--synthetic-subjects", "2",
                              "--synthetic-duration-s", "300", "--out", str(out), "--workers", "1",
                              "--max-gap-s", "120", "--no-progress"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "pairs" in text and text.strip().splitlines()[-1] == f"next: sqtool train pretrain --pairs {out}"
    _, index = read_index(out)
    assert index["max_gap_s"] == 120 and index["window_s"] == 30


def test_pairs_on_real_troika(data_root, tmp_path):
    out = tmp_path / "troika"
    m = mine_pairs(PairsConfig(input=[str(data_root / "troika")], out=str(out), workers=2), progress=False)
    d = m["datasets"]["troika"]
    assert d["records"] == 12 and d["windows"] > 100 and d["poor"] > d["good"]   # treadmill running; DATA_S04_T01
    assert "troika/S04" not in read_index(out)[1]["subjects"]         # out, by the shipped file (test_pairs_exclude)
    assert m["pairs"] == d["pairs"] > 0
    root, index = read_index(out)
    subjects = index["subjects"]
    assert all(s.startswith("troika/") for s in subjects)
    meta = np.load(root / index["shards"][0]["meta"])
    assert np.all(np.abs(meta["t_good"] - meta["t_poor"]) <= 300)


def test_a_corrupt_file_mid_run_stops_cleanly(data_root, tmp_path):
    """A bad file among many, with workers busy: one-line error, no hang, nothing left behind."""
    import shutil

    src = sorted((data_root / "troika" / "Training_data").glob("DATA_*_TYPE*.mat"))
    src = [p for p in src if "BPMtrace" not in p.name][:8]
    d = tmp_path / "troika_bad"
    d.mkdir()
    for p in src:
        shutil.copy(p, d / p.name)
    bad = d / src[1].name
    bad.write_bytes(bad.read_bytes()[:500])
    out = tmp_path / "out"
    with pytest.raises(SqtoolError, match="corrupt or truncated"):
        mine_pairs(PairsConfig(input=[str(d)], out=str(out), workers=2), progress=False)
    assert not out.exists()
    m = mine_pairs(PairsConfig(input=[str(d)], out=str(out), workers=2, on_error="skip"), progress=False)
    assert m["records"] == 7 and len(m["errors"]) == 1


def test_no_pairs_is_reported_not_silent(tmp_path):
    ShardWriter(tmp_path / "empty", 1, 1200).close()
    _, index = read_index(tmp_path / "empty")
    assert index["n_pairs"] == 0 and index["shards"] == []
    with pytest.raises(SqtoolError, match="no pairs"):
        PairShardDataset(tmp_path / "empty")


# ----------------------------------------------------------------------------- own dataset files

def _own_corpus(root, name, n, seed=0, yaml_name=None):
    """A dataset.yaml corpus of n synthetic npz recordings p01_icu.npz ... (subject from the file name)."""
    rec_dir = root / name / "recordings"
    rec_dir.mkdir(parents=True)
    for i in range(n):
        r = synth_record(300, artifacts=0.3, seed=seed + i)
        np.savez(rec_dir / f"p{i + 1:02d}_icu.npz", ppg=r.signals["ppg"], fs=np.array(r.fs["ppg"]))
    (root / name / "dataset.yaml").write_text(
        f"name: {yaml_name or name}\nformat: npz\nroot: recordings\nchannels: {{ppg: ppg}}\n"
        "subject: {pattern: '^(?P<subject>p[0-9]+)_'}\n")
    return root / name / "dataset.yaml"


def test_two_own_datasets_keep_their_subjects_apart(tmp_path):
    """Hospital A's p01 and hospital B's p01 are two subjects: each dataset is named by its yaml `name:`,
    not 'dataset.yaml' (which merged them into one dataset and one subject)."""
    a, b = _own_corpus(tmp_path, "hosp", 3), _own_corpus(tmp_path, "hospB", 2, seed=10)
    out = tmp_path / "two"
    m = mine_pairs(PairsConfig(input=[str(a), str(b)], out=str(out), workers=1), progress=False)
    assert set(m["datasets"]) == {"hosp", "hospB"} and m["records"] == 5 and m["subjects"] == 5
    _, index = read_index(out)
    assert {s.split("/")[0] for s in index["subjects"]} <= {"hosp", "hospB"}
    assert {"hosp/p01", "hospB/p01"} <= set(index["subjects"])
    # a folder holding dataset.yaml is named by the file too; two inputs of one name stay apart
    c = _own_corpus(tmp_path / "elsewhere", "hosp", 2, seed=20)
    m = mine_pairs(PairsConfig(input=[str(a.parent), str(c)], out=str(tmp_path / "same"), workers=1), progress=False)
    assert set(m["datasets"]) == {"hosp", "hosp_2"} and m["subjects"] == 5


def test_each_input_dataset_file_is_parsed_once(tmp_path, monkeypatch):
    """The miner resolves a dataset.yaml once for its name and its units (it was parsed twice)."""
    import sqtool.data.dataset_file as F
    from sqtool.data.pairs import _inputs
    a, b = _own_corpus(tmp_path, "hosp", 1), _own_corpus(tmp_path, "hospB", 1, seed=10)
    parsed: list = []
    parse = F.parse_dataset
    monkeypatch.setattr(F, "parse_dataset", lambda d, path, *a: parsed.append(path) or parse(d, path, *a))
    got = _inputs(PairsConfig(input=[str(a), str(b.parent)]))
    assert [(name, len(units)) for name, units in got] == [("hosp", 1), ("hospB", 1)]
    assert sorted(map(str, parsed)) == [str(a), str(b)]


def test_builtin_names_keep_their_name(data_root):
    from sqtool.data.dataset_file import builtin_dir
    from sqtool.data.pairs import _input_name
    assert _input_name(str(builtin_dir() / "troika.yaml")) == "troika"     # its name:, not the file's 'troika.yaml'
    assert _input_name("troika") == "troika"


@pytest.mark.parametrize("workers", [1, 2])
def test_on_error_skip_skips_a_bad_file_of_a_dataset_file(tmp_path, workers):
    """--on-error skip with a dataset.yaml: a truncated recording is left out and listed in metrics.json (it
    stopped the run with 'corrupt or truncated .npz'); raise (the default) still stops; an excluded bad file
    is no unknown exclude name."""
    ds = _own_corpus(tmp_path, "cor", 4)
    bad = ds.parent / "recordings" / "p03_icu.npz"
    bad.write_bytes(bad.read_bytes()[:2000])
    with pytest.raises(SqtoolError, match="corrupt or truncated"):
        mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "raise"), workers=workers), progress=False)
    out = tmp_path / "skip"
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(out), workers=workers, on_error="skip"), progress=False)
    assert m["records"] == 3 and len(m["errors"]) == 1 and "p03_icu.npz" in m["errors"][0]
    assert json.loads((out / "metrics.json").read_text())["errors"] == m["errors"]
    ds.write_text(ds.read_text() + "exclude: {p03_icu: broken}\n")
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "ex"), workers=workers, on_error="skip"),
                   progress=False)
    assert m["records"] == 3


def test_inspect_skip_bad_on_a_dataset_file(tmp_path, capsys):
    from sqtool.data.cli import register
    ds = _own_corpus(tmp_path, "cor", 2)
    (ds.parent / "recordings" / "p02_icu.npz").write_bytes(b"PK" + b"\0" * 100)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["data", "inspect", "--data", str(ds), "--skip-bad"])
    assert args.func(args) == 0
    assert "records 1" in (out := capsys.readouterr().out) and "skipped 1 bad item(s)" in out


def test_windows_holding_nan_samples_are_left_out_of_pairs(tmp_path):
    """A recording holding NaN samples (a dataset.yaml's empty cells) is mined, not refused: the windows holding
    one are neither good nor poor, never paired, and counted (record, metrics.json per dataset and total); the
    windows of a recording without gaps are paired exactly as before."""
    rec = synth_record(600, artifacts=0.3, seed=3, subject="s7")
    cfg = PairsConfig(channels=["ppg"], max_gap_s=120)
    r0 = record_pairs(rec, cfg)
    assert r0["nonfinite"] == 0
    rec.signals["ppg"][int(95 * 125):int(100 * 125)] = np.nan                # 95-100 s: the 90-120 s window
    rec.signals["acc_x"][int(305 * 125)] = np.nan                           # acc too: the 300-330 s window
    r = record_pairs(rec, cfg)
    assert r["nonfinite"] == 2 and r["windows"] == r0["windows"] - 2 and r["good"] + r["poor"] == r["windows"]
    assert not {90.0, 300.0} & (set(r["t_good"]) | set(r["t_poor"])) and np.isfinite(r["x_good"].astype(float)).all()
    rs = record_pairs(rec, PairsConfig(model="spec_teacher_m", max_gap_s=120))      # spectral: 8 s windows, 2 s hop
    gap_t0 = {88.0, 90.0, 92.0, 94.0, 96.0, 98.0, 298.0, 300.0, 302.0, 304.0}
    assert rs["nonfinite"] == len(gap_t0) and not gap_t0 & (set(rs["t_good"]) | set(rs["t_poor"])) and rs["pairs"]
    ds = _own_corpus(tmp_path, "nan", 2)
    z = dict(np.load(ds.parent / "recordings" / "p01_icu.npz"))
    z["ppg"][1000:1200] = np.nan
    np.savez(ds.parent / "recordings" / "p01_icu.npz", **z)
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1), progress=False)
    assert m["records"] == 2 and m["nonfinite_windows"] == m["datasets"]["nan"]["nonfinite_windows"] == 1


def test_a_config_files_data_key_is_the_flag_and_a_run_config_feeds_back(tmp_path, monkeypatch):
    """`data:` in a config file means what --data means (a root or 'synthetic' -> data_root, else the inputs);
    inputs are recorded absolute; the run's own config.yaml is a valid --config."""
    from sqtool.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("data: synthetic\nsynthetic_subjects: 2\nsynthetic_duration_s: 120\n"
                                     "workers: 1\n")
    assert main(["data", "pairs", "--config", "c.yaml", "--out", "a", "--no-progress"]) == 0
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert cfg["config"]["data_root"] == "synthetic" and cfg["config"]["input"] == []
    assert main(["data", "pairs", "--config", "a/config.yaml", "--out", "b", "--no-progress"]) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["pairs"] == \
        json.loads((tmp_path / "a" / "metrics.json").read_text())["pairs"]


def test_a_model_train_pretrain_cannot_train_is_refused_up_front(tmp_path, capsys):
    """`data pairs --model cnn1d_student_n`-like: no SimSiam encoder, so the printed `next: sqtool train pretrain
    ... --model X` would be refused; the miner refuses it first, in one line, before reading or writing anything."""
    from sqtool.cli import main
    from sqtool.models import pretrains
    assert pretrains("resnet1d_siamq_tiny") and pretrains("spec_teacher_m") and not pretrains("cnn1d_student_xs")
    assert main(["data", "pairs", "--model", "cnn1d_student_xs", "--data", "synthetic",
                 "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data pairs --model cnn1d_student_xs: a cnn1d_student model has no SimSiam encoder" \
        in err[0] and "give a resnet1d or spec_cnn model" in err[0], err
    assert not (tmp_path / "p").exists()


def test_a_dataset_file_without_a_name_is_named_by_its_file():
    """A dataset.yaml at the filesystem root gets name '' (its folder has none): the pairs' input name is the
    yaml's stem, not a TypeError from Path(DatasetFile)."""
    from pathlib import Path

    from sqtool.data.dataset_file import DatasetFile
    from sqtool.data.pairs import _input_name
    assert _input_name(DatasetFile(format="csv", path=Path("/dataset.yaml"), name="")) == "dataset"
    assert _input_name(DatasetFile(format="csv", path=Path("/w/my_watch.yaml"), name="hosp")) == "hosp"


def test_a_dataset_file_is_read_one_file_at_a_time_by_the_miner(tmp_path, monkeypatch):
    """A dataset.yaml streams like a bare folder: listing its inputs reads no recording, and each recording is
    read just before it is mined (the whole corpus was read into the main process first: RSS grew with it)."""
    import sqtool.data.dataset_reader as R
    import sqtool.data.pairs as P
    ds = _own_corpus(tmp_path, "lazy", 4)
    reads: list = []
    mined: list = []
    read_one, mine = R._read_one, P.record_pairs
    monkeypatch.setattr(R, "_read_one", lambda d, p, *a: reads.append(p.name) or read_one(d, p, *a))
    monkeypatch.setattr(P, "record_pairs", lambda rec, *a: mined.append(len(reads)) or mine(rec, *a))
    assert [len(units) for _, units in P._inputs(PairsConfig(input=[str(ds)]))] == [4] and reads == []
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1, max_gap_s=120), progress=False)
    assert mined == [1, 2, 3, 4] and reads == [f"p0{i}_icu.npz" for i in range(1, 5)] and m["records"] == 4


def test_pair_statistics_keep_float32_gaps_not_python_lists():
    """The real pairs' quality and time gaps are tallied as float32 arrays (8 bytes a pair; two Python lists took
    ~80 and grew with the corpus); means from float64 sums, medians of the float32 values."""
    from sqtool.data.pairs import dataset_stats, new_tally, tally
    rec = record_pairs(synth_record(600, artifacts=0.3, seed=3, subject="s7"), PairsConfig(max_gap_s=120))
    assert rec["pairs"] > 2
    d = new_tally()
    for _ in range(40):
        tally(d, rec)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in d["q_gap"] + d["t_gap"])
    assert sum(a.size for a in d["q_gap"]) == 40 * rec["pairs"]
    q = np.tile(rec["q_good"] - rec["q_poor"], 40)
    t = np.tile(np.abs(rec["t_good"] - rec["t_poor"]), 40)
    s = dataset_stats(d)
    assert s["records"] == 40 and s["subjects"] == s["subjects_with_pairs"] == 1 and s["real_pairs"] == q.size
    assert s["quality_gap_mean"] == pytest.approx(q.mean(), rel=1e-12)
    assert s["time_gap_s_mean"] == pytest.approx(t.mean(), rel=1e-12)
    assert s["quality_gap_median"] == pytest.approx(np.median(q), rel=1e-6)
    assert s["time_gap_s_median"] == pytest.approx(np.median(t), rel=1e-6)


# ----------------------------------------------------------------------------- resume

def _interrupt_after_shard(monkeypatch, n: int) -> None:
    """ShardWriter.flush raises KeyboardInterrupt (Ctrl-C) right after writing shard n (1-based), once."""
    flush = ShardWriter.flush

    def flaky(self):
        flush(self)
        if len(self.shards) == n and not getattr(flaky, "done", False):
            flaky.done = True
            raise KeyboardInterrupt
    monkeypatch.setattr(ShardWriter, "flush", flaky)


def _same_run(a, b) -> None:
    """Two pairs folders hold the same result: index.json, every shard and its meta, pair_stats.json."""
    ia, ib = (json.loads((d / "index.json").read_text()) for d in (a, b))
    assert ia == ib
    for e in ia["shards"]:
        assert (a / e["file"]).read_bytes() == (b / e["file"]).read_bytes()
        ma, mb = np.load(a / e["meta"]), np.load(b / e["meta"])
        assert all(np.array_equal(ma[k], mb[k], equal_nan=True) for k in ma.files)
    assert (a / "pair_stats.json").read_text() == (b / "pair_stats.json").read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_run_keeps_its_shards_and_resumes_to_the_same_pairs(tmp_path, monkeypatch, workers):
    """Ctrl-C after the first shard keeps it (the whole folder was deleted), the files done are recorded with it,
    and resume=True mines the rest: index.json, shards and statistics equal an uninterrupted run's. The shard
    ends inside a file, so the resumed run skips the pairs of that file the shard holds."""
    ds = _own_corpus(tmp_path, "res", 6)
    base = dict(input=[str(ds)], workers=workers, shard_mb=0.02, max_gap_s=120)     # 4 pairs a shard
    full = mine_pairs(PairsConfig(out=str(tmp_path / "full"), **base), progress=False)
    assert full["shards"] > 3
    out = tmp_path / "cut"
    _interrupt_after_shard(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        mine_pairs(PairsConfig(out=str(out), **base), progress=False)
    assert (out / "shards" / "pairs-00000.npy").is_file() and not (out / "index.json").exists()
    state = json.loads((out / "resume" / "state.json").read_text())
    assert state["writer"]["total"] == 4 and state["skip_pairs"] > 0          # a file half in the first shard
    m = mine_pairs(PairsConfig(out=str(out), **base), progress=False, resume=True)
    _same_run(tmp_path / "full", out)
    assert m["pairs"] == full["pairs"] and m["records"] == full["records"] == 6 and not (out / "resume").exists()


# `sqtool data pairs` in a child process that SIGKILLs itself (no handler runs, nothing is flushed) at a point of
# the second shard: "written" = its .npy and .meta.npz are on disk but not in the index or resume state yet
# (ShardWriter.flush hashing the shard), "recorded" = the resume state saved with it (after flush)
_KILL_CHILD = """
import os, signal, sys
import sqtool.data.shards as S
where, argv = sys.argv[1], sys.argv[2:]
if where == "written":
    digest = S.sha256_file
    def sha(p, *a, **k):
        if os.path.basename(str(p)) == "pairs-00001.npy":
            os.kill(os.getpid(), signal.SIGKILL)
        return digest(p, *a, **k)
    S.sha256_file = sha
else:
    flush = S.ShardWriter.flush
    def flushed(self):
        flush(self)
        if len(self.shards) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    S.ShardWriter.flush = flushed
from sqtool.cli import main
sys.exit(main(argv))
"""


@pytest.mark.parametrize("where", ["written", "recorded"])
def test_a_sigkilled_run_resumes_to_the_same_pairs(tmp_path, where):
    """kill -9 of `sqtool data pairs` (OOM killer, a preempted node: no handler runs) while a shard is being written
    or right after it is recorded; `--resume` then finishes the run with the same index, shards and statistics as
    an uninterrupted run (a shard on disk that the state does not list is written again, not trusted)."""
    import subprocess
    import sys
    from sqtool.cli import main
    ds = _own_corpus(tmp_path, "res", 6)
    out = tmp_path / "cut"
    cmd = ["data", "pairs", "--data", str(ds), "--out", str(out), "--workers", "1", "--shard-mb", "0.02",
           "--max-gap-s", "120", "--no-progress"]
    assert main([*cmd[:4], "--out", str(tmp_path / "full"), *cmd[6:]]) == 0
    r = subprocess.run([sys.executable, "-c", _KILL_CHILD, where, *cmd], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == -9 and (out / "shards" / "pairs-00001.npy").is_file() and not (out / "index.json").exists()
    state = json.loads((out / "resume" / "state.json").read_text())
    assert len(state["writer"]["shards"]) == (1 if where == "written" else 2)
    assert main(["data", "pairs", "--resume", str(out), "--no-progress"]) == 0
    _same_run(tmp_path / "full", out)
    assert not (out / "resume").exists() and not list((out / "shards").glob(".*tmp*"))


def test_a_file_rewritten_since_the_kill_refuses_the_resume(tmp_path, monkeypatch):
    """The resume fingerprint covers each file's size and modification time, not only its name: a recording
    rewritten between the kill and --resume would be mined again into other pairs than the first run's."""
    ds = _own_corpus(tmp_path, "res", 6)
    out = tmp_path / "cut"
    base = dict(input=[str(ds)], workers=1, shard_mb=0.02, max_gap_s=120, out=str(out))
    _interrupt_after_shard(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        mine_pairs(PairsConfig(**base), progress=False)
    f = ds.parent / "recordings" / "p06_icu.npz"
    r = synth_record(300, artifacts=0.3, seed=99)
    np.savez(f, ppg=r.signals["ppg"], fs=np.array(r.fs["ppg"]))          # same name, other content
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    with pytest.raises(SqtoolError, match="inputs changed since it started"):
        mine_pairs(PairsConfig(**base), progress=False, resume=True)


def test_pairs_cli_ctrl_c_names_resume_and_an_unfinished_folder_is_said(tmp_path, monkeypatch, capsys):
    """`sqtool data pairs` interrupted says how to continue; the same command again says the folder holds an
    unfinished run and names --resume (it said 'an earlier data pairs run; use --force'); --resume finishes it,
    as one uninterrupted run; a change that alters the pairs is refused on resume."""
    from sqtool.cli import main
    ds = _own_corpus(tmp_path, "res", 4)
    out = tmp_path / "cut"
    cmd = ["data", "pairs", "--data", str(ds), "--out", str(out), "--workers", "1", "--shard-mb", "0.02",
           "--max-gap-s", "120", "--no-progress"]
    assert main([*cmd[:4], "--out", str(tmp_path / "full"), *cmd[6:]]) == 0
    _interrupt_after_shard(monkeypatch, 1)
    assert main(cmd) == 130
    assert f"continue with: sqtool data pairs --resume {out}" in capsys.readouterr().err
    assert main(cmd) == 1
    err = capsys.readouterr().err
    assert "holds an unfinished data pairs run" in err and f"sqtool data pairs --resume {out}" in err
    assert main(["data", "pairs", "--resume", str(out), "--max-gap-s", "60"]) == 1
    assert "cannot resume" in capsys.readouterr().err
    assert main([*cmd, "--resume", str(out), "--workers", "2"]) == 0
    assert f"resumed {out}: " in capsys.readouterr().err
    _same_run(tmp_path / "full", out)
    assert main(["data", "pairs", "--resume", str(out)]) == 1
    assert "is finished" in capsys.readouterr().err


def test_a_resume_refuses_a_shard_damaged_in_place(tmp_path, monkeypatch, capsys):
    """A kept shard whose bytes changed at the same size: the resume reported success and pretraining then refused
    the folder ('sha256 differs'); the resume now refuses it, naming the shard."""
    from sqtool.cli import main
    ds = _own_corpus(tmp_path, "dmg", 4)
    out = tmp_path / "cut"
    cmd = ["data", "pairs", "--data", str(ds), "--out", str(out), "--workers", "1", "--shard-mb", "0.02",
           "--max-gap-s", "120", "--no-progress"]
    _interrupt_after_shard(monkeypatch, 1)
    assert main(cmd) == 130
    shard = sorted((out / "shards").glob("pairs-*.npy"))[0]
    b = bytearray(shard.read_bytes())
    b[-64:] = bytes(64)
    shard.write_bytes(bytes(b))
    capsys.readouterr()
    assert main(["data", "pairs", "--resume", str(out)]) == 1
    assert f"{shard}: shard missing or changed since it was written; cannot resume" in capsys.readouterr().err


def test_chunks_of_files_per_task_mine_the_same_pairs(tmp_path, capsys):
    """--workers 2 --chunksize 2 (or 3, a last chunk of 2): the same run as one worker; it crashed at the end with
    "'generator' object has no attribute 'next'" (imap's chunked form) and the fresh run's folder was gone."""
    from sqtool.cli import main
    ds = _own_corpus(tmp_path, "chunks", 5)
    cmd = ["data", "pairs", "--data", str(ds), "--shard-mb", "0.02", "--max-gap-s", "120", "--no-progress"]
    assert main([*cmd, "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    for cs in (2, 3):
        out = tmp_path / f"cs{cs}"
        assert main([*cmd, "--out", str(out), "--workers", "2", "--chunksize", str(cs)]) == 0, capsys.readouterr()
        _same_run(tmp_path / "one", out)


def test_a_run_into_a_log_file_prints_plain_progress_lines(tmp_path, monkeypatch, capsys):
    """stderr no terminal (nohup, `2> log`, Slurm): no bar draws, so a plain line says how far the run is (files
    done / total, pairs, rate, ETA) at most every HEARTBEAT_S and once at the end; it printed nothing until the end.
    --no-progress silences them."""
    import sqtool.data.pairs as P
    ds = _own_corpus(tmp_path, "log", 3)
    monkeypatch.setattr(P, "HEARTBEAT_S", 0.0)                           # every file (the default: 30 s)
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "a"), workers=1, max_gap_s=120))
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pairs: ")]
    assert [ln.split(",")[0] for ln in lines] == ["pairs: 1/3 files", "pairs: 2/3 files", "pairs: 3/3 files",
                                                  "pairs: 3/3 files"]
    assert "ETA" in lines[0] and "ETA" not in lines[-1] and f"{m['pairs']:,} pairs" in lines[-1]
    assert "files/s" in lines[0] and not any("\r" in ln for ln in lines)
    monkeypatch.setattr(P, "HEARTBEAT_S", 1e9)
    mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "b"), workers=1, max_gap_s=120))
    once = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pairs: ")]
    assert len(once) == 1 and once[0].startswith(f"pairs: 3/3 files, {m['pairs']:,} pairs, ")     # the end only
    mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "c"), workers=1, max_gap_s=120), progress=False)
    assert "pairs: " not in capsys.readouterr().err


def _work_noting_sigint(args):
    """pairs._work in a pool worker, noting (in $SQTOOL_TEST_SIGINT_DIR) whether this process ignores SIGINT."""
    import os
    import signal

    from sqtool.data import pairs
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    (Path(os.environ["SQTOOL_TEST_SIGINT_DIR"]) / f"{os.getpid()}.{args[2]}.{int(ignored)}").touch()   # (pid, seed)
    return pairs._REAL_WORK_FOR_TEST(args)


def test_pool_workers_leave_ctrl_c_to_the_parent(tmp_path, monkeypatch, sigint_default):
    """Workers ignore SIGINT (the pool's initializer), so a Ctrl-C to the process group is the parent's alone: it
    stops the run, keeps the shards and names --resume, and no worker prints a 'Process ForkPoolWorker-1:'
    traceback. Checked in the workers themselves: every one that mined a file had SIGINT ignored (the parent has
    Python's default here, so an ignored SIGINT comes from the pool, not from how the suite was started)."""
    from sqtool.data import pairs
    ds = _own_corpus(tmp_path, "sig", 4)
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SQTOOL_TEST_SIGINT_DIR", str(seen))
    monkeypatch.setattr(pairs, "_REAL_WORK_FOR_TEST", pairs._work, raising=False)
    monkeypatch.setattr(pairs, "_work", _work_noting_sigint)
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=2, max_gap_s=120), progress=False)
    notes = [f.name for f in seen.iterdir()]
    assert m["records"] == 4 and len(notes) == 4, notes                 # one note per file, from the workers
    assert {n.split(".")[0] for n in notes} != {str(os.getpid())}       # (not the parent: a pool ran them)
    assert all(n.endswith(".1") for n in notes), notes


def test_a_run_interrupted_after_several_files_resumes_their_statistics_too(tmp_path, monkeypatch):
    """Interrupted late (shard 7 of two inputs: both datasets tallied, several resume/gaps files), the resumed run
    restores every dataset's tally and real-pair gaps from resume/, so pair_stats.json equals an uninterrupted
    run's (the shard-1 test above stops inside the first file, before anything is tallied)."""
    ds, ds2 = _own_corpus(tmp_path, "res", 3), _own_corpus(tmp_path, "abc", 3, seed=10)   # other recordings
    base = dict(input=[str(ds), str(ds2)], workers=1, shard_mb=0.02, max_gap_s=120)   # 4 pairs a shard
    mine_pairs(PairsConfig(out=str(tmp_path / "full"), **base), progress=False)
    out = tmp_path / "cut"
    _interrupt_after_shard(monkeypatch, 7)
    with pytest.raises(KeyboardInterrupt):
        mine_pairs(PairsConfig(out=str(out), **base), progress=False)
    state = json.loads((out / "resume" / "state.json").read_text())
    assert list(state["tallies"]) == ["res", "abc"] and len(state["gap_files"]) > 1
    mine_pairs(PairsConfig(out=str(out), **base), progress=False, resume=True)
    _same_run(tmp_path / "full", out)


def test_the_next_line_names_a_model_that_reads_the_pairs(tmp_path, capsys):
    """`data pairs --window-s 10` ended with `next: sqtool train pretrain --pairs OUT`, which then failed (the default
    model reads 30 s windows): the line names the registered model that reads 10 s windows, and run as printed it
    trains; pairs that no registered model reads say so, and which flags make pairs its default reads."""
    import shlex

    from sqtool.cli import main
    from sqtool.data.pairs import PRETRAIN_DEFAULT
    from sqtool.train.pretrain import PretrainConfig
    assert PRETRAIN_DEFAULT == PretrainConfig().model
    base = ["data", "pairs", "--data", "synthetic", "--synthetic-subjects", "2", "--synthetic-duration-s", "300",
            "--workers", "1", "--no-progress"]
    assert main(base + ["--window-s", "10", "--out", str(tmp_path / "w10")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"next: sqtool train pretrain --pairs {tmp_path / 'w10'} --model resnet1d_siamq_tiny_10s", line
    assert main(shlex.split(line.removeprefix("next: "))[1:] + ["--epochs", "1", "--batch-size", "4", "--max-steps",
                                                                 "1", "--no-progress", "--out", str(tmp_path / "pt")]) == 0
    capsys.readouterr()
    assert main(base + ["--window-s", "12", "--out", str(tmp_path / "w12")]) == 1       # refused before mining
    assert "none of the registry's models reads these pairs (window_s 12)" in capsys.readouterr().err
    assert main(base + ["--window-s", "12", "--own-model", "--out", str(tmp_path / "w12")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == ("next: none of the registry's models reads these pairs (window_s 12), so `sqtool train pretrain` "
                    "cannot train on them: mine them again with --window-s 30 (the windows of resnet1d_siamq_tiny, its "
                    "default), or --model NAME"), line


def test_a_forced_run_leaves_none_of_the_earlier_runs_shards(tmp_path):
    """`data pairs --force` into a folder of an earlier run rewrote shards 0..k-1 and kept the earlier run's shards
    past them, listed by no index.json: a sweep's re-mine of 6,920 pairs at --shard-mb 256 into a folder mined at 4
    left 7 of its 8 old shards, 32 MB -> 60 MB on disk (at the paper's 173 GB of pairs, as much again)."""
    ds = _own_corpus(tmp_path, "frc", 4)
    out = tmp_path / "pairs"
    base = dict(input=[str(ds)], out=str(out), workers=1, max_gap_s=120)
    mine_pairs(PairsConfig(**base, shard_mb=0.02), progress=False)
    assert len(read_index(out)[1]["shards"]) > 1
    mine_pairs(PairsConfig(**base, shard_mb=64, force=True), progress=False)
    listed = {Path(e[k]).name for e in read_index(out)[1]["shards"] for k in ("file", "meta")}
    assert len(listed) == 2 and {f.name for f in (out / "shards").iterdir()} == listed


def test_flat_windows_are_never_partners():
    """An EDF converter pads a recording with zeros to its whole record length; the miner scored the flat tail
    poor and paired every good window near it with the flat line (quality gap 0.99). Windows whose PPG is flat over
    more than half of them are neither good nor poor, never paired, and counted (metrics.json silent_windows)."""
    rec = synth_record(600, artifacts=0.0, seed=5, subject="s7")            # clean: every window good
    rec.signals["ppg"][int(540 * 125):] = 0.0                                 # 540-600 s: the padding
    cfg = PairsConfig(channels=["ppg"], max_gap_s=120)
    r = record_pairs(rec, cfg)
    assert r["silent"] == 2 and r["windows"] == 18 and r["nonfinite"] == 0
    assert not {540.0, 570.0} & (set(r["t_good"]) | set(r["t_poor"]))
    assert r["pairs"] == 0                                                   # no real poor window left to pair
    rec.signals["ppg"][int(300 * 125):int(310 * 125)] = 0.0                  # a third of one window: a dropout
    r = record_pairs(rec, cfg)
    assert r["silent"] == 2 and 300.0 in set(r["t_poor"])                    # a real poor window: still a partner
