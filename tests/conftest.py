"""Shared fixtures: the real data root (tests that need it are skipped only when it is absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
_DATA = Path(os.environ.get("SQTOOL_DATA", PROJECT.parent / "shared" / "data"))

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not _DATA.is_dir():
        pytest.skip(f"real data root {_DATA} absent")
    return _DATA


def have_data(name: str) -> bool:
    return (_DATA / name).is_dir()


requires_data = pytest.mark.skipif(not _DATA.is_dir(), reason="../shared/data absent")
