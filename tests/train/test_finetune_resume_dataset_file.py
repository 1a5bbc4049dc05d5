"""`train finetune --resume RUN` on `--data my_watch/dataset.yaml` edited since the kill (the PPG read from another
column): the resume reads the dataset again and the fold key hashes the task data it reads, so a fold finished on the
first file's signals is refused, never mixed with folds of the edited file's (the gap `data pairs --resume` had).
The refusal names what changed, as `data pairs --resume` does: the dataset file and its key, or the recording whose
stream or label file was rewritten; a comment or another indentation in the file is no change: the run resumes."""
import json
import sys
from pathlib import Path

import numpy as np

import sqtool.train.finetune as FT
from sqtool.cli import main
from test_finetune_resume import _counting_fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_own_data import readme_yaml, write_csv_folder  # noqa: E402


def test_a_dataset_file_edited_since_the_kill_refuses_the_finetune_resume(tmp_path, monkeypatch, capsys):
    write_csv_folder(tmp_path / "my_watch" / "recordings")
    ds = tmp_path / "my_watch" / "dataset.yaml"
    ds.write_text(readme_yaml())
    real = FT._fit
    _counting_fit(monkeypatch, kill_at=2)                            # Ctrl-C in fold 2
    run = tmp_path / "ft"
    assert main(["train", "finetune", "--task", "hr", "--model", "resnet1d_siamq_tiny", "--data", str(ds),
                 "--folds", "2", "--epochs", "1", "--bootstrap", "10", "--no-progress", "--out", str(run)]) == 130
    assert (run / "folds" / "fold_000.npz").is_file()
    monkeypatch.setattr(FT, "_fit", real)
    ds.write_text(readme_yaml().replace("  ppg: ppg\n", "  ppg: acc_x\n"))       # green -> red, as it were
    capsys.readouterr()
    assert main(["train", "finetune", "--resume", str(run), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"fold_000.npz was made with other inputs: its dataset file {ds.resolve()} changed " \
        "since it started (channels.ppg: ppg -> acc_x); restore it, or start a new run" in err[0], err
    assert not (run / "model.pt").exists() and not (run / "metrics.json").exists()

    # the file restored, with a comment and another indentation (no change), but a recording rewritten: its file named
    ds.write_text("# my watch, edited\n" + readme_yaml().replace("\n  ", "\n    "))
    rec = tmp_path / "my_watch" / "recordings" / "s01_walk.csv"
    was = rec.read_bytes()
    head, rows = rec.read_text().splitlines()[0], np.loadtxt(rec, delimiter=",", skiprows=1)
    for col, what in ((1, "signal"), (5, "labels")):              # ppg reversed in time; hr 5 BPM up
        new = rows.copy()
        new[:, col] = new[::-1, col] if col == 1 else new[:, col] + 5
        np.savetxt(rec, new, delimiter=",", header=head, comments="", fmt="%.6f")
        assert main(["train", "finetune", "--resume", str(run), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and (f"fold_000.npz was made with other inputs: the {what} of recording s01_walk ({rec}) "
                                  "changed since it started (a stream or label file rewritten") in err[0], err

    rec.write_bytes(was)                                           # restored: the run resumes, its first fold reused
    assert main(["train", "finetune", "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["resumed_folds"] == [0]
