"""Checkpoints are read with weights_only=True: a file that would run code while unpickling is refused."""
import random

import numpy as np
import pytest
import torch

from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this calls open(target, "w"): creates a file, the way a crafted checkpoint runs code."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "teacher_task", "model_cfg": {}, "state_dict": {}, "x": _Payload(target)}, evil)
    assert not target.exists()
    with pytest.raises(SqtoolError) as e:
        load_checkpoint(evil)
    msg = str(e.value)
    assert str(evil) in msg and "\n" not in msg and "refused" in msg
    assert not target.exists(), "unpickling the checkpoint ran code"


def test_corrupt_checkpoint_one_line(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SqtoolError, match="corrupt") as e:
        load_checkpoint(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_a_bit_flipped_checkpoint_is_one_line_not_garbage_weights(tmp_path):
    """Eight bytes of a quantize run's model.pt set to 0xff: torch.load read it, and export failed deep in Brevitas
    ('RuntimeError: QuantTensor not valid'). The stored CRC-32 of each zip member is now checked: one line naming the
    file and the member (non-finite values are no sign of damage: an af tree's thresholds hold inf)."""
    p = save_checkpoint(tmp_path / "m.pt", kind="student_int8", model_cfg={"name": "m"},
                        state_dict={"w": torch.linspace(-1, 1, 4096), "b": torch.zeros(8)})
    assert load_checkpoint(p)["kind"] == "student_int8"
    raw = bytearray(p.read_bytes())
    at = raw.find(torch.linspace(-1, 1, 4096).numpy().tobytes()[4000:4016])      # inside the weights' bytes
    assert at > 0
    raw[at:at + 8] = b"\xff" * 8
    p.write_bytes(bytes(raw))
    with pytest.raises(SqtoolError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert msg.startswith(f"checkpoint {p} is damaged: its member ") and "fails its CRC-32" in msg and "\n" not in msg


def test_round_trip_with_numpy_and_rng_state(tmp_path):
    from sqtool.train import loop
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    st = loop.get_rng_state()
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    p = save_checkpoint(tmp_path / "c.pt", kind="teacher_pretrain", model_cfg={"name": "m"},
                        state_dict={"w": torch.ones(2)}, rng=st,
                        metrics={"mae": np.float32(1.5), "arr": np.arange(3), "n": np.int64(4)})
    ck = load_checkpoint(p)
    assert ck["metrics"]["mae"] == 1.5 and ck["metrics"]["n"] == 4
    assert torch.equal(ck["metrics"]["arr"], torch.arange(3))
    loop.set_rng_state(ck["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want


def test_an_export_folder_given_as_a_checkpoint_says_what_it_is(tmp_path):
    """`sqtool quantize --model EXPORT` (or any stage reading a run): one line naming the export folder."""
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text("{}")
    with pytest.raises(SqtoolError, match=r"is an `sqtool export` folder .* not a training run"):
        load_checkpoint(tmp_path / "export")
    with pytest.raises(SqtoolError, match=r"checkpoint .*model.pt not found"):
        load_checkpoint(tmp_path)                                    # any other folder without model.pt


@pytest.mark.parametrize("command, says", [
    ("data_pairs", "is a `sqtool data pairs` folder, not a training run: pretrain on its pairs first (sqtool train "
                   "pretrain --pairs {d} --model MODEL) and give that run"),
    ("bench", "is a `sqtool bench` folder, not a training run: give the run of the model it ran (train, quantize)")])
def test_a_pairs_or_bench_folder_given_as_a_checkpoint_says_what_it_is(tmp_path, command, says):
    """`train finetune --init PAIRS_DIR` said 'checkpoint PAIRS_DIR/model.pt not found'."""
    d = tmp_path / command
    d.mkdir()
    (d / "config.yaml").write_text(f"command: {command}\nconfig: {{}}\n")
    (d / ("index.json" if command == "data_pairs" else "metrics.json")).write_text("{}")      # finished
    with pytest.raises(SqtoolError) as e:
        load_checkpoint(d)
    assert str(e.value) == f"{d} " + says.format(d=d)


def test_a_raw_pickle_of_another_protocol_is_one_line_without_torch_warnings(tmp_path):
    """A file pickled with pickle.dump (protocol 4, not torch.save's 2) holding a code-running payload: refused in
    sqtool's one line, and torch's 'Detected pickle protocol 4 in the checkpoint' UserWarning (printed with its own
    source line above that line, by `sqtool export --model evil.pt`) is not shown."""
    import pickle
    import warnings
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"kind": "teacher_task", "x": _Payload(target)}, protocol=4))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(SqtoolError) as e:
            load_checkpoint(evil)
    assert str(evil) in str(e.value) and "\n" not in str(e.value) and "refused" in str(e.value)
    assert not target.exists(), "unpickling the checkpoint ran code"
    assert [str(w.message) for w in seen] == []
