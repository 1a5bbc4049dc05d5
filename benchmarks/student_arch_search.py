"""Architecture search for `cnn1d_student_s` on wrist HR: does a wider receptive field help in budget?

The compress benchmark's student_s sees only ~86 input samples (2.15 s at 40 Hz) per output position
before the mean over time; the hypothesis is that this limits its heart-rate accuracy. This script
trains the current architecture and a few alternatives that widen the receptive field, all inside the
`cnn1d_student_s` budgets (<= 16,000 int8 weights, <= 1,000,000 MACs per 8 s window), with the
same op set (Conv1d + ReLU, mean over time, FC) and the SAME-padding rule, on leave-one-subject-out
folds of the SP Cup 2015 (TROIKA) training set.

Training is the compress stage's float student fit (`sqtool.compress.distill.fit`) on labels only
(no teacher, alpha = 0), PPG channel only, identical epochs / lr / seeds for every architecture, so
the only difference between rows is the architecture. Each fold trains from scratch.

    python benchmarks/student_arch_search.py                      # 4 archs x 4 folds, seed 0
    python benchmarks/student_arch_search.py --seeds 0,1 --archs current,t10_6stage

Results: benchmarks/results/student_arch_search.{json,md} (merged across invocations by (arch, seed,
fold), so seeds can be run in separate processes).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NAME = "student_arch_search"

# (out_channels, kernel, stride) per conv; every candidate: stride 2 -> even kernel, stride 1 -> odd kernel
CANDIDATES = {
    # the registry's cnn1d_student_s before this search: 4 stride-2 stages, T 320 -> 20, RF 86 samples
    "current": [[16, 8, 2], [24, 6, 2], [32, 4, 2], [40, 4, 2], [40, 3, 1]],
    # one more stride-2 stage (T 320 -> 10), channels trimmed to stay under 16 k weights: RF 166
    "t10_6stage": [[16, 8, 2], [24, 6, 2], [24, 4, 2], [32, 4, 2], [32, 4, 2], [32, 3, 1]],
    # six stride-2 stages (T 320 -> 5), the last conv strided too: RF 198
    "t5_6stride": [[16, 8, 2], [20, 6, 2], [24, 4, 2], [32, 4, 2], [32, 4, 2], [32, 4, 2]],
    # larger kernels early with fewer channels (cheap in weights at high T), T -> 10: RF 218
    "bigk_t10": [[8, 16, 2], [16, 12, 2], [24, 8, 2], [28, 6, 2], [32, 4, 2], [32, 3, 1]],
    # large early kernels AND six stride-2 stages (T -> 5): RF 250
    "bigk_t5": [[8, 16, 2], [16, 12, 2], [24, 8, 2], [24, 6, 2], [32, 4, 2], [32, 4, 2]],
}
INSTR_PER_MAC_M4 = 1.54        # measured for the generated C kernels on Cortex-M4 (benchmarks/c_kernels_m4)


def receptive_field(convs) -> int:
    r, j = 1, 1
    for _, k, s in convs:
        r += (k - 1) * j
        j *= s
    return r


def arch_cfg(base, convs):
    return base.replace(arch={"convs": [list(c) for c in convs]})


def run_one(td, base_cfg, convs, held: str, seed: int, epochs: int, lr: float) -> dict:
    import torch

    from sqtool.compress import distill as D
    from sqtool.models import create_model

    cfg = arch_cfg(base_cfg, convs)
    spec = D.output_spec(cfg)
    tr = np.flatnonzero(td.groups != held)
    te = np.flatnonzero(td.groups == held)
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = create_model(cfg)
    yn = D.normalise_targets(td.y[tr], spec)
    fcfg = D.FitCfg(epochs=epochs, lr=lr, alpha=0.0, quality_weight=0.0, seed=seed)
    t0 = time.perf_counter()
    hist = D.fit(model, td.x[tr], yn, spec, fcfg)
    secs = time.perf_counter() - t0
    pred = D.denormalise(D.predict(model, td.x[te]), spec)[:, 0]                  # (N_te,) BPM
    err = np.abs(pred - td.y[te, 0])
    return {"abs_err_sum": float(err.sum()), "windows": int(len(te)), "mae": float(err.mean()),
            "train_windows": int(len(tr)), "seconds": secs, "s_per_epoch": hist["seconds_per_epoch"]}


def summarise(res: dict) -> dict:
    """Pooled MAE over folds per (arch, seed), then mean / spread over seeds per arch."""
    out = {}
    for arch, by_seed in res["runs"].items():
        pooled = {}
        for seed, folds in by_seed.items():
            if set(folds) >= set(res["folds"]):
                n = sum(folds[f]["windows"] for f in res["folds"])
                pooled[seed] = sum(folds[f]["abs_err_sum"] for f in res["folds"]) / n
        if pooled:
            v = np.array(list(pooled.values()))
            out[arch] = {"pooled_mae_by_seed": pooled, "pooled_mae_mean": float(v.mean()),
                         "seed_range": float(v.max() - v.min()) if len(v) > 1 else None}
    return out


def write_md(res: dict) -> str:
    summ = res["summary"]
    lines = ["# Student architecture search: receptive field vs wrist-HR error (cnn1d_student_s budgets)", "",
             f"Machine: {res['machine']}; 1 torch thread. Last update {res['updated']}.",
             f"Command(s): {'; '.join(sorted(set(res['commands'])))}", "",
             f"Training: `sqtool.compress.distill.fit` on labels only (no teacher), PPG only, {res['epochs']} "
             f"epochs AdamW + OneCycle, lr {res['lr']}, batch 64, float students (no QAT), trained from scratch "
             f"per fold. LOSO folds on SP Cup 2015 (TROIKA), held-out subjects {', '.join(res['folds'])}. "
             "Identical seeds / epochs for every architecture. MAE pooled over the held-out windows of the "
             f"{len(res['folds'])} folds.", "",
             "Budgets for cnn1d_student_s: <= 16,000 int8 weights, <= 1,000,000 MACs per 8 s window (T = 320). "
             f"M4 cycles estimated as MACs x {INSTR_PER_MAC_M4} instr/MAC (the generated C kernels).", "",
             "| arch | convs (out, k, s) | RF samples (s) | T out | int8 weights (PPG / PPG+acc) | MACs (PPG / PPG+acc) | "
             "est. M4 instr (PPG+acc) | "
             "pooled MAE by seed (BPM) | mean | seed range |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arch, info in res["archs"].items():
        s = summ.get(arch)
        by_seed = ", ".join(f"s{k}: {v:.2f}" for k, v in sorted(s["pooled_mae_by_seed"].items())) if s else "-"
        mean = f"{s['pooled_mae_mean']:.2f}" if s else "-"
        rng = f"{s['seed_range']:.2f}" if s and s["seed_range"] is not None else "-"
        lines.append(f"| {arch} | `{info['convs']}` | {info['rf']} ({info['rf'] / 40:.2f}) | {info['t_out']} | "
                     f"{info['int8_weights']:,} / {info['int8_weights_4ch']:,} | {info['macs']:,} / {info['macs_4ch']:,} | "
                     f"{info['macs_4ch'] * INSTR_PER_MAC_M4:,.0f} | "
                     f"{by_seed} | {mean} | {rng} |")
    lines += ["", "Per fold MAE (BPM):", "",
              "| arch | seed | " + " | ".join(res["folds"]) + " | s/epoch |",
              "|---|---|" + "---|" * len(res["folds"]) + "---|"]
    for arch, by_seed in res["runs"].items():
        for seed, folds in sorted(by_seed.items()):
            cells = [f"{folds[f]['mae']:.2f}" if f in folds else "-" for f in res["folds"]]
            spe = np.mean([v["s_per_epoch"] for v in folds.values()])
            lines.append(f"| {arch} | {seed} | " + " | ".join(cells) + f" | {spe:.2f} |")
    if res.get("conclusion"):
        lines += ["", "## Conclusion", "", res["conclusion"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from sqtool.core import DATA_ROOT_HELP, data_root_or_exit
    from sqtool.core.io import read_json
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--archs", default=",".join(CANDIDATES))
    ap.add_argument("--folds", default="01,02,03,05", help="held-out subjects, one per fold")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--results-name", default=NAME, help="results file stem (e.g. a confirmation run)")
    ap.add_argument("--conclusion", default=None, help="text for the Markdown conclusion (no training)")
    args = ap.parse_args(argv)

    import platform

    import torch
    torch.set_num_threads(1)
    from sqtool.data.tasks import load_task, task_model_cfg
    from sqtool.models import get_model_cfg
    from sqtool.models.student import STUDENT_BUDGETS, student_budget

    folds = [f for f in args.folds.split(",") if f]
    path = RESULTS / f"{args.results_name}.json"
    res = read_json(path) if path.is_file() else {}
    if res and (res.get("epochs") != args.epochs or res.get("lr") != args.lr or res.get("folds") != folds):
        res = {}                                    # a different protocol: start over
    res.setdefault("runs", {})
    res.setdefault("commands", [])
    res.update(epochs=args.epochs, lr=args.lr, folds=folds,
               machine=f"{platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}")
    base = task_model_cfg("hr", get_model_cfg("cnn1d_student_s"), channels=["ppg"])
    base = base.replace(outputs=("hr_bpm", "quality_logit"), units=("bpm", "logit"),
                        target_mean=(120.0, 0.0), target_std=(40.0, 1.0))       # as compress builds it
    limits = STUDENT_BUDGETS["cnn1d_student_s"]
    res["archs"] = {}
    for arch, convs in CANDIDATES.items():
        b = student_budget(arch_cfg(base, convs))
        assert b["int8_weights"] <= limits["int8_weights"] and b["macs"] <= limits["macs"], (arch, b)
        # the firmware benchmark runs the same student on PPG + 3-axis acc: it must fit there too
        b4 = student_budget(arch_cfg(base, convs).replace(channels=("ppg", "acc_x", "acc_y", "acc_z")))
        assert b4["int8_weights"] <= limits["int8_weights"] and b4["macs"] <= limits["macs"], (arch, b4)
        assert base.n_samples % int(np.prod([s for _, _, s in convs])) == 0, arch
        res["archs"][arch] = {"convs": convs, "rf": receptive_field(convs), "t_out": b["layers"][-2]["t_in"],
                              "int8_weights": b["int8_weights"], "macs": b["macs"],
                              "int8_weights_4ch": b4["int8_weights"], "macs_4ch": b4["macs"]}
    if args.conclusion is None:
        res["commands"].append("python benchmarks/student_arch_search.py " +
                               " ".join(argv if argv is not None else sys.argv[1:]))
        td = load_task("hr", data_root_or_exit(args.data_root, ap.error), base)
        for seed in [int(s) for s in args.seeds.split(",")]:
            for arch in args.archs.split(","):
                for held in folds:
                    r = run_one(td, base, CANDIDATES[arch], held, seed, args.epochs, args.lr)
                    print(f"{arch} seed {seed} fold {held}: MAE {r['mae']:.2f} BPM ({r['s_per_epoch']:.2f} s/epoch)",
                          flush=True)
                    # re-read and merge so parallel invocations (other seeds) do not overwrite each other
                    cur = read_json(path) if path.is_file() else {}
                    runs = cur.get("runs", {}) if cur.get("folds") == folds and cur.get("epochs") == args.epochs else {}
                    for a, bs in res["runs"].items():
                        for s, fs in bs.items():
                            runs.setdefault(a, {}).setdefault(s, {}).update(fs)
                    runs.setdefault(arch, {}).setdefault(str(seed), {})[held] = r
                    res["runs"] = runs
                    res["commands"] = sorted(set(res["commands"]) | set(cur.get("commands", [])))
                    _write(res, path)
    else:
        res["conclusion"] = args.conclusion
        _write(res, path)
    for arch, s in res["summary"].items():
        print(f"{arch}: pooled MAE {s['pooled_mae_by_seed']}")
    return 0


def _write(res: dict, path: Path) -> None:
    """JSON + Markdown next to each other (path = results/<name>.json)."""
    from sqtool.core import atomic_write_text
    from sqtool.core.io import dumps_json

    res["updated"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res["summary"] = summarise(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dumps_json(res, indent=2))
    atomic_write_text(path.with_suffix(".md"), write_md(res))


if __name__ == "__main__":
    sys.exit(main())
