"""load_shared_lib: a library rebuilt at the same (relative) path is the new build, not the one the dynamic
loader already holds under that name (the stale-library bug behind a flaky export parity in one process)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from sqtool.core import load_shared_lib


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_rebuilt_library_at_the_same_relative_path_is_reloaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in (1, 2):
        (tmp_path / "v.c").write_text(f"int sq_value(void) {{ return {value}; }}\n")
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", "libv.so", "v.c"], check=True)
        assert load_shared_lib("./libv.so").sq_value() == value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["libv.so", "v.c"]     # no private copies left
