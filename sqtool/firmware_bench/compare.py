"""`sqtool bench --compare A,B`: two bench runs of the same recordings side by side, paired by subject.

    sqtool bench --compare runs/bench/v1,runs/bench/v2                 # each a bench run folder or its bench.json
    sqtool bench --compare v1/bench.json,v2/bench.json --runtime c_host --out runs/bench/v1_vs_v2

Both runs must have scored the same recordings: the same recordings (id, subject, seconds, windows, windows
with truth), the same windows in all, the same --max-seconds, and the runtime compared (--runtime, default A's
primary) must have run in both; anything else is refused in one line naming what differs. Written into the run
folder: compare.md and compare.json with, per subject, the MAE of A and of B (BPM, or the unit of the output another
task's bench scored; two runs of different outputs are refused) and the paired difference
B - A; then the mean over subjects with a 95 % t-interval of the mean difference and a sign-flip permutation p
over the subjects (core.metrics.paired_subject_test: a percentile bootstrap is too narrow for a few subjects), and
which run is better only where p < 0.05 and the interval excludes zero. Subjects either model was trained on (bench.json `seen_in_training`) are marked and left out of
the mean while any other subject remains. The command's `next:` line (`next_line`) names the better model's
predict command, or, without a verdict on held-out subjects, asks for both exports benched on more recordings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError
from sqtool.core.io import finite_number, read_json
from sqtool.core.runs import shell_command


def load_bench(path: str) -> tuple[dict, Path]:
    """(bench.json's content, its path) of a bench run folder or a bench.json file; a metric it could not compute
    is None (null in the file; NaN in a file of an older sqtool, read as None too): a subject without an MAE in
    either run is listed, not paired. An unfinished bench run (killed: a --force'd folder still holds the earlier
    run's bench.json) is refused in one line."""
    from sqtool.core.runs import unfinished_run
    p = Path(path).expanduser()
    f = p / "bench.json" if p.is_dir() else p
    if unfinished := unfinished_run(f.parent, "finished bench.json"):     # killed: its bench.json may be older
        raise SqtoolError(f"--compare {path}: {unfinished}")
    if not f.is_file():
        raise SqtoolError(f"--compare {path}: no bench.json there (give a `sqtool bench` run folder or its "
                          "bench.json)")
    try:
        res = read_json(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SqtoolError(f"--compare {f}: not a readable bench.json ({type(e).__name__})")
    if not isinstance(res, dict) or not isinstance(res.get("runtimes"), list):
        raise SqtoolError(f"--compare {f}: not a bench.json (no runtimes)")
    return res, f


def recordings(res: dict) -> dict:
    """What a bench run scored, as compared between two runs: the recordings and the windows."""
    p = res.get("provenance") or {}
    d = {"kind": res.get("kind", "time-domain")}
    if res.get("records"):                             # the spectral bench: every recording with its windows
        d["recordings"] = [f"{r.get('record_id')} ({r.get('subject')}, {r.get('seconds'):g} s, {r.get('windows')} "
                           f"windows, {r.get('truth_windows')} with truth)" for r in res["records"]]
    else:                                              # the time-domain bench keeps only its provenance
        d.update(data=p.get("data"), recordings=p.get("records"), stream=p.get("stream"))
    d.update({"--max-seconds": p.get("max_seconds") or None, "windows": p.get("windows")})
    return d


def check_same(a: dict, b: dict, names: tuple[str, str]) -> None:
    """Refuse, in one line, two runs that did not score the same recordings and windows."""
    da, db = recordings(a), recordings(b)
    for k in da:
        if da[k] != db.get(k):
            va, vb = da[k], db.get(k)
            if isinstance(va, list) and isinstance(vb, list):
                i = next((i for i, (x, y) in enumerate(zip(va, vb)) if x != y), min(len(va), len(vb)))
                va = va[i] if i < len(va) else f"{len(va)} recordings"
                vb = vb[i] if i < len(vb) else f"{len(vb)} recordings"
                k = f"{k} (#{i + 1})"
            raise SqtoolError(f"--compare: {names[0]} and {names[1]} were not run on the same data: {k} "
                              f"{va!r} vs {vb!r}; bench both exports with the same --data, --max-records and "
                              "--max-seconds")


def _row(res: dict, runtime: str) -> dict | None:
    return next((r for r in res["runtimes"] if r.get("runtime") == runtime and r.get("status") == "ok"), None)


def compare(a: dict, b: dict, runtime: str | None = None, names: tuple[str, str] = ("A", "B"),
            seed: int = 0) -> dict:
    """The paired comparison of bench results `a` and `b` (bench.json dicts) on `runtime` (default: a's primary)."""
    from sqtool.firmware_bench.report import target_of
    check_same(a, b, names)
    ta, tb = target_of(a), target_of(b)
    if ta.output != tb.output:
        raise SqtoolError(f"--compare: {names[0]} scored {ta.output} and {names[1]} {tb.output}: compare two runs "
                          "of models of the same task")
    if ta.kind == "class":
        raise SqtoolError(f"--compare pairs per-subject MAE; {names[0]} and {names[1]} scored {ta.output}, a class's "
                          "logit (an AUROC ranks windows across subjects): compare their bench.md tables")
    if a.get("labelled") is False or b.get("labelled") is False:
        raise SqtoolError(f"--compare: {names[0] if a.get('labelled') is False else names[1]} has no "
                          f"{'heart-rate truth' if ta.tracked else 'truth' if not ta.scored else ta.truth} (accuracy "
                          "not measured): nothing to compare")
    runtime = runtime or a.get("primary")
    if runtime is None:
        raise SqtoolError(f"--compare: {names[0]} has no primary runtime (none scored every window, e.g. only an "
                          "--mcu-windows subset ran): name one with --runtime")
    ra, rb = _row(a, runtime), _row(b, runtime)
    if ra is None or rb is None:
        both = [r["runtime"] for r in a["runtimes"] if r.get("status") == "ok" and _row(b, r["runtime"])]
        raise SqtoolError(f"--compare: runtime {runtime} did not run in {names[0] if ra is None else names[1]} "
                          f"(--runtime: one that ran in both: {', '.join(both) or 'none'})")
    pa, pb = ra.get("per_subject") or {}, rb.get("per_subject") or {}
    if not pa or set(pa) != set(pb):
        raise SqtoolError(f"--compare: {runtime} has no per-subject scores in both runs (bench.json runtimes[]."
                          "per_subject; a bench from an older sqtool?)")
    seen_a, seen_b = set(a.get("seen_in_training") or ()), set(b.get("seen_in_training") or ())
    subjects = []
    for s in pa:
        ma, mb = pa[s].get("mae"), pb[s].get("mae")
        subjects.append({"subject": s, "windows": pa[s].get("n"), "mae_a": ma, "mae_b": mb,
                         "diff": mb - ma if finite_number(ma) and finite_number(mb) else None,
                         "seen_in_training": [n for n, seen in (("A", seen_a), ("B", seen_b)) if s in seen]})
    paired = [s for s in subjects if s["diff"] is not None]
    held = [s for s in paired if not s["seen_in_training"]]
    use = held or paired
    diffs = np.array([s["diff"] for s in use])
    mean = {"subjects": len(use), "mae_a": _mean([s["mae_a"] for s in use]), "mae_b": _mean([s["mae_b"] for s in use]),
            "diff": _mean(diffs), "diff_ci95": None,
            "over": ("held out by both" if held and len(held) < len(paired) else
                     "seen in training: optimistic" if not held and paired else "all")}
    if len(diffs) >= 2:
        from sqtool.core.metrics import paired_subject_test
        t = paired_subject_test(diffs, seed=seed)
        mean.update(diff_ci95=t["ci95"], p=t["p"], shown=t["shown"],
                    ci_method=f"t-interval over {len(diffs)} subjects, sign-flip permutation p")
    return {"runtime": runtime, "a": _side(a, names[0]), "b": _side(b, names[1]), "data": recordings(a),
            "output": ta.output, "unit": ta.unit, "subjects": subjects, "mean": mean,
            "verdict": verdict(mean, ta.unit)}


def _mean(v) -> float | None:
    return float(np.mean(v)) if len(v) else None


def _side(res: dict, name: str) -> dict:
    p = res.get("provenance") or {}
    return {"bench": name, "model": p.get("model"), "model_dir": p.get("model_dir"),
            "source_sha256": p.get("source_sha256"), "model_sha256": p.get("model_sha256"),
            "sqtool_version": p.get("sqtool_version"), "git_sha": p.get("git_sha")}


def verdict(mean: dict, unit: str = "BPM") -> str:
    """Which run has the lower MAE, said only where the CI of the mean difference B - A excludes zero."""
    ci = mean.get("diff_ci95")
    if ci is None:
        return f"no verdict: {mean['subjects']} paired subject(s), too few for a CI"
    said = f"B - A MAE {mean['diff']:+.2f} {unit}, 95 % CI {ci[0]:+.2f} to {ci[1]:+.2f}, p {mean['p']:.3f}"
    if mean["shown"]:
        return f"{'A' if mean['diff'] > 0 else 'B'} is better: {said}"
    why = "includes 0" if ci[0] <= 0 <= ci[1] else "p >= 0.05"
    return f"no difference shown: {said} ({why})"


def next_line(c: dict) -> str:
    """The command's `next:` line: the better run's model where the CI shows one on subjects neither model was
    trained on; else bench both exports on more (held-out) recordings and compare again."""
    dirs = {k: c[k].get("model_dir") or f"EXPORT_{k.upper()}" for k in ("a", "b")}
    m, v = c["mean"], c["verdict"]
    win = "a" if v.startswith("A is better") else "b" if v.startswith("B is better") else None
    if win is not None and m["over"] != "seen in training: optimistic":
        predict = shell_command("predict", "--model", dirs[win], "--data", "RECORDING")
        return (f"next: {predict}   ({win.upper()}'s model, the better; "
                f"firmware kit: {Path(dirs[win]) / 'c'})")
    why = ("every paired subject was seen in training" if m["over"] == "seen in training: optimistic" else
           f"{m['subjects']} subject(s) do not separate them")
    bench = shell_command("bench", "--model", dirs["a"], "--data", "MORE_RECORDINGS")
    return (f"next: {bench} (the same for {dirs['b']}, subjects "
            f"neither was trained on), then --compare the two runs ({why})")


def tables(c: dict) -> str:
    """The comparison as text (Markdown tables): who is compared, per subject, the mean, the verdict."""
    from sqtool.firmware_bench.report import _f, _table
    out = [f"{k.upper()}: {c[k]['bench']} (model {c[k]['model']} model_sha256 {str(c[k]['model_sha256'])[:16]})"
           for k in ("a", "b")]
    out += [f"runtime {c['runtime']}; {c['data']['windows']} windows; MAE{' of ' + c['output'] if c.get('output', 'hr_bpm') != 'hr_bpm' else ''} "
            f"in {c.get('unit', 'BPM')} per subject (windows with truth)", ""]
    rows = [[s["subject"] + (f" (seen in training by {' and '.join(s['seen_in_training'])})"
                             if s["seen_in_training"] else ""), _f(s["windows"], "{:d}"), _f(s["mae_a"]),
             _f(s["mae_b"]), _f(s["diff"], "{:+.2f}")] for s in c["subjects"]]
    m = c["mean"]
    ci = m["diff_ci95"]
    label = f"mean of {m['subjects']} subjects" + ("" if m["over"] == "all" else f" ({m['over']})")
    rows.append([label, "", _f(m["mae_a"]), _f(m["mae_b"]),
                 _f(m["diff"], "{:+.2f}") + ("" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]")])
    out += _table(["subject", "windows", "MAE A", "MAE B", "B - A (95% CI)"], rows)
    return "\n".join(out + ["", c["verdict"]])


def run_compare(cfg) -> dict:
    """`sqtool bench --compare A,B` (cfg: BenchConfig): the comparison, written to compare.md / compare.json in
    the run folder (runs/bench/<stamp>-compare or --out)."""
    from sqtool.core import atomic_write_text, write_metrics
    from sqtool.firmware_bench.cli import bench_run_dir, drop_bench_earlier
    from sqtool.firmware_bench.report import as_markdown
    if len(cfg.compare) != 2:
        raise SqtoolError(f"--compare takes two bench runs, A,B; got {len(cfg.compare)}")
    given = [k for k in ("model", "data", "floor") if getattr(cfg, k)]
    if given:
        raise SqtoolError(f"--compare reads two finished bench runs; --{given[0]} is not used with it")
    if len(cfg.runtime) > 1:
        raise SqtoolError("--compare compares one runtime: give --runtime one name (default: A's primary)")
    (a, fa), (b, fb) = load_bench(cfg.compare[0]), load_bench(cfg.compare[1])
    names = tuple(str(f.parent) if f.name == "bench.json" else str(f) for f in (fa, fb))
    c = compare(a, b, cfg.runtime[0] if cfg.runtime else None, names=names)
    run_dir = bench_run_dir(cfg, "compare")
    c["run_dir"] = str(run_dir)
    atomic_write_text(run_dir / "compare.md", "\n".join(["# sqtool bench --compare", "", *as_markdown(tables(c))])
                      + "\n")
    write_metrics(run_dir, c, name="compare.json")        # last: until it is there the run reads as unfinished
    drop_bench_earlier(run_dir, {"compare.md"})
    return c
