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
    """A kill as bench writes config.yaml's `resolved:` section."""
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
