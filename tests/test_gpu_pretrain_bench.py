"""benchmarks/gpu_pretrain.py: the CPU smoke path (same code as the GPU run) and the clean no-CUDA failure."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_pretrain.py"


def run(*args, **env):
    e = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=e, timeout=300)


def test_cpu_smoke_writes_results_and_ddp_matches(tmp_path):
    r = run("--cpu-smoke", "--profile", "2", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_pretrain.json").read_text())
    assert "| batch | mode |" in r.stdout and (tmp_path / "gpu_pretrain.md").read_text().startswith("# SimSiam")

    assert res["model"] == "resnet1d_siamq_tiny"
    assert res["macs_per_window_G"] > 0
    assert math.isclose(res["train_flops_per_pair_G"], 12 * res["macs_per_window_G"], rel_tol=1e-6)
    for k in ("pairs", "device", "torch", "peak_note", "best_mode_per_batch", "elapsed_s"):
        assert k in res, k

    (eager,) = res["runs"]
    assert eager["mode"] == "eager" and eager["batch"] == 4 and eager["amp"] == "bfloat16"
    assert eager["pairs_per_s"] > 0 and eager["tflops"] > 0 and eager["step_ms"] > 0
    assert len(eager["losses"]) == eager["warmup_steps"] + eager["steps_timed"] == 3
    assert all(-1.0 <= v <= 1.0 for v in eager["losses"])
    assert eager["first_loss"] == eager["losses"][0] and eager["last_loss"] == eager["losses"][-1]

    f = eager["profile"]                                  # where the time of 2 more steps went
    assert f["steps"] == 2 and f["what"].startswith("CPU operators")
    assert 0 < f["busy_ms_per_step"] and 0 < f["busy_fraction"] and f["launches_per_step"] > 100
    assert f["top"] and all(k["ms_per_step"] > 0 and k["calls_per_step"] > 0 for k in f["top"])
    assert f["top"] == sorted(f["top"], key=lambda k: -k["ms_per_step"])
    assert "Where a step's time goes" in (tmp_path / "gpu_pretrain.md").read_text()

    d = res["ddp"]
    assert "profile" not in d
    assert d["backend"] == "gloo" and d["mode"] == "ddp" and d["batch"] == eager["batch"]
    assert len(d["losses"]) == len(eager["losses"])
    # world size 1 on CPU is deterministic: DDP + synced BN must give the plain run's losses
    diff = max(abs(x - y) for x, y in zip(d["losses"], eager["losses"]))
    assert diff < 1e-5, (d["losses"], eager["losses"])
    assert d["match"] is True and math.isclose(d["max_abs_loss_diff"], diff, abs_tol=1e-12)


def test_bad_profile_count_is_one_line(tmp_path):
    r = run("--cpu-smoke", "--profile", "-1", "--out", str(tmp_path))
    assert r.returncode == 2 and "--profile >= 0" in r.stderr and "Traceback" not in r.stderr


def test_no_cuda_fails_with_one_line(tmp_path):
    r = run("--out", str(tmp_path), CUDA_VISIBLE_DEVICES="")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--cpu-smoke" in lines[0]
    assert not (tmp_path / "gpu_pretrain.json").exists()


def _bench_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_pretrain_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_channels_last_encoder_computes_what_the_1d_one_does():
    import torch
    from sqtool.models import create_model
    torch.manual_seed(0)
    enc = create_model("resnet1d_siamq_tiny").encoder
    nhwc = _bench_module().EncoderNHWC(enc)
    assert [k for k in nhwc.enc.state_dict()] == [k for k in enc.state_dict()]
    x = torch.randn(3, 1, 1200)                                     # (B, C, T)
    for train in (True, False):                                     # batch statistics, then running statistics
        enc.train(train)
        nhwc.train(train)
        y1, y2 = enc(x), nhwc(x)                                    # (B, D) each
        assert y1.shape == y2.shape == (3, enc.out_dim)
        torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-5)
    for m1, m2 in zip(enc.modules(), nhwc.enc.modules()):
        if isinstance(m1, torch.nn.BatchNorm1d):                    # the training pass moved both alike
            torch.testing.assert_close(m2.running_mean, m1.running_mean)


def test_cpu_smoke_with_nhwc_matches_the_1d_losses(tmp_path):
    r = run("--cpu-smoke", "--nhwc", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_pretrain.json").read_text())
    assert [x["mode"] for x in res["runs"]] == ["eager", "eager+nhwc"]
    assert res["nhwc"]["match"] is True and res["nhwc"]["max_abs_loss_diff"] <= res["nhwc"]["tol"]
    assert "channels-last" in (tmp_path / "gpu_pretrain.md").read_text()
