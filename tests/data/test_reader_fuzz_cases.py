"""Reader faults found by fuzzing the input readers (notes s36 find_fuzz): each one line naming the file."""
import os

import numpy as np
import pytest

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.data.readers import read_dataset


def _one_line_error(capsys, args) -> str:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sqtool: error: ") and "\n" not in err
    return err


# ----------------------------------------------------------------------------- --data not a file or folder

@pytest.mark.parametrize("kind", ["symlink_to_dev_null", "fifo"])
def test_device_or_pipe_as_data_is_not_a_permission_problem(tmp_path, capsys, kind):
    p = tmp_path / "z.csv"
    if kind == "fifo":
        os.mkfifo(p)
    else:
        p.symlink_to("/dev/null")                  # a character device, as /dev/zero
    err = _one_line_error(capsys, ["data", "inspect", "--data", str(p)])
    assert f"{p}: not a regular file or folder" in err and "permission" not in err


def test_require_file_names_a_device(tmp_path):
    from sqtool.data.readers._common import require_file
    p = tmp_path / "rec.csv"
    p.symlink_to("/dev/null")
    with pytest.raises(SqtoolError, match="not a regular file") as e:
        require_file(p)
    assert "folder" not in str(e.value)
