"""Benchmark report: metrics, tables (terminal + Markdown), bench.json and plots.

    m = hr_metrics(pred, truth)                 # MAE, MAPE, fraction with |err| > 10 BPM, RMSE, bias, n
    text = tables(result)                       # what `sqtool bench` prints (yolo-benchmark style)
    write_report(run_dir, result)               # bench.json, bench.md, windows.csv, bland_altman.png (with truth),
                                                # hr_over_time.png, latency.png
    line = runtime_line(row)                    # the progress line printed as a runtime finishes

`result` is the dict `sqtool.firmware_bench.cli.run_bench` returns: provenance, per-runtime rows,
the baseline row, and per-record series for the plots. Instruction counts are labelled instructions
(QEMU / valgrind count executed instructions, not cycles). Without heart-rate truth (`result["labelled"]`
False) the accuracy columns are "-", a NOTE says accuracy was not measured, and the fidelity table (each
runtime's decoded HR against its reference runtime's) and the cost tables carry the report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqtool.core import SqtoolError, atomic_savefig, atomic_write_text, write_metrics
from sqtool.data.record import TooShort

GT = 10.0    # BPM: a window is "wrong" beyond this error
SAME_HR_BPM = 0.05   # BPM: two runtimes' decoded heart rates this close are the same HR (float outputs differ in bits)
PANELS = 24  # hr_over_time.png: panels of the first recordings (1,000 spot checks: 1500 x 86,840 px, 22 MB, a minute)


def panels_note(res: dict, n: int, name: str = "hr_over_time.png") -> int:
    """How many of n recordings get a panel in `name` (the first PANELS); a folder of more adds one line to
    res["notes"] saying so (bench.json per_record and the per-subject table keep every recording)."""
    if n <= PANELS:
        return n
    res.setdefault("notes", []).append(f"{name}: the first {PANELS} of {n} recordings, one panel each (every "
                                       "recording's figures: bench.json per_record)")
    return PANELS


@dataclass(frozen=True)
class Target:
    """What a time-domain bench scores, from the export's metadata (`bench_target`): heart rate (hr_bpm against
    the ECG truth, > 10 BPM %, the causal tracker), another regression task's first output against the
    recording's own label (rr: breaths/min from the breath marks; bp: the recording's value on its first window;
    a dataset file's label), or a class's logit (af, quality: kind "class", AUROC and F1 against the recording's
    class label, 1 = AF / good)."""
    output: str                      # the scored output (metadata.json's outputs)
    unit: str                        # BPM, breaths/min, mmHg, logit
    what: str                        # how the tables name the quantity
    truth: str                       # how they name its reference
    gt: float | None = None          # a window is "wrong" beyond this error (heart rate only)
    tracked: bool = False            # the causal heart-rate tracker runs on it
    scored: bool = True              # compared with a truth (False: a logit no class label reads)
    window_s: float = 8.0            # plots put each estimate at its window's centre
    kind: str = "value"              # "value" (MAE) | "class" (a logit: AUROC, F1, accuracy; `class_metrics`)


HEART_RATE = Target("hr_bpm", "BPM", "heart rate", "ECG truth", gt=GT, tracked=True)


def target_of(res: dict) -> Target:
    """The Target of a bench result (bench.json's `target`; heart rate for a result written before it had one)."""
    t = res.get("target")
    return Target(**t) if t else HEART_RATE


def hr_metrics(pred: np.ndarray, truth: np.ndarray, gt: float | None = GT) -> dict:
    """Error statistics over windows with a truth value; windows without a prediction count as misses
    in `coverage` and are left out of the error statistics. gt10: the fraction beyond `gt` (heart rate's 10 BPM;
    None for a quantity without one); mape: % of the reference (`core.metrics.mape`; None where a reference is not
    above 0)."""
    from sqtool.core.metrics import mape
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    has = np.isfinite(truth)
    ok = has & np.isfinite(pred)
    if not ok.any():
        return {"n": int(has.sum()), "coverage": 0.0, "mae": None, "mape": None, "rmse": None, "bias": None,
                "gt10": None}
    e = pred[ok] - truth[ok]
    return {"n": int(has.sum()), "coverage": float(ok.sum() / max(1, has.sum())), "mae": float(np.abs(e).mean()),
            "mape": mape(truth[ok], pred[ok]), "rmse": float(np.sqrt((e ** 2).mean())), "bias": float(e.mean()),
            "gt10": None if gt is None else float((np.abs(e) > gt).mean())}


def class_metrics(logit: np.ndarray, truth: np.ndarray) -> dict:
    """A class logit against its 0 / 1 truth, over windows with both (`coverage` as `hr_metrics`'s): AUROC (None with
    one class only), weighted F1 and accuracy at p 0.5 (logit 0), the windows with truth (n) and the positives among
    them; mae, rmse, bias and gt10 are None, so a class row reads as not having them."""
    from sqtool.core.metrics import auroc, f1_weighted
    logit, truth = np.asarray(logit, float), np.asarray(truth, float)
    has = np.isfinite(truth)
    ok = has & np.isfinite(logit)
    out = {"n": int(has.sum()), "coverage": float(ok.sum() / max(1, has.sum())), "positives": int((truth[ok] > 0.5).sum()),
           "auroc": None, "f1": None, "accuracy": None, "mae": None, "mape": None, "rmse": None, "bias": None,
           "gt10": None}
    if ok.any():
        y, yhat = truth[ok] > 0.5, logit[ok] > 0.0
        a = auroc(y, logit[ok])
        out.update(auroc=float(a) if np.isfinite(a) else None, f1=f1_weighted(y, yhat),
                   accuracy=float((y == yhat).mean()))
    return out


def target_metrics(target: Target, pred: np.ndarray, truth: np.ndarray) -> dict:
    """A runtime's (or a reference's) accuracy on `target`: `class_metrics` for a class, else `hr_metrics` (with
    heart rate's > 10 BPM fraction where the target has one)."""
    return class_metrics(pred, truth) if target.kind == "class" else hr_metrics(pred, truth, target.gt)


def subjects_auroc(per_subject: dict) -> dict:
    """AUROC by subject: the mean over the subjects whose windows hold both classes (per_subject: subject ->
    `class_metrics`), their count and the count of subjects scored; {} when none holds both."""
    v = [s["auroc"] for s in per_subject.values() if s.get("auroc") is not None]
    return {"mean": float(np.mean(v)), "subjects": len(v), "of": len(per_subject)} if v else {}


NONE_ROW = "(none)"          # the table by condition's row of the windows without one (so its windows sum to all)


def condition_scores(pred: np.ndarray, truth: np.ndarray, conditions: np.ndarray, subjects: np.ndarray,
                     gt: float | None = GT) -> dict | None:
    """By activity condition (`data.record.window_conditions`, "" = none: NONE_ROW, last): `spectral.hr_scores`
    (n: scored windows, MAE, MAPE, bias, loa95, ...) of the windows with truth in it, and `subjects`, how many subjects
    have a scored window there; bench.json's per_condition of a runtime. None when no window has a condition (the
    report is then as without them)."""
    from sqtool.firmware_bench.spectral import hr_scores
    conditions = np.asarray(conditions, dtype=object)
    if not (conditions != "").any():
        return None
    pred, truth, subjects = np.asarray(pred, float), np.asarray(truth, float), np.asarray(subjects)
    out = {}
    for c in sorted(set(conditions.tolist()) - {""}) + ([""] if (conditions == "").any() else []):
        m = conditions == c
        d = hr_scores(pred[m], truth[m], gt=gt)
        d["subjects"] = len(set(subjects[m & np.isfinite(truth) & np.isfinite(pred)].tolist()))
        out[c or NONE_ROW] = d
    return out


WINDOWS_CSV = "windows.csv"


def write_windows_csv(run_dir, columns: dict) -> str:
    """windows.csv: one row per window of the bench, `columns` (name -> (N,) values) in their order: record, subject,
    t0_s (its start, s from the recording's), condition ("" = none), truth and each runtime's estimate (the target's
    unit, before any tracker; empty = none): what a validation recomputes its own statistics from. Returns its name."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    cols = [np.asarray(v) for v in columns.values()]
    for i in range(len(cols[0]) if cols else 0):
        w.writerow(["" if isinstance(v[i], (float, np.floating)) and not np.isfinite(v[i]) else
                    f"{v[i]:.6f}" if isinstance(v[i], (float, np.floating)) else str(v[i]) for v in cols])
    atomic_write_text(Path(run_dir) / WINDOWS_CSV, buf.getvalue())
    return WINDOWS_CSV


def condition_lines(rows: list[dict], unit: str = "BPM", seen: int = 0, held_out: bool = False) -> list[str]:
    """bench.md's table by condition: one row per condition, for each of `rows` (the primary runtime, the baseline)
    that has per_condition, its windows, subjects, MAE, MAPE, bias and 95 % limits of agreement; [] when none has.
    `seen`: scored subjects the model was trained on, counted in it (said in its title). `held_out`: the rows' held-out
    blocks instead (the spectral bench's held_out.per_condition: the conditions a held-out subject scored in)."""
    if held_out:
        rows = [{"runtime": r["runtime"], "per_condition": r["held_out"]["per_condition"]}
                for r in rows if r and (r.get("held_out") or {}).get("per_condition")]
    rows = [r for r in rows if r and r.get("per_condition")]
    if not rows:
        return []
    names = list(dict.fromkeys(c for r in rows for c in r["per_condition"]))
    body = []
    for c in names:
        line = [c]
        for r in rows:
            m = r["per_condition"].get(c) or {}
            loa = m.get("loa95")
            line += [_f(m.get("n"), "{:d}"), _f(m.get("subjects"), "{:d}"), _f(m.get("mae")),
                     _f(m.get("mape"), "{:.1f}"), _f(m.get("bias"), "{:+.2f}"),
                     "-" if not loa else f"{loa[0]:+.1f}..{loa[1]:+.1f}"]
        body.append(line)
    head = ["condition"] + sum(([f"{r['runtime']} windows", "subjects", f"MAE {unit}", "MAPE %", f"bias {unit}",
                                 f"LoA 95% {unit}"] for r in rows), [])
    also = f"; counts the {seen} subject{'s' if seen != 1 else ''} seen in training" if seen else ""
    none = f"; {NONE_ROW}: windows without a condition" if NONE_ROW in names else ""
    what = "held-out subjects only, by condition" if held_out else "by condition"
    return (["", f"{what} ({unit}, windows with truth; MAPE: % of the reference; LoA: bias +- 1.96 SD"
                 f"{none}{also})"] + _table(head, body))


def _f(v, fmt="{:.2f}", none="-"):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return none
    return fmt.format(v)


def _kb(v):
    return _f(None if v is None else v / 1024, "{:.1f}")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(header)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    return [line, sep] + ["| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |" for r in rows]


def as_markdown(text: str) -> list[str]:
    """Console tables -> Markdown lines: every line its own paragraph line (hard break), a blank line before
    each table so it renders as one (no code fence)."""
    out = []
    for line in text.splitlines():
        if line.startswith("|") and out and out[-1] and not out[-1].startswith("|"):
            out.append("")
        out.append(line if line.startswith("|") or not line.strip() else line + "  ")
    return out


def provenance_lines(p: dict) -> list[str]:
    from sqtool.firmware_bench.provenance import model_id_text
    t = p.get("tools", {})
    return [f"sqtool {p.get('sqtool_version')} (git {p.get('git_sha')})  model {p.get('model')} {model_id_text(p)}"
            f"  quant {p.get('quant_scheme')}",
            f"data {p.get('data')}: {p.get('records')} recordings, {p.get('windows')} windows, "
            f"{_f(p.get('signal_hours'), '{:.2f}')} h; stream {p.get('stream')}",
            f"gcc: {t.get('gcc')} | arm: {t.get('arm_none_eabi_gcc')} | {t.get('qemu')} | {t.get('valgrind')}"]


def runtime_line(row: dict, unit: str = "BPM") -> str:
    """`bench: tflm_int8: ok, 412 windows, MAE 7.91 BPM, 0.081 ms/window (3.2 s)`: the progress line printed
    as each runtime (and the baseline) finishes (`unit`: the scored output's, `Target.unit`)."""
    if row.get("status") != "ok":
        return f"bench: {row['runtime']}: {row.get('status')}: {row.get('error')}"
    m = row.get("metrics") or {}
    mae = (f"MAE {m['mae']:.2f} {unit}" if m.get("mae") is not None else
           f"AUROC {m['auroc']:.3f}" if m.get("auroc") is not None else
           "AUROC not measured (one class)" if m.get("f1") is not None else "accuracy not measured")
    n = f"{row['windows']} windows, " if row.get("windows") is not None else ""
    lat = f", {row['latency_ms_mean']:.3f} ms/window" if row.get("latency_ms_mean") is not None else ""
    sec = f" ({row['seconds']:.1f} s)" if row.get("seconds") is not None else ""
    return f"bench: {row['runtime']}: ok, {n}{mae}{lat}{sec}"


def _file(r: dict) -> str:
    f = r.get("file") or ""
    if r["runtime"] == "c_host" and f.endswith(".c"):
        return f"{Path(f).name} + .h"
    return Path(f).name if f else "-"


def per_subject(res: dict) -> list[dict]:
    """Per subject: recordings, windows with truth, and MAE / RMSE / bias (in the target's unit; a class's
    `class_metrics`) of the primary runtime and the baseline, from the per-window predictions (before the tracker)."""
    tg = target_of(res)
    series = res.get("series") or {}
    recs = series.get("records") or []
    cols = [k for k in (res.get("primary"), "baseline") if k and k in (series.get("pred") or {})]
    subj: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        subj.setdefault(str(r.get("subject") or r["record_id"]), []).append(i)
    out = []
    for s, idx in subj.items():
        truth = np.concatenate([np.asarray(recs[i]["truth"], float) for i in idx])
        row = {"subject": s, "key": recs[idx[0]].get("key"), "recordings": len(idx),
               "windows": int(np.isfinite(truth).sum())}
        for k in cols:
            pred = np.concatenate([np.asarray(series["pred"][k][i], float) for i in idx])
            row[k] = target_metrics(tg, pred, truth)
        out.append(row)
    return out


def tables(res: dict) -> str:
    """Accuracy (one row per runtime, the baseline last), speed and size, per subject, then the firmware
    table. One meaning per column; every number's unit in its header (the target's: BPM for heart rate,
    breaths/min for rr, ...; > 10 BPM % and the tracked MAE for heart rate only)."""
    tg = target_of(res)
    u = tg.unit
    allrows = res["runtimes"] + [res["baseline"]] + ([res["trivial"]] if res.get("trivial") else [])
    labelled = res.get("labelled", True)
    acc, speed = [], []
    cls = tg.kind == "class"
    for r in allrows:
        m, mt = r.get("metrics") or {}, r.get("metrics_tracked") or {}
        n = [_f(None if m.get("n") is None or not labelled else m["n"], "{:d}")]
        if cls:                                       # a class's logit: AUROC, F1, accuracy at logit 0
            acc.append([r["runtime"], r["status"], r.get("precision", ""), _f(m.get("auroc"), "{:.3f}"),
                        _f(m.get("f1"), "{:.3f}"), _f(None if m.get("accuracy") is None else 100 * m["accuracy"],
                                                       "{:.1f}"), _f(m.get("positives"), "{:d}")] + n)
        else:
            acc.append([r["runtime"], r["status"], r.get("precision", ""), _f(m.get("mae")), _f(m.get("mape")),
                        _f(m.get("rmse")), _f(m.get("bias"), "{:+.2f}")]
                       + ([_f(None if m.get("gt10") is None else 100 * m["gt10"], "{:.1f}")] if tg.gt is not None
                          else [])
                       + ([_f(mt.get("mae"))] if tg.tracked else []) + n)
        if r["runtime"] == "trivial":                 # a constant: accuracy only
            continue
        speed.append([r["runtime"], _file(r) if r["runtime"] != "baseline" else "-", _kb(r.get("size_bytes")),
                      _f(r.get("latency_ms_p50"), "{:.3f}"), _f(r.get("latency_ms_p99"), "{:.3f}"),
                      _f(r.get("exact_pct"), "{:.1f}"), r.get("exact_ref") or "-",
                      _f(r.get("realtime_factor"), "{:.0f}")])
    out = provenance_lines(res["provenance"])
    if not labelled:
        out.append(f"NOTE: {res.get('accuracy') or 'accuracy not measured'}; cost and fidelity only")
    seen = set(res.get("seen_in_training") or ())
    warnings = [n for n in res.get("notes") or [] if n.startswith("WARNING")]   # every one, here on stdout
    if seen and not warnings:   # scored subjects the student was trained on: optimistic MAE
        warnings = ["WARNING: scored subjects were seen in training"]
    out += warnings
    if cls:
        out += ["", f"accuracy ({tg.what}, windows with {tg.truth}; F1 weighted and accuracy at p 0.5)" if labelled
                else f"accuracy: not measured (no recording has {tg.truth})"]
        out += _table(["runtime", "status", "precision", "AUROC", "F1", "accuracy %", "positives", "windows"], acc)
        by = [(k, r["by_subject"]) for k in (res.get("primary"), "baseline") for r in allrows
              if r["runtime"] == k and r.get("by_subject")]
        if labelled and by:
            out += ["AUROC by subject (mean over the subjects whose windows hold both classes): " + "; ".join(
                f"{k} {b['mean']:.3f} over {b['subjects']} of {b['of']}" for k, b in by)]
    elif tg.scored:
        out += ["", f"accuracy ({u}, windows with {tg.truth})" if labelled else
                "accuracy: not measured (no truth)"]
        out += _table(["runtime", "status", "precision", f"MAE {u}", "MAPE %", f"RMSE {u}", f"bias {u}"]
                      + ([f">{tg.gt:g} {u} %"] if tg.gt is not None else [])
                      + ([f"MAE tracked {u}"] if tg.tracked else []) + ["windows"], acc)
    else:                                             # a class's logit: no MAE to tabulate, each runtime's status
        out += ["", f"accuracy: not measured ({tg.output} is a class's logit)"]
        out += _table(["runtime", "status", "precision"], [a[:3] for a in acc if a[0] != "baseline"])
    out += ["", "speed and size (host, one thread)"]
    out += _table(["runtime", "file loaded", "file KB", "p50 ms", "p99 ms", "bit-exact %", "exact vs",
                   "x real time"], speed)
    fid = [r for r in res["runtimes"] if r.get("fidelity")]
    if fid:
        short = "HR" if tg.tracked else tg.output
        out += ["", f"fidelity ({'decoded HR' if tg.tracked else tg.output} vs the reference runtime's"
                    f"{', before the tracker' if tg.tracked else ''})"]
        out += _table(["runtime", "vs", "windows", f"{short} diff mean {u}", f"{short} diff max {u}",
                       f"same {short} % (<= {SAME_HR_BPM:g} {u})", "bit-exact %"],
                      [[r["runtime"], r["fidelity"]["ref"], str(r["fidelity"]["windows"]),
                        _f(r["fidelity"]["hr_diff_mean"], "{:.3f}"), _f(r["fidelity"]["hr_diff_max"], "{:.3f}"),
                        _f(r["fidelity"]["hr_equal_pct"], "{:.1f}"), _f(r["fidelity"].get("exact_pct"), "{:.1f}")]
                       for r in fid])
    same: dict[str, list[str]] = {}                   # the runtimes whose C front end made the same inputs: one line
    for r in res["runtimes"]:
        if fe := r.get("front_end"):
            same.setdefault(json.dumps(fe, sort_keys=True), []).append(r["runtime"])
    for key, names in same.items():
        fe = json.loads(key)
        out += ["", f"C front end ({', '.join(names)}: c/sq_window.c, {fe['fs_in']:g} Hz device samples) against the "
                    f"stream's int8 inputs: {fe['windows']} windows, codes equal {_f(fe['codes_equal_pct'], '{:.3f}')} "
                    f"%, windows equal {_f(fe['windows_equal_pct'], '{:.1f}')} %, at most {fe['max_lsb']} LSB apart"]
    if labelled and not cls:
        out += condition_lines([r for r in res["runtimes"] if r["runtime"] == res.get("primary")] + [res["baseline"]],
                               u, seen=len(seen))
    subj = per_subject(res) if labelled else []
    if subj and cls:
        cols = [k for k in (res.get("primary"), "baseline") if k and k in subj[0]]
        srows = [[s["subject"] + (" (seen in training)" if s.get("key") in seen else ""), str(s["recordings"]),
                  str(s["windows"]), _f(s[cols[0]]["positives"] if cols else None, "{:d}")]
                 + sum(([_f(s[k]["auroc"], "{:.3f}"), _f(s[k]["f1"], "{:.3f}")] for k in cols), [])
                 for s in subj]
        out += ["", f"per subject ({tg.what}; AUROC '-' where the subject's windows hold one class)"]
        out += _table(["subject", "recordings", "windows", "positives"]
                      + sum(([f"{k} AUROC", f"{k} F1"] for k in cols), []), srows)
    elif subj:
        cols = [k for k in (res.get("primary"), "baseline") if k and k in subj[0]]
        srows = [[s["subject"] + (" (seen in training)" if s.get("key") in seen else ""), str(s["recordings"]),
                  str(s["windows"])]
                 + sum(([_f(s[k]["mae"]), _f(s[k]["rmse"]), _f(s[k]["bias"], "{:+.2f}")] for k in cols), [])
                 for s in subj]
        out += ["", f"per subject ({u}, per-window estimates{' before the tracker' if tg.tracked else ''})"]
        out += _table(["subject", "recordings", "windows"]
                      + sum(([f"{k} MAE {u}", f"{k} RMSE {u}", f"{k} bias {u}"] for k in cols), []), srows)
    fw = [r for r in res["runtimes"] if r["runtime"].startswith(("mcu_", "c_host")) and r["status"] == "ok"]
    if fw:
        out += ["", "firmware (instructions are executed instructions, not cycles)"]
        frows = []
        for r in fw:
            frows.append([r["runtime"], r.get("cpu", "host x86-64"),
                          _f(r.get("instructions_per_inference"), "{:,.0f}"),
                          _kb(r.get("flash_bytes")), _kb(r.get("ram_bytes")),
                          _f(r.get("stack_high_water_bytes"), "{:.0f}"),
                          _kb(r.get("model_const_bytes")), _kb(r.get("arena_bytes"))])
        out += _table(["firmware", "cpu", "instructions / inference", "flash KB", "RAM KB", "stack B",
                       "model const KB", "arena KB"], frows)
        for r in fw:
            if r.get("front_end_instructions_per_window") is not None:
                out.append(f"{r['runtime']}: the whole loop per window, front end (c/sq_window.c) "
                           f"{r['front_end_instructions_per_window']:,.0f} + network "
                           f"{r['network_instructions_per_window']:,.0f} instructions; front-end state "
                           f"{r.get('front_end_state_bytes') or 0:,} B of the RAM")
    if res.get("floor"):
        out += ["", floors_line(res["floor"])]
    return "\n".join(out)


# ----------------------------------------------------------------------------- plots

def _mae(pred, truth) -> float | None:
    return hr_metrics(np.asarray(pred, float), np.asarray(truth, float))["mae"]


def _plots(run_dir: Path, res: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    tg = target_of(res)
    u = tg.unit
    series = res.get("series") or {}
    primary = res.get("primary")
    recs = series.get("records", [])
    cols = [k for k in (primary, "baseline") if k and k in series.get("pred", {})]
    if tg.kind == "class":                            # a class's logit: its ROC curves instead of the value plots
        if cols and recs and res.get("labelled", True):
            made.append(_roc_plot(run_dir, tg, series, cols, recs))
        recs = []
    # Bland-Altman: primary runtime and the baseline, on shared axes (needs truth)
    if cols and recs and res.get("labelled", True):
        fig, axes = plt.subplots(1, len(cols), figsize=(5.5 * len(cols), 4.2), squeeze=False, sharex=True,
                                 sharey=True)
        truth = np.concatenate([np.asarray(r["truth"], float) for r in recs])
        for ax, k in zip(axes[0], cols):
            pred = np.concatenate([np.asarray(p, float) for p in series["pred"][k]])
            ok = np.isfinite(pred) & np.isfinite(truth)
            mean, diff = (pred[ok] + truth[ok]) / 2, pred[ok] - truth[ok]
            ax.scatter(mean, diff, s=4, alpha=0.4)
            if diff.size:
                b, sd = diff.mean(), diff.std()
                for v, ls in ((b, "-"), (b + 1.96 * sd, "--"), (b - 1.96 * sd, "--")):
                    ax.axhline(v, color="k", ls=ls, lw=0.8)
                ax.set_title(f"{k}: MAE {np.abs(diff).mean():.2f} {u}, bias {b:+.2f} {u}, "
                             f"LoA +-{1.96 * sd:.1f} {u}", fontsize=9)
            ax.set_xlabel(f"mean of estimate and {tg.truth} ({u})")
        axes[0][0].set_ylabel(f"estimate - truth ({u})")
        fig.tight_layout()
        atomic_savefig(fig, run_dir / "bland_altman.png", dpi=110)
        plt.close(fig)
        made.append("bland_altman.png")
    # heart rate (or the target) over time (tracked estimates vs ECG truth), one panel per recording, shared axis
    if recs:
        name = f"{'hr' if tg.tracked else tg.output}_over_time.png"
        n = panels_note(res, len(recs), name)
        ncol = 3 if n > 4 else n
        nrow = -(-n // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 2.6 * nrow), squeeze=False, sharey=True)
        for i, r in enumerate(recs[:n]):
            ax = axes[i // ncol][i % ncol]
            t = np.asarray(r["t0"], float) + tg.window_s / 2
            ax.plot(t, r["truth"], "k-", lw=1.2, label=tg.truth)
            maes = []
            for k in cols:
                ax.plot(t, series["pred_tracked"][k][i], lw=0.9, label=k)
                maes.append(f"{k} {_f(_mae(series['pred_tracked'][k][i], r['truth']))}")
            has_truth = bool(np.isfinite(np.asarray(r["truth"], float)).any())
            tracked = "tracked " if tg.tracked else ""
            ax.set_title(f"{r['record_id']}: {tracked}MAE " + ", ".join(maes) + f" {u}" if has_truth
                         else f"{r['record_id']}: {tracked}{tg.what} (no truth)", fontsize=8)
            ax.set_xlabel("time (s)")
            if i % ncol == 0:
                ax.set_ylabel(f"{tg.what} ({u})")
        for j in range(n, nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        atomic_savefig(fig, run_dir / name, dpi=100)
        plt.close(fig)
        made.append(name)
    # latency: one bar per runtime (median, p99 whisker), sorted fastest first
    lat = {k: np.asarray(v, float) for k, v in (series.get("latency_ms") or {}).items() if len(v)}
    if lat:
        order = sorted(lat, key=lambda k: float(np.median(lat[k])))
        p50 = np.array([np.median(lat[k]) for k in order])
        p99 = np.array([np.percentile(lat[k], 99) for k in order])
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(order) + 1.4))
        y = np.arange(len(order))
        ax.barh(y, p50, xerr=[np.zeros_like(p50), p99 - p50], capsize=3, color="tab:blue", alpha=0.8)
        for yi, v in zip(y, p50):
            ax.text(v, yi, f" {v:.3g}", va="center", fontsize=7)
        ax.set_yticks(y, order)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("host latency per window (ms, one thread; bar = median, whisker = p99)")
        fig.tight_layout()
        atomic_savefig(fig, run_dir / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    return made


def _roc_plot(run_dir: Path, tg: Target, series: dict, cols: list[str], recs: list[dict]) -> str:
    """roc.png: the ROC curve of each of `cols` (the primary runtime, the baseline) over the windows with truth."""
    import matplotlib.pyplot as plt
    truth = np.concatenate([np.asarray(r["truth"], float) for r in recs])
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for k in cols:
        score = np.concatenate([np.asarray(p, float) for p in series["pred"][k]])
        ok = np.isfinite(score) & np.isfinite(truth)
        y, sc = truth[ok] > 0.5, score[ok]
        if y.all() or not y.any():
            continue
        order = np.argsort(-sc, kind="stable")
        tpr = np.concatenate([[0.0], np.cumsum(y[order]) / y.sum()])
        fpr = np.concatenate([[0.0], np.cumsum(~y[order]) / (~y).sum()])
        ax.plot(fpr, tpr, lw=1.2, label=f"{k} (AUROC {class_metrics(sc, y.astype(float))['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{tg.what}: ROC over windows with {tg.truth}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:                   # none when the windows hold one class only
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_savefig(fig, run_dir / "roc.png", dpi=110)
    plt.close(fig)
    return "roc.png"


def write_report(run_dir, res: dict) -> list[str]:
    """bench.json (everything but the bulky series), bench.md (tables + plots), the plots, windows.csv (the series,
    one row per window: `write_windows_csv`)."""
    run_dir = Path(run_dir)
    plots = _plots(run_dir, res)
    slim = {k: v for k, v in res.items() if k != "series"}
    slim["plots"] = plots
    write_metrics(run_dir, slim, name="bench.json")
    md = ["# sqtool bench", ""]
    if not res.get("labelled", True):
        md += [f"**{res.get('accuracy') or 'accuracy not measured'}.** Cost and fidelity only.", ""]
    md += [*as_markdown(tables(res)), ""]
    md += [f"![{p}]({p})" for p in plots]
    notes = res.get("notes") or []
    if notes:
        md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    atomic_write_text(run_dir / "bench.md", "\n".join(md) + "\n")
    recs, pred = (res.get("series") or {}).get("records") or [], (res.get("series") or {}).get("pred") or {}
    if recs:                                          # one row per window: record, subject, t0, condition, values
        write_windows_csv(run_dir, {
            "record": np.concatenate([[r["record_id"]] * len(r["t0"]) for r in recs]),
            "subject": np.concatenate([[r.get("key") or r["subject"]] * len(r["t0"]) for r in recs]),
            "t0_s": np.concatenate([np.asarray(r["t0"], float) for r in recs]),
            "condition": np.concatenate([np.asarray(r.get("condition") or [""] * len(r["t0"]), object) for r in recs]),
            "truth": np.concatenate([np.asarray(r["truth"], float) for r in recs]),
            **{k: np.concatenate([np.asarray(v, float) for v in pred[k]]) for k in pred}})
    return plots


def primary_runtime(rows: list[dict], order: tuple[str, ...], labelled: bool = True) -> str | None:
    """The runtime a bench reports first: the first of `order` that ran, covers every window (`covers_all`: not an
    --mcu-windows subset) and, on labelled data, measured its accuracy (an MAE; a class's F1, which it has where its
    AUROC is not defined)."""
    ok = {r["runtime"] for r in rows if r["status"] == "ok" and covers_all(r)
          and (not labelled or any((r.get("metrics") or {}).get(k) is not None for k in ("mae", "f1")))}
    return next((k for k in order if k in ok), None)


def covers_all(row: dict) -> bool:
    """Whether a runtime's row scored every labelled window (not an --mcu-windows subset): the primary runtime
    must, and a row that does not says so in the tables. Rows without a coverage figure count as covering."""
    cov = (row.get("metrics") or {}).get("coverage")
    return cov is None or cov >= 0.999


def floors_line(floor: list[dict]) -> str:
    """`floors: c_host mae 1.38 <= 8: ok (held-out 2 of 4 subjects); any runtime exact not measured >= 100: FAILED`
    (the tables' last line; an accuracy floor's `scope` in brackets when some scored subjects were seen in
    training)."""
    return "floors: " + "; ".join(
        f"{f['runtime']} {f['metric']} {'not measured' if f['value'] is None else format(f['value'], '.4g')} "
        f"{'<=' if f['op'] == 'max' else '>='} {f['limit']:g}: {'ok' if f['ok'] else 'FAILED'}"
        + (f" ({f['scope']})" if f.get("scope") else "") for f in floor)


# ----------------------------------------------------------------------------- recordings shorter than a window

def too_short(where: str, seconds: float, window_s: float):
    """The one-line TooShort of a recording shorter than one model window (raised by both replays: the spectral
    front end and the time-domain stream)."""
    return TooShort(f"{where}: {seconds:.1f} s is shorter than one {window_s:g} s window")


def long_enough(records, prepare, window_s: float, data: str = "records", skip=None,
                left: list[str] = ()) -> tuple[list, list[str]]:
    """(prepare(r) of every recording at least one window long, in order; the reason each other one was left
    out, after `left`: those the caller had already left out, e.g. the bench's recordings without a channel), for
    predict and both benches. A recording whose prepare raises TooShort (or any `skip` exception: the spectral
    bench also leaves out one without the model's channels) is left out; other errors still stop. None left: one
    SqtoolError line, the reason itself for one recording left out, else the count and the first reasons of all."""
    out, mine, short = [], [], 0
    for r in records:
        try:
            out.append(prepare(r))
        except (skip or TooShort) as e:
            mine.append(str(e))
            short += isinstance(e, TooShort)
        del r                                 # a lazy reader's record: not held while it reads the next one
    left = list(left) + mine                  # read after the loop: a lazy reader fills the caller's list as it goes
    if not out:
        if not left:
            raise SqtoolError(f"--data {data}: no recordings")
        if len(left) == 1:
            raise SqtoolError(left[0])
        what = (f"no recording is as long as one {window_s:g} s window" if short == len(left) else
                "no recording the model can use")
        raise SqtoolError(f"--data {data}: {what} ({len(left)} recordings, e.g. {'; '.join(left[:3])})")
    return out, left


def left_out_note(reasons: list[str], most: int = 10) -> str:
    """bench.md's note on the recordings left out (bench.json provenance.skipped_records lists them all): shorter
    than one window, without the model's channels, or a file of the folder the readers refused (off the wrist
    throughout, no rate, damaged: no window the network scores, so no accuracy or cost of its own)."""
    more = f"; and {len(reasons) - most} more" if len(reasons) > most else ""
    return (f"left out {len(reasons)} recording{'s' if len(reasons) != 1 else ''} (bench.json "
            f"provenance.skipped_records): {'; '.join(reasons[:most])}{more}")


def left_out_lines(reasons: list[str], who: str = "WARNING") -> list[str]:
    """One line per recording left out: 'WARNING: left out <record>: <why>' (predict's warnings; `who`="bench"
    for the bench's progress lines)."""
    return [f"{who}: left out {s}" for s in reasons]
