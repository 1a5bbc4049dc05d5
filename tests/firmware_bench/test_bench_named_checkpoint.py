"""`bench --teacher / --student-float / --student-int8 PATH` names the checkpoint a runtime is to run: a PATH that is
not there (a typo) or is not a checkpoint made only that runtime's row "skipped"/"error" and the bench went on,
writing a report the user took for a comparison of what they named. Now one line naming the option and the path,
exit 1, before anything is written; a checkpoint the export's manifest.json names keeps its behaviour."""
from __future__ import annotations

import pytest

from sqtool.cli import main

ARGS = ["--data", "synthetic", "--runtime", "torch", "--callgrind-windows", "0", "--no-progress"]


@pytest.mark.parametrize("flag", ["--teacher", "--student-float", "--student-int8"])
@pytest.mark.parametrize("given, said", [
    ("{tmp}/typo.pt", "checkpoint {tmp}/typo.pt not found"),
    ("{tmp}/typo_run", "checkpoint {tmp}/typo_run not found"),
    ("{tmp}/empty", "checkpoint {tmp}/empty/model.pt not found"),
    ("{tmp}/notes.yaml", "{tmp}/notes.yaml is not a checkpoint (another kind of file, or corrupt): give a run folder "
                         "holding model.pt, or a .pt file written by sqtool"),
], ids=["missing-file", "missing-folder", "folder-without-model.pt", "not-a-checkpoint"])
def test_bench_refuses_a_named_checkpoint_that_is_not_there(export_dir, tmp_path, capsys, flag, given, said):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.yaml").write_text("teacher: runs/train/x\n")
    out = tmp_path / "b"
    capsys.readouterr()
    assert main(["bench", "--model", str(export_dir), flag, given.format(tmp=tmp_path), *ARGS,
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"sqtool: error: {flag}: {said.format(tmp=tmp_path)}"], err
    assert not out.exists()
