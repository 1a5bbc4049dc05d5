"""data.heldout: the one held-out rule of `train finetune --task hr` and `quantize`, in its order."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from sqtool.core import SqtoolError
from sqtool.data.heldout import HELDOUT_FRACTION, file_split, heldout_keys

KEYS = ["my_watch:s01", "my_watch:s02", "my_watch:s03", "my_watch:s04"] + [f"troika:{i:02d}" for i in range(1, 7)]


def test_names_then_zero_then_the_files_split_then_the_fraction():
    assert heldout_keys(KEYS, names=["s02", "troika:03"], split=["s04"]) == (
        ["my_watch:s02", "troika:03"], "--heldout-subjects; the dataset file's split.test my_watch:s04 is trained on")
    assert heldout_keys(KEYS, split=["s04"], fraction=0) == ([], "--heldout-fraction 0: none")
    assert heldout_keys(KEYS, split=["s04"], dataset="my_watch")[0] == ["my_watch:s04"]     # yours, never SP Cup's
    assert heldout_keys(KEYS)[0] == ["troika:05", "troika:06"]        # 0.2 x 10: the last 2 of the sorted keys
    assert heldout_keys(KEYS, fraction=0.5)[0] == sorted(KEYS)[-5:]
    assert heldout_keys(KEYS, default=0.3)[0] == sorted(KEYS)[-3:] and HELDOUT_FRACTION == 0.2
    assert heldout_keys(["a", "b"], fraction=0.9)[0] == ["b"]         # at most n - 1, at least 1
    assert heldout_keys(["s1", "s2", "s3"], names=["s1"])[0] == ["s1"]   # bare ids (a time-domain task's groups)


def test_without_a_split_a_dataset_files_own_subjects_are_held_out_whatever_its_name_sorts_as():
    """A team's file beside SP Cup without a split: the fraction is of ITS subjects (the device shipped on), not
    of the sorted keys, where a name sorting before 'troika' (apple_watch) held out SP Cup subjects only."""
    keys = [f"apple_watch:s0{i}" for i in range(1, 6)] + [f"troika:{i:02d}" for i in range(1, 13)]
    held, how = heldout_keys(keys, dataset="apple_watch")
    assert held == ["apple_watch:s05"] and "of apple_watch's subjects" in how       # round(0.2 x 5) = 1
    assert heldout_keys(keys)[0] == sorted(keys)[-3:]                  # no file: the sorted keys, as before
    one = ["apple_watch:s01"] + [f"troika:{i:02d}" for i in range(1, 6)]
    assert heldout_keys(one, dataset="apple_watch")[0] == ["troika:05"]   # one own subject: from every subject


def test_quantize_refuses_a_corpus_left_without_a_training_subject():
    """A teacher that recorded its held-out subjects, and a quantize corpus holding only those (another --data or
    --max-records): one line, not an empty training set failing later."""
    from sqtool.compress.quantize_hr import heldout_of
    cfg = NS(heldout_subjects=[], heldout_fraction=HELDOUT_FRACTION)
    ck = {"path": "t/model.pt", "train_cfg": {"heldout_subjects": ["synthetic:syn003"]}}
    with pytest.raises(SqtoolError, match="quantize needs held-out subjects and training subjects: 1 of the 1"):
        heldout_of(cfg, ck, [NS(key="synthetic:syn003")], None)
    corpus = [NS(key=f"synthetic:syn00{i}") for i in range(4)]
    assert heldout_of(cfg, ck, corpus, None) == ({"synthetic:syn003"}, False)
    with pytest.raises(SqtoolError, match="--heldout-fraction 0.5: teacher t/model.pt held out synthetic:syn003"):
        heldout_of(NS(heldout_subjects=[], heldout_fraction=0.5), ck, corpus, None)


def test_what_a_teacher_recorded_and_the_time_domain_quantize_shares_the_rule():
    """recorded_heldout reads a teacher's train_cfg: its held-out list, [] when it held none out (--heldout-fraction
    0), None when it recorded none (no key, or a time-domain fine-tune of before: the options' empty defaults);
    teacher_heldout on bare ids (a time-domain task's groups) as on keys."""
    from sqtool.data.heldout import recorded_heldout, teacher_heldout
    assert recorded_heldout(None) is None and recorded_heldout({"seed": 0}) is None
    assert recorded_heldout({"heldout_subjects": [], "heldout_fraction": None}) is None
    assert recorded_heldout({"heldout_subjects": [], "heldout_fraction": 0.0}) == []
    assert recorded_heldout({"heldout_subjects": [], "heldout_rule": "the dataset file's split"}) == []
    assert recorded_heldout({"heldout_subjects": ["s3"]}) == ["s3"]
    ids = ["s0", "s1", "s2", "s3"]
    assert teacher_heldout(ids, ["s3"], "t") == (["s3"], False)
    assert teacher_heldout(ids, [], "t") == (["s3"], True)                       # 0.2 x 4: the last one
    assert teacher_heldout(ids, None, "t", split=["s1"]) == (["s1"], None)      # the dataset file's split
    with pytest.raises(SqtoolError, match="--heldout-subjects s0: teacher t was fine-tuned on it"):
        teacher_heldout(ids, ["s3"], "t", names=["s0"])
    for recorded in ([], ["s3"], None):                  # --heldout-fraction 0, a final fit: none, whatever it held
        assert teacher_heldout(ids, recorded, "t", fraction=0.0) == ([], None)
    with pytest.raises(SqtoolError, match="give it without --heldout-subjects"):
        teacher_heldout(ids, [], "t", names=["s0"], fraction=0.0)


@pytest.mark.parametrize("kw, says", [
    (dict(names=["s09"]), "--heldout-subjects s09 not in the data"),
    (dict(names=["01"], keys=["troika:01", "wrist_exercise:01"]), "01 is a subject of troika, wrist_exercise: name it"),
    (dict(fraction=1.0), "--heldout-fraction must be in [0, 1)"),
    (dict(fraction=-0.1), "--heldout-fraction must be in [0, 1)"),
    (dict(split=["s04"], fraction=0.3), "--heldout-fraction 0.3: the dataset file's split decides"),
    (dict(default=0.0), "--heldout-fraction must be in (0, 1) here"),
])
def test_a_bad_choice_is_one_line(kw, says):
    keys = kw.pop("keys", KEYS)
    with pytest.raises(SqtoolError) as e:
        heldout_keys(keys, **kw)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_files_split_counts_only_when_it_names_a_test_side():
    recs = [NS(dataset="my_watch", record_id=f"s0{i}_walk", subject=f"s0{i}") for i in range(1, 5)]
    recs += [NS(dataset="troika", record_id="DATA_01", subject="01")]

    from sqtool.data.dataset_file import DatasetFile

    def ds(**split):
        sp = NS(**{"train": [], "test": [], "heldout_fraction": None, "seed": 0, **split})
        file = NS(split=sp, path="my_watch/dataset.yaml")

        def split_subjects(rs):                                           # the dataset file's own rule
            assert all(r.dataset == "my_watch" for r in rs)               # built-ins beside it are not its subjects
            return DatasetFile.split_subjects(file, rs)
        return NS(name="my_watch", split=sp, split_subjects=split_subjects)
    assert file_split(None, recs) is None
    assert file_split(ds(train=["s01"]), recs) is None                # a train list alone holds nobody out
    assert file_split(ds(test=["s02"]), recs) == ["s02"]
    assert file_split(ds(heldout_fraction=0.25), recs) == ["s04"]


def test_heldout_subjects_over_a_files_split_say_the_split_is_trained_on():
    """`--heldout-subjects s04` on a dataset file whose split.test is s05: s05 was trained on, and the line said only
    '(--heldout-subjects): my_watch:s04'. It says what it replaced; naming the file's own test subject says nothing."""
    from sqtool.data.heldout import heldout_keys
    keys = [f"my_watch:s0{i}" for i in range(1, 6)]
    held, how = heldout_keys(keys, names=["s04"], split=["s05"], dataset="my_watch")
    assert held == ["my_watch:s04"]
    assert how == "--heldout-subjects; the dataset file's split.test my_watch:s05 is trained on"
    assert heldout_keys(keys, names=["s05"], split=["s05"], dataset="my_watch") == (["my_watch:s05"], "--heldout-subjects")
    assert heldout_keys(keys, names=["s04"]) == (["my_watch:s04"], "--heldout-subjects")


def test_quantize_says_when_the_files_split_is_not_the_teachers_held_out_set():
    """A dataset file whose split.test names P02 under a teacher that held out P05 and P06: quantize evaluates on
    the teacher's (it trained on P02), and now says the file's split is not used (it was silent)."""
    from pathlib import Path

    from sqtool.compress.quantize_hr import heldout_of
    subs = ["P02", "P03", "P04", "P05", "P06"]
    corpus = [NS(key=f"mine:{s}", dataset="mine", subject=s, record_id=f"{s}/walk") for s in subs]
    ck = {"path": "t/model.pt", "train_cfg": {"heldout_subjects": ["mine:P05", "mine:P06"]}}
    cfg = NS(heldout_subjects=[], heldout_fraction=HELDOUT_FRACTION)

    def ds(test):
        return NS(name="mine", path=Path("team/split2.yaml"), split=NS(test=test, heldout_fraction=None),
                  split_subjects=lambda recs: ({r.subject for r in recs} - set(test), set(test)))
    said = []
    assert heldout_of(cfg, ck, corpus, ds(["P02"]), said.append) == ({"mine:P05", "mine:P06"}, False)
    assert said == ["note: split2.yaml's split.test (P02) is not the held-out set: teacher t/model.pt held out "
                    "mine:P05, mine:P06, and quantize evaluates on those (on others it would score subjects the "
                    "teacher trained on)"]
    said.clear()
    heldout_of(cfg, ck, corpus, ds(["P05", "P06"]), said.append)                  # the same set: nothing to say
    assert said == []


def test_numeric_subject_ids_sort_as_numbers():
    """PPG-BP's ids (2 .. 419, unpadded) sorted as text put 99 last and 100 before 11: the last fifth held out was
    a scatter of ids. Numbers sort as numbers, in the held-out rule and in quantize's (9 before 10)."""
    from sqtool.data.heldout import teacher_heldout
    keys = [f"ppg_bp:{i}" for i in (2, 9, 10, 11, 99, 100, 101, 200, 300, 419)]
    assert heldout_keys(keys)[0] == ["ppg_bp:300", "ppg_bp:419"]          # text order: ppg_bp:9, ppg_bp:99
    assert heldout_keys([str(i) for i in range(1, 13)], fraction=0.25)[0] == ["10", "11", "12"]   # bare ids
    assert teacher_heldout(keys, None, "t.pt")[0] == ["ppg_bp:300", "ppg_bp:419"]
    assert heldout_keys(["s01", "s1", "s2"], fraction=0.4)[0] == ["s2"]    # 01 and 1 apart, in a fixed order
    assert heldout_keys(KEYS)[0] == ["troika:05", "troika:06"]            # zero-padded ids: as before
