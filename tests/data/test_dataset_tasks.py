"""data.dataset_tasks: one loader per task (TASK_LOADERS), the same tasks as data.tasks, and an unknown task
refused in one line listing them before the dataset file is touched."""
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_tasks import TASK_LOADERS, load_task_from_dataset
from sqtool.data.tasks import TASK_SPECS


def test_every_task_has_a_loader_and_every_loader_a_task():
    assert list(TASK_LOADERS) == list(TASK_SPECS)


def test_an_unknown_task_is_one_line_listing_the_tasks_before_the_dataset_is_read():
    class Untouchable:                       # the file's parsed custom labels are all the refusal may read
        custom_labels = ("stress",)

        def __getattr__(self, name):
            raise AssertionError(f"dataset file touched ({name}) before the task was refused")

    with pytest.raises(SqtoolError) as e:
        load_task_from_dataset("spo2", Untouchable(), cfg=None)
    assert str(e.value).startswith("unknown task 'spo2' (known: hr, rr, af, bp, quality; or a custom regression label")


def test_class_truth_reads_a_class_label_per_window_as_training_does():
    """The af / quality truth of each window, which `sqtool bench` scores a class model's logit against: af per
    recording or per rhythm segment (a window straddling two segments has none), quality from per-sample flags
    (good when none flagged, poor above 10 %, none in between) or a per-recording class; None without the label."""
    import numpy as np

    from sqtool.data.dataset_tasks import class_truth
    from sqtool.data.record import Label, Record
    t0 = np.array([0.0, 10.0, 20.0])
    rec = Record("x", "s1", "s1_a", {"ppg": np.zeros(1200)}, {"ppg": 40.0})
    assert class_truth("af", rec, t0, 10.0) is None and class_truth("quality", rec, t0, 10.0) is None
    rec.labels["rhythm"] = Label(np.array(1), unit="class", kind="class", classes=("sinus", "AF"))
    assert class_truth("af", rec, t0, 10.0).tolist() == [1.0, 1.0, 1.0]
    rec.labels["rhythm"] = Label(np.array([0, 1]), times=np.array([0.0, 15.0]), unit="class", kind="class",
                                 classes=("sinus", "AFIB"), positive=("AFIB",))
    rec.meta["rhythm_end_s"] = np.array([15.0, 30.0])
    np.testing.assert_array_equal(class_truth("af", rec, t0, 10.0), [0.0, np.nan, 1.0])
    flags = np.zeros(1200)
    flags[400:402] = 1                                      # 0.5 % of the second window: neither good nor poor
    flags[800:900] = 1                                      # 25 % of the third: poor
    rec.labels["quality"] = Label(flags, unit="flag", kind="flags", fs=40.0)
    np.testing.assert_array_equal(class_truth("quality", rec, t0, 10.0), [1.0, np.nan, 0.0])
    rec.labels["quality"] = Label(np.array(0), unit="class", kind="class", classes=("good", "poor"))
    assert class_truth("quality", rec, t0, 10.0).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(SqtoolError, match="^class_truth: 'rr' is not a class task"):
        class_truth("rr", rec, t0, 10.0)


def test_a_data_root_of_ones_own_datasets_names_the_file_with_the_tasks_label(tmp_path):
    """A root of one's own dataset folders (the one `data pairs` mined) given to a built-in task: the task reads the
    root's built-in dataset only, and the error named only that ('needs the bidmc dataset'), not the dataset file
    beside it that declares the label. Now it names that file to give as --data; a file without it is not named."""
    from sqtool.data.tasks import load_task
    for name, labels in (("ward", "labels:\n  rr: {column: rr}\n"), ("watch", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "dataset.yaml").write_text(f"name: {name}\nformat: csv\nfs: 125\nchannels: {{ppg: ppg}}\n"
                                                      + labels)
    with pytest.raises(SqtoolError) as e:
        load_task("rr", tmp_path)
    assert str(e.value) == (f"task 'rr' needs the bidmc dataset: {tmp_path / 'bidmc'} not found under the data root; "
                            "a data root is read for that built-in dataset only: give your dataset file with the rr "
                            f"label as --data ({tmp_path / 'ward' / 'dataset.yaml'})")
    with pytest.raises(SqtoolError) as e:
        load_task("af", tmp_path)
    assert str(e.value).endswith("not found under the data root")
