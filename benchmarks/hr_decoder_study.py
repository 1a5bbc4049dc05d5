"""Decoder variants on saved logits, without training: does another causal decoder, or another rule for choosing
its parameters on the inner windows, read the held-out subjects better than the default?

Reads the folders `benchmarks/hr_spectral.py --logits-out DIR` (or `hr_synthetic_pulse.py --logits-out DIR`)
writes: one .npz per outer fold with the held-out int8 logits, the student's inner out-of-fold logits the decoder
was chosen on, the truth, the subject keys and the chosen decoder. For each variant, per outer fold, the HMM's
transition sigma, jump floor and logit temperature are chosen on the inner out-of-fold logits (the grid of
`hr_bins.select_decoder`, emission floor and evidence off), then the held-out logits are decoded:

    sum / mean     the default: causal forward filtering (sum-product), the lowest mean of the inner
                   subjects' MAE; decoded in fixed point, as the firmware (`decoder.decode_int`)
    sum / gmean    the same filter, the lowest geometric mean of the inner subjects' MAE (every subject's
                   relative error counts alike: a few locked subjects at 20 BPM no longer decide alone)
    sum / median   the same filter, the lowest median of the inner subjects' MAE
    sum / logscore the same filter, the lowest mean of the inner subjects' log score: -log of the filtered
                   posterior's mass within +-1.5 BPM of the truth (a proper scoring rule: it rewards a posterior
                   that is right and honest about its spread, not only a right argmax)
    max / mean     max-product filtering (the belief at t is the best path's, as a causal Viterbi; BeliefPPG
                   ships both): a narrow peak the network finds in most windows is not outweighed by a broad
                   plateau of mass; float reference only (the firmware has no max-product predict step)
    prior / mean   the hybrid HMM / network reading: the emission is the network's posterior divided by the
                   heart-rate prior it learned (its mean output over the inner subjects' out-of-fold windows,
                   smoothed, 10 % uniform) to the power alpha, alpha in PRIOR_ALPHAS chosen by the inner subjects
                   like sigma / floor / temperature (0 = the default's emission): what "read the pulse, not the
                   prior" asks of the decoder; float reference
    prior0.5 / mean  the same with alpha fixed at 0.5, what the inner subjects would not choose
    sum / check    (synthetic dumps with --check-seeds) the default's filter, choosing first the candidate that
                   misses the fewest 10-BPM bands (> 3 BPM, fixed point) on further synthetic sets the same
                   networks scored (`hr_synthetic_pulse.py --check-seeds`), then the lowest inner mean: can a
                   check set of the generator, never the evaluated recordings, steer the decoder to read the pulse?

    python benchmarks/hr_decoder_study.py --dumps DIR[,DIR...] --out benchmarks/results [--name NAME] [--label TEXT]
                                          [--check-seeds 4000,5000]

Real dumps report each held-out subject's MAE and the mean of subjects; synthetic ones (every recording at one
fixed heart rate) the 10-BPM bands within 3 BPM, as `hr_synthetic_pulse.py` does. Writes <name>.json and .md.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqtool.core import SqtoolError, atomic_write_text  # noqa: E402
from sqtool.core.io import dumps_json  # noqa: E402
from sqtool.models.decoder import (decode_float, decode_int, decoder_cfg, start_distribution,  # noqa: E402
                                   summarise, transition_taps)
from sqtool.models.hr_bins import fit_decoder, select_decoder  # noqa: E402

_GMEAN = lambda v: float(np.exp(np.mean(np.log(np.maximum(v, 1e-9)))))  # noqa: E731
RULES = {"mean": ("mae", np.mean), "gmean": ("mae", _GMEAN), "median": ("mae", np.median),   # rule -> (per-window
         "logscore": ("logscore", np.mean),                                  # score, its mean over subjects by)
         "check": ("mae", np.mean)}        # first the fewest check-set bands missed, then the mean (--check-seeds)
VARIANTS = (("sum", "mean"), ("sum", "gmean"), ("sum", "median"), ("sum", "logscore"), ("max", "mean"),
            ("prior", "mean"), ("prior0.5", "mean"))
PRIOR_ALPHAS = (0.0, 0.5, 1.0)      # "prior": the exponent of the learned prior divided out of the emission
LOGSCORE_BPM = 1.5                  # the log score's mass: the filtered posterior within +-1.5 BPM of the truth
_GRID = inspect.signature(select_decoder).parameters                 # the default's own candidate grid
SIGMAS, FLOORS, TEMPERATURES = (_GRID[k].default for k in ("sigmas", "floors", "temperatures"))


def training_log_prior(dump: dict, smooth_bins: float = 3.0, uniform: float = 0.1) -> np.ndarray:
    """(F,) log of the heart-rate prior the network learned: its mean softmax over the inner subjects' out-of-fold
    windows (the training subjects only), Gaussian-smoothed over `smooth_bins` bins, mixed with `uniform`."""
    from scipy.ndimage import gaussian_filter1d
    x = np.concatenate([r["logits"] for r in dump["oof"]]).astype(np.float64)            # (N, F)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    m = gaussian_filter1d((p / p.sum(axis=1, keepdims=True)).mean(axis=0), smooth_bins, mode="nearest")
    return np.log((1 - uniform) * m / m.sum() + uniform / len(m))


def forward_hr(logits: np.ndarray, dec: dict, product: str, log_prior: np.ndarray | None = None) -> np.ndarray:
    """(W, F) real logits -> (W,) decoded HR (BPM) by causal filtering; product "sum" (the decoder's own forward
    filter, `decoder.decode_float`), "max" (max-product: prior[j] = max_i p[i] g[j - i], the same jump floor,
    likelihood and read-out) or "prior*" (the forward filter on the posterior / learned prior ** dec's
    "prior_alpha": logits - alpha x temperature x log_prior, since the filter divides logits by the temperature)."""
    if product.startswith("prior"):
        alpha = float(dec["prior_alpha"])
        dec = {k: v for k, v in dec.items() if k != "prior_alpha"}
        return decode_float(np.asarray(logits, np.float64) - alpha * float(dec.get("temperature", 1.0)) * log_prior,
                            dec)["hr"]
    if product == "sum":
        return decode_float(logits, dec)["hr"]
    cfg = decoder_cfg(dec)
    x = np.asarray(logits, np.float64) / float(dec.get("temperature", 1.0))
    lik = np.exp(x - x.max(axis=1, keepdims=True))                               # (W, F)
    g, pi, r, f = transition_taps(cfg), start_distribution(cfg), cfg.radius, cfg.n_bins
    post, p = np.zeros_like(lik), pi
    for t in range(len(lik)):
        pp = np.pad(p, r)
        prior = pi if t == 0 else ((1 - cfg.floor) * np.max([pp[k:k + f] * g[2 * r - k] for k in range(2 * r + 1)],
                                                            axis=0) + cfg.floor / f)
        q = prior * lik[t]
        p = q / q.sum()
        post[t] = p
    return summarise(post, cfg)["hr"]


def load_dump(path: Path) -> dict:
    """One --logits-out .npz -> its decoder, logit scale, inner (oof) and held-out (test) recordings."""
    z = np.load(path)
    need = {"decoder", "logit_scale"}
    if not need <= set(z.files) or not any(k.startswith("oof/") for k in z.files):
        raise SqtoolError(f"{path}: not a --logits-out dump with inner out-of-fold logits (needs decoder, "
                          "logit_scale, oof/...: run the benchmark with --decoder-on student)")
    rec = lambda k, part: {"logits": z[f"{part}/{k}"], "y": z[f"y/{k}"], "key": str(z[f"key/{k}"]),  # noqa: E731
                           "id": k}
    return {"decoder": json.loads(str(z["decoder"])), "scale": float(z["logit_scale"]),
            "oof": [rec(k[4:], "oof") for k in z.files if k.startswith("oof/")],
            "test": [rec(k[5:], "test") for k in z.files if k.startswith("test/")]}


def dump_args(ap: argparse.ArgumentParser, name: str, records: bool = False) -> None:
    """The options of a study of --logits-out dumps: --dumps, --out, --name (default `name`), --label; with
    `records` (a study that reads the recordings' front end, `dumps_with_records`) also --data-root and --student."""
    ap.add_argument("--dumps", required=True, help="folders of --logits-out .npz files, comma-separated")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--name", default=name)
    ap.add_argument("--label", default="", help="what the dumps are, for the report (default: their folders)")
    if records:
        from sqtool.core import DATA_ROOT_HELP
        ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
        ap.add_argument("--student", default="spec_student_s",
                        help="the registry model whose front end the dumps read")


def dump_paths(ap: argparse.ArgumentParser, args) -> list[Path]:
    """The .npz files of --dumps, sorted; none is the parser's one-line error."""
    dumps = sorted(p for d in args.dumps.split(",") for p in Path(d).glob("*.npz"))
    if not dumps:
        ap.error(f"--dumps {args.dumps}: no .npz files (write them with hr_spectral.py --logits-out DIR)")
    return dumps


def dumps_with_records(ap: argparse.ArgumentParser, args) -> tuple[dict, dict]:
    """The dumps of --dumps ({file name: `load_dump`}) and the front-end recordings they name ({"dataset/record_id":
    HrRecording}, `hr_corpus` under --data-root with --student's front end); a bad dump is refused before the data
    root is needed, each problem as the parser's one-line error (for a study with --data-root and --student)."""
    try:
        loaded = {p.name: load_dump(p) for p in dump_paths(ap, args)}
    except SqtoolError as e:
        ap.error(str(e))
    from sqtool.core import data_root_or_exit
    from sqtool.data.hr_spectra import hr_corpus
    from sqtool.models import get_model_cfg
    root = data_root_or_exit(args.data_root, ap.error)
    try:
        datasets = sorted({d["id"].split("/")[0] for dump in loaded.values() for d in dump["oof"] + dump["test"]})
        corpus = hr_corpus(root, tuple(datasets), get_model_cfg(args.student))
    except SqtoolError as e:
        ap.error(str(e))
    return loaded, {f"{r.dataset}/{r.record_id}": r for r in corpus}


def abs_err(hr: np.ndarray, y: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y)
    return np.abs(hr[ok] - y[ok])


def log_score(logits: np.ndarray, dec: dict, y: np.ndarray) -> np.ndarray:
    """(W,) -log of the filtered posterior's mass within +-LOGSCORE_BPM of the truth (windows with truth)."""
    post = decode_float(logits, dec)["post"]                                     # (W, F)
    ok = np.isfinite(y)
    near = np.abs(decoder_cfg(dec).centres[None, :] - y[ok, None]) <= LOGSCORE_BPM + 1e-9
    return -np.log(np.maximum((post[ok] * near).sum(1), 1e-12))


def choose(dump: dict, product: str, rule: str, cache: dict) -> dict:
    """The sigma / floor / temperature (and for "prior" the exponent alpha) with the lowest `rule` (RULES: a
    per-window score, the decoded |error| or the log score, averaged per inner subject, then over subjects by the
    rule's mean)."""
    kind, over_subjects = RULES[rule]
    misses = (lambda d: check_misses(dump, d)) if rule == "check" else (lambda d: 0)      # noqa: E731
    score_of = log_score if kind == "logscore" else (
        lambda lg, d, y: abs_err(forward_hr(lg, d, product, dump.get("log_prior")), y))
    alphas = {"prior": PRIOR_ALPHAS, "prior0.5": (0.5,)}.get(product, (None,))
    dec0 = dump["decoder"]
    base = fit_decoder([r["y"] for r in dump["oof"]], dec0["bins_bpm"], 2.0)
    best, best_score = None, (np.inf, np.inf)
    for sg in sorted({float(base["sigma_bpm"]), *SIGMAS}):
        for fl in sorted({float(base["floor"]), *FLOORS}):
            for T, a in ((T, a) for T in TEMPERATURES for a in alphas):
                dec = {**dec0, "sigma_bpm": sg, "floor": fl, "temperature": T, "emission_floor": 0.0,
                       "evidence_weight": 0.0, **({} if a is None else {"prior_alpha": a})}
                key = (product, sg, fl, T, kind, a)
                if key not in cache:
                    per = {}
                    for r in dump["oof"]:
                        per.setdefault(r["key"], []).append(score_of(r["logits"], dec, r["y"]))
                    cache[key] = np.array([np.concatenate(v).mean() for _, v in sorted(per.items())])
                score = (misses(dec), float(over_subjects(cache[key])))
                if score < best_score:
                    best, best_score = dec, score
    return {**best, "inner_score": best_score[1], **({"inner_check_misses": best_score[0]} if rule == "check" else {})}


CHECK_SPAN = 320        # a synthetic set seeded from B holds the records seeded B .. B + CHECK_SPAN - 1 (= hr_synthetic_pulse.SET_SPAN)


def check_sets(ap: argparse.ArgumentParser, text: str, record_seed: int | None = None,
               span: int = CHECK_SPAN) -> tuple[int, ...]:
    """--check-seeds -> the seeds of the check sets; a non-integer, or a set whose seeds (seed .. seed + span - 1)
    meet the evaluated set's (`record_seed`, where given) or another check set's, is the parser's one-line error."""
    try:
        seeds = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        ap.error(f"--check-seeds must be comma-separated integers, got '{text}'")
    every = seeds if record_seed is None else (record_seed, *seeds)
    for i, a in enumerate(every):
        for b in every[i + 1:]:
            if abs(a - b) < span:
                ap.error(f"--check-seeds: the sets seeded from {a} and {b} share recordings (each holds the seeds "
                         f"from its own to {span - 1} above it): take seeds at least {span} apart")
    return seeds


def record_seed(record_id: str) -> int | None:
    """The seed of a synthetic recording ("synthetic/hr055_s3021" -> 3021), None for any other id."""
    m = re.search(r"hr\d+_s(\d+)$", record_id)
    return int(m.group(1)) if m else None


def split_check(dump: dict, check_seeds: tuple[int, ...]) -> dict:
    """Moves the held-out recordings of the sets seeded from `check_seeds` into dump["check"]; the rest stay the
    scored ones. A check seed that names no recording of the dump is one clear line."""
    def inside(r) -> bool:
        seed = record_seed(r["id"])
        return seed is not None and any(b <= seed < b + CHECK_SPAN for b in check_seeds)
    check = [r for r in dump["test"] if inside(r)]
    if not check or len(check) == len(dump["test"]):
        raise SqtoolError(f"--check-seeds {','.join(map(str, check_seeds))}: the dump needs recordings of those "
                          "synthetic sets and of another (hr_synthetic_pulse.py --check-seeds ... --logits-out DIR)")
    return {**dump, "test": [r for r in dump["test"] if not inside(r)], "check": check}


def check_misses(dump: dict, dec: dict) -> int:
    """How many 10-BPM bands of the check recordings decode (fixed point, as the firmware) more than 3 BPM off."""
    rec = {}
    for r in dump["check"]:
        rec[r["id"]] = (float(abs_err(decode_int(r["logits"], dec, dump["scale"])["hr"], r["y"]).mean()),
                        float(np.nanmedian(r["y"])))
    return int(sum(v > 3.0 for v in bands(rec).values()))


def study(dumps: list[Path], check_seeds: tuple[int, ...] = ()) -> dict:
    """{variant: {"folds": [...], "subjects": {key: MAE}, "recordings": {id: (MAE, truth median)}}}; with
    `check_seeds` the variant sum/check too, and every variant scored on the other recordings only."""
    variants = VARIANTS + ((("sum", "check"),) if check_seeds else ())
    out = {f"{p}/{r}": {"folds": [], "subjects": {}, "recordings": {}} for p, r in variants}
    for path in dumps:
        dump, cache = load_dump(path), {}
        if check_seeds:
            dump = split_check(dump, check_seeds)
        dump["log_prior"] = training_log_prior(dump)                    # (F,) what the network learned to expect
        for product, rule in variants:
            dec = choose(dump, product, rule, cache)
            v = out[f"{product}/{rule}"]
            v["folds"].append({"dump": path.name, "sigma_bpm": dec["sigma_bpm"], "floor": dec["floor"],
                               "temperature": dec["temperature"], "inner_score": dec["inner_score"],
                               **({"prior_alpha": dec["prior_alpha"]} if "prior_alpha" in dec else {}),
                               **({"check_misses": dec["inner_check_misses"]} if "inner_check_misses" in dec else {})})
            per = {}
            for r in dump["test"]:
                hr = (decode_int(r["logits"], dec, dump["scale"])["hr"] if product == "sum"
                      else forward_hr(r["logits"].astype(np.float64) * dump["scale"], dec, product, dump["log_prior"]))
                e = abs_err(hr, r["y"])
                per.setdefault(r["key"], []).append(e)
                v["recordings"][r["id"]] = (float(e.mean()), float(np.nanmedian(r["y"])))
            v["subjects"].update({k: float(np.concatenate(e).mean()) for k, e in per.items()})
    return out


def bands(recordings: dict) -> dict[int, float]:
    """10-BPM band (by each recording's truth) -> mean of its recordings' MAE."""
    b = {}
    for mae, hr in recordings.values():
        b.setdefault(int(hr // 10 * 10), []).append(mae)
    return {k: float(np.mean(v)) for k, v in sorted(b.items())}


def report(res: dict, dumps: list[Path], synthetic: bool, seconds: float, label: str = "",
           check_seeds: tuple[int, ...] = ()) -> str:
    where = label or ", ".join(sorted({str(p.parent) for p in dumps}))
    check = (f" The synthetic sets seeded from {', '.join(map(str, check_seeds))} are the check sets of sum/check "
             "and are not scored: every variant's table reads the other recordings." if check_seeds else "")
    lines = ["# Decoder variants on saved logits (`benchmarks/hr_decoder_study.py`)", "",
             f"Dumps: {where} ({len(dumps)} outer folds). Per fold the "
             "sigma / floor / temperature are chosen on the inner out-of-fold logits by each variant's rule; "
             "`sum` decodes in fixed point (the firmware), `max` and `prior` in float (no firmware version)." + check,
             ""]
    names = list(res)
    if synthetic:
        lines += ["| variant | 10-BPM bands within 3 BPM | worst band (BPM) | recordings > 3 BPM | choices |",
                  "|---|---|---|---|---|"]
        for n in names:
            b, rec = bands(res[n]["recordings"]), res[n]["recordings"]
            bad = ", ".join(f"{k.split('/')[-1]} {m:.1f}" for k, (m, _) in sorted(rec.items()) if m > 3) or "-"
            ch = "; ".join(f"sigma {f['sigma_bpm']:g} T {f['temperature']:g}"
                           + (f" alpha {f['prior_alpha']:g}" if "prior_alpha" in f else "")
                           + (f", check bands missed {f['check_misses']}" if "check_misses" in f else "")
                           for f in res[n]["folds"])
            met = sum(v <= 3 for v in b.values())
            lines.append(f"| {n} | {met} of {len(b)} | {max(b.values()):.2f} | {bad} | {ch} |")
    else:
        subjects = sorted(res[names[0]]["subjects"])
        lines += ["| subject | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for s in subjects:
            lines.append(f"| {s} | " + " | ".join(f"{res[n]['subjects'][s]:.2f}" for n in names) + " |")
        lines.append("| **mean of subjects** | " + " | ".join(
            f"**{np.mean(list(res[n]['subjects'].values())):.3f}**" for n in names) + " |")
        lines += ["", "Choices per fold (sigma BPM / temperature): " + "; ".join(
            f"{n}: " + ", ".join(f"{f['sigma_bpm']:g}/{f['temperature']:g}"
                                 + (f"/{f['prior_alpha']:g}" if "prior_alpha" in f else "") for f in res[n]["folds"])
            for n in names) + " (prior variants: /alpha)"]
    lines += ["", f"Wall time {seconds / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dump_args(ap, "hr_decoder_study")
    ap.add_argument("--check-seeds", default="", help="synthetic dumps: the seeds of the sets scored as a check "
                    "(hr_synthetic_pulse.py --check-seeds), comma-separated; adds the variant sum/check")
    args = ap.parse_args(argv)
    check_seeds = check_sets(ap, args.check_seeds)
    dumps = dump_paths(ap, args)
    t0 = time.time()
    try:
        res = study(dumps, check_seeds)
    except SqtoolError as e:
        ap.error(str(e))
    synthetic = all(k.startswith("synthetic") for n in res for k in res[n]["subjects"])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out) / f"{args.name}.json", dumps_json(res, indent=1))
    md = report(res, dumps, synthetic, time.time() - t0, args.label, check_seeds)
    atomic_write_text(Path(args.out) / f"{args.name}.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
