"""Subjects kept out of pretraining: `data pairs --exclude-subjects` and a dataset file's split.test subjects (left out
by default, as fine-tuning holds them out) are never mined, counted per dataset, said in the summary, and survive a
resume; a name that matches no recording is one warning line."""
from __future__ import annotations

import json

import pytest

from sqtool.cli import main
from sqtool.data.pairs import PairsConfig, mine_pairs
from sqtool.data.shards import read_index

from test_pairs import _interrupt_after_shard, _own_corpus, _same_run


def _subjects(out) -> set[str]:
    return set(read_index(out)[1]["subjects"])


def test_excluded_subjects_are_never_mined_and_counted(tmp_path, capsys):
    ds = _own_corpus(tmp_path, "icu", 4)
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1, max_gap_s=120,
                               exclude_subjects=["icu:p02", "p04", "p09"]), progress=False)
    assert _subjects(tmp_path / "p") == {"icu/p01", "icu/p03"}                   # a key and a bare id both work
    d = m["datasets"]["icu"]
    assert d["records"] == 2 and d["heldout_records"] == 2 and d["heldout_subjects"] == ["icu:p02", "icu:p04"]
    err = capsys.readouterr().err
    assert "--exclude-subjects p09: no recording of that subject in the data" in err
    assert "icu: 2 subjects (2 recordings): icu:p02, icu:p04" in (tmp_path / "p" / "pair_stats.md").read_text()


def test_a_dataset_files_test_subjects_stay_out_unless_kept(tmp_path, capsys):
    """The file's split.test subjects are the ones fine-tune and quantize hold out: their recordings were mined into
    the pretraining pairs (an own-data audit); now left out by default, --keep-test-subjects mines them."""
    ds = _own_corpus(tmp_path, "icu", 4)
    ds.write_text(ds.read_text() + "split: {test: [p03, p04]}\n")
    out = tmp_path / "p"
    assert main(["data", "pairs", "--data", str(ds), "--workers", "1", "--max-gap-s", "120", "--no-progress",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert _subjects(out) == {"icu/p01", "icu/p02"}
    assert "left out, never mined: 2 subject(s) (--exclude-subjects, a dataset file's split.test): icu:p03, icu:p04" \
        in said
    assert json.loads((out / "metrics.json").read_text())["exclude_subjects"] == ["icu:p03", "icu:p04"]
    assert main(["data", "pairs", "--data", str(ds), "--workers", "1", "--max-gap-s", "120", "--no-progress",
                 "--keep-test-subjects", "--out", str(tmp_path / "all")]) == 0
    assert _subjects(tmp_path / "all") == {f"icu/p0{i}" for i in range(1, 5)}


def test_a_split_naming_recordings_leaves_them_out(tmp_path, capsys):
    """split.test may name recordings (split_subjects maps them to their subjects): p03_icu and p04_icu were mined,
    with a warning that no subject p03_icu exists (the review). A subject left out by one recording's name while
    another recording of it is mined is one warning line."""
    ds = _own_corpus(tmp_path, "icu", 4)
    ds.write_text(ds.read_text() + "split: {test: [p03_icu, p04_icu]}\n")
    m = mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1, max_gap_s=120), progress=False)
    assert _subjects(tmp_path / "p") == {"icu/p01", "icu/p02"}
    assert m["datasets"]["icu"]["heldout_subjects"] == ["icu:p03", "icu:p04"]
    assert "warning" not in capsys.readouterr().err
    from sqtool.data.synthetic import synth_record
    import numpy as np
    r = synth_record(300, artifacts=0.3, seed=7)                      # a second recording of subject p03
    np.savez(ds.parent / "recordings" / "p03_day2.npz", ppg=r.signals["ppg"], fs=np.array(r.fs["ppg"]))
    mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p2"), workers=1, max_gap_s=120), progress=False)
    assert "icu:p03: left out by a recording's name, but other recordings of the subject were mined" in \
        capsys.readouterr().err


def test_a_heldout_fraction_split_is_said_not_applied(tmp_path, capsys):
    ds = _own_corpus(tmp_path, "icu", 4)
    ds.write_text(ds.read_text() + "split: {heldout_fraction: 0.25}\n")
    mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1, max_gap_s=120), progress=False)
    assert "its split (heldout_fraction 0.25) names no subject before every recording is read" in \
        capsys.readouterr().err
    assert len(_subjects(tmp_path / "p")) == 4


def test_every_subject_left_out_says_why(tmp_path):
    ds = _own_corpus(tmp_path, "icu", 2)
    from sqtool.core import SqtoolError
    with pytest.raises(SqtoolError, match="no .*pair"):
        mine_pairs(PairsConfig(input=[str(ds)], out=str(tmp_path / "p"), workers=1, exclude_subjects=["p01", "p02"]),
                   progress=False)


def test_a_resumed_run_keeps_its_left_out_subjects(tmp_path, monkeypatch):
    ds = _own_corpus(tmp_path, "icu", 6)
    ds.write_text(ds.read_text() + "split: {test: [p02]}\n")
    base = dict(input=[str(ds)], workers=1, shard_mb=0.02, max_gap_s=120, exclude_subjects=["p05"])
    full = mine_pairs(PairsConfig(out=str(tmp_path / "full"), **base), progress=False)
    out = tmp_path / "cut"
    _interrupt_after_shard(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        mine_pairs(PairsConfig(out=str(out), **base), progress=False)
    m = mine_pairs(PairsConfig(out=str(out), **base), progress=False, resume=True)
    _same_run(tmp_path / "full", out)
    assert m["datasets"]["icu"]["heldout_subjects"] == full["datasets"]["icu"]["heldout_subjects"] == \
        ["icu:p02", "icu:p05"]


@pytest.mark.realdata
def test_a_data_roots_builtin_folders_keep_their_shipped_exclusions(data_root, tmp_path):
    """Mined over a data root, a built-in folder is read through its shipped dataset file, so its exclude list
    applies as in training: TROIKA's DATA_S04_T01 (likely SP Cup test subject S04, kept out of every model's
    training) was mined into the pretraining pairs of `sqtool demo --data ../shared/data`."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "troika").symlink_to(data_root / "troika")
    m = mine_pairs(PairsConfig(data_root=str(root), model="spec_teacher_m", out=str(tmp_path / "p"), workers=1),
                   progress=False)
    assert m["datasets"]["troika"]["records"] == 12
    assert not any(s.upper().endswith("S04") for s in _subjects(tmp_path / "p"))


def test_a_folder_named_like_a_builtin_with_its_own_dataset_file_is_read_through_it(tmp_path):
    """A data root's folder named `bidmc` that holds its own dataset.yaml (a team's export under that name) is read
    through that file, not the shipped bidmc layout (the review of bc888b6)."""
    root = tmp_path / "root"
    _own_corpus(root, "bidmc", 3)
    m = mine_pairs(PairsConfig(data_root=str(root), out=str(tmp_path / "p"), workers=1, max_gap_s=120),
                   progress=False)
    assert m["datasets"]["bidmc"]["records"] == 3 and m["pairs"] > 0


@pytest.mark.parametrize("kind", [None, "troika"])
def test_a_built_in_datasets_folder_by_path_keeps_its_exclusions(data_root, tmp_path, capsys, kind):
    """`data pairs --data ../shared/data/troika` (the folder, not the data root or the name) mined DATA_S04_T01, the
    likely SP Cup test subject every model keeps out; now the folder is read through its shipped dataset file, with
    --kind troika too, said in one note line. Another folder of that layout is still read as it is."""
    out = tmp_path / "p"
    assert main(["data", "pairs", "--data", str(data_root / "troika"), "--model", "spec_teacher_m", "--no-progress",
                 "--out", str(out)] + (["--kind", kind] if kind else [])) == 0
    subjects = _subjects(out)
    assert len(subjects) == 12 and "troika/S04" not in subjects
    assert "read as the built-in dataset troika: its shipped dataset file leaves out DATA_S04_T01" in \
        capsys.readouterr().err
    from sqtool.data.pairs import builtin_folder
    assert builtin_folder(tmp_path, None) is None and builtin_folder(data_root / "troika" / "nope", None) is None
    assert builtin_folder(data_root / "troika", "wrist_exercise") is None           # another layout: read raw


def test_the_built_in_folder_given_as_dot_or_under_a_data_root_with_kind_keeps_its_exclusions(data_root, tmp_path,
                                                                                             monkeypatch):
    """`--data .` inside ../shared/data/troika, and a data root read with --kind troika, leave DATA_S04_T01 out too."""
    from sqtool.data.pairs import builtin_folder
    monkeypatch.chdir(data_root / "troika")
    assert builtin_folder(".", None) is not None
    m = mine_pairs(PairsConfig(data_root=str(data_root), kind="troika", out=str(tmp_path / "p"), workers=1,
                               model="spec_teacher_m"), progress=False)
    assert m["datasets"]["troika"]["records"] == 12 and "troika/S04" not in _subjects(tmp_path / "p")
