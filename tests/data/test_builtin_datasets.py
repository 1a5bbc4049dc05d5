"""Built-in datasets take one loading path: a data root reads each dataset folder through its shipped
dataset file (sqtool/data/datasets/<name>.yaml), whose `exclude` is the one place a recording is left out."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sqtool.data.dataset_file import builtin_dir, builtin_exclude, builtin_names, load_builtin
from sqtool.data.hr_spectra import EXCLUDED, hr_corpus, record_spectra
from sqtool.models import get_model_cfg

SQTOOL = Path(__file__).resolve().parents[2] / "sqtool"


def test_troika_exclusion_lives_in_its_yaml_only():
    assert builtin_exclude("troika") == {"DATA_S04_T01": builtin_exclude("troika")["DATA_S04_T01"]}
    assert EXCLUDED == ("DATA_S04_T01",)                     # read from troika.yaml, not repeated
    # no Python module lists the record as data (docstrings and messages may name it)
    for p in SQTOOL.rglob("*.py"):
        code = re.sub(r'""".*?"""', "", p.read_text(), flags=re.S)
        assert not re.search(r"""\(\s*["']DATA_S04_T01["']\s*,?\s*\)|\[\s*["']DATA_S04_T01["']""", code), p


# Built-ins `sqtool data download` cannot fetch, and why (every other built-in has a REGISTRY entry and checksums).
NOT_DOWNLOADABLE = {
    "unlabeled": "sample files of three packages (HeartPy, E2E-PPG, vital_sqi), each from its own repository",
}


def _shipped(name: str) -> dict:
    import yaml
    return yaml.safe_load((builtin_dir() / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", builtin_names())
def test_each_builtin_has_its_reader_licence_and_download_entry(name):
    """Every built-in dataset (a shipped dataset file) is read by the reader of its kind, is named in `data inspect
    --kind`'s help, has a licence line and a description (activities, reference method) for a firmware kit's model card when a kit's
    model can be trained on it (a kit carries a spectral heart-rate model: the built-ins with an hr label), and is
    downloadable unless listed."""
    from sqtool.data.cli import KINDS_HELP
    from sqtool.data.download import REGISTRY, load_sums
    from sqtool.data.readers import DATASETS
    from sqtool.export.kit import DATASET_CONTENT, DATASET_LICENCES
    d = _shipped(name)
    assert d["name"] == name and d["format"] == name and name in DATASETS
    assert name in KINDS_HELP.split(", or the generic")[0].split(", ")
    assert ("hr" in (d.get("labels") or {})) <= (name in DATASET_LICENCES) <= (name in DATASET_CONTENT)
    if name in NOT_DOWNLOADABLE:
        assert name not in REGISTRY, f"{name} is downloadable now: drop it from NOT_DOWNLOADABLE"
    else:
        assert name in REGISTRY and load_sums(name)[0]


def test_builtin_tables_name_no_other_dataset():
    """The other way round: no reader, licence line or download entry of a dataset that is not a built-in, and
    --kind's help lists exactly the readers' kinds."""
    import re

    from sqtool.data.cli import KINDS_HELP
    from sqtool.data.download import REGISTRY
    from sqtool.data.readers import DATASETS, kinds
    from sqtool.export.kit import DATASET_LICENCES
    names = set(builtin_names())
    assert set(DATASETS) == names and set(REGISTRY) <= names and set(NOT_DOWNLOADABLE) <= names
    assert set(DATASET_LICENCES) <= names | {"synthetic"}
    listed = re.findall(r"\w+", KINDS_HELP.split(" (default")[0].replace("or the generic", ""))
    assert sorted(listed) == sorted(kinds())


@pytest.mark.realdata
def test_hr_corpus_is_the_dataset_file_path_with_the_same_codes(data_root, tmp_path):
    """hr_corpus on a data root equals the reader read directly (the pre-yaml code path), record by record."""
    from sqtool.data.readers import read_dataset
    cfg = get_model_cfg("spec_student_xs")
    said = []
    got = hr_corpus(data_root, ("troika",), cfg, log=said.append)
    direct = sorted((r for r in read_dataset(data_root / "troika", kind="troika")
                     if r.record_id != "DATA_S04_T01" and "hr" in r.labels), key=lambda r: r.record_id)
    assert [r.record_id for r in got] == [r.record_id for r in direct] and len(got) == 12
    assert len({r.key for r in got}) == 12
    cache: dict = {}
    for a, rec in zip(got, direct):
        b = record_spectra(rec, cfg, cache)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y, equal_nan=True) and a.key == b.key
    assert [s for s in said if "DATA_S04_T01" in s and "left out" in s]          # reported, never silent
    # the same records through --data troika (the built-in name) and through the shipped file
    ds = load_builtin("troika", data_root)
    assert [r.record_id for r in ds.records()] == [r.record_id for r in got]
    assert list(ds.report["excluded"]) == ["DATA_S04_T01"]
    # a caller's extra exclusion is applied and said
    fewer = hr_corpus(data_root, ("troika",), cfg, exclude=("DATA_01_TYPE01",), log=said.append)
    assert len(fewer) == 11 and any("DATA_01_TYPE01: left out" in s for s in said)


@pytest.mark.realdata
def test_wrist_exercise_counts_through_its_yaml(data_root):
    ds = load_builtin("wrist_exercise", data_root)
    recs = ds.records()
    assert len(recs) == 13 and len({r.subject for r in recs}) == 5 and ds.report["excluded"] == {}


@pytest.mark.realdata
def test_time_domain_loader_on_a_data_root_is_the_dataset_file_path(data_root, monkeypatch):
    """load_task(task, DATA_ROOT) and load_task(task, built-in name) give the same windows; hr keeps
    TROIKA's 12 training subjects (the extra recording left out by troika.yaml)."""
    from sqtool.data.tasks import load_task, task_model_cfg
    cfg = task_model_cfg("hr", get_model_cfg("resnet1d_siamq_tiny"))
    a = load_task("hr", data_root, cfg)
    assert len(np.unique(a.groups)) == 12 and a.meta["excluded"] == {"DATA_S04_T01": builtin_exclude("troika")["DATA_S04_T01"]}
    assert a.meta["label"].startswith("BPM0")
    monkeypatch.setenv("SQTOOL_DATA", str(data_root))
    b = load_task("hr", "troika", cfg)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and list(a.groups) == list(b.groups)


def test_partial_copy_of_a_builtin_folder_loads(tmp_path):
    """A shipped file's exclusion may name a file a partial copy lacks: no error (a user's file: refused)."""
    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import load_dataset_file
    from sqtool.data.synthetic import synth_record
    root = tmp_path / "rec"
    root.mkdir()
    r = synth_record(duration_s=20.0, fs=125.0, hr_bpm=70.0, seed=0, subject="s1")
    np.savez(root / "s1.npz", ppg=r.signals["ppg"], fs=125.0)
    y = tmp_path / "dataset.yaml"
    y.write_text("format: npz\nroot: rec\nchannels: {ppg: ppg}\nexclude: {nope: typo}\n")
    with pytest.raises(SqtoolError, match="exclude names nope"):
        load_dataset_file(y).records()
    ds = load_dataset_file(y)
    ds.path = Path(__file__).resolve().parents[2] / "sqtool/data/datasets/x.yaml"     # as if shipped
    assert len(ds.records()) == 1 and ds.report["excluded"] == {}


def test_relative_data_root_resolves_builtins_from_the_cwd(tmp_path, monkeypatch):
    """`--data ../shared/data` is relative to the cwd, not to the shipped yaml's folder (the real-data demo
    failed: 'root .../sqtool/data/shared/data/troika does not exist')."""
    import os
    from pathlib import Path
    from sqtool.data.dataset_file import load_builtin
    (tmp_path / "root" / "troika").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    ds = load_builtin("troika", os.path.join("..", "root"))
    assert Path(ds.root) == (tmp_path / "root" / "troika").resolve()
