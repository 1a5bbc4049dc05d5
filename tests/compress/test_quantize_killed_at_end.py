"""A quantize run killed at its very end: metrics.json (what marks a run finished, core.runs.RESULT) is written after
every other artifact (heldout.npz, report.md, the final config.yaml, the training curve), so a kill right after it
leaves a complete run and a kill before it a run that reads as unfinished (export refuses it, `--resume` redoes the
end), never a "finished" run without its report or held-out windows. And a teacher whose fine-tune was killed after
its model.pt (before its metrics.json) is refused by quantize, as export refuses it."""
import shutil

import pytest

import sqtool.compress.cli as QC
import sqtool.compress.quantize_hr as QH
from sqtool.cli import main
from sqtool.compress.cli import QuantizeConfig, quantize
from sqtool.core import SqtoolError

FAST = dict(epochs=1, qat_epochs=1, batch_size=32, heldout_subjects=["syn005"])


def _killed_right_after_metrics(monkeypatch, module) -> list[set]:
    """`module.write_metrics` writes metrics.json, notes what the run folder held then, and the process dies."""
    seen, real = [], module.write_metrics

    def write_then_die(run_dir, metrics, *a, **kw):
        real(run_dir, metrics, *a, **kw)
        seen.append({p.name for p in run_dir.iterdir()})
        raise KeyboardInterrupt
    monkeypatch.setattr(module, "write_metrics", write_then_die)
    return seen


def test_time_domain_metrics_json_is_written_last(hr_teacher, hr_task, tmp_path, monkeypatch):
    seen = _killed_right_after_metrics(monkeypatch, QC)
    run = tmp_path / "q"
    with pytest.raises(KeyboardInterrupt):
        quantize(QuantizeConfig(teacher=str(hr_teacher), out=str(run), **FAST), data=hr_task)
    assert {"heldout.npz", "report.md", "training_curve.png", "model.pt"} <= seen[0], seen
    assert "heldout_subjects" in (run / "config.yaml").read_text()        # the final config.yaml, not the first


def test_a_teacher_of_an_unfinished_fine_tune_is_refused(hr_teacher, tmp_path, capsys):
    ft = tmp_path / "ft"                                   # killed after model.pt, before metrics.json
    ft.mkdir()
    shutil.copyfile(hr_teacher, ft / "model.pt")
    (ft / "config.yaml").write_text("command: train/finetune\nconfig: {task: hr}\n")
    with pytest.raises(SqtoolError, match="unfinished `sqtool train finetune` run"):
        quantize(QuantizeConfig(teacher=str(ft), out=str(tmp_path / "q"), **FAST))
    assert main(["quantize", "--model", str(ft), "--out", str(tmp_path / "q2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"sqtool train finetune --resume {ft}" in err[0], err
    assert not (tmp_path / "q").exists() and not (tmp_path / "q2").exists()


def test_spectral_metrics_json_is_written_last(spectral_teacher, tmp_path, monkeypatch, capsys):
    seen = _killed_right_after_metrics(monkeypatch, QH)
    run = tmp_path / "q"
    assert main(["quantize", "--model", str(spectral_teacher), "--student", "spec_student_xs", "--data", "synthetic",
                 "--epochs", "1", "--qat-epochs", "1", "--no-progress", "--out", str(run)]) == 130
    assert {"heldout.npz", "report.md", "training_curve.png", "model.pt"} <= seen[0], seen
