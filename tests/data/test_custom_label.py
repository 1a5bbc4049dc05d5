"""A researcher's own per-window regression label in dataset.yaml (`labels: {spo2: {column: spo2, unit: "%"}}`):
parsed, read per window as hr's, a fine-tuning task of its name (`data.tasks.task_spec`); a clash, a missing unit
or a class label is one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import ModelCfg, SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.tasks import load_task, task_model_cfg, task_spec

FS, SECONDS = 50.0, 64.0


def write_project(root: Path, subjects=("s01", "s02", "s03", "s04"), label: str = 'spo2: {column: spo2, unit: "%"}',
                  spo2=lambda i, t: 90.0 + i + 2.0 * (t > 32)) -> Path:
    """CSV recordings (time, ppg, spo2) of `subjects` and their dataset.yaml with `label` under labels."""
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SECONDS * FS)) / FS
    for i, s in enumerate(subjects):
        ppg = np.sin(2 * np.pi * (1.1 + 0.1 * i) * t) + 0.05 * np.random.default_rng(i).standard_normal(len(t))
        np.savetxt(rec / f"{s}_rest.csv", np.column_stack([t, ppg, spo2(i, t)]), delimiter=",",
                   header="time,ppg,spo2", comments="", fmt="%.5f")
    return dataset_yaml(root, label, subject='subject:\n  pattern: "^(?P<subject>s\\\\d+)_"\n',
                        split=f"split:\n  test: [{subjects[-1]}]\n")


def dataset_yaml(root: Path, label: str, subject: str = "", split: str = "") -> Path:
    """root/dataset.yaml of CSVs `time,ppg,...` under root/recordings, `label` under labels (a subject and a split
    block as given)."""
    f = root / "dataset.yaml"
    f.write_text(f"""name: ox
format: csv
root: recordings
files: "*.csv"
time_column: time
channels:
  ppg: ppg
{subject}windows: {{window_s: 8, hop_s: 8}}
labels:
  {label}
{split}""")
    return f


def test_a_custom_label_is_read_per_window_in_its_unit(tmp_path):
    ds = load_dataset_file(write_project(tmp_path, label='spo2: {column: spo2, unit: "%", band: [0.4, 6]}'))
    assert ds.custom_labels == ["spo2"]
    spec = task_spec("spo2", dataset=ds)
    assert (spec["outputs"], spec["units"], spec["kind"], spec["window_s"], spec["band"]) == \
        (("spo2",), ("%",), "regression", 8.0, (0.4, 6.0))
    mc = task_model_cfg("spo2", ModelCfg(name="d", family="resnet1d"), spec=spec)
    td = load_task("spo2", ds.path, mc)
    assert td.x.shape == (4 * 8, 1, 320) and td.meta["units"] == ["%"]
    first = td.record_ids == "s02_rest"
    np.testing.assert_allclose(td.y[first, 0], [91.0] * 4 + [93.0] * 4, atol=0.02)   # the window's mean
    assert task_spec("spo2", model_cfg=mc)["units"] == ("%",)     # the cfg alone describes the task


def test_a_built_in_task_keeps_its_spec():
    assert task_spec("rr")["band"] == (0.05, 8.0) and task_spec("hr")["custom"] is False


@pytest.mark.parametrize("label, says", [
    ("spo2: {column: spo2}", "a label of your own needs unit:"),
    ("af: {column: spo2, unit: x}", "'af' is a built-in task or label name"),
    ("sbp: {column: spo2, unit: mmHg}", "'sbp' is a built-in task or label name"),
    ("spo2: {table: t.csv, unit: '%'}", "regression targets only"),
    ("spo2: {column: spo2, unit: '%', band: [6, 1]}", "labels.spo2.band: expected lo < hi"),
    ("hr: {column: spo2, unit: bpm}", "labels.hr.unit: the built-in hr label has its own unit"),
])
def test_a_bad_custom_label_is_one_line(tmp_path, label, says):
    with pytest.raises(SqtoolError, match="dataset.yaml") as e:
        load_dataset_file(write_project(tmp_path, label=label))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_values_outside_the_range_are_refused_as_hr_s_are(tmp_path):
    ds = load_dataset_file(write_project(tmp_path, label="spo2: {column: spo2, unit: '%', range: [50, 92]}"))
    with pytest.raises(SqtoolError, match=r"spo2 value\(s\) outside the plausible 50-92 %"):
        ds.records()


def test_an_unknown_task_names_the_custom_labels_way(tmp_path):
    with pytest.raises(SqtoolError, match="custom regression label of the --data dataset file"):
        task_spec("spo3", dataset=load_dataset_file(write_project(tmp_path)))
