"""What `data pairs` mines: a folder of one's own dataset folders is a data root, a mixed bare folder is one line,
the same recordings given twice are refused, a partner never overlaps its good window, and a window contract no
registered model reads is refused before mining."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.pairs import PairsConfig, match_pairs, mine_pairs
from sqtool.data.shards import read_index
from sqtool.data.synthetic import synth_record

SUBJECT = "subject: {pattern: '^(?P<subject>p[0-9]+)_'}\n"


def _recordings(folder, fmt: str, n: int, seed: int = 0):
    """n synthetic 200 s recordings p01_x.csv / .npz ... in `folder` (ppg at 125 Hz)."""
    folder.mkdir(parents=True)
    for i in range(n):
        r = synth_record(200, artifacts=0.3, seed=seed + i)
        x, fs = r.signals["ppg"], r.fs["ppg"]
        if fmt == "csv":
            pd.DataFrame({"time": np.arange(x.size) / fs, "ppg": x}).to_csv(folder / f"p{i + 1:02d}_x.csv", index=False)
        else:
            np.savez(folder / f"p{i + 1:02d}_x.npz", ppg=x, fs=np.array(fs))


def _corpus(tmp_path):
    """corpus/ward (2 CSVs) and corpus/wrist (2 NPZs), each with its dataset.yaml: a folder of dataset folders."""
    root = tmp_path / "corpus"
    _recordings(root / "ward" / "recordings", "csv", 2)
    (root / "ward" / "dataset.yaml").write_text("name: ward\nformat: csv\nroot: recordings\ntime_column: time\n"
                                                "channels: {ppg: ppg}\n" + SUBJECT)
    _recordings(root / "wrist" / "recordings", "npz", 2, seed=10)
    (root / "wrist" / "dataset.yaml").write_text("name: wrist\nformat: npz\nroot: recordings\n"
                                                 "channels: {ppg: ppg}\n" + SUBJECT)
    return root


def test_a_folder_of_own_dataset_folders_is_a_data_root(tmp_path, capsys):
    """`data pairs --data corpus` read the CSVs and NPZs below as one npz folder (the CSVs dropped, each file its own
    subject, the yaml files ignored): each dataset folder is now mined through its dataset.yaml, and `data inspect`
    summarises each."""
    root = _corpus(tmp_path)
    out = tmp_path / "p"
    assert main(["data", "pairs", "--data", str(root), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["datasets"]) == {"ward", "wrist"} and m["records"] == 4
    assert {k: d["records"] for k, d in m["datasets"].items()} == {"ward": 2, "wrist": 2}
    capsys.readouterr()
    assert main(["data", "inspect", "--data", str(root), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "2 datasets, 4 records" in text and "[ward]" in text and "[wrist]" in text, text


def test_a_bare_folder_of_csv_and_npz_recordings_is_one_line(tmp_path, capsys):
    """Without a dataset.yaml a folder is read in one format: holding both CSV and NPZ files, it dropped the CSVs
    silently; now it is one line naming both counts and the fix."""
    bare = tmp_path / "bare"
    _recordings(bare / "a", "csv", 2)
    _recordings(bare / "b", "npz", 1)
    with pytest.raises(SqtoolError, match=r"holds 2 CSV and 1 NPZ recordings.*dataset\.yaml"):
        mine_pairs(PairsConfig(input=[str(bare)], out=str(tmp_path / "p"), workers=1), progress=False)
    assert not (tmp_path / "p").exists()
    assert main(["data", "inspect", "--data", str(bare), "--no-progress"]) == 1
    assert "holds 2 CSV and 1 NPZ recordings" in capsys.readouterr().err


@pytest.mark.parametrize("second", ["wrist/dataset.yaml", "wrist/recordings", "wrist/recordings/p01_x.npz"])
def test_the_same_recordings_given_twice_are_refused(tmp_path, second):
    """`--data wrist/dataset.yaml wrist/dataset.yaml` (or the yaml's own folder beside it) mined every pair twice,
    as datasets wrist and wrist_2, so a subject split could train on one copy and test on the other."""
    root = _corpus(tmp_path)
    first = root / "wrist" / "dataset.yaml"
    with pytest.raises(SqtoolError, match=rf"--data {first} and --data {root / second} both reach .*p01_x\.npz"):
        mine_pairs(PairsConfig(input=[str(first), str(root / second)], out=str(tmp_path / "p"), workers=1),
                   progress=False)
    assert not (tmp_path / "p").exists()


def test_a_copied_folder_is_refused_as_the_same_recordings(tmp_path):
    """A copy of a dataset folder beside it (another path, the same bytes) was mined as a second dataset: the
    resolved-path check missed it. Files of equal size in two inputs are now compared by sha256."""
    import shutil
    root = _corpus(tmp_path)
    shutil.copytree(root / "wrist", root / "wrist_copy")
    with pytest.raises(SqtoolError, match=r"--data .*wrist and --data .*wrist_copy hold the same recording "
                                          r"\(.*p01_x\.npz and .*wrist_copy.*p01_x\.npz are byte for byte alike"):
        mine_pairs(PairsConfig(data_root=str(root), out=str(tmp_path / "p"), workers=1), progress=False)
    assert not (tmp_path / "p").exists()
    for f in (root / "wrist_copy").rglob("*.npz"):           # the same names, other recordings: mined as before
        d = dict(np.load(f))
        d["ppg"] = d["ppg"][::-1].copy()
        np.savez(f, **d)
    m = mine_pairs(PairsConfig(data_root=str(root), out=str(tmp_path / "p"), workers=1), progress=False)
    assert "wrist_2" in m["datasets"]       # named by its dataset.yaml's name: (wrist), the second of that name


def test_a_partner_never_overlaps_its_good_window():
    """With windows every 5 s, the nearest poor window (5 s after a 30 s good one) shares 83 % of its samples: the
    partner is the nearest one at least window_s away; windows as points (window_s 0) keep the old rule."""
    t0 = np.arange(0.0, 100.0, 5.0)                       # 0, 5, ..., 95
    good = np.zeros(t0.size, bool)
    good[[2, 3]] = True                                   # good at 10 s and 15 s; poor everywhere else
    gi, pi = match_pairs(t0, good, 300, window_s=30)
    assert gi.tolist() == [2, 3] and t0[pi].tolist() == [40.0, 45.0]   # 10 s: 40 (not 5); 15 s: 45 (not 20)
    assert np.all(np.abs(t0[gi] - t0[pi]) >= 30)
    gi, pi = match_pairs(t0, good, 300)
    assert t0[pi].tolist() == [5.0, 20.0]
    gi, pi = match_pairs(t0, good, 29, window_s=30)       # no non-overlapping poor window within reach: no pair
    assert gi.size == 0
    gi, pi = match_pairs(np.array([0.0, 30.0, 60.0]), np.array([False, True, False]), 300, window_s=30)
    assert pi.tolist() == [0]                             # adjacent windows (hop = window) do not overlap


def test_mined_pairs_do_not_overlap_and_the_rejections_are_counted(tmp_path):
    """--hop-s 5 with 30 s windows: every stored pair is at least 30 s apart, and pair_stats counts the nearest
    partners rejected for overlapping; the default hop (= the window) rejects none."""
    root = _corpus(tmp_path)
    out = tmp_path / "hop5"
    mine_pairs(PairsConfig(input=[str(root / "wrist")], hop_s=5, out=str(out), workers=1), progress=False)
    _, index = read_index(out)
    metas = [np.load(out / s["meta"]) for s in index["shards"]]
    gap = np.abs(np.concatenate([z["t_good"] - z["t_poor"] for z in metas]))
    assert gap.size and gap.min() >= 30 - 1e-6
    st = json.loads((out / "pair_stats.json").read_text())
    assert st["total"]["overlap_rejected"] > 0 and st["datasets"]["wrist"]["overlap_rejected"] > 0
    assert "never overlaps its good window" in (out / "pair_stats.md").read_text()
    m = mine_pairs(PairsConfig(input=[str(root / "wrist")], out=str(tmp_path / "hop30"), workers=1), progress=False)
    assert m["overlap_rejected"] == 0


def test_a_window_no_registered_model_reads_is_refused_before_mining(tmp_path, monkeypatch, capsys):
    """`data pairs --fs 64 --window-s 10` mined everything and then said no model reads the pairs: it is refused up
    front in the same words; --own-model mines them (for a model of one's own)."""
    import sqtool.data.pairs as P
    root = _corpus(tmp_path)
    real = P._inputs
    monkeypatch.setattr(P, "_inputs", lambda cfg: pytest.fail("listed the data before refusing"))
    base = ["data", "pairs", "--data", str(root / "wrist"), "--fs", "64", "--window-s", "10", "--workers", "1",
            "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "no")]) == 1
    err = capsys.readouterr().err
    assert "none of the registry's models reads these pairs (fs 64, window_s 10)" in err and "--own-model" in err
    assert not (tmp_path / "no").exists()
    monkeypatch.setattr(P, "_inputs", real)
    assert main(base + ["--own-model", "--out", str(tmp_path / "own")]) == 0
    assert "next: none of the registry's models reads these pairs" in capsys.readouterr().out


def test_a_data_roots_dataset_folder_is_named_by_its_dataset_file(tmp_path, capsys):
    """Mined through a data root, one's own dataset folder was named by the folder (index.json's subjects
    'hospital_export/s1', pair_stats.md's row), through --data its dataset.yaml by its name: ('ward/s1'), and the
    --exclude-subjects keys, the split.test line and fine-tuning by the name: too ('ward:s1'): the same pairs got
    another name by the way they were asked for, and a key read off the pair statistics excluded nothing. Now both
    ways name it by its dataset.yaml's name:."""
    from sqtool.cli import main
    from sqtool.data.shards import read_index
    root = _corpus(tmp_path)
    (root / "ward").rename(root / "hospital_export")
    by_root, by_file = tmp_path / "by_root", tmp_path / "by_file"
    for data, out in ((root, by_root), (root / "hospital_export" / "dataset.yaml", by_file)):
        assert main(["data", "pairs", "--data", str(data), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    subjects = [{s for s in read_index(out)[1]["subjects"] if not s.startswith("wrist/")} for out in (by_root, by_file)]
    assert subjects[0] == subjects[1] and subjects[0] and all(s.startswith("ward/") for s in subjects[0])
    assert "| ward |" in (by_root / "pair_stats.md").read_text()
    key = "ward:" + sorted(subjects[0])[0].split("/", 1)[1]
    assert main(["data", "pairs", "--data", str(root), "--out", str(tmp_path / "ex"), "--workers", "1",
                 "--no-progress", "--exclude-subjects", key]) == 0
    assert f"left out, never mined: 1 subject(s)" in capsys.readouterr().out

