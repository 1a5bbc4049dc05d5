"""A bench run killed before its end reads as unfinished: metrics.json, what ends a bench run (core.runs.RESULT),
comes after every other file, config.yaml's `resolved:` included (it came after metrics.json, so a kill between
left a finished-looking bench whose config.yaml never said what it ran on); and a `bench --force` into a finished
bench run's folder loses that run's metrics.json as it starts (core.runs.unfinish), so a kill part-way leaves a
folder that `bench --compare` refuses and a plain rerun asks --force for, never the earlier run, finished, beside
files the new run already rewrote."""
from __future__ import annotations

import json

import pytest
import yaml

import sqtool.core.runs as runs
from sqtool.cli import main

TIME_DOMAIN = ["--data", "synthetic", "--runtime", "c_host", "--callgrind-windows", "0", "--no-progress"]
SPECTRAL = ["--data", "synthetic", "--runtime", "onnx_int8", "--callgrind-windows", "0", "--no-progress"]


def _killed_at_resolved(monkeypatch):
    """A kill as bench writes config.yaml's `resolved:` section. Every command's module imported first: one imported
    under the patch (train.finetune, by the parser) would keep the killer bound by name for the rest of the session."""
    from sqtool.cli import build_parser
    build_parser()

    def killed(run_dir, drop=(), **values):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "save_resolved", killed)


def _refused_by_compare(out, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert main(["bench", "--compare", f"{out},{out}", "--out", str(tmp_path / "cmp")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "an unfinished `sqtool bench` run (killed?)" in err[0], err


@pytest.mark.parametrize("kind", ["time-domain", "spectral"])
def test_a_bench_killed_at_its_resolved_config_is_unfinished(kind, request, tmp_path, monkeypatch, capsys):
    model = request.getfixturevalue("export_dir" if kind == "time-domain" else "spec_export_dir")
    args = ["bench", "--model", str(model), *(TIME_DOMAIN if kind == "time-domain" else SPECTRAL)]
    out = tmp_path / "b"
    _killed_at_resolved(monkeypatch)
    assert main(args + ["--out", str(out)]) == 130
    assert (out / "bench.json").is_file() and not (out / "metrics.json").exists()
    _refused_by_compare(out, tmp_path, capsys)
    monkeypatch.undo()
    assert main(args + ["--out", str(out), "--force"]) == 0                     # redone: finished, and says on what
    assert (out / "metrics.json").is_file()
    resolved = yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    assert resolved["runtimes"] == [json.loads((out / "bench.json").read_text())["runtimes"][0]["runtime"]]


def test_a_killed_force_bench_leaves_no_finished_earlier_run(export_dir, tmp_path, monkeypatch, capsys):
    """... and the --force run that redoes it removes the earlier run's files it did not rewrite (a plot bench.json
    listed, although the killed run had rewritten bench.json already), keeping a file of the user's own."""
    from sqtool.firmware_bench import report
    args = ["bench", "--model", str(export_dir), *TIME_DOMAIN, "--out", str(tmp_path / "b")]
    out = tmp_path / "b"
    assert main(args) == 0
    earlier = json.loads((out / "bench.json").read_text())
    earlier["plots"].append("old_plot.png")                   # the earlier run's plot that this one does not make
    (out / "bench.json").write_text(json.dumps(earlier))
    (out / "old_plot.png").write_bytes(b"\x89PNG")
    (out / "mine.png").write_bytes(b"\x89PNG")                # never listed: the user's own
    earlier = earlier["provenance"]
    write = report.atomic_write_text

    def killed(path, text):                           # the rerun is killed after its bench.json, at its bench.md
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "atomic_write_text", killed)
    capsys.readouterr()
    assert main(args + ["--max-records", "1", "--force"]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds the unfinished run: redo it with: sqtool bench" in last and last.endswith("--force"), last
    assert json.loads((out / "bench.json").read_text())["provenance"] != earlier   # rewritten, and:
    assert not (out / "metrics.json").exists()                                  # not finished
    _refused_by_compare(out, tmp_path, capsys)
    assert main(args) == 1 and "unfinished bench run" in capsys.readouterr().err
    monkeypatch.setattr(report, "atomic_write_text", write)
    assert main(args + ["--max-records", "1", "--force"]) == 0
    assert (out / "metrics.json").is_file() and (out / "bench.md").is_file()
    assert f"removed 1 file of the earlier bench run in {out} that this one did not rewrite (old_plot.png)" \
        in capsys.readouterr().err
    assert not (out / "old_plot.png").exists() and (out / "mine.png").is_file()
    assert not (out / ".earlier_bench.json").exists()


def test_a_compare_forced_into_a_bench_run_leaves_one_run(export_dir, tmp_path):
    """`bench --compare --force` into a bench run's folder kept that run's bench.json, bench.md and plots beside
    its compare.md: the folder read as both. They go once compare.json is written."""
    a, out = tmp_path / "a", tmp_path / "b"
    for d in (a, out):
        assert main(["bench", "--model", str(export_dir), *TIME_DOMAIN, "--max-records", "1", "--out", str(d)]) == 0
    assert main(["bench", "--compare", f"{a},{a}", "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name != "build") == ["compare.json", "compare.md", "config.yaml"]


def _killed_run(src, dst, command: str, drop: tuple[str, ...] = ()):
    """A copy of run folder `src` as a `command` run killed before its metrics.json (and before `drop`)."""
    import shutil
    shutil.copytree(src, dst)
    (dst / "config.yaml").write_text(f"command: {command}\nconfig: {{}}\n")
    for name in drop:
        (dst / name).unlink()
    return dst


@pytest.mark.parametrize("flag, command, given, drop", [
    ("--student-float", "quantize", "{run}/student_float.pt", ()),
    ("--student-int8", "quantize", "{run}", ()),
    ("--teacher", "train/finetune", "{run}", ("model.pt",)),
], ids=["student-float-file", "student-int8-run", "teacher-killed-before-model.pt"])
def test_bench_refuses_a_named_checkpoint_of_an_unfinished_run(export_dir, tmp_path, capsys, flag, command, given,
                                                               drop):
    """`bench --teacher / --student-float / --student-int8 CHECKPOINT` loaded it without the finished check the other
    stages make (`load_checkpoint(finished=True)`): a killed quantize's or fine-tune's checkpoint was benchmarked
    (or its row skipped) as if finished. Now one line naming the option, the run and the command that finishes it,
    before anything is written."""
    run = _killed_run(export_dir.parent / "quantize", tmp_path / "killed run", command, drop)
    out = tmp_path / "b"
    capsys.readouterr()
    assert main(["bench", "--model", str(export_dir), flag, given.format(run=run), *TIME_DOMAIN[:2], "--runtime",
                 "torch", "--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    missing = drop[0] if drop else "metrics.json"
    shown = command.replace("/", " ")
    assert err == [f"sqtool: error: {flag}: {run} has no {missing}: an unfinished `sqtool {shown}` run (killed?): "
                   f"continue it with `sqtool {shown} --resume '{run}'`"], err
    assert not out.exists()


def test_bench_reads_a_named_checkpoint_of_a_finished_run_or_of_no_run(export_dir, tmp_path, capsys):
    """The same checkpoints once their run wrote metrics.json, or copied out of any run, are benchmarked."""
    import shutil
    run = _killed_run(export_dir.parent / "quantize", tmp_path / "q", "quantize")
    (run / "metrics.json").write_text('{"status": "done"}\n')
    shutil.copyfile(run / "student_float.pt", tmp_path / "plain.pt")
    out = tmp_path / "b"
    assert main(["bench", "--model", str(export_dir), "--student-float", str(tmp_path / "plain.pt"), "--student-int8",
                 str(run), "--teacher", str(run / "student_float.pt"), *TIME_DOMAIN[:2], "--runtime", "torch",
                 "--no-progress", "--out", str(out)]) == 0
    rows = {r["runtime"]: r for r in json.loads((out / "bench.json").read_text())["runtimes"]}
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(("torch_teacher", "torch_student",
                                                                      "brevitas_int8"), "ok")
    assert rows["torch_student"]["file"] == str(tmp_path / "plain.pt")
