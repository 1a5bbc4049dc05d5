"""The public BeliefPPG model (pip beliefppg 0.3.1, MIT) scored on the project's windows and truth.

    nice .venv/bin/python benchmarks/beliefppg_peer.py [--datasets troika wrist_exercise]
    nice .venv/bin/python benchmarks/beliefppg_peer.py --data my_watch/dataset.yaml   # your own recordings

1. `.venv-beliefppg/` (repo root, git-ignored): `python3 -m venv` + beliefppg==0.3.1 if missing (TensorFlow,
   tf-keras, tensorflow-probability: 2.6 GB); never a dependency of sqtool nor in the project's venv.
2. The project's readers (`read_dataset`) -> one npz per recording (ppg (N, C), acc (N, 3), fs): SP Cup
   Training_data (12 subjects, not Extra_TrainingData; `ppg` and `ppg2`, which BeliefPPG standardises and
   averages, as its own IEEE loader does) and wrist_exercise (13 recordings of 5 subjects, one PPG).
3. A runner written here calls `infer_hr_uncertainty(..., decoding="sumproduct")` (causal forward belief
   propagation) in a subprocess of that environment, without sqtool. The shipped model is stochastic:
   its time-domain LSTMs (`dropout=0.1`) are called with `training=True`, so dropout stays on at
   inference (same input twice: outputs differ by up to 40 BPM). Each recording is run `--seeds` times
   under `tf.keras.utils.set_random_seed(s)` (reproducible); MAEs are means over draws (+ their range).
4. Alignment from BeliefPPG's documented windowing, nothing fitted: its spectral frames are 8 s windows
   every 2 s from t = 0 (= the truth windows); output k sees n_frames = 7 of them (read from the model)
   and is trained on the label of the last (`prepare_session_labels`: offset n_frames - 1), so it is
   scored on truth window k + 6. Windows 0-5 take output 0 (its 20 s input holds them), so every truth
   window is scored, as for our model and the baseline; MAE on the covered windows only is beside it.
5. Truth = labels["hr"] (SP Cup BPM0; wrist_exercise: the project's ECG-derived reference, NaN =
   doubtful, left out). MAE per recording, per subject (pooled over its recordings), mean of subjects'
   and pooled MAE per dataset -> benchmarks/results/beliefppg_peer.{json,md}, noting that its shipped
   weights may have seen the SP Cup training data.
6. `--data FILE` scores a team's own recordings instead (any `--data` the sqtool commands take that carries
   heart-rate labels: a dataset.yaml with `labels: hr` over 8 s windows every 2 s, as BeliefPPG reads them;
   every `ppg*` channel, acc_x/y/z in g, each at a whole rate in Hz) -> `--out`/beliefppg_peer_<name>.{json,md},
   beside the per-subject table of `hr_spectral.py --protocol wrist --target FILE` on the same windows.
7. `--rescore FILE`: a saved beliefppg_peer*.json's predictions (kept per truth window, to 0.01 BPM) scored
   again against the truth the project's readers give now (e.g. after a change of the ECG-derived reference),
   without TensorFlow or the runner; the same windows must exist, else it says which recording differs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqtool.core import (DATA_ROOT_HELP, atomic_save_npz, atomic_write_text, data_root_or_exit,  # noqa: E402
                         write_metrics)

PACKAGE = "beliefppg==0.3.1"
# name -> (folder under the data root, PPG channels)
DATASETS = {"troika": ("troika/Training_data", ("ppg", "ppg2")), "wrist_exercise": ("wrist_exercise", ("ppg",))}
HOP_S, WINDOW_S = 2.0, 8.0
RESULTS, WORK = ROOT / "benchmarks" / "results", ROOT / "benchmarks" / "out" / "beliefppg"   # WORK: git-ignored

RUNNER = '''"""Written by benchmarks/beliefppg_peer.py: BeliefPPG over exported npz files (no sqtool here)."""
import os, sys, time
import numpy as np
import beliefppg
from beliefppg import infer_hr_uncertainty
from beliefppg.model.load import load_inference_model
import tensorflow as tf                                          # after beliefppg: it selects tf-keras

model = load_inference_model(os.path.join(os.path.dirname(beliefppg.inference.__file__), "inference_model"))
n_frames = int(model.input_spec[0].shape[1])                     # spectral frames per output
seeds = [int(x) for x in sys.argv[1].split(",")]
for src, dst in zip(sys.argv[2::2], sys.argv[3::2]):
    d, t, hr, unc = np.load(src), time.perf_counter(), [], []   # hr, unc: (S, K) outputs per seed
    fs = int(d["fs"])
    acc_fs = int(d["acc_fs"]) if "acc_fs" in d else fs
    for seed in seeds:                          # the shipped LSTMs keep dropout on: one draw per seed
        tf.keras.utils.set_random_seed(seed)
        h, u, _ = infer_hr_uncertainty(d["ppg"], fs, acc=d["acc"], acc_freq=acc_fs, decoding="sumproduct")
        hr.append(np.ravel(h)); unc.append(np.ravel(u))
    np.savez(dst, hr=hr, unc=unc, n_frames=n_frames, seconds=(time.perf_counter() - t) / len(seeds))
    print(f"RUNNER {os.path.basename(src)}: {len(hr[0])} outputs x {len(seeds)}", file=sys.stderr, flush=True)
'''


def fail(msg: str) -> None:
    raise SystemExit(f"beliefppg_peer: {msg}")


def ensure_venv(venv: Path) -> Path:
    """The peer environment's python, creating it and installing beliefppg if missing."""
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m; print(m.version('beliefppg'))"]
    if py.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "0.3.1":
        return py
    print(f"installing {PACKAGE} into {venv} (TensorFlow, about 2.6 GB; a few minutes) ...", flush=True)
    for cmd in (["python3", "-m", "venv", str(venv)],
                [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", PACKAGE]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
            what = "pip install " + PACKAGE if "pip" in cmd else "python3 -m venv"
            fail(f"{what} into {venv} failed (offline?): {lines[-1] if lines else p.returncode}")
    return py


def sources(data_root: Path, names: list[str], data: str | None) -> list[tuple[str, list, tuple | None]]:
    """(dataset name, its records, its PPG channels (None: every `ppg*` channel of a record)) to score: the
    built-in datasets under the data root, or the one `--data` names."""
    from sqtool.core import SqtoolError
    from sqtool.data.dataset_file import data_records, resolve_data
    from sqtool.data.readers import read_dataset
    if data is None:
        return [(n, read_dataset(data_root / DATASETS[n][0], kind=n), DATASETS[n][1]) for n in names]
    try:
        ref = resolve_data(data, data_root)
        if ref.kind != "dataset":
            fail(f"--data {data}: a {ref.kind} has no heart-rate labels to score against; give its dataset.yaml "
                 "(labels: hr) or a built-in name")
        return [(ref.dataset.name, data_records(ref), None)]
    except SqtoolError as e:
        fail(str(e))


def export(sets: list[tuple[str, list, tuple | None]], work: Path, write: bool = True) -> list[dict]:
    """One npz per recording from the project's readers (write=False: none, for --rescore); returns the
    recordings' truth and metadata."""
    recs = []
    for name, records, ppg_fixed in sets:
        (work / name).mkdir(parents=True, exist_ok=True)
        for r in records:
            ppg_ch = ppg_fixed or tuple(sorted(c for c in r.signals if c.startswith("ppg")))
            missing = ([] if ppg_ch else ["ppg"]) + [c for c in (*ppg_ch, "acc_x", "acc_y", "acc_z")
                                                     if c not in r.signals]
            if missing:
                fail(f"{r.record_id}: no {', '.join(missing)} channel (BeliefPPG reads PPG + 3-axis acceleration)")
            lab = r.labels.get("hr")
            if lab is None or lab.kind != "window" or lab.window_s != WINDOW_S:
                fail(f"{r.record_id}: no 8 s window labels['hr'] (BeliefPPG is scored on 8 s windows every 2 s)")
            fs, acc_fs = (r.fs[ppg_ch[0]], r.fs["acc_x"])
            if ({r.fs[c] for c in ppg_ch} != {fs} or {r.fs[f"acc_{a}"] for a in "xyz"} != {acc_fs}
                    or fs != int(fs) or acc_fs != int(acc_fs)):
                fail(f"{r.record_id}: the PPG channels, and the acc channels, must each share one whole rate in Hz")
            idx = np.rint(np.asarray(lab.times) / HOP_S).astype(int)   # window index of each truth
            if not np.allclose(idx * HOP_S, lab.times):
                fail(f"{r.record_id}: truth windows do not start on the 2 s grid")
            path = work / name / f"{r.record_id}.npz"
            ppg = np.stack([r.signals[c] for c in ppg_ch], axis=1)                   # (N, C)
            acc = np.stack([r.signals[f"acc_{a}"] for a in "xyz"], axis=1)         # (M, 3)
            if write:
                atomic_save_npz(path, ppg=ppg, acc=acc, fs=int(fs), acc_fs=int(acc_fs))
            recs.append(dict(dataset=name, subject=str(r.subject), record=str(r.record_id), npz=path,
                             n_samples=len(ppg), fs=int(fs), idx=idx,
                             truth=np.asarray(lab.values, float), ppg_channels=list(ppg_ch)))
    if not recs:
        fail("no recording to score")
    return recs


def run_peer(py: Path, recs: list[dict], work: Path, seeds: int) -> float:
    runner = work / "beliefppg_runner.py"
    atomic_write_text(runner, RUNNER)
    args = [str(a) for r in recs for a in (r["npz"], r["npz"].with_suffix(".out.npz"))]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", PYTHONPATH="")
    print(f"running BeliefPPG on {len(recs)} recordings x {seeds} seeds ...", flush=True)
    t, seed_arg = time.perf_counter(), ",".join(map(str, range(seeds)))
    with open(work / "runner.log", "w") as log:
        p = subprocess.run([str(py), str(runner), seed_arg, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    if p.returncode:
        tail = (work / "runner.log").read_text().strip().splitlines()[-1:]
        fail(f"the runner failed (exit {p.returncode}): {tail[0] if tail else ''} (see {work / 'runner.log'})")
    return time.perf_counter() - t


def peer_outputs(rec: dict) -> tuple[np.ndarray, int, float]:
    """BeliefPPG's outputs of one recording as truth-window predictions (documented windowing, see the
    docstring): (pred (S, W) per draw and truth window, offset = n_frames - 1, its seconds)."""
    out = np.load(rec["npz"].with_suffix(".out.npz"))
    hr, off = np.atleast_2d(out["hr"]).astype(float), int(out["n_frames"]) - 1      # (S, K)
    n_win = int((rec["n_samples"] - WINDOW_S * rec["fs"]) // (HOP_S * rec["fs"])) + 1   # 8 s frames
    if hr.shape[1] != n_win - off:
        fail(f"{rec['record']}: {hr.shape[1]} outputs, expected {n_win} frames - {off}")
    pred = np.concatenate([np.repeat(hr[:, :1], off, axis=1), hr], axis=1)   # (S, n_win): i <- output i - off
    return pred[:, rec["idx"]], off, float(out["seconds"])


def saved_outputs(rec: dict, saved: dict) -> tuple[np.ndarray, int, float]:
    """The same from a saved run's recording entry (--rescore). Runs before the entries kept their offset
    had the shipped model's 7 frames (offset 6, read from the model then)."""
    p = np.array([[np.nan if v is None else v for v in row] for row in saved["pred"]], dtype=float)  # (S, W)
    if p.ndim != 2 or p.shape[1] != len(rec["truth"]):
        fail(f"{rec['record']}: the saved run has {p.shape[-1]} windows, the recording {len(rec['truth'])} now; "
             "--rescore needs the same windows")
    return p, int(saved.get("offset", 6)), float(saved["seconds"])


def align(rec: dict) -> dict:
    """Errors of one recording's truth-window predictions (rec["outputs"] when --rescore set them)."""
    p, off, seconds = rec.get("outputs") or peer_outputs(rec)
    y = rec["truth"]
    ok, err = np.isfinite(y), np.abs(p - y)                     # (S, W)
    covered = ok & (rec["idx"] >= off)
    return dict(err=err[:, ok], err_covered=err[:, covered], n_windows=len(y), n_doubtful=int((~ok).sum()),
                n_scored=int(ok.sum()), offset=off, seconds=seconds, pred=p, truth=y)


def mae(e) -> float | None:
    return float(np.mean(e)) if np.size(e) else None     # None: no scored window (all doubtful)


def mean_of(vals) -> float | None:
    return mae([v for v in vals if v is not None])


def f2(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def score(recs: list[dict]) -> dict:
    """MAE over all draws (= mean of the per-draw MAE); dataset figures also per draw (their range)."""
    res = {}
    for name in dict.fromkeys(r["dataset"] for r in recs):
        rows = [(r, align(r)) for r in recs if r["dataset"] == name]
        per_rec = {r["record"]: dict(subject=r["subject"], mae=mae(a["err"]), mae_covered=mae(a["err_covered"]),
                                     **{k: a[k] for k in ("n_windows", "n_scored", "n_doubtful", "seconds",
                                                          "offset")},
                                     pred=a["pred"].round(2).tolist(),   # (S, W); NaN truth -> null below
                                     truth=[None if np.isnan(v) else v for v in a["truth"]]) for r, a in rows}
        subs = {}
        for r, a in rows:
            subs.setdefault(r["subject"], []).append((r, a))
        cat = lambda rs, k: np.concatenate([a[k] for _, a in rs], axis=1)  # noqa: E731  (S, n) over recordings
        sub_err = {k: cat(v, "err") for k, v in subs.items()}
        per_sub = {k: dict(mae=mae(sub_err[k]), mae_covered=mae(cat(v, "err_covered")), n_scored=sub_err[k].shape[1],
                           recordings=[r["record"] for r, _ in v]) for k, v in subs.items()}
        all_err, all_cov = cat(rows, "err"), cat(rows, "err_covered")
        draws = dict(pooled=[mae(e) for e in all_err],
                     mean_of_subjects=[mean_of(mae(e[d]) for e in sub_err.values()) for d in range(len(all_err))])
        res[name] = dict(
            ppg_channels=rows[0][0]["ppg_channels"], n_draws=len(all_err),
            mean_of_subjects_mae=mean_of(s["mae"] for s in per_sub.values()),
            pooled_mae=mae(all_err), pooled_mae_covered=mae(all_cov),
            per_draw=draws, frac_over_10bpm=float(np.mean(all_err > 10)), n_scored=all_err.shape[1],
            n_doubtful=sum(a["n_doubtful"] for _, a in rows), n_recordings=len(rows),
            subjects=per_sub, recordings=per_rec)
    return res


def render(res: dict) -> str:
    rng = lambda v: f"{f2(min(v))}-{f2(max(v))}"  # noqa: E731
    L = ["# BeliefPPG (public peer model) on the project's windows and truth", "",
         f"Machine: {os.uname().machine}, {os.cpu_count()} cores (shared); run {res['when']} "
         f"({res['wall_s']:.0f} s wall, of which BeliefPPG {res['peer_s']:.0f} s in one process).",
         f"Command: `{res['command']}`", "",
         *([f"Re-scored {res['rescored']['when']} against the truth the readers give now, from the predictions of "
            f"the run above (`{res['rescored']['command']}`; kept to 0.01 BPM).", ""] if res.get("rescored") else []),
         f"Model: pip `{PACKAGE}` (MIT), shipped PPG + accelerometer weights, `decoding=\"sumproduct\"` (causal "
         "belief propagation), in its own venv. Its LSTMs keep dropout on at inference (`training=True` in the "
         "shipped graph): each recording is run once per seed and every MAE below is the mean over draws.", "",
         *(["**Caution: its shipped weights may have seen the SP Cup 2015 training recordings scored here (its "
            "training code reads them): its SP Cup row is not held out.** Its code does not read wrist_exercise.", ""]
           if "troika" in res["datasets"] else []),
         "Alignment from its documented windowing (nothing fitted): output k sees frames k..k+6 and is scored on "
         "truth window k+6; windows 0-5 take output 0. `covered` = windows >= 6 only.", ""]
    for name, d in res["datasets"].items():
        L += [f"## {name} ({d['n_recordings']} recordings, PPG channels: {', '.join(d['ppg_channels'])})", "",
              f"- mean of subjects' MAE **{f2(d['mean_of_subjects_mae'])} BPM**, pooled MAE "
              f"**{f2(d['pooled_mae'])} BPM** ({d['n_scored']} windows, {100 * d['frac_over_10bpm']:.1f} % off "
              f"by > 10 BPM); pooled on covered windows only: {f2(d['pooled_mae_covered'])}",
              f"- range over {d['n_draws']} dropout draws (seeds 0..{d['n_draws'] - 1}): mean of subjects "
              f"{rng(d['per_draw']['mean_of_subjects'])}, pooled {rng(d['per_draw']['pooled'])} BPM",
              f"- doubtful reference windows left out: {d['n_doubtful']}", "",
              "| subject | MAE | MAE covered | windows | recordings |", "|---|---|---|---|---|"]
        L += [f"| {k} | {f2(s['mae'])} | {f2(s['mae_covered'])} | {s['n_scored']} | {', '.join(s['recordings'])} |"
              for k, s in d["subjects"].items()]
        L += ["", "| recording | MAE | MAE covered | scored / windows | doubtful | BeliefPPG s |",
              "|---|---|---|---|---|---|"]
        L += [f"| {k} | {f2(r['mae'])} | {f2(r['mae_covered'])} | {r['n_scored']} / {r['n_windows']} | "
              f"{r['n_doubtful']} | {r['seconds']:.1f} |" for k, r in d["recordings"].items()] + [""]
    return "\n".join(L)


def load_saved(path: Path) -> dict:
    """A beliefppg_peer*.json with per-recording predictions (--rescore), or one line saying why not."""
    import json
    try:
        saved = json.loads(path.read_text())
        if all("pred" in r for d in saved["datasets"].values() for r in d["recordings"].values()):
            return saved
    except FileNotFoundError:
        fail(f"--rescore {path}: no such file")
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    fail(f"--rescore {path}: not a beliefppg_peer results file with per-recording predictions")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--data", default=None, help="your own recordings instead of --datasets: a dataset.yaml with "
                    "heart-rate labels over 8 s windows every 2 s (or a built-in name)")
    ap.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    ap.add_argument("--venv", type=Path, default=ROOT / ".venv-beliefppg")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for beliefppg_peer.{json,md}")
    ap.add_argument("--seeds", type=int, default=3, help="dropout draws per recording (seeds 0..N-1)")
    ap.add_argument("--rescore", type=Path, default=None, metavar="JSON",
                    help="score a saved beliefppg_peer*.json's predictions against the truth the readers give now "
                    "(its datasets, or --data's); no TensorFlow")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        fail("--seeds must be >= 1")
    saved = load_saved(a.rescore) if a.rescore else None
    if saved is not None and a.data is None:
        a.datasets = [n for n in saved["datasets"] if n in DATASETS] or fail(
            f"--rescore {a.rescore}: holds no built-in dataset ({', '.join(saved['datasets'])}); give its --data")
    if a.data is None or a.data_root:                  # own data needs a data root only to name a built-in
        a.data_root = Path(data_root_or_exit(a.data_root, fail))
    sets = sources(a.data_root, a.datasets, a.data)
    command = " ".join(["python benchmarks/beliefppg_peer.py", *(sys.argv[1:] if argv is None else argv)])
    if saved is None:
        t0, py = time.perf_counter(), ensure_venv(a.venv)
        recs = export(sets, WORK)
        peer_s = run_peer(py, recs, WORK, a.seeds)
        res = dict(package=PACKAGE, decoding="sumproduct", seeds=a.seeds,
                   when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command=command,
                   peer_s=peer_s, wall_s=time.perf_counter() - t0, datasets=score(recs))
    else:
        recs = export(sets, WORK, write=False)
        for r in recs:
            entry = saved["datasets"].get(r["dataset"], {}).get("recordings", {}).get(r["record"])
            if entry is None:
                fail(f"--rescore {a.rescore}: no predictions of {r['dataset']}/{r['record']}")
            r["outputs"] = saved_outputs(r, entry)
        res = {**{k: saved[k] for k in ("package", "decoding", "seeds", "when", "command", "peer_s", "wall_s")},
               "rescored": dict(when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), command=command),
               "datasets": score(recs)}
    res["note"] = ("shipped weights may have seen SP Cup 2015 training data; SP Cup row is not held out"
                   if "troika" in res["datasets"] else "")       # as render's caution
    a.out.mkdir(parents=True, exist_ok=True)
    stem = "beliefppg_peer" if a.data is None else f"beliefppg_peer_{sets[0][0]}"
    write_metrics(a.out, res, f"{stem}.json")
    atomic_write_text(a.out / f"{stem}.md", render(res))
    for name, d in res["datasets"].items():
        subs = ", ".join(f"{k} {f2(s['mae'])}" for k, s in d["subjects"].items())
        print(f"{name}: mean of subjects {f2(d['mean_of_subjects_mae'])}, pooled {f2(d['pooled_mae'])} BPM ({subs})")
    print(f"wrote {a.out / (stem + '.md')} ({res['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
