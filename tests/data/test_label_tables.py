"""Label tables of a dataset file (rhythm, bp, quality: one row per recording or rhythm segment): a table that does
not fit its recordings is one line naming the table, never a traceback or a silently wrong label."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sqtool.core import SqtoolError
from sqtool.data.dataset_file import load_dataset_file

FS = 50.0
RECS = ("s1_a", "s1_b", "s2_a", "s2_b", "s3_a", "s3_b")


def project(tmp_path: Path, label: str, table: str, extra: str = "", seconds: float = 20.0) -> Path:
    """Six 20 s PPG recordings of three subjects and a dataset.yaml whose `label` comes from `table` (CSV text)."""
    rec = tmp_path / "rec"
    rec.mkdir(exist_ok=True)
    t = np.arange(int(seconds * FS)) / FS
    for i, name in enumerate(RECS):
        np.savetxt(rec / f"{name}.csv", np.sin(2 * np.pi * (1.0 + 0.1 * i) * t), header="ppg", comments="",
                   fmt="%.5f")
    (tmp_path / "table.csv").write_text(table)
    y = tmp_path / "dataset.yaml"
    y.write_text(f"format: csv\nroot: rec\nfs: {FS:g}\nchannels: {{ppg: ppg}}\n"
                 f"subject: {{pattern: '^(s[0-9])_'}}\nlabels: {{{label}: {{table: table.csv{extra}}}}}\n")
    return y


def rows(col: str, values) -> str:
    return f"recording,{col}\n" + "".join(f"{r},{v}\n" for r, v in zip(RECS, values))


def err(y: Path) -> str:
    with pytest.raises(SqtoolError) as e:
        load_dataset_file(y).records()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_missing_column_is_one_line_naming_table_and_column(tmp_path):
    y = project(tmp_path, "rhythm", "recording,rhythm,start_s\n" + "".join(f"{r},AF,0\n" for r in RECS))
    m = err(y)
    assert str(tmp_path / "table.csv") in m and "'start_s' but no 'end_s' column" in m
    (tmp_path / "table.csv").write_text(rows("sbp", [120] * 6))
    m = err(project(tmp_path, "bp", rows("sbp", [120] * 6)))
    assert "the bp table has no 'dbp' column (needs recording, sbp, dbp; has recording, sbp)" in m
    m = err(project(tmp_path, "quality", rows("good", [1] * 6)))
    assert "the quality table has no 'quality' column" in m
    m = err(project(tmp_path, "bp", "recording,sbp,dbp\n" + "".join(f"{r},120,high\n" for r in RECS)))
    assert "column 'dbp' row 1 is not a number ('high')" in m


def test_rows_of_unknown_recordings_conflicts_and_recordings_without_a_row(tmp_path, capsys):
    """A row naming no recording under root is an error (as a misspelt `exclude:` entry is), rows of one recording
    that disagree are an error naming it (the first row used to win), and recordings the table has no row for are
    said (count and an example: the log, ds.report, `data inspect`, the task's one warning line and meta)."""
    from sqtool.cli import main
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    y = project(tmp_path, "rhythm", rows("rhythm", ["AF", "sinus"] * 3) + "S3_B,AF\n")
    m = err(y)
    assert "table.csv: 1 row(s) name recordings that are not under" in m and "e.g. 'S3_B' (row 7)" in m
    assert "the recording is 's3_b'" in m
    (tmp_path / "table.csv").write_text(rows("rhythm", ["AF", "sinus"] * 3) + "s2_a,sinus\n")
    assert "recording s2_a has 2 rows that disagree (rhythm: AF, sinus); give one row per recording" in err(y)
    (tmp_path / "table.csv").write_text(rows("rhythm", ["AF", "sinus"] * 3) + "s2_a,AF\n")
    assert len(load_dataset_file(y).records()) == 6                   # the same row twice: no conflict
    (tmp_path / "table.csv").write_text("recording,rhythm,start_s,end_s\ns1_a,AF,0,12\ns1_a,sinus,10,20\n")
    assert "recording s1_a: segments 0-12 s (AF) and 10-20 s (sinus) overlap with different rhythms" in err(y)

    y = project(tmp_path, "bp", "recording,sbp,dbp\ns1_a,120,80\ns1_a,,80\n")
    assert "recording s1_a has 2 rows that disagree (sbp: 120, nan; dbp: 80)" in err(y)
    (tmp_path / "table.csv").write_text("recording,sbp,dbp\ns1_a,120,80\n,130,85\n")
    assert "table.csv: row 2 has no recording (an empty cell)" in err(y)
    (tmp_path / "table.csv").write_text("recording,sbp,dbp\ns1_a,120,80\ns2_a,130,85\ns3_a,125,70\n")
    said = []
    ds = load_dataset_file(y)
    recs = ds.records(log=said.append)
    assert [("sbp" in r.labels) for r in recs] == [True, False] * 3
    assert ds.report["no_label_row"]["bp"] == {"table": str(tmp_path / "table.csv"), "records": 3, "of": 6,
                                               "example": "s1_b"}
    assert said == [f"{ds.name}: 3 of 6 recordings have no row in {tmp_path / 'table.csv'}, e.g. s1_b: no bp label, "
                    "left out of the bp task"]
    assert main(["data", "inspect", "--data", str(y)]) == 0
    assert "warning: 3 of 6 recordings have no row in" in capsys.readouterr().out
    td = load_task("bp", str(y), task_model_cfg("bp", get_model_cfg("resnet1d_siamq_tiny")))
    assert len(td) == 3 and td.meta["no_label_row"] == 3
    assert capsys.readouterr().err.count("3 of 6 recordings have no row in") == 1


def test_class_names_must_match_the_af_and_good_lists(tmp_path, capsys):
    """An af list naming none of the rhythm table's classes, a quality word neither good nor poor, a classification
    task left with one class: one line each (they gave a run with no positives, AUROC nan, exit 0). Classes match
    ignoring case where that is unambiguous; `data inspect` counts the classes as the task reads them."""
    from sqtool.cli import main
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    cfg = {t: task_model_cfg(t, get_model_cfg("resnet1d_siamq_tiny")) for t in ("af", "quality")}
    y = project(tmp_path, "rhythm", rows("rhythm", ["afib", "sinus", "PVC"] * 2), ", af: [AF]")
    m = err(y)
    assert "table.csv: none of the table's rhythm classes (afib: 2 rows, sinus: 2 rows, PVC: 2 rows) is one of " \
        "af: [AF]" in m
    assert f"labels.rhythm.af of {y}" in m
    (tmp_path / "table.csv").write_text(rows("rhythm", ["af", "sinus"] * 3))          # 'AF' finds 'af'
    td = load_task("af", str(y), cfg["af"])
    assert {r: v for r, v in zip(td.record_ids, td.y[:, 0])} == {r: i % 2 == 0 for i, r in enumerate(RECS)}
    assert main(["data", "inspect", "--data", str(y)]) == 0
    assert "af 3, sinus 3  (AF 3 / other 3)" in capsys.readouterr().out
    (tmp_path / "table.csv").write_text(rows("rhythm", ["af", "sinus", "AF"] * 2))    # which one is meant?
    assert "classes af, AF differ only in case; list in labels.rhythm.af" in err(y)
    (tmp_path / "table.csv").write_text(rows("rhythm", ["AF", "AF", "AF", "AF", "sinus", "AF"]))
    with pytest.raises(SqtoolError, match=r"task 'af' has only one class \(8 windows all AF\)"):
        load_task("af", str(y), cfg["af"], max_records=2)             # s1, s2: all AF

    y = project(tmp_path, "quality", rows("quality", ["Good", "Poor", "Good"] * 2))
    td = load_task("quality", str(y), cfg["quality"])
    assert {r: v for r, v in zip(td.record_ids, td.y[:, 0])} == {r: i % 3 != 1 for i, r in enumerate(RECS)}
    assert main(["data", "inspect", "--data", str(y)]) == 0
    assert "Good 4, Poor 2  (good 4 / poor 2)" in capsys.readouterr().out
    (tmp_path / "table.csv").write_text(rows("quality", ["good", "Goood", "poor"] * 2))
    assert "quality values Goood: 2 rows are neither good (good, 1, 1.0) nor poor (poor, bad, 0, 0.0)" in err(y)
    (tmp_path / "dataset.yaml").write_text(y.read_text().replace("table.csv", "table.csv, good: [good, Goood]"))
    assert len(load_task("quality", str(y), cfg["quality"])) == 12                 # 2 windows a recording
    (tmp_path / "table.csv").write_text(rows("quality", [1, 1, 1, 1, 1, 0]))
    (tmp_path / "dataset.yaml").write_text(y.read_text().replace(", good: [good, Goood]", ""))
    with pytest.raises(SqtoolError, match=r"task 'quality' has only one class \(8 windows all good\)"):
        load_task("quality", str(y), cfg["quality"], max_records=2)


def test_segments_shorter_than_the_window_are_tiled_said_once_and_counted(tmp_path, capsys):
    """A recording shorter than the model window is tiled (repeated) to it for training, as before, but no longer
    silently: one warning line with the count, and meta["tiled_segments"]. A bp row without truth is not counted."""
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    y = project(tmp_path, "bp", "recording,sbp,dbp\n" + "".join(f"{r},{120 + i},80\n" for i, r in enumerate(RECS[:5]))
                + f"{RECS[5]},,80\n")
    base = get_model_cfg("resnet1d_siamq_tiny")
    td = load_task("bp", str(y), task_model_cfg("bp", base, window_s=30.0, hop_s=30.0))       # 20 s recordings
    assert len(td) == 5 and td.meta["tiled_segments"] == 5
    said = [m for m in capsys.readouterr().err.splitlines() if "tiled" in m]
    assert said == [f"sqtool: warning: {tmp_path.name}: 5 segments shorter than the 30 s window were tiled to it"]
    td = load_task("bp", str(y), task_model_cfg("bp", base))                                    # 8 s windows
    assert "tiled_segments" not in td.meta and "tiled" not in capsys.readouterr().err


@pytest.mark.realdata
def test_builtin_layout_classes_resolve_as_a_table_does(data_root, tmp_path):
    """A built-in layout's rhythm / quality classes go through the label tables' resolution: its af / good classes
    as the data spells them on the Label (`positive`), and a quality class neither good nor poor is one line (a
    but_ppg file reading its motion classes as quality trained every one of them as poor)."""
    from sqtool.data.dataset_file import load_builtin
    rec = load_builtin("ppg_arrhythmia", data_root).records(max_records=1)[0]
    assert rec.labels["rhythm"].positive == ("AF",) and "af_classes" not in rec.meta
    y = tmp_path / "but.yaml"
    y.write_text(f"format: but_ppg\nroot: {data_root / 'but_ppg'}\nlabels:\n  quality: {{reader: quality, good: [GOOD]}}\n")
    assert load_dataset_file(y).records(max_records=1)[0].labels["quality"].positive == ("good",)
    y.write_text(y.read_text().replace("reader: quality, good: [GOOD]", "reader: motion"))
    with pytest.raises(SqtoolError, match=r"but\.yaml: quality values rest, higher pressure, .* are neither good "
                                          r"\(good, 1, 1.0\) nor poor"):
        load_dataset_file(y).records()


def test_an_empty_bp_cell_leaves_its_window_out_counted(tmp_path, capsys):
    """An empty cell of a bp table (NaN) gave a NaN target and 'fine-tuning loss became nan': the window is left
    out of training and scoring, counted (TaskData.meta, one warning line), and inspect counts it as missing."""
    from sqtool.cli import main
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    y = project(tmp_path, "bp", "recording,sbp,dbp\n" + "".join(f"{r},{'' if r == 's2_a' else 120},80\n" for r in RECS))
    td = load_task("bp", str(y), task_model_cfg("bp", get_model_cfg("resnet1d_siamq_tiny")))
    assert len(td) == 5 and "s2_a" not in td.record_ids and np.isfinite(td.y).all()
    assert td.meta["missing_target_windows"] == 1
    assert capsys.readouterr().err.count("1 windows of 1 recording(s) have no bp target") == 1
    assert main(["data", "inspect", "--data", str(y), "--json"]) == 0
    import json
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert labels["sbp"]["nan"] == 1 and "nan" not in labels["dbp"]
    assert main(["data", "inspect", "--data", str(y)]) == 0
    assert "(1 missing, NaN: no or doubtful truth)" in capsys.readouterr().out


def test_impossible_label_values_are_one_line(tmp_path):
    """rr -5 breaths/min, sbp 1200, dbp -40, sbp below dbp were trained on: one line naming the file, the label, how
    many values, one of them and the plausible range. Empty cells stay missing, not implausible."""
    y = project(tmp_path, "bp", "recording,sbp,dbp\n" + "".join(f"{r},{120 + i},{80 - i}\n"
                                                               for i, r in enumerate(RECS)))
    assert len(load_dataset_file(y).records()) == 6
    for sbp, dbp, said in (("1200", "80", "2 sbp value(s) outside the plausible 40-300 mmHg, e.g. 1200 (row 2, "
                                          "recording s1_b)"),
                           ("120", "-40", "2 dbp value(s) outside the plausible 10-200 mmHg, e.g. -40 (row 2, "
                                          "recording s1_b)"),
                           ("80", "90", "2 row(s) with sbp <= dbp, e.g. sbp 80, dbp 90 (row 2, recording s1_b)")):
        (tmp_path / "table.csv").write_text("recording,sbp,dbp\n" + "".join(
            f"{r},{sbp if i % 3 == 1 else 120},{dbp if i % 3 == 1 else 80}\n" for i, r in enumerate(RECS)))
        m = err(y)
        assert m.startswith(f"{tmp_path / 'table.csv'}: ") and said in m
    (tmp_path / "table.csv").write_text("recording,sbp,dbp\n" + "".join(f"{r},,\n" for r in RECS))
    assert len(load_dataset_file(y).records()) == 6                   # empty: missing, not implausible

    t = np.arange(int(20 * FS)) / FS
    rr = np.full(len(t), 15.0)
    rr[100:130] = -5
    np.savetxt(tmp_path / "rec" / "s1_a.csv", np.column_stack([np.sin(2 * np.pi * t), rr]), header="ppg,rr",
               comments="", fmt="%.5f", delimiter=",")
    y.write_text(f"format: csv\nroot: rec\nfs: {FS:g}\nchannels: {{ppg: ppg}}\nlabels: {{rr: {{column: rr}}}}\n")
    m = err(y)
    assert m.startswith(str(tmp_path / "rec" / "s1_a.csv")) and "column 'rr': 30 rr value(s) outside the plausible " \
        "2-80 breaths/min, e.g. -5 (row 101)" in m


def test_label_rows_in_any_order_give_the_labels_of_sorted_rows(tmp_path):
    """A table's or label file's rows may come in any order: a rhythm table's segments keep each start with its
    own end and class (a reversed table matched every window to one segment), and a per-window HR file is read
    in time order (interpolated at window centres and matched by start time, which need sorted times)."""
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    cfg = task_model_cfg("af", get_model_cfg("resnet1d_siamq_tiny"))
    w = cfg.window_s
    seg = [("sinus", 0, w), ("AF", w, 2 * w)]
    table = lambda order: "recording,rhythm,start_s,end_s\n" + "".join(
        f"{r},{c},{a:g},{b:g}\n" for r in RECS for c, a, b in (seg if order else seg[::-1]))
    td = [load_task("af", str(project(tmp_path, "rhythm", table(order), ", af: [AF]", seconds=2 * w)), cfg)
          for order in (1, 0)]
    assert len(td[0].y) == 12 and td[0].y.sum() == 6
    assert np.array_equal(td[0].y, td[1].y) and np.array_equal(td[0].t0, td[1].t0)
    (tmp_path / "hr").mkdir()
    hr = [(2.0 * i, 60.0 + i) for i in range(7)]                       # 8 s windows every 2 s over 20 s
    for k, name in enumerate(RECS):
        (tmp_path / "hr" / f"{name}.csv").write_text("start,hr\n" + "".join(
            f"{t:g},{v:g}\n" for t, v in (hr if k % 2 else hr[::-1])))
    y = project(tmp_path, "rhythm", table(1), ", af: [AF]")             # 20 s recordings again
    y.write_text(y.read_text().replace("rhythm: {table: table.csv, af: [AF]}", "hr: {file: 'hr/{stem}.csv'}"))
    recs = load_dataset_file(y).records()
    for r in recs:
        assert np.array_equal(r.labels["hr"].times, [t for t, _ in hr]), r.record_id
        assert np.array_equal(r.labels["hr"].values, [v for _, v in hr]), r.record_id


def test_label_file_rows_of_one_window_start_that_disagree_are_one_line(tmp_path):
    """Two rows of one window start with other values (two references merged into one file) were read silently, the
    window taking either; now one line naming the file, the start and both values. A row written twice (same start,
    same value) is read once: the labels are the file's without it."""
    y = project(tmp_path, "rhythm", "recording,rhythm\n")
    y.write_text(y.read_text().replace("rhythm: {table: table.csv}", "hr: {file: 'hr/{stem}.csv'}"))
    (tmp_path / "hr").mkdir()
    hr = [(2.0 * i, 60.0 + i) for i in range(7)]                       # 8 s windows every 2 s over 20 s
    for name in RECS:
        (tmp_path / "hr" / f"{name}.csv").write_text("start,hr\n" + "".join(f"{t:g},{v:g}\n" for t, v in hr))
    f = tmp_path / "hr" / "s2_a.csv"
    f.write_text(f.read_text() + "4,64\n6,63\n")                     # 4 s again as 64 (62 above), 6 s twice as 63
    m = err(y)
    assert m.startswith(f"{f}: label 'hr' has 1 window start(s) with rows that disagree, e.g. 4 s: 62 and 64")
    f.write_text("start,hr\n" + "".join(f"{t:g},{v:g}\n" for t, v in hr + hr[2:4]))
    recs = {r.record_id: r for r in load_dataset_file(y).records()}
    assert np.array_equal(recs["s2_a"].labels["hr"].times, [t for t, _ in hr])
    assert np.array_equal(recs["s2_a"].labels["hr"].values, [v for _, v in hr])


def test_builtin_layout_classes_are_refused_in_one_line_naming_the_dataset_file(tmp_path):
    """Offline twin of the test above: a built-in layout (tiny BUT PPG and PPG arrhythmia folders) whose yaml reads
    the reader's motion classes as quality (neither good nor poor), or lists af classes the reader has none of, is
    one line naming the dataset file (what the user edits), not the data folder."""
    import scipy.io as sio
    but = tmp_path / "but" / "database"
    but.mkdir(parents=True)
    t = np.linspace(0, 10, 300)
    sig, t = " ".join(f"{v:.4f}" for v in np.sin(2 * np.pi * 1.2 * t)), " ".join(f"{v:.4f}" for v in t)
    but.joinpath("myData.csv").write_text('ID RefHR Location Motion Quality "Signal" "Time"\n'
                                          + "".join(f'{rid} 70 1 {m} {q} "{sig}" "{t}"\n'
                                                    for rid, m, q in (("100001", 0, 1), ("100002", 3, 0))))
    y = tmp_path / "but.yaml"
    y.write_text(f"format: but_ppg\nroot: {tmp_path / 'but'}\nlabels:\n  quality: {{reader: quality}}\n")
    assert [r.labels["quality"].positive for r in load_dataset_file(y).records()] == [("good",)] * 2
    y.write_text(f"format: but_ppg\nroot: {tmp_path / 'but'}\nlabels:\n  quality: {{reader: motion}}\n")
    m = err(y)
    assert m.startswith(f"{y}: quality values rest, higher pressure, ") and "are neither good" in m
    assert "name them in labels.quality.good or .poor" in m and str(tmp_path / "but") + ":" not in m

    arr = tmp_path / "arr"
    arr.mkdir()
    sio.savemat(arr / "MPA_p1.mat", {"ppgseg": np.sin(np.arange(2000) / 10).reshape(2, 1000), "labels": np.array([[0], [5]], np.uint8)})
    y = tmp_path / "arr.yaml"
    y.write_text(f"format: ppg_arrhythmia\nroot: {arr}\nlabels:\n  rhythm: {{reader: rhythm, af: [atrial]}}\n")
    m = err(y)
    assert m.startswith(f"{y}: none of the reader's rhythm classes (sinus, PVC, PAC, VT, SVT, AF) is one of "
                        "af: [atrial] (labels.rhythm.af); list the AF classes as the reader spells them"), m
