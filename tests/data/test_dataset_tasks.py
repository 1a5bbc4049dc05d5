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
