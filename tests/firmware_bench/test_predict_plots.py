"""`sqtool predict` over a folder of many recordings (an audit: the 2,295 10-s segments of ppg_arrhythmia took 8.7 min,
mostly one PNG per recording): above PLOTS_AUTO recordings no plots by default and one note line saying how to get
them (`--plots all | none | N`); the CSVs and summary.json as always."""
from __future__ import annotations

import json

from fwb_helpers import write_wrist_npz

from sqtool.cli import main
from sqtool.firmware_bench import predict as P


def _run(spec_export_dir, data, out, capsys, *extra):
    rc = main(["predict", "--model", str(spec_export_dir), "--data", str(data), "--out", str(out),
               "--progress", "false", *extra])
    cap = capsys.readouterr()
    return rc, cap.out.splitlines(), cap.err


def test_many_recordings_get_no_plots_by_default_and_one_note_line(spec_export_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(P, "PLOTS_AUTO", 2)                       # 3 recordings stand for 2,295
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        write_wrist_npz(data / f"r{i}.npz", seconds=20, seed=i, ppg2=True)
    out = tmp_path / "auto"
    rc, lines, err = _run(spec_export_dir, data, out, capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.glob("*.csv")) == ["r0.csv", "r1.csv", "r2.csv"]
    assert not list(out.glob("*.png"))
    note = [line for line in lines if line.startswith("plots:")]
    assert note == ["plots: none for these 3 recordings (more than 2: one each would take most of the run); "
                    "--plots all draws one <record>.png per recording, --plots N the first N"], lines
    s = json.loads((out / "summary.json").read_text())
    assert s["plots"] == 0 and [r["plot"] for r in s["recordings"]] == [None] * 3 and note[0] in s["notes"]
    assert any(line.startswith("results: one <record>.csv per recording (no .png plots), summary.json")
               for line in lines)

    rc, lines, _ = _run(spec_export_dir, data, tmp_path / "one", capsys, "--plots", "1")
    assert rc == 0 and [p.name for p in (tmp_path / "one").glob("*.png")] == ["r0.png"]
    assert not [line for line in lines if line.startswith("plots:")]          # asked for: no note
    assert any("(the first 1 with a .png plot)" in line for line in lines)
    rc, lines, _ = _run(spec_export_dir, data, tmp_path / "all", capsys, "--plots", "all")
    assert rc == 0 and len(list((tmp_path / "all").glob("*.png"))) == 3
    assert any(line.startswith("results: one <record>.csv and .png per recording") for line in lines)
    rc, _, _ = _run(spec_export_dir, data, tmp_path / "none", capsys, "--plots", "none")
    assert rc == 0 and not list((tmp_path / "none").glob("*.png"))


def test_a_few_recordings_keep_their_plots_and_a_wrong_plots_is_one_line(spec_export_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        write_wrist_npz(data / f"r{i}.npz", seconds=20, seed=i, ppg2=True)
    rc, lines, err = _run(spec_export_dir, data, tmp_path / "p", capsys)
    assert rc == 0, err
    assert len(list((tmp_path / "p").glob("*.png"))) == 2 and not [x for x in lines if x.startswith("plots:")]
    rc, _, err = _run(spec_export_dir, data, tmp_path / "q", capsys, "--plots", "some")
    assert rc == 2 and err.strip().splitlines() == ["sqtool: error: --plots some: choose all, none or a count N "
                                                    "(the first N recordings)"], err
    assert not (tmp_path / "q").exists()
