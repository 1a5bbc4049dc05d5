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
