"""README claims that no other test exercises: the NO_APT switch of the Makefile, the bench.md glossary naming
exactly the columns `sqtool bench` prints, and `--progress/--no-progress` on export and bench.
(Progress lines: tests/firmware_bench/test_progress_lines.py; per-fold lines, curves and config.yaml
`resolved:`: tests/train/test_run_dir_outputs.py.)"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_no_apt_never_runs_apt_get():
    r = subprocess.run(["make", "-s", "deps-debian", "NO_APT=1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("NO_APT set: not installing"), r.stdout + r.stderr
    assert "make demo NO_APT=1" in README and "apt-get install -y gcc-arm-none-eabi" in README


def _glossary() -> str:
    return README[README.index("### Reading `bench.md`"):README.index("### Models (registry)")]


def test_bench_glossary_names_the_printed_columns_and_plots():
    from sqtool.firmware_bench.report import tables
    row = {"runtime": "c_host", "status": "ok", "precision": "int8", "file": "/e/c/sq_model.c", "size_bytes": 2048,
           "metrics": {"mae": 1.0, "rmse": 2.0, "bias": 0.5, "gt10": 0.1, "n": 3}, "metrics_tracked": {"mae": 1.0},
           "instructions_per_inference": 10, "exact_pct": 100.0, "exact_ref": "tflm_int8"}
    res = {"provenance": {}, "runtimes": [row], "primary": "c_host", "floor": [],
           "baseline": {"runtime": "baseline", "status": "ok", "precision": "float64", "metrics": {"mae": 2.0}},
           "series": {"records": [{"record_id": "r", "subject": "s1", "t0": [0.0], "truth": [60.0]}],
                      "pred": {"c_host": [[61.0]], "baseline": [[62.0]]}}}
    text = tables(res)
    headers = {h.strip() for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln
               for h in ln.strip("|").split("|")}
    g = _glossary()
    for col in ("precision", "MAE BPM", "RMSE BPM", "bias BPM", ">10 BPM %", "MAE tracked BPM", "windows",
                "file loaded", "file KB", "p50 ms", "p99 ms", "bit-exact %", "exact vs", "x real time"):
        assert col in headers, col
        assert f"`{col}`" in g, col
    assert "sq_model.c + .h" in text and "c_host MAE BPM" in text                 # per-subject columns
    for plot in re.findall(r"`(\w+\.png)`", g):
        assert plot in (ROOT / "sqtool/firmware_bench/report.py").read_text(), plot


@pytest.mark.parametrize("cmd", ["export", "bench"])
def test_export_and_bench_take_the_progress_flags(cmd):
    from sqtool.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[cmd]
    for flag, value in (("--no-progress", False), ("--progress", True)):
        assert sub.parse_args(["--model", "m", "--data", "d", flag] if cmd == "bench"
                              else ["--model", "m", flag]).progress is value


def test_the_exit_status_paragraph_names_exports_parity_failure():
    """export exits 3 on a parity failure (tests/export/test_export_bad_input.py), which the exit-status paragraph
    listed for bench --floor only: a script reading it took an export's 3 for an unknown status."""
    par = README[README.index("Exit status, the same for every command"):]
    par = par[:par.index("**130**")]
    three = " ".join(par[par.index("**3**"):].split())          # as read, whatever the line breaks
    assert "`sqtool bench --floor`" in three and "`sqtool export` an artifact missed its parity check" in three
