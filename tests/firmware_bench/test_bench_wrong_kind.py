"""`bench --teacher / --student-float / --student-int8 PATH` given a checkpoint of a kind that option's runtime does
not run (an int8 student as --teacher, a teacher as --student-int8, a pretrain encoder as anything) became only an
"error" row of a report the bench wrote anyway. Now one line naming the option, the path, the kind it holds and the
kinds the option takes (the runtime's own `kinds`), exit 1, before anything is written; the kinds it takes bench."""
from __future__ import annotations

import json

import pytest
import torch

from sqtool.cli import main
from sqtool.core.checkpoint import save_checkpoint
from sqtool.core.runs import shell_command

ARGS = ["--data", "synthetic", "--runtime", "torch", "--callgrind-windows", "0", "--no-progress"]
TAKES = {"--teacher": "teacher_task or student_float", "--student-float": "student_float",
         "--student-int8": "student_int8"}


def _as_kind(src, dst, kind: str):
    """A copy of checkpoint `src` relabelled as `kind` (a teacher, a pretrain encoder: same small weights)."""
    ck = torch.load(src, map_location="cpu", weights_only=True)
    extra = {k: v for k, v in ck.items() if k not in ("kind", "model_cfg", "state_dict", "train_cfg")}
    save_checkpoint(dst, kind=kind, model_cfg=ck["model_cfg"], state_dict=ck["state_dict"],
                    train_cfg=ck["train_cfg"], **extra)
    return dst


@pytest.fixture
def kinds(export_dir, tmp_path):
    """A checkpoint of every kind: quantize's int8 student (its run folder) and float student, and the float
    student relabelled as a fine-tuned teacher and as a pretrain encoder."""
    q = export_dir.parent / "quantize"
    return {"student_int8": q, "student_float": q / "student_float.pt",
            "teacher_task": _as_kind(q / "student_float.pt", tmp_path / "teacher.pt", "teacher_task"),
            "teacher_pretrain": _as_kind(q / "student_float.pt", tmp_path / "pretrain.pt", "teacher_pretrain")}


@pytest.mark.parametrize("flag, kind", [
    ("--teacher", "student_int8"), ("--teacher", "teacher_pretrain"),
    ("--student-float", "student_int8"), ("--student-float", "teacher_task"), ("--student-float", "teacher_pretrain"),
    ("--student-int8", "student_float"), ("--student-int8", "teacher_task"), ("--student-int8", "teacher_pretrain"),
])
def test_bench_refuses_a_named_checkpoint_of_a_kind_its_runtime_does_not_run(export_dir, kinds, tmp_path, capsys,
                                                                            flag, kind):
    given = kinds[kind]
    shown = given / "model.pt" if given.is_dir() else given
    out = tmp_path / "b"
    capsys.readouterr()
    assert main(["bench", "--model", str(export_dir), flag, str(given), *ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    hint = (f": fine-tune it first: {shell_command('train', 'finetune', '--init', given, '--task', 'TASK')}"
            if (flag, kind) == ("--teacher", "teacher_pretrain") else "")
    assert err == [f"sqtool: error: {flag}: checkpoint {shown} is a {kind} checkpoint; expected {TAKES[flag]}"
                   f"{hint}"], err
    assert not out.exists()


def test_bench_runs_named_checkpoints_of_the_kinds_they_take(export_dir, kinds, tmp_path):
    out = tmp_path / "b"
    assert main(["bench", "--model", str(export_dir), "--teacher", str(kinds["teacher_task"]), "--student-float",
                 str(kinds["student_float"]), "--student-int8", str(kinds["student_int8"]), *ARGS,
                 "--out", str(out)]) == 0
    rows = {r["runtime"]: r for r in json.loads((out / "bench.json").read_text())["runtimes"]}
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(("torch_teacher", "torch_student",
                                                                      "brevitas_int8"), "ok")
    assert rows["torch_teacher"]["file"] == str(kinds["teacher_task"])
