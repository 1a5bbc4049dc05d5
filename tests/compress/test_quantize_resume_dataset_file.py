"""`quantize --resume RUN` whose teacher's `--data my_watch/dataset.yaml` was edited since the kill (the PPG read from
another column): the resume reads the dataset again and student_float.pt's key hashes the training windows it reads,
so the float student trained on the first file's signals is refused, never carried into QAT on the edited file's.
The refusal leaves the killed run's folder as it was (it rewrote teacher_cache.npz for the edited data first), so
the file restored (a comment and another indentation are no change), the resume continues where the run stopped."""
import hashlib
import sys
from pathlib import Path

from sqtool.cli import main
from sqtool.compress import distill as D
from test_quantize_resume import die_in_qat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_own_data import readme_yaml, write_csv_folder  # noqa: E402


def _files(d: Path) -> dict:
    """Every file under `d` (the run's lock aside): its size, mtime and sha256."""
    return {str(f.relative_to(d)): (f.stat().st_size, f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in sorted(d.rglob("*")) if f.is_file() and f.name != ".lock"}


def test_a_dataset_file_edited_since_the_kill_refuses_the_quantize_resume(tmp_path, monkeypatch, capsys):
    write_csv_folder(tmp_path / "my_watch" / "recordings")
    ds = tmp_path / "my_watch" / "dataset.yaml"
    ds.write_text(readme_yaml())
    ft, q = tmp_path / "ft", tmp_path / "q"
    assert main(["train", "finetune", "--task", "hr", "--model", "resnet1d_siamq_tiny", "--data", str(ds),
                 "--folds", "2", "--epochs", "1", "--bootstrap", "10", "--no-progress", "--out", str(ft)]) == 0
    real = D.fit
    die_in_qat(monkeypatch)                            # the process dies in QAT, student_float.pt written
    assert main(["quantize", "--model", str(ft), "--epochs", "1", "--qat-epochs", "1", "--batch-size", "16",
                 "--out", str(q)]) == 130
    assert (q / "student_float.pt").is_file() and not (q / "model.pt").exists()
    monkeypatch.setattr(D, "fit", real)
    killed = _files(q)
    assert "teacher_cache.npz" in killed
    ds.write_text(readme_yaml().replace("  ppg: ppg\n", "  ppg: acc_x\n"))       # green -> red, as it were
    capsys.readouterr()
    assert main(["quantize", "--resume", str(q)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sqtool: error: cannot resume: ") and err[-1].endswith(
        f"student_float.pt was made with other inputs: its dataset file {ds.resolve()} changed since it started "
        "(channels.ppg: ppg -> acc_x); restore it, or start a new run"), err
    assert not (q / "model.pt").exists() and not (q / "metrics.json").exists()
    assert _files(q) == killed                                 # the killed run's folder, as it was
    ds.write_text("# restored\n" + readme_yaml().replace("\n  ", "\n    "))   # a comment, another indentation: the
    assert main(["quantize", "--resume", str(q)]) == 0         # same document; the run continues from its float
                                                               # student and its teacher cache
    log = capsys.readouterr().err
    assert f"teacher outputs reused from {q / 'teacher_cache.npz'}" in log and "float student reused" in log, log
    assert (q / "model.pt").is_file() and (q / "metrics.json").is_file()
