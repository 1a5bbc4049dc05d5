"""Two dataset files of your own fine-tuned together (two devices, two cohorts): `train finetune --data
watch_v2/dataset.yaml --datasets watch_v1/dataset.yaml` trains watch_v1's subjects beside watch_v2's, as a built-in
beside a file is; --data's split holds subjects out (watch_v1's split: is not used, one note line); the reports are
keyed by each file's `name:`; `quantize` reads watch_v1 again from the path the fine-tune recorded, and refuses in
one line when it moved. Bad entries (one name twice, no such file, a file the model cannot read) are one line each."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sqtool.cli import main
from test_own_data import readme_yaml, write_csv_folder

TINY = ["--folds", "2", "--epochs", "1", "--progress", "false"]


def write_watch(folder: Path, name: str, yaml_edit=lambda y: y, **kw) -> Path:
    """A README-style own-data folder (CSV at 125 Hz, s01-s04, split test s04) named `name`; its dataset.yaml."""
    write_csv_folder(folder / "recordings", seconds=40.0, **kw)
    (folder / "dataset.yaml").write_text(yaml_edit(readme_yaml().replace("name: my_watch", f"name: {name}")))
    return folder / "dataset.yaml"


@pytest.fixture(scope="module")
def two_watches(tmp_path_factory) -> Path:
    proj = tmp_path_factory.mktemp("beside") / "proj"
    write_watch(proj / "watch_v1", "watch_v1")
    write_watch(proj / "watch_v2", "watch_v2")
    return proj


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_two_of_your_dataset_files_fine_tune_and_quantize_together(two_watches, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(two_watches)
    ft = tmp_path / "ft"
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", "watch_v2/dataset.yaml",
                 "--datasets", "watch_v1/dataset.yaml", *TINY, "--out", str(ft)]) == 0
    said = capsys.readouterr()
    out = said.out + said.err                                         # progress lines go to stderr
    v1 = two_watches / "watch_v1" / "dataset.yaml"
    assert (f"note: {v1}'s split: is not used: the held-out subjects are --data "
            f"{two_watches / 'watch_v2' / 'dataset.yaml'}'s, every watch_v1 subject is trained on") in out
    m = json.loads((ft / "metrics.json").read_text())
    assert m["datasets"] == ["watch_v2", "watch_v1"] and m["subjects"] == 3 + 4
    assert m["heldout_subjects"] == ["watch_v2:s04"]                  # --data's split; watch_v1's s04 trained on
    assert list(m["per_dataset"]) == ["watch_v2", "watch_v1"] and m["per_dataset"]["watch_v1"]["subjects"] == 4
    assert "  watch_v1 (4 subjects): decoded MAE" in out
    with np.load(ft / "oof_logits.npz") as z:                         # both devices' s01_walk.csv, kept apart
        assert {"s01_walk", "watch_v1/s01_walk"} <= set(z.files)
    import torch
    tc = torch.load(ft / "model.pt", weights_only=False)["train_cfg"]
    assert tc["beside_files"] == {"watch_v1": str(v1)}               # recorded absolute: quantize reads it again

    monkeypatch.chdir(tmp_path)                                       # from elsewhere: the recorded path
    q = ["quantize", "--model", str(ft), "--student", "spec_student_xs", "--epochs", "1", "--qat-epochs", "1",
         "--inner-epochs", "1", "--no-progress"]
    assert main([*q, "--out", str(tmp_path / "q")]) == 0
    qm = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert qm["heldout_subjects"] == ["watch_v2:s04"]
    said = capsys.readouterr()
    assert "teacher logits: out-of-fold" in said.out + said.err       # the same recordings, by the same ids

    shutil.move(two_watches / "watch_v1", tmp_path / "moved")         # the file it trained beside is gone
    try:
        assert main([*q, "--out", str(tmp_path / "q2")]) == 1
        assert one_error(capsys) == (f"sqtool: error: teacher {ft / 'model.pt'} was fine-tuned beside watch_v1, the "
                                     f"dataset file {v1}, which is not there any more: put it back there, or "
                                     "fine-tune the teacher again")
        assert not (tmp_path / "q2").exists()
    finally:
        shutil.move(tmp_path / "moved", two_watches / "watch_v1")
    yaml = v1.read_text()
    v1.write_text(yaml.replace("name: watch_v1", "name: watch_v1b"))      # there again, under another name
    try:
        assert main([*q, "--out", str(tmp_path / "q3")]) == 1
        assert one_error(capsys) == (f"sqtool: error: teacher {ft / 'model.pt'} was fine-tuned beside {v1} named "
                                     "watch_v1; it is named watch_v1b now: give it its name back, or fine-tune the "
                                     "teacher again")
    finally:
        v1.write_text(yaml)


def test_bad_dataset_files_beside_yours_are_one_line(two_watches, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(two_watches)
    write_watch(tmp_path / "v1_copy", "watch_v1")
    write_watch(tmp_path / "ppg_only", "ppg_only", lambda y: y.replace("  acc_x: {column: acc_x, unit: g}\n", ""))
    v2 = two_watches / "watch_v2" / "dataset.yaml"
    for data, beside, says in (
            ("watch_v2/dataset.yaml", f"watch_v1/dataset.yaml,{tmp_path / 'v1_copy'}",
             f"{two_watches / 'watch_v1' / 'dataset.yaml'} and {tmp_path / 'v1_copy' / 'dataset.yaml'} are both "
             "named 'watch_v1' (subject keys and report lines are keyed by a dataset's name): give one of them "
             "another `name:`"),
            ("watch_v2/dataset.yaml", "watch_v3/dataset.yaml", "watch_v3/dataset.yaml: no such dataset file"),
            ("watch_v2/dataset.yaml", "nosuch", "nosuch is not a built-in dataset"),
            ("watch_v2/dataset.yaml", "watch_v2/dataset.yaml", f"{v2}: {v2} is --data itself"),
            ("watch_v2/dataset.yaml", str(tmp_path / "ppg_only" / "dataset.yaml"),
             "ppg_only/s01_walk: the model needs channel(s) acc_x"),
            (str(two_watches), "watch_v1/dataset.yaml",
             f"--datasets {two_watches / 'watch_v1' / 'dataset.yaml'}: a dataset file trains beside --data "
             f"DATASET.yaml (whose split holds subjects out), and --data {two_watches} is no dataset file")):
        assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", data,
                     "--datasets", beside, *TINY, "--out", str(tmp_path / "bad")]) == 1, beside
        assert says in one_error(capsys)
        assert not (tmp_path / "bad" / "model.pt").exists()
    monkeypatch.chdir(tmp_path)                                       # no folder watch_v2 here: a name
    assert main(["train", "finetune", "--task", "hr", "--model", "spec_student_xs", "--data", str(v2),
                 "--datasets", "watch_v2", *TINY, "--out", str(tmp_path / "bad")]) == 1
    assert "'watch_v2' is that file's own name" in one_error(capsys)


@pytest.mark.slow
def test_the_demo_trains_your_other_file_beside(two_watches, tmp_path, monkeypatch, capsys):
    """`sqtool demo --data watch_v2/dataset.yaml --datasets watch_v1/dataset.yaml` at its quickest: the fine-tune
    step gets watch_v1's absolute path, holds out watch_v2's split only, and quantize reads watch_v1 again."""
    monkeypatch.chdir(two_watches)
    assert main(["demo", "--data", "watch_v2/dataset.yaml", "--datasets", "watch_v1/dataset.yaml", "--out",
                 str(tmp_path / "demo"), "--teacher", "spec_student_xs", "--student", "spec_student_xs", "--folds", "2",
                 "--batch-size", "2", "--pretrain-epochs", "1", "--finetune-epochs", "1", "--student-epochs", "1",
                 "--qat-epochs", "1", "--mcu", "false"]) == 0
    assert f"--datasets {two_watches / 'watch_v1' / 'dataset.yaml'}" in capsys.readouterr().out
    ft = json.loads((tmp_path / "demo" / "finetune" / "metrics.json").read_text())
    assert ft["datasets"] == ["watch_v2", "watch_v1"] and ft["heldout_subjects"] == ["watch_v2:s04"]
    q = json.loads((tmp_path / "demo" / "quantize" / "metrics.json").read_text())
    assert q["heldout_subjects"] == ["watch_v2:s04"]


def test_the_demo_holds_out_your_files_split_only(two_watches):
    """The demo lists the fine-tune's held-out subjects before its pairs step: --data's split, the other file's
    subjects read too (it listed none, [], when --datasets named a file)."""
    from sqtool.demo import DemoCfg, heldout_before_pairs
    cfg = DemoCfg(data_root=str(two_watches / "watch_v2" / "dataset.yaml"),
                  datasets=[str(two_watches / "watch_v1" / "dataset.yaml")])
    assert heldout_before_pairs(cfg) == ["watch_v2:s04"]
