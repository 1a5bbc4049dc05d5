"""Causal fixed-point front end vs a zero-phase float one: same model, same folds, A/B on SP Cup LOSO.

    nice -n 19 .venv/bin/python benchmarks/frontend_phase_ab.py            # SP Cup 2015, LOSO over 12
    nice -n 19 .venv/bin/python benchmarks/frontend_phase_ab.py --smoke    # synthetic, one tiny fold

Question (sqtool issue 10): does the device front end (causal, integer) cost accuracy against the
textbook offline one (zero-phase, float)? Goal: causal - zero-phase <= +0.3 BPM (mean of subjects' MAE).

Arm A "device": the codes every spectral model is trained on, `data.hr_spectra.record_spectra` (the
    fixed-point causal front end `data.frontend`: polyphase FIR to 16 Hz, causal Q30 Butterworth
    band-pass, block floating point, integer DFT, integer max normalisation).
Arm B "zero-phase float", written HERE (not in the package): the same float recording (NaN samples held
    at the last good value, as `device_stream` does), no int16 quantisation; scipy `resample_poly` to the
    model rate; zero-phase band-pass `sosfiltfilt(butter(order, band))` (the device's order and band)
    over the whole recording; the same T-sample windows at the same starts (same window count, so the
    same truth per window); periodic Hann; power |sum x h e^(-2 pi i f n / fs)|^2 at the same bin
    frequencies; per-channel max normalisation 254 P / Pmax - 127, rounded to int8 (the model input
    format of both arms: code / 127).
Everything else is shared: the float student (`spec_student_s`, labels only, CE on Gaussian targets),
its seeds (every network is initialised with torch.manual_seed(seed), so both arms start from the same
weights), epochs, the LOSO folds (`data.tasks.subject_folds`, DATA_S04_T01 left out), the decoder
(sigma / floor / temperature chosen by inner CV over the training subjects: `inner_folds` folds of the
same student on the SAME arm's codes, `models.hr_bins.select_decoder`), causal forward decoding
(`decode_float`). Per subject: MAE of each arm, the paired difference A - B with a 95 % moving-block
bootstrap CI over the subject's windows (blocks of `block` windows: 8 s windows every 2 s and a tracking
decoder make neighbouring errors correlated; the i.i.d. CI is kept in the JSON), and the per-window
argmax MAE of both arms. Mean of subjects with a 95 % bootstrap CI over the subjects.

Writes <out>/frontend_phase_ab.{json,md} (--smoke: frontend_phase_ab_smoke.*).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import (DATA_ROOT_HELP, SqtoolError, atomic_write_text, data_root_or_exit,  # noqa: E402
                         signal_channels, write_metrics)
from sqtool.core.metrics import bootstrap_mean_ci  # noqa: E402
from sqtool.data.frontend import bin_bpm  # noqa: E402
from sqtool.data.hr_spectra import EXCLUDED, HrRecording, as_model_input, frontend_cfg, record_spectra  # noqa: E402
from sqtool.data.tasks import subject_folds  # noqa: E402
from sqtool.models import create_model, get_model_cfg  # noqa: E402
from sqtool.models.hr_bins import (BinTrainCfg, decode_float, fit_decoder, predict_logits,  # noqa: E402
                                   select_decoder, train_bins)
from sqtool.models.spectral import bin_grid  # noqa: E402

ARMS = ("device", "zerophase")
GOAL_BPM = 0.3


# ----------------------------------------------------------------------------- arm B: zero-phase float
def float_samples(record, channels) -> tuple[np.ndarray, float]:
    """(C, N) float64 samples and their rate; NaN/Inf held at the last good value (as `device_stream`)."""
    from sqtool.data.record import channel_matrix
    x, fs = channel_matrix(record, channels)
    bad = ~np.isfinite(x)
    if bad.any():
        n = x.shape[1]
        for c in range(len(x)):
            idx = np.maximum.accumulate(np.where(~bad[c], np.arange(n), -1))
            first = x[c][~bad[c]][0] if (~bad[c]).any() else 0.0
            x[c] = np.where(idx >= 0, x[c][np.maximum(idx, 0)], first)
    return x, fs


def zero_phase_codes(record, scfg, n_windows: int) -> np.ndarray:
    """The zero-phase float front end: int8 (W, F, C) codes on the device's windows and bins."""
    from scipy import signal as sps
    x, fs_in = float_samples(record, signal_channels(scfg.channels))       # (C_in, N): ppg, acc x, y, z
    fe = frontend_cfg(scfg, fs_in)
    r = Fraction(str(float(fe.fs))) / Fraction(str(float(fs_in)))
    y = sps.resample_poly(x, r.numerator, r.denominator, axis=1)            # (C, ceil(N L / M))
    sos = sps.butter(fe.filter_order, [float(fe.band[0]), float(fe.band[1])], btype="bandpass",
                     fs=float(fe.fs), output="sos")
    y = sps.sosfiltfilt(sos, y, axis=1)                                     # zero phase, whole recording
    T, hop = int(round(fe.window_s * fe.fs)), int(round(fe.hop_s * fe.fs))
    W = (y.shape[1] - T) // hop + 1 if y.shape[1] >= T else 0
    if W != n_windows:
        raise SqtoolError(f"{record.dataset}/{record.record_id}: zero-phase arm has {W} windows, "
                          f"the device {n_windows}")
    frames = np.lib.stride_tricks.sliding_window_view(y, T, axis=1)[:, np.arange(W) * hop]   # (C, W, T)
    n = np.arange(T)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / T)                            # periodic, as the device
    f_hz = bin_bpm(fe) / 60.0                                               # (F,)
    E = np.exp(-2j * np.pi * f_hz[None, :] * n[:, None] / fe.fs)            # (T, F)
    p = np.abs((frames * hann) @ E) ** 2                                    # (C_in, W, F)
    if fe.n_channels == 2:                                                  # acc: the axes' powers summed
        p = np.concatenate([p[:1], p[1:].sum(axis=0, keepdims=True)])       # (C, W, F)
    pmax = p.max(axis=2, keepdims=True)
    code = np.where(pmax > 0, 254.0 * p / np.where(pmax > 0, pmax, 1.0) - 127.0, -127.0)
    return np.ascontiguousarray(np.clip(np.round(code), -127, 127).astype(np.int8).transpose(1, 2, 0))  # (W, F, C)


def load_pairs(source, scfg, log, n_synth: int = 3, synth_s: float = 120.0) -> dict[str, list[HrRecording]]:
    """{arm: recordings}: the same records, windows and truth through both front ends."""
    if source == "synthetic":
        from sqtool.data.synthetic import synth_corpus
        recs = synth_corpus(n_subjects=n_synth, duration_s=synth_s, seed=0, fs=125.0, af_fraction=0.0)
    else:
        from sqtool.data.readers import read_dataset
        recs = []
        for rec in sorted(read_dataset(Path(source) / "troika", kind="troika"), key=lambda r: r.record_id):
            if rec.record_id in EXCLUDED:
                log(f"troika/{rec.record_id}: left out (likely an SP Cup test-set subject)")
            elif "hr" not in rec.labels:
                log(f"troika/{rec.record_id}: no heart-rate truth, left out")
            else:
                recs.append(rec)
    if not recs:
        raise SqtoolError(f"frontend_phase_ab: no labelled recording under {source}")
    dev, zp, cache = [], [], {}
    for rec in recs:
        a = record_spectra(rec, scfg, cache)                                # exactly what hr_corpus builds
        dev.append(a)
        zp.append(dataclasses.replace(a, x=zero_phase_codes(rec, scfg, len(a.x))))
    return {"device": dev, "zerophase": zp}


def code_agreement(pairs) -> dict:
    """How far apart the two front ends' codes are (all windows): mean |code A - code B| per channel and
    how often the PPG spectrum peaks in the same bin."""
    a = np.concatenate([r.x for r in pairs["device"]]).astype(np.int16)     # (W, F, C)
    b = np.concatenate([r.x for r in pairs["zerophase"]]).astype(np.int16)
    return {"mean_abs_code_diff_per_channel": [float(v) for v in np.abs(a - b).mean(axis=(0, 1))],
            "ppg_peak_same_bin": float(np.mean(a[..., 0].argmax(1) == b[..., 0].argmax(1))),
            "ppg_peak_within_1_bin": float(np.mean(np.abs(a[..., 0].argmax(1) - b[..., 0].argmax(1)) <= 1))}


# ----------------------------------------------------------------------------- one arm, one fold
def fresh_student(scfg, seed: int):
    torch.manual_seed(seed)                     # same initial weights in both arms
    return create_model(scfg)


def fit(train, scfg, bins, epochs: int, seed: int):
    m = fresh_student(scfg, seed)
    train_bins(m, np.concatenate([as_model_input(r.x) for r in train]), np.concatenate([r.y for r in train]),
               bins, BinTrainCfg(epochs=epochs, seed=seed))
    return m


def inner_decoder(train, scfg, bins, args) -> dict:
    """Decoder chosen on out-of-fold logits of the training subjects (as benchmarks/hr_spectral.py)."""
    rkeys = np.array([r.key for r in train])
    lg, ys, gs, vs = [], [], [], []
    for _, te in subject_folds(rkeys, args.inner_folds, args.seed):
        g = set(rkeys[te])
        m = fit([r for r in train if r.key not in g], scfg, bins, args.inner_epochs, args.seed)
        for r in train:
            if r.key in g:
                lg.append(predict_logits(m, as_model_input(r.x)))
                ys.append(r.y)
                gs.append(r.key)
                vs.append(r.valid)
    base = fit_decoder([r.y for r in train], scfg.arch["bins_bpm"], scfg.hop_s)
    return select_decoder(lg, ys, gs, base, valid=vs)


def run_fold(train, test, scfg, args) -> tuple[list[dict], dict]:
    bins = bin_grid(scfg)
    dec = inner_decoder(train, scfg, bins, args)
    m = fit(train, scfg, bins, args.epochs, args.seed)
    rows = []
    for r in test:
        lg = predict_logits(m, as_model_input(r.x))
        rows.append({"subject": r.key, "record": r.record_id, "y": r.y,
                     "hr": decode_float(lg, dec, r.valid, r.x)["hr"], "raw": bins[lg.argmax(1)]})
    return rows, {k: dec[k] for k in ("sigma_bpm", "floor", "temperature", "inner_mae")}


# ----------------------------------------------------------------------------- statistics
def block_bootstrap_ci(v, block: int, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """95 % CI of the mean of a serially correlated sequence: moving-block bootstrap (blocks of `block`)."""
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return float("nan"), float("nan")
    b = max(1, min(block, n))
    k = -(-n // b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - b + 1, (n_boot, k))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(n_boot, -1)[:, :n]
    m = v[idx].mean(axis=1)
    return float(np.percentile(m, 100 * alpha / 2)), float(np.percentile(m, 100 * (1 - alpha / 2)))


def summarise(rows: dict[str, list[dict]], block: int) -> dict:
    """rows[arm]: per-recording results in the same order for both arms."""
    subjects = sorted({r["subject"] for r in rows["device"]})
    table = []
    for s in subjects:
        ra = [r for r in rows["device"] if r["subject"] == s]
        rb = [r for r in rows["zerophase"] if r["subject"] == s]
        y = np.concatenate([r["y"] for r in ra])
        ok = np.isfinite(y)
        d = {"subject": s, "windows": int(ok.sum())}
        for kind in ("hr", "raw"):
            ea = np.abs(np.concatenate([r[kind] for r in ra]) - y)[ok]
            eb = np.abs(np.concatenate([r[kind] for r in rb]) - y)[ok]
            pre = "" if kind == "hr" else "raw_"
            d[pre + "device"], d[pre + "zerophase"] = float(ea.mean()), float(eb.mean())
            d[pre + "diff"] = float((ea - eb).mean())
            d[pre + "diff_ci"] = block_bootstrap_ci(ea - eb, block)
            d[pre + "diff_ci_iid"] = bootstrap_mean_ci(ea - eb)
        table.append(d)
    summ = {"subjects": table, "n_subjects": len(table)}
    for pre in ("", "raw_"):
        for k in ("device", "zerophase", "diff"):
            summ[f"{pre}{k}_mean_of_subjects"] = float(np.mean([d[pre + k] for d in table]))
        diffs = [d[pre + "diff"] for d in table]
        summ[f"{pre}diff_ci_over_subjects"] = bootstrap_mean_ci(diffs) if len(diffs) > 1 else (float("nan"),) * 2
        summ[f"{pre}device_worse_on"] = int(sum(v > 0 for v in diffs))
    d, (lo, hi) = summ["diff_mean_of_subjects"], summ["diff_ci_over_subjects"]
    summ["goal_bpm"] = GOAL_BPM
    summ["goal_met_point"] = bool(d <= GOAL_BPM)
    summ["goal_met_ci_upper"] = bool(np.isfinite(hi) and hi <= GOAL_BPM)
    summ["verdict"] = (f"causal - zero-phase = {d:+.3f} BPM (mean of subjects, 95 % CI over subjects "
                       f"[{lo:+.3f}, {hi:+.3f}]): goal <= +{GOAL_BPM} BPM "
                       + ("MET, the CI's upper end included" if summ["goal_met_ci_upper"] else
                          "met on the point estimate, not by the CI's upper end" if summ["goal_met_point"] else
                          "NOT met"))
    return summ


def _ci(c) -> str:
    return f"[{c[0]:+.2f}, {c[1]:+.2f}]"


def markdown(summ, res) -> str:
    a = res["settings"]
    L = [f"# {__doc__.splitlines()[0]}", "",
         f"**Verdict:** {summ['verdict']}.", "",
         f"Model `{a['student']}` (float, labels only), {a['epochs']} epochs (inner CV: {a['inner_folds']} folds x "
         f"{a['inner_epochs']} epochs), seed {a['seed']}, causal forward decoding, decoder chosen by inner CV per arm. "
         f"{res['data']}. {res['epochs_note']}", "",
         "| subject | windows | MAE device (causal, fixed point) | MAE zero-phase float | device - zero-phase "
         f"[95 % block CI] | argmax device | argmax zero-phase | argmax diff [95 % block CI] |",
         "|---|---|---|---|---|---|---|---|"]
    for d in summ["subjects"]:
        L.append(f"| {d['subject']} | {d['windows']} | {d['device']:.2f} | {d['zerophase']:.2f} | "
                 f"{d['diff']:+.2f} {_ci(d['diff_ci'])} | {d['raw_device']:.2f} | {d['raw_zerophase']:.2f} | "
                 f"{d['raw_diff']:+.2f} {_ci(d['raw_diff_ci'])} |")
    L.append(f"| **mean of subjects** | | **{summ['device_mean_of_subjects']:.2f}** | "
             f"**{summ['zerophase_mean_of_subjects']:.2f}** | **{summ['diff_mean_of_subjects']:+.3f}** "
             f"{_ci(summ['diff_ci_over_subjects'])} | {summ['raw_device_mean_of_subjects']:.2f} | "
             f"{summ['raw_zerophase_mean_of_subjects']:.2f} | {summ['raw_diff_mean_of_subjects']:+.3f} "
             f"{_ci(summ['raw_diff_ci_over_subjects'])} |")
    ag = res["code_agreement"]
    L += ["", f"The device arm is worse on {summ['device_worse_on']} of {summ['n_subjects']} subjects (decoded) and "
          f"{summ['raw_device_worse_on']} (argmax). Per-subject CIs: moving-block bootstrap over windows "
          f"(blocks of {a['block']} windows); mean-of-subjects CI: bootstrap over subjects. "
          f"Front-end codes, device vs zero-phase: mean |code difference| per channel "
          f"({', '.join(get_model_cfg(a['student']).channels)}) "
          f"{', '.join(f'{v:.1f}' for v in ag['mean_abs_code_diff_per_channel'])}; PPG spectral peak in the same "
          f"bin in {100 * ag['ppg_peak_same_bin']:.1f} % of windows (within one bin: "
          f"{100 * ag['ppg_peak_within_1_bin']:.1f} %).", "",
          "Decoders chosen (sigma BPM / floor / temperature), device | zero-phase: " +
          "; ".join(f"{f['heldout']}: {f['device']['sigma_bpm']:.2f}/{f['device']['floor']:.0e}/"
                    f"{f['device']['temperature']:g} | {f['zerophase']['sigma_bpm']:.2f}/"
                    f"{f['zerophase']['floor']:.0e}/{f['zerophase']['temperature']:g}" for f in res["folds"]), "",
          f"wall time {res['wall_s'] / 60:.1f} min on 2 shared CPU cores (nice -n 19, 1 torch thread); "
          f"`{res['command']}`", ""]
    return "\n".join(L)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="spec_student_s")
    ap.add_argument("--epochs", type=int, default=30, help="student epochs (hr_spectral.py: 60), both arms")
    ap.add_argument("--inner-epochs", type=int, default=15, help="inner-CV epochs (hr_spectral.py: 30), both arms")
    ap.add_argument("--inner-folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block", type=int, default=15, help="bootstrap block length in windows (15 = 30 s)")
    ap.add_argument("--folds", default="", help="comma-separated held-out subjects (default: all)")
    ap.add_argument("--data", "--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--smoke", action="store_true", help="synthetic data, one tiny fold, 2 epochs (tests)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if args.smoke:
        args.epochs, args.inner_epochs, args.inner_folds = min(args.epochs, 2), min(args.inner_epochs, 1), 2
    torch.set_num_threads(1)
    log = lambda m: print(m, flush=True)  # noqa: E731
    t0 = time.time()
    scfg = get_model_cfg(args.student)
    fe_bins = bin_bpm(frontend_cfg(scfg, 125.0))
    if not np.allclose(fe_bins, bin_grid(scfg)):
        raise SqtoolError(f"{args.student}: front-end bins and model bins differ")
    pairs = load_pairs("synthetic" if args.smoke else data_root_or_exit(args.data, ap.error, flag="--data"), scfg, log)
    log(f"front ends: {len(pairs['device'])} recordings x 2 arms in {time.time() - t0:.0f} s")
    keys = sorted({r.key for r in pairs["device"]})
    heldout = keys[:1] if args.smoke else keys
    if args.folds:
        want = args.folds.split(",")
        heldout = [h for h in heldout if h in want or h.split(":")[-1] in want]
    rows = {a: [] for a in ARMS}
    folds = []
    for h in heldout:
        f = {"heldout": h}
        for arm in ARMS:
            t1 = time.time()
            recs = pairs[arm]
            out, dec = run_fold([r for r in recs if r.key != h], [r for r in recs if r.key == h], scfg, args)
            rows[arm] += out
            f[arm] = dec
            e = np.concatenate([np.abs(r["hr"] - r["y"]) for r in out])
            log(f"fold {h} {arm:9s}: MAE {np.nanmean(e):.2f}  decoder sigma {dec['sigma_bpm']:.2f} floor "
                f"{dec['floor']:.0e} T {dec['temperature']:g}  [{time.time() - t1:.0f} s, total {time.time() - t0:.0f} s]")
        folds.append(f)
    summ = summarise(rows, args.block)
    stem = "frontend_phase_ab" + ("_smoke" if args.smoke else "_partial" if args.folds else "")
    note = ("Epochs halved for BOTH arms against benchmarks/hr_spectral.py (60 / inner 30) to fit the 25 min "
            "budget on 2 shared cores." if (args.epochs, args.inner_epochs) == (30, 15) else
            f"Epochs {args.epochs} / inner {args.inner_epochs} for BOTH arms (hr_spectral.py: 60 / 30).")
    res = {"settings": vars(args), "data": ("synthetic smoke corpus" if args.smoke else
                                           f"SP Cup 2015 (troika), LOSO over {len(keys)} subjects, "
                                           f"{', '.join(EXCLUDED)} left out"),
           "epochs_note": note, "arms": {"device": "data.frontend fixed-point causal (record_spectra)",
                                         "zerophase": "resample_poly + sosfiltfilt Butterworth + float DFT (this script)"},
           "code_agreement": code_agreement(pairs), "folds": folds, "summary": summ,
           "command": " ".join(["nice -n 19 python benchmarks/frontend_phase_ab.py"] + list(sys.argv[1:] if argv is None else argv))}
    res["wall_s"] = time.time() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_metrics(out, res, f"{stem}.json")
    md = markdown(summ, res)
    atomic_write_text(out / f"{stem}.md", md)
    log(md)
    return res


if __name__ == "__main__":
    main()
