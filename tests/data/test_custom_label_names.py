"""A custom label may not take a name a model outputs or sqtool predict writes as a column (audit: a label
`flagged` trained and exported, then predict's CSV held the dropout flag in the prediction's column, MAE 93; a
label `quality_logit` collided with the student's quality head), nor an empty unit (README: unit is required)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.tasks import PREDICT_COLUMNS, QUALITY_OUTPUT, TASK_SPECS, reserved_output

from test_custom_label import dataset_yaml


def _file(root: Path, label: str) -> Path:
    (root / "recordings").mkdir(parents=True, exist_ok=True)
    return dataset_yaml(root, label)


@pytest.mark.parametrize("name", ["flagged", "time_s", "time", "hr_bpm", "rr_bpm", "lo_bpm", "confidence",
                                  "hr_tracked_bpm", "truth_bpm", "truth_spo2", "p_spo2", "quality_logit",
                                  "logit_af", "logit_good"])
def test_a_label_named_as_an_output_or_a_predict_column_is_one_line(tmp_path, name):
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(_file(tmp_path, f'{name}: {{column: spo2, unit: "%"}}'))
    msg = str(e.value)
    assert "\n" not in msg and f"labels.{name}: '{name}' is a model output or a column sqtool predict writes" in msg
    assert f"e.g. my_{name}" in msg


@pytest.mark.parametrize("unit", ['""', '" "', "logit"])
def test_a_custom_label_needs_a_unit_of_its_values(tmp_path, unit):
    with pytest.raises(SqtoolError, match=r"labels\.spo2\.unit: .*a custom label's unit is required text"):
        load_dataset_file(_file(tmp_path, f"spo2: {{column: spo2, unit: {unit}}}"))


def test_names_of_ones_own_still_read(tmp_path):
    ds = load_dataset_file(_file(tmp_path, 'spo2: {column: spo2, unit: "%"}\n  flagged_pct: {column: f, unit: "%"}'))
    assert ds.custom_labels == ["spo2", "flagged_pct"]


def test_the_reserved_names_are_the_models_outputs_and_predicts_columns():
    from sqtool.models import get_model_cfg
    assert get_model_cfg("cnn1d_student_s").outputs[-1] == QUALITY_OUTPUT      # the student's quality head
    assert all(reserved_output(o) for s in TASK_SPECS.values() for o in s["outputs"])
    assert all(reserved_output(c) for c in PREDICT_COLUMNS) and not reserved_output("spo2")
