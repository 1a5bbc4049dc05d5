"""Confidence read-outs on saved logits, without training: can any read-out the device could compute, or a model
learned over all of them, rank the held-out windows by their error well enough that keeping the 80 % most
confident cuts the MAE by 30 % (issue 9's gating goal)?

Reads the folders `benchmarks/hr_spectral.py --logits-out DIR` writes (one .npz per outer fold: the held-out int8
logits, the inner out-of-fold logits of the training recordings, the truth, the subject keys and the chosen
decoder) and the recordings' front-end spectra (`hr_corpus` under --data-root). Per outer fold, the training
recordings' out-of-fold logits are decoded with the fold's decoder (float) and the held-out int8 logits in fixed
point (`decoder.decode_int`, as the firmware); per window:

    pmax, entropy      the network's own softmax (after the decoder's temperature): peak probability, entropy
    width, conf        the decoder's 90 % interval width and the device's confidence (as the dump's decoder states it)
    ppg_at, acc_at     the PPG / summed accelerometer spectral code at the decoded HR (+-2 bins)
    cadence_dist       distance of the decoded HR to the accelerometer's peak, its half or its double
    ppg_peak_dist      distance of the decoded HR to the PPG spectrum's peak
    motion, ppg_level  mean accelerometer / PPG spectral code
    argmax_dist        distance of the decoded HR to the window's own argmax
    step, sd5          |change| since the last hop; spread of the last 6 decoded HRs
    hr, cadence        the decoded HR and the accelerometer's peak (BPM)
    ppg_at_cadence     the PPG spectral code at the accelerometer's peak (+-2 bins): a pulse there is ambiguous
    cadence_minus_estimate   that, minus the PPG code at the decoded HR
    p_near_cadence     the network's probability within +-3 bins of the accelerometer's peak
    second_peak        the network's highest probability > 5 bins from its peak, over the peak
    ppg_prominence     the PPG spectrum's peak code minus its median
    width_slow, entropy_slow   width and entropy smoothed causally over the recording (exponential, alpha
                       SLOW_ALPHA = 0.05 per 2 s hop: ~40 s), for errors that last whole recordings
    ppg_peak_harmonic  distance of the PPG spectrum's peak to the nearest of HARMONICS x the accelerometer's peak
    ppg_at_harmonics   share of the PPG's power within +-2 bins of HARMONICS x the accelerometer's peak

Each single read-out ranks by its sign chosen on the training windows (the higher gating there), never on the
held-out ones. The learned error models (scikit-learn gradient-boosted trees on log(1 + |error|), every read-out
as input) are fitted on the training windows of every training subject ("learned / all") or of the held-out
subjects' dataset only ("learned / same dataset"), over the first 20 read-outs (the set they were first
measured on); "learned / all, 24 read-outs" adds the slow and harmonic ones. Gating is pooled over every held-out
window of every fold, as `hr_spectral.py` reports it, with the oracle (keeping the 80 % smallest errors) beside it.

    python benchmarks/hr_gating_study.py --dumps DIR [--data-root ROOT] [--out benchmarks/results] [--name NAME]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hr_decoder_study import dump_args, dumps_with_records, load_dump  # noqa: E402, F401 (load_dump: tests)

from sqtool.core import SqtoolError, atomic_write_text  # noqa: E402
from sqtool.core.io import dumps_json  # noqa: E402
from sqtool.models.decoder import decode_float, decode_int, decoder_cfg  # noqa: E402

READOUTS = ("pmax", "entropy", "width", "conf", "ppg_at", "acc_at", "cadence_dist", "ppg_peak_dist", "motion",
            "ppg_level", "argmax_dist", "step", "sd5", "hr", "cadence", "ppg_at_cadence", "cadence_minus_estimate",
            "p_near_cadence", "second_peak", "ppg_prominence", "width_slow", "entropy_slow", "ppg_peak_harmonic",
            "ppg_at_harmonics")
N_FIRST = READOUTS.index("width_slow")  # the read-outs the learned error models were first measured on (20)
LEARNED = ("learned / all", "learned / same dataset", f"learned / all, {len(READOUTS)} read-outs")
KEEP = 0.8
SLOW_ALPHA = 0.05
HARMONICS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
MAX_ERR = 60.0          # the error models' target is log(1 + min(|error|, 60 BPM))


def readouts(logits: np.ndarray, dec: dict, out: dict, x: np.ndarray) -> np.ndarray:
    """(W, F) real logits (before the temperature), the decoder's output, the int8 spectra (W, F, C: PPG then
    accelerometer axes) -> (W, len(READOUTS))."""
    b = decoder_cfg(dec).centres
    z = logits / float(dec.get("temperature", 1.0))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)                                                   # (W, F)
    hr = out["hr"]
    ppg, acc = x[:, :, 0].astype(np.float64), x[:, :, 1:].astype(np.float64).sum(2)  # (W, F) each
    cad = b[acc.argmax(1)]
    i = np.clip(np.searchsorted(b, hr), 0, len(b) - 1)
    near = lambda s, at=i: np.array([s[t, max(0, k - 2):k + 3].max() for t, k in enumerate(at)])   # noqa: E731
    sd5 = np.array([hr[max(0, t - 5):t + 1].std() for t in range(len(hr))])
    ic = acc.argmax(1)
    p_cad = np.array([p[t, max(0, k - 3):k + 4].sum() for t, k in enumerate(ic)])
    a = p.argmax(1)
    away = np.abs(np.arange(p.shape[1])[None, :] - a[:, None]) > 5                   # (W, F) beyond the peak
    second = np.where(away, p, 0.0).max(1) / p.max(1)
    entropy, width = -(p * np.log(p + 1e-12)).sum(1), out["hi"] - out["lo"]
    harm = np.abs(b[None, :, None] - cad[:, None, None] * np.array(HARMONICS)[None, None, :]).min(2)   # (W, F) BPM
    at_harm = harm <= 2 * (b[1] - b[0])                                            # +-2 bins of a harmonic
    power = ppg + 127.0                                                            # linear in power, >= 0
    at_harmonics = (power * at_harm).sum(1) / np.maximum(power.sum(1), 1e-12)
    return np.stack([p.max(1), entropy, width, out["conf"], near(ppg),
                     near(acc), np.abs(hr[:, None] - cad[:, None] * np.array([0.5, 1.0, 2.0])).min(1),
                     np.abs(hr - b[ppg.argmax(1)]), x[:, :, 1:].mean((1, 2)), ppg.mean(1),
                     np.abs(hr - b[a]), np.r_[0.0, np.abs(np.diff(hr))], sd5, hr, cad, near(ppg, ic),
                     near(ppg, ic) - near(ppg), p_cad, second, ppg.max(1) - np.median(ppg, 1),
                     causal_mean(width), causal_mean(entropy), harm[np.arange(len(hr)), ppg.argmax(1)],
                     at_harmonics], 1)


def causal_mean(v: np.ndarray, alpha: float = SLOW_ALPHA) -> np.ndarray:
    """(W,) -> the exponential moving average over the recording so far (what a device can keep per hop)."""
    out = np.empty(len(v))
    m = float(v[0]) if len(v) else 0.0
    for t, x in enumerate(v):
        m += alpha * (float(x) - m)
        out[t] = m
    return out


def gating(score: np.ndarray, err: np.ndarray, keep: float = KEEP) -> float:
    """1 - MAE of the `keep` share with the highest score / MAE of all (finite errors only)."""
    ok = np.isfinite(err) & np.isfinite(score)
    s, e = score[ok], err[ok]
    kept = s >= np.quantile(s, round(1 - keep, 12))
    return float(1 - e[kept].mean() / e.mean())


def pulse_visibility(x: np.ndarray, y: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How strong is the heart in the PPG? (W, F, C) int8 spectra, (W,) truth (BPM, NaN where none), the bin
    centres -> ((W,) the PPG's power at the truth as a share of the window's strongest bin (max over +-1 bin;
    the front end's code is linear in power: code = 254 P / Pmax - 127), (W,) bool the truth within 2 bins of
    the PPG's strongest bin). Needs the truth: a diagnosis of the held-out windows, never a read-out."""
    ppg = (x[:, :, 0].astype(np.float64) + 127.0) / 254.0                          # (W, F) P / Pmax
    ok = np.isfinite(y)
    k = np.clip(np.searchsorted(centres, np.where(ok, y, centres[0])), 0, len(centres) - 1)
    at = np.array([ppg[t, max(0, i - 1):i + 2].max() for t, i in enumerate(k)])
    top = np.abs(ppg.argmax(1) - k) <= 2
    return np.where(ok, at, np.nan), ok & top


def fold_windows(dump: dict, records: dict, name: str = "") -> dict:
    """One dump (`hr_decoder_study.load_dump`) and the front end of its recordings ({"dataset/record_id":
    HrRecording}) -> the training and held-out windows' read-outs, errors, datasets and subject keys, and per
    held-out recording its windows' errors and pulse visibility ("recordings")."""
    dec, scale = dump["decoder"], dump["scale"]
    centres = decoder_cfg(dec).centres
    parts, recordings = {}, {}
    for part, recs in (("train", dump["oof"]), ("test", dump["test"])):
        F, E, D, K = [], [], [], []
        for d in recs:
            if d["id"] not in records:
                raise SqtoolError(f"{name}: recording {d['id']} is not under the data root (--data-root)")
            r = records[d["id"]]
            valid = r.valid
            if part == "train":
                lg = d["logits"].astype(np.float64)
                out = decode_float(lg, dec, valid, r.x)
            else:
                lg = d["logits"].astype(np.float64) * scale
                out = decode_int(d["logits"], dec, scale, valid, r.x)
            F.append(readouts(lg, dec, out, r.x))
            E.append(np.abs(out["hr"] - r.y))
            if part == "test":
                at, top = pulse_visibility(r.x, r.y, centres)
                recordings[d["id"]] = {"err": E[-1], "ppg_power_at_truth": at, "truth_is_ppg_peak": top}
            D.append(np.full(len(r.y), r.dataset))
            K.append(np.full(len(r.y), d["key"]))
        parts[part] = tuple(map(np.concatenate, (F, E, D, K)))
    return {**parts, "name": name, "subjects": sorted({d["key"] for d in dump["test"]}), "recordings": recordings}


def error_model(F: np.ndarray, e: np.ndarray, seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingRegressor
    ok = np.isfinite(e) & np.all(np.isfinite(F), 1)
    m = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=8, min_samples_leaf=50,
                                      random_state=seed)
    return m.fit(F[ok], np.log1p(np.minimum(e[ok], MAX_ERR)))


PER_SUBJECT = ("conf", "width", "learned / all", "learned / same dataset")    # the per-subject table's columns


def study(folds: list[dict]) -> dict:
    """{"readouts": {name: {"held_out": pooled gating, "train_mean": gating on the training windows (its sign),
    "sign"}}, "subjects": {key: {"windows", "mae", "oracle", PER_SUBJECT gating}}, "oracle", "mae", "windows",
    "folds"}."""
    scores = {n: [] for n in (*READOUTS, *LEARNED)}
    train_gating = {n: [] for n in READOUTS}
    signs = {n: [] for n in READOUTS}
    errs, keys = [], []
    for f in folds:
        Ftr, etr, dtr, _ = f["train"]
        Fte, ete, dte, kte = f["test"]
        errs.append(ete)
        keys.append(kte)
        for j, n in enumerate(READOUTS):
            up, down = gating(Ftr[:, j], etr), gating(-Ftr[:, j], etr)
            sign = 1.0 if up >= down else -1.0
            signs[n].append(sign)
            train_gating[n].append(max(up, down))
            scores[n].append(sign * Fte[:, j])
        scores["learned / all"].append(-error_model(Ftr[:, :N_FIRST], etr).predict(np.nan_to_num(Fte[:, :N_FIRST])))
        scores[LEARNED[2]].append(-error_model(Ftr, etr).predict(np.nan_to_num(Fte)))
        same = np.isin(dtr, np.unique(dte))
        scores["learned / same dataset"].append(-error_model(Ftr[same][:, :N_FIRST], etr[same]).predict(
            np.nan_to_num(Fte[:, :N_FIRST])))
    e, k = np.concatenate(errs), np.concatenate(keys)
    res = {"windows": int(np.isfinite(e).sum()), "mae": float(np.nanmean(e)), "oracle": gating(-e, e),
           "folds": [{"dump": f["name"], "subjects": f["subjects"]} for f in folds], "readouts": {},
           "subjects": {}}
    for key in sorted(set(k)):
        m = k == key
        res["subjects"][str(key)] = {"windows": int(np.isfinite(e[m]).sum()), "mae": float(np.nanmean(e[m])),
                                     "oracle": gating(-e[m], e[m]),
                                     **{n: gating(np.concatenate(scores[n])[m], e[m]) for n in PER_SUBJECT}}
    total = float(np.nansum(e))
    for f in folds:
        for rid, v in sorted(f.get("recordings", {}).items()):
            ok = np.isfinite(v["err"])
            res.setdefault("recordings", {})[rid] = {
                "windows": int(ok.sum()), "mae": float(v["err"][ok].mean()) if ok.any() else float("nan"),
                "error_share": float(v["err"][ok].sum() / max(total, 1e-12)),
                "ppg_power_at_truth": float(np.nanmedian(v["ppg_power_at_truth"])) if ok.any() else float("nan"),
                "truth_is_ppg_peak": float(v["truth_is_ppg_peak"][ok].mean()) if ok.any() else float("nan")}
    for n, s in scores.items():
        res["readouts"][n] = {"held_out": gating(np.concatenate(s), e)}
        if n in READOUTS:
            res["readouts"][n] |= {"train_mean": float(np.mean(train_gating[n])),
                                   "sign": "+" if np.mean(signs[n]) > 0 else "-" if np.mean(signs[n]) < 0 else "+/-"}
    return res


def report(res: dict, label: str, seconds: float) -> str:
    rows = sorted(res["readouts"].items(), key=lambda kv: -kv[1]["held_out"])
    lines = [f"# Confidence read-outs on saved logits ({label})", "",
             f"{res['windows']} held-out windows over {len(res['folds'])} outer folds, int8 decoded MAE "
             f"{res['mae']:.2f} BPM. Gating = MAE change when keeping the {100 * KEEP:.0f} % most confident windows, "
             f"pooled (the goal: -30 %); the oracle (keeping the smallest errors): **{-100 * res['oracle']:+.0f} %**.",
             "", "| read-out | sign (chosen on training windows) | training windows (mean of folds) | held out |",
             "|---|---|---|---|"]
    for n, v in rows:
        tr = f"{-100 * v['train_mean']:+.0f} %" if "train_mean" in v else "-"
        lines.append(f"| {n} | {v.get('sign', '-')} | {tr} | **{-100 * v['held_out']:+.0f} %** |")
    lines += ["", "Per held-out subject (gating within the subject's own windows, as one wearer sees it):", "",
              "| subject | windows | int8 MAE | oracle | " + " | ".join(PER_SUBJECT) + " |",
              "|---|---|---|---|" + "---|" * len(PER_SUBJECT)]
    lines += [f"| {key} | {v['windows']} | {v['mae']:.2f} | {-100 * v['oracle']:+.0f} % | "
              + " | ".join(f"{-100 * v[n]:+.0f} %" for n in PER_SUBJECT) + " |" for key, v in res["subjects"].items()]
    recs = res.get("recordings") or {}
    if recs:
        weak = [v for v in recs.values() if v["ppg_power_at_truth"] < 0.5]
        lines += ["", "Where the held-out error is, per recording: how strong is the heart in the PPG? (the PPG's "
                  "power at the ECG truth as a share of the window's strongest bin, median over the windows, read "
                  "from the int8 spectra, whose code is linear in power; and the share of windows whose strongest "
                  "PPG bin is the truth's, +-2 bins). A diagnosis that needs the truth, never a read-out.", "",
                  f"{len(weak)} of {len(recs)} recordings hold the heart at under half the power of the PPG's "
                  "strongest component (motion) on their median window: "
                  f"{100 * sum(v['error_share'] for v in weak):.0f} "
                  "% of the pooled absolute error.", "",
                  "| recording | windows | int8 MAE | share of the pooled error | PPG power at the truth "
                  "(median, % of the strongest bin) | truth = the PPG's strongest bin |", "|---|---|---|---|---|---|"]
        lines += [f"| {rid} | {v['windows']} | {v['mae']:.2f} | {100 * v['error_share']:.0f} % | "
                  f"{100 * v['ppg_power_at_truth']:.0f} % | {100 * v['truth_is_ppg_peak']:.0f} % |"
                  for rid, v in sorted(recs.items(), key=lambda kv: -kv[1]["error_share"])]
    lines += ["", "Folds: " + "; ".join(f"{f['dump']} ({', '.join(f['subjects'])})" for f in res["folds"]),
              "", f"Wall time {seconds / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dump_args(ap, "hr_gating_study", records=True)
    args = ap.parse_args(argv)
    t0 = time.time()
    loaded, records = dumps_with_records(ap, args)
    try:
        res = study([fold_windows(dump, records, name) for name, dump in loaded.items()])
    except SqtoolError as e:
        ap.error(str(e))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out) / f"{args.name}.json", dumps_json(res, indent=1))
    md = report(res, args.label or args.dumps, time.time() - t0)
    atomic_write_text(Path(args.out) / f"{args.name}.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
