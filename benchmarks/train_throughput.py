"""Pretraining throughput on this CPU and a projection for the paper's 36 M pairs on N GPUs.

    OMP_NUM_THREADS=1 nice python benchmarks/train_throughput.py [--models 18,34,50] [--batch 16] [--steps 3]

For each ResNet layout: one SimSiam training step (both views forward + backward + SGD step, exactly the
code of `sqtool train pretrain`) on a batch of 30 s / 40 Hz windows, timed over `--steps` steps after one
warm-up step, each model in a fresh subprocess so that its peak resident memory (ru_maxrss) is its own;
the resident memory of the same process just before the model is built is reported as the baseline.

Projection (stated assumptions, written into the JSON): training FLOPs per pair = 2 views x 3 (forward +
backward ~ 3 x forward) x 2 FLOP/MAC x MACs per window (MACs counted with forward hooks on Conv1d and
Linear); a GPU delivers `peak x MFU` (A100 bf16 dense 312 TFLOP/s; MFU 0.30 and a pessimistic 0.05:
1-D convs with 48-384 channels use tensor cores poorly); data-parallel scaling efficiency 0.9 beyond
one GPU. Writes benchmarks/results/train_throughput.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
PAIRS_PAPER = 36e6
A100_BF16 = 312e12


def count_macs(model, x) -> int:
    import torch
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv1d):
            total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0]
        elif isinstance(m, torch.nn.Linear):
            total += out.numel() // out.shape[0] * m.in_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()
        model.proj(model.encoder(x))
    for h in hs:
        h.remove()
    return total                                  # per window: each hook counted one sample's output (numel / B)


def child(name: str, batch: int, steps: int) -> dict:
    import torch
    torch.set_num_threads(1)
    from sqtool.models import create_model
    from sqtool.train import loop
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.manual_seed(0)
    model = create_model(name)
    c, t = model.cfg.input_shape
    macs = count_macs(model, torch.rand(2, c, t))
    n_params = sum(p.numel() for p in model.encoder.parameters())
    opt = loop.paper_optimizer(model.parameters())
    x1, x2 = torch.rand(batch, c, t), torch.rand(batch, c, t)                # (B, C, T)
    model.train()
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = loop.simsiam_loss(*model.simsiam(x1, x2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    return {"model": name, "encoder_params_M": n_params / 1e6, "macs_per_window_M": macs / 1e6,
            "batch": batch, "steps_timed": steps, "step_s_median": step_s,
            "pairs_per_s": batch / step_s, "windows_per_s": 2 * batch / step_s,
            "baseline_rss_MB": base_rss, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def project(r: dict, n_gpus=(1, 8, 64), mfus=(0.30, 0.05), epochs: int = 1) -> dict:
    flops_pair = 2 * 3 * 2 * r["macs_per_window_M"] * 1e6
    out = {"flops_per_pair_G": flops_pair / 1e9,
           "cpu_1core_days_per_epoch": PAIRS_PAPER / r["pairs_per_s"] / 86400}
    for mfu in mfus:
        for n in n_gpus:
            eff = 1.0 if n == 1 else 0.9
            s = epochs * PAIRS_PAPER * flops_pair / (A100_BF16 * mfu * n * eff)
            out[f"a100_x{n}_mfu{mfu:.2f}_hours_per_epoch"] = s / 3600
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="18,34,50")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.batch, a.steps)))
        return 0
    import torch
    rows = []
    for d in a.models.split(","):
        name = f"resnet1d_siamq_{d}"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        r = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(a.batch), "--steps", str(a.steps)],
                           capture_output=True, text=True, env=env, check=True)
        row = json.loads(r.stdout.strip().splitlines()[-1])
        row["projection_36M_pairs"] = project(row)
        rows.append(row)
        print(f"{name}: {row['pairs_per_s']:.2f} pairs/s ({row['windows_per_s']:.2f} windows/s), "
              f"peak RSS {row['peak_rss_MB']:.0f} MB (baseline {row['baseline_rss_MB']:.0f} MB)", flush=True)
    # the paper's default depth: MACs only (a CPU step of ResNet-152 is too slow for this budget)
    from sqtool.models import create_model
    m152 = create_model("resnet1d_siamq_152")
    macs152 = count_macs(m152, torch.rand(2, 1, 1200))
    p152 = project({"macs_per_window_M": macs152 / 1e6, "pairs_per_s": float("nan")})
    cpu = {"cpu": _cpu_name(), "threads": 1, "torch": torch.__version__}
    res = {"machine": cpu, "input": "30 s x 40 Hz = 1200 samples, 1 channel", "rows": rows,
           "resnet152_macs_per_window_M": macs152 / 1e6, "resnet152_projection": p152,
           "assumptions": {"pairs": PAIRS_PAPER, "flops_per_pair": "2 views x 3 (fwd+bwd) x 2 FLOP/MAC x MACs",
                           "gpu": "A100 bf16 dense peak 312 TFLOP/s", "mfu": [0.30, 0.05],
                           "multi_gpu_scaling_efficiency": 0.9, "epochs": 1,
                           "data_loading": "not the bottleneck (float16 shards, mmap)"}}
    OUT.mkdir(parents=True, exist_ok=True)
    from sqtool.core.io import atomic_write_text, write_metrics
    write_metrics(OUT, res, "train_throughput.json")
    lines = [f"# Pretraining throughput ({cpu['cpu']}, 1 thread, torch {cpu['torch']})", "",
             f"SimSiam step (2 views fwd+bwd + SGD), batch {a.batch}, 30 s / 40 Hz windows; median of {a.steps} steps.", "",
             "| model | encoder params (M) | MMAC / window | pairs/s | windows/s | peak RSS MB (baseline) | "
             "CPU core-days / epoch of 36 M pairs |", "|---|---|---|---|---|---|---|"]
    lines.insert(3, f"The paper quotes ~1.4 G per window for ResNet-152; the hook count below is "
                    f"{res['resnet152_macs_per_window_M'] / 1e3:.2f} GMAC (encoder + projector; "
                    "`benchmarks/gpu_pretrain.py` counts 1.43 for the encoder alone). Measured on a 2-core machine "
                    "shared with other jobs: treat CPU figures as lower bounds.")
    lines.insert(4, "")
    for r in rows:
        lines.append(f"| {r['model']} | {r['encoder_params_M']:.2f} | {r['macs_per_window_M']:.0f} | "
                     f"{r['pairs_per_s']:.2f} | {r['windows_per_s']:.2f} | {r['peak_rss_MB']:.0f} "
                     f"({r['baseline_rss_MB']:.0f}) | {r['projection_36M_pairs']['cpu_1core_days_per_epoch']:.0f} |")
    lines += ["", "Projected hours per epoch of 36 M pairs on A100s (assumptions below):", "",
              "| model | GMAC/window | 1 GPU @30 % MFU | 1 GPU @5 % | 8 GPUs @30 % | 8 GPUs @5 % | 64 GPUs @5 % |",
              "|---|---|---|---|---|---|---|"]
    for name, macs, p in [(r["model"], r["macs_per_window_M"], r["projection_36M_pairs"]) for r in rows] + \
            [("resnet1d_siamq_152", macs152 / 1e6, p152)]:
        lines.append(f"| {name} | {macs / 1e3:.3f} | {p['a100_x1_mfu0.30_hours_per_epoch']:.2f} | "
                     f"{p['a100_x1_mfu0.05_hours_per_epoch']:.2f} | {p['a100_x8_mfu0.30_hours_per_epoch']:.3f} | "
                     f"{p['a100_x8_mfu0.05_hours_per_epoch']:.3f} | {p['a100_x64_mfu0.05_hours_per_epoch']:.3f} |")
    lines += ["", "Assumptions: training FLOPs per pair = 2 views x 3 (forward + backward) x 2 FLOP/MAC x MACs per "
              "window (Conv1d + Linear, counted with hooks); A100 bf16 dense peak 312 TFLOP/s at 30 % or a "
              "pessimistic 5 % model-FLOP utilisation (1-D convolutions with 48-384 channels are memory-bound); 0.9 data-parallel efficiency beyond one GPU; data loading keeps up "
              "(float16 shards, memory-mapped). These are projections, not measurements: no GPU was available.", ""]
    atomic_write_text(OUT / "train_throughput.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
