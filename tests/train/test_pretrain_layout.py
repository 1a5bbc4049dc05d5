"""`train pretrain --layout nhwc`: the encoder as 2-D channels-last convolutions computes, saves and resumes as the
1-D one does (float64, where summation order cannot hide a difference)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from sqtool.cli import main
from sqtool.core import SqtoolError
from sqtool.core.checkpoint import load_checkpoint
from sqtool.models import create_model
from sqtool.core.optim import encoder_layout

ARGS = ["train", "pretrain", "--model", "resnet1d_siamq_tiny", "--synthetic-pairs", "96", "--epochs", "2",
        "--batch-size", "32", "--lr", "0.05", "--val-fraction", "0", "--progress", "false", "--dtype", "float64"]


def losses(run):
    return [h["loss"] for h in json.loads((run / "metrics.json").read_text())["history"]]


def assert_same_weights(a, b, tol=1e-9):
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].shape == sb[k].shape, k                    # the checkpoint keeps (O, I, k) kernels
        if sa[k].is_floating_point():
            assert torch.allclose(sa[k], sb[k], rtol=1e-7, atol=tol), k


def test_nhwc_trains_as_ncl_does_and_resumes_across_layouts(tmp_path):
    assert main(ARGS + ["--layout", "ncl", "--out", str(tmp_path / "ncl")]) == 0
    assert main(ARGS + ["--layout", "nhwc", "--out", str(tmp_path / "nhwc")]) == 0
    l1, l2 = losses(tmp_path / "ncl"), losses(tmp_path / "nhwc")
    assert len(l1) == len(l2) == 6
    assert max(abs(a - b) for a, b in zip(l1, l2)) < 1e-9, (l1, l2)
    assert_same_weights(tmp_path / "ncl", tmp_path / "nhwc")
    assert json.loads((tmp_path / "nhwc" / "metrics.json").read_text())["layout"] == "nhwc"
    assert json.loads((tmp_path / "ncl" / "metrics.json").read_text())["layout"] == "ncl"
    assert create_model("resnet1d_siamq_tiny").load_state_dict(load_checkpoint(tmp_path / "nhwc")["state_dict"])

    # stopped in the 1-D layout with momentum on every weight, resumed channels-last (and the reverse)
    assert main(ARGS + ["--layout", "ncl", "--max-steps", "4", "--out", str(tmp_path / "cut")]) == 0
    assert main(["train", "pretrain", "--resume", str(tmp_path / "cut"), "--layout", "nhwc", "--max-steps", "0"]) == 0
    assert max(abs(a - b) for a, b in zip(losses(tmp_path / "cut"), l1)) < 1e-9
    assert_same_weights(tmp_path / "ncl", tmp_path / "cut")
    assert main(ARGS + ["--layout", "nhwc", "--max-steps", "4", "--out", str(tmp_path / "cut2")]) == 0
    assert main(["train", "pretrain", "--resume", str(tmp_path / "cut2"), "--layout", "ncl", "--max-steps", "0"]) == 0
    assert max(abs(a - b) for a, b in zip(losses(tmp_path / "cut2"), l1)) < 1e-9


def test_two_process_ddp_in_nhwc_matches_one_process(tmp_path):
    args = ARGS + ["--max-steps", "3"]
    assert main(args + ["--layout", "ncl", "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "sqtool.cli", *args, "--layout", "nhwc", "--out", str(tmp_path / "two")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    l1, l2 = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(l1) == len(l2) == 3 and max(abs(a - b) for a, b in zip(l1, l2)) < 1e-9, (l1, l2)
    assert_same_weights(tmp_path / "one", tmp_path / "two")


def test_the_layout_is_resolved_or_refused_in_one_line(tmp_path, capsys):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)         # resolved only, nothing runs on the GPU
    assert encoder_layout("auto", "resnet1d", cpu, "x") == "ncl"
    assert encoder_layout("auto", "resnet1d", gpu, "x") == "nhwc"
    assert encoder_layout("nhwc", "resnet1d", cpu, "x") == "nhwc"
    assert encoder_layout("auto", "spec_cnn", gpu, "x") == "ncl"      # a model without the ResNet encoder
    with pytest.raises(SqtoolError, match="no channels-last encoder"):
        encoder_layout("nhwc", "spec_cnn", cpu, "spec_x")
    assert main(ARGS + ["--layout", "nchw", "--out", str(tmp_path / "bad")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "--layout must be one of auto, ncl, nhwc, got 'nchw'" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "bad").exists()                     # refused before a run folder is made


@pytest.mark.parametrize("args", [
    ["train", "pretrain", "--model", "spec_teacher_m"],
    ["train", "finetune", "--task", "hr", "--model", "spec_student_s", "--data", "synthetic"],
    ["train", "finetune", "--task", "af", "--model", "af_beats", "--data", "synthetic"],
])
def test_nhwc_for_a_model_without_a_resnet_encoder_is_one_line_before_any_work(args, tmp_path, capsys):
    assert main(args + ["--layout", "nhwc", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "has no channels-last encoder" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_channels_last_encoder_keeps_dtype_state_and_outputs(dtype):
    torch.manual_seed(0)
    a = create_model("resnet1d_siamq_tiny").to(dtype)
    b = create_model("resnet1d_siamq_tiny").to(dtype)
    b.load_state_dict(a.state_dict())
    b.encoder.channels_last_2d()
    assert all(p.dtype == dtype for p in b.parameters()) and b.encoder.layout == "nhwc"
    stem = b.encoder.stem[0].weight                            # (12, 1, 1, 80): the strides its gradient has
    assert stem.stride() == torch.empty(stem.shape).stride()
    one = b.encoder.stages[1][0].down[0].weight                # (O, I, 1, 1): channels-last strides, as its gradient
    assert one.shape[2:] == (1, 1) and one.stride() == (one.shape[1], 1, one.shape[1], one.shape[1])
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in b.encoder.parameters() if p.dim() == 4)
    assert {k: v.shape for k, v in b.state_dict().items()} == {k: v.shape for k, v in a.state_dict().items()}
    x = torch.randn(3, 1, 1200, dtype=dtype)                   # (B, C, T)
    for train in (True, False):
        a.train(train)
        b.train(train)
        torch.testing.assert_close(b(x), a(x))                 # (B, D)
    b.load_state_dict(a.state_dict())                          # 1-D kernels load into the 2-D layout
    assert b.encoder.channels_last_2d() is b.encoder           # a second call changes nothing


def test_the_steady_pace_leaves_the_warm_up_out(tmp_path, capsys):
    from sqtool.train.pretrain import WARM_STEPS, steady_rate
    assert steady_rate({"t": None}, 32) is None
    assert steady_rate({"t0": 1.0, "step0": 6, "t": 3.0, "step": 10}, 32) == 64.0
    short = ARGS[:ARGS.index("--epochs")] + ["--epochs", "1", *ARGS[ARGS.index("--epochs") + 2:]]
    assert main(short + ["--out", str(tmp_path / "a")]) == 0                   # 3 steps: no steady pace
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["steady_pairs_per_s"] is None
    assert "pairs/s" not in capsys.readouterr().out
    assert main(ARGS + ["--synthetic-pairs", "320", "--out", str(tmp_path / "b")]) == 0     # 20 steps
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["global_step"] > WARM_STEPS + 2 and m["steady_pairs_per_s"] > 0
    summary = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pretrained ")]
    assert f"; {m['steady_pairs_per_s']:,.0f} pairs/s (cpu, ncl) -> " in summary[0]     # the pace a run keeps


@pytest.mark.parametrize("mode", ["linear", "full"])
def test_a_fine_tune_in_nhwc_predicts_as_in_ncl(tmp_path, tiny_pretrained, mode):
    import numpy as np
    from sqtool.train.finetune import FinetuneConfig, run_finetune
    kw = dict(task="af", init=str(tiny_pretrained), mode=mode, data_root="synthetic", folds=2, epochs=2,
              batch_size=32, max_records=12, bootstrap=10, progress=False)
    preds = {}
    for layout in ("ncl", "nhwc"):
        run_finetune(FinetuneConfig(**kw, layout=layout), tmp_path / layout)
        with np.load(tmp_path / layout / "oof_predictions.npz") as z:
            preds[layout] = z["pred"]
    # float32 training: the layouts sum in other orders, so a few steps part them by ~1e-3 (float64 pretraining,
    # above, agrees within 1e-9); a wrong kernel, stride or frozen flag would part them by the logits' own scale
    assert np.abs(preds["ncl"]).max() > 0.05
    np.testing.assert_allclose(preds["nhwc"], preds["ncl"], rtol=1e-2, atol=3e-3)
    a = load_checkpoint(tmp_path / "ncl", expect_kind="teacher_task")["state_dict"]
    b = load_checkpoint(tmp_path / "nhwc", expect_kind="teacher_task")["state_dict"]
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}     # 1-D kernels saved
    if mode == "linear":                                       # the frozen encoder stays frozen when converted
        pre = load_checkpoint(tiny_pretrained)["state_dict"]
        assert all(torch.equal(b[k], v) for k, v in pre.items() if k.startswith("encoder.") and "num_batches" not in k)


def test_validation_in_nhwc_scores_as_in_ncl(tmp_path):
    val = ["--val-fraction", "0.25", "--epochs", "1"]
    for layout in ("ncl", "nhwc"):
        assert main(ARGS + val + ["--layout", layout, "--out", str(tmp_path / layout)]) == 0
    a, b = (json.loads((tmp_path / x / "metrics.json").read_text()) for x in ("ncl", "nhwc"))
    assert a["val_loss"] is not None and abs(a["val_loss"] - b["val_loss"]) < 1e-9
    assert abs(a["val_z_std"] - b["val_z_std"]) < 1e-9
