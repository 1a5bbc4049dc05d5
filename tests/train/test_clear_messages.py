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
])
def test_bad_training_numbers_are_one_option_line(argv, what, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"sqtool: error: {what}"] and not (tmp_path / "o").exists()


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
