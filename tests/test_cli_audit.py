"""A daily user's CLI audit (session 40): a finished predict run is finished, `| head` ends quietly, a missing
required option is a usage error, --out is checked before any model is read, an interrupt says what to rerun,
--version names the commit, the hints say where an input comes from, a demo step's config.yaml works from any
folder, and a WARNING shows once when stdout and stderr are one file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sqtool.cli import _continue_with, build_parser, main
from sqtool.core.runs import (RESULT, check_out_dir, export_first_hint, note_run, run_dirs_made, runs_noted)
from sqtool.core.say import also_on_stderr, one_stream

ROOT = Path(__file__).resolve().parent.parent


def _run_folder(d: Path, command: str, *files: str) -> Path:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"sqtool_version": "0", "created": "x", "command": command,
                                                   "config": {}}))
    for f in files:
        (d / f).write_text("{}\n")
    return d


@pytest.mark.parametrize("command, last", [("predict", "summary.json"), ("bench", "metrics.json"),
                                           ("bench", "compare.json")])
def test_a_finished_run_of_every_result_file_is_said_finished(tmp_path, command, last):
    d = _run_folder(tmp_path / "r", command, last)
    with pytest.raises(Exception, match=f"holds a finished {command} run"):
        check_out_dir(command, d)


def test_every_command_that_makes_a_run_folder_has_its_result_file_known():
    made = set()
    for p in (ROOT / "sqtool").rglob("*.py"):
        text = p.read_text()
        for part in text.split('make_run_dir("')[1:]:
            made.add(part.split('"', 1)[0])
    assert made, "no make_run_dir call found"
    writes = {"train/pretrain": "metrics.json", "train/finetune": "metrics.json", "quantize": "metrics.json",
              "demo": "metrics.json"}
    for command in made:
        assert command in RESULT or command in writes, command


def test_a_closed_stdout_pipe_ends_quietly_with_141(tmp_path):
    r, w = os.pipe()
    os.close(r)                                                    # the reader (`| head`) is gone
    try:
        p = subprocess.run([sys.executable, "-m", "sqtool.cli", "data", "download", "--list"], stdout=w,
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", p.stderr


@pytest.mark.parametrize("argv, line", [
    (["export", "--target", "onnx"], "export: --model RUN is required (what to export: a `sqtool quantize` run folder"),
    (["bench", "--data", "synthetic"], "bench: --model EXPORT is required"),
    (["bench", "--model", "x"], "bench: --data DATA is required"),
])
def test_a_missing_required_option_is_a_usage_error(argv, line, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"sqtool: error: {line}") and "--help)" in err


def test_export_checks_out_before_reading_the_model(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x.txt").write_text("mine")
    assert main(["export", "--model", str(tmp_path / "no_such_run"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and "no_such_run" not in err


def test_an_interrupted_run_without_resume_names_the_rerun(tmp_path):
    made, noted = run_dirs_made(), runs_noted()
    d = _run_folder(tmp_path / "e", "export", "metadata.json")       # no manifest.json: unfinished
    note_run(d, "export")
    hint = _continue_with(made, noted, ["export", "--model", "m", "--out", str(d)])
    assert hint == f"; {d} holds the unfinished run: redo it with: sqtool export --model m --out {d} --force"


def test_an_interrupted_demo_step_says_so_and_how_to_run_it_again(tmp_path, monkeypatch, capsys):
    import sqtool.data.cli as data_cli
    import sqtool.demo as demo

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(data_cli, "run_download", interrupted)
    monkeypatch.setattr(demo, "steps", lambda cfg, d, exclude=(): [("list", ["data", "download", "--list"])])
    assert main(["demo", "--out", str(tmp_path / "d")]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sqtool: demo interrupted at step 1 (list), exit 130") and "error" not in last
    assert last.endswith(f"sqtool demo --config {tmp_path / 'd' / 'config.yaml'} --out {tmp_path / 'd'} --force")


def test_version_names_the_git_commit_of_a_checkout(capsys):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("sqtool ") and " (git " in out and out.endswith(")")


def test_a_quantize_run_given_as_an_export_says_export_it_first(tmp_path, capsys):
    q = _run_folder(tmp_path / "q", "quantize", "metrics.json")
    assert export_first_hint(q) == f"export it first: sqtool export --model {q} --target onnx,tflite,c"
    assert main(["bench", "--model", str(q), "--data", "synthetic", "--out", str(tmp_path / "b")]) == 1
    assert "(export it first: sqtool export --model" in capsys.readouterr().err


def test_data_inspect_of_a_misspelt_name_lists_the_builtin_datasets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "inspect", "--data", "troikaa"]) == 1
    err = capsys.readouterr().err
    assert "not a built-in dataset" in err and "troika" in err.split("built-in dataset")[1]


def test_bench_and_export_configs_keep_absolute_paths(tmp_path, monkeypatch):
    from sqtool.core import resolve_config
    from sqtool.export.cli import ExportConfig
    from sqtool.firmware_bench.cli import BenchConfig
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    (tmp_path / "q").mkdir()
    args = build_parser().parse_args(["bench", "--model", "exp", "--data", "synthetic"])
    cfg = resolve_config(BenchConfig, args)
    assert cfg.model == str(tmp_path / "exp") and cfg.data == "synthetic"
    cfg = resolve_config(ExportConfig, build_parser().parse_args(["export", "--model", "q"]))
    assert cfg.model == str(tmp_path / "q")


def test_the_demo_gives_its_steps_absolute_paths(tmp_path, monkeypatch):
    import sqtool.cli
    import sqtool.demo as demo
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(sqtool.cli, "main", lambda argv: seen.append(argv) or 0)
    assert demo.run(build_parser().parse_args(["demo", "--out", "rel/d", "--pretrain", "false"])) == 0
    outs = [a[a.index("--out") + 1] for a in seen]
    assert outs and all(Path(o).is_absolute() and o.startswith(str(tmp_path / "rel" / "d")) for o in outs)
    model = next(a for a in seen if a[0] == "bench")
    assert Path(model[model.index("--model") + 1]).is_absolute()


def test_a_warning_goes_to_stderr_too_only_when_it_is_another_file(tmp_path, monkeypatch, capsys):
    same = open(tmp_path / "both.txt", "w")
    other = open(tmp_path / "err.txt", "w")
    try:
        monkeypatch.setattr(sys, "stdout", same)
        monkeypatch.setattr(sys, "stderr", same)
        assert one_stream()
        also_on_stderr("WARNING: once")
        monkeypatch.setattr(sys, "stderr", other)
        assert not one_stream()
        also_on_stderr("WARNING: twice")
    finally:
        monkeypatch.undo()
        same.close()
        other.close()
    assert (tmp_path / "both.txt").read_text() == "" and (tmp_path / "err.txt").read_text() == "WARNING: twice\n"
