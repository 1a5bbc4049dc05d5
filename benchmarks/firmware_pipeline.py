"""The whole heart-rate monitor as firmware on Cortex-M4 / M33 / M55 (QEMU): bit-exactness and cost per stage.

    nice .venv/bin/python benchmarks/firmware_pipeline.py                    # ~5 min on 2 cores
    nice .venv/bin/python benchmarks/firmware_pipeline.py --epochs 2 --targets m4

1. A quantized spectral student (`spec_student_s`) from a QUICK training: `train_bins` for --epochs on the
   front-end spectra of TROIKA + wrist_exercise (`hr_corpus`), the two evaluation recordings' subjects
   left out, then `qat_bins` (--qat-epochs); decoder (sigma, floor) fitted on the training truth, its
   logit scale = the int graph's output scale, and the motion-subtracted PPG spectrum weighed into its
   emission when --evidence-weight > 0 (0 by default, as shipped; > 0 costs one more pass over the codes), its
   90 % interval the spread one (--interval; fitted on the training windows, as the benchmarks' folds ship it;
   the confidence's 16 calibration knots likewise). Accuracy is NOT the point here (see hr_spectral.py); the
   MAE printed is a sanity check only.
2. `render_pipeline` at the recording's device rate and PPG sensor count (TROIKA 125 Hz with ppg + ppg2,
   wrist_exercise 256 Hz with one), the Python integer reference `PipelineRef` on the whole recording
   (robust int16 replay gains, no gaps).
3. Per target: the pipeline firmware (`firmware_bench.pipeline_fw`, -O2, arm-none-eabi-gcc + picolibc)
   under qemu-system-arm with the instruction-counting plugin, pushes of 1 s of samples:
     - whole build: one count per sq_pipeline_push (everything, glue included), results compared with the
       reference bit for bit, stack high-water of the push call alone, flash / RAM of the image;
     - staged build (-DSQ_PL_BENCH): counts per stage call (front end per sample, front end per window,
       network, decoder), results compared again.
   Instructions are INSTRUCTIONS (QEMU TCG plugin), not cycles: the duty-cycle table's CPU share at 64 MHz
   assumes 1 instruction per cycle and is an ESTIMATE (flash wait states, SMLAD/LDRD timing not modelled).

Writes benchmarks/results/firmware_pipeline.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.compress.hr_qat import int8_logits, qat_bins, qat_cfg  # noqa: E402
from sqtool.core import DATA_ROOT_HELP, atomic_write_text, data_root_or_exit, write_metrics  # noqa: E402
from sqtool.data.hr_spectra import as_model_input, device_samples, hr_corpus, stream_channels  # noqa: E402
from sqtool.export import pipeline as PL  # noqa: E402
from sqtool.export.intgraph import extract_int_graph  # noqa: E402
from sqtool.export.metadata import build_metadata  # noqa: E402
from sqtool.firmware_bench import mcu  # noqa: E402
from sqtool.firmware_bench import pipeline_fw as PF  # noqa: E402
from sqtool.models import create_model, get_model_cfg  # noqa: E402
from sqtool.models.spectral import bin_grid  # noqa: E402
from sqtool.models.decoder import decoder_cfg, fit_conf_calibration, fit_spread_interval  # noqa: E402
from sqtool.models.hr_bins import BinTrainCfg, decode_int, fit_decoder, train_bins  # noqa: E402

EVAL = (("troika", "DATA_01_TYPE01"), ("wrist_exercise", None))      # None: the first labelled recording
MHZ = 64.0


def log(msg: str) -> None:
    print(msg, flush=True)


def pick_eval(corpus):
    out = []
    for ds, rid in EVAL:
        cands = [r for r in corpus if r.dataset == ds and (rid is None or r.record_id == rid)]
        if not cands:
            raise SystemExit(f"no evaluation recording {ds}/{rid or '(first)'}")
        out.append(cands[0])
    return out


def train_model(corpus, held, args):
    """Quick float training + QAT of spec_student_s on every subject but the held-out ones."""
    cfg = get_model_cfg(args.model)
    bins = bin_grid(cfg)
    keys = {r.key for r in held}
    train = [r for r in corpus if r.key not in keys]
    X = np.concatenate([as_model_input(r.x) for r in train])
    Y = np.concatenate([r.y for r in train])
    torch.manual_seed(args.seed)
    f = create_model(cfg)
    t0 = time.time()
    train_bins(f, X, Y, bins, BinTrainCfg(epochs=args.epochs, seed=args.seed))
    q = qat_bins(f, X, Y, bins, qat_cfg(BinTrainCfg(epochs=args.epochs, seed=args.seed), args.qat_epochs))
    graph = extract_int_graph(q)
    dec = fit_decoder([r.y for r in train], cfg.arch["bins_bpm"], cfg.hop_s, float(graph.output_scale))
    dec["evidence_weight"] = float(args.evidence_weight)      # > 0: the costlier emission, spectra read per bin
    centres = decoder_cfg(dec).centres
    raw, err, hr, net, truth = [], [], [], [], []     # the training windows decoded: the conf calibration's and
    for r in train:                                   # the spread interval's fit (this benchmark measures cost, not
        lq, scale = int8_logits(q, as_model_input(r.x))   # the confidence's or the interval's quality)
        d = decode_int(lq, dec, scale, r.valid, r.x)
        ok = np.isfinite(r.y)
        raw.append(d["conf"][ok])
        err.append(np.abs(d["hr"][ok] - r.y[ok]))
        hr.append(d["hr"])
        net.append(centres[np.argmax(lq, axis=1)])
        truth.append(r.y)
    if args.conf_calibration == "on":       # knots as a shipped model has them
        dec.update(fit_conf_calibration(np.concatenate(raw), np.concatenate(err), decoder_cfg(dec).span_bpm))
    if args.interval == "spread":           # hr -+ (c + k S), as sqtool quantize ships it from 3 subjects on
        fit = fit_spread_interval(hr, net, truth, [r.key for r in train], valid=[r.valid for r in train])
        if fit is None:
            raise SystemExit("no spread interval reaches 90 % on the training windows: run with --interval posterior")
        dec.update({"interval_mode": "spread", **{k: fit[k] for k in ("spread_shift", "spread_c_bpm", "spread_k")}})
    mc = q.cfg.to_dict()
    mc["decoder"] = dec
    log(f"trained {args.model} on {len(train)} recordings ({len(X)} windows) in {time.time() - t0:.0f} s; "
        f"decoder sigma {dec['sigma_bpm']:.2f} BPM floor {dec['floor']:.2g} evidence weight {dec['evidence_weight']:g} "
        f"conf calibration knots {len(dec.get('conf_calib_x', []))}; interval {decoder_cfg(dec).interval_text}")
    return q, graph, mc, len(train)


def sanity_mae(q, mc, graph, r):
    lq, scale = int8_logits(q, as_model_input(r.x))
    d = decode_int(lq, mc["decoder"], scale, r.valid, r.x)
    ok = np.isfinite(r.y)
    return float(np.abs(d["hr"][ok] - r.y[ok]).mean())


def same(a: dict, b: dict) -> bool:
    return len(a["index"]) == len(b["index"]) and all(np.array_equal(a[k], b[k]) for k in PL.RESULT_KEYS)


def bench_recording(rec_raw, r, mc, graph, md, args, work: Path) -> dict:
    chans, n_ppg = stream_channels(rec_raw, mc)                   # TROIKA: ppg + ppg2 (SQ_FE_N_PPG = 2)
    x16, fs = device_samples(rec_raw, chans)
    n = x16.shape[1]
    dur = n / fs
    c_dir = work / f"c_{int(fs)}_{n_ppg}"
    PL.render_pipeline(mc, graph, md, c_dir, fs_in=fs, n_ppg=n_ppg)
    t0 = time.time()
    ref = PL.PipelineRef(mc, graph, None, fs, n_ppg=n_ppg).run(x16)
    W = len(ref["index"])
    n_valid = int(ref["valid"].sum())
    log(f"{r.dataset}/{r.record_id}: {n} samples at {fs:g} Hz ({dur:.0f} s), {W} results "
        f"(reference {time.time() - t0:.1f} s)")
    chunk = int(round(fs))                                       # 1 s of samples per push
    host = PF.run_pipeline(PF.build_pipeline(c_dir, "host", work / "host", chunk=chunk), x16)
    row = {"dataset": r.dataset, "record": r.record_id, "fs_in_hz": fs, "ppg_sensors": n_ppg, "samples": n, "seconds": dur,
           "results": W, "scored_windows": n_valid, "chunk_samples": chunk,
           "host_bit_exact": same(host.results, ref), "targets": {}}
    macs = graph.macs
    for t in args.targets:
        t1 = time.time()
        whole = PF.build_pipeline(c_dir, t, work / t, staged=False, chunk=chunk)
        rw = PF.run_pipeline(whole, x16, timeout=1200)
        staged = PF.build_pipeline(c_dir, t, work / t, staged=True, chunk=chunk)
        rs = PF.run_pipeline(staged, x16, timeout=1200)
        sizes = PF.pipeline_sizes(whole, rw.stack_high_water)
        st = rs.stage_insns
        total = int(rw.counts.sum())
        staged_sum = sum(st[s] for s in ("frontend_stream", "frontend_window", "network", "decoder"))
        per_hop = {
            "frontend_stream": st["frontend_stream"] / W, "frontend_window": st["frontend_window"] / W,
            "frontend": st["frontend"] / W, "network": st["network"] / max(n_valid, 1), "decoder": st["decoder"] / W,
            "glue": (total - staged_sum) / W, "total": total / W,
        }
        # the steady-state hop: one hop of per-sample work + one window + one network run + one decoder step
        hop_s = float(mc["hop_s"])
        per_hop["frontend_stream_per_hop_of_signal"] = st["frontend_stream"] / dur * hop_s
        per_hop["steady_state_hop"] = (per_hop["frontend_stream_per_hop_of_signal"] + per_hop["frontend_window"]
                                       + per_hop["network"] + per_hop["decoder"] + per_hop["glue"])
        ips = total / dur
        tr = {"bit_exact_whole": same(rw.results, ref), "bit_exact_staged": same(rs.results, ref),
              "instructions_total": total, "stage_instructions": st, "per_hop": per_hop,
              "network_macs": macs, "network_insn_per_mac": per_hop["network"] / macs,
              "network_vs_smlad_floor": per_hop["network"] / (macs / 2),
              "instructions_per_second_of_signal": ips, "cpu_share_at_64mhz_estimate": ips / (MHZ * 1e6),
              "stack_high_water_push_bytes": rw.stack_high_water, "flash_bytes": sizes["flash_bytes"],
              "ram_static_bytes": sizes["ram_static_bytes"], "objects": sizes["objects"],
              "pipeline_state_bytes": rw.stats.get("state_bytes"),
              "pipeline_ram_bytes": int(rw.stats.get("state_bytes", 0)) + sizes["objects"]["network"]["rw"]
              + int(rw.stack_high_water or 0),
              "pipeline_flash_bytes": sum(o["code"] + o["const"] for o in sizes["objects"].values())}
        row["targets"][t] = tr
        log(f"  {t}: bit-exact {tr['bit_exact_whole'] and tr['bit_exact_staged']}, {per_hop['total'] / 1e3:.0f} k "
            f"insn/hop (fe {per_hop['frontend'] / 1e3:.0f} k, net {per_hop['network'] / 1e3:.0f} k, dec "
            f"{per_hop['decoder'] / 1e3:.0f} k), flash {sizes['flash_bytes']} B, stack {rw.stack_high_water} B "
            f"[{time.time() - t1:.0f} s]")
    return row


def write_markdown(res: dict, path: Path) -> None:
    L = [f"# Whole heart-rate pipeline as firmware: {res['model']} (front end + int8 network + HMM decoder)", "",
         f"Model: `{res['model']}` quick-trained ({res['epochs']} epochs + {res['qat_epochs']} QAT epochs, "
         f"{res['train_recordings']} training recordings, evaluation subjects held out), {res['macs']} MACs per "
         f"window; decoder weight of the motion-subtracted PPG spectrum {res.get('evidence_weight', 0.0):g}; "
         f"conf calibration knots {res.get('conf_calib_knots', 0)}; interval {res.get('interval', 'posterior')}; rounding "
         f"`{PL.ROUNDING}`; -O2, arm-none-eabi-gcc + picolibc; QEMU {res['tools'].get('qemu')}.",
         "Instruction counts are instructions executed (QEMU TCG plugin), not cycles.", "",
         "## Bit-exactness (every result field, every hop, vs the Python integer reference)", "",
         "| recording | fs | results | scored | host | " + " | ".join(res["targets"]) + " |",
         "|---|---|---|---|---|" + "---|" * len(res["targets"])]
    for r in res["recordings"]:
        cells = [("yes" if t["bit_exact_whole"] and t["bit_exact_staged"] else "NO") for t in r["targets"].values()]
        L.append(f"| {r['dataset']}/{r['record']} | {r['fs_in_hz']:g} Hz | {r['results']} | {r['scored_windows']} | "
                 f"{'yes' if r['host_bit_exact'] else 'NO'} | " + " | ".join(cells) + " |")
    L += ["", "## Instructions per 2 s hop", "",
          "front end = per-sample resampler + band-pass (stream) + per-window spectra and codes (window); network "
          "per scored window; glue = whole push calls minus the stages (loop, result struct, stage calls); total "
          "= all push calls / results. SMLAD floor = MACs / 2.", "",
          "| recording | target | fe stream | fe window | front end | network | net / floor | decoder | glue | "
          "total / hop |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["recordings"]:
        for t, v in r["targets"].items():
            h = v["per_hop"]
            L.append(f"| {r['dataset']} {r['fs_in_hz']:g} Hz | {t} | {h['frontend_stream'] / 1e3:.1f} k | "
                     f"{h['frontend_window'] / 1e3:.1f} k | {h['frontend'] / 1e3:.1f} k | {h['network'] / 1e3:.1f} k | "
                     f"{v['network_vs_smlad_floor']:.2f}x | {h['decoder'] / 1e3:.1f} k | {h['glue'] / 1e3:.1f} k | "
                     f"**{h['total'] / 1e3:.0f} k** |")
    L += ["", "## Memory (whole image = pipeline + bench harness + picolibc; pipeline = its own objects)", "",
          "| recording | target | image flash | image static RAM | stack of one push | pipeline flash (code + "
          "const) | pipeline state | network arena | pipeline RAM (state + arena + stack) |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in res["recordings"]:
        for t, v in r["targets"].items():
            L.append(f"| {r['dataset']} {r['fs_in_hz']:g} Hz | {t} | {v['flash_bytes']} B | {v['ram_static_bytes']} B | "
                     f"{v['stack_high_water_push_bytes']} B | {v['pipeline_flash_bytes']} B | "
                     f"{v['pipeline_state_bytes']} B | {v['objects']['network']['rw']} B | {v['pipeline_ram_bytes']} B |")
    L += ["", "## Duty cycle (ESTIMATE: 1 instruction per cycle at 64 MHz; no wait states or memory timing)", "",
          "| recording | target | instructions / s of signal | CPU share at 64 MHz |", "|---|---|---|---|"]
    for r in res["recordings"]:
        for t, v in r["targets"].items():
            L.append(f"| {r['dataset']} {r['fs_in_hz']:g} Hz | {t} | {v['instructions_per_second_of_signal'] / 1e3:.0f} k"
                     f" | {100 * v['cpu_share_at_64mhz_estimate']:.2f} % |")
    L += ["", "Sanity (not the point of this benchmark): int8 + fixed-point decoder HR MAE "
          + ", ".join(f"{k} {v:.2f} BPM" for k, v in res["sanity_mae_bpm"].items()) + ".",
          "", f"Reproduce: `{res['command']}`", ""]
    atomic_write_text(path, "\n".join(L))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="spec_student_s")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--targets", default="m4,m33,m55")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evidence-weight", type=float, default=0.0,
                    help="the decoder's weight of the motion-subtracted PPG spectrum (0 = the network alone; > 0 "
                         "costs one pass over the window's codes per hop)")
    ap.add_argument("--conf-calibration", choices=("on", "off"), default="on",
                    help="on: the decoder carries 16 conf calibration knots, as a model from sqtool quantize does")
    ap.add_argument("--interval", choices=("spread", "posterior"), default="spread",
                    help="the decoder's 90 %% interval: spread (hr -+ (c + k S), what the benchmarks' folds ship) or "
                         "the posterior's central mass")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    args = ap.parse_args()
    data = Path(data_root_or_exit(args.data_root, ap.error))
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    torch.set_num_threads(2)
    mcu.require_tools("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
    t0 = time.time()
    cfg = get_model_cfg(args.model)
    corpus = hr_corpus(data, ("troika", "wrist_exercise"), cfg)
    log(f"corpus: {len(corpus)} recordings in {time.time() - t0:.0f} s")
    held = pick_eval(corpus)
    q, graph, mc, n_train = train_model(corpus, held, args)
    md = build_metadata({"model_cfg": mc, "kind": "student_int8"}, "quick-trained (benchmark)", graph)
    from sqtool.data.readers import read_dataset
    res = {"model": args.model, "epochs": args.epochs, "qat_epochs": args.qat_epochs, "train_recordings": n_train,
           "macs": graph.macs, "targets": args.targets, "rounding": PL.ROUNDING, "tools": mcu.tool_versions(),
           "evidence_weight": float(mc["decoder"]["evidence_weight"]),
           "conf_calib_knots": len(mc["decoder"].get("conf_calib_x", [])),
           "interval": decoder_cfg(mc["decoder"]).interval_text,
           "sanity_mae_bpm": {}, "recordings": [],
           "command": "nice .venv/bin/python benchmarks/firmware_pipeline.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        for r in held:
            raw = next(x for x in read_dataset(data / r.dataset, kind=r.dataset) if str(x.record_id) == r.record_id)
            res["sanity_mae_bpm"][f"{r.dataset}/{r.record_id}"] = sanity_mae(q, mc, graph, r)
            res["recordings"].append(bench_recording(raw, r, mc, graph, md, args, Path(tmp)))
    res["seconds"] = time.time() - t0
    out = Path(args.out)
    write_metrics(out, res, name="firmware_pipeline.json")
    write_markdown(res, out / "firmware_pipeline.md")
    ok = all(r["host_bit_exact"] and all(t["bit_exact_whole"] and t["bit_exact_staged"] for t in r["targets"].values())
             for r in res["recordings"])
    log(f"wrote {out / 'firmware_pipeline.md'} in {res['seconds']:.0f} s; bit-exact everywhere: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
