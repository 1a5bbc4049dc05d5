"""Task datasets: windows preprocessed per the model cfg, labels aligned, subjects kept apart."""
import numpy as np
import pytest
import scipy.io as sio
from hypothesis import given, settings, strategies as st

from sqtool.config import SqtoolError
from sqtool.data.tasks import (TASKS, breaths_per_min, flagged_fraction, load_task, subject_folds,
                               task_model_cfg, tile_record)
from sqtool.models import get_model_cfg

BASE = get_model_cfg("resnet1d_siamq_tiny")


def cfg(task, **kw):
    return task_model_cfg(task, BASE, **kw)


def test_hr_windows_align_with_bpm0(data_root):
    td = load_task("hr", data_root, cfg("hr"), max_records=2)
    assert td.x.shape[1:] == (1, 320) and td.x.dtype == np.float32 and td.y.dtype == np.float32
    assert list(np.unique(td.groups)) == ["01", "02"]
    bpm = sio.loadmat(data_root / "troika/Training_data/DATA_01_TYPE01_BPMtrace.mat")["BPM0"].ravel()
    m = td.groups == "01"
    assert len(td.y[m]) == len(bpm)                                   # one window per BPM0 value
    assert np.allclose(td.t0[m], 2.0 * np.arange(len(bpm)))          # window i starts at 2 i s
    assert np.allclose(td.y[m, 0], bpm, atol=1e-4)                    # and carries BPM0[i] exactly
    assert td.x.min() >= 0 and td.x.max() <= 1                        # minmax per window


def test_hr_channels_follow_the_cfg(data_root):
    td = load_task("hr", data_root, cfg("hr", channels=("ppg", "ppg2", "acc_x", "acc_y", "acc_z")), max_records=1)
    assert td.x.shape[1:] == (5, 320)
    z = load_task("hr", data_root, cfg("hr").replace(norm="zscore"), max_records=1)
    assert np.allclose(z.x.mean(-1), 0, atol=1e-4)


@pytest.mark.parametrize("task", ["rr", "af", "bp"])
def test_real_tasks_load(task, data_root):
    td = load_task(task, data_root, cfg(task), max_records=3)
    c = cfg(task)
    assert td.x.shape[1:] == c.input_shape and len(td.subjects) == 3 and np.isfinite(td.y).all()
    assert td.y.shape[1] == len(c.outputs)
    if task == "rr":
        assert 4 < td.y.min() and td.y.max() < 60
    if task == "bp":
        assert len(td) == 9 and (td.y[:, 0] > td.y[:, 1]).all()      # 3 segments each, SBP > DBP
    if task == "af":
        assert set(np.unique(td.y)) <= {0.0, 1.0}


def test_quality_task_mixes_human_and_index_labels(data_root):
    td = load_task("quality", data_root, cfg("quality"), max_records=4)
    assert set(td.meta["source"]) == {"but_ppg", "mw_ppg", "troika_index"}
    assert set(np.unique(td.y)) == {0.0, 1.0}
    assert all(":" in g for g in td.groups)                           # subjects namespaced by dataset
    with pytest.raises(SqtoolError, match="one PPG channel"):
        load_task("quality", data_root, cfg("quality", channels=("ppg", "acc_x")), max_records=1)


@pytest.mark.parametrize("task", [t for t in TASKS if t != "bp"])
def test_synthetic_default_has_the_same_interface(task):
    td = load_task(task, "synthetic", cfg(task), max_records=4)
    assert td.x.shape[1:] == cfg(task).input_shape and td.x.dtype == np.float32
    assert len(td.groups) == len(td.y) == len(td.t0) == len(td.record_ids) == len(td.x)
    assert td.meta["data_root"] == "synthetic" and len(td.subjects) == 4
    td2 = load_task(task, None, cfg(task), max_records=4)
    assert np.array_equal(td.x, td2.x)                                # deterministic


def test_missing_dataset_and_unknown_task(tmp_path):
    with pytest.raises(SqtoolError, match="needs the bidmc dataset"):
        load_task("rr", tmp_path, cfg("rr"))
    with pytest.raises(SqtoolError, match="unknown task"):
        load_task("ecg", tmp_path, BASE)
    with pytest.raises(SqtoolError, match="does not exist"):
        load_task("hr", tmp_path / "nope", cfg("hr"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=40), st.integers(0, 6))
def test_subject_folds_partition_subjects(groups, k):
    groups = np.array(groups)
    if len(set(groups)) < 2:
        with pytest.raises(SqtoolError):
            subject_folds(groups, k)
        return
    if k == 1:
        with pytest.raises(SqtoolError):
            subject_folds(groups, k)
        return
    folds = subject_folds(groups, k)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen) == list(range(len(groups)))                  # every window tested exactly once
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])                  # no subject on both sides
    if not k or k >= len(set(groups)):
        assert len(folds) == len(set(groups))


def test_breaths_per_min_and_flags():
    b = np.arange(0, 60, 4.0)                                         # a breath every 4 s = 15 / min
    assert breaths_per_min(b, 10.0, 30.0) == pytest.approx(15.0)
    assert np.isnan(breaths_per_min(np.array([1.0, 5.0]), 0.0, 30.0))
    flags = np.zeros(1000)
    flags[100:200] = 1
    assert np.allclose(flagged_fraction(flags, 100.0, np.array([0.0, 1.0, 5.0]), 2.0), [0.5, 0.5, 0.0])


def test_tile_record_fills_the_window():
    from sqtool.data.record import Record
    r = Record("x", "s", "r", {"ppg": np.sin(np.arange(2100) / 50.0)}, {"ppg": 1000.0})
    t = tile_record(r, 8.0)
    assert t.duration() >= 8.0 and np.array_equal(t.signals["ppg"][2100:4200], r.signals["ppg"])
    assert tile_record(r, 1.0) is r
