"""Every benchmark that reads the real data finds it as the package does: --data-root, else $SQTOOL_DATA, else
../shared/data; a root that is not there is one line and a non-zero exit, before any work."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqtool.core import SqtoolError, data_root_or_exit

ROOT = Path(__file__).resolve().parent.parent
READERS = ("beliefppg_peer", "compress_hr", "data_quality_pairs", "downstream_skill", "export_parity", "firmware_hr",
           "firmware_pipeline", "frontend_phase_ab", "hr_spectral", "hr_synthetic_pulse", "pretrain_ablation",
           "student_arch_search", "train_pretrain_vs_scratch")


def _refuse(msg):
    raise SystemExit(msg)


def test_the_flag_then_the_environment(tmp_path, monkeypatch):
    flag, env = tmp_path / "flag", tmp_path / "env"
    flag.mkdir()
    env.mkdir()
    monkeypatch.setenv("SQTOOL_DATA", str(env))
    assert data_root_or_exit(str(flag), _refuse) == str(flag.resolve())
    assert data_root_or_exit(None, _refuse) == str(env.resolve())
    with pytest.raises(SystemExit, match="nope"):
        data_root_or_exit(str(tmp_path / "nope"), _refuse)
    with pytest.raises(SqtoolError):                   # an error callback that returns does not let it through
        data_root_or_exit(str(tmp_path / "nope"), lambda m: None)


@pytest.mark.parametrize("name", READERS)
def test_benchmark_reads_sqtool_data(name, tmp_path):
    env = {**os.environ, "SQTOOL_DATA": str(tmp_path / "nope"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py")], capture_output=True, text=True,
                       env=env, timeout=120, cwd=tmp_path)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and "SQTOOL_DATA" in last and "nope" in last, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())                  # nothing written (beliefppg_peer: no venv made)


@pytest.mark.parametrize("name", ("downstream_skill", "frontend_phase_ab", "pretrain_ablation"))
def test_no_data_root_names_the_scripts_own_flag(name, tmp_path, monkeypatch, capsys):
    """A benchmark whose data root option is --data (--data-root its old spelling) says --data when none is found
    (no flag, no $SQTOOL_DATA, no ../shared/data beside the cwd or the project)."""
    import sqtool.core.runs as runs
    from bench_scripts import load_benchmark
    monkeypatch.delenv("SQTOOL_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path / "a" / "project")
    with pytest.raises(SystemExit) as e:
        load_benchmark(name).main([])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and "no data root: pass --data DIR" in last, last
