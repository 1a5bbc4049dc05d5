"""SiamQuality pretraining on one CUDA GPU: throughput, memory, MFU, loss trend, and a 1-process DDP check.

    PYTHONPATH=. python benchmarks/gpu_pretrain.py [--compile] [--batches 64,128,256] [--out DIR]
    PYTHONPATH=. python benchmarks/gpu_pretrain.py --cpu-smoke --out /tmp/x     # same code path, CPU, seconds

For each batch size: `resnet1d_siamq_152` (the paper's 21.6 M-parameter encoder + SimSiam heads) trains for
`--warmup` + `--steps` steps with the project's own pieces (`loop.SimSiamStep`, `loop.simsiam_loss`,
`loop.paper_optimizer`, `loop.autocast` in bf16, `loop.make_scaler`, grad-norm clip 10: the step body of
`pretrain.run_pretrain`), timed between `torch.cuda.synchronize()` calls after the warm-up. Losses stay on
the device until the end (the real loop also logs every step, which syncs; that cost is not measured here),
and the pairs sit on the device, so data loading is not timed. Then the same run at the first batch size
goes through `DistributedDataParallel` over nccl with world size 1 (env://, 127.0.0.1, a free port) and
the project's synced-BN conversion (`loop.convert_sync_bn`, as multi-rank pretraining uses it); its
per-step losses must equal the plain run's within `--ddp-tol`. With `--compile`, runs with a
`torch.compile`d encoder (> 99 % of the FLOPs; one graph serves both views) follow at `--compile-batches`;
a watchdog thread ends the script with what it has once `--budget-s` (since start) is spent. With `--nhwc`,
each batch also runs with the encoder as 2-D convolutions in channels-last memory (`ResNet1d.channels_last_2d`, what `sqtool train pretrain` runs on CUDA: cuDNN's 1-D convolutions
transpose NCHW <-> NHWC around every call); its losses must follow the 1-D run's within `--nhwc-tol` at the
first batch, and the DDP check runs in that layout too.

Pairs: `pretrain.synthetic_pairs` (needs scipy); without scipy, uniform random windows x1 and
x2 = x1 + N(0, 0.1) of the same (1, 1200) shape, and the JSON says which. FLOPs per pair = 2 views x
3 (fwd + bwd) x 2 FLOP/MAC x MACs per window (Conv1d + Linear, counted with hooks); MFU divides by an
ASSUMED H200 bf16 dense peak of 989 TFLOP/s (`--peak-tflops`). `--cpu-smoke`: `resnet1d_siamq_tiny`,
batch 4, 1 + 2 steps, bf16 autocast on CPU, gloo. Writes benchmarks/results/gpu_pretrain.{json,md} (or --out).
Exit status: 0, 1 when the DDP (or --nhwc) losses do not match, 2 without CUDA (one line) or on bad arguments.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))                               # sqtool from this checkout, no install needed

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sqtool.core import atomic_write_text, set_seed  # noqa: E402
from sqtool.core.io import write_metrics  # noqa: E402
from sqtool.models import create_model, get_model_cfg  # noqa: E402
from sqtool.train import loop  # noqa: E402
from sqtool.train.pretrain import PretrainConfig  # noqa: E402

T0 = time.perf_counter()


def count_macs(name: str) -> int:
    """Multiply-accumulates of one window through encoder + projector + predictor (Conv1d, Linear)."""
    model, total = create_model(name).eval(), 0

    def hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.in_channels // m.groups if isinstance(m, torch.nn.Conv1d) else m.in_features
        total += out.numel() * k
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))]
    with torch.no_grad():
        model.simsiam(*(torch.rand(2, *model.cfg.input_shape),) * 2)      # 2 views x batch 2
    for h in hs:
        h.remove()
    return total // 4


def make_pairs(name: str, n: int, seed: int, dev):
    mcfg = get_model_cfg(name)
    try:
        from sqtool.train.pretrain import synthetic_pairs
        p = synthetic_pairs(n, mcfg, seed)
        x1, x2, desc = p.x1, p.x2, p.desc
    except ImportError as e:                                # scipy missing on a bare GPU image
        rng = np.random.default_rng(seed)
        x1 = rng.random((n, *mcfg.input_shape), dtype=np.float32)
        x2 = (x1 + rng.normal(0, 0.1, x1.shape)).astype(np.float32)
        desc = f"{n} random pairs, x2 = x1 + N(0, 0.1) (synthetic_pairs unavailable: {e})"
    return torch.from_numpy(x1).to(dev), torch.from_numpy(x2).to(dev), desc      # (N, C, T) each


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train(a, name, batch, dev, pool, compile_mode=None, ddp=False, profile_steps=0, layout="ncl") -> dict:
    """`warmup + steps` SimSiam steps exactly as pretrain.run_pretrain takes them; timing after warm-up.
    With `profile_steps`, that many more steps run under torch.profiler (`where_time_goes`). layout "nhwc": the
    encoder as 2-D channels-last convolutions (`ResNet1d.channels_last_2d`, same initial weights, so the losses follow the 1-D run's within bf16 rounding)."""
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    cfg = PretrainConfig(model=name, batch_size=batch, lr=a.lr)           # the paper's hyper-parameters
    set_seed(a.seed)
    model = create_model(name)
    model = model.to(dev)
    if layout == "nhwc":
        model.encoder.channels_last_2d()                 # as `train pretrain --layout nhwc` (auto on CUDA)
    if ddp:
        model = loop.convert_sync_bn(model, dev)
    step_mod = loop.SimSiamStep(model)
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        step_mod = DDP(step_mod, device_ids=[dev.index] if dev.type == "cuda" else None)
    if compile_mode:                    # the encoder only: one graph serves both views, half the compile time
        model.encoder = torch.compile(model.encoder, mode=compile_mode)
    opt = loop.paper_optimizer(model.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    adt = loop.amp_dtype(dev, a.amp)
    scaler = loop.make_scaler(dev, adt)
    x1s, x2s = pool
    n_steps = a.warmup + a.steps
    idx = [torch.from_numpy(np.random.default_rng([a.seed, s]).choice(len(x1s), batch, replace=False)).to(dev)
           for s in range(n_steps)]                           # the same batches for every run of this size
    model.train()

    def one_step(s):
        x1, x2 = x1s[idx[s % n_steps]], x2s[idx[s % n_steps]]              # (B, C, T)
        with loop.autocast(dev, adt):
            p1, p2, z1, z2 = step_mod(x1, x2)                               # (B, d) each
            loss = loop.simsiam_loss(*(t.float() for t in (p1, p2, z1, z2)))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    losses, t_start = [], time.perf_counter()
    for s in range(n_steps):
        if s == a.warmup:
            sync(dev)
            t_timed = time.perf_counter()
        losses.append(one_step(s))
    sync(dev)
    dt, losses = time.perf_counter() - t_timed, torch.stack(losses).float().cpu().tolist()
    mode = "ddp" if ddp else (f"compile:{compile_mode}" if compile_mode else "eager")
    r = {"batch": batch, "mode": mode if layout == "ncl" else f"{mode}+nhwc",
         "amp": str(adt).replace("torch.", "") if adt else "off", "steps_timed": a.steps,
         "warmup_steps": a.warmup, "warmup_s": t_timed - t_start, "step_ms": 1e3 * dt / a.steps,
         "pairs_per_s": batch * a.steps / dt,
         "peak_mem_GiB": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None,
         "first_loss": losses[0], "last_loss": losses[-1], "losses": losses,
         "finite": bool(np.all(np.isfinite(losses)))}
    if profile_steps:
        r["profile"] = where_time_goes(one_step, n_steps, profile_steps, dev)
    return r


def where_time_goes(one_step, first: int, n: int, dev, top: int = 8) -> dict:
    """`n` more steps under torch.profiler: wall ms per step, device-kernel ms per step (the GPU is idle for
    the rest: launch- or host-bound), kernels launched per step, and the `top` kernels by time. On CPU the
    operators' self time stands in for the kernels'."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    sync(dev)
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for s in range(n):
            one_step(first + s)
        sync(dev)
        wall = time.perf_counter() - t0
    on_dev = dev.type == "cuda"
    self_us = (lambda e: getattr(e, "self_device_time_total", 0.0)) if on_dev else \
        (lambda e: e.self_cpu_time_total)
    evs = prof.events()
    if on_dev:
        kernels = [e for e in evs if e.device_type == DeviceType.CUDA]         # kernels, copies, memsets
        busy_us = sum(e.device_time_total for e in kernels)
    else:
        kernels = [e for e in evs if e.device_type == DeviceType.CPU and not e.cpu_children]   # leaf operators
        busy_us = sum(e.self_cpu_time_total for e in evs if e.device_type == DeviceType.CPU)
    avg = sorted((e for e in prof.key_averages() if self_us(e) > 0 and (e.device_type == DeviceType.CUDA) == on_dev),
                 key=self_us, reverse=True)
    return {"steps": n, "wall_ms_per_step": 1e3 * wall / n, "busy_ms_per_step": busy_us / 1e3 / n,
            "busy_fraction": busy_us / 1e6 / wall, "launches_per_step": len(kernels) / n,
            "what": "device kernels" if on_dev else "CPU operators (self time)",
            "top": [{"name": e.key[:90], "ms_per_step": self_us(e) / 1e3 / n, "calls_per_step": e.count / n}
                    for e in avg[:top]]}


def ddp_run(a, name, batch, dev, pool, layout="ncl") -> dict:
    """World size 1 over nccl (gloo on CPU), initialised through env:// like torchrun would."""
    import torch.distributed as dist
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend, init_method="env://", rank=0, world_size=1)
    try:
        r = train(a, name, batch, dev, pool, ddp=True, layout=layout)
    finally:
        import gc
        gc.collect()                          # train's DDP wrapper sits in a cycle: freed while the group is alive
        dist.destroy_process_group()
    return {**r, "backend": backend}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, batch 4, 1 + 2 steps, gloo")
    ap.add_argument("--model", help="default resnet1d_siamq_152 (tiny with --cpu-smoke)")
    ap.add_argument("--batches", help="comma list of batch sizes in pairs (default 64,128,256)")
    ap.add_argument("--warmup", type=int, help="untimed steps (default 5)")
    ap.add_argument("--steps", type=int, help="timed steps (default 20)")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (after the eager runs)")
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode")
    ap.add_argument("--compile-batches", help="batch sizes to compile (default: the largest)")
    ap.add_argument("--budget-s", type=float, default=180.0, help="seconds since start after which it stops")
    ap.add_argument("--amp", default="bf16", help="bf16 | fp16 | off (loop.amp_dtype)")
    ap.add_argument("--lr", type=float, default=PretrainConfig.lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ddp-tol", type=float, default=2e-2, help="max |loss_ddp - loss| per step (bf16)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="ASSUMED bf16 dense peak (H200 SXM)")
    ap.add_argument("--nhwc", action="store_true",
                    help="also run every batch with the encoder as 2-D channels-last convolutions, and DDP so")
    ap.add_argument("--nhwc-tol", type=float, default=5e-2,
                    help="max |loss_nhwc - loss| per step at the first batch (bf16 rounding differs)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="profile N more steps at the largest batch (eager): where a step's time goes")
    ap.add_argument("--out", help="default benchmarks/results (a temp dir with --cpu-smoke)")
    a = ap.parse_args()
    smoke = a.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print(f"gpu_pretrain: no CUDA device visible to torch {torch.__version__}; use --cpu-smoke for the CPU path",
              file=sys.stderr)
        return 2
    import tempfile
    defaults = dict(model="resnet1d_siamq_tiny", batches="4", warmup=1, steps=2,
                    out=str(Path(tempfile.gettempdir()) / "gpu_pretrain_smoke")) if smoke else \
        dict(model="resnet1d_siamq_152", batches="64,128,256", warmup=5, steps=20,
             out=str(ROOT / "benchmarks" / "results"))
    for k, v in defaults.items():
        setattr(a, k, v if getattr(a, k) is None else getattr(a, k))
    name, batches = a.model, [int(b) for b in a.batches.split(",")]
    if a.steps < 1 or a.warmup < 0 or min(batches) < 2 or a.profile < 0:
        print("gpu_pretrain: need --steps >= 1, --warmup >= 0, --profile >= 0 and batch sizes >= 2", file=sys.stderr)
        return 2
    dev = torch.device("cpu") if smoke else torch.device("cuda", 0)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    macs = count_macs(name)
    flops_pair = 2 * 3 * 2 * macs
    n_params = sum(p.numel() for p in create_model(name).encoder.parameters())
    pool = make_pairs(name, 2 * max(batches), a.seed, dev)
    res = {"model": name, "encoder_params_M": n_params / 1e6, "macs_per_window_G": macs / 1e9,
           "train_flops_per_pair_G": flops_pair / 1e9, "pairs": pool[2], "seed": a.seed, "lr": a.lr,
           "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({os.cpu_count()} cores)",
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "peak_tflops_assumed": None if smoke else a.peak_tflops,
           "peak_note": "ASSUMED H200 SXM bf16 dense tensor-core peak (no sparsity); MFU = achieved / peak",
           "runs": [], "ddp": None, "notes": []}

    def rate(r):
        r["tflops"] = r["pairs_per_s"] * flops_pair / 1e12                  # achieved model FLOP/s
        r["mfu"] = None if smoke else r["tflops"] / a.peak_tflops
        return r

    def add(r):
        res["runs"].append(rate(r))
        print(f"  {r['mode']:>16} B={r['batch']:<4} {r['pairs_per_s']:9.1f} pairs/s  loss {r['first_loss']:+.4f} -> "
              f"{r['last_loss']:+.4f}  ({time.perf_counter() - T0:.0f} s)", flush=True)
        write(res, a.out)

    for b in batches:
        add(train(a, name, b, dev, pool[:2], profile_steps=a.profile if b == max(batches) else 0))
        if a.nhwc:
            add(train(a, name, b, dev, pool[:2], layout="nhwc", profile_steps=a.profile if b == max(batches) else 0))
    ref = res["runs"][0]
    if a.nhwc:
        nh = next(r for r in res["runs"] if r["mode"] == "eager+nhwc" and r["batch"] == ref["batch"])
        diff = float(np.max(np.abs(np.array(nh["losses"]) - np.array(ref["losses"]))))
        res["nhwc"] = {"batch": ref["batch"], "max_abs_loss_diff": diff, "tol": a.nhwc_tol,
                       "match": bool(diff <= a.nhwc_tol and nh["finite"])}
        ref = nh                                    # DDP as the real runs take it on CUDA: channels-last
    d = rate(ddp_run(a, name, batches[0], dev, pool[:2], layout="nhwc" if a.nhwc else "ncl"))
    diff = float(np.max(np.abs(np.array(d["losses"]) - np.array(ref["losses"]))))
    res["ddp"] = {**d, "reference": f"{ref['mode']} run at the same batch, seed and steps", "max_abs_loss_diff": diff,
                  "tol": a.ddp_tol, "match": bool(diff <= a.ddp_tol and d["finite"])}
    write(res, a.out)
    if a.compile:
        cb = [int(b) for b in a.compile_batches.split(",")] if a.compile_batches else [max(batches)]
        for b in cb:
            left = a.budget_s - (time.perf_counter() - T0)
            if left < 30:
                res["notes"].append(f"compile at batch {b} skipped: {left:.0f} s of --budget-s left")
                continue

            def cut_off(b=b, left=left):                # a watchdog thread: torch may swallow a signal
                res["notes"].append(f"compile at batch {b} cut off after {left:.0f} s (--budget-s {a.budget_s:g})")
                rc = finish(res, a)
                sys.stderr.flush()
                os._exit(rc)                            # without waiting for the compile workers
            dog = threading.Timer(left, cut_off)
            dog.daemon = True
            dog.start()
            try:
                add(train(a, name, b, dev, pool[:2], compile_mode=a.compile_mode, layout="nhwc" if a.nhwc else "ncl"))
            except Exception as e:                      # no triton, no C compiler, ...: eager figures stand
                res["notes"].append(f"compile at batch {b} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                break
            finally:
                dog.cancel()
    return finish(res, a)


def finish(res: dict, a) -> int:
    """Best mode per batch, the final files and table; exit status 1 when DDP does not match."""
    best = {}
    for r in res["runs"]:
        if r["batch"] not in best or r["pairs_per_s"] > best[r["batch"]]["pairs_per_s"]:
            best[r["batch"]] = r
    res["best_mode_per_batch"] = {str(b): r["mode"] for b, r in best.items()}
    res["elapsed_s"] = time.perf_counter() - T0
    print(write(res, a.out) + f"wrote {Path(a.out) / 'gpu_pretrain'}.{{json,md}}", flush=True)
    return 0 if res["ddp"]["match"] and res.get("nhwc", {"match": True})["match"] else 1


def write(res: dict, out: str) -> str:
    """JSON + a markdown table; returns the table."""
    mark = lambda v, f: "-" if v is None else format(v, f)   # noqa: E731
    lines = [f"# SimSiam pretraining of {res['model']} on {res['device']} (torch {res['torch']}, CUDA {res['cuda']})",
             "", f"{res['encoder_params_M']:.1f} M encoder parameters; {res['macs_per_window_G']:.3f} GMAC per "
             f"30 s / 40 Hz window; {res['train_flops_per_pair_G']:.2f} GFLOP per training pair; {res['pairs']}.", "",
             "| batch | mode | warm-up s | step ms | pairs/s | peak GiB | loss first -> last | TFLOP/s | MFU |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = res["runs"] + ([res["ddp"]] if res["ddp"] else [])
    for r in rows:
        lines.append(f"| {r['batch']} | {r['mode']} | {r['warmup_s']:.1f} | {r['step_ms']:.1f} | "
                     f"{r['pairs_per_s']:.1f} | {mark(r['peak_mem_GiB'], '.2f')} | "
                     f"{r['first_loss']:+.4f} -> {r['last_loss']:+.4f} | "
                     f"{mark(r.get('tflops'), '.2f')} | {mark(r.get('mfu'), '.1%')} |")
    if res["ddp"]:
        d = res["ddp"]
        lines += ["", f"DDP ({d['backend']}, world size 1, synced BN) vs the {d['reference'].split()[0]} run at batch {d['batch']}: "
                      f"max |loss difference| over {len(d['losses'])} steps {d['max_abs_loss_diff']:.2e} "
                      f"(tol {d['tol']:g}): {'MATCH' if d['match'] else 'MISMATCH'}."]
    if res.get("nhwc"):
        n = res["nhwc"]
        lines += ["", f"The encoder as 2-D channels-last convolutions (`--nhwc`, same initial weights) vs the 1-D "
                      f"run at batch {n['batch']}: max |loss difference| {n['max_abs_loss_diff']:.2e} "
                      f"(tol {n['tol']:g}): {'MATCH' if n['match'] else 'MISMATCH'}."]
    for r in res["runs"]:
        if r.get("profile"):
            f = r["profile"]
            lines += ["", f"Where a step's time goes (batch {r['batch']}, {r['mode']}, {f['steps']} profiled steps): "
                          f"{f['wall_ms_per_step']:.1f} ms wall, {f['what']} busy {f['busy_ms_per_step']:.1f} ms "
                          f"({f['busy_fraction']:.0%}), {f['launches_per_step']:.0f} launches per step "
                          "(the profiler's own overhead included).", "",
                      f"| {'kernel' if f['what'] == 'device kernels' else 'operator'} | ms per step | calls per step |",
                      "|---|---|---|",
                      *(f"| `{k['name']}` | {k['ms_per_step']:.2f} | {k['calls_per_step']:.0f} |" for k in f["top"])]
    if res.get("best_mode_per_batch"):
        best = ", ".join(f"{b}: {m}" for b, m in res["best_mode_per_batch"].items())
        lines += ["", f"Fastest per batch: {best}."]
    lines += ["", f"Timing: {rows[0]['warmup_steps']} warm-up + {rows[0]['steps_timed']} timed steps, "
                  "torch.cuda.synchronize around the timed steps; pairs already on the device. FLOPs per pair = "
                  "2 views x 3 (fwd + bwd) x 2 x MACs; MFU against an ASSUMED peak of "
                  f"{mark(res['peak_tflops_assumed'], 'g')} TFLOP/s (H200 bf16 dense).", *res["notes"], ""]
    table = "\n".join(lines)
    Path(out).mkdir(parents=True, exist_ok=True)
    write_metrics(out, res, "gpu_pretrain.json")
    atomic_write_text(Path(out) / "gpu_pretrain.md", table)
    return table


if __name__ == "__main__":
    sys.exit(main())
