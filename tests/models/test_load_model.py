"""models.load_model: a checkpoint's model with its weights, or one line saying why not; and the one copy
of that logic (compress, export and bench load checkpoints' models only through it)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import sqtool
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint
from sqtool.models import create_model, load_model


def test_load_model_round_trip(tmp_path):
    torch.manual_seed(0)
    m = create_model("cnn1d_student_xs").eval()
    save_checkpoint(tmp_path / "model.pt", kind="student_float", model_cfg=m.cfg.to_dict(), state_dict=m.state_dict())
    x = torch.randn(2, *m.cfg.input_shape)
    for src in (tmp_path, tmp_path / "model.pt", load_checkpoint(tmp_path)):
        got = load_model(src, expect_kind="student_float")
        assert not got.training and got.cfg == m.cfg
        with torch.no_grad():
            assert torch.equal(got(x), m(x))


def test_load_model_refuses_in_one_line(tmp_path):
    m = create_model("cnn1d_student_xs")
    sd = m.state_dict()
    bad = dict(sd)
    bad.pop(next(iter(bad)))
    save_checkpoint(tmp_path / "missing.pt", kind="student_float", model_cfg=m.cfg.to_dict(), state_dict=bad)
    other = create_model("cnn1d_student_s").state_dict()
    save_checkpoint(tmp_path / "other.pt", kind="student_float", model_cfg=m.cfg.to_dict(), state_dict=other)
    save_checkpoint(tmp_path / "unknown.pt", kind="student_float", model_cfg={**m.cfg.to_dict(), "name": "nope"},
                    state_dict=sd)
    save_checkpoint(tmp_path / "int8.pt", kind="student_int8", model_cfg=m.cfg.to_dict(), state_dict=sd)
    cases = [("missing.pt", r"missing.pt: weights do not fit its model_cfg \(cnn1d_student_xs\)"),
             ("other.pt", r"other.pt: weights do not fit"),
             ("unknown.pt", r"unknown.pt: unknown model 'nope'"),
             ("int8.pt", r"student_int8 checkpoint; expected student_float")]
    for f, match in cases:
        with pytest.raises(SqtoolError, match=match) as e:
            load_model(tmp_path / f, expect_kind="student_float")
        assert "\n" not in str(e.value), f


def test_stages_build_checkpoint_models_only_through_load_model():
    pkg = Path(sqtool.__file__).parent
    copies = []
    for stage in ("compress", "export", "firmware_bench"):
        for p in sorted((pkg / stage).rglob("*.py")):
            for i, line in enumerate(p.read_text().splitlines(), 1):
                if re.search(r"load_state_dict\([^)]*\[[\"']state_dict[\"']\]", line):
                    copies.append(f"{p.relative_to(pkg)}:{i}")
    assert copies == [], copies
