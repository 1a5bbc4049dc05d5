"""Session fixtures of the compress tests (built once per worker, a few seconds)."""
from __future__ import annotations

import pytest

from compress_fixtures import make_teacher, synthetic_hr_task


@pytest.fixture(scope="session")
def hr_task():
    return synthetic_hr_task()


@pytest.fixture(scope="session")
def hr_teacher(tmp_path_factory, hr_task):
    return make_teacher(tmp_path_factory.mktemp("teacher") / "model.pt", hr_task)


@pytest.fixture(scope="session")
def spectral_teacher(tmp_path_factory):
    """A spectral heart-rate teacher: a `train finetune` run of spec_student_xs on 3 synthetic records."""
    from sqtool.cli import main
    d = tmp_path_factory.mktemp("ft") / "teacher"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "synthetic",
                 "--folds", "2", "--epochs", "1", "--max-records", "3", "--out", str(d)]) == 0
    return d
