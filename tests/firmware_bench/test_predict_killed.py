"""A `predict --force` into a folder of a finished predict run, killed before its summary.json: the folder must not
read as the finished earlier run (its summary.json listing CSVs this run has half rewritten), the interrupt names
the --force command that redoes it, and that redo removes the earlier run's files it did not rewrite."""
from __future__ import annotations

import json

from fwb_helpers import write_wrist_npz

from sqtool.cli import main
from sqtool.firmware_bench import predict as P


def test_a_killed_force_rerun_leaves_no_summary_of_the_earlier_run(spec_export_dir, tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for d in (first, second):
        d.mkdir()
    write_wrist_npz(first / "a.npz", seconds=20, ppg2=True)
    write_wrist_npz(first / "b.npz", seconds=20, seed=1, ppg2=True)
    write_wrist_npz(second / "a.npz", seconds=20, hr_bpm=120, seed=2, ppg2=True)
    out = tmp_path / "pred"
    argv = ["predict", "--model", str(spec_export_dir), "--out", str(out)]
    assert main(argv + ["--data", str(first)]) == 0
    capsys.readouterr()
    plot = P._plot

    def killed(path, *a, **k):                 # the Ctrl-C lands after the rerun's first CSV is written
        plot(path, *a, **k)
        raise KeyboardInterrupt
    monkeypatch.setattr(P, "_plot", killed)
    assert main(argv + ["--data", str(second), "--force"]) == 130
    err = capsys.readouterr().err.strip()
    assert not (out / "summary.json").exists()            # a.csv is this run's now: no summary says otherwise
    assert "\n" not in err and "holds the unfinished run: redo it with:" in err and "--force" in err, err
    assert main(argv + ["--data", str(second)]) == 1     # not a finished run: refused, naming --force
    assert "unfinished predict run" in capsys.readouterr().err

    monkeypatch.setattr(P, "_plot", plot)
    assert main(argv + ["--data", str(second), "--force"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert [r["csv"] for r in s["recordings"]] == ["a.csv"]
    assert not (out / "b.csv").exists() and not (out / "b.png").exists()    # the first run's, gone
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"]
