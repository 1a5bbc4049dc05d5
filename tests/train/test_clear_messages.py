"""Bad inputs of the training commands are one line that names the thing: a file that is no checkpoint, a
truncated pair-metadata file, a learning rate or epoch count no optimiser takes."""
import pytest

from sqtool.cli import main
from test_pretrain import _write_pairs

PT = ["train", "pretrain", "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--val-fraction", "0",
      "--no-progress"]


@pytest.mark.parametrize("argv, what", [
    (["train", "finetune", "--data", "synthetic", "--lr", "-1"], "train finetune --lr must be > 0, got -1"),
    (["train", "pretrain", "--lr", "-1"], "train pretrain --lr must be > 0, got -1"),
    (["train", "pretrain", "--epochs", "0"], "train pretrain --epochs must be >= 1, got 0"),
    (["quantize", "--model", "runs/t", "--qat-lr", "-0.5"], "quantize --qat-lr must be > 0, got -0.5"),
    # an audit: --max-steps -5 saved an untrained model (exit 0), --seed -1 was numpy's ValueError, --momentum 2
    # and --folds -2 ran, and the spectral fine-tune took --label-fraction 0
    (["train", "pretrain", "--max-steps", "-5"], "train pretrain --max-steps must be >= 0 (0: every epoch), got -5"),
    (["train", "pretrain", "--seed", "-1"], "train pretrain --seed must be >= 0, got -1"),
    (["train", "pretrain", "--momentum", "2"], "train pretrain --momentum must be in [0, 1), got 2"),
    (["train", "finetune", "--data", "synthetic", "--folds", "-2"],
     "train finetune --folds must be >= -1 (0: leave-one-subject-out, -1: the task's default), got -2"),
    (["train", "finetune", "--task", "hr", "--model", "spec_teacher_m", "--data", "synthetic", "--label-fraction",
      "0"], "train finetune --label-fraction must be in (0, 1], got 0"),
])
def test_bad_training_numbers_are_one_option_line(argv, what, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: {what}"] and not (tmp_path / "o").exists()


@pytest.mark.parametrize("value, code, what", [
    ("0", 1, "--ddp-timeout must be > 0, got 0"),
    ("-30", 1, "--ddp-timeout must be > 0, got -30"),
    ("inf", 1, "--ddp-timeout must be a finite number, got inf"),
    ("ten", 2, "train pretrain: --ddp-timeout: expected float, got 'ten' (see sqtool train pretrain --help)"),
])
def test_a_bad_ddp_timeout_is_one_line(value, code, what, tmp_path, capsys):
    """--ddp-timeout S: how long a rank of a torchrun run waits for the others at a collective; never 0 (every
    collective would fail at once), nor negative, infinite (a stuck rank hangs the run for ever) or text."""
    assert main(["train", "pretrain", "--ddp-timeout", value, "--out", str(tmp_path / "o")]) == code
    assert capsys.readouterr().err.strip().splitlines() == [f"sqtool: error: {what}"]
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_no_checkpoint_is_named_so(tmp_path, capsys):
    y = tmp_path / "dataset.yaml"
    y.write_text("name: hosp\nrecords: []\n")
    assert main(["train", "finetune", "--init", str(y), "--data", "synthetic", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert f"{y} is not a checkpoint" in err and "run code" not in err


def test_truncated_pair_metadata_is_named(tmp_path, capsys):
    _write_pairs(tmp_path / "pairs")
    meta = sorted((tmp_path / "pairs").rglob("*.meta.npz"))[0]
    meta.write_bytes(meta.read_bytes()[:100])
    assert main(PT + ["--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{meta}: corrupt or missing pair metadata (BadZipFile" in err[0]


def test_pretrains_next_line_fine_tunes_a_task_the_data_has(tmp_path):
    """Pairs mined from an rr-only dataset file: the next line offers --task rr, not hr (which that file lacks);
    a spectral encoder and unknown data stay on heart rate."""
    from sqtool.train.cli import _task_of
    (tmp_path / "rec").mkdir()
    (tmp_path / "dataset.yaml").write_text("name: icu\nformat: csv\nroot: rec\nfs: 125\nchannels: {ppg: ppg}\n"
                                           "subject: {pattern: '^(p\\\\d+)_'}\nlabels: {rr: {column: rr}}\n")
    assert _task_of(str(tmp_path / "dataset.yaml"), "resnet1d_siamq_tiny") == "rr"
    assert _task_of(str(tmp_path / "dataset.yaml"), "spec_teacher_m") == "hr"
    assert _task_of(None, "resnet1d_siamq_tiny") == "hr"


def test_an_unreadable_fold_file_names_the_fold_as_the_progress_lines_do(tmp_path):
    """fold_001.npz is the second fold, which the progress lines call `fold 2/N`: the error said `redo fold 1`."""
    import numpy as np
    from sqtool.core import SqtoolError
    from sqtool.train.finetune import fold_path, load_fold
    from sqtool.train.finetune_hr import load_fold_hr
    p = fold_path(tmp_path, 1)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(SqtoolError, match=r"fold_001\.npz is unreadable \(BadZipFile\); delete it to redo fold 2$"):
        load_fold(tmp_path, 1, "k", np.arange(3))
    with pytest.raises(SqtoolError, match=r"delete it to redo fold 2$"):
        load_fold_hr(tmp_path, 1, "k", ["a"])


@pytest.mark.parametrize("model", [[], ["--model", "spec_teacher_m"]])
def test_a_datasets_own_folder_given_as_the_data_root_says_what_to_give(model, tmp_path, capsys):
    """--data ../shared/data/troika said '.../troika/troika not found under the data root' (a time-domain hr model)
    or 'no heart-rate dataset under .../troika' (a spectral one): it names the root holding it and the name."""
    (tmp_path / "data" / "troika").mkdir(parents=True)
    ds = tmp_path / "data" / "troika"
    assert main(["train", "finetune", "--task", "hr", *model, "--data", str(ds), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        f": {ds} is the troika dataset's own folder, --data takes the data root holding it (--data {ds.parent}) or "
        "the dataset's name (--data troika, read under $SQTOOL_DATA)")


def test_synthetic_pairs_beside_a_pairs_folder_is_refused(tmp_path, capsys):
    """--synthetic-pairs N sizes the generated corpus of --pairs synthetic only: beside a pairs folder it was
    silently ignored (every pair of the folder trained on, exit 0); now one line, no run folder. A --config file's
    key (a run's own config.yaml holds every field) is not refused."""
    _write_pairs(tmp_path / "pairs")
    out = tmp_path / "o"
    assert main(PT + ["--pairs", str(tmp_path / "pairs"), "--synthetic-pairs", "16", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sqtool: error: train pretrain --synthetic-pairs 16: it sizes the "
                                               "generated pairs of --pairs synthetic only")
    assert not out.exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synthetic_pairs: 16\n")
    assert main(PT + ["--pairs", str(tmp_path / "pairs"), "--config", str(cfg), "--out", str(out)]) == 0
