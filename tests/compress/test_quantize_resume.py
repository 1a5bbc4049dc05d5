"""`sqtool quantize --resume RUN` for time-domain students: killed during QAT, the run reuses its
student_float.pt (no float training), redoes calibration + QAT and ends with the same model.pt, bit for bit,
as an uninterrupted run; a student_float.pt made with another config is refused."""
import dataclasses

import pytest
import torch

from sqtool.compress import distill as D
from sqtool.compress.cli import QuantizeConfig, quantize
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint

FAST = dict(epochs=2, qat_epochs=1, batch_size=32, heldout_subjects=["syn005"])


def die_in_qat(monkeypatch) -> list:
    """distill.fit counted (the list returned); its second call, QAT, raises KeyboardInterrupt: a kill after
    student_float.pt was written."""
    calls, real = [], D.fit

    def fit_then_die(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(D, "fit", fit_then_die)
    return calls


def test_time_domain_quantize_resumes_after_float_training_bit_exact(hr_teacher, hr_task, tmp_path, monkeypatch):
    cfg = QuantizeConfig(teacher=str(hr_teacher), out=str(tmp_path / "full"), **FAST)
    full = quantize(cfg, data=hr_task)

    real = D.fit
    calls = die_in_qat(monkeypatch)
    killed = dataclasses.replace(cfg, out=str(tmp_path / "killed"))
    with pytest.raises(KeyboardInterrupt):
        quantize(killed, data=hr_task)
    assert (tmp_path / "killed" / "student_float.pt").is_file() and not (tmp_path / "killed" / "model.pt").exists()

    calls.clear()
    monkeypatch.setattr(D, "fit", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    quantize(killed, data=hr_task, resume_dir=tmp_path / "killed")
    assert len(calls) == 1                                                 # QAT only: no float training
    a = load_checkpoint(full / "model.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "killed" / "model.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    other = dataclasses.replace(killed, epochs=3)
    with pytest.raises(SqtoolError, match=r"student_float.pt was made with other inputs: its config changed "
                                          r"\(epochs: 2 -> 3\); restore it, or start a new run"):   # names the key
        quantize(other, data=hr_task, resume_dir=tmp_path / "killed")
