"""Test helper: a dataset file with one bad recording file is one error line naming it, and `data inspect` lists it
with that line and exits 1 (stream files, E4 files)."""
from __future__ import annotations

import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file


def assert_one_line_and_listed(y, head: str, capsys) -> None:
    """Reading dataset file `y` raises one line starting with `head`; `data inspect` names it and exits 1."""
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    assert str(e.value).startswith(head) and "\n" not in str(e.value), str(e.value)
    rc = main(["data", "inspect", "--data", str(y), "--no-progress"])      # the bad file listed with its line
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err and head in cap.out + cap.err
