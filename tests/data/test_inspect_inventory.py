"""`data inspect` of a folder lists every file: an audit saw it stop (exit 1) on the first file failing a check
(`messy/flat.csv: channel 'ppg' is a flat line`), so a folder could not be inventoried. Each such file is now a line
saying why, after the summary of the rest, and only then the exit status (1, its last line saying so; --skip-bad:
0). A single bad file is still its own one error line."""
from __future__ import annotations

import json

import numpy as np

from sqtool.cli import main


def _csv(path, ppg):
    t = np.arange(len(ppg)) / 64.0
    path.write_text("time,ppg\n" + "".join(f"{a:.5f},{b}\n" for a, b in zip(t, ppg)))


def _folder(root):
    n = 64 * 20
    root.mkdir()
    _csv(root / "a_flat.csv", np.zeros(n))
    _csv(root / "b_ok.csv", np.sin(2 * np.pi * 1.2 * np.arange(n) / 64.0))
    (root / "c_bad.csv").write_text("time,ppg\n0,1\n0.5,x\n")
    _csv(root / "d_ok.csv", np.cos(2 * np.pi * 1.5 * np.arange(n) / 64.0))
    return root


def test_inspect_lists_every_bad_file_then_exits_1(tmp_path, capsys):
    root = _folder(tmp_path / "mixed")
    assert main(["data", "inspect", "--data", str(root), "--no-progress"]) == 1
    said = capsys.readouterr()
    out = said.out.splitlines()
    assert "  records 2, subjects 2" in "\n".join(out)                    # the usable two, summarised
    at = out.index("  skipped 2 bad item(s):")
    assert "a_flat.csv" in out[at + 1] and "is a flat line" in out[at + 1]
    assert "c_bad.csv" in out[at + 2] and "not a number" in out[at + 2]
    err = said.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sqtool: error: {root}: 2 unusable files (each listed above")
    assert not any(ln.startswith("next:") for ln in out)               # exit 1: no next step before its line
    assert main(["data", "inspect", "--data", str(root), "--no-progress", "--skip-bad"]) == 0
    said = capsys.readouterr()
    assert "  skipped 2 bad item(s):" in said.out and not said.err and "\nnext: " in said.out
    assert main(["data", "inspect", "--data", str(root), "--json"]) == 1
    s = json.loads(capsys.readouterr().out)
    assert s["records"] == 2 and len(s["skipped"]) == 2


def test_a_folder_of_bad_files_lists_them_all_and_a_single_file_keeps_its_line(tmp_path, capsys):
    root = tmp_path / "bad"
    root.mkdir()
    _csv(root / "a_flat.csv", np.zeros(64 * 20))
    (root / "c_bad.csv").write_text("time,ppg\n0,1\n0.5,x\n")
    assert main(["data", "inspect", "--data", str(root), "--no-progress"]) == 1
    said = capsys.readouterr()
    assert said.out.splitlines()[0] == "  skipped 2 bad item(s):" and len(said.out.splitlines()) == 3
    assert said.err.count("\n") == 1 and "no usable records (2 unusable files, each listed above" in said.err
    assert main(["data", "inspect", "--data", str(root / "a_flat.csv"), "--no-progress"]) == 1
    said = capsys.readouterr()
    assert not said.out and said.err.count("\n") == 1
    assert said.err.startswith(f"sqtool: error: {root / 'a_flat.csv'}: ") and "is a flat line" in said.err


def test_a_dataset_files_bad_recordings_are_listed_too(tmp_path, capsys):
    root = _folder(tmp_path / "rec")
    y = tmp_path / "dataset.yaml"
    y.write_text("format: csv\nroot: rec\nfiles: '*.csv'\ntime_column: time\nchannels: {ppg: ppg}\n")
    assert main(["data", "inspect", "--data", str(y), "--no-progress"]) == 1
    said = capsys.readouterr()
    out = said.out.splitlines()
    at = out.index("  skipped 2 bad item(s):")
    assert str(root / "a_flat.csv") in out[at + 1] and str(root / "c_bad.csv") in out[at + 2]
    assert said.err.startswith(f"sqtool: error: {y}: 2 unusable files (each listed above")


def test_time_unit_ms_said_of_seconds_is_one_line_that_says_so(tmp_path, capsys):
    """A dataset.yaml's `time_unit: ms` over a time column in seconds read as 50,000 Hz: 'sampling rate must be in
    (0, 10000] Hz, got 50000', printed in the list of unusable files and again in the error. Now one line: the rate,
    that the stamps look like seconds, and the fix."""
    t = np.arange(3000) / 50.0
    (tmp_path / "a.csv").write_text("time,ppg\n" + "".join(f"{a:.3f},{np.sin(2 * np.pi * 1.2 * a):.4f}\n" for a in t))
    (tmp_path / "dataset.yaml").write_text("format: csv\ntime_column: time\ntime_unit: ms\nchannels:\n  ppg: ppg\n")
    assert main(["data", "inspect", "--data", str(tmp_path / "dataset.yaml"), "--no-progress"]) == 1
    said = capsys.readouterr()
    assert not said.out and said.err.count("\n") == 1
    assert "(its one file: " in said.err and "the timestamps give 50000 Hz, no device's rate: they look like seconds " \
        "(50 Hz); drop time_unit: ms from dataset.yaml (the column is in seconds)" in said.err


def test_piped_the_error_line_comes_after_the_inventory_it_points_to(tmp_path):
    """`sqtool data inspect --data DIR 2>&1 | less`: stdout to a pipe is block-buffered, so the error line (stderr,
    written at once) came first, above the summary and the list its 'each listed above' points to; stdout is now
    flushed before it. Also warnings (dataset_tasks.warn) after a report already printed."""
    import os
    import subprocess
    import sys
    root = _folder(tmp_path / "mixed")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    r = subprocess.run([sys.executable, "-m", "sqtool", "data", "inspect", "--data", str(root), "--no-progress"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and lines[0] == f"{root}  [csv]", r.stdout
    assert lines[-1].startswith(f"sqtool: error: {root}: 2 unusable files (each listed above")
    code = "from sqtool.data.dataset_tasks import warn; print('report'); warn('late')"
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env)
    assert r.stdout.splitlines() == ["report", "sqtool: warning: late"], r.stdout


def test_the_recordings_table_is_capped_and_a_folder_of_datasets_lists_none(tmp_path, capsys):
    """13 recordings: the text lists the first 10 and '... 3 more' (the JSON every one); a folder holding several
    datasets (the data root) prints no table per dataset, its JSON keeps each one's."""
    from sqtool.data.readers.summary import RECORDINGS_SHOWN
    root = tmp_path / "many"
    root.mkdir()
    n = 64 * 20
    for i in range(RECORDINGS_SHOWN + 3):
        _csv(root / f"r{i:02d}.csv", np.sin(2 * np.pi * (1 + i / 20) * np.arange(n + 64 * i) / 64.0))
    assert main(["data", "inspect", "--data", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(f"  recordings ({RECORDINGS_SHOWN + 3}, the first {RECORDINGS_SHOWN} below):")
    assert out[at + 1].split() == ["record", "subject", "length", "channels"]
    assert out[at + 2].split() == ["r00", "r00", "20.0", "s", "ppg", "64", "Hz"]
    assert out[at + 1 + RECORDINGS_SHOWN].split()[:3] == [f"r{RECORDINGS_SHOWN - 1:02d}", f"r{RECORDINGS_SHOWN - 1:02d}",
                                                          f"{20.0 + RECORDINGS_SHOWN - 1:.1f}"]
    assert out[at + 2 + RECORDINGS_SHOWN] == "    ... 3 more (--json lists every one)"
    s = json.loads(_json(capsys, root))
    assert [r["record"] for r in s["recordings"]] == [f"r{i:02d}" for i in range(RECORDINGS_SHOWN + 3)]
    assert s["recordings"][-1]["duration_s"] == 20.0 + RECORDINGS_SHOWN + 2 and "stream_files" not in s["recordings"][0]
    few = tmp_path / "few"
    few.mkdir()
    _csv(few / "a.csv", np.sin(2 * np.pi * 1.2 * np.arange(n) / 64.0))
    for d in (root, few):                                  # two dataset folders: the data root's layout
        (d / "dataset.yaml").write_text("format: csv\ntime_column: time\nchannels: {ppg: ppg}\n")
    assert main(["data", "inspect", "--data", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"2 datasets, {RECORDINGS_SHOWN + 4} records" in out and "recordings (" not in out
    s = json.loads(_json(capsys, tmp_path))
    assert [len(d["recordings"]) for d in s["datasets"]] == [1, RECORDINGS_SHOWN + 3]


def _json(capsys, path, *more) -> str:
    assert main(["data", "inspect", "--data", str(path), "--no-progress", "--json", *more]) == 0
    return capsys.readouterr().out
