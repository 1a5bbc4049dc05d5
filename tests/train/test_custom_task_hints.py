"""A dataset file of custom labels only (audit: spo2, hr_monitor): `train pretrain`'s next line offers a task the
file declares (it offered --task hr, which then failed "needs label 'hr'"), `train finetune --help` names custom
labels, and a mistyped task lists the file's tasks and the near spelling in its one line."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file
from sqtool.data.dataset_tasks import task_loader
from sqtool.data.tasks import task_spec


def _file(root: Path) -> Path:
    (root / "rec").mkdir(parents=True, exist_ok=True)
    f = root / "dataset.yaml"
    f.write_text("name: icu\nformat: csv\nroot: rec\nfs: 125\nchannels: {ppg: ppg}\n"
                 "subject: {pattern: '^(s\\\\d+)_'}\n"
                 "labels: {spo2: {column: spo2, unit: '%'}, hr_monitor: {column: hr_monitor, unit: BPM}}\n")
    return f


def test_pretrains_next_line_offers_the_files_own_label(tmp_path):
    from sqtool.train.cli import pretrain_next
    f = _file(tmp_path)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "config.yaml").write_text(f"command: data_pairs\nconfig:\n  input:\n  - {f}\n  data_root: null\n")
    line = pretrain_next(SimpleNamespace(pairs=str(pairs), model="resnet1d_siamq_tiny"), tmp_path / "pre")
    assert "--task spo2 " in line and f"--data {f}" in line
    assert task_spec("spo2", dataset=load_dataset_file(f))["outputs"] == ("spo2",)     # a task the file can train


def test_pairs_of_a_root_of_own_dataset_folders_offer_a_labelled_file_not_the_root(tmp_path):
    """Pairs mined from a folder of dataset folders (one unlabelled, one with custom labels): the next line offered
    `--task hr --data ROOT`, which failed 'task hr needs the troika dataset'; it now names the labelled file."""
    from sqtool.train.cli import pretrain_next
    root = tmp_path / "corpus"
    f = _file(root / "icu")
    (root / "ward").mkdir()
    (root / "ward" / "dataset.yaml").write_text("name: ward\nformat: csv\nroot: .\nfs: 125\nchannels: {ppg: ppg}\n")
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "config.yaml").write_text(f"command: data_pairs\nconfig:\n  input: []\n  data_root: {root}\n")
    line = pretrain_next(SimpleNamespace(pairs=str(pairs), model="resnet1d_siamq_tiny"), tmp_path / "pre")
    assert "--task spo2 " in line and line.endswith(f"--data {f}")


def test_finetune_help_names_custom_labels(capsys):
    from sqtool.cli import main
    with pytest.raises(SystemExit):
        main(["train", "finetune", "--help"])
    assert "or a custom regression label of the --data dataset file" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("where", ["task_spec", "task_loader"])
def test_a_mistyped_task_lists_the_files_tasks(tmp_path, where):
    ds = load_dataset_file(_file(tmp_path))
    with pytest.raises(SqtoolError) as e:
        task_spec("SpO2", dataset=ds) if where == "task_spec" else task_loader("SpO2", ds)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("unknown task 'SpO2' (known: hr, rr, af, bp, quality")
    assert msg.endswith("declared with unit:; the file's own: spo2, hr_monitor; did you mean spo2?)")
