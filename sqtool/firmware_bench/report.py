"""Benchmark report: metrics, tables (terminal + Markdown), bench.json and plots.

    m = hr_metrics(pred, truth)                 # MAE, fraction with |err| > 10 BPM, RMSE, bias, n
    text = tables(result)                       # what `sqtool bench` prints (yolo-benchmark style)
    write_report(run_dir, result)               # bench.json, bench.md, bland_altman.png,
                                                # error_over_time.png, latency_hist.png

`result` is the dict `sqtool.firmware_bench.cli.run_bench` returns: provenance, per-runtime rows,
the baseline row, and per-record series for the plots. Instruction counts are labelled instructions
(QEMU / valgrind count executed instructions, not cycles).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sqtool.core import atomic_write_text, write_metrics

GT = 10.0    # BPM: a window is "wrong" beyond this error


def hr_metrics(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Error statistics over windows with a truth value; windows without a prediction count as misses
    in `coverage` and are left out of the error statistics."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    has = np.isfinite(truth)
    ok = has & np.isfinite(pred)
    if not ok.any():
        return {"n": int(has.sum()), "coverage": 0.0, "mae": None, "rmse": None, "bias": None, "gt10": None}
    e = pred[ok] - truth[ok]
    return {"n": int(has.sum()), "coverage": float(ok.sum() / max(1, has.sum())), "mae": float(np.abs(e).mean()),
            "rmse": float(np.sqrt((e ** 2).mean())), "bias": float(e.mean()), "gt10": float((np.abs(e) > GT).mean())}


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
    t = p.get("tools", {})
    return [f"sqtool {p.get('sqtool_version')} (git {p.get('git_sha')})  model {p.get('model')} "
            f"sha256 {str(p.get('model_sha256', ''))[:16]}  quant {p.get('quant_scheme')}",
            f"data {p.get('data')}: {p.get('records')} recordings, {p.get('windows')} windows, "
            f"{_f(p.get('signal_hours'), '{:.2f}')} h; stream {p.get('stream')}",
            f"gcc: {t.get('gcc')} | arm: {t.get('arm_none_eabi_gcc')} | {t.get('qemu')} | {t.get('valgrind')}"]


def tables(res: dict) -> str:
    """Accuracy + host latency (one row per runtime, the baseline last), then the firmware table."""
    rows = []
    for r in res["runtimes"] + [res["baseline"]]:
        m, mt = r.get("metrics") or {}, r.get("metrics_tracked") or {}
        rows.append([r["runtime"], r["status"], r.get("precision", ""), _kb(r.get("size_bytes")),
                     _f(m.get("mae")), _f(None if m.get("gt10") is None else 100 * m["gt10"], "{:.1f}"),
                     _f(mt.get("mae")), _f(r.get("latency_ms_p50"), "{:.3f}"), _f(r.get("latency_ms_p99"), "{:.3f}"),
                     _f(r.get("exact_pct"), "{:.1f}") + (f" vs {r['exact_ref']}" if r.get("exact_ref") else ""),
                     _f(r.get("realtime_factor"), "{:.0f}")])
    out = provenance_lines(res["provenance"]) + [""]
    out += _table(["runtime", "status", "prec", "size KB", "MAE BPM", ">10 BPM %", "MAE tracked", "p50 ms",
                   "p99 ms", "bit-exact %", "x real time"], rows)
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
    if res.get("floor"):
        out += ["", "floors: " + "; ".join(f"{f['runtime']} {f['metric']} {_f(f['value'])} "
                                           f"{'<=' if f['op'] == 'max' else '>='} {f['limit']:g}: "
                                           f"{'ok' if f['ok'] else 'FAILED'}" for f in res["floor"])]
    return "\n".join(out)


# ----------------------------------------------------------------------------- plots

def _plots(run_dir: Path, res: dict) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    series = res.get("series") or {}
    primary = res.get("primary")
    recs = series.get("records", [])
    # Bland-Altman: primary runtime and the baseline
    cols = [k for k in (primary, "baseline") if k and k in series.get("pred", {})]
    if cols and recs:
        fig, axes = plt.subplots(1, len(cols), figsize=(5.5 * len(cols), 4.2), squeeze=False)
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
                ax.set_title(f"{k}: bias {b:.1f}, LoA +-{1.96 * sd:.1f} BPM")
            ax.set_xlabel("mean of estimate and ECG truth (BPM)")
            ax.set_ylabel("estimate - truth (BPM)")
        fig.tight_layout()
        fig.savefig(run_dir / "bland_altman.png", dpi=110)
        plt.close(fig)
        made.append("bland_altman.png")
    # error over time, one panel per recording
    if recs:
        n = len(recs)
        ncol = 3 if n > 4 else n
        nrow = -(-n // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 2.6 * nrow), squeeze=False)
        for i, r in enumerate(recs):
            ax = axes[i // ncol][i % ncol]
            t = np.asarray(r["t0"], float) + 4.0
            ax.plot(t, r["truth"], "k-", lw=1.2, label="ECG truth")
            for k in cols:
                ax.plot(t, series["pred_tracked"][k][i], lw=0.9, label=k)
            ax.set_title(r["record_id"], fontsize=9)
            ax.set_xlabel("s")
            ax.set_ylabel("BPM")
        for j in range(n, nrow * ncol):
            axes[j // ncol][j % ncol].axis("off")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run_dir / "error_over_time.png", dpi=100)
        plt.close(fig)
        made.append("error_over_time.png")
    lat = {k: v for k, v in (series.get("latency_ms") or {}).items() if len(v)}
    if lat:
        fig, ax = plt.subplots(figsize=(7, 4))
        allv = np.concatenate([np.asarray(v) for v in lat.values()])
        lo, hi = max(allv.min(), 1e-4), allv.max()
        bins = np.logspace(np.log10(lo), np.log10(hi * 1.01 + 1e-9), 50)
        for k, v in lat.items():
            ax.hist(v, bins=bins, histtype="step", label=k)
        ax.set_xscale("log")
        ax.set_xlabel("host latency per window (ms, one thread)")
        ax.set_ylabel("windows")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(run_dir / "latency_hist.png", dpi=110)
        plt.close(fig)
        made.append("latency_hist.png")
    return made


def write_report(run_dir, res: dict) -> list[str]:
    """bench.json (everything but the bulky series), bench.md (tables + plots), the plots."""
    run_dir = Path(run_dir)
    plots = _plots(run_dir, res)
    slim = {k: v for k, v in res.items() if k != "series"}
    slim["plots"] = plots
    write_metrics(run_dir, slim, name="bench.json")
    md = ["# sqtool bench", "", *as_markdown(tables(res)), ""]
    md += [f"![{p}]({p})" for p in plots]
    notes = res.get("notes") or []
    if notes:
        md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    atomic_write_text(run_dir / "bench.md", "\n".join(md) + "\n")
    return plots
